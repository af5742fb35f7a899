//! Where [`HyperTransport`](super::HyperTransport) is willing to send a request.
//!
//! HTTPS goes anywhere. Plain `http://` is allowed only to loopback hosts
//! (`127.0.0.0/8`, `::1`, `localhost`), which is where the sandbox and test
//! servers live; a cancel request with its `msgAuthValue` never crosses a
//! network in clear text. The check runs before any DNS lookup or connection.

use http::uri::Scheme;
use http::Uri;

use crate::{RefusedError, RefusedKind, TransportError};

/// Returns `Ok(())` when `uri` may be sent, or the [`TransportError::Refused`]
/// that says which rule it breaks. Never touches the network.
pub(crate) fn check_destination(uri: &Uri) -> Result<(), TransportError> {
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return Err(refused(
            RefusedKind::InvalidUri,
            "request URI must be absolute (scheme and host), e.g. https://host/path".to_owned(),
        ));
    };
    match uri.scheme() {
        Some(scheme) if *scheme == Scheme::HTTPS => Ok(()),
        Some(scheme) if *scheme == Scheme::HTTP => {
            if is_loopback_host(host) {
                Ok(())
            } else {
                Err(refused(
                    RefusedKind::PlainHttp,
                    format!(
                        "plain http:// is allowed only to loopback hosts \
                         (127.0.0.0/8, ::1, localhost); use https:// for host {host}"
                    ),
                ))
            }
        }
        Some(scheme) => Err(refused(
            RefusedKind::InvalidUri,
            format!(
                "URI scheme {scheme} is not supported; use https:// (or http:// to a loopback host)"
            ),
        )),
        None => Err(refused(
            RefusedKind::InvalidUri,
            "request URI must be absolute (scheme and host), e.g. https://host/path".to_owned(),
        )),
    }
}

fn refused(kind: RefusedKind, message: String) -> TransportError {
    TransportError::Refused(RefusedError::new(kind, message))
}

/// The one loopback rule of kicc-rs, shared with [`kicc_core::BaseUrl`] so a base URL the
/// SDK accepts is one this transport sends to, and the other way round.
pub(crate) use kicc_core::is_loopback_host;

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: &str) -> Result<(), TransportError> {
        check_destination(&uri.parse::<Uri>().expect("test URI parses"))
    }

    #[test]
    fn https_goes_anywhere() {
        assert_eq!(
            check("https://pgapi.easypay.co.kr/api/trades/revise"),
            Ok(())
        );
        assert_eq!(check("https://127.0.0.1:8443/"), Ok(()));
        assert_eq!(check("HTTPS://example.com/"), Ok(()));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert_eq!(check("http://127.0.0.1:8780/api/trades/revise"), Ok(()));
        assert_eq!(check("http://localhost:8780/"), Ok(()));
        assert_eq!(check("http://[::1]:8780/"), Ok(()));
        for uri in [
            "http://example.com/api/trades/revise",
            "http://testpgapi.easypay.co.kr/",
            "http://10.1.2.3/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0:8780/",
            "http://127.0.0.1@evil.example/",
            "http://127.0.0.1:80@evil.example/",
            "http://localhost.:8780/",
            "http://127.0.0.1.nip.io/",
        ] {
            match check(uri) {
                Err(TransportError::Refused(e)) => {
                    assert_eq!(e.kind(), RefusedKind::PlainHttp, "{uri}");
                    assert!(e.message().contains("loopback"), "{uri}: {e}")
                }
                other => panic!("{uri}: expected Refused, got {other:?}"),
            }
        }
    }

    #[test]
    fn relative_and_foreign_schemes_are_refused() {
        for uri in ["/api/trades/revise", "ftp://127.0.0.1/x", "ws://127.0.0.1/"] {
            assert!(
                matches!(check(uri), Err(TransportError::Refused(e)) if e.kind() == RefusedKind::InvalidUri),
                "{uri} must be refused"
            );
        }
    }
}
