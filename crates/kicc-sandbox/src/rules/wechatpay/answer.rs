//! Layer 3, rules (WeChat Pay Global): an answer before it is signed, and
//! the error bodies `{code, message, detail?}` the rules and faults produce.

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Map, Value};

/// An answer before signing.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
    pub(crate) code: Option<String>,
}

impl Answer {
    pub(crate) fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: Bytes::new(),
            code: None,
        }
    }

    pub(crate) fn error(
        status: StatusCode,
        code: &str,
        message: &str,
        detail: Option<Value>,
    ) -> Self {
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

pub(crate) fn param_error(field: &str, value: &str, issue: &str, location: &str) -> Answer {
    Answer::error(
        StatusCode::BAD_REQUEST,
        "PARAM_ERROR",
        &format!("Parameter error: {field} {issue}"),
        Some(json!({"field": field, "value": value, "issue": issue, "location": location})),
    )
}

pub(crate) fn invalid_request(message: &str) -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message, None)
}

pub(crate) fn sign_error(
    field: &str,
    value: Option<&str>,
    issue: &str,
    info: Option<Value>,
) -> Answer {
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
pub(crate) fn code_answer(code: &str, http_status: Option<u16>) -> Answer {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_statuses() {
        assert_eq!(code_answer("SYSTEM_ERROR", None).status, 500);
        assert_eq!(code_answer("SYSTEM_ERROR", Some(400)).status, 400);
        assert_eq!(code_answer("TRADE_ERROR", None).status, 403);
        assert_eq!(code_answer("INVALID_REQUEST", None).status, 400);
        let v: Value = serde_json::from_slice(&code_answer("PARAM_ERROR", None).body).unwrap();
        assert_eq!(v["detail"]["location"], "body");
    }
}
