//! `kicc cancel` and `kicc status wechat`: KICC requests from the command line.
//!
//! Every input is validated by the SDK's own builders before anything is sent (exit 2 names the
//! field and the rule). `--dry-run` prints the exact request the SDK would send, as one JSON
//! object `{"method", "url", "headers", "body"}`, where `body` is the exact body text.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime};

use kicc_core::lookup::SANDBOX_NOT_FOUND_CODE;
use kicc_core::retry::RetryPolicy;
use kicc_core::wallet::{WalletApi, WalletCancel};
use kicc_core::wire::ResponseAmountInfo;
use kicc_core::{
    Amount, ClientId, ClientIp, Currency, Error, FieldError, KoreaDate, Memo, NotifyUrl, RegId,
    ReviseMessage, ShopTransactionId, TransactionStatus,
};
use kicc_transport::driver::os_rng;
use kicc_wechat::{
    Accepted, FindResponse, ResultWaiter, StatusQuery, WaitAction, WaitPolicy, WechatClient,
};
use serde_json::{json, Value};

use crate::cli::{CancelArgs, CancelChannel, EnvName, Global, MethodName, StatusArgs};
use crate::creds;
use crate::exit::{Exit, Failure, Report};
use crate::observe::Observed;
use crate::resume;

/// The dry-run object: exactly these four keys, in this order.
#[derive(serde::Serialize)]
struct DryRun {
    method: String,
    url: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// Prints `request` as the contract's dry-run object.
pub fn dry_run(request: &http::Request<bytes::Bytes>) -> Result<Report, Failure> {
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = String::from_utf8(request.body().to_vec())
        .map_err(|_| Failure::local("the request body is not UTF-8 text"))?;
    let out = DryRun {
        method: request.method().as_str().to_owned(),
        url: request.uri().to_string(),
        headers,
        body,
    };
    pretty(&out)
}

/// `value` as pretty JSON, exit 0.
fn pretty<T: serde::Serialize>(value: &T) -> Result<Report, Failure> {
    serde_json::to_string_pretty(value)
        .map(Report::ok)
        .map_err(|e| Failure::local(format!("cannot write JSON: {e}")))
}

fn to_pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The key given with `--shop-transaction-id`, or a new one.
fn key_or_new(given: Option<&str>) -> Result<ShopTransactionId, Failure> {
    match given {
        Some(k) => Ok(ShopTransactionId::new(k)?),
        None => Ok(ShopTransactionId::generate(
            SystemTime::now(),
            &mut os_rng(),
        )),
    }
}

/// The retry policy of a cancel (`kicc cancel`, `kicc batch run`): attempts, the processing
/// bound, the clock skew, and the look-up's "not found" codes, which default to the sandbox's
/// R001 with `--env sandbox` (KICC does not document its own).
pub fn retry_policy(
    global: &Global,
    max_attempts: u32,
    processing_bound: Duration,
    clock_skew: Duration,
    not_found_codes: &[String],
) -> Result<RetryPolicy, FieldError> {
    let mut codes = not_found_codes.to_vec();
    if codes.is_empty() && global.env == EnvName::Sandbox {
        codes.push(SANDBOX_NOT_FOUND_CODE.to_owned());
    }
    RetryPolicy::builder()
        .max_attempts(max_attempts)
        .processing_bound(processing_bound)
        .clock_skew(clock_skew)
        .lookup_not_found_codes(codes)
        .build()
}

fn cancel_policy(global: &Global, args: &CancelArgs) -> Result<RetryPolicy, FieldError> {
    retry_policy(
        global,
        args.max_attempts,
        args.processing_bound,
        args.clock_skew,
        &args.lookup_not_found_code,
    )
}

fn query_policy(max_attempts: u32) -> Result<RetryPolicy, FieldError> {
    RetryPolicy::builder().max_attempts(max_attempts).build()
}

/// Whether progress lines go to stderr.
pub fn progress_wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// `amountInfo` of a response, with the amount also in major units.
fn amount_json(info: Option<&ResponseAmountInfo>) -> Value {
    match info {
        None => Value::Null,
        Some(a) => {
            let major = match (a.tot_amount, Currency::parse("currency", &a.currency)) {
                (Some(minor), Ok(c)) => kicc_core::Amount::new("amount", minor)
                    .map(|m| format!("{} {c}", m.display_major(c)))
                    .ok(),
                _ => None,
            };
            json!({
                "currency": a.currency,
                "totAmount": a.tot_amount,
                "display": major,
            })
        }
    }
}

fn status_text(s: Option<&TransactionStatus>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.code().to_owned()))
}

/// Refuses options that the chosen channel does not take (exit 2, nothing sent).
fn check_channel_options(args: &CancelArgs) -> Result<(), Failure> {
    let generic_only: [(&str, bool); 13] = [
        ("remain-amount", args.remain_amount.is_some()),
        (
            "remain-amount-convention",
            args.remain_amount_convention.is_some(),
        ),
        ("method", args.method.is_some()),
        ("tax-amount", args.tax_amount.is_some()),
        ("vat-amount", args.vat_amount.is_some()),
        ("tax-free-amount", args.tax_free_amount.is_some()),
        ("basket", args.basket.is_some()),
        ("client-ip", args.client_ip.is_some()),
        ("client-id", args.client_id.is_some()),
        ("resume-key", !args.resume_key.is_empty()),
        (
            "resume-refund-query-key",
            !args.resume_refund_query_key.is_empty(),
        ),
        ("lookup-after", args.lookup_after.is_some()),
        ("refund-query", args.refund_query),
    ];
    let wallet_only: [(&str, bool); 2] = [
        ("reg-id", args.reg_id.is_some()),
        ("cancel-req-date", args.cancel_req_date.is_some()),
    ];
    let refused = |name: &str, only: &str| {
        Failure::invalid(format!(
            "{name}: is only taken by {only}, not by the {} channel",
            args.channel.name()
        ))
    };
    match args.channel {
        CancelChannel::Generic => {
            if let Some((name, _)) = wallet_only.iter().find(|(_, given)| *given) {
                return Err(refused(name, "alipay and wechat"));
            }
            let resuming = !args.resume_key.is_empty() || !args.resume_refund_query_key.is_empty();
            if args.refund_query && !resuming {
                return Err(Failure::invalid(
                    "refund-query: needs --resume-key: a refund query can itself cancel, so it is only sent after the earlier keys were looked up",
                ));
            }
            if args.lookup_after.is_some() && !resuming {
                return Err(Failure::invalid("lookup-after: needs --resume-key"));
            }
        }
        CancelChannel::Alipay | CancelChannel::Wechat => {
            if let Some((name, _)) = generic_only.iter().find(|(_, given)| *given) {
                return Err(refused(name, "generic"));
            }
            if args.cancel_req_date.is_some() && args.shop_transaction_id.is_none() {
                return Err(Failure::invalid(
                    "cancel-req-date: needs --shop-transaction-id: together they name the earlier message to resend",
                ));
            }
        }
    }
    if args.channel == CancelChannel::Wechat {
        if args.wait.is_some() && args.dry_run {
            return Err(Failure::invalid(
                "wait: cannot be combined with --dry-run, which sends nothing",
            ));
        }
        return Ok(());
    }
    if args.notify_url.is_some() {
        return Err(Failure::invalid(format!(
            "notifyUrl: is only sent on the wechat channel, not {}",
            args.channel.name()
        )));
    }
    if args.wait.is_some() {
        return Err(Failure::invalid(format!(
            "wait: only WeChat Pay results come later; a {} cancel is final when answered",
            args.channel.name()
        )));
    }
    Ok(())
}

/// `--remain-amount-convention` (clap has checked the value; absent: the SDK's default).
pub fn remain_convention(name: Option<&str>) -> kicc_generic::RemainAmountConvention {
    match name {
        Some("balanceAfter") => kicc_generic::RemainAmountConvention::BalanceAfterCancel,
        _ => kicc_generic::RemainAmountConvention::BalanceBeforeCancel,
    }
}

/// The generic request the options describe.
fn generic_request(args: &CancelArgs) -> Result<kicc_generic::CancelRequest, Failure> {
    let code = match (&args.revise_type, args.method, &args.amount) {
        (Some(code), Some(method), _) => {
            let wanted = payment_method(method).partial_code();
            if code != wanted.as_str() && code != "40" {
                return Err(Failure::invalid(format!(
                    "type: a {} payment is partly cancelled with reviseTypeCode {wanted}, not {code}",
                    method_name(method)
                )));
            }
            Some(code.clone())
        }
        (Some(code), None, _) => Some(code.clone()),
        (None, Some(method), Some(_)) => {
            Some(payment_method(method).partial_code().as_str().to_owned())
        }
        (None, _, _) => None,
    };
    let mut request = kicc_generic::CancelRequest::from_text(
        kicc_core::CancelText::new(&args.pg_cno)
            .code(code.as_deref())
            .amount(args.amount.as_deref())
            .currency(args.currency.as_deref()),
    )?;
    if let Some(r) = &args.reason {
        request = request.reason(ReviseMessage::new(r.as_str())?);
    }
    if let Some(balance) = &args.remain_amount {
        request = request
            .remain_amount(Amount::parse_major("remainAmount", Currency::Krw, balance)?)?
            .remain_amount_convention(remain_convention(args.remain_amount_convention.as_deref()));
    }
    match (args.tax_amount, args.tax_free_amount, args.vat_amount) {
        (None, None, None) => {}
        (Some(tax), Some(free), Some(vat)) => {
            request = request.tax_info(kicc_generic::TaxInfo::new(tax, free, vat)?);
        }
        _ => return Err(Failure::invalid(
            "taxInfo: needs all three of --tax-amount, --tax-free-amount and --vat-amount, or none",
        )),
    }
    if let Some(path) = &args.basket {
        let text = std::fs::read(path).map_err(|e| {
            Failure::invalid(format!("basket: cannot read {}: {e}", path.display()))
        })?;
        let basket: kicc_generic::BasketInfo = serde_json::from_slice(&text).map_err(|e| {
            Failure::invalid(format!(
                "basket: {} is not {{\"productPgCno\": \"...\", \"sellerId\": \"...\"}}: {e}",
                path.display()
            ))
        })?;
        request = request.basket(basket);
    }
    if let Some(ip) = &args.client_ip {
        request = request.client_ip(ClientIp::new(ip.as_str())?);
    }
    if let Some(id) = &args.client_id {
        request = request.client_id(ClientId::new(id.as_str())?);
    }
    Ok(request)
}

fn payment_method(m: MethodName) -> kicc_generic::PaymentMethod {
    match m {
        MethodName::Card => kicc_generic::PaymentMethod::Card,
        MethodName::Transfer => kicc_generic::PaymentMethod::BankTransfer,
        MethodName::Mobile => kicc_generic::PaymentMethod::Mobile,
    }
}

fn method_name(m: MethodName) -> &'static str {
    match m {
        MethodName::Card => "card",
        MethodName::Transfer => "transfer",
        MethodName::Mobile => "mobile",
    }
}

/// The `cancelReqDate` of a resumed wallet message, and the instant that gives it.
fn wallet_date(args: &CancelArgs) -> Result<(SystemTime, Option<KoreaDate>), Failure> {
    match &args.cancel_req_date {
        None => Ok((SystemTime::now(), None)),
        Some(d) => {
            let date = KoreaDate::parse("cancelReqDate", d)?;
            Ok((date.start(), Some(date)))
        }
    }
}

/// An SDK error as the command's failure; an unknown outcome ends with the command that
/// resumes it safely.
fn cancel_failure(
    e: Error,
    args: &CancelArgs,
    wallet_key: Option<(&ShopTransactionId, KoreaDate)>,
) -> Failure {
    let argv: Vec<String> = std::env::args().collect();
    let mut failure = Failure::from(e.clone());
    if let Error::Ambiguous {
        sent, lookup_after, ..
    } = &e
    {
        let command = match (args.channel, wallet_key) {
            (CancelChannel::Generic, _) => {
                Some(resume::generic_command(&argv, sent, *lookup_after))
            }
            (_, Some((key, date))) => Some(resume::wallet_command(&argv, key, date)),
            (_, None) => None,
        };
        if let Some(command) = command {
            failure.message = format!(
                "{}; do not send a new cancel: resume this one with: {command}",
                failure.message
            );
        }
    }
    failure
}

/// `kicc cancel <channel> ...`.
pub async fn cancel(global: &Global, args: &CancelArgs) -> Result<Report, Failure> {
    check_channel_options(args)?;
    match args.channel {
        CancelChannel::Generic => cancel_generic(global, args).await,
        CancelChannel::Alipay => cancel_alipay(global, args).await,
        CancelChannel::Wechat => cancel_wechat(global, args).await,
    }
}

async fn cancel_generic(global: &Global, args: &CancelArgs) -> Result<Report, Failure> {
    let request = generic_request(args)?;
    let bound = args.processing_bound;
    let resumed = resume::attempts(
        &args.resume_key,
        &args.resume_refund_query_key,
        args.lookup_after.as_deref(),
        bound,
    )?;
    let key = key_or_new(args.shop_transaction_id.as_deref())?;
    let merchant = creds::merchant(global)?;
    if args.dry_run {
        let message = if args.refund_query {
            request.message_with(&merchant, key, SystemTime::now(), true)
        } else {
            request.message(&merchant, key, SystemTime::now())
        };
        return dry_run(&message.to_http(&merchant)?);
    }
    let transport = Observed::new(creds::transport(global)?, progress_wanted());
    let client = kicc_generic::GenericClient::with_transport(merchant, transport)
        .with_retry_policy(cancel_policy(global, args)?);
    let outcome = if resumed.is_empty() {
        client.cancel_with_key(&request, key).await
    } else if args.refund_query {
        client
            .resume_with_refund_query(&request, resumed, key)
            .await
    } else {
        client.resume(&request, resumed).await
    };
    let r = outcome.map_err(|e| cancel_failure(e, args, None))?;
    pretty(&json!({
        "result": "cancelled",
        "channel": "generic",
        "resCd": r.res_cd,
        "resMsg": r.res_msg,
        "pgCno": r.ori_pg_cno,
        "cancelPgCno": r.cancel_pg_cno,
        "shopTransactionId": r.shop_transaction_id,
        "reviseTypeCode": request.code().as_str(),
        "cancelAmount": r.cancel_amount,
        "remainAmount": r.remain_amount,
        "statusCode": status_text(r.status_code.as_ref()),
        "transactionDate": r.transaction_date,
    }))
}

/// The Alipay / WeChat Pay request the options describe (the two APIs share its rules).
fn wallet_request<C: WalletApi>(args: &CancelArgs) -> Result<WalletCancel<C>, Failure> {
    let mut request = WalletCancel::<C>::from_text(
        kicc_core::CancelText::new(&args.pg_cno)
            .code(args.revise_type.as_deref())
            .amount(args.amount.as_deref())
            .currency(args.currency.as_deref()),
    )?;
    if let Some(r) = &args.reason {
        request = request.memo(Memo::new(r.as_str())?);
    }
    if let Some(r) = &args.reg_id {
        request = request.reg_id(RegId::new(r.as_str())?);
    }
    Ok(request)
}

async fn cancel_alipay(global: &Global, args: &CancelArgs) -> Result<Report, Failure> {
    let request: kicc_alipay::CancelRequest = wallet_request(args)?;
    let key = key_or_new(args.shop_transaction_id.as_deref())?;
    let (at, resumed_date) = wallet_date(args)?;
    let merchant = creds::merchant(global)?;
    let message = request.message(&merchant, key.clone(), at);
    if args.dry_run {
        return dry_run(&message.to_http(&merchant)?);
    }
    let transport = Observed::new(creds::transport(global)?, progress_wanted());
    let client = kicc_alipay::AlipayClient::with_transport(merchant, transport)
        .with_retry_policy(cancel_policy(global, args)?);
    let outcome = if resumed_date.is_some() {
        client.resume(&message).await
    } else {
        client.send(&message).await
    };
    let date = message.head().cancel_req_date();
    let r = outcome.map_err(|e| cancel_failure(e, args, Some((&key, date))))?;
    pretty(&json!({
        "result": "cancelled",
        "channel": "alipay",
        "resCd": r.res_cd,
        "resMsg": r.res_msg,
        "pgCno": r.pg_cno,
        "cancelPgCno": r.cancel_pg_cno,
        "shopTransactionId": key.as_str(),
        "reviseTypeCode": request.code().as_str(),
        "amountInfo": amount_json(r.amount_info.as_ref()),
        "transactionDate": r.transaction_date,
    }))
}

async fn cancel_wechat(global: &Global, args: &CancelArgs) -> Result<Report, Failure> {
    let mut request: kicc_wechat::CancelRequest = wallet_request(args)?;
    if let Some(u) = &args.notify_url {
        request = request.notify_url(NotifyUrl::new(u.as_str())?);
    }
    let key = key_or_new(args.shop_transaction_id.as_deref())?;
    let (at, resumed_date) = wallet_date(args)?;
    let merchant = creds::merchant(global)?;
    let message = request.message(&merchant, key.clone(), at);
    if args.dry_run {
        return dry_run(&message.to_http(&merchant)?);
    }
    let progress = progress_wanted();
    let transport = Observed::new(creds::transport(global)?, progress);
    let client = WechatClient::with_transport(merchant, transport)
        .with_retry_policy(cancel_policy(global, args)?);
    let outcome = if resumed_date.is_some() {
        client.resume(&message).await
    } else {
        client.send(&message).await
    };
    let date = message.head().cancel_req_date();
    let accepted = outcome.map_err(|e| cancel_failure(e, args, Some((&key, date))))?;
    let accepted_json = json!({
        "result": "accepted",
        "channel": "wechat",
        "resCd": accepted.response.res_cd,
        "resMsg": accepted.response.res_msg,
        "pgCno": accepted.pg_cno,
        "cancelPgCno": accepted.cancel_pg_cno,
        "shopTransactionId": accepted.shop_transaction_id,
        "reviseTypeCode": request.code().as_str(),
        "next": format!(
            "kicc status wechat --pg-cno {} --cancel-pg-cno {}",
            accepted.pg_cno, accepted.cancel_pg_cno
        ),
    });
    let Some(wait) = args.wait else {
        return Ok(Report::ok(to_pretty(&accepted_json)));
    };
    match wait_until_final(&client, &accepted, Duration::from_secs(wait), progress).await {
        Ok(found) => pretty(&json!({
            "result": "cancelled",
            "channel": "wechat",
            "pgCno": accepted.pg_cno,
            "cancelPgCno": accepted.cancel_pg_cno,
            "shopTransactionId": accepted.shop_transaction_id,
            "cancelStatus": found.status.code(),
            "amountInfo": amount_json(found.amount_info.as_ref()),
        })),
        Err(e @ Error::Pending { .. }) => {
            let mut pending = accepted_json;
            pending["result"] = "pending".into();
            Ok(Report::with_note(
                Exit::Pending,
                to_pretty(&pending),
                format!("{e}; not final after {wait} s"),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Queries `find` until the cancel is final or `max_wait` passes ([`Error::Pending`]).
async fn wait_until_final<T: kicc_transport::Transport>(
    client: &WechatClient<T>,
    accepted: &Accepted,
    max_wait: Duration,
    progress: bool,
) -> Result<kicc_wechat::CancelResult, Error> {
    let query = StatusQuery::from_text(&accepted.pg_cno, &accepted.cancel_pg_cno)?;
    let policy = WaitPolicy::default()
        .with_first_query_after(Duration::from_secs(1).min(max_wait))
        .with_query_interval(Duration::from_secs(2))
        .with_max_wait(max_wait)
        .with_confirm_notice(true);
    let started = Instant::now();
    let mut waiter = ResultWaiter::new(
        &accepted.pg_cno,
        &accepted.cancel_pg_cno,
        &accepted.shop_transaction_id,
        policy,
        started,
    );
    loop {
        match waiter.poll(Instant::now()) {
            WaitAction::Done(result) => return result,
            WaitAction::QueryStatus => {
                let outcome = client.status(&query).await;
                if progress {
                    let what = match &outcome {
                        Ok(f) => format!(
                            "cancelStatus {}",
                            f.cancel_status.as_ref().map_or("(none)", |s| s.code())
                        ),
                        Err(e) => e.to_string(),
                    };
                    eprintln!(
                        "kicc: waiting for the WeChat Pay result of {}: {what} after {} s (at most {} s)",
                        accepted.cancel_pg_cno,
                        started.elapsed().as_secs(),
                        max_wait.as_secs()
                    );
                }
                waiter.on_status(outcome, Instant::now());
            }
            // Queries are awaited above, so none is ever in flight here: a broken invariant.
            // End with an error instead of spinning.
            WaitAction::AwaitStatus => {
                return Err(Error::StatusUnknown {
                    reason: "internal error: the result waiter awaits a status query, \
                             but none is in flight"
                        .into(),
                    shop_transaction_id: accepted.shop_transaction_id.clone(),
                })
            }
            WaitAction::WaitForNotice(until) => {
                tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
            }
        }
    }
}

/// `kicc status wechat ...`.
pub async fn status_wechat(global: &Global, args: &StatusArgs) -> Result<Report, Failure> {
    let query = StatusQuery::from_text(&args.pg_cno, &args.cancel_pg_cno)?;
    let key = key_or_new(args.shop_transaction_id.as_deref())?;
    let merchant = creds::merchant(global)?;
    let message = query.message(&merchant, key);
    if args.dry_run {
        return dry_run(&message.to_http(&merchant)?);
    }
    let transport = Observed::new(creds::transport(global)?, progress_wanted());
    let client = WechatClient::with_transport(merchant, transport)
        .with_retry_policy(query_policy(args.max_attempts)?);
    let found: FindResponse = client.status_keyed(&message).await?;
    let result = if found.cancel_failed() {
        "failed"
    } else if found.is_cancelled() {
        "cancelled"
    } else {
        "not cancelled yet"
    };
    let out = json!({
        "result": result,
        "channel": "wechat",
        "resCd": found.res_cd,
        "resMsg": found.res_msg,
        "pgCno": found.pg_cno,
        "cancelPgCno": found.cancel_pg_cno,
        "shopTransactionId": found.shop_transaction_id,
        "cancelStatus": status_text(found.cancel_status.as_ref()),
        "transactionDate": found.transaction_date,
        "detail": found.detail(),
        "amountInfo": amount_json(found.amount_info.as_ref()),
    });
    if found.cancel_failed() {
        let detail = found.detail();
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("; detail: {detail}")
        };
        return Ok(Report::with_note(
            Exit::NotDone,
            to_pretty(&out),
            format!(
                "cancellation {} failed: resCd {} ({}){detail}",
                args.cancel_pg_cno, found.res_cd, found.res_msg
            ),
        ));
    }
    if found.is_cancelled() {
        return Ok(Report::ok(to_pretty(&out)));
    }
    let status = found.cancel_status.as_ref().map_or("(none)", |s| s.code());
    Ok(Report::with_note(
        Exit::Pending,
        to_pretty(&out),
        format!(
            "cancellation {} is not cancelled yet (cancelStatus {status}): query again later",
            args.cancel_pg_cno
        ),
    ))
}
