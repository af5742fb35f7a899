//! Layer 4, IO: the admin API under `/sandbox/`: payments, faults, clock,
//! settings, webhooks, the WeChat Pay request log and test hooks, reset.
//! Errors are HTTP 400/404 with `{"error": "..."}` naming the field and rule.
//!
//! Request bodies are `#[derive(Deserialize)]` types read from a JSON object.
//! Each field is a [`Typed`] so that a value of the wrong JSON type is
//! reported with the field's own rule rather than serde's message.

use bytes::Bytes;
use http::StatusCode;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::codes::ResCode;
use crate::model::{Channel, Currency, Fault, FaultKind};
use crate::routes::AdminRoute;
use crate::settings::{to_json, SettingsPatch};
use crate::shared::{json_error, respond, Resp, Shared, JSON};
use crate::wechatpay::NewWechatpayOrder;
use crate::SandboxError;

/// A body field: a value of the expected JSON type, or any other value
/// (absent and `null` are `None` around it).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Typed<T> {
    Ok(T),
    Wrong(IgnoredAny),
}

impl<T> Typed<T> {
    fn ok(self) -> Option<T> {
        match self {
            Self::Ok(v) => Some(v),
            Self::Wrong(_) => None,
        }
    }
}

/// An optional field: `Ok(None)` when absent or `null`, `Err(rule)` when of
/// the wrong type.
fn optional<T>(field: Option<Typed<T>>) -> Result<Option<T>, ()> {
    match field {
        None => Ok(None),
        Some(Typed::Ok(v)) => Ok(Some(v)),
        Some(Typed::Wrong(_)) => Err(()),
    }
}

/// `POST /sandbox/payments`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentRequest {
    channel: Option<Typed<String>>,
    amount: Option<Typed<u64>>,
    currency: Option<Typed<String>>,
    authorized_only: Option<Typed<bool>>,
    escrow: Option<Typed<bool>>,
    /// WeChat Pay Global orders only.
    out_trade_no: Option<Typed<String>>,
    paid_at: Option<Typed<i64>>,
    paid_seconds_ago: Option<Typed<u64>>,
}

/// `POST /sandbox/faults`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FaultRequest {
    path: Option<Typed<String>>,
    kind: Option<Typed<String>>,
    res_cd: Option<Typed<String>>,
    code: Option<Typed<String>>,
    http_status: Option<Typed<u64>>,
    times: Option<Typed<u64>>,
    apply: Option<Typed<bool>>,
    res_detail_msg: Option<Typed<String>>,
}

/// `POST /sandbox/clock`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClockRequest {
    offset_seconds: Option<Typed<i64>>,
}

/// `POST /sandbox/wechatpay/rotate` (an empty body takes the defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RotateRequest {
    switch_after_seconds: Option<Typed<u64>>,
    keep_old_seconds: Option<Typed<u64>>,
}

/// `POST /sandbox/wechatpay/trade-state`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TradeStateRequest {
    transaction_id: Option<Typed<String>>,
    out_trade_no: Option<Typed<String>>,
    trade_state: Option<Typed<String>>,
}

/// Reads a JSON object body into `T`; `None` when it is not a JSON object.
fn object<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => serde_json::from_value(v).ok(),
        _ => None,
    }
}

fn ok(value: &impl serde::Serialize) -> Resp {
    match serde_json::to_vec(value) {
        Ok(body) => respond(StatusCode::OK, JSON, Bytes::from(body)),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn bad(e: &SandboxError) -> Resp {
    json_error(StatusCode::BAD_REQUEST, &e.to_string())
}

/// Serves one admin call.
pub(crate) fn handle(shared: &Shared, route: AdminRoute, body: &[u8]) -> Resp {
    match route {
        AdminRoute::CreatePayment => create_payment(shared, body),
        AdminRoute::GetPayment(pg_cno) => match shared
            .lock()
            .payment_state(&percent_encoding::percent_decode_str(&pg_cno).decode_utf8_lossy())
        {
            Some(state) => ok(&state),
            None => json_error(
                StatusCode::NOT_FOUND,
                &format!("payment {pg_cno} not found"),
            ),
        },
        AdminRoute::InjectFault => {
            match parse_fault(body).and_then(|f| shared.lock().inject_fault(f)) {
                Ok(()) => list_faults(shared),
                Err(e) => bad(&e),
            }
        }
        AdminRoute::ListFaults => list_faults(shared),
        AdminRoute::SetClock => {
            let set = parse_clock(body).and_then(|offset| shared.lock().set_clock(offset));
            match set {
                Ok(()) => clock(shared),
                Err(e) => bad(&e),
            }
        }
        AdminRoute::GetClock => clock(shared),
        AdminRoute::SetSettings => {
            let set = SettingsPatch::parse(body)
                .and_then(|patch| shared.update_settings(|current| patch.apply_to(current)));
            match set {
                Ok(()) => settings(shared),
                Err(e) => bad(&e),
            }
        }
        AdminRoute::GetSettings => settings(shared),
        AdminRoute::Webhooks => ok(&json!({ "deliveries": shared.lock().webhook_log() })),
        AdminRoute::WechatpayRequests => ok(&json!({ "requests": shared.lock().wx.requests() })),
        AdminRoute::WechatpayRotate => rotate(shared, body),
        AdminRoute::WechatpayTradeState => trade_state(shared, body),
        AdminRoute::Reset => {
            shared.lock().reset();
            ok(&json!({ "reset": true }))
        }
    }
}

fn create_payment(shared: &Shared, body: &[u8]) -> Resp {
    let created = parse_payment(body).and_then(|new| {
        let mut st = shared.lock();
        match new.wechatpay {
            Some(order) => st.create_wechatpay_order(&shared.mall_id, &order),
            None => st.create_payment(
                &shared.mall_id,
                new.channel,
                new.amount,
                new.currency,
                new.authorized_only,
                new.escrow,
            ),
        }
        .map(|p| (p, new.escrow))
    });
    match created {
        Ok((p, escrow)) => match serde_json::to_value(&p) {
            Ok(mut v) => {
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("escrow".into(), escrow.into());
                }
                ok(&v)
            }
            Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        Err(e) => bad(&e),
    }
}

fn clock(shared: &Shared) -> Resp {
    let st = shared.lock();
    let now = st.now();
    ok(&json!({
        "offsetSeconds": st.clock_offset(),
        "koreaDate": now.date_string(),
        "koreaNow": now.datetime_string(),
    }))
}

fn settings(shared: &Shared) -> Resp {
    let current = shared.lock().settings;
    ok(&to_json(&current, &shared.bounds))
}

fn list_faults(shared: &Shared) -> Resp {
    let faults: Vec<Value> = shared
        .lock()
        .pending_faults()
        .into_iter()
        .map(|f| {
            let mut v = json!({ "path": f.path, "kind": f.kind.name(), "times": f.times, "apply": f.apply });
            if let (Some(d), Some(obj)) = (&f.res_detail_msg, v.as_object_mut()) {
                obj.insert("resDetailMsg".into(), d.clone().into());
            }
            match (&f.kind, v.as_object_mut()) {
                (FaultKind::ResCd(code) | FaultKind::WechatFail { res_cd: code }, Some(obj)) => {
                    obj.insert("resCd".into(), code.clone().into());
                }
                (FaultKind::WechatpayCode { code, http_status }, Some(obj)) => {
                    obj.insert("code".into(), code.clone().into());
                    if let Some(s) = http_status {
                        obj.insert("httpStatus".into(), (*s).into());
                    }
                }
                _ => {}
            }
            v
        })
        .collect();
    ok(&json!({ "faults": faults }))
}

fn payment_err(field: &'static str, rule: impl Into<String>) -> SandboxError {
    SandboxError::InvalidPayment {
        field,
        rule: rule.into(),
    }
}

fn fault_err(field: &'static str, rule: impl Into<String>) -> SandboxError {
    SandboxError::InvalidFault {
        field,
        rule: rule.into(),
    }
}

/// A parsed `POST /sandbox/payments` body.
pub(crate) struct NewPayment {
    channel: Channel,
    amount: u64,
    currency: Currency,
    authorized_only: bool,
    escrow: bool,
    wechatpay: Option<NewWechatpayOrder>,
}

pub(crate) fn parse_payment(body: &[u8]) -> Result<NewPayment, SandboxError> {
    let req: PaymentRequest =
        object(body).ok_or_else(|| payment_err("body", "must be a JSON object"))?;
    let channel = match req.channel.and_then(Typed::ok) {
        Some(s) => Channel::parse(&s).ok_or_else(|| {
            payment_err(
                "channel",
                format!(
                    "must be card, transfer, mobile, cash_receipt, alipay, wechat or wechatpay, got {s:?}"
                ),
            )
        })?,
        None => return Err(payment_err("channel", "is required (a string)")),
    };
    let amount = req
        .amount
        .and_then(Typed::ok)
        .ok_or_else(|| payment_err("amount", "is required: a positive integer in minor units"))?;
    let currency =
        match optional(req.currency).map_err(|()| payment_err("currency", "must be a string"))? {
            None => Currency::Krw,
            Some(s) => Currency::parse(&s)
                .ok_or_else(|| payment_err("currency", format!("must be KRW or USD, got {s:?}")))?,
        };
    let authorized_only = optional(req.authorized_only)
        .map_err(|()| payment_err("authorizedOnly", "must be a boolean"))?
        .unwrap_or(false);
    let escrow = optional(req.escrow)
        .map_err(|()| payment_err("escrow", "must be a boolean"))?
        .unwrap_or(false);
    if escrow && !matches!(channel, Channel::Card | Channel::Transfer | Channel::Mobile) {
        return Err(payment_err(
            "escrow",
            format!("applies only to card, transfer and mobile payments, not {channel}"),
        ));
    }
    let wechatpay = wechatpay_order(
        WechatpayFields {
            out_trade_no: req.out_trade_no,
            paid_at: req.paid_at,
            paid_seconds_ago: req.paid_seconds_ago,
        },
        channel,
        amount,
        currency,
        authorized_only,
    )?;
    Ok(NewPayment {
        channel,
        amount,
        currency,
        authorized_only,
        escrow,
        wechatpay,
    })
}

/// The WeChat Pay fields of `POST /sandbox/payments`.
struct WechatpayFields {
    out_trade_no: Option<Typed<String>>,
    paid_at: Option<Typed<i64>>,
    paid_seconds_ago: Option<Typed<u64>>,
}

/// Reads the WeChat Pay fields of `POST /sandbox/payments`: `outTradeNo`,
/// `paidAt` (Unix seconds) or `paidSecondsAgo`. `None` for other channels,
/// which must not carry them.
fn wechatpay_order(
    fields: WechatpayFields,
    channel: Channel,
    amount: u64,
    currency: Currency,
    authorized_only: bool,
) -> Result<Option<NewWechatpayOrder>, SandboxError> {
    if channel != Channel::WechatpayGlobal {
        let given = [
            ("outTradeNo", fields.out_trade_no.is_some()),
            ("paidAt", fields.paid_at.is_some()),
            ("paidSecondsAgo", fields.paid_seconds_ago.is_some()),
        ];
        if let Some((field, _)) = given.into_iter().find(|(_, present)| *present) {
            return Err(payment_err(
                "channel",
                format!("{field} applies only to wechatpay orders, not {channel}"),
            ));
        }
        return Ok(None);
    }
    if authorized_only {
        return Err(payment_err(
            "authorizedOnly",
            "applies only to card payments, not wechatpay",
        ));
    }
    let mut order = NewWechatpayOrder::new(amount, currency);
    if let Some(s) =
        optional(fields.out_trade_no).map_err(|()| payment_err("outTradeNo", "must be a string"))?
    {
        order = order.out_trade_no(s);
    }
    match (fields.paid_at, fields.paid_seconds_ago) {
        (Some(_), Some(_)) => {
            return Err(payment_err(
                "paidAt",
                "give paidAt or paidSecondsAgo, not both",
            ))
        }
        (Some(t), None) => {
            let t = t.ok().ok_or_else(|| {
                payment_err("paidAt", "must be an integer number of Unix seconds")
            })?;
            order = order.paid_at_unix(t);
        }
        (None, Some(s)) => {
            let s = s
                .ok()
                .ok_or_else(|| payment_err("paidSecondsAgo", "must be a non-negative integer"))?;
            order = order.paid_seconds_ago(s);
        }
        (None, None) => {}
    }
    Ok(Some(order))
}

pub(crate) fn parse_fault(body: &[u8]) -> Result<Fault, SandboxError> {
    let req: FaultRequest =
        object(body).ok_or_else(|| fault_err("body", "must be a JSON object"))?;
    let path = req
        .path
        .and_then(Typed::ok)
        .ok_or_else(|| fault_err("path", "is required (a string)"))?;
    let kind = match req.kind.and_then(Typed::ok).as_deref() {
        Some("timeout") => FaultKind::Timeout,
        Some("http500") => FaultKind::Http500,
        Some("drop") => FaultKind::Drop,
        Some("withholdWebhook") => FaultKind::WithholdWebhook,
        Some("wechatVoid") => FaultKind::WechatVoid,
        Some("wechatFail") => FaultKind::WechatFail {
            res_cd: optional(req.res_cd)
                .map_err(|()| fault_err("resCd", "must be a string"))?
                .unwrap_or_else(|| ResCode::W001.as_str().to_owned()),
        },
        Some("badSignature") => FaultKind::BadSignature,
        Some("signatureProbe") => FaultKind::SignatureProbe,
        Some("oldTimestamp") => FaultKind::OldTimestamp,
        Some("code") => {
            let code = req.code.and_then(Typed::ok).ok_or_else(|| {
                fault_err(
                    "code",
                    "is required (a string such as SYSTEM_ERROR) when kind is code",
                )
            })?;
            let http_status = match req.http_status {
                None => None,
                Some(v) => Some(
                    v.ok()
                        .and_then(|s| u16::try_from(s).ok())
                        .ok_or_else(|| fault_err("httpStatus", "must be an integer HTTP status"))?,
                ),
            };
            FaultKind::WechatpayCode { code, http_status }
        }
        Some("resCd") => FaultKind::ResCd(
            req.res_cd
                .and_then(Typed::ok)
                .ok_or_else(|| fault_err("resCd", "is required (a string) when kind is resCd"))?,
        ),
        _ => {
            return Err(fault_err(
                "kind",
                "must be timeout, http500, drop, resCd, withholdWebhook, wechatFail, wechatVoid, badSignature, signatureProbe, oldTimestamp or code",
            ))
        }
    };
    let times = match req.times {
        None => 1,
        Some(v) => v
            .ok()
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| fault_err("times", "must be a positive integer"))?,
    };
    let apply = optional(req.apply).map_err(|()| fault_err("apply", "must be a boolean"))?;
    let res_detail_msg =
        optional(req.res_detail_msg).map_err(|()| fault_err("resDetailMsg", "must be a string"))?;
    Ok(Fault {
        path,
        kind,
        times,
        apply,
        res_detail_msg,
    })
}

pub(crate) fn parse_clock(body: &[u8]) -> Result<i64, SandboxError> {
    let err = |rule: &str| SandboxError::InvalidConfig {
        field: "offsetSeconds",
        rule: rule.to_owned(),
    };
    let req: ClockRequest = object(body).ok_or_else(|| SandboxError::InvalidConfig {
        field: "body",
        rule: "must be a JSON object".to_owned(),
    })?;
    req.offset_seconds
        .and_then(Typed::ok)
        .ok_or_else(|| err("is required: an integer number of seconds"))
}

/// `POST /sandbox/wechatpay/rotate` `{"switchAfterSeconds"?, "keepOldSeconds"?}`.
fn rotate(shared: &Shared, body: &[u8]) -> Resp {
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        match object::<RotateRequest>(body) {
            Some(r) => r,
            None => return json_error(StatusCode::BAD_REQUEST, "body must be a JSON object"),
        }
    };
    let secs = |name: &str, field: Option<Typed<u64>>, default: i64| match field {
        None => Ok(default),
        Some(v) => v
            .ok()
            .and_then(|n| i64::try_from(n).ok())
            .filter(|n| *n <= 10 * 365 * 86_400)
            .ok_or(format!(
                "{name} must be a non-negative integer of seconds (at most 10 years)"
            )),
    };
    let (switch_after, keep_old) = match (
        secs("switchAfterSeconds", req.switch_after_seconds, 0),
        secs("keepOldSeconds", req.keep_old_seconds, 86_400),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    let rotated = shared
        .lock()
        .rotate_platform(&shared.wechatpay, switch_after, keep_old);
    match rotated {
        Ok(r) => ok(&json!({
            "serialNo": r.serial,
            "previousSerialNo": r.previous,
            "switchAt": r.switch_at,
            "previousDelistedAt": r.previous_delisted_at,
        })),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// `POST /sandbox/wechatpay/trade-state` `{"transactionId"|"outTradeNo", "tradeState"}`.
fn trade_state(shared: &Shared, body: &[u8]) -> Resp {
    let Some(req) = object::<TradeStateRequest>(body) else {
        return json_error(StatusCode::BAD_REQUEST, "body must be a JSON object");
    };
    let Some(id) = req
        .transaction_id
        .and_then(Typed::ok)
        .or_else(|| req.out_trade_no.and_then(Typed::ok))
    else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "transactionId or outTradeNo (a string) is required",
        );
    };
    let Some(state) = req.trade_state.and_then(Typed::ok) else {
        return json_error(StatusCode::BAD_REQUEST, "tradeState (a string) is required");
    };
    match shared.lock().set_trade_state(&id, &state) {
        Ok(()) => ok(&json!({"id": id, "tradeState": state})),
        Err(e @ SandboxError::InvalidPayment { field: "id", .. }) => {
            json_error(StatusCode::NOT_FOUND, &e.to_string())
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_name_the_field() {
        let rule = |body: &str| match parse_fault(body.as_bytes()) {
            Err(SandboxError::InvalidFault { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(rule(r#"[1]"#), "body");
        assert_eq!(rule(r#"{"kind":"timeout"}"#), "path");
        assert_eq!(rule(r#"{"path":"/p","kind":7}"#), "kind");
        assert_eq!(
            rule(r#"{"path":"/p","kind":"timeout","times":-1}"#),
            "times"
        );
        assert_eq!(
            rule(r#"{"path":"/p","kind":"timeout","apply":"y"}"#),
            "apply"
        );
        assert_eq!(
            rule(r#"{"path":"/p","kind":"code","code":"X","httpStatus":1.5}"#),
            "httpStatus"
        );
        let f = parse_fault(br#"{"path":"/p","kind":"wechatFail","apply":null}"#).unwrap();
        assert_eq!(
            f.kind,
            FaultKind::WechatFail {
                res_cd: "W001".into()
            }
        );
        assert_eq!((f.times, f.apply), (1, None));
        match parse_payment(br#"{"channel":"card","amount":1,"paidAt":5}"#) {
            Err(SandboxError::InvalidPayment { field, rule }) => {
                assert_eq!(field, "channel");
                assert!(rule.starts_with("paidAt applies only"), "{rule}");
            }
            _ => panic!("paidAt on a card payment must be refused"),
        }
        let p = parse_payment(br#"{"channel":"wechatpay","amount":1,"paidSecondsAgo":9}"#).unwrap();
        assert!(p.wechatpay.is_some());
        assert!(parse_clock(br#"{"offsetSeconds":"1"}"#).is_err());
        assert_eq!(parse_clock(br#"{"offsetSeconds":-5}"#).unwrap(), -5);
    }
}
