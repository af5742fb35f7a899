//! `kicc cancel` and `kicc status wechat`: KICC requests from the command line.
//!
//! Every input is validated by the SDK's own builders before anything is sent (exit 2 names the
//! field and the rule). `--dry-run` prints the exact request the SDK would send, as one JSON
//! object `{"method", "url", "headers", "body"}`, where `body` is the exact body text.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime};

use kicc_core::retry::RetryPolicy;
use kicc_core::wire::ResponseAmountInfo;
use kicc_core::{
    Currency, Error, Memo, NotifyUrl, ReviseMessage, ShopTransactionId, TransactionStatus,
};
use kicc_transport::driver::{execute, os_rng, CancelLabels};
use kicc_wechat::{
    Accepted, FindResponse, ResultWaiter, StatusQuery, WaitAction, WaitPolicy, WechatClient,
};
use serde_json::{json, Value};

use crate::cli::{CancelArgs, CancelChannel, Global, StatusArgs};
use crate::creds;
use crate::exit::{Exit, Failure, Report};
use crate::observe::Observed;

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

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        ..RetryPolicy::default()
    }
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

fn only_wechat(args: &CancelArgs) -> Result<(), Failure> {
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

/// `kicc cancel <channel> ...`.
pub async fn cancel(global: &Global, args: &CancelArgs) -> Result<Report, Failure> {
    only_wechat(args)?;
    let amount = args.amount.as_deref();
    let currency = args.currency.as_deref();
    let code = args.revise_type.as_deref();
    match args.channel {
        CancelChannel::Generic => {
            let mut request =
                kicc_generic::CancelRequest::from_text(&args.pg_cno, code, amount, currency)?;
            if let Some(r) = &args.reason {
                request = request.reason(ReviseMessage::new(r.as_str())?);
            }
            let key = key_or_new(args.shop_transaction_id.as_deref())?;
            let merchant = creds::merchant(global)?;
            if args.dry_run {
                let message = request.message(&merchant, key, SystemTime::now());
                return dry_run(&message.to_http(&merchant)?);
            }
            let transport = Observed::new(creds::transport(global)?, progress_wanted());
            let client = kicc_generic::GenericClient::with_transport(merchant, transport)
                .retry_policy(policy(args.max_attempts));
            let r = client.cancel_with_key(&request, key.clone()).await?;
            let echoed = if r.shop_transaction_id.is_empty() {
                key.to_string()
            } else {
                r.shop_transaction_id.clone()
            };
            pretty(&json!({
                "result": "cancelled",
                "channel": "generic",
                "resCd": r.res_cd,
                "resMsg": r.res_msg,
                "pgCno": r.ori_pg_cno,
                "cancelPgCno": r.cancel_pg_cno,
                "shopTransactionId": echoed,
                "reviseTypeCode": request.code().as_str(),
                "cancelAmount": r.cancel_amount,
                "remainAmount": r.remain_amount,
                "statusCode": status_text(r.status_code.as_ref()),
                "transactionDate": r.transaction_date,
            }))
        }
        CancelChannel::Alipay => {
            let mut request =
                kicc_alipay::CancelRequest::from_text(&args.pg_cno, code, amount, currency)?;
            if let Some(r) = &args.reason {
                request = request.memo(Memo::new(r.as_str())?);
            }
            let key = key_or_new(args.shop_transaction_id.as_deref())?;
            let merchant = creds::merchant(global)?;
            let message = request.message(&merchant, key.clone(), SystemTime::now());
            if args.dry_run {
                return dry_run(&message.to_http(&merchant)?);
            }
            let transport = Observed::new(creds::transport(global)?, progress_wanted());
            let client = kicc_alipay::AlipayClient::with_transport(merchant, transport)
                .retry_policy(policy(args.max_attempts));
            let r = client.send(&message).await?;
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
        CancelChannel::Wechat => cancel_wechat(global, args).await,
    }
}

async fn cancel_wechat(global: &Global, args: &CancelArgs) -> Result<Report, Failure> {
    let mut request = kicc_wechat::CancelRequest::from_text(
        &args.pg_cno,
        args.revise_type.as_deref(),
        args.amount.as_deref(),
        args.currency.as_deref(),
    )?;
    if let Some(r) = &args.reason {
        request = request.memo(Memo::new(r.as_str())?);
    }
    if let Some(u) = &args.notify_url {
        request = request.notify_url(NotifyUrl::new(u.as_str())?);
    }
    let key = key_or_new(args.shop_transaction_id.as_deref())?;
    let merchant = creds::merchant(global)?;
    let message = request.message(&merchant, key, SystemTime::now());
    if args.dry_run {
        return dry_run(&message.to_http(&merchant)?);
    }
    let progress = progress_wanted();
    let transport = Observed::new(creds::transport(global)?, progress);
    let client =
        WechatClient::with_transport(merchant, transport).retry_policy(policy(args.max_attempts));
    let accepted = client.send(&message).await?;
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
    let policy = WaitPolicy {
        first_query_after: Duration::from_secs(1).min(max_wait),
        query_interval: Duration::from_secs(2),
        max_wait,
        confirm_notice: true,
    };
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
            // Queries are awaited above, so none is ever in flight here.
            WaitAction::AwaitStatus => {}
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
    let exchange = message.exchange(&merchant)?;
    let labels = CancelLabels {
        channel: "wechat-find",
        pg_cno: message.pg_cno().as_str(),
    };
    let found: FindResponse =
        execute(&transport, exchange, policy(args.max_attempts), labels).await?;
    let out = json!({
        "result": if found.is_cancelled() { "cancelled" } else { "not cancelled yet" },
        "channel": "wechat",
        "resCd": found.res_cd,
        "resMsg": found.res_msg,
        "pgCno": found.pg_cno,
        "cancelPgCno": found.cancel_pg_cno,
        "shopTransactionId": message.shop_transaction_id().as_str(),
        "cancelStatus": status_text(found.cancel_status.as_ref()),
        "transactionDate": found.transaction_date,
        "detail": kicc_wechat::url_decode(&found.res_detail_msg),
        "amountInfo": amount_json(found.amount_info.as_ref()),
    });
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
