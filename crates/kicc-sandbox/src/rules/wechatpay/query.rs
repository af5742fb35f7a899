//! Layer 3, rules (WeChat Pay Global): the order query: `GET /v3/global/transactions/{id|out-trade-no}/{id}` with
//! `?mchid=M` (common mode) or `?sub_mchid=S&sp_mchid=SP` (institutional).
//! Same header, signature and merchant checks as the revoke; answers `200`
//! with the order, signed.

use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};

use http::StatusCode;

use super::answer::{param_error, Answer};
use super::checks::{check_headers, check_ids, check_replay, check_signature, decode_id};
use crate::clock::rfc3339_china;
use crate::routes::{Head, OrderKey, WxRoute};
use crate::state::State;
use crate::wechatpay::{WechatpayMerchant, WechatpaySettings as Settings};

/// `ORDER_NOT_EXIST`, HTTP 404: **the sandbox's choice** for a query of an
/// unknown order (WeChat Pay's general error table; the Global query page
/// lists no code for it).
fn not_found(key: OrderKey, id: &str) -> Answer {
    Answer::error(
        StatusCode::NOT_FOUND,
        "ORDER_NOT_EXIST",
        &format!(
            "The order does not exist: no order with {} {id}",
            key.field()
        ),
        None,
    )
}

/// The query string as a map of percent-decoded values; `PARAM_ERROR` with
/// `location: "query"` on a malformed or repeated parameter.
fn parse_query(target: &str) -> Result<Map<String, Value>, Answer> {
    let mut out = Map::new();
    let Some((_, query)) = target.split_once('?') else {
        return Ok(out);
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((name, raw)) = pair.split_once('=') else {
            return Err(param_error(pair, "", "must be name=value", "query"));
        };
        let value = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| {
                param_error(
                    name,
                    raw,
                    "is not valid UTF-8 once percent-decoded",
                    "query",
                )
            })?
            .into_owned();
        if out.insert(name.to_owned(), Value::String(value)).is_some() {
            return Err(param_error(name, raw, "is given twice", "query"));
        }
    }
    Ok(out)
}

/// One order query: every check in order, then the order as JSON.
pub(crate) fn process_query(
    st: &mut State,
    settings: &Settings,
    now: i64,
    route: &WxRoute,
    head: &Head,
    body: &[u8],
) -> Answer {
    let checked = check_headers(&head.headers, false)
        .and_then(|()| check_signature(settings, head, body, now))
        .and_then(|parts| check_replay(settings, st, &parts, now))
        .and_then(|()| decode_id(route))
        .and_then(|id| {
            let query = parse_query(&head.target)?;
            check_ids(settings, &query, "query").map(|()| id)
        });
    let id = match checked {
        Ok(id) => id,
        Err(answer) => return answer,
    };
    let index = match route.key {
        OrderKey::TransactionId => &st.wx.by_transaction_id,
        OrderKey::OutTradeNo => &st.wx.by_out_trade_no,
    };
    let Some(p) = index.get(&id).and_then(|pg| st.payments.get(pg)) else {
        return not_found(route.key, &id);
    };
    let Some(wx) = p.wechatpay.as_ref() else {
        return not_found(route.key, &id);
    };
    let state = wx.reported_state.as_deref().unwrap_or(wx.trade_state());
    let desc = match state {
        "REVOKED" => "The order has been revoked",
        "SUCCESS" => "Payment successful",
        "REFUND" => "A refund exists",
        "CLOSED" => "The order is closed",
        "NOTPAY" => "Not paid",
        "USERPAYING" => "Waiting for the payer",
        "PAYERROR" => "The payment failed",
        _ => "(sandbox test state)",
    };
    let mut order = Map::new();
    match &settings.merchant {
        WechatpayMerchant::Common { mchid } => {
            order.insert("mchid".into(), mchid.as_str().into());
        }
        WechatpayMerchant::Institutional {
            sp_mchid,
            sub_mchid,
        } => {
            order.insert("sp_mchid".into(), sp_mchid.as_str().into());
            order.insert("sub_mchid".into(), sub_mchid.as_str().into());
        }
    }
    order.insert("out_trade_no".into(), wx.out_trade_no.as_str().into());
    order.insert("transaction_id".into(), wx.transaction_id.as_str().into());
    order.insert("trade_type".into(), "MICROPAY".into());
    order.insert("trade_state".into(), state.into());
    order.insert("trade_state_desc".into(), desc.into());
    order.insert(
        "amount".into(),
        json!({"total": p.amount, "currency": p.currency.as_str()}),
    );
    order.insert("success_time".into(), rfc3339_china(wx.paid_at).into());
    Answer {
        status: StatusCode::OK,
        body: bytes::Bytes::from(Value::Object(order).to_string()),
        code: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn query_strings() {
        let q = parse_query("/x?sub_mchid=1%202&sp_mchid=3").unwrap();
        assert_eq!(q["sub_mchid"], "1 2");
        assert_eq!(q["sp_mchid"], "3");
        assert!(parse_query("/x").unwrap().is_empty());
        for bad in ["/x?mchid=1&mchid=1", "/x?mchid", "/x?mchid=%FF"] {
            let a = parse_query(bad).unwrap_err();
            assert_eq!(a.code.as_deref(), Some("PARAM_ERROR"), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(target in "\\PC{0,80}") {
            let _ = parse_query(&target);
        }
    }
}
