//! Layer 3, rules (WeChat Pay Global): the request checks every endpoint
//! runs, in the documented order: headers, the `Authorization` signature
//! (and the optional nonce replay list), the path ID, the merchant fields.

use http::header::{HeaderMap, HeaderName, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};

use super::answer::{invalid_request, param_error, sign_error, Answer};
use crate::routes::{Head, WxRoute};
use crate::state::State;
use crate::wechatpay::crypto::{self, parse_authorization, AuthParts, SigCheck};
use crate::wechatpay::{WechatpayMerchant, WechatpaySettings as Settings};

/// Longest message excerpt in `detail.sign_information`.
const SIGN_MESSAGE_EXCERPT: usize = 1024;
/// The allowed distance between a signed timestamp and the sandbox's clock.
pub(crate) const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// The media type of a header value, lower case, without parameters.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `User-Agent`, `Accept` and (when a body is sent: `POST`) `Content-Type`,
/// which API v3 requires.
pub(crate) fn check_headers(headers: &HeaderMap, with_body: bool) -> Result<(), Answer> {
    if header_text(headers, http::header::USER_AGENT).is_none() {
        return Err(invalid_request(
            "User-Agent header is required (WeChat Pay API v3 refuses requests without one)",
        ));
    }
    match header_text(headers, ACCEPT) {
        None => {
            return Err(invalid_request(
                "Accept header is required: application/json",
            ))
        }
        Some(accept) => {
            let ok = accept.split(',').any(|m| {
                matches!(
                    media_type(m).as_str(),
                    "application/json" | "application/*" | "*/*"
                )
            });
            if !ok {
                return Err(invalid_request(&format!(
                    "Accept {accept:?} must allow application/json"
                )));
            }
        }
    }
    if !with_body {
        return Ok(());
    }
    match header_text(headers, CONTENT_TYPE) {
        None => Err(invalid_request(
            "Content-Type header is required: application/json",
        )),
        Some(ct) if media_type(ct) != "application/json" => Err(invalid_request(&format!(
            "Content-Type {ct:?} must be application/json"
        ))),
        Some(_) => Ok(()),
    }
}

/// The message the client should have signed, rebuilt from what it sent.
fn sign_information(head: &Head, parts: &AuthParts, body: &[u8]) -> Value {
    let message = crypto::request_message(
        head.method.as_str(),
        &head.target,
        &parts.timestamp,
        &parts.nonce_str,
        body,
    );
    let excerpt: String = String::from_utf8_lossy(&message)
        .chars()
        .take(SIGN_MESSAGE_EXCERPT)
        .collect();
    json!({
        "method": head.method.as_str(),
        "url": head.target,
        "sign_message_length": message.len(),
        "truncated_sign_message": excerpt,
    })
}

/// `Authorization`: who calls, with which certificate, and a signature that
/// verifies within 5 minutes of the sandbox's clock. Returns the parts.
pub(crate) fn check_signature(
    settings: &Settings,
    head: &Head,
    body: &[u8],
    now: i64,
) -> Result<AuthParts, Answer> {
    let Some(raw) = head.headers.get(AUTHORIZATION) else {
        return Err(sign_error(
            "Authorization",
            None,
            "header is missing (WECHATPAY2-SHA256-RSA2048 mchid=...,nonce_str=...,timestamp=...,serial_no=...,signature=...)",
            None,
        ));
    };
    let text = raw
        .to_str()
        .map_err(|_| sign_error("Authorization", None, "must be visible ASCII", None))?;
    let parts = parse_authorization(text)
        .map_err(|issue| sign_error("Authorization", None, &issue, None))?;
    let info = sign_information(head, &parts, body);
    let caller = settings.merchant.caller_mchid();
    if parts.mchid != caller {
        return Err(sign_error(
            "mchid",
            Some(&parts.mchid),
            &format!("is not a merchant of this sandbox (it serves {caller})"),
            Some(info),
        ));
    }
    let serial = settings.merchant_serial.as_str();
    if !parts.serial_no.eq_ignore_ascii_case(serial) {
        return Err(sign_error(
            "serial_no",
            Some(&parts.serial_no),
            &format!("names no API certificate of merchant {caller} (the sandbox holds {serial})"),
            Some(info),
        ));
    }
    let Some(ts) = crypto::parse_timestamp(&parts.timestamp) else {
        return Err(sign_error(
            "timestamp",
            Some(&parts.timestamp),
            "must be decimal Unix seconds (at most 10 digits)",
            Some(info),
        ));
    };
    if ts.abs_diff(now) > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return Err(sign_error(
            "timestamp",
            Some(&parts.timestamp),
            &format!(
                "{ts} is more than {MAX_CLOCK_SKEW_SECS} s away from the sandbox's time {now} (Unix seconds, not milliseconds)"
            ),
            Some(info),
        ));
    }
    let message = crypto::request_message(
        head.method.as_str(),
        &head.target,
        &parts.timestamp,
        &parts.nonce_str,
        body,
    );
    match settings.merchant_key.verify(&message, &parts.signature) {
        Ok(()) => Ok(parts),
        Err(SigCheck::NotBase64) => Err(sign_error(
            "signature",
            None,
            "is not valid Base64",
            Some(info),
        )),
        Err(SigCheck::Mismatch) => Err(sign_error(
            "signature",
            None,
            &format!(
                "does not verify with the public key of certificate {serial}: sign exactly METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n (see sign_information) with SHA256withRSA"
            ),
            Some(info),
        )),
    }
}

/// The path parameter, percent-decoded and checked (`string(32)`).
pub(crate) fn decode_id(route: &WxRoute) -> Result<String, Answer> {
    let field = route.key.field();
    let id = percent_decode_str(&route.raw_id)
        .decode_utf8()
        .map_err(|_| {
            param_error(
                field,
                &route.raw_id,
                "is not valid UTF-8 once percent-decoded",
                "path",
            )
        })?
        .into_owned();
    let count = id.chars().count();
    if count == 0 {
        return Err(param_error(field, &id, "must not be empty", "path"));
    }
    if count > 32 {
        return Err(param_error(
            field,
            &id,
            &format!("must be at most 32 characters (string(32)), got {count}"),
            "path",
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(param_error(
            field,
            &id,
            "must not contain control characters",
            "path",
        ));
    }
    Ok(id)
}

/// A body ID field: present, a string of 1 to 32 characters.
fn body_id<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    location: &str,
) -> Result<&'a str, Answer> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(param_error(field, "", "is required", location)),
        Some(Value::String(s)) => {
            let count = s.chars().count();
            if count == 0 {
                Err(param_error(field, s, "must not be empty", location))
            } else if count > 32 {
                Err(param_error(
                    field,
                    s,
                    &format!("must be at most 32 characters (string(32)), got {count}"),
                    location,
                ))
            } else if s.chars().any(char::is_control) {
                Err(param_error(
                    field,
                    s,
                    "must not contain control characters",
                    location,
                ))
            } else {
                Ok(s)
            }
        }
        Some(other) => Err(param_error(
            field,
            &other.to_string(),
            "must be a string",
            location,
        )),
    }
}

/// The body names the configured merchant, in the configured mode.
pub(crate) fn check_body(settings: &Settings, body: &[u8]) -> Result<(), Answer> {
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => obj,
        _ => {
            let excerpt: String = String::from_utf8_lossy(body).chars().take(64).collect();
            return Err(param_error(
                "body",
                &excerpt,
                "must be a JSON object",
                "body",
            ));
        }
    };
    check_ids(settings, &obj, "body")
}

/// The merchant fields (`mchid`, or `sp_mchid` and `sub_mchid`) of a body or
/// query name the configured merchant, in the configured mode.
pub(crate) fn check_ids(
    settings: &Settings,
    obj: &Map<String, Value>,
    location: &str,
) -> Result<(), Answer> {
    let has = |f: &str| obj.get(f).is_some_and(|v| !v.is_null());
    let institutional = has("sp_mchid") || has("sub_mchid");
    if has("mchid") && institutional {
        return Err(param_error(
            "mchid",
            "",
            "must not be sent with sp_mchid/sub_mchid (common mode sends mchid, institutional mode sp_mchid and sub_mchid)",
            location,
        ));
    }
    let configured = &settings.merchant;
    let wants_institutional = match (has("mchid"), institutional) {
        (true, _) => false,
        (false, true) => true,
        (false, false) => matches!(configured, WechatpayMerchant::Institutional { .. }),
    };
    if wants_institutional {
        let sp = body_id(obj, "sp_mchid", location)?;
        let sub = body_id(obj, "sub_mchid", location)?;
        match configured {
            WechatpayMerchant::Institutional {
                sp_mchid,
                sub_mchid,
            } => {
                if sp != sp_mchid {
                    return Err(invalid_request(&format!(
                        "sp_mchid {sp} is not the calling institution {sp_mchid} (no permission)"
                    )));
                }
                if sub != sub_mchid {
                    return Err(invalid_request(&format!(
                        "sub_mchid {sub} is not a sub-merchant of {sp_mchid} (no permission)"
                    )));
                }
                Ok(())
            }
            WechatpayMerchant::Common { mchid } => Err(invalid_request(&format!(
                "merchant {mchid} calls in common mode: send mchid, not sp_mchid/sub_mchid (no permission for institutional mode)"
            ))),
        }
    } else {
        let got = body_id(obj, "mchid", location)?;
        match configured {
            WechatpayMerchant::Common { mchid } => {
                if got == mchid {
                    Ok(())
                } else {
                    Err(invalid_request(&format!(
                        "mchid {got} is not the calling merchant {mchid} (no permission)"
                    )))
                }
            }
            WechatpayMerchant::Institutional { sp_mchid, .. } => Err(invalid_request(&format!(
                "institution {sp_mchid} calls in institutional mode: send sp_mchid and sub_mchid, not mchid"
            ))),
        }
    }
}

/// With [`WechatpayConfig::reject_replayed_nonce`](crate::WechatpayConfig::reject_replayed_nonce) (inferred behaviour): a
/// `(mchid, nonce_str)` accepted within the signature window is refused.
pub(crate) fn check_replay(
    settings: &Settings,
    st: &mut State,
    parts: &AuthParts,
    now: i64,
) -> Result<(), Answer> {
    if !settings.reject_replayed_nonce {
        return Ok(());
    }
    if st
        .wx
        .nonce_seen(&parts.mchid, &parts.nonce_str, now, MAX_CLOCK_SKEW_SECS)
    {
        return Err(sign_error(
            "nonce_str",
            Some(&parts.nonce_str),
            "was already used within the last 5 minutes (replay refused: sandbox setting reject_replayed_nonce)",
            None,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{wechatpay_route, PREFIX_BY_ID, PREFIX_BY_OUT_TRADE_NO, SUFFIX};
    use crate::wechatpay::WechatpayConfig;
    use http::{HeaderValue, Method};
    use proptest::prelude::*;

    #[test]
    fn decodes_and_checks_the_id() {
        let id = |raw: &str| {
            decode_id(&wechatpay_route(&format!("{PREFIX_BY_OUT_TRADE_NO}{raw}{SUFFIX}")).unwrap())
        };
        assert_eq!(id("%E8%AE%A2%E5%8D%95%201%2F2").unwrap(), "订单 1/2");
        assert_eq!(id(&"%E8%AE%A2".repeat(32)).unwrap().chars().count(), 32);
        for bad in ["", "%FF", "%0A", &"a".repeat(33)] {
            let a = id(bad).unwrap_err();
            assert_eq!(a.code.as_deref(), Some("PARAM_ERROR"), "{bad}");
            let v: Value = serde_json::from_slice(&a.body).unwrap();
            assert_eq!(v["detail"]["field"], "out_trade_no");
            assert_eq!(v["detail"]["location"], "path");
        }
    }

    #[test]
    fn header_rules() {
        let mut h = HeaderMap::new();
        let code = |h: &HeaderMap| check_headers(h, true).err().and_then(|a| a.code);
        assert_eq!(code(&h).as_deref(), Some("INVALID_REQUEST"));
        h.insert(http::header::USER_AGENT, HeaderValue::from_static("t/1"));
        h.insert(ACCEPT, HeaderValue::from_static("text/html"));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert_eq!(code(&h).as_deref(), Some("INVALID_REQUEST"));
        h.insert(ACCEPT, HeaderValue::from_static("text/html, */*;q=0.1"));
        assert_eq!(code(&h), None);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(code(&h).as_deref(), Some("INVALID_REQUEST"));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert_eq!(code(&h), None);
    }

    fn settings() -> &'static Settings {
        static S: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();
        S.get_or_init(|| {
            WechatpayConfig::default()
                .load()
                .expect("sandbox keys load")
        })
    }

    #[test]
    fn body_rules() {
        let s = settings();
        assert_eq!(check_body(s, br#"{"mchid":"1900000109"}"#), Ok(()));
        let inst = Settings {
            merchant: WechatpayMerchant::sandbox_institutional(),
            ..WechatpayConfig::default().load().unwrap()
        };
        assert_eq!(
            check_body(
                &inst,
                br#"{"sp_mchid":"1900000109","sub_mchid":"1900000100"}"#
            ),
            Ok(())
        );
        // Neither mode's fields: the configured mode's first field is missing.
        let err = check_body(&inst, b"{}").unwrap_err();
        let v: Value = serde_json::from_slice(&err.body).unwrap();
        assert_eq!(v["detail"]["field"], "sp_mchid");
        assert_eq!(
            check_body(&inst, br#"{"mchid":"1900000109"}"#)
                .unwrap_err()
                .code
                .as_deref(),
            Some("INVALID_REQUEST")
        );
    }

    proptest! {
        #[test]
        fn body_and_signature_checks_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            auth in "\\PC{0,200}",
            target in "/[ -~]{0,60}",
        ) {
            let s = settings();
            let _ = check_body(s, &body);
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&auth) {
                headers.insert(AUTHORIZATION, v);
            }
            let head = Head { method: Method::POST, target, headers };
            prop_assert!(check_signature(s, &head, &body, 1_700_000_000).is_err());
        }

        #[test]
        fn json_bodies_get_a_typed_answer(
            fields in proptest::collection::vec(
                (
                    prop_oneof![Just("mchid"), Just("sp_mchid"), Just("sub_mchid"), Just("x")],
                    prop_oneof![
                        Just(Value::Null),
                        any::<i64>().prop_map(Value::from),
                        "\\PC{0,40}".prop_map(Value::from),
                        Just(json!({"a": [1]})),
                    ],
                ),
                0..4,
            )
        ) {
            let obj: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let body = Value::Object(obj).to_string();
            if let Err(a) = check_body(settings(), body.as_bytes()) {
                let code = a.code.unwrap_or_default();
                prop_assert!(code == "PARAM_ERROR" || code == "INVALID_REQUEST", "{}", code);
            }
        }

        #[test]
        fn routing_and_decoding_never_panic(path in "\\PC{0,80}") {
            if let Some(r) = wechatpay_route(&path) {
                let _ = decode_id(&r);
            }
            let p = format!("{PREFIX_BY_ID}{path}{SUFFIX}");
            if let Some(r) = wechatpay_route(&p) {
                let _ = decode_id(&r);
            }
        }

        #[test]
        fn header_checks_never_panic(values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 3)) {
            let mut h = HeaderMap::new();
            for (name, v) in [http::header::USER_AGENT, ACCEPT, CONTENT_TYPE].into_iter().zip(values) {
                if let Ok(v) = HeaderValue::from_bytes(&v) {
                    h.insert(name, v);
                }
            }
            let _ = check_headers(&h, true);
        }
    }
}
