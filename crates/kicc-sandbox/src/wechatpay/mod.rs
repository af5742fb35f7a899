//! WeChat Pay Global's revoke ("reverse") endpoint, API v3 style: RSA
//! signatures on requests and answers, JSON errors `{code, message, detail?}`,
//! HTTP 204 on success. The rules are documented in the crate docs.
//!
//! Signing and verification are the sandbox's own ([`crypto`]: message
//! builders, a strict `Authorization` parser, `ring`), written from the API
//! pages independently of `wechatpay-direct`, like the rules, the checks'
//! order and the answers.

mod config;
mod crypto;
mod keys;
mod orders;
mod platform;
mod query;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub(crate) use config::Settings;
pub use config::{ApiV3KeyText, PrivateKeyPem, SecondRevoke, WechatpayConfig, WechatpayMerchant};
use crypto::{parse_authorization, AuthParts, SigCheck};
pub use keys::{
    DEFAULT_WECHATPAY_MCHID, DEFAULT_WECHATPAY_SUB_MCHID, SANDBOX_APIV3_KEY,
    SANDBOX_MERCHANT_CERTIFICATE_PEM, SANDBOX_MERCHANT_PRIVATE_KEY_PEM,
    SANDBOX_MERCHANT_PUBLIC_KEY_PEM, SANDBOX_MERCHANT_SERIAL_NO, SANDBOX_PLATFORM_CERTIFICATE_PEM,
    SANDBOX_PLATFORM_CERTIFICATE_SERIAL, SANDBOX_PLATFORM_PRIVATE_KEY_PEM,
    SANDBOX_PLATFORM_PUBLIC_KEY_ID, SANDBOX_PLATFORM_PUBLIC_KEY_PEM,
    SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM,
};
pub use orders::{NewWechatpayOrder, PaidAt, WechatpayRequestRecord};
pub(crate) use orders::{WxOrderRec, WxState};

use crate::model::{Channel, Currency, FaultKind, Payment};
use crate::server::{json_error, respond, DropConnection, SandboxHandle, Shared, JSON};
use crate::SandboxError;
use orders::{MAX_UNIX_SECS, REVOKE_WINDOW_SECS};

/// Path template of revoke by WeChat Pay order number. As a fault `path` it
/// hits every revoke by `transaction_id`.
pub const WECHATPAY_REVERSE_BY_ID_PATH: &str =
    "/v3/global/micropay/transactions/id/{transaction_id}/reverse";
/// Path template of revoke by merchant order number. As a fault `path` it hits
/// every revoke by `out_trade_no`.
pub const WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH: &str =
    "/v3/global/micropay/transactions/out-trade-no/{out_trade_no}/reverse";

/// Path template of the order query by WeChat Pay order number (`GET`, with
/// `?mchid=` or `?sub_mchid=&sp_mchid=`). As a fault `path` it hits every
/// query by `transaction_id`.
pub const WECHATPAY_QUERY_BY_ID_PATH: &str = "/v3/global/transactions/id/{transaction_id}";
/// Path template of the order query by merchant order number. As a fault
/// `path` it hits every query by `out_trade_no`.
pub const WECHATPAY_QUERY_BY_OUT_TRADE_NO_PATH: &str =
    "/v3/global/transactions/out-trade-no/{out_trade_no}";

/// The platform certificates download (`GET`, no parameters).
pub const WECHATPAY_CERTIFICATES_PATH: &str = "/v3/global/certificates";
/// The admin call that rotates the sandbox's platform certificate (`POST`).
pub const WECHATPAY_ROTATE_PATH: &str = "/sandbox/wechatpay/rotate";
/// The admin call that sets the `trade_state` the order query reports (`POST`).
pub const WECHATPAY_TRADE_STATE_PATH: &str = "/sandbox/wechatpay/trade-state";

const QUERY_PREFIX_BY_ID: &str = "/v3/global/transactions/id/";
const QUERY_PREFIX_BY_OUT_TRADE_NO: &str = "/v3/global/transactions/out-trade-no/";
const PREFIX_BY_ID: &str = "/v3/global/micropay/transactions/id/";
const PREFIX_BY_OUT_TRADE_NO: &str = "/v3/global/micropay/transactions/out-trade-no/";
const SUFFIX: &str = "/reverse";

/// How far back an `oldTimestamp` fault dates the answer.
const OLD_TIMESTAMP_SECS: i64 = 600;
/// Longest message excerpt in `detail.sign_information`.
const SIGN_MESSAGE_EXCERPT: usize = 1024;
/// The allowed distance between a signed timestamp and the sandbox's clock.
const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// The prefix of WeChat Pay's deliberate bad-signature probes.
const PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";
/// Length of a nonce (`nonce_str`, `Wechatpay-Nonce`).
const NONCE_LEN: usize = 32;
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HEX: &[u8] = b"0123456789ABCDEF";

type Resp = Response<Full<Bytes>>;

/// Which of the two path forms a revoke used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrderKey {
    TransactionId,
    OutTradeNo,
}

impl OrderKey {
    /// The path parameter's name, as the page and errors name it.
    fn field(self) -> &'static str {
        match self {
            Self::TransactionId => "transaction_id",
            Self::OutTradeNo => "out_trade_no",
        }
    }
}

/// What a WeChat Pay request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `POST .../micropay/transactions/.../reverse`.
    Revoke,
    /// `GET /v3/global/transactions/...`.
    Query,
    /// `GET /v3/global/certificates`.
    Certificates,
    /// `POST /sandbox/wechatpay/rotate` (admin, unsigned).
    Rotate,
    /// `POST /sandbox/wechatpay/trade-state` (admin, unsigned).
    SetTradeState,
}

/// A request path of the WeChat Pay endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WxRoute {
    op: Op,
    key: OrderKey,
    /// The id segment as sent (still percent-encoded).
    raw_id: String,
    /// The path as sent, without the query (the concrete fault key).
    path: String,
}

impl WxRoute {
    /// The method the endpoint takes, and the `Allow` header for others.
    pub(crate) fn allowed(&self) -> (Method, &'static str) {
        match self.op {
            Op::Revoke | Op::Rotate | Op::SetTradeState => (Method::POST, "POST"),
            Op::Query | Op::Certificates => (Method::GET, "GET"),
        }
    }

    /// The path template (also the fault key for every order of this form).
    fn template(&self) -> &'static str {
        match (self.op, self.key) {
            (Op::Revoke, OrderKey::TransactionId) => WECHATPAY_REVERSE_BY_ID_PATH,
            (Op::Revoke, OrderKey::OutTradeNo) => WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH,
            (Op::Query, OrderKey::TransactionId) => WECHATPAY_QUERY_BY_ID_PATH,
            (Op::Query, OrderKey::OutTradeNo) => WECHATPAY_QUERY_BY_OUT_TRADE_NO_PATH,
            (Op::Certificates, _) => WECHATPAY_CERTIFICATES_PATH,
            (Op::Rotate, _) => WECHATPAY_ROTATE_PATH,
            (Op::SetTradeState, _) => WECHATPAY_TRADE_STATE_PATH,
        }
    }
}

/// Matches `/v3/global/micropay/transactions/{id|out-trade-no}/{segment}/reverse`
/// (revoke) and `/v3/global/transactions/{id|out-trade-no}/{segment}` (query)
/// where the segment holds no `/` (an encoded `%2F` is fine). `path` has no query.
pub(crate) fn route(path: &str) -> Option<WxRoute> {
    let order = |op, key, raw_id: &str| {
        (!raw_id.contains('/')).then(|| WxRoute {
            op,
            key,
            raw_id: raw_id.to_owned(),
            path: path.to_owned(),
        })
    };
    let whole = |op| {
        Some(WxRoute {
            op,
            key: OrderKey::OutTradeNo,
            raw_id: String::new(),
            path: path.to_owned(),
        })
    };
    if path == WECHATPAY_CERTIFICATES_PATH {
        return whole(Op::Certificates);
    }
    if path == WECHATPAY_ROTATE_PATH {
        return whole(Op::Rotate);
    }
    if path == WECHATPAY_TRADE_STATE_PATH {
        return whole(Op::SetTradeState);
    }
    if let Some(rest) = path.strip_prefix(QUERY_PREFIX_BY_ID) {
        return order(Op::Query, OrderKey::TransactionId, rest);
    }
    if let Some(rest) = path.strip_prefix(QUERY_PREFIX_BY_OUT_TRADE_NO) {
        return order(Op::Query, OrderKey::OutTradeNo, rest);
    }
    let (key, rest) = if let Some(rest) = path.strip_prefix(PREFIX_BY_ID) {
        (OrderKey::TransactionId, rest)
    } else {
        (
            OrderKey::OutTradeNo,
            path.strip_prefix(PREFIX_BY_OUT_TRADE_NO)?,
        )
    };
    order(Op::Revoke, key, rest.strip_suffix(SUFFIX)?)
}

/// Whether `path` names a WeChat Pay endpoint (a template or a concrete path).
pub(crate) fn is_fault_path(path: &str) -> bool {
    route(path).is_some_and(|r| !matches!(r.op, Op::Rotate | Op::SetTradeState))
}

/// Which fault kinds apply where; `(field, rule)` on a misfit.
pub(crate) fn check_fault_kind(
    kind: &FaultKind,
    on_wechatpay: bool,
) -> Result<(), (&'static str, String)> {
    match kind {
        FaultKind::Timeout | FaultKind::Http500 | FaultKind::Drop => Ok(()),
        FaultKind::ResCd(_)
        | FaultKind::WithholdWebhook
        | FaultKind::WechatFail { .. }
        | FaultKind::WechatVoid => {
            if on_wechatpay {
                Err((
                    "kind",
                    format!(
                        "{} applies only to the KICC endpoints; on the WeChat Pay revoke path use code",
                        kind.name()
                    ),
                ))
            } else {
                Ok(())
            }
        }
        FaultKind::BadSignature
        | FaultKind::SignatureProbe
        | FaultKind::OldTimestamp
        | FaultKind::WechatpayCode { .. }
            if !on_wechatpay =>
        {
            Err((
                "kind",
                format!(
                    "{} applies only to the WeChat Pay revoke paths ({WECHATPAY_REVERSE_BY_ID_PATH}, {WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH})",
                    kind.name()
                ),
            ))
        }
        FaultKind::WechatpayCode { code, http_status } => {
            let shape_ok = (1..=32).contains(&code.len())
                && code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !shape_ok {
                return Err((
                    "code",
                    "must be 1 to 32 characters from A-Z, 0-9 and _ (e.g. SYSTEM_ERROR)".to_owned(),
                ));
            }
            if http_status.is_some_and(|s| !(400..=599).contains(&s)) {
                return Err((
                    "httpStatus",
                    "must be an error status, 400 to 599".to_owned(),
                ));
            }
            Ok(())
        }
        FaultKind::BadSignature | FaultKind::SignatureProbe | FaultKind::OldTimestamp => Ok(()),
    }
}

/// What the endpoint needs of the request besides its body.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    method: Method,
    /// Path and query as received: the signed canonical URL.
    target: String,
    headers: HeaderMap,
}

impl Head {
    pub(crate) fn from_request<B>(req: &Request<B>) -> Self {
        Self {
            method: req.method().clone(),
            target: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned()),
            headers: req.headers().clone(),
        }
    }
}

/// An answer before signing.
#[derive(Clone, Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    body: Bytes,
    code: Option<String>,
}

impl Answer {
    fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: Bytes::new(),
            code: None,
        }
    }

    fn error(status: StatusCode, code: &str, message: &str, detail: Option<Value>) -> Self {
        let mut out = Map::new();
        out.insert("code".into(), code.into());
        out.insert("message".into(), message.into());
        if let Some(d) = detail {
            out.insert("detail".into(), d);
        }
        Self {
            status,
            body: Bytes::from(Value::Object(out).to_string()),
            code: Some(code.to_owned()),
        }
    }
}

fn param_error(field: &str, value: &str, issue: &str, location: &str) -> Answer {
    Answer::error(
        StatusCode::BAD_REQUEST,
        "PARAM_ERROR",
        &format!("Parameter error: {field} {issue}"),
        Some(json!({"field": field, "value": value, "issue": issue, "location": location})),
    )
}

fn invalid_request(message: &str) -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message, None)
}

fn sign_error(field: &str, value: Option<&str>, issue: &str, info: Option<Value>) -> Answer {
    let mut detail = Map::new();
    detail.insert("field".into(), field.into());
    if let Some(v) = value {
        detail.insert("value".into(), v.into());
    }
    detail.insert("issue".into(), issue.into());
    detail.insert("location".into(), "header".into());
    if let Some(info) = info {
        detail.insert("sign_information".into(), info);
    }
    Answer::error(
        StatusCode::UNAUTHORIZED,
        "SIGN_ERROR",
        &format!("Signature error, check it and try again: {field} {issue}"),
        Some(Value::Object(detail)),
    )
}

/// The usual HTTP status of an error code (WeChat Pay Global's HTTP status
/// table; the revoke page gives none).
fn status_for(code: &str) -> StatusCode {
    match code {
        "SYSTEM_ERROR" => StatusCode::INTERNAL_SERVER_ERROR,
        "SIGN_ERROR" => StatusCode::UNAUTHORIZED,
        "TRADE_ERROR" | "NO_AUTH" => StatusCode::FORBIDDEN,
        "ORDER_NOT_EXIST" => StatusCode::NOT_FOUND,
        "RATE_LIMITED" | "FREQUENCY_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        "BANK_ERROR" => StatusCode::BAD_GATEWAY,
        "SERVICE_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The answer of a `code` fault.
fn code_answer(code: &str, http_status: Option<u16>) -> Answer {
    let status = http_status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or_else(|| status_for(code));
    let message = match code {
        "SYSTEM_ERROR" => "System error: query the order to learn its state, then decide (sandbox fault)",
        "TRADE_ERROR" => "Order error: the user account is abnormal or under risk control (sandbox fault)",
        "INVALID_REQUEST" => "Invalid request: check merchant permissions, repeated payment requests, the certificate and the rate limit (sandbox fault)",
        "INVALID_TRANSACTIONID" => "Invalid transaction_id (sandbox fault)",
        "REVERSE_EXPIRE" => "The order cannot be revoked: it is past the revoke period (sandbox fault)",
        "PARAM_ERROR" => "Parameter error (sandbox fault)",
        "SIGN_ERROR" => "Signature error (sandbox fault)",
        _ => "Simulated WeChat Pay error (sandbox fault)",
    };
    let detail = (code == "PARAM_ERROR").then(|| {
        json!({"field": "fault", "value": "", "issue": "injected by the sandbox", "location": "body"})
    });
    Answer::error(status, code, message, detail)
}

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
fn check_headers(headers: &HeaderMap, with_body: bool) -> Result<(), Answer> {
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
fn check_signature(
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
fn decode_id(route: &WxRoute) -> Result<String, Answer> {
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
fn check_body(settings: &Settings, body: &[u8]) -> Result<(), Answer> {
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
fn check_ids(settings: &Settings, obj: &Map<String, Value>, location: &str) -> Result<(), Answer> {
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

/// Finds the order and applies the revoke rules.
fn revoke(
    st: &mut crate::state::State,
    settings: &Settings,
    key: OrderKey,
    id: &str,
    now: i64,
) -> Answer {
    let not_found = || match key {
        OrderKey::TransactionId => Answer::error(
            StatusCode::BAD_REQUEST,
            "INVALID_TRANSACTIONID",
            &format!("Invalid transaction_id: no order {id}"),
            None,
        ),
        OrderKey::OutTradeNo => param_error(
            "out_trade_no",
            id,
            "names no order of this merchant",
            "path",
        ),
    };
    let index = match key {
        OrderKey::TransactionId => &st.wx.by_transaction_id,
        OrderKey::OutTradeNo => &st.wx.by_out_trade_no,
    };
    let Some(pg_cno) = index.get(id).cloned() else {
        return not_found();
    };
    let Some(p) = st.payments.get_mut(&pg_cno) else {
        return not_found();
    };
    let Some(wx) = p.wechatpay.as_mut() else {
        return not_found();
    };
    if wx.revoked_at.is_some() {
        // Inferred (the page is silent): see `SecondRevoke`.
        return match settings.second_revoke {
            SecondRevoke::Succeed => {
                wx.reverse_calls = wx.reverse_calls.saturating_add(1);
                Answer::no_content()
            }
            SecondRevoke::Error => invalid_request(
                "The order has already been revoked (sandbox setting second_revoke: Error)",
            ),
        };
    }
    let age = now.saturating_sub(wx.paid_at);
    if age > REVOKE_WINDOW_SECS {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "REVERSE_EXPIRE",
            &format!(
                "The order cannot be revoked: it was paid {age} s ago, past the 7-day ({REVOKE_WINDOW_SECS} s) revoke period; refund it instead"
            ),
            None,
        );
    }
    wx.revoked_at = Some(now);
    wx.reported_state = None;
    wx.reverse_calls = wx.reverse_calls.saturating_add(1);
    p.remaining = 0;
    p.reserved = 0;
    Answer::no_content()
}

/// Processes one request atomically: every check in order, then the rules.
fn process(shared: &Shared, route: &WxRoute, head: &Head, body: &[u8]) -> Answer {
    match route.op {
        Op::Revoke => process_revoke(shared, route, head, body),
        Op::Query => query::process(shared, route, head, body),
        Op::Certificates => process_certificates(shared, head, body),
        // Handled before any fault or check (an admin call).
        Op::Rotate | Op::SetTradeState => Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "not a WeChat Pay API",
            None,
        ),
    }
}

/// The certificates download: the query's header and signature checks, then
/// the listing, each certificate encrypted with the API v3 key.
fn process_certificates(shared: &Shared, head: &Head, body: &[u8]) -> Answer {
    let settings = &shared.wechatpay;
    let mut st = shared.lock();
    let now = st.unix_now();
    let checked = check_headers(&head.headers, false)
        .and_then(|()| check_signature(settings, head, body, now))
        .and_then(|parts| check_replay(settings, &mut st, &parts, now));
    if let Err(answer) = checked {
        return answer;
    }
    let wx = &mut st.wx;
    let set = wx
        .platform
        .get_or_insert_with(|| platform::PlatformSet::new(settings, now));
    let rng = &mut wx.rng;
    match set.listing(settings.apiv3_key.bytes(), now, || rng.text(ALNUM, 12)) {
        Ok(listing) => Answer {
            status: StatusCode::OK,
            body: Bytes::from(listing.to_string()),
            code: None,
        },
        Err(e) => Answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SYSTEM_ERROR",
            &format!("the sandbox could not encrypt its certificates: {e}"),
            None,
        ),
    }
}

/// `POST /sandbox/wechatpay/rotate` `{"switchAfterSeconds"?, "keepOldSeconds"?}`.
fn rotate_admin(shared: &Shared, body: &[u8]) -> Resp {
    let obj = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => o,
            _ => return json_error(StatusCode::BAD_REQUEST, "body must be a JSON object"),
        }
    };
    let secs = |name: &str, default: i64| match obj.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| i64::try_from(n).ok())
            .filter(|n| *n <= 10 * 365 * 86_400)
            .ok_or(format!(
                "{name} must be a non-negative integer of seconds (at most 10 years)"
            )),
    };
    let (switch_after, keep_old) = match (
        secs("switchAfterSeconds", 0),
        secs("keepOldSeconds", 86_400),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    match shared.rotate_platform(switch_after, keep_old) {
        Ok(r) => respond(
            StatusCode::OK,
            JSON,
            Bytes::from(
                json!({
                    "serialNo": r.serial,
                    "previousSerialNo": r.previous,
                    "switchAt": r.switch_at,
                    "previousDelistedAt": r.previous_delisted_at,
                })
                .to_string(),
            ),
        ),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// `POST /sandbox/wechatpay/trade-state` `{"transactionId"|"outTradeNo", "tradeState"}`.
fn trade_state_admin(shared: &Shared, body: &[u8]) -> Resp {
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o,
        _ => return json_error(StatusCode::BAD_REQUEST, "body must be a JSON object"),
    };
    let text = |name: &str| obj.get(name).and_then(Value::as_str);
    let Some(id) = text("transactionId").or_else(|| text("outTradeNo")) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "transactionId or outTradeNo (a string) is required",
        );
    };
    let Some(state) = text("tradeState") else {
        return json_error(StatusCode::BAD_REQUEST, "tradeState (a string) is required");
    };
    match shared.set_trade_state(id, state) {
        Ok(()) => respond(
            StatusCode::OK,
            JSON,
            Bytes::from(json!({"id": id, "tradeState": state}).to_string()),
        ),
        Err(e @ SandboxError::InvalidPayment { field: "id", .. }) => {
            json_error(StatusCode::NOT_FOUND, &e.to_string())
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// The `trade_state` values the order query may be told to report.
const REPORTABLE_STATES: [&str; 7] = [
    "SUCCESS",
    "REFUND",
    "NOTPAY",
    "CLOSED",
    "REVOKED",
    "USERPAYING",
    "PAYERROR",
];

impl Shared {
    /// See [`SandboxHandle::set_wechatpay_trade_state`].
    pub(crate) fn set_trade_state(&self, id: &str, state: &str) -> Result<(), SandboxError> {
        let valid =
            REPORTABLE_STATES.contains(&state) || (state.starts_with("X_") && state.len() <= 32);
        if !valid {
            return Err(SandboxError::InvalidPayment {
                field: "tradeState",
                rule: format!(
                    "must be one of {} (or X_... for a state no client knows), got {state:?}",
                    REPORTABLE_STATES.join(", ")
                ),
            });
        }
        let mut st = self.lock();
        let not_found = || SandboxError::InvalidPayment {
            field: "id",
            rule: format!("names no WeChat Pay order: {id:?}"),
        };
        let pg = st
            .wechatpay_pg_cno(id)
            .map(str::to_owned)
            .ok_or_else(not_found)?;
        let wx = st
            .payments
            .get_mut(&pg)
            .and_then(|p| p.wechatpay.as_mut())
            .ok_or_else(not_found)?;
        wx.reported_state = Some(state.to_owned());
        Ok(())
    }

    /// Rotates the platform certificate (see [`SandboxHandle::rotate_wechatpay_platform`]).
    pub(crate) fn rotate_platform(
        &self,
        switch_after: i64,
        keep_old: i64,
    ) -> Result<platform::Rotated, String> {
        let settings = &self.wechatpay;
        let mut st = self.lock();
        let now = st.unix_now();
        st.wx
            .platform
            .get_or_insert_with(|| platform::PlatformSet::new(settings, now))
            .rotate(settings, now, switch_after, keep_old)
    }
}

/// One revoke: every check in order, then the revoke rules.
fn process_revoke(shared: &Shared, route: &WxRoute, head: &Head, body: &[u8]) -> Answer {
    let settings = &shared.wechatpay;
    let mut st = shared.lock();
    let now = st.unix_now();
    let checked = check_headers(&head.headers, true)
        .and_then(|()| check_signature(settings, head, body, now))
        .and_then(|parts| check_replay(settings, &mut st, &parts, now))
        .and_then(|()| decode_id(route))
        .and_then(|id| check_body(settings, body).map(|()| id));
    match checked {
        Ok(id) => revoke(&mut st, settings, route.key, &id, now),
        Err(answer) => answer,
    }
}

/// With [`WechatpayConfig::reject_replayed_nonce`] (inferred behaviour): a
/// `(mchid, nonce_str)` accepted within the signature window is refused.
fn check_replay(
    settings: &Settings,
    st: &mut crate::state::State,
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

/// How an answer's signature is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signing {
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

/// Signs and sends an answer.
fn signed_response(shared: &Shared, answer: &Answer, signing: Signing) -> Resp {
    let (now, nonce, request_id, probe_tail, signer) = {
        let mut st = shared.lock();
        let now = st.unix_now();
        let settings = &shared.wechatpay;
        let signer = st
            .wx
            .platform
            .get_or_insert_with(|| platform::PlatformSet::new(settings, now))
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
    let mut resp = Response::new(Full::new(answer.body.clone()));
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

/// What the request log records before the outcome is known.
struct LogDraft {
    at: i64,
    path: String,
    order_field: &'static str,
    order_id: String,
    auth: Option<AuthParts>,
    request_sha256: String,
    body: String,
    fault: Option<&'static str>,
}

impl LogDraft {
    fn new(
        at: i64,
        route: &WxRoute,
        head: &Head,
        body: &[u8],
        fault: Option<&'static str>,
    ) -> Self {
        let auth_text = head
            .headers
            .get(AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let mut hash = Sha256::new();
        for part in [
            head.method.as_str().as_bytes(),
            head.target.as_bytes(),
            auth_text,
            body,
        ] {
            hash.update(part);
            hash.update(b"\n");
        }
        Self {
            at,
            path: head.target.clone(),
            order_field: match route.op {
                Op::Certificates | Op::Rotate | Op::SetTradeState => "",
                Op::Revoke | Op::Query => route.key.field(),
            },
            order_id: percent_decode_str(&route.raw_id)
                .decode_utf8_lossy()
                .into_owned(),
            auth: std::str::from_utf8(auth_text)
                .ok()
                .and_then(|t| parse_authorization(t).ok()),
            request_sha256: hex::encode(hash.finalize()),
            body: String::from_utf8_lossy(body).chars().take(1024).collect(),
            fault,
        }
    }

    fn record(
        self,
        shared: &Shared,
        http_status: Option<u16>,
        code: Option<String>,
        processed: bool,
    ) {
        let auth = self.auth;
        let record = WechatpayRequestRecord {
            at: self.at,
            path: self.path,
            order_field: self.order_field.to_owned(),
            order_id: self.order_id,
            mchid: auth.as_ref().map(|a| a.mchid.clone()),
            nonce: auth.as_ref().map(|a| a.nonce_str.clone()),
            timestamp: auth.as_ref().map(|a| a.timestamp.clone()),
            serial_no: auth.as_ref().map(|a| a.serial_no.clone()),
            request_sha256: self.request_sha256,
            body: self.body,
            http_status,
            code,
            fault: self.fault.map(str::to_owned),
            processed,
        };
        shared.lock().wx.log(record);
    }
}

fn finish(
    shared: &Shared,
    draft: LogDraft,
    processed: bool,
    answer: &Answer,
    signing: Signing,
) -> Resp {
    draft.record(
        shared,
        Some(answer.status.as_u16()),
        answer.code.clone(),
        processed,
    );
    signed_response(shared, answer, signing)
}

/// Serves one revoke call, applying a waiting fault if there is one.
pub(crate) async fn call(
    shared: Arc<Shared>,
    route: WxRoute,
    head: Head,
    body: Bytes,
) -> Result<Resp, DropConnection> {
    match route.op {
        Op::Rotate => return Ok(rotate_admin(&shared, &body)),
        Op::SetTradeState => return Ok(trade_state_admin(&shared, &body)),
        Op::Revoke | Op::Query | Op::Certificates => {}
    }
    let (fault, arrived) = {
        let mut st = shared.lock();
        let fault = st
            .take_fault(&route.path)
            .or_else(|| st.take_fault(route.template()));
        (fault, st.unix_now())
    };
    let draft = LogDraft::new(
        arrived,
        &route,
        &head,
        &body,
        fault.as_ref().map(|f| f.kind.name()),
    );
    let Some(fault) = fault else {
        let answer = process(&shared, &route, &head, &body);
        return Ok(finish(&shared, draft, true, &answer, Signing::Normal));
    };
    tracing::debug!(
        path = %route.path,
        kind = fault.kind.name(),
        apply = fault.apply,
        "injected fault"
    );
    let apply = fault.apply;
    let run = |shared: &Shared| process(shared, &route, &head, &body);
    match fault.kind {
        FaultKind::Timeout => {
            if apply {
                // Logged when processed, so the log shows it before any retry.
                let answer = run(&shared);
                draft.record(
                    &shared,
                    Some(answer.status.as_u16()),
                    answer.code.clone(),
                    true,
                );
                shared.stall().await;
                return Ok(signed_response(&shared, &answer, Signing::Normal));
            }
            let answer = {
                // Processed only after the stall, even if the client has gone.
                let (sh, r, h, b) = (
                    Arc::clone(&shared),
                    route.clone(),
                    head.clone(),
                    body.clone(),
                );
                let task = tokio::spawn(async move {
                    sh.stall().await;
                    process(&sh, &r, &h, &b)
                });
                match task.await {
                    Ok(answer) => answer,
                    Err(_) => {
                        draft.record(&shared, Some(503), None, false);
                        return Ok(json_error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "sandbox is shutting down",
                        ));
                    }
                }
            };
            Ok(finish(&shared, draft, true, &answer, Signing::Normal))
        }
        FaultKind::Http500 => {
            if apply {
                run(&shared);
            }
            draft.record(&shared, Some(500), None, apply);
            Ok(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                Bytes::from_static(b"Internal Server Error (injected by the sandbox)"),
            ))
        }
        FaultKind::Drop => {
            if apply {
                run(&shared);
            }
            draft.record(&shared, None, None, apply);
            Err(DropConnection)
        }
        FaultKind::BadSignature | FaultKind::SignatureProbe | FaultKind::OldTimestamp => {
            let signing = match fault.kind {
                FaultKind::BadSignature => Signing::Bad,
                FaultKind::SignatureProbe => Signing::Probe,
                _ => Signing::Old,
            };
            // Without `apply` the answer is a success that did nothing: a forgery.
            let answer = if apply {
                run(&shared)
            } else {
                Answer::no_content()
            };
            Ok(finish(&shared, draft, apply, &answer, signing))
        }
        FaultKind::WechatpayCode { code, http_status } => {
            if apply {
                run(&shared);
            }
            let answer = code_answer(&code, http_status);
            Ok(finish(&shared, draft, apply, &answer, Signing::Normal))
        }
        // Refused on these paths when injected; answer normally should one appear.
        FaultKind::ResCd(_)
        | FaultKind::WithholdWebhook
        | FaultKind::WechatFail { .. }
        | FaultKind::WechatVoid => {
            let answer = run(&shared);
            Ok(finish(&shared, draft, true, &answer, Signing::Normal))
        }
    }
}

/// Reads the WeChat Pay fields of `POST /sandbox/payments`: `outTradeNo`,
/// `paidAt` (Unix seconds) or `paidSecondsAgo`. `None` for other channels,
/// which must not carry them.
pub(crate) fn admin_order(
    obj: &Map<String, Value>,
    channel: Channel,
    amount: u64,
    currency: Currency,
    authorized_only: bool,
) -> Result<Option<NewWechatpayOrder>, SandboxError> {
    let err = |field: &'static str, rule: &str| SandboxError::InvalidPayment {
        field,
        rule: rule.to_owned(),
    };
    let present = |f: &str| obj.get(f).is_some_and(|v| !v.is_null());
    if channel != Channel::WechatpayGlobal {
        for field in ["outTradeNo", "paidAt", "paidSecondsAgo"] {
            if present(field) {
                return Err(SandboxError::InvalidPayment {
                    field: "channel",
                    rule: format!("{field} applies only to wechatpay orders, not {channel}"),
                });
            }
        }
        return Ok(None);
    }
    if authorized_only {
        return Err(err(
            "authorizedOnly",
            "applies only to card payments, not wechatpay",
        ));
    }
    let mut order = NewWechatpayOrder::new(amount, currency);
    match obj.get("outTradeNo") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => order = order.out_trade_no(s.clone()),
        Some(_) => return Err(err("outTradeNo", "must be a string")),
    }
    match (present("paidAt"), present("paidSecondsAgo")) {
        (true, true) => return Err(err("paidAt", "give paidAt or paidSecondsAgo, not both")),
        (true, false) => {
            let t = obj
                .get("paidAt")
                .and_then(Value::as_i64)
                .ok_or_else(|| err("paidAt", "must be an integer number of Unix seconds"))?;
            order = order.paid_at_unix(t);
        }
        (false, true) => {
            let s = obj
                .get("paidSecondsAgo")
                .and_then(Value::as_u64)
                .ok_or_else(|| err("paidSecondsAgo", "must be a non-negative integer"))?;
            order = order.paid_seconds_ago(s);
        }
        (false, false) => {}
    }
    Ok(Some(order))
}

impl SandboxHandle {
    /// Creates a WeChat Pay Global order (as `POST /sandbox/payments` with
    /// `"channel": "wechatpay"`): the answer carries `transaction_id`,
    /// `out_trade_no` and `paid_at`.
    pub fn create_wechatpay_order(
        &self,
        order: NewWechatpayOrder,
    ) -> Result<Payment, SandboxError> {
        self.shared
            .lock()
            .create_wechatpay_order(&self.shared.mall_id, &order)
    }

    /// Every WeChat Pay request received (revokes, order queries, certificate
    /// downloads), oldest first (as
    /// `GET /sandbox/wechatpay/requests`; the last 1000 are kept).
    pub fn wechatpay_requests(&self) -> Vec<WechatpayRequestRecord> {
        self.shared.lock().wx.requests()
    }

    /// The sandbox's clock as Unix seconds (real time plus the clock offset):
    /// the "now" of the 5-minute signature window and the 7-day revoke period.
    pub fn unix_time(&self) -> i64 {
        self.shared.lock().unix_now()
    }

    /// The merchant the WeChat Pay revoke endpoint serves.
    pub fn wechatpay_merchant(&self) -> &WechatpayMerchant {
        &self.shared.wechatpay.merchant
    }

    /// The `Wechatpay-Serial` the endpoints sign their answers under now
    /// (changes after a [rotation](Self::rotate_wechatpay_platform) switches).
    pub fn wechatpay_platform_serial(&self) -> String {
        let settings = &self.shared.wechatpay;
        let mut st = self.shared.lock();
        let now = st.unix_now();
        st.wx
            .platform
            .get_or_insert_with(|| platform::PlatformSet::new(settings, now))
            .signer(now)
            .map_or_else(String::new, |(s, _)| s.to_owned())
    }

    /// Makes the order query report `trade_state` `state` for the order with
    /// this `transaction_id` or `out_trade_no` (as `POST
    /// /sandbox/wechatpay/trade-state`): a test hook for the states the
    /// sandbox's own rules never reach (`REFUND`, `CLOSED`, `NOTPAY`,
    /// `USERPAYING`, `PAYERROR`, or `X_...` for one no client knows). The revoke
    /// rules do not change; a successful revoke clears it.
    pub fn set_wechatpay_trade_state(&self, id: &str, state: &str) -> Result<(), SandboxError> {
        self.shared.set_trade_state(id, state)
    }

    /// Rotates the platform certificate (as `POST /sandbox/wechatpay/rotate`):
    /// a new certificate (new serial, made by rcgen) is listed at once and
    /// signs every answer from `switch_after_secs` (sandbox clock) on; the one
    /// it replaces stays listed `keep_old_secs` longer. Returns the new serial.
    pub fn rotate_wechatpay_platform(
        &self,
        switch_after_secs: u32,
        keep_old_secs: u32,
    ) -> Result<String, SandboxError> {
        self.shared
            .rotate_platform(i64::from(switch_after_secs), i64::from(keep_old_secs))
            .map(|r| r.serial)
            .map_err(|rule| SandboxError::InvalidConfig {
                field: "wechatpay.rotation",
                rule,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn routes_both_forms_and_nothing_else() {
        let r = route("/v3/global/micropay/transactions/id/4200000001/reverse").unwrap();
        assert_eq!(r.key, OrderKey::TransactionId);
        assert_eq!(r.raw_id, "4200000001");
        let r = route("/v3/global/micropay/transactions/out-trade-no/A%2F1/reverse").unwrap();
        assert_eq!(r.key, OrderKey::OutTradeNo);
        assert_eq!(r.raw_id, "A%2F1");
        assert!(route("/v3/global/micropay/transactions/out-trade-no/A/1/reverse").is_none());
        assert!(route("/v3/global/micropay/transactions/id/1/reverse/").is_none());
        assert!(route("/v3/global/micropay/transactions/id/1").is_none());
        assert!(route("/api/trades/revise").is_none());
        assert_eq!(
            route("/v3/global/micropay/transactions/id//reverse")
                .unwrap()
                .raw_id,
            ""
        );
        assert!(is_fault_path(WECHATPAY_REVERSE_BY_ID_PATH));
        assert!(is_fault_path(WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH));
    }

    #[test]
    fn decodes_and_checks_the_id() {
        let id = |raw: &str| {
            decode_id(&route(&format!("{PREFIX_BY_OUT_TRADE_NO}{raw}{SUFFIX}")).unwrap())
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

    #[test]
    fn fault_kinds_fit_their_paths() {
        let code = |c: &str, s| FaultKind::WechatpayCode {
            code: c.to_owned(),
            http_status: s,
        };
        assert!(check_fault_kind(&code("SYSTEM_ERROR", None), true).is_ok());
        assert!(check_fault_kind(&code("SYSTEM_ERROR", Some(503)), true).is_ok());
        assert!(check_fault_kind(&code("SYSTEM_ERROR", Some(200)), true).is_err());
        assert!(check_fault_kind(&code("system error", None), true).is_err());
        assert!(check_fault_kind(&code("", None), true).is_err());
        assert!(check_fault_kind(&code("SYSTEM_ERROR", None), false).is_err());
        assert!(check_fault_kind(&FaultKind::BadSignature, false).is_err());
        assert!(check_fault_kind(&FaultKind::ResCd("A212".into()), true).is_err());
        assert!(check_fault_kind(&FaultKind::WithholdWebhook, true).is_err());
        assert!(check_fault_kind(&FaultKind::Drop, true).is_ok());
        assert!(check_fault_kind(&FaultKind::Drop, false).is_ok());
    }

    #[test]
    fn code_statuses() {
        assert_eq!(code_answer("SYSTEM_ERROR", None).status, 500);
        assert_eq!(code_answer("SYSTEM_ERROR", Some(400)).status, 400);
        assert_eq!(code_answer("TRADE_ERROR", None).status, 403);
        assert_eq!(code_answer("INVALID_REQUEST", None).status, 400);
        let v: Value = serde_json::from_slice(&code_answer("PARAM_ERROR", None).body).unwrap();
        assert_eq!(v["detail"]["location"], "body");
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
            if let Some(r) = route(&path) {
                let _ = decode_id(&r);
            }
            let p = format!("{PREFIX_BY_ID}{path}{SUFFIX}");
            if let Some(r) = route(&p) {
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
