//! Layer 3, rules (WeChat Pay Global): the revoke
//! (`POST .../micropay/transactions/{id|out-trade-no}/{id}/reverse`).

use http::StatusCode;

use super::answer::{invalid_request, param_error, Answer};
use super::checks::{check_body, check_headers, check_replay, check_signature, decode_id};
use crate::routes::{Head, OrderKey, WxRoute};
use crate::state::State;
use crate::wechatpay::{SecondRevoke, WechatpaySettings as Settings, REVOKE_WINDOW_SECS};

/// One revoke: every check in order, then the revoke rules.
pub(crate) fn process_revoke(
    st: &mut State,
    settings: &Settings,
    now: i64,
    route: &WxRoute,
    head: &Head,
    body: &[u8],
) -> Answer {
    let checked = check_headers(&head.headers, true)
        .and_then(|()| check_signature(settings, head, body, now))
        .and_then(|parts| check_replay(settings, st, &parts, now))
        .and_then(|()| decode_id(route))
        .and_then(|id| check_body(settings, body).map(|()| id));
    match checked {
        Ok(id) => revoke(st, settings, route.key, &id, now),
        Err(answer) => answer,
    }
}

/// Finds the order and applies the revoke rules.
fn revoke(st: &mut State, settings: &Settings, key: OrderKey, id: &str, now: i64) -> Answer {
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
