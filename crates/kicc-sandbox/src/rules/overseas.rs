//! Layer 3, rules (KICC): the Alipay and WeChat cancels
//! (`/api/trades/alipay/revise`, `/api/trades/wechatpay/revise`) and the
//! WeChat cancellation status (`/api/trades/wechatpay/find`).

use bytes::Bytes;
use serde_json::json;

use crate::clock::KoreaTime;
use crate::codes::{Reject, ResCode};
use crate::model::{Channel, Currency};
use crate::routes::{ApiEndpoint, WECHAT_FIND_PATH};
use crate::rules::common::{
    check_mac, check_mall, error_body, fully_cancelled, not_found, prefixed, require_today,
    ApiOutput, Ctx, FinalizeJob, OVERSEAS_CODES,
};
use crate::state::{CancelRec, KeyRecord, State, TS01};
use crate::validate::{
    cancel_req_date_day, check_forbidden, opt_amount, opt_object, opt_str, req_str, Object,
};
use crate::wechat_final::{form_encode, WechatFinal, FAILED_MSG};

struct OverseasReq<'a> {
    mall_id: &'a str,
    key: &'a str,
    pg_cno: &'a str,
    code: &'a str,
    date: &'a str,
    date_day: i64,
    mac: &'a str,
    notify_url: Option<&'a str>,
    /// `amountInfo` (partial cancel only).
    amount: Option<(Currency, u64)>,
}

fn parse_overseas(ep: ApiEndpoint, obj: &Object) -> Result<OverseasReq<'_>, Reject> {
    let mall_id = req_str(obj, "mallId", 8)?;
    let key = req_str(obj, "shopTransactionId", 60)?;
    let pg_cno = req_str(obj, "pgCno", 60)?;
    let code = req_str(obj, "reviseTypeCode", 2)?;
    let date = req_str(obj, "cancelReqDate", 8)?;
    let mac = req_str(obj, "msgAuthValue", 200)?;
    let notify_url = if ep == ApiEndpoint::WechatRevise {
        opt_str(obj, "notifyUrl", 1000)?
    } else {
        None
    };
    opt_str(obj, "memo", 400)?;
    opt_str(obj, "regId", 40)?;
    let amount_info = opt_object(obj, "amountInfo")?;
    check_forbidden(obj)?;
    if !OVERSEAS_CODES.contains(&code) {
        return Err(Reject::new(
            ResCode::V004,
            format!(
                "reviseTypeCode {code} is not allowed on {} (allowed: 40 full, 32 partial)",
                ep.path()
            ),
        ));
    }
    let amount = match (code, amount_info) {
        ("40", Some(_)) => {
            return Err(Reject::new(
                ResCode::V005,
                "amountInfo must not be sent with full cancel code 40",
            ))
        }
        ("40", None) => None,
        (_, None) => {
            return Err(Reject::new(
                ResCode::V005,
                "amountInfo {currency, totAmount} is required for partial cancel code 32",
            ))
        }
        (_, Some(ai)) => {
            // The page declares "2Byte" for a field holding "KRW"/"USD": 3 is allowed.
            let currency = opt_str(ai, "currency", 3).map_err(prefixed("amountInfo"))?;
            let currency = match currency {
                None => {
                    return Err(Reject::new(
                        ResCode::V005,
                        "amountInfo.currency is required for partial cancel code 32",
                    ))
                }
                Some(c) => Currency::parse(c).ok_or_else(|| {
                    Reject::new(
                        ResCode::V005,
                        format!("amountInfo.currency must be KRW or USD, got {c}"),
                    )
                })?,
            };
            let total = opt_amount(ai, "totAmount", false)
                .map_err(prefixed("amountInfo"))?
                .ok_or_else(|| {
                    Reject::new(
                        ResCode::V005,
                        "amountInfo.totAmount is required for partial cancel code 32",
                    )
                })?;
            Some((currency, total))
        }
    };
    let date_day = cancel_req_date_day(date)?;
    Ok(OverseasReq {
        mall_id,
        key,
        pg_cno,
        code,
        date,
        date_day,
        mac,
        notify_url,
        amount,
    })
}

pub(crate) fn overseas_revise(
    ep: ApiEndpoint,
    st: &mut State,
    ctx: &Ctx<'_>,
    now: KoreaTime,
    obj: &Object,
) -> Result<ApiOutput, Reject> {
    let req = parse_overseas(ep, obj)?;
    check_mall(ctx, req.mall_id)?;
    check_mac(ctx, req.pg_cno, req.key, req.mac)?;
    if let Some(rec) = st.key(req.key) {
        if rec.endpoint == ep && rec.pg_cno == req.pg_cno {
            // A documented retry: same key, same payment. It must carry the
            // first attempt's date, and gets the first attempt's answer.
            if rec.cancel_req_date != req.date {
                return Err(Reject::new(
                    ResCode::V006,
                    format!(
                        "a retry with shopTransactionId {} must reuse the first attempt's cancelReqDate {}, got {}",
                        req.key, rec.cancel_req_date, req.date
                    ),
                ));
            }
            let body = rec.body.clone();
            st.tx_log.record(req.key, now.day, &body);
            return Ok(ApiOutput::body(body));
        }
        if rec.day == now.day {
            return Err(Reject::new(
                ResCode::D001,
                format!(
                    "shopTransactionId {} was already used today (Korea time) for another request",
                    req.key
                ),
            ));
        }
    }
    require_today(req.date, req.date_day, now)?;
    let mut jobs = Vec::new();
    let body = match overseas_business(ep, st, ctx, now, &req) {
        Ok((body, job)) => {
            jobs.extend(job);
            body
        }
        Err(r) => error_body(ep, &r, Some(req.key), Some(req.mall_id)),
    };
    st.tx_log.record(req.key, now.day, &body);
    st.record_key(
        req.key,
        KeyRecord {
            day: now.day,
            endpoint: ep,
            pg_cno: req.pg_cno.to_owned(),
            cancel_req_date: req.date.to_owned(),
            body: body.clone(),
        },
    );
    Ok(ApiOutput { body, jobs })
}

fn overseas_business(
    ep: ApiEndpoint,
    st: &mut State,
    ctx: &Ctx<'_>,
    now: KoreaTime,
    req: &OverseasReq<'_>,
) -> Result<(Bytes, Option<FinalizeJob>), Reject> {
    let p = st
        .payments
        .get(req.pg_cno)
        .ok_or_else(|| not_found(req.pg_cno))?;
    let wanted = ep.channel().unwrap_or(Channel::Card);
    if p.channel != wanted {
        return Err(Reject::new(
            ResCode::P005,
            format!(
                "payment {} is a {} payment; {} cancels {wanted} payments only",
                p.pg_cno,
                p.channel,
                ep.path()
            ),
        ));
    }
    let available = p.available();
    if available == 0 {
        return Err(fully_cancelled(req.pg_cno));
    }
    let amount = match req.amount {
        None => available,
        Some((currency, total)) => {
            if currency != p.currency {
                return Err(Reject::new(
                    ResCode::P006,
                    format!(
                        "amountInfo.currency {currency} differs from the payment's currency {}",
                        p.currency
                    ),
                ));
            }
            if total > available {
                return Err(Reject::new(
                    ResCode::P003,
                    format!(
                        "amountInfo.totAmount {total} exceeds the cancellable balance {available}"
                    ),
                ));
            }
            total
        }
    };
    let pending = ep == ApiEndpoint::WechatRevise;
    let withheld = pending && st.take_withhold();
    let finish_as = if pending {
        st.take_wechat_final()
    } else {
        WechatFinal::Apply
    };
    let cancel_pg_cno = st.fresh_id("SBC");
    let approval_no = st.ids.next_id("", 8);
    let generation = st.generation;
    let p = st
        .payments
        .get_mut(req.pg_cno)
        .ok_or_else(|| not_found(req.pg_cno))?;
    let balance_before = p.remaining;
    if pending {
        p.reserved = p.reserved.saturating_add(amount);
    } else {
        p.remaining = p.remaining.saturating_sub(amount);
    }
    let rec = CancelRec {
        cancel_pg_cno: cancel_pg_cno.clone(),
        shop_transaction_id: req.key.to_owned(),
        endpoint: ep,
        revise_type_code: req.code.to_owned(),
        requested_amount: req.amount.map(|(_, a)| a),
        amount,
        balance_before,
        remaining_after: p.remaining,
        status: if pending { TS01 } else { p.status() },
        cancel_req_date: req.date.to_owned(),
        transaction_date: now.datetime_string(),
        approval_no,
        notify_url: req.notify_url.map(str::to_owned),
        withheld,
        finish_as,
        failure: None,
    };
    let body = json!({
        "resCd": "0000",
        "resMsg": "Success",
        "mallId": ctx.mall_id,
        "shopTransactionId": req.key,
        "pgCno": p.pg_cno,
        "cancelPgCno": rec.cancel_pg_cno,
        "transactionDate": rec.transaction_date,
        "amountInfo": {"currency": p.currency.as_str(), "totAmount": amount},
    });
    p.cancels.push(rec);
    let job = pending.then(|| FinalizeJob {
        generation,
        pg_cno: req.pg_cno.to_owned(),
        cancel_pg_cno,
    });
    Ok((Bytes::from(body.to_string()), job))
}

pub(crate) fn wechat_find(
    st: &mut State,
    ctx: &Ctx<'_>,
    now: KoreaTime,
    obj: &Object,
) -> Result<ApiOutput, Reject> {
    let mall_id = req_str(obj, "mallId", 8)?;
    let key = req_str(obj, "shopTransactionId", 60)?;
    let pg_cno = req_str(obj, "pgCno", 60)?;
    let cancel_pg_cno = req_str(obj, "cancelPgCno", 60)?;
    // Not on the page: checked only when a client sends it anyway.
    let mac = opt_str(obj, "msgAuthValue", 200)?;
    check_forbidden(obj)?;
    check_mall(ctx, mall_id)?;
    if let Some(mac) = mac {
        check_mac(ctx, pg_cno, key, mac)?;
    }
    if st.key(key).is_some_and(|r| r.day == now.day) {
        return Err(Reject::new(
            ResCode::D001,
            format!("shopTransactionId {key} was already used today (Korea time)"),
        ));
    }
    let body = match find_business(st, ctx, key, pg_cno, cancel_pg_cno) {
        Ok(body) => body,
        Err(r) => error_body(ApiEndpoint::WechatFind, &r, Some(key), Some(mall_id)),
    };
    st.record_key(
        key,
        KeyRecord {
            day: now.day,
            endpoint: ApiEndpoint::WechatFind,
            pg_cno: pg_cno.to_owned(),
            cancel_req_date: String::new(),
            body: body.clone(),
        },
    );
    Ok(ApiOutput::body(body))
}

fn find_business(
    st: &State,
    ctx: &Ctx<'_>,
    key: &str,
    pg_cno: &str,
    cancel_pg_cno: &str,
) -> Result<Bytes, Reject> {
    let p = st.payments.get(pg_cno).ok_or_else(|| not_found(pg_cno))?;
    if p.channel != Channel::Wechat {
        return Err(Reject::new(
            ResCode::P005,
            format!(
                "payment {pg_cno} is a {} payment; {WECHAT_FIND_PATH} answers for wechat payments only",
                p.channel
            ),
        ));
    }
    let c = p
        .cancels
        .iter()
        .find(|c| c.cancel_pg_cno == cancel_pg_cno)
        .ok_or_else(|| {
            Reject::new(
                ResCode::P001,
                format!("cancel {cancel_pg_cno} of payment {pg_cno} not found"),
            )
        })?;
    let mut body = json!({
        "resCd": "0000",
        "resMsg": "Success",
        "shopTransactionId": key,
        "mallId": ctx.mall_id,
        "pgCno": pg_cno,
        "cancelPgCno": cancel_pg_cno,
        "transactionDate": c.transaction_date,
        "cancelStatus": c.status,
        "amountInfo": {"currency": p.currency.as_str(), "totAmount": c.amount},
    });
    if let (Some((code, detail)), Some(obj)) = (&c.failure, body.as_object_mut()) {
        // A failed cancel: the failure's code, with the status still TS01.
        obj.insert("resCd".into(), code.clone().into());
        obj.insert("resMsg".into(), FAILED_MSG.into());
        obj.insert(
            "resDetailMsg".into(),
            form_encode(detail.as_deref().unwrap_or(FAILED_MSG)).into(),
        );
    }
    Ok(Bytes::from(body.to_string()))
}
