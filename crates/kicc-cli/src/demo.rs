//! `kicc demo`: a guided tour of kicc-rs for a newcomer, with nothing to set up.
//!
//! It starts the sandbox in-process on a free loopback port (short webhook delays), runs its own
//! loopback webhook receiver (a [`WebhookInbox`] behind a tiny HTTP server) as `notifyUrl`,
//! creates payments through the sandbox's admin API over HTTP, and cancels them with the SDK's
//! clients exactly as a service would:
//!
//! 1. card: full cancel;
//! 2. card: partial cancel;
//! 3. card: an over-cancel, declined by the gateway;
//! 4. Alipay: USD partial cancel (`12.03` becomes `1203` cents) through an injected `A212`,
//!    retried with the same key;
//! 5. WeChat Pay: accepted, then confirmed by the webhook and by `find`;
//! 6. WeChat Pay Global, directly: an order revoked with an RSA-signed request, the answer's
//!    signature verified (the sandbox's published, sandbox-only keys);
//! 7. an invalid request, stopped by the SDK with a typed error before anything is sent.
//!
//! Each step checks the SDK's answer AND the sandbox's own state (status, remaining amount,
//! number of cancels), prints one table row (step, request, result, time, check) and notes, and
//! the demo exits 0 only if every step behaved as expected (5 otherwise).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use kicc_core::retry::RetryPolicy;
use kicc_core::{BaseUrl, Environment, Error, MallId, Merchant, SecretKey, TransactionStatus};
use kicc_sandbox::{
    Sandbox, SandboxConfig, ALIPAY_REVISE_PATH, GENERIC_REVISE_PATH, RETRIEVE_TRANSACTION_PATH,
};
use kicc_transport::{HyperTransport, Transport};
use kicc_wechat::{ResultSource, StatusQuery, WaitPolicy, WebhookInbox};
use serde_json::{json, Value};

use crate::exit::{Exit, Failure, Report};
use crate::observe::Observed;
use crate::receiver::Receiver;

type Shared = Arc<Observed<HyperTransport>>;

/// The sandbox's admin API, over HTTP.
struct Admin {
    base: String,
    transport: HyperTransport,
}

/// What the demo reads from `GET /sandbox/payments/{pgCno}`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentView {
    status_code: String,
    remaining_amount: u64,
    #[serde(default)]
    cancels: Vec<Value>,
    #[serde(default)]
    webhook_deliveries: Vec<DeliveryView>,
    /// WeChat Pay Global orders only: `SUCCESS` or `REVOKED`.
    #[serde(default)]
    trade_state: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryView {
    attempt: u32,
    acknowledged: bool,
}

impl Admin {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Bytes::from(body))
            .map_err(|e| format!("admin API {path}: {e}"))?;
        let response = self
            .transport
            .send(request)
            .await
            .map_err(|e| format!("admin API {path}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "admin API {path}: HTTP {} {}",
                response.status().as_u16(),
                String::from_utf8_lossy(response.body())
            ));
        }
        serde_json::from_slice(response.body()).map_err(|e| format!("admin API {path}: {e}"))
    }

    async fn create_payment(
        &self,
        channel: &str,
        amount: u64,
        currency: &str,
    ) -> Result<String, String> {
        let v = self
            .call(
                Method::POST,
                "/sandbox/payments",
                Some(json!({ "channel": channel, "amount": amount, "currency": currency })),
            )
            .await?;
        v.get("pgCno")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("admin API: no pgCno in {v}"))
    }

    async fn create_wechatpay_order(&self, amount: u64, currency: &str) -> Result<Value, String> {
        self.call(
            Method::POST,
            "/sandbox/payments",
            Some(json!({
                "channel": "wechatpay",
                "amount": amount,
                "currency": currency,
                "paidSecondsAgo": 60,
            })),
        )
        .await
    }

    async fn payment(&self, pg_cno: &str) -> Result<PaymentView, String> {
        let v = self
            .call(Method::GET, &format!("/sandbox/payments/{pg_cno}"), None)
            .await?;
        serde_json::from_value(v).map_err(|e| format!("admin API: payment state: {e}"))
    }

    async fn inject_res_cd(&self, path: &str, res_cd: &str) -> Result<(), String> {
        self.call(
            Method::POST,
            "/sandbox/faults",
            Some(json!({ "path": path, "kind": "resCd", "resCd": res_cd, "times": 1 })),
        )
        .await
        .map(|_| ())
    }
}

/// What every step can use.
struct Ctx {
    admin: Admin,
    transport: Shared,
    merchant: Merchant,
    retry: RetryPolicy,
    inbox: Arc<WebhookInbox>,
    notify_url: String,
}

/// One row of the table.
#[derive(Debug, Default)]
struct Row {
    step: &'static str,
    request: String,
    result: String,
    notes: Vec<String>,
    problem: Option<String>,
    time: Duration,
}

fn check(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

fn status(s: Option<&TransactionStatus>) -> &str {
    s.map_or("(none)", |s| s.code())
}

async fn state_note(ctx: &Ctx, row: &mut Row, pg_cno: &str) -> Result<PaymentView, String> {
    let s = ctx.admin.payment(pg_cno).await?;
    row.notes.push(format!(
        "sandbox state of {pg_cno}: {}, remaining {}, {} cancel(s)",
        s.status_code,
        s.remaining_amount,
        s.cancels.len()
    ));
    Ok(s)
}

fn generic_client(ctx: &Ctx) -> kicc_generic::GenericClient<Shared> {
    kicc_generic::GenericClient::with_transport(ctx.merchant.clone(), ctx.transport.clone())
        .with_retry_policy(ctx.retry.clone())
}

/// Cancels `amount` won of card payment `pg` (all of it when `None`) and checks that both the
/// answer and the sandbox's own record show `expected` with `remaining` left after one cancel.
async fn card_cancel_expecting(
    ctx: &Ctx,
    row: &mut Row,
    pg: &str,
    amount: Option<&str>,
    expected: TransactionStatus,
    remaining: u64,
) -> Result<(), String> {
    let request = kicc_generic::CancelRequest::from_text(
        kicc_core::CancelText::new(pg)
            .amount(amount)
            .currency(amount.map(|_| "KRW")),
    )
    .map_err(|e| e.to_string())?;
    let r = generic_client(ctx)
        .cancel(&request)
        .await
        .map_err(|e| format!("expected a cancel, got: {e}"))?;
    row.result = format!(
        "{} {}, remain {}",
        r.res_cd,
        status(r.status_code.as_ref()),
        r.remain_amount.map_or("-".into(), |a| a.to_string())
    );
    check(r.status_code.as_ref() == Some(&expected), || {
        format!(
            "expected {}, got {}",
            expected.code(),
            status(r.status_code.as_ref())
        )
    })?;
    let s = state_note(ctx, row, pg).await?;
    check(
        s.status_code == expected.code() && s.remaining_amount == remaining && s.cancels.len() == 1,
        || {
            format!(
                "the sandbox says {} with {} remaining, expected {} with {remaining}",
                s.status_code,
                s.remaining_amount,
                expected.code()
            )
        },
    )
}

async fn card_full(ctx: &Ctx, row: &mut Row) -> Result<(), String> {
    let pg = ctx.admin.create_payment("card", 51_004, "KRW").await?;
    row.request = "generic 40, card 51004 KRW".into();
    card_cancel_expecting(ctx, row, &pg, None, TransactionStatus::Cancelled, 0).await
}

async fn card_partial(ctx: &Ctx, row: &mut Row, pg: &str) -> Result<(), String> {
    row.request = "generic 32: 10000 of 30000 KRW".into();
    let expected = TransactionStatus::PartiallyCancelled;
    card_cancel_expecting(ctx, row, pg, Some("10000"), expected, 20_000).await
}

async fn card_over_cancel(ctx: &Ctx, row: &mut Row, pg: &str) -> Result<(), String> {
    row.request = "generic 32: 25000 of 20000 left".into();
    let request = kicc_generic::CancelRequest::from_text(
        kicc_core::CancelText::new(pg)
            .amount("25000")
            .currency("KRW"),
    )
    .map_err(|e| e.to_string())?;
    match generic_client(ctx).cancel(&request).await {
        Err(e @ Error::Declined(_)) => {
            row.result = format!("Error::Declined {} (exit 1)", e.res_cd().unwrap_or("?"));
            row.notes.push(format!("{e}"));
            check(e.certainly_not_cancelled(), || {
                "a decline must mean not cancelled".into()
            })?;
        }
        Ok(r) => {
            row.result = format!("{} accepted", r.res_cd);
            return Err("an over-cancel was accepted".into());
        }
        Err(e) => {
            row.result = e.to_string();
            return Err(format!("expected Error::Declined, got: {e}"));
        }
    }
    let s = state_note(ctx, row, pg).await?;
    check(s.remaining_amount == 20_000 && s.cancels.len() == 1, || {
        format!(
            "the decline changed the payment: {} remaining, {} cancels",
            s.remaining_amount,
            s.cancels.len()
        )
    })
}

/// A generic cancel whose answer is lost after the gateway made it: the SDK looks its own key
/// up (retrieveTransaction) instead of resending, and reports the cancel it finds.
async fn card_lost_answer(ctx: &Ctx, row: &mut Row) -> Result<(), String> {
    let pg = ctx.admin.create_payment("card", 10_000, "KRW").await?;
    row.request = "generic 32: 4000 of 10000 KRW, answer lost (HTTP 500 after the cancel)".into();
    ctx.admin
        .call(
            Method::POST,
            "/sandbox/faults",
            Some(json!({ "path": GENERIC_REVISE_PATH, "kind": "http500", "apply": true })),
        )
        .await?;
    let before = ctx.transport.attempts().len();
    let request = kicc_generic::CancelRequest::from_text(
        kicc_core::CancelText::new(&pg)
            .amount("4000")
            .currency("KRW"),
    )
    .map_err(|e| e.to_string())?;
    let r = generic_client(ctx)
        .cancel(&request)
        .await
        .map_err(|e| format!("expected the look-up to find the cancel, got: {e}"))?;
    row.result = format!("{} {} (found by look-up)", r.res_cd, r.cancel_pg_cno);
    let attempts = ctx.transport.attempts();
    let seen: Vec<&str> = attempts[before.min(attempts.len())..]
        .iter()
        .map(|a| a.path.as_str())
        .collect();
    row.notes.push(format!(
        "requests: {} (the look-up of the same key, after the processing bound; no second cancel)",
        seen.join(", ")
    ));
    check(
        seen == [GENERIC_REVISE_PATH, RETRIEVE_TRANSACTION_PATH],
        || format!("expected one cancel and one look-up, saw {seen:?}"),
    )?;
    let s = state_note(ctx, row, &pg).await?;
    check(s.remaining_amount == 6_000 && s.cancels.len() == 1, || {
        format!(
            "expected exactly one cancel of 4000, the sandbox has {} cancels and {} remaining",
            s.cancels.len(),
            s.remaining_amount
        )
    })
}

async fn alipay_usd(ctx: &Ctx, row: &mut Row, pg: &str) -> Result<(), String> {
    row.request = "alipay 32: 12.03 of 50.00 USD + A212".into();
    ctx.admin.inject_res_cd(ALIPAY_REVISE_PATH, "A212").await?;
    let request = kicc_alipay::CancelRequest::from_text(
        kicc_core::CancelText::new(pg)
            .amount("12.03")
            .currency("USD"),
    )
    .map_err(|e| e.to_string())?;
    let minor = request.amount().map(|m| m.amount.minor_units());
    row.notes.push(format!(
        "\"12.03\" USD is sent as totAmount {} (cents, integers only)",
        minor.map_or("-".into(), |m| m.to_string())
    ));
    check(minor == Some(1203), || {
        format!("12.03 USD became {minor:?}")
    })?;
    let before = ctx.transport.attempts().len();
    let client =
        kicc_alipay::AlipayClient::with_transport(ctx.merchant.clone(), ctx.transport.clone())
            .with_retry_policy(ctx.retry.clone());
    let r = client
        .cancel(&request)
        .await
        .map_err(|e| format!("expected the retry to succeed, got: {e}"))?;
    let attempts: Vec<_> = ctx
        .transport
        .attempts()
        .into_iter()
        .skip(before)
        .filter(|a| a.path == ALIPAY_REVISE_PATH)
        .collect();
    for (i, a) in attempts.iter().enumerate() {
        row.notes.push(format!(
            "attempt {}: shopTransactionId {} -> {}",
            i + 1,
            a.shop_transaction_id,
            a.result
        ));
    }
    let same_key = attempts.len() == 2
        && attempts
            .iter()
            .all(|a| a.shop_transaction_id == attempts[0].shop_transaction_id);
    let amount = r
        .amount_info
        .as_ref()
        .and_then(|a| a.tot_amount)
        .map_or("-".into(), |a| a.to_string());
    row.result = format!(
        "{} after A212, {} tries{}, {amount} cents",
        r.res_cd,
        attempts.len(),
        if same_key { " same key" } else { "" }
    );
    check(same_key, || {
        "expected 2 attempts with the same shopTransactionId".into()
    })?;
    check(
        attempts.first().and_then(|a| a.res_cd.as_deref()) == Some("A212")
            && attempts.get(1).and_then(|a| a.res_cd.as_deref()) == Some("0000"),
        || "expected A212, then 0000".into(),
    )?;
    let s = state_note(ctx, row, pg).await?;
    check(s.remaining_amount == 3_797 && s.cancels.len() == 1, || {
        format!(
            "expected 3797 cents left after one cancel, the sandbox says {} after {}",
            s.remaining_amount,
            s.cancels.len()
        )
    })
}

async fn wechat(ctx: &Ctx, row: &mut Row) -> Result<(), String> {
    let pg = ctx.admin.create_payment("wechat", 10_000, "KRW").await?;
    row.request = "wechat 40, 10000 KRW + notifyUrl".into();
    let request = kicc_wechat::CancelRequest::from_text(kicc_core::CancelText::new(&pg))
        .map_err(|e| e.to_string())?
        .notify_url(kicc_core::NotifyUrl::new(ctx.notify_url.as_str()).map_err(|e| e.to_string())?);
    let client =
        kicc_wechat::WechatClient::with_transport(ctx.merchant.clone(), ctx.transport.clone())
            .with_retry_policy(ctx.retry.clone());
    let accepted = client
        .cancel(&request)
        .await
        .map_err(|e| format!("expected acceptance, got: {e}"))?;
    row.notes.push(format!(
        "accepted at once: cancelPgCno {} (accepted, not done yet)",
        accepted.cancel_pg_cno
    ));
    let policy = WaitPolicy::default()
        // Long enough that the webhook, not a scheduled query, triggers the confirmation.
        .with_first_query_after(Duration::from_secs(5))
        .with_query_interval(Duration::from_millis(250))
        .with_max_wait(Duration::from_secs(10))
        .with_confirm_notice(true);
    let result = client
        .wait_for_result(&accepted, &ctx.inbox, policy)
        .await
        .map_err(|e| format!("expected a final result, got: {e}"))?;
    let notice = ctx.inbox.notice_for(&accepted.cancel_pg_cno);
    row.notes.push(match &notice {
        Some(n) => format!(
            "webhook received at {}: resCd {}, cancelDate {}",
            ctx.notify_url, n.res_cd, n.cancel_date
        ),
        None => "no webhook received".into(),
    });
    let found = client
        .status(&StatusQuery::from_text(&pg, &accepted.cancel_pg_cno).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| format!("find failed: {e}"))?;
    row.notes.push(format!(
        "find: cancelStatus {}",
        status(found.cancel_status.as_ref())
    ));
    row.result = format!(
        "accepted; webhook {}; find {}",
        notice.as_ref().map_or("missing", |n| n.res_cd.as_str()),
        status(found.cancel_status.as_ref())
    );
    check(result.source == ResultSource::Notice, || {
        format!(
            "expected the result from the webhook, it came from {:?}",
            result.source
        )
    })?;
    check(notice.as_ref().is_some_and(|n| n.is_success()), || {
        "expected a successful notice".into()
    })?;
    check(
        found.cancel_status == Some(TransactionStatus::Cancelled),
        || {
            format!(
                "expected find to say TS02, it says {}",
                status(found.cancel_status.as_ref())
            )
        },
    )?;
    let s = state_note(ctx, row, &pg).await?;
    let acked = s.webhook_deliveries.iter().find(|d| d.acknowledged);
    if let Some(d) = acked {
        row.notes.push(format!(
            "the sandbox saw delivery {} acknowledged",
            d.attempt
        ));
    }
    check(
        s.status_code == "TS02" && s.remaining_amount == 0 && acked.is_some(),
        || {
            format!(
                "the sandbox says {} with {} remaining, acknowledged delivery: {}",
                s.status_code,
                s.remaining_amount,
                acked.is_some()
            )
        },
    )
}

async fn wechatpay_global(ctx: &Ctx, row: &mut Row, base_url: &str) -> Result<(), String> {
    use wechatpay_direct::{
        BaseUrl as WxBaseUrl, MerchantConfig, MerchantMode, OrderRef, ReverseCall, ReverseClient,
        ReverseOutcome, RsaPrivateKey, SerialNo, Timestamp, VerificationKeys,
    };
    let order = ctx.admin.create_wechatpay_order(1_000, "USD").await?;
    let field = |name: &str| -> Result<String, String> {
        match &order[name] {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(format!("admin API: no {name} in {order}")),
        }
    };
    let (out_trade_no, pg, paid_at) = (field("outTradeNo")?, field("pgCno")?, field("paidAt")?);
    row.request = "reverse out-trade-no, RSA-signed".into();
    let text = |e: &dyn std::fmt::Display| e.to_string();
    // The sandbox's published, sandbox-only keys (kicc-sandbox/keys): never use them elsewhere.
    let mut keys = VerificationKeys::new();
    keys.add_certificate_pem(kicc_sandbox::SANDBOX_PLATFORM_CERTIFICATE_PEM)
        .map_err(|e| text(&e))?;
    let config = MerchantConfig::builder()
        .mode(MerchantMode::common(kicc_sandbox::DEFAULT_WECHATPAY_MCHID).map_err(|e| text(&e))?)
        .serial_no(SerialNo::new(kicc_sandbox::SANDBOX_MERCHANT_SERIAL_NO).map_err(|e| text(&e))?)
        .private_key(Arc::new(
            RsaPrivateKey::from_pem(kicc_sandbox::SANDBOX_MERCHANT_PRIVATE_KEY_PEM)
                .map_err(|e| text(&e))?,
        ))
        .verification_keys(keys)
        .build()
        .map_err(|e| text(&e))?;
    let client = ReverseClient::new(ctx.transport.clone(), config)
        .with_base_urls(WxBaseUrl::new(base_url).map_err(|e| text(&e))?, None);
    let call = ReverseCall::new(
        OrderRef::out_trade_no(out_trade_no.as_str()).map_err(|e| text(&e))?,
        Timestamp::parse("paid_at", &paid_at).map_err(|e| text(&e))?,
    );
    let outcome = client.reverse(&call).await.map_err(|e| {
        row.result = e.to_string();
        format!("expected a verified revoke, got: {e}")
    })?;
    match &outcome {
        ReverseOutcome::Revoked(v) => {
            row.result = "HTTP 204, signature verified".into();
            row.notes.push(format!(
                "order {out_trade_no}: revoked; the answer's signature verified with platform certificate {}",
                v.serial
            ));
        }
        other => {
            row.result = format!("{other:?}");
            return Err("expected HTTP 204 with a verified signature".into());
        }
    }
    let s = ctx.admin.payment(&pg).await?;
    row.notes.push(format!(
        "sandbox state of {out_trade_no}: tradeState {}",
        s.trade_state.as_deref().unwrap_or("(none)")
    ));
    check(s.trade_state.as_deref() == Some("REVOKED"), || {
        format!("the sandbox says {:?}", s.trade_state)
    })
}

async fn invalid(ctx: &Ctx, row: &mut Row, pg: &str) -> Result<(), String> {
    row.request = "alipay 32: 12.034 USD".into();
    let before = ctx.transport.attempts().len();
    let state_before = ctx.admin.payment(pg).await?;
    match kicc_alipay::CancelRequest::from_text(
        kicc_core::CancelText::new(pg)
            .amount("12.034")
            .currency("USD"),
    ) {
        Ok(_) => {
            row.result = "built".into();
            Err("an amount with 3 decimals in USD was accepted".into())
        }
        Err(field_error) => {
            let e = Error::Invalid(field_error.clone());
            row.result = format!("Error::Invalid {} (exit 2)", field_error.field);
            row.notes.push(format!("{e}"));
            row.notes.push(format!("typed: {field_error:?}"));
            check(field_error.field == "amountInfo.totAmount", || {
                format!(
                    "the error names {}, not amountInfo.totAmount",
                    field_error.field
                )
            })?;
            check(ctx.transport.attempts().len() == before, || {
                "a request was sent for an invalid input".into()
            })?;
            let s = ctx.admin.payment(pg).await?;
            row.notes
                .push("nothing was sent: no request, the payment is unchanged".into());
            check(
                s.remaining_amount == state_before.remaining_amount
                    && s.cancels.len() == state_before.cancels.len(),
                || "the payment changed".into(),
            )
        }
    }
}

/// Pads `s` to `width` characters.
fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

fn render(base_url: &str, rows: &[Row], total: Duration) -> String {
    let headers = ["#", "step", "request", "result", "time", "check"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            [
                (i + 1).to_string(),
                r.step.to_owned(),
                r.request.clone(),
                r.result.clone(),
                format!("{:.1} ms", r.time.as_secs_f64() * 1000.0),
                if r.problem.is_none() {
                    "ok".into()
                } else {
                    "FAILED".into()
                },
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kicc demo: kicc-rs against a sandbox started in this process at {base_url}\n\
         (mall ID T0000001, the sandbox-only secret key; nothing leaves this machine)\n"
    );
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| pad(c, w))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let _ = writeln!(out, "{}", line(&headers.map(str::to_owned)));
    let _ = writeln!(out, "{}", line(&widths.map(|w| "-".repeat(w))));
    for row in &cells {
        let _ = writeln!(out, "{}", line(row));
    }
    let _ = writeln!(out);
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(out, "{}. {}", i + 1, r.step);
        for n in &r.notes {
            let _ = writeln!(out, "   {n}");
        }
        if let Some(p) = &r.problem {
            let _ = writeln!(out, "   NOT AS EXPECTED: {p}");
        }
    }
    let failed = rows.iter().filter(|r| r.problem.is_some()).count();
    let _ = writeln!(out);
    if failed == 0 {
        let _ = writeln!(
            out,
            "All {} steps behaved as expected in {} ms. Next: `kicc sandbox serve`, then `kicc cancel --help`.",
            rows.len(),
            total.as_millis()
        );
    } else {
        let _ = writeln!(
            out,
            "{failed} of {} steps did not behave as expected.",
            rows.len()
        );
    }
    out
}

/// Runs one step, timing it and recording whether it behaved as expected.
async fn run_step<F>(rows: &mut Vec<Row>, step: &'static str, f: F)
where
    F: AsyncFnOnce(&mut Row) -> Result<(), String>,
{
    let mut row = Row {
        step,
        ..Row::default()
    };
    let started = Instant::now();
    if let Err(problem) = f(&mut row).await {
        row.problem = Some(problem);
    }
    row.time = started.elapsed();
    rows.push(row);
}

/// `kicc demo`.
pub async fn demo() -> Result<Report, Failure> {
    let started = Instant::now();
    let config = SandboxConfig::default()
        .with_webhook_delay(Duration::from_millis(150))
        .with_webhook_retry_interval(Duration::from_millis(200));
    let sandbox = Sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .map_err(|e| Failure::local(format!("cannot start the sandbox: {e}")))?;
    let base_url = sandbox.base_url();
    let inbox = Arc::new(WebhookInbox::default());
    let receiver = Receiver::start(Arc::clone(&inbox))
        .await
        .map_err(|e| Failure::local(format!("cannot start the webhook receiver: {e}")))?;
    // The sandbox lives in this process on loopback: a proxy elsewhere could not reach it.
    let transport = HyperTransport::builder()
        .no_proxy()
        .build()
        .map_err(|e| Failure::local(format!("cannot build the HTTP client: {e}")))?;
    let merchant = Merchant::new(
        Environment::Custom(BaseUrl::new(&base_url)?),
        MallId::new(sandbox.mall_id())?,
        SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY)?,
    );
    let ctx = Ctx {
        admin: Admin {
            base: base_url.clone(),
            transport: transport.clone(),
        },
        transport: Arc::new(Observed::new(transport, false)),
        merchant,
        retry: RetryPolicy::builder()
            .max_attempts(4)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(500))
            .deadline(Duration::from_secs(10))
            // The embedded sandbox processes every request at once; its "not found" is R001.
            .processing_bound(Duration::from_secs(1))
            .lookup_not_found_code(kicc_core::lookup::SANDBOX_NOT_FOUND_CODE)
            .build()?,
        inbox,
        notify_url: receiver.url().to_owned(),
    };

    let mut rows = Vec::new();
    run_step(&mut rows, "card: full cancel", async |row: &mut Row| {
        card_full(&ctx, row).await
    })
    .await;
    let card = ctx.admin.create_payment("card", 30_000, "KRW").await;
    run_step(&mut rows, "card: partial cancel", async |row: &mut Row| {
        card_partial(&ctx, row, card.as_deref().map_err(Clone::clone)?).await
    })
    .await;
    run_step(&mut rows, "card: over-cancel", async |row: &mut Row| {
        card_over_cancel(&ctx, row, card.as_deref().map_err(Clone::clone)?).await
    })
    .await;
    let alipay_pg = ctx.admin.create_payment("alipay", 5_000, "USD").await;
    run_step(&mut rows, "card: lost answer", async |row: &mut Row| {
        card_lost_answer(&ctx, row).await
    })
    .await;
    run_step(&mut rows, "Alipay: USD partial", async |row: &mut Row| {
        alipay_usd(&ctx, row, alipay_pg.as_deref().map_err(Clone::clone)?).await
    })
    .await;
    run_step(&mut rows, "WeChat Pay", async |row: &mut Row| {
        wechat(&ctx, row).await
    })
    .await;
    run_step(
        &mut rows,
        "WeChat Pay Global revoke",
        async |row: &mut Row| wechatpay_global(&ctx, row, &base_url).await,
    )
    .await;
    run_step(&mut rows, "invalid request", async |row: &mut Row| {
        invalid(&ctx, row, alipay_pg.as_deref().map_err(Clone::clone)?).await
    })
    .await;

    drop(receiver);
    sandbox.shutdown().await;
    let out = render(&base_url, &rows, started.elapsed());
    let failed = rows.iter().filter(|r| r.problem.is_some()).count();
    if failed == 0 {
        Ok(Report::ok(out))
    } else {
        Ok(Report::with_note(
            Exit::Local,
            out,
            format!("the demo failed: {failed} step(s) did not behave as expected"),
        ))
    }
}
