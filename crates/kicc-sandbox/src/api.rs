//! The KICC endpoints: request checks, business rules and response bodies
//! (the look-up, `retrieveTransaction`, lives in `retrieve`).
//!
//! Everything here is synchronous and runs under the state lock, so one
//! request is processed atomically. Nothing here panics on any input.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::clock::KoreaTime;
use crate::codes::{Reject, ResCode};
use crate::config::SecretKey;
use crate::model::{
    Channel, Currency, ALIPAY_REVISE_PATH, GENERIC_REVISE_PATH, RETRIEVE_TRANSACTION_PATH,
    WECHAT_FIND_PATH, WECHAT_REVISE_PATH,
};
use crate::settings::RefundQueryMatch;
use crate::state::{status_message, CancelRec, KeyRecord, PaymentRec, State, TS01, TS04};
use crate::validate::{
    cancel_req_date_day, check_forbidden, echo, opt_amount, opt_flag, opt_object, opt_str,
    parse_object, req_str, Object,
};
use crate::wechat_final::{form_encode, url_encode, WechatFinal, FAILED_MSG};

/// The KICC endpoints the sandbox serves (its routing table; a new endpoint
/// is a new variant plus a row in [`ApiEndpoint::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ApiEndpoint {
    GenericRevise,
    AlipayRevise,
    WechatRevise,
    WechatFind,
    RetrieveTransaction,
}

impl ApiEndpoint {
    pub(crate) const ALL: [ApiEndpoint; 5] = [
        Self::GenericRevise,
        Self::AlipayRevise,
        Self::WechatRevise,
        Self::WechatFind,
        Self::RetrieveTransaction,
    ];

    pub(crate) const fn path(self) -> &'static str {
        match self {
            Self::GenericRevise => GENERIC_REVISE_PATH,
            Self::AlipayRevise => ALIPAY_REVISE_PATH,
            Self::WechatRevise => WECHAT_REVISE_PATH,
            Self::WechatFind => WECHAT_FIND_PATH,
            Self::RetrieveTransaction => RETRIEVE_TRANSACTION_PATH,
        }
    }

    pub(crate) fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.path() == path)
    }

    /// The channel the Alipay / WeChat endpoints serve.
    fn channel(self) -> Option<Channel> {
        match self {
            Self::AlipayRevise => Some(Channel::Alipay),
            Self::WechatRevise | Self::WechatFind => Some(Channel::Wechat),
            Self::GenericRevise | Self::RetrieveTransaction => None,
        }
    }

    fn is_wechat(self) -> bool {
        matches!(self, Self::WechatRevise | Self::WechatFind)
    }
}

/// What the server needs besides the state.
pub(crate) struct Ctx<'a> {
    pub(crate) mall_id: &'a str,
    pub(crate) secret: &'a SecretKey,
}

/// A WeChat cancel to apply later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FinalizeJob {
    pub(crate) generation: u64,
    pub(crate) pg_cno: String,
    pub(crate) cancel_pg_cno: String,
}

/// The response body plus work to schedule.
#[derive(Debug)]
pub(crate) struct ApiOutput {
    pub(crate) body: Bytes,
    pub(crate) jobs: Vec<FinalizeJob>,
}

impl ApiOutput {
    pub(crate) fn body(body: Bytes) -> Self {
        Self {
            body,
            jobs: Vec::new(),
        }
    }
}

const GENERIC_CODES: [&str; 6] = ["20", "32", "33", "40", "51", "52"];
const OVERSEAS_CODES: [&str; 2] = ["40", "32"];

/// Handles one call to an API endpoint; always yields a JSON body with `resCd`.
pub(crate) fn handle(ep: ApiEndpoint, st: &mut State, ctx: &Ctx<'_>, body: &[u8]) -> ApiOutput {
    let now = st.now();
    let obj = match parse_object(body) {
        Ok(obj) => obj,
        Err(r) => return ApiOutput::body(error_body(ep, &r, None, None)),
    };
    let result = match ep {
        ApiEndpoint::GenericRevise => generic_revise(st, ctx, now, &obj),
        ApiEndpoint::AlipayRevise | ApiEndpoint::WechatRevise => {
            overseas_revise(ep, st, ctx, now, &obj)
        }
        ApiEndpoint::WechatFind => wechat_find(st, ctx, now, &obj),
        ApiEndpoint::RetrieveTransaction => {
            crate::retrieve::retrieve_transaction(st, ctx, now, &obj)
        }
    };
    result.unwrap_or_else(|r| {
        ApiOutput::body(error_body(
            ep,
            &r,
            echo(&obj, "shopTransactionId"),
            echo(&obj, "mallId"),
        ))
    })
}

/// The body of an injected `resCd` fault: a plausible message and the echoed
/// key; `resDetailMsg` (form-encoded) when the fault has one, and on the
/// WeChat endpoints always (the message's, when the fault has none).
pub(crate) fn fault_body(
    ep: ApiEndpoint,
    code: &str,
    detail: Option<&str>,
    request: &[u8],
) -> Bytes {
    let msg = match code {
        "VTIM" | "VT00" => {
            "Instant refund timed out; resend with a new shopTransactionId and refundQueryFlag Y"
        }
        c if c.starts_with("A21") => {
            "Cancellation is being processed; retry with the same shopTransactionId and cancelReqDate"
        }
        _ => "Simulated gateway error (sandbox fault)",
    };
    let obj = parse_object(request).ok();
    let key = obj.as_ref().and_then(|o| echo(o, "shopTransactionId"));
    let mall = obj.as_ref().and_then(|o| echo(o, "mallId"));
    let mut out = Map::new();
    out.insert("resCd".into(), code.into());
    out.insert("resMsg".into(), msg.into());
    out.insert("shopTransactionId".into(), key.unwrap_or("").into());
    if let Some(m) = mall {
        out.insert("mallId".into(), m.into());
    }
    match detail {
        Some(d) => {
            out.insert("resDetailMsg".into(), form_encode(d).into());
        }
        None if ep.is_wechat() => {
            out.insert("resDetailMsg".into(), url_encode(msg).into());
        }
        None => {}
    }
    Bytes::from(Value::Object(out).to_string())
}

pub(crate) fn error_body(
    ep: ApiEndpoint,
    r: &Reject,
    key: Option<&str>,
    mall: Option<&str>,
) -> Bytes {
    let mut out = Map::new();
    out.insert("resCd".into(), r.code.as_str().into());
    out.insert("resMsg".into(), r.msg.clone().into());
    out.insert("shopTransactionId".into(), key.unwrap_or("").into());
    if let Some(m) = mall {
        out.insert("mallId".into(), m.into());
    }
    if ep.is_wechat() {
        out.insert("resDetailMsg".into(), url_encode(&r.msg).into());
    }
    Bytes::from(Value::Object(out).to_string())
}

fn prefixed(prefix: &str) -> impl Fn(Reject) -> Reject + '_ {
    move |r| Reject::new(r.code, format!("{prefix}.{}", r.msg))
}

pub(crate) fn check_mall(ctx: &Ctx<'_>, mall_id: &str) -> Result<(), Reject> {
    if mall_id == ctx.mall_id {
        Ok(())
    } else {
        Err(Reject::new(
            ResCode::V007,
            format!("mallId {mall_id} is not known to this sandbox"),
        ))
    }
}

/// Checks `msgAuthValue` = lowercase hex HMAC-SHA256(secret, pgCno|shopTransactionId),
/// comparing in constant time.
fn check_mac(ctx: &Ctx<'_>, pg_cno: &str, key: &str, mac: &str) -> Result<(), Reject> {
    let reject = || {
        Reject::new(
            ResCode::V008,
            "msgAuthValue does not match HMAC-SHA256 over pgCno|shopTransactionId (64 lowercase hex characters)",
        )
    };
    let mut hmac = Hmac::<Sha256>::new_from_slice(ctx.secret.as_bytes()).map_err(|_| reject())?;
    hmac.update(pg_cno.as_bytes());
    hmac.update(b"|");
    hmac.update(key.as_bytes());
    let well_formed = mac.len() == 64
        && mac
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(reject());
    }
    let given = hex::decode(mac).map_err(|_| reject())?;
    hmac.verify_slice(&given).map_err(|_| reject())
}

fn require_today(date: &str, date_day: i64, now: KoreaTime) -> Result<(), Reject> {
    if date_day == now.day {
        Ok(())
    } else {
        Err(Reject::new(
            ResCode::V006,
            format!(
                "cancelReqDate {date} is not the current Korea date {}",
                now.date_string()
            ),
        ))
    }
}

fn not_found(pg_cno: &str) -> Reject {
    Reject::new(ResCode::P001, format!("payment {pg_cno} not found"))
}

fn fully_cancelled(pg_cno: &str) -> Reject {
    Reject::new(
        ResCode::P002,
        format!("payment {pg_cno} is already fully cancelled"),
    )
}

// ---------------------------------------------------------------------------
// Generic cancel: /api/trades/revise
// ---------------------------------------------------------------------------

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

fn generic_revise(
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
                crate::wechatpay::WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH
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

// ---------------------------------------------------------------------------
// Alipay and WeChat cancel: /api/trades/alipay/revise, /api/trades/wechatpay/revise
// ---------------------------------------------------------------------------

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

fn overseas_revise(
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

// ---------------------------------------------------------------------------
// WeChat cancellation status: /api/trades/wechatpay/find
// ---------------------------------------------------------------------------

fn wechat_find(
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx_secret() -> SecretKey {
        SecretKey::new("sandbox-secret-key")
    }

    #[test]
    fn mac_vector_from_openssl() {
        // Produced with:
        // printf 'SBP00000000000000001|KEY-1' | openssl dgst -sha256 -hmac 'sandbox-secret-key'
        let good = "c08d52c46ef56b3cfaf8f4988241e07e0ed1c10337ac5189fa924c383df5aad2";
        let secret = ctx_secret();
        let ctx = Ctx {
            mall_id: "T0000001",
            secret: &secret,
        };
        let pg = "SBP00000000000000001";
        assert_eq!(check_mac(&ctx, pg, "KEY-1", good), Ok(()));
        for bad in [
            good.to_uppercase(),
            good.replace('c', "d"),
            good[..63].to_owned(),
            format!("{good}0"),
            "zz".to_owned(),
            String::new(),
        ] {
            assert_eq!(
                check_mac(&ctx, pg, "KEY-1", &bad).unwrap_err().code,
                ResCode::V008
            );
        }
        // Signed over a different key or payment: rejected.
        assert!(check_mac(&ctx, pg, "KEY-2", good).is_err());
        assert!(check_mac(&ctx, "SBP00000000000000002", "KEY-1", good).is_err());
    }

    proptest! {
        // Nothing parsed from the network may panic, and every answer is a
        // JSON object with a four-character resCd.
        #[test]
        fn any_body_gets_a_json_answer(body in proptest::collection::vec(any::<u8>(), 0..300), ep in 0usize..ApiEndpoint::ALL.len()) {
            let secret = ctx_secret();
            let ctx = Ctx { mall_id: "T0000001", secret: &secret };
            let mut st = State::new(1, 0);
            let ep = ApiEndpoint::ALL[ep];
            let out = handle(ep, &mut st, &ctx, &body);
            let v: Value = serde_json::from_slice(&out.body).unwrap();
            prop_assert_eq!(v["resCd"].as_str().map(str::len), Some(4));
        }

        #[test]
        fn any_json_object_gets_a_json_answer(
            fields in proptest::collection::btree_map(
                prop_oneof![
                    Just("mallId".to_owned()), Just("shopTransactionId".to_owned()),
                    Just("pgCno".to_owned()), Just("reviseTypeCode".to_owned()),
                    Just("cancelReqDate".to_owned()), Just("msgAuthValue".to_owned()),
                    Just("amount".to_owned()), Just("amountInfo".to_owned()),
                    Just("taxInfo".to_owned()), Just("basketInfo".to_owned()),
                    Just("basketUsed".to_owned()), Just("refundQueryFlag".to_owned()),
                    Just("cancelPgCno".to_owned()), Just("remainAmount".to_owned()),
                    Just("transactionDate".to_owned()),
                ],
                prop_oneof![
                    Just(Value::Null), any::<bool>().prop_map(Value::from),
                    any::<i64>().prop_map(Value::from), any::<f64>().prop_map(|f| json!(f)),
                    "\\PC{0,70}".prop_map(Value::from),
                    Just(json!({"currency": "KRW", "totAmount": 5})),
                    Just(json!({"taxationAmount": 1})),
                    Just(json!(["x"])),
                ],
                0..10,
            ),
            ep in 0usize..ApiEndpoint::ALL.len(),
        ) {
            let secret = ctx_secret();
            let ctx = Ctx { mall_id: "T0000001", secret: &secret };
            let mut st = State::new(1, 0);
            let body = serde_json::to_vec(&fields).unwrap();
            let out = handle(ApiEndpoint::ALL[ep], &mut st, &ctx, &body);
            let v: Value = serde_json::from_slice(&out.body).unwrap();
            prop_assert!(v["resCd"].is_string());
            prop_assert_ne!(v["resCd"].as_str(), Some("0000"));
        }
    }
}
