//! Layer 3, rules (KICC): the generic cancel, `POST /api/trades/revise`
//! (card, transfer, mobile, cash receipt, capture).

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::clock::KoreaTime;
use crate::codes::{Reject, ResCode};
use crate::model::Channel;
use crate::routes::{
    ApiEndpoint, ALIPAY_REVISE_PATH, GENERIC_REVISE_PATH, WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH,
    WECHAT_REVISE_PATH,
};
use crate::rules::common::{
    check_mac, check_mall, error_body, fully_cancelled, not_found, prefixed, require_today,
    ApiOutput, Ctx, GENERIC_CODES,
};
use crate::settings::RefundQueryMatch;
use crate::state::{status_message, CancelRec, KeyRecord, PaymentRec, State, TS04};
use crate::validate::{
    cancel_req_date_day, check_forbidden, opt_amount, opt_flag, opt_object, opt_str, req_str,
    Object,
};
use crate::wechat_final::WechatFinal;

struct GenericReq<'a> {
    mall_id: &'a str,
    key: &'a str,
    pg_cno: &'a str,
    code: &'a str,
    date: &'a str,
    date_day: i64,
    mac: &'a str,
    amount: Option<u64>,
    remain: Option<u64>,
    refund_query: bool,
}

fn parse_generic(obj: &Object) -> Result<GenericReq<'_>, Reject> {
    let mall_id = req_str(obj, "mallId", 8)?;
    let key = req_str(obj, "shopTransactionId", 60)?;
    let pg_cno = req_str(obj, "pgCno", 20)?;
    let code = req_str(obj, "reviseTypeCode", 2)?;
    opt_str(obj, "clientIp", 20)?;
    opt_str(obj, "clientId", 32)?;
    let date = req_str(obj, "cancelReqDate", 8)?;
    let mac = req_str(obj, "msgAuthValue", 200)?;
    opt_str(obj, "reviseMessage", 100)?;
    let refund_query = opt_flag(obj, "refundQueryFlag")?.unwrap_or(false);
    let tax = opt_object(obj, "taxInfo")?;
    let basket_used = opt_flag(obj, "basketUsed")?;
    let basket = opt_object(obj, "basketInfo")?;
    if let Some(b) = basket {
        req_str(b, "productPgCno", 20).map_err(prefixed("basketInfo"))?;
        req_str(b, "sellerId", 50).map_err(prefixed("basketInfo"))?;
    }
    check_forbidden(obj)?;
    if !GENERIC_CODES.contains(&code) {
        return Err(Reject::new(
            ResCode::V004,
            format!(
                "reviseTypeCode {code} is not allowed on {GENERIC_REVISE_PATH} (allowed: 20, 32, 33, 40, 51, 52)"
            ),
        ));
    }
    let amount = opt_amount(obj, "amount", false)?;
    let remain = opt_amount(obj, "remainAmount", true)?;
    match code {
        "32" | "33" | "52" if amount.is_none() => {
            return Err(Reject::new(
                ResCode::V005,
                format!("amount is required for partial cancel code {code}"),
            ))
        }
        "40" if amount.is_some() => {
            return Err(Reject::new(
                ResCode::V005,
                "amount must not be sent with full cancel code 40",
            ))
        }
        _ => {}
    }
    if let Some(t) = tax {
        let names = ["taxationAmount", "taxFreeAmount", "vatAmount"];
        let missing: Vec<&str> = names
            .into_iter()
            .filter(|n| t.get(*n).is_none_or(Value::is_null))
            .collect();
        if !missing.is_empty() {
            return Err(Reject::new(
                ResCode::V009,
                format!(
                    "taxInfo needs taxationAmount, taxFreeAmount and vatAmount together (missing: {})",
                    missing.join(", ")
                ),
            ));
        }
        for n in names {
            opt_amount(t, n, true).map_err(prefixed("taxInfo"))?;
        }
    }
    match (basket_used == Some(true), basket.is_some()) {
        (true, false) => {
            return Err(Reject::new(
                ResCode::V010,
                "basketUsed is Y but basketInfo is missing",
            ))
        }
        (false, true) => {
            return Err(Reject::new(
                ResCode::V010,
                "basketInfo is sent but basketUsed is not Y",
            ))
        }
        _ => {}
    }
    let date_day = cancel_req_date_day(date)?;
    Ok(GenericReq {
        mall_id,
        key,
        pg_cno,
        code,
        date,
        date_day,
        mac,
        amount,
        remain,
        refund_query,
    })
}

pub(crate) fn generic_revise(
    st: &mut State,
    ctx: &Ctx<'_>,
    now: KoreaTime,
    obj: &Object,
) -> Result<ApiOutput, Reject> {
    let req = parse_generic(obj)?;
    check_mall(ctx, req.mall_id)?;
    check_mac(ctx, req.pg_cno, req.key, req.mac)?;
    if st.key(req.key).is_some_and(|r| r.day == now.day) {
        return Err(Reject::new(
            ResCode::D001,
            format!(
                "shopTransactionId {} was already used today (Korea time); send a new one (after a timeout: a new one with refundQueryFlag Y)",
                req.key
            ),
        ));
    }
    require_today(req.date, req.date_day, now)?;
    let body = match generic_business(st, ctx, now, &req) {
        Ok(body) => body,
        Err(r) => error_body(
            ApiEndpoint::GenericRevise,
            &r,
            Some(req.key),
            Some(req.mall_id),
        ),
    };
    st.tx_log.record(req.key, now.day, &body);
    st.record_key(
        req.key,
        KeyRecord {
            day: now.day,
            endpoint: ApiEndpoint::GenericRevise,
            pg_cno: req.pg_cno.to_owned(),
            cancel_req_date: req.date.to_owned(),
            body: body.clone(),
        },
    );
    Ok(ApiOutput::body(body))
}

fn generic_business(
    st: &mut State,
    ctx: &Ctx<'_>,
    now: KoreaTime,
    req: &GenericReq<'_>,
) -> Result<Bytes, Reject> {
    let p = st
        .payments
        .get(req.pg_cno)
        .ok_or_else(|| not_found(req.pg_cno))?;

    // refundQueryFlag Y: if the cancel this request describes already
    // happened (its answer was lost), answer with it instead of cancelling
    // again, by the refundQueryMatch setting (an inference).
    let settings = st.settings;
    if req.refund_query && settings.refund_query_match != RefundQueryMatch::Never {
        let convention = settings.remain_amount_convention;
        let earlier = p.cancels.iter().rev().find(|c| {
            c.endpoint == ApiEndpoint::GenericRevise
                && c.revise_type_code == req.code
                && c.requested_amount == req.amount
                && (settings.refund_query_match == RefundQueryMatch::PgCnoAmount
                    || req
                        .remain
                        .is_none_or(|r| r == convention.expected(c.balance_before, c.amount)))
        });
        if let Some(c) = earlier {
            return Ok(generic_success(
                ctx,
                req.key,
                p,
                c,
                st.is_escrow(req.pg_cno),
            ));
        }
    }

    let channel = p.channel;
    let not_applicable = |why: String| Err(Reject::new(ResCode::P005, why));
    match channel {
        Channel::WechatpayGlobal => {
            return not_applicable(format!(
                "payment {} is a WeChat Pay Global order; revoke it through {}",
                p.pg_cno,
                WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH
            ))
        }
        Channel::Alipay | Channel::Wechat => {
            return not_applicable(format!(
                "payment {} is a {channel} payment; cancel it through {}",
                p.pg_cno,
                if channel == Channel::Alipay {
                    ALIPAY_REVISE_PATH
                } else {
                    WECHAT_REVISE_PATH
                }
            ))
        }
        Channel::Card => match req.code {
            "40" => {}
            "32" if p.authorized_only && !p.captured => {
                return not_applicable(
                    "payment is authorized but not captured: capture it (20) or cancel it fully (40) first"
                        .to_owned(),
                )
            }
            "32" => {}
            "20" if p.authorized_only && !p.captured => {}
            "20" => {
                return not_applicable(format!(
                    "capture (20) applies only to an authorized, uncaptured card payment; {} is already captured",
                    p.pg_cno
                ))
            }
            other => {
                return not_applicable(format!(
                    "reviseTypeCode {other} does not apply to a card payment (card: 40 full, 32 partial, 20 capture)"
                ))
            }
        },
        Channel::Transfer | Channel::Mobile => {
            if !matches!(req.code, "40" | "33") {
                return not_applicable(format!(
                    "reviseTypeCode {} does not apply to a {channel} payment ({channel}: 40 full, 33 partial)",
                    req.code
                ));
            }
        }
        Channel::CashReceipt => {
            if !matches!(req.code, "51" | "52") {
                return not_applicable(format!(
                    "reviseTypeCode {} does not apply to a cash receipt (cash receipt: 51 full, 52 partial)",
                    req.code
                ));
            }
        }
    }
    if st.is_escrow(req.pg_cno) && matches!(req.code, "40" | "32" | "33") {
        return Err(Reject::new(
            ResCode::P007,
            format!(
                "payment {} is an escrow payment: it is not cancelled with reviseTypeCode {}; change it through the escrow status change API",
                p.pg_cno, req.code
            ),
        ));
    }
    let available = p.available();
    if available == 0 {
        return Err(fully_cancelled(req.pg_cno));
    }

    // The amount this revision moves.
    let amount = match req.code {
        "20" => {
            if req.amount.is_some_and(|a| a != p.amount) {
                return not_applicable(format!(
                    "partial capture is not simulated: send no amount or the authorized amount {}",
                    p.amount
                ));
            }
            p.amount
        }
        "40" => available,
        "51" => {
            if req.amount.is_some_and(|a| a != available) {
                return not_applicable(format!(
                    "51 cancels the whole remaining {available}; use 52 for a partial cash receipt cancel"
                ));
            }
            available
        }
        _ => {
            let amount = req.amount.unwrap_or(0);
            if amount > available {
                return Err(Reject::new(
                    ResCode::P003,
                    format!("amount {amount} exceeds the cancellable balance {available}"),
                ));
            }
            if let Some(remain) = req.remain {
                let convention = settings.remain_amount_convention;
                let expected = convention.expected(available, amount);
                if remain != expected {
                    let which = match convention {
                        crate::settings::RemainAmountConvention::BalanceAfter => "after",
                        _ => "before",
                    };
                    return Err(Reject::new(
                        ResCode::P004,
                        format!(
                            "remainAmount {remain} does not match the cancellable balance {which} this cancel ({expected})"
                        ),
                    ));
                }
            }
            amount
        }
    };

    let escrow = st.is_escrow(req.pg_cno);
    let cancel_pg_cno = st.fresh_id("SBC");
    let approval_no = st.ids.next_id("", 8);
    let p = st
        .payments
        .get_mut(req.pg_cno)
        .ok_or_else(|| not_found(req.pg_cno))?;
    let balance_before = p.remaining;
    if req.code == "20" {
        p.captured = true;
    } else {
        p.remaining = p.remaining.saturating_sub(amount);
    }
    let status = if req.code == "20" { TS04 } else { p.status() };
    let rec = CancelRec {
        cancel_pg_cno,
        shop_transaction_id: req.key.to_owned(),
        endpoint: ApiEndpoint::GenericRevise,
        revise_type_code: req.code.to_owned(),
        requested_amount: req.amount,
        amount,
        balance_before,
        remaining_after: p.remaining,
        status,
        cancel_req_date: req.date.to_owned(),
        transaction_date: now.datetime_string(),
        approval_no,
        notify_url: None,
        withheld: false,
        finish_as: WechatFinal::Apply,
        failure: None,
    };
    let body = generic_success(ctx, req.key, p, &rec, escrow);
    p.cancels.push(rec);
    Ok(body)
}

/// A generic revision's success answer (`escrowUsed` `Y` for an escrow payment).
fn generic_success(ctx: &Ctx<'_>, key: &str, p: &PaymentRec, c: &CancelRec, escrow: bool) -> Bytes {
    let capture = c.revise_type_code == "20";
    let mut revise_info = Map::new();
    revise_info.insert(
        "payMethodTypeCode".into(),
        p.channel.pay_method_type_code().into(),
    );
    revise_info.insert("approvalNo".into(), c.approval_no.clone().into());
    revise_info.insert("approvalDate".into(), c.transaction_date.clone().into());
    match p.channel {
        Channel::Card => {
            revise_info.insert("cardInfo".into(), json!({"couponAmount": 0}));
        }
        Channel::CashReceipt => {
            revise_info.insert(
                "cashReceiptInfo".into(),
                json!({
                    "resCd": "0000",
                    "resMsg": "Cash Receipt Cancelled",
                    "approvalNo": c.approval_no,
                    "cancelDate": c.transaction_date,
                }),
            );
        }
        _ => {}
    }
    let res_msg = if capture {
        "Capture Successful"
    } else if c.status == crate::state::TS06 {
        "Partial Cancellation Successful"
    } else {
        "Cancellation Successful"
    };
    let cancel_amount = if capture { 0 } else { c.amount };
    let body = json!({
        "resCd": "0000",
        "resMsg": res_msg,
        "mallId": ctx.mall_id,
        "shopTransactionId": key,
        "oriPgCno": p.pg_cno,
        "cancelPgCno": c.cancel_pg_cno,
        "shopOrderNo": p.shop_order_no,
        "cancelAmount": cancel_amount.to_string(),
        "remainAmount": c.remaining_after.to_string(),
        "transactionDate": c.transaction_date,
        "statusCode": c.status,
        "statusMessage": status_message(c.status),
        "escrowUsed": if escrow { "Y" } else { "N" },
        "reviseInfo": Value::Object(revise_info),
    });
    Bytes::from(body.to_string())
}
