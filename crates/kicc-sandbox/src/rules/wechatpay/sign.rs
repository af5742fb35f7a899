//! Layer 3, rules (WeChat Pay Global): signing answers as WeChat Pay does
//! (`Wechatpay-Timestamp`, `-Nonce`, `-Serial`, `-Signature`: SHA256withRSA
//! over `TIMESTAMP\nNONCE\nBODY\n` with the platform key in force), and the
//! deliberately wrong signatures of the signature faults.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::Response;

use super::answer::Answer;
use crate::state::State;
use crate::wechatpay::crypto;
use crate::wechatpay::{WechatpaySettings as Settings, MAX_UNIX_SECS};

/// How far back an `oldTimestamp` fault dates the answer.
const OLD_TIMESTAMP_SECS: i64 = 600;
/// The prefix of WeChat Pay's deliberate bad-signature probes.
const PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";
/// Length of a nonce (`nonce_str`, `Wechatpay-Nonce`).
const NONCE_LEN: usize = 32;
/// The alphabet of nonces and certificate-listing nonces.
pub(crate) const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HEX: &[u8] = b"0123456789ABCDEF";
/// The content type of JSON answers.
const JSON: &str = "application/json; charset=utf-8";

/// How an answer's signature is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signing {
    Normal,
    /// Valid Base64, over the wrong message.
    Bad,
    /// `WECHATPAY/SIGNTEST/...`.
    Probe,
    /// Correct, but dated [`OLD_TIMESTAMP_SECS`] ago.
    Old,
}

fn signature_headers(
    (serial, key): (&str, &crypto::PrivateKey),
    body: &[u8],
    unix: i64,
    nonce: &str,
    signing: Signing,
    probe_tail: &str,
) -> Result<[(&'static str, String); 4], String> {
    if !(0..=MAX_UNIX_SECS).contains(&unix) {
        return Err("the sandbox clock is outside Unix time".into());
    }
    let ts = unix.to_string();
    let signature = match signing {
        Signing::Normal | Signing::Old => {
            key.sign_base64(&crypto::response_message(&ts, nonce, body))?
        }
        Signing::Bad => key.sign_base64(&crypto::response_message(
            &ts,
            nonce,
            b"not the body: signature spoiled by a badSignature fault",
        ))?,
        Signing::Probe => format!("{PROBE_PREFIX}{probe_tail}"),
    };
    Ok([
        ("wechatpay-timestamp", ts),
        ("wechatpay-nonce", nonce.to_owned()),
        ("wechatpay-signature", signature),
        ("wechatpay-serial", serial.to_owned()),
    ])
}

/// The answer as sent: `Request-ID` and the `Wechatpay-*` signature headers
/// (signed at the sandbox's time; an `oldTimestamp` fault dates it back).
pub(crate) fn signed_response(
    st: &mut State,
    settings: &Settings,
    answer: &Answer,
    signing: Signing,
) -> Response<Bytes> {
    let (now, nonce, request_id, probe_tail, signer) = {
        let now = st.unix_now();
        let signer = st
            .platform(settings, now)
            .signer(now)
            .map(|(serial, key)| (serial.to_owned(), key.clone_arc()));
        let rng = &mut st.wx.rng;
        (
            now,
            rng.text(ALNUM, NONCE_LEN),
            rng.text(HEX, 32),
            rng.text(ALNUM, 40),
            signer,
        )
    };
    let unix = if signing == Signing::Old {
        now.saturating_sub(OLD_TIMESTAMP_SECS)
    } else {
        now
    };
    let mut resp = Response::new(answer.body.clone());
    *resp.status_mut() = answer.status;
    let headers = resp.headers_mut();
    if !answer.body.is_empty() {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static("request-id"), v);
    }
    let signed = match &signer {
        Some((serial, key)) => signature_headers(
            (serial, key),
            &answer.body,
            unix,
            &nonce,
            signing,
            &probe_tail,
        ),
        None => Err("no platform key".to_owned()),
    };
    match signed {
        Ok(sig) => {
            for (name, value) in sig {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(HeaderName::from_static(name), v);
                }
            }
        }
        Err(e) => tracing::warn!("revoke answer sent unsigned: {e}"),
    }
    resp
}
