//! Where [`HyperTransport`](super::HyperTransport) is willing to send a request.
//!
//! HTTPS goes anywhere. Plain `http://` is allowed only to loopback hosts
//! (`127.0.0.0/8`, `::1`, `localhost`), which is where the sandbox and test
//! servers live; a cancel request with its `msgAuthValue` never crosses a
//! network in clear text. The check runs before any DNS lookup or connection.

use std::net::IpAddr;

use http::uri::Scheme;
use http::Uri;

use crate::TransportError;

/// Returns `Ok(())` when `uri` may be sent, or the [`TransportError::Refused`]
/// that says which rule it breaks. Never touches the network.
pub(crate) fn check_destination(uri: &Uri) -> Result<(), TransportError> {
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return Err(TransportError::Refused(
            "request URI must be absolute (scheme and host), e.g. https://host/path".to_owned(),
        ));
    };
    match uri.scheme() {
        Some(scheme) if *scheme == Scheme::HTTPS => Ok(()),
        Some(scheme) if *scheme == Scheme::HTTP => {
            if is_loopback_host(host) {
                Ok(())
            } else {
                Err(TransportError::Refused(format!(
                    "plain http:// is allowed only to loopback hosts \
                     (127.0.0.0/8, ::1, localhost); use https:// for host {host}"
                )))
            }
        }
        Some(scheme) => Err(TransportError::Refused(format!(
            "URI scheme {scheme} is not supported; use https:// (or http:// to a loopback host)"
        ))),
        None => Err(TransportError::Refused(
            "request URI must be absolute (scheme and host), e.g. https://host/path".to_owned(),
        )),
    }
}

/// `true` for `localhost` (any letter case), an IPv4 address in `127.0.0.0/8`
/// and the IPv6 address `::1` (with or without the URI's square brackets).
/// Nothing else: no `127.1` short forms, no `::ffff:127.0.0.1`, no
/// `*.localhost` names, no trailing dot.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        // Both std predicates are exactly the ranges we want:
        // 127.0.0.0/8 for IPv4 and ::1 alone for IPv6.
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    fn check(uri: &str) -> Result<(), TransportError> {
        check_destination(&uri.parse::<Uri>().expect("test URI parses"))
    }

    #[test]
    fn loopback_hosts_table() {
        for host in [
            "localhost",
            "LOCALHOST",
            "LocalHost",
            "127.0.0.1",
            "127.255.255.254",
            "127.0.0.0",
            "::1",
            "[::1]",
            "[0:0:0:0:0:0:0:1]",
        ] {
            assert!(is_loopback_host(host), "{host} should be loopback");
        }
        for host in [
            "",
            "example.com",
            "localhost.",
            "foo.localhost",
            "localhost.example.com",
            "127.0.0.1.nip.io",
            "127.1",
            "128.0.0.1",
            "126.255.255.255",
            "0.0.0.0",
            "10.0.0.1",
            "192.168.1.1",
            "[::ffff:127.0.0.1]",
            "::ffff:127.0.0.1",
            "[::]",
            "[::2]",
            "[::1",
            "::1]",
            "[[::1]]",
        ] {
            assert!(!is_loopback_host(host), "{host:?} must not be loopback");
        }
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
        ] {
            match check(uri) {
                Err(TransportError::Refused(msg)) => {
                    assert!(msg.contains("loopback"), "{uri}: {msg}")
                }
                other => panic!("{uri}: expected Refused, got {other:?}"),
            }
        }
    }

    #[test]
    fn relative_and_foreign_schemes_are_refused() {
        for uri in ["/api/trades/revise", "ftp://127.0.0.1/x", "ws://127.0.0.1/"] {
            assert!(
                matches!(check(uri), Err(TransportError::Refused(_))),
                "{uri} must be refused"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_host(host in ".*") {
            let _ = is_loopback_host(&host);
        }

        #[test]
        fn ipv4_loopback_is_exactly_127_slash_8(bits in any::<u32>()) {
            let ip = Ipv4Addr::from(bits);
            prop_assert_eq!(is_loopback_host(&ip.to_string()), ip.octets()[0] == 127);
        }

        #[test]
        fn ipv6_loopback_is_exactly_one_address(bits in any::<u128>()) {
            let ip = Ipv6Addr::from(bits);
            let expected = bits == 1;
            prop_assert_eq!(is_loopback_host(&ip.to_string()), expected);
            prop_assert_eq!(is_loopback_host(&format!("[{ip}]")), expected);
        }
    }
}
