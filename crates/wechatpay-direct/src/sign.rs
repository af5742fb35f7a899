//! Request signing (`Authorization: WECHATPAY2-SHA256-RSA2048 ...`) and its
//! server-side counterpart (parsing the header, verifying the signature).

use std::fmt;

use http::uri::PathAndQuery;
use http::Method;

use crate::ids::{MchId, Nonce, SerialNo, Timestamp};
use crate::keys::{RsaPrivateKey, RsaPublicKey, SignError};
use crate::verify::{decode_signature, VerifyError};

/// The authentication scheme WeChat Pay API v3 uses.
pub const AUTH_SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// The canonical request message that gets signed:
/// `METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n`.
///
/// `url` is the request target exactly as sent (path plus `?query`, already
/// percent-encoded, no scheme or host); `body` is the exact body bytes (empty
/// gives `...NONCE\n\n`; a body ending in `\n` still gets one more).
pub fn request_message(
    method: &Method,
    url: &PathAndQuery,
    timestamp: Timestamp,
    nonce: &Nonce,
    body: &[u8],
) -> Vec<u8> {
    raw_request_message(
        method.as_str(),
        url.as_str(),
        &timestamp.to_string(),
        nonce.as_str(),
        body,
    )
}

/// The message from raw parts (no validation): used when verifying what a
/// client sent, where the parts come from its `Authorization` header.
fn raw_request_message(
    method: &str,
    url: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(
        method.len() + url.len() + timestamp.len() + nonce.len() + body.len() + 5,
    );
    for part in [
        method.as_bytes(),
        url.as_bytes(),
        timestamp.as_bytes(),
        nonce.as_bytes(),
        body,
    ] {
        m.extend_from_slice(part);
        m.push(b'\n');
    }
    m
}

/// A request signature: the signed message, the Base64 signature and the
/// complete `Authorization` header value.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestSignature {
    message: Vec<u8>,
    signature: String,
    authorization: String,
}

impl RequestSignature {
    /// The exact bytes that were signed.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The signature, Base64 (standard alphabet).
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The `Authorization` header value.
    pub fn authorization(&self) -> &str {
        &self.authorization
    }
}

impl fmt::Debug for RequestSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signature is a bearer credential for this one request: keep it out of logs.
        f.debug_struct("RequestSignature")
            .field("message", &String::from_utf8_lossy(&self.message))
            .field("signature", &"[redacted]")
            .finish()
    }
}

/// What identifies the signer in `Authorization`.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The caller's merchant ID (`sp_mchid` in institutional mode).
    pub mchid: &'a MchId,
    /// Serial number of the merchant's API certificate.
    pub serial_no: &'a SerialNo,
    /// The merchant's API private key.
    pub key: &'a RsaPrivateKey,
}

/// Signs a request: builds the canonical message, signs it with SHA256withRSA
/// and formats `Authorization` as `WECHATPAY2-SHA256-RSA2048 mchid="...",
/// nonce_str="...",timestamp="...",serial_no="...",signature="..."`.
pub fn sign_request(
    signer: Signer<'_>,
    method: &Method,
    url: &PathAndQuery,
    timestamp: Timestamp,
    nonce: &Nonce,
    body: &[u8],
) -> Result<RequestSignature, SignError> {
    let message = request_message(method, url, timestamp, nonce, body);
    let signature = signer.key.sign_base64(&message)?;
    let authorization = format!(
        "{AUTH_SCHEME} mchid=\"{}\",nonce_str=\"{}\",timestamp=\"{}\",serial_no=\"{}\",signature=\"{}\"",
        signer.mchid, nonce, timestamp, signer.serial_no, signature
    );
    Ok(RequestSignature {
        message,
        signature,
        authorization,
    })
}

/// Why an `Authorization` header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationError {
    /// The scheme is not `WECHATPAY2-SHA256-RSA2048`.
    #[error("Authorization: scheme must be {AUTH_SCHEME}")]
    Scheme,
    /// A `key="value"` pair is malformed (unquoted, stray text, quote inside).
    #[error("Authorization: malformed parameter near position {position}")]
    Malformed {
        /// Byte offset into the parameter list.
        position: usize,
    },
    /// A required parameter is missing.
    #[error("Authorization: missing parameter {name}")]
    Missing {
        /// The parameter's name.
        name: &'static str,
    },
    /// A parameter appears twice.
    #[error("Authorization: parameter {name} given twice")]
    Duplicate {
        /// The parameter's name.
        name: &'static str,
    },
}

/// The parts of an `Authorization: WECHATPAY2-SHA256-RSA2048 ...` header.
///
/// Values are kept verbatim (the signature is checked over them as sent).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizationParts {
    /// `mchid`: the calling merchant.
    pub mchid: String,
    /// `nonce_str`.
    pub nonce_str: String,
    /// `timestamp`: Unix seconds as text.
    pub timestamp: String,
    /// `serial_no`: the merchant certificate's serial.
    pub serial_no: String,
    /// `signature`: Base64.
    pub signature: String,
}

impl fmt::Debug for AuthorizationParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationParts")
            .field("mchid", &self.mchid)
            .field("nonce_str", &self.nonce_str)
            .field("timestamp", &self.timestamp)
            .field("serial_no", &self.serial_no)
            .field("signature", &"[redacted]")
            .finish()
    }
}

/// Parses an `Authorization` header value. Parameter order is free,
/// whitespace around `,` and `=` is tolerated, unknown parameters are ignored,
/// duplicates are refused. Never panics.
pub fn parse_authorization(value: &str) -> Result<AuthorizationParts, AuthorizationError> {
    let params = value
        .trim()
        .strip_prefix(AUTH_SCHEME)
        .filter(|rest| rest.starts_with(' '))
        .ok_or(AuthorizationError::Scheme)?;
    let offset = value.len() - params.len();
    let mut found: [Option<String>; 5] = Default::default();
    const NAMES: [&str; 5] = ["mchid", "nonce_str", "timestamp", "serial_no", "signature"];

    let mut rest = params;
    loop {
        let trimmed = rest.trim_start();
        let position = offset + (params.len() - trimmed.len());
        let malformed = AuthorizationError::Malformed { position };
        let (name, after_name) = trimmed.split_once('=').ok_or(malformed.clone())?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(malformed);
        }
        let after_quote = after_name
            .trim_start()
            .strip_prefix('"')
            .ok_or(malformed.clone())?;
        let (val, after_val) = after_quote.split_once('"').ok_or(malformed.clone())?;
        if val.chars().any(char::is_control) {
            return Err(malformed);
        }
        if let Some(index) = NAMES.iter().position(|n| *n == name) {
            let slot = found.get_mut(index).ok_or(malformed.clone())?;
            if slot.is_some() {
                return Err(AuthorizationError::Duplicate {
                    name: NAMES.get(index).copied().unwrap_or("?"),
                });
            }
            *slot = Some(val.to_owned());
        }
        let after_val = after_val.trim_start();
        if after_val.is_empty() {
            break;
        }
        rest = after_val
            .strip_prefix(',')
            .ok_or(AuthorizationError::Malformed {
                position: value.len() - after_val.len(),
            })?;
    }
    let [mchid, nonce_str, timestamp, serial_no, signature] = found;
    Ok(AuthorizationParts {
        mchid: mchid.ok_or(AuthorizationError::Missing { name: "mchid" })?,
        nonce_str: nonce_str.ok_or(AuthorizationError::Missing { name: "nonce_str" })?,
        timestamp: timestamp.ok_or(AuthorizationError::Missing { name: "timestamp" })?,
        serial_no: serial_no.ok_or(AuthorizationError::Missing { name: "serial_no" })?,
        signature: signature.ok_or(AuthorizationError::Missing { name: "signature" })?,
    })
}

/// Verifies a request's signature (server side, e.g. in a simulator).
///
/// `url` is the request target as received (path and query); `body` the exact
/// bytes received. Checks the timestamp against `now` (5-minute window both
/// ways, like WeChat Pay) and the signature with the merchant's public key
/// (pick it by `parts.mchid` / `parts.serial_no`).
pub fn verify_request_signature(
    method: &Method,
    url: &str,
    body: &[u8],
    parts: &AuthorizationParts,
    now: Timestamp,
    merchant_key: &RsaPublicKey,
) -> Result<(), VerifyError> {
    let ts = crate::verify::parse_header_timestamp("timestamp", &parts.timestamp)?;
    crate::verify::check_window(ts, now)?;
    let sig = decode_signature(&parts.signature)?;
    let message = raw_request_message(
        method.as_str(),
        url,
        &parts.timestamp,
        &parts.nonce_str,
        body,
    );
    if merchant_key.verify(&message, &sig) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature {
            serial: parts.serial_no.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: u64) -> Timestamp {
        Timestamp::from_unix_secs(s).unwrap()
    }

    #[test]
    fn message_layout() {
        let nonce = Nonce::new("5K8264ILTKCH16CQ2502SI8ZNMTM67VS").unwrap();
        let url = PathAndQuery::from_static("/v3/a?b=c");
        let m = request_message(&Method::POST, &url, ts(1_700_000_000), &nonce, b"");
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "POST\n/v3/a?b=c\n1700000000\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\n\n"
        );
        let m = request_message(&Method::GET, &url, ts(1), &nonce, b"x\n");
        assert!(m.ends_with(b"\nx\n\n"));
    }

    #[test]
    fn parses_any_order_and_whitespace() {
        let p = parse_authorization(
            "WECHATPAY2-SHA256-RSA2048 signature=\"c2ln\", serial_no = \"ABC\",timestamp=\"1700000000\",extra=\"x\",nonce_str=\"N\",mchid=\"1900\"",
        )
        .unwrap();
        assert_eq!(p.mchid, "1900");
        assert_eq!(p.signature, "c2ln");
        assert_eq!(p.serial_no, "ABC");
        assert!(!format!("{p:?}").contains("c2ln"));
    }

    #[test]
    fn parse_errors_are_typed() {
        assert_eq!(
            parse_authorization("Bearer x"),
            Err(AuthorizationError::Scheme)
        );
        assert_eq!(
            parse_authorization("WECHATPAY2-SHA256-RSA2048 mchid=\"1\""),
            Err(AuthorizationError::Missing { name: "nonce_str" })
        );
        assert_eq!(
            parse_authorization("WECHATPAY2-SHA256-RSA2048 mchid=\"1\",mchid=\"2\""),
            Err(AuthorizationError::Duplicate { name: "mchid" })
        );
        assert!(matches!(
            parse_authorization("WECHATPAY2-SHA256-RSA2048 mchid=1"),
            Err(AuthorizationError::Malformed { .. })
        ));
        assert!(matches!(
            parse_authorization("WECHATPAY2-SHA256-RSA2048 mchid=\"1\" nonce_str=\"2\""),
            Err(AuthorizationError::Malformed { .. })
        ));
    }

    proptest! {
        #[test]
        fn message_is_five_fields_with_body_verbatim(
            path in "/[a-zA-Z0-9/_.-]{0,40}",
            secs in 1u64..=9_999_999_999,
            nonce in "[0-9A-Za-z]{32}",
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let url: PathAndQuery = path.parse().unwrap();
            let nonce = Nonce::new(nonce).unwrap();
            let m = request_message(&Method::POST, &url, ts(secs), &nonce, &body);
            prop_assert!(m.ends_with(b"\n"));
            // The first four lines are exactly the four header fields...
            let mut it = m.splitn(5, |b| *b == b'\n');
            prop_assert_eq!(it.next().unwrap(), b"POST");
            prop_assert_eq!(it.next().unwrap(), path.as_bytes());
            let secs_text = secs.to_string();
            prop_assert_eq!(it.next().unwrap(), secs_text.as_bytes());
            prop_assert_eq!(it.next().unwrap(), nonce.as_str().as_bytes());
            // ...and the fifth is the body verbatim plus one terminating '\n'.
            let rest = it.next().unwrap();
            prop_assert_eq!(&rest[..rest.len() - 1], &body[..]);
            prop_assert_eq!(rest.last(), Some(&b'\n'));
            // With a body free of '\n', there are exactly five '\n'-terminated lines.
            if !body.contains(&b'\n') {
                prop_assert_eq!(m.iter().filter(|b| **b == b'\n').count(), 5);
            }
        }

        #[test]
        fn authorization_parser_never_panics(s in ".{0,200}") {
            let _ = parse_authorization(&s);
            let _ = parse_authorization(&format!("{AUTH_SCHEME} {s}"));
        }

        #[test]
        fn authorization_round_trips(
            mchid in "[0-9]{1,32}", nonce in "[0-9A-Za-z]{32}", t in 1u64..=9_999_999_999,
            serial in "[0-9A-F]{1,40}", sig in "[A-Za-z0-9+/=]{1,400}",
        ) {
            let header = format!(
                "{AUTH_SCHEME} mchid=\"{mchid}\",nonce_str=\"{nonce}\",timestamp=\"{t}\",serial_no=\"{serial}\",signature=\"{sig}\""
            );
            let p = parse_authorization(&header).unwrap();
            prop_assert_eq!(p.mchid, mchid);
            prop_assert_eq!(p.nonce_str, nonce);
            prop_assert_eq!(p.timestamp, t.to_string());
            prop_assert_eq!(p.serial_no, serial);
            prop_assert_eq!(p.signature, sig);
        }
    }
}
