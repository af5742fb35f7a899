//! The admin API under `/sandbox/`: payments, faults, clock, settings,
//! webhooks, reset.
//! Errors are HTTP 400/404 with `{"error": "..."}` naming the field and rule.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use serde_json::{json, Value};

use crate::model::{Channel, Currency, Fault, FaultKind};
use crate::server::{json_error, respond, Shared, JSON};
use crate::settings::SettingsPatch;
use crate::wechatpay::NewWechatpayOrder;
use crate::SandboxError;

/// An admin endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminRoute {
    CreatePayment,
    GetPayment(String),
    InjectFault,
    ListFaults,
    SetClock,
    GetClock,
    SetSettings,
    GetSettings,
    Webhooks,
    WechatpayRequests,
    Reset,
}

type Resp = http::Response<Full<Bytes>>;

fn ok(value: &impl serde::Serialize) -> Resp {
    match serde_json::to_vec(value) {
        Ok(body) => respond(StatusCode::OK, JSON, Bytes::from(body)),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn bad(e: &SandboxError) -> Resp {
    json_error(StatusCode::BAD_REQUEST, &e.to_string())
}

pub(crate) fn handle(shared: &Shared, route: AdminRoute, body: &[u8]) -> Resp {
    match route {
        AdminRoute::CreatePayment => {
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
        AdminRoute::Reset => {
            shared.lock().reset();
            ok(&json!({ "reset": true }))
        }
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
    ok(&crate::settings::to_json(&current, &shared.bounds))
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

fn object(
    body: &[u8],
    err: fn(&'static str, String) -> SandboxError,
) -> Result<serde_json::Map<String, Value>, SandboxError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(err("body", "must be a JSON object".to_owned())),
    }
}

fn payment_err(field: &'static str, rule: String) -> SandboxError {
    SandboxError::InvalidPayment { field, rule }
}

fn fault_err(field: &'static str, rule: String) -> SandboxError {
    SandboxError::InvalidFault { field, rule }
}

fn clock_err(field: &'static str, rule: String) -> SandboxError {
    SandboxError::InvalidConfig { field, rule }
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
    let obj = object(body, payment_err)?;
    let channel = match obj.get("channel") {
        Some(Value::String(s)) => Channel::parse(s).ok_or_else(|| {
            payment_err(
                "channel",
                format!(
                    "must be card, transfer, mobile, cash_receipt, alipay, wechat or wechatpay, got {s:?}"
                ),
            )
        })?,
        _ => return Err(payment_err("channel", "is required (a string)".to_owned())),
    };
    let amount = obj.get("amount").and_then(Value::as_u64).ok_or_else(|| {
        payment_err(
            "amount",
            "is required: a positive integer in minor units".to_owned(),
        )
    })?;
    let currency = match obj.get("currency") {
        None | Some(Value::Null) => Currency::Krw,
        Some(Value::String(s)) => Currency::parse(s)
            .ok_or_else(|| payment_err("currency", format!("must be KRW or USD, got {s:?}")))?,
        Some(_) => return Err(payment_err("currency", "must be a string".to_owned())),
    };
    let authorized_only = match obj.get("authorizedOnly") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(payment_err(
                "authorizedOnly",
                "must be a boolean".to_owned(),
            ))
        }
    };
    let escrow = match obj.get("escrow") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(payment_err("escrow", "must be a boolean".to_owned())),
    };
    if escrow && !matches!(channel, Channel::Card | Channel::Transfer | Channel::Mobile) {
        return Err(payment_err(
            "escrow",
            format!("applies only to card, transfer and mobile payments, not {channel}"),
        ));
    }
    let wechatpay =
        crate::wechatpay::admin_order(&obj, channel, amount, currency, authorized_only)?;
    Ok(NewPayment {
        channel,
        amount,
        currency,
        authorized_only,
        escrow,
        wechatpay,
    })
}

pub(crate) fn parse_fault(body: &[u8]) -> Result<Fault, SandboxError> {
    let obj = object(body, fault_err)?;
    let path = match obj.get("path") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(fault_err("path", "is required (a string)".to_owned())),
    };
    let kind = match obj.get("kind").and_then(Value::as_str) {
        Some("timeout") => FaultKind::Timeout,
        Some("http500") => FaultKind::Http500,
        Some("drop") => FaultKind::Drop,
        Some("withholdWebhook") => FaultKind::WithholdWebhook,
        Some("wechatVoid") => FaultKind::WechatVoid,
        Some("wechatFail") => match obj.get("resCd") {
            None | Some(Value::Null) => FaultKind::WechatFail {
                res_cd: crate::codes::ResCode::W001.as_str().to_owned(),
            },
            Some(Value::String(code)) => FaultKind::WechatFail {
                res_cd: code.clone(),
            },
            Some(_) => return Err(fault_err("resCd", "must be a string".to_owned())),
        },
        Some("badSignature") => FaultKind::BadSignature,
        Some("signatureProbe") => FaultKind::SignatureProbe,
        Some("oldTimestamp") => FaultKind::OldTimestamp,
        Some("code") => {
            let code = match obj.get("code") {
                Some(Value::String(code)) => code.clone(),
                _ => {
                    return Err(fault_err(
                        "code",
                        "is required (a string such as SYSTEM_ERROR) when kind is code"
                            .to_owned(),
                    ))
                }
            };
            let http_status = match obj.get("httpStatus") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .and_then(|s| u16::try_from(s).ok())
                        .ok_or_else(|| {
                            fault_err("httpStatus", "must be an integer HTTP status".to_owned())
                        })?,
                ),
            };
            FaultKind::WechatpayCode { code, http_status }
        }
        Some("resCd") => match obj.get("resCd") {
            Some(Value::String(code)) => FaultKind::ResCd(code.clone()),
            _ => {
                return Err(fault_err(
                    "resCd",
                    "is required (a string) when kind is resCd".to_owned(),
                ))
            }
        },
        _ => {
            return Err(fault_err(
                "kind",
                "must be timeout, http500, drop, resCd, withholdWebhook, wechatFail, wechatVoid, badSignature, signatureProbe, oldTimestamp or code".to_owned(),
            ))
        }
    };
    let times = match obj.get("times") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| fault_err("times", "must be a positive integer".to_owned()))?,
    };
    let apply = match obj.get("apply") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(fault_err("apply", "must be a boolean".to_owned())),
    };
    let res_detail_msg = match obj.get("resDetailMsg") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(fault_err("resDetailMsg", "must be a string".to_owned())),
    };
    Ok(Fault {
        path,
        kind,
        times,
        apply,
        res_detail_msg,
    })
}

pub(crate) fn parse_clock(body: &[u8]) -> Result<i64, SandboxError> {
    let obj = object(body, clock_err)?;
    obj.get("offsetSeconds")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            clock_err(
                "offsetSeconds",
                "is required: an integer number of seconds".to_owned(),
            )
        })
}
