//! Verifying WeChat Pay's signed responses and notifications, and (for
//! simulators) producing those signatures.

use std::fmt;

use base64::Engine as _;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::ids::{Nonce, SerialNo, Timestamp};
use crate::keys::{KeyKind, RsaPrivateKey, SignError, VerificationKeys};

/// `Wechatpay-Timestamp`.
pub const HEADER_TIMESTAMP: &str = "wechatpay-timestamp";
/// `Wechatpay-Nonce`.
pub const HEADER_NONCE: &str = "wechatpay-nonce";
/// `Wechatpay-Signature`.
pub const HEADER_SIGNATURE: &str = "wechatpay-signature";
/// `Wechatpay-Serial`.
pub const HEADER_SERIAL: &str = "wechatpay-serial";

/// The allowed distance between a signed timestamp and `now`, both ways.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// The prefix of WeChat Pay's deliberate bad-signature probes.
pub const PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// Why a signature did not verify. Every case means: do not trust the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent.
    #[error("missing header {name}")]
    MissingHeader {
        /// The header's name.
        name: &'static str,
    },
    /// A header is present but unusable (not visible ASCII, not a number, empty...).
    #[error("header {name}: {rule}")]
    InvalidHeader {
        /// The header's name.
        name: &'static str,
        /// What is wrong with it.
        rule: &'static str,
    },
    /// The signed timestamp is more than 5 minutes away from `now`.
    #[error("signed timestamp {timestamp} is more than {max_skew_secs} s away from now ({now})")]
    OutsideWindow {
        /// The signed timestamp (Unix seconds).
        timestamp: u64,
        /// The `now` it was compared with.
        now: u64,
        /// The allowed distance.
        max_skew_secs: u64,
    },
    /// The serial is not in the key store (fetch the platform certificates, or
    /// add the WeChat Pay public key).
    #[error("no verification key for serial {serial:?}")]
    UnknownSerial {
        /// The serial the message named.
        serial: String,
    },
    /// A `WECHATPAY/SIGNTEST/...` probe: WeChat Pay checks that you reject it.
    #[error(
        "signature is a WeChat Pay signature probe (WECHATPAY/SIGNTEST/...); rejected as required"
    )]
    SignatureProbe,
    /// The signature is not valid Base64.
    #[error("signature is not valid Base64")]
    MalformedSignature,
    /// The signature does not match the message and the key for `serial`.
    #[error("signature does not verify with the key for serial {serial:?}")]
    BadSignature {
        /// The serial whose key was tried.
        serial: String,
    },
}

/// The four `Wechatpay-*` headers of a signed response or notification.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignatureHeaders {
    /// `Wechatpay-Timestamp`, verbatim.
    pub timestamp: String,
    /// `Wechatpay-Nonce`, verbatim.
    pub nonce: String,
    /// `Wechatpay-Signature`, verbatim (Base64).
    pub signature: String,
    /// `Wechatpay-Serial`: platform certificate serial or `PUB_KEY_ID_...`.
    pub serial: String,
}

impl fmt::Debug for SignatureHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureHeaders")
            .field("timestamp", &self.timestamp)
            .field("nonce", &self.nonce)
            .field("signature", &"[redacted]")
            .field("serial", &self.serial)
            .finish()
    }
}

fn header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
    display: &'static str,
) -> Result<&'a str, VerifyError> {
    let value = headers
        .get(name)
        .ok_or(VerifyError::MissingHeader { name: display })?;
    let text = value.to_str().map_err(|_| VerifyError::InvalidHeader {
        name: display,
        rule: "must be visible ASCII",
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(VerifyError::InvalidHeader {
            name: display,
            rule: "must not be empty",
        });
    }
    Ok(text)
}

impl SignatureHeaders {
    /// Reads the four headers (names are case-insensitive). Missing ones are a
    /// [`VerifyError::MissingHeader`].
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, VerifyError> {
        Ok(Self {
            timestamp: header(headers, HEADER_TIMESTAMP, "Wechatpay-Timestamp")?.to_owned(),
            nonce: header(headers, HEADER_NONCE, "Wechatpay-Nonce")?.to_owned(),
            signature: header(headers, HEADER_SIGNATURE, "Wechatpay-Signature")?.to_owned(),
            serial: header(headers, HEADER_SERIAL, "Wechatpay-Serial")?.to_owned(),
        })
    }

    /// Writes the four headers into `headers` (replacing earlier values).
    /// Values that are not valid header text are skipped (they cannot come
    /// from [`sign_response`]).
    pub fn write_to(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_NONCE, &self.nonce),
            (HEADER_SIGNATURE, &self.signature),
            (HEADER_SERIAL, &self.serial),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
    }

    /// Verifies these headers over `body` (see [`verify_response`]).
    pub fn verify(
        &self,
        body: &[u8],
        now: Timestamp,
        keys: &VerificationKeys,
    ) -> Result<Verified, VerifyError> {
        let ts = parse_header_timestamp("Wechatpay-Timestamp", &self.timestamp)?;
        let sig = decode_signature(&self.signature)?;
        check_window(ts, now)?;
        let (kind, key) = keys
            .get(&self.serial)
            .ok_or_else(|| VerifyError::UnknownSerial {
                serial: self.serial.clone(),
            })?;
        let message = response_message(&self.timestamp, &self.nonce, body);
        if key.verify(&message, &sig) {
            Ok(Verified {
                serial: self.serial.clone(),
                kind,
                timestamp: ts,
            })
        } else {
            Err(VerifyError::BadSignature {
                serial: self.serial.clone(),
            })
        }
    }
}

/// Proof that a message verified: which key did it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The `Wechatpay-Serial` whose key verified the signature.
    pub serial: String,
    /// Certificate or public key.
    pub kind: KeyKind,
    /// The signed timestamp.
    pub timestamp: Timestamp,
}

/// The verified message: `TIMESTAMP\nNONCE\nBODY\n` (for an empty body,
/// e.g. HTTP 204: `TIMESTAMP\nNONCE\n\n`).
pub fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(nonce.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(body);
    m.push(b'\n');
    m
}

/// Verifies a response or notification: reads `Wechatpay-Timestamp`,
/// `-Nonce`, `-Signature` and `-Serial` from `headers`, refuses timestamps more
/// than 5 minutes from `now` (either way), picks the key by serial, and checks
/// SHA256withRSA over `TIMESTAMP\nNONCE\nBODY\n` with the raw `body` bytes.
///
/// A `WECHATPAY/SIGNTEST/...` probe, malformed Base64, a missing header or an
/// unknown serial each fail with their own [`VerifyError`]. Never panics.
pub fn verify_response(
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
    keys: &VerificationKeys,
) -> Result<Verified, VerifyError> {
    SignatureHeaders::from_headers(headers)?.verify(body, now, keys)
}

/// Signs a response or notification the way WeChat Pay does (for simulators
/// and tests): returns the four `Wechatpay-*` headers for `body`.
pub fn sign_response(
    body: &[u8],
    timestamp: Timestamp,
    nonce: &Nonce,
    serial: &SerialNo,
    platform_key: &RsaPrivateKey,
) -> Result<SignatureHeaders, SignError> {
    let ts = timestamp.to_string();
    let signature = platform_key.sign_base64(&response_message(&ts, nonce.as_str(), body))?;
    Ok(SignatureHeaders {
        timestamp: ts,
        nonce: nonce.as_str().to_owned(),
        signature,
        serial: serial.as_str().to_owned(),
    })
}

/// Decodes a Base64 signature, recognising WeChat Pay's probes.
pub(crate) fn decode_signature(text: &str) -> Result<Vec<u8>, VerifyError> {
    if text.starts_with(PROBE_PREFIX) {
        return Err(VerifyError::SignatureProbe);
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| VerifyError::MalformedSignature)
}

/// Parses a signed timestamp header (decimal Unix seconds).
pub(crate) fn parse_header_timestamp(
    name: &'static str,
    text: &str,
) -> Result<Timestamp, VerifyError> {
    Timestamp::parse(name, text).map_err(|_| VerifyError::InvalidHeader {
        name,
        rule: "must be decimal Unix seconds (at most 10 digits)",
    })
}

/// The 5-minute window, both ways.
pub(crate) fn check_window(ts: Timestamp, now: Timestamp) -> Result<(), VerifyError> {
    if ts.unix_secs().abs_diff(now.unix_secs()) > MAX_CLOCK_SKEW_SECS {
        return Err(VerifyError::OutsideWindow {
            timestamp: ts.unix_secs(),
            now: now.unix_secs(),
            max_skew_secs: MAX_CLOCK_SKEW_SECS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn message_for_204() {
        assert_eq!(
            response_message("1700000000", "N", b""),
            b"1700000000\nN\n\n"
        );
    }

    #[test]
    fn probe_and_base64() {
        assert_eq!(
            decode_signature("WECHATPAY/SIGNTEST/abc"),
            Err(VerifyError::SignatureProbe)
        );
        assert_eq!(
            decode_signature("not base64!"),
            Err(VerifyError::MalformedSignature)
        );
        assert_eq!(decode_signature("AAEC").unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn window_edges() {
        let t = |s| Timestamp::from_unix_secs(s).unwrap();
        assert!(check_window(t(1_000_000_300), t(1_000_000_000)).is_ok());
        assert!(check_window(t(1_000_000_000), t(1_000_000_300)).is_ok());
        assert!(check_window(t(1_000_000_301), t(1_000_000_000)).is_err());
        assert!(check_window(t(999_999_699), t(1_000_000_000)).is_err());
    }

    proptest! {
        #[test]
        fn verify_never_panics(
            ts in ".{0,20}", nonce in ".{0,40}", sig in ".{0,400}", serial in ".{0,70}",
            body in proptest::collection::vec(any::<u8>(), 0..100), now in 1u64..=9_999_999_999,
        ) {
            let h = SignatureHeaders { timestamp: ts, nonce, signature: sig, serial };
            let r = h.verify(&body, Timestamp::from_unix_secs(now).unwrap(), &VerificationKeys::new());
            prop_assert!(r.is_err());
        }
    }
}
