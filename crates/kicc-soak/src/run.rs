//! Running one scenario through the real client against the real sandbox, and checking it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use kicc_core::retry::RetryPolicy;
use kicc_core::{
    Amount, BaseUrl, Currency, Environment, Error, FieldError, MallId, Memo, Merchant, Money,
    NotifyUrl, PgCno, Rng, SecretKey, ShopTransactionId,
};
use kicc_sandbox::{
    CancelState, Channel as SbChannel, Currency as SbCurrency, Fault, PaymentState, SandboxHandle,
};
use kicc_transport::{HyperTransport, Transport};
use kicc_wechat::{Accepted, WaitPolicy, WebhookInbox};

use crate::scenario::{Method, Remain, RequestKind, Scenario};
use crate::timing::Timing;
use crate::webhook::CurrentInbox;

/// What one scenario came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScenarioResult {
    /// The outcome of the request: `success`, `declined`, `not_processed`, `invalid`,
    /// `already_cancelled`, `ambiguous`, `pending`, `status_unknown`.
    pub outcome: &'static str,
    /// After `ambiguous` or `pending`: the outcome of the resume / the later wait.
    pub resumed: Option<&'static str>,
    /// Each broken rule: (kind, one-line description).
    pub violations: Vec<(&'static str, String)>,
    /// WeChat successes: how the result became known (`notice` or `status_query`).
    pub wechat_source: Option<&'static str>,
}

/// One worker's sandbox and transports; runs scenarios one after another.
pub(crate) struct Worker {
    pub(crate) sandbox: SandboxHandle,
    /// The clients' transport: the short per-attempt timeout.
    transport: HyperTransport,
    /// For the admin look at the faults and the calls that use them up, and for the clean
    /// cancels a scenario starts from: they are setup, not under test, so a loaded machine
    /// must not turn them into timeouts (10 s per attempt).
    admin: HyperTransport,
    merchant: Merchant,
    timing: Timing,
    /// Where the sandbox posts WeChat notices, and the scenario's inbox they land in.
    notify_url: NotifyUrl,
    inbox: CurrentInbox,
    receiver: tokio::task::JoinHandle<()>,
}

impl Worker {
    pub(crate) async fn new(sandbox: SandboxHandle, timing: Timing) -> Result<Worker, String> {
        let inbox: CurrentInbox = Arc::new(Mutex::new(Arc::new(WebhookInbox::default())));
        let (url, receiver) = crate::webhook::start(inbox.clone()).await?;
        let notify_url = NotifyUrl::new(url).map_err(|e| e.to_string())?;
        let transport = HyperTransport::builder()
            .timeout(timing.client_timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let admin = HyperTransport::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let merchant = Merchant::new(
            Environment::Custom(BaseUrl::new(sandbox.base_url()).map_err(|e| e.to_string())?),
            MallId::new(sandbox.mall_id()).map_err(|e| e.to_string())?,
            SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY).map_err(|e| e.to_string())?,
        );
        Ok(Worker {
            sandbox,
            transport,
            admin,
            merchant,
            timing,
            notify_url,
            inbox,
            receiver,
        })
    }

    /// Stops the sandbox and the notice receiver.
    pub(crate) async fn shutdown(self) {
        self.receiver.abort();
        self.sandbox.shutdown().await;
    }

    /// The current scenario's inbox.
    fn inbox(&self) -> Arc<WebhookInbox> {
        self.inbox
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|_| Arc::new(WebhookInbox::default()))
    }

    fn policy(
        &self,
        max_attempts: u32,
        refund_query_on_resend: bool,
    ) -> Result<RetryPolicy, FieldError> {
        RetryPolicy::builder()
            .max_attempts(max_attempts)
            .initial_backoff(self.timing.backoff)
            .max_backoff(self.timing.backoff.saturating_mul(4))
            .deadline(Duration::from_secs(30))
            .processing_bound(self.timing.sdk_processing_bound)
            .lookup_not_found_code("R001")
            .refund_query_on_resend(refund_query_on_resend)
            .build()
    }

    fn wait_policy(&self, max_wait: Duration) -> WaitPolicy {
        WaitPolicy::default()
            .with_first_query_after(self.timing.webhook_delay.saturating_mul(2))
            .with_query_interval(self.timing.webhook_delay)
            .with_max_wait(max_wait)
            .with_confirm_notice(true)
    }

    fn generic(&self, s: &Scenario) -> Result<kicc_generic::GenericClient, FieldError> {
        Ok(kicc_generic::GenericClient::with_transport(
            self.merchant.clone(),
            self.transport.clone(),
        )
        .with_retry_policy(self.policy(s.max_attempts, s.refund_query_on_resend)?))
    }

    fn alipay(&self, max_attempts: u32) -> Result<kicc_alipay::AlipayClient, FieldError> {
        Ok(
            kicc_alipay::AlipayClient::with_transport(
                self.merchant.clone(),
                self.transport.clone(),
            )
            .with_retry_policy(self.policy(max_attempts, false)?),
        )
    }

    fn wechat(&self, max_attempts: u32) -> Result<kicc_wechat::WechatClient, FieldError> {
        Ok(
            kicc_wechat::WechatClient::with_transport(
                self.merchant.clone(),
                self.transport.clone(),
            )
            .with_retry_policy(self.policy(max_attempts, false)?),
        )
    }

    fn snapshot(&self, pg_cno: &str) -> Result<PaymentState, String> {
        self.sandbox
            .payment(pg_cno)
            .ok_or_else(|| format!("payment {pg_cno} vanished from the sandbox"))
    }

    /// Lets every request the sandbox may still hold finish (its documented processing bound).
    async fn settle(&self) {
        tokio::time::sleep(self.timing.settle).await;
    }

    /// Uses up every fault still waiting on an API path, so the resume runs without faults:
    /// one throwaway request (`{}`, refused by the first rule, changing nothing) per call left.
    async fn clear_faults(&self) -> Result<(), String> {
        let base = self.sandbox.base_url();
        for _round in 0..5 {
            let waiting = self.waiting_faults(&base).await?;
            if waiting.is_empty() {
                return Ok(());
            }
            let mut calls = tokio::task::JoinSet::new();
            for (path, times) in waiting {
                for _ in 0..times {
                    let admin = self.admin.clone();
                    let request = http::Request::post(format!("{base}{path}"))
                        .header("content-type", "application/json")
                        .body(Bytes::from_static(b"{}"))
                        .map_err(|e| e.to_string())?;
                    calls.spawn(async move {
                        let _ = admin.send(request).await;
                    });
                }
            }
            while calls.join_next().await.is_some() {}
        }
        Err("faults still waiting after 5 rounds of throwaway calls".into())
    }

    /// (path, calls left) of the faults that hit API calls (not the WeChat finals).
    async fn waiting_faults(&self, base: &str) -> Result<Vec<(String, u64)>, String> {
        let request = http::Request::get(format!("{base}/sandbox/faults"))
            .body(Bytes::new())
            .map_err(|e| e.to_string())?;
        let response = self
            .admin
            .send(request)
            .await
            .map_err(|e| format!("GET /sandbox/faults: {e}"))?;
        let v: serde_json::Value = serde_json::from_slice(response.body())
            .map_err(|e| format!("GET /sandbox/faults: {e}"))?;
        let mut out = Vec::new();
        for f in v["faults"].as_array().cloned().unwrap_or_default() {
            let kind = f["kind"].as_str().unwrap_or("");
            if matches!(kind, "withholdWebhook" | "wechatFail" | "wechatVoid") {
                continue;
            }
            let path = f["path"].as_str().unwrap_or("").to_owned();
            out.push((path, f["times"].as_u64().unwrap_or(0)));
        }
        Ok(out)
    }

    /// Runs scenario `s` on a freshly reset sandbox.
    pub(crate) async fn run(&self, seed: u64, s: &Scenario) -> ScenarioResult {
        match self.run_inner(seed, s).await {
            Ok(r) => r,
            Err(e) => ScenarioResult {
                outcome: "harness_error",
                violations: vec![("harness_error", e)],
                ..ScenarioResult::default()
            },
        }
    }

    async fn run_inner(&self, seed: u64, s: &Scenario) -> Result<ScenarioResult, String> {
        let sb = &self.sandbox;
        sb.reset();
        if let Ok(mut current) = self.inbox.lock() {
            *current = Arc::new(WebhookInbox::default());
        }
        let settings = sb
            .settings()
            .with_refund_query_match(s.refund_query_match)
            .with_remain_amount_convention(s.remain_convention)
            .with_latency(Duration::from_millis(s.latency_ms));
        sb.set_settings(settings).map_err(|e| e.to_string())?;
        // The scenario's keys come from its own generator: reruns send the same keys.
        let mut keys = Rng::from_seed({
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&seed.to_le_bytes());
            b[8..16].copy_from_slice(&s.index.to_le_bytes());
            b[16] = 0x5a;
            b
        });
        let (channel, currency) = match s.method {
            Method::Card => (SbChannel::Card, SbCurrency::Krw),
            Method::Transfer => (SbChannel::Transfer, SbCurrency::Krw),
            Method::Mobile => (SbChannel::Mobile, SbCurrency::Krw),
            Method::AlipayKrw => (SbChannel::Alipay, SbCurrency::Krw),
            Method::AlipayUsd => (SbChannel::Alipay, SbCurrency::Usd),
            Method::Wechat => (SbChannel::Wechat, SbCurrency::Krw),
        };
        let payment = sb
            .create_payment(channel, s.amount, currency)
            .map_err(|e| e.to_string())?;
        let pg = PgCno::new(&payment.pg_cno).map_err(|e| e.to_string())?;
        let cur = if s.method == Method::AlipayUsd {
            Currency::Usd
        } else {
            Currency::Krw
        };

        // Earlier cancels, without faults.
        let mut earlier: Vec<Option<u64>> = s.earlier.iter().copied().map(Some).collect();
        if matches!(s.kind, RequestKind::AlreadyCancelled(_)) {
            earlier.push(None);
        }
        for amount in earlier {
            let key = ShopTransactionId::generate(SystemTime::now(), &mut keys);
            self.clean_cancel(s.method, &pg, cur, amount, key)
                .await
                .map_err(|e| format!("earlier cancel {amount:?} failed: {e}"))?;
        }

        let pre = self.snapshot(&payment.pg_cno)?;
        let requested = s.requested(pre.remaining_amount);
        let key = ShopTransactionId::generate(SystemTime::now(), &mut keys);
        let mut check = Check {
            pre,
            requested,
            refund_queries: s.refund_query_on_resend || s.resume_with_refund_query,
            violations: Vec::new(),
        };

        // Faults go in before the request is built, as a gateway's trouble would.
        for f in &s.faults {
            let mut fault = Fault::new(f.path, f.kind.clone()).times(f.times);
            if let Some(apply) = f.apply {
                fault = fault.apply(apply);
            }
            sb.inject_fault(fault)
                .map_err(|e| format!("inject {f}: {e}"))?;
        }

        let mut result = ScenarioResult::default();
        match s.method {
            m if m.is_generic() => {
                self.generic_scenario(s, &pg, key, &mut keys, &mut check, &mut result)
                    .await?
            }
            Method::Wechat => {
                self.wechat_scenario(s, &pg, key, &mut check, &mut result)
                    .await?
            }
            _ => {
                self.alipay_scenario(s, &pg, cur, key, &mut check, &mut result)
                    .await?
            }
        }
        // Never two cancels from one request, whatever was reported: the final word.
        self.settle().await;
        let last = self.snapshot(&payment.pg_cno)?;
        check.at_most_one(&last, "final");
        result.violations = check.violations;
        Ok(result)
    }

    /// A cancel made before the scenario's request, with no fault waiting, over the patient
    /// admin transport.
    async fn clean_cancel(
        &self,
        method: Method,
        pg: &PgCno,
        cur: Currency,
        amount: Option<u64>,
        key: ShopTransactionId,
    ) -> Result<(), Error> {
        match method {
            m if m.is_generic() => {
                let req = match amount {
                    Some(a) => kicc_generic::CancelRequest::partial(
                        pg.clone(),
                        payment_method(m),
                        Amount::new("amount", a)?,
                    )?,
                    None => kicc_generic::CancelRequest::full(pg.clone())?,
                };
                let client = kicc_generic::GenericClient::with_transport(
                    self.merchant.clone(),
                    self.admin.clone(),
                )
                .with_retry_policy(self.policy(1, false)?);
                client.cancel_with_key(&req, key).await.map(|_| ())
            }
            Method::Wechat => {
                let req = wallet_request::<kicc_wechat::WeChat>(pg, cur, amount)?
                    .notify_url(self.notify_url.clone());
                let client = kicc_wechat::WechatClient::with_transport(
                    self.merchant.clone(),
                    self.admin.clone(),
                )
                .with_retry_policy(self.policy(1, false)?);
                let msg = req.message(&self.merchant, key, SystemTime::now());
                let accepted = client.send(&msg).await?;
                client
                    .wait_for_result(
                        &accepted,
                        &self.inbox(),
                        self.wait_policy(Duration::from_secs(10)),
                    )
                    .await
                    .map(|_| ())
            }
            _ => {
                let req = wallet_request::<kicc_alipay::Alipay>(pg, cur, amount)?;
                kicc_alipay::AlipayClient::with_transport(self.merchant.clone(), self.admin.clone())
                    .with_retry_policy(self.policy(1, false)?)
                    .cancel_with_key(&req, key)
                    .await
                    .map(|_| ())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn generic_scenario(
        &self,
        s: &Scenario,
        pg: &PgCno,
        key: ShopTransactionId,
        keys: &mut Rng,
        check: &mut Check,
        result: &mut ScenarioResult,
    ) -> Result<(), String> {
        let method = payment_method(s.method);
        let built = (|| -> Result<kicc_generic::CancelRequest, Error> {
            let amount = |a: u64| Amount::new("amount", a);
            let balance = check.pre.remaining_amount;
            let req = match s.kind {
                RequestKind::Full | RequestKind::AlreadyCancelled(None) => {
                    kicc_generic::CancelRequest::full(pg.clone())?
                }
                RequestKind::Partial(a)
                | RequestKind::OverCancel(a)
                | RequestKind::AlreadyCancelled(Some(a)) => {
                    let req = kicc_generic::CancelRequest::partial(pg.clone(), method, amount(a)?)?;
                    let convention = match s.remain_convention {
                        kicc_sandbox::RemainAmountConvention::BalanceAfter => {
                            kicc_generic::RemainAmountConvention::BalanceAfterCancel
                        }
                        _ => kicc_generic::RemainAmountConvention::BalanceBeforeCancel,
                    };
                    match s.remain {
                        Remain::Absent => req,
                        Remain::Correct => req
                            .remain_amount(amount(balance)?)?
                            .remain_amount_convention(convention),
                        Remain::Stale => req
                            .remain_amount(amount(balance + 1_000)?)?
                            .remain_amount_convention(convention),
                    }
                }
                RequestKind::ZeroAmount => {
                    kicc_generic::CancelRequest::partial(pg.clone(), method, amount(0)?)?
                }
                RequestKind::ForbiddenCharacter => kicc_generic::CancelRequest::full(pg.clone())?
                    .reason(kicc_core::ReviseMessage::new("refund; customer <asked>")?),
                RequestKind::RemainBelowAmount(a) => {
                    kicc_generic::CancelRequest::partial(pg.clone(), method, amount(a)?)?
                        .remain_amount(amount(a - 1)?)?
                }
            };
            Ok(req)
        })();
        let req = match built {
            Ok(req) => req,
            Err(e) => {
                result.outcome = outcome_name(&e);
                return self.invalid_done(s, pg, check, &e).await;
            }
        };
        if s.kind.is_invalid() {
            check.violate(
                "invalid_accepted",
                "the builder accepted a request that breaks an API rule".into(),
            );
        }
        let client = self.generic(s).map_err(|e| e.to_string())?;
        let first = client.cancel_with_key(&req, key).await;
        self.settle().await;
        let post = self.snapshot(pg.as_str())?;
        result.outcome = match &first {
            Ok(_) => "success",
            Err(e) => outcome_name(e),
        };
        match first {
            Ok(r) => check.success(&post, Some(&r.cancel_pg_cno), r.cancel_amount, "first"),
            Err(Error::Ambiguous { sent, .. }) => {
                check.at_most_one(&post, "ambiguous");
                self.clear_faults().await?;
                let resumed = if s.resume_with_refund_query {
                    let key = ShopTransactionId::generate(SystemTime::now(), keys);
                    client.resume_with_refund_query(&req, sent, key).await
                } else {
                    client.resume(&req, sent).await
                };
                self.settle().await;
                let after = self.snapshot(pg.as_str())?;
                let resumed = resumed.map(|r| (r.cancel_pg_cno, r.cancel_amount));
                result.resumed = Some(judge_resume(check, &after, resumed));
            }
            Err(e) => check.no_change(&post, outcome_name(&e), "first"),
        }
        Ok(())
    }

    async fn alipay_scenario(
        &self,
        s: &Scenario,
        pg: &PgCno,
        cur: Currency,
        key: ShopTransactionId,
        check: &mut Check,
        result: &mut ScenarioResult,
    ) -> Result<(), String> {
        let req = match wallet_scenario_request::<kicc_alipay::Alipay>(s, pg, cur) {
            Ok(req) => req,
            Err(e) => {
                result.outcome = outcome_name(&e);
                return self.invalid_done(s, pg, check, &e).await;
            }
        };
        let client = self.alipay(s.max_attempts).map_err(|e| e.to_string())?;
        let message = req.message(&self.merchant, key, SystemTime::now());
        let first = client.send(&message).await;
        self.settle().await;
        let post = self.snapshot(pg.as_str())?;
        result.outcome = match &first {
            Ok(_) => "success",
            Err(e) => outcome_name(e),
        };
        match first {
            Ok(r) => check.success(&post, Some(&r.cancel_pg_cno), None, "first"),
            Err(Error::Ambiguous { .. }) => {
                check.at_most_one(&post, "ambiguous");
                self.clear_faults().await?;
                let resumed = client.resume(&message).await;
                self.settle().await;
                let after = self.snapshot(pg.as_str())?;
                let resumed = resumed.map(|r| (r.cancel_pg_cno, None));
                result.resumed = Some(judge_resume(check, &after, resumed));
            }
            Err(e) => check.no_change(&post, outcome_name(&e), "first"),
        }
        Ok(())
    }

    async fn wechat_scenario(
        &self,
        s: &Scenario,
        pg: &PgCno,
        key: ShopTransactionId,
        check: &mut Check,
        result: &mut ScenarioResult,
    ) -> Result<(), String> {
        let req = match wallet_scenario_request::<kicc_wechat::WeChat>(s, pg, Currency::Krw) {
            Ok(req) => req.notify_url(self.notify_url.clone()),
            Err(e) => {
                result.outcome = outcome_name(&e);
                return self.invalid_done(s, pg, check, &e).await;
            }
        };
        let client = self.wechat(s.max_attempts).map_err(|e| e.to_string())?;
        let message = req.message(&self.merchant, key, SystemTime::now());
        let accepted = match client.send(&message).await {
            Ok(a) => Some(a),
            Err(Error::Ambiguous { .. }) => {
                self.settle().await;
                let post = self.snapshot(pg.as_str())?;
                result.outcome = "ambiguous";
                check.at_most_one(&post, "ambiguous");
                self.clear_faults().await?;
                match client.resume(&message).await {
                    Ok(a) => {
                        result.resumed = Some("accepted");
                        Some(a)
                    }
                    Err(e @ Error::Ambiguous { .. }) => {
                        self.settle().await;
                        let after = self.snapshot(pg.as_str())?;
                        let unprovable = check.resume_ambiguous(&after, &e);
                        result.resumed = Some(if unprovable {
                            "unprovable_refund_query"
                        } else if check.live_new(&after).is_empty() {
                            "ambiguous_nothing_cancelled"
                        } else {
                            "ambiguous"
                        });
                        None
                    }
                    Err(e) => {
                        self.settle().await;
                        let after = self.snapshot(pg.as_str())?;
                        result.resumed = Some(outcome_name(&e));
                        check.no_change(&after, outcome_name(&e), "resume");
                        None
                    }
                }
            }
            Err(e) => {
                self.settle().await;
                let post = self.snapshot(pg.as_str())?;
                result.outcome = outcome_name(&e);
                check.no_change(&post, outcome_name(&e), "first");
                None
            }
        };
        let Some(accepted) = accepted else {
            return Ok(());
        };
        let waited = self.wechat_wait(&client, &accepted, result).await?;
        let post = self.snapshot(pg.as_str())?;
        if result.outcome.is_empty() {
            result.outcome = waited;
        }
        self.wechat_final_check(check, &post, &accepted, waited);
        Ok(())
    }

    /// Waits for an accepted WeChat cancel's result; a `pending` or `status_unknown` wait is
    /// retried once with every fault used up. Returns the final outcome's name.
    async fn wechat_wait(
        &self,
        client: &kicc_wechat::WechatClient,
        accepted: &Accepted,
        result: &mut ScenarioResult,
    ) -> Result<&'static str, String> {
        let inbox = self.inbox();
        let first = client
            .wait_for_result(accepted, &inbox, self.wait_policy(self.timing.wechat_wait))
            .await;
        let name = match &first {
            Ok(r) => {
                result.wechat_source = Some(source_name(r.source));
                "success"
            }
            Err(e) => outcome_name(e),
        };
        if !matches!(name, "pending" | "status_unknown") {
            return Ok(name);
        }
        if result.outcome.is_empty() {
            result.outcome = name;
        }
        self.clear_faults().await?;
        let again = client
            .wait_for_result(accepted, &inbox, self.wait_policy(Duration::from_secs(10)))
            .await;
        let name = match &again {
            Ok(r) => {
                result.wechat_source = Some(source_name(r.source));
                "success"
            }
            Err(e) => outcome_name(e),
        };
        result.resumed = Some(name);
        Ok(name)
    }

    fn wechat_final_check(
        &self,
        check: &mut Check,
        post: &PaymentState,
        accepted: &Accepted,
        waited: &'static str,
    ) {
        let ours = post
            .cancels
            .iter()
            .find(|c| c.cancel_pg_cno == accepted.cancel_pg_cno);
        match waited {
            "success" => check.success(post, Some(&accepted.cancel_pg_cno), None, "wechat"),
            "declined" => {
                // A failed WeChat cancel: recorded as failed, nothing moved.
                if ours.is_some_and(|c| c.outcome != "failed") {
                    check.violate(
                        "wechat_declined_but_applied",
                        format!(
                            "the wait said the cancel failed; the sandbox says {:?}",
                            ours.map(|c| &c.outcome)
                        ),
                    );
                }
                check.no_change(post, "declined", "wechat");
            }
            other => {
                check.at_most_one(post, "wechat");
                check.violate(
                    "wechat_unresolved",
                    format!("an accepted cancel is still {other} after its faults were used up"),
                );
            }
        }
    }

    /// An invalid request: nothing may have been sent.
    async fn invalid_done(
        &self,
        s: &Scenario,
        pg: &PgCno,
        check: &mut Check,
        e: &Error,
    ) -> Result<(), String> {
        if !s.kind.is_invalid() {
            check.violate(
                "valid_refused",
                format!("a valid request was refused by the builder: {e}"),
            );
        }
        if !matches!(e, Error::Invalid(_)) {
            check.violate("invalid_untyped", format!("not Error::Invalid: {e}"));
        }
        let post = self.snapshot(pg.as_str())?;
        check.no_change(&post, "invalid", "first");
        Ok(())
    }
}

fn payment_method(m: Method) -> kicc_generic::PaymentMethod {
    match m {
        Method::Transfer => kicc_generic::PaymentMethod::BankTransfer,
        Method::Mobile => kicc_generic::PaymentMethod::Mobile,
        _ => kicc_generic::PaymentMethod::Card,
    }
}

fn wallet_request<C: kicc_core::wallet::WalletApi>(
    pg: &PgCno,
    cur: Currency,
    amount: Option<u64>,
) -> Result<kicc_core::wallet::WalletCancel<C>, Error> {
    Ok(match amount {
        Some(a) => kicc_core::wallet::WalletCancel::partial(
            pg.clone(),
            Money::from_minor("amount", cur, a)?,
        ),
        None => kicc_core::wallet::WalletCancel::full(pg.clone()),
    })
}

fn wallet_scenario_request<C: kicc_core::wallet::WalletApi>(
    s: &Scenario,
    pg: &PgCno,
    cur: Currency,
) -> Result<kicc_core::wallet::WalletCancel<C>, Error> {
    match s.kind {
        RequestKind::Full | RequestKind::AlreadyCancelled(None) => wallet_request(pg, cur, None),
        RequestKind::Partial(a)
        | RequestKind::OverCancel(a)
        | RequestKind::AlreadyCancelled(Some(a))
        | RequestKind::RemainBelowAmount(a) => wallet_request(pg, cur, Some(a)),
        RequestKind::ZeroAmount => wallet_request(pg, cur, Some(0)),
        RequestKind::ForbiddenCharacter => {
            Ok(wallet_request(pg, cur, None)?.memo(Memo::new("refund | \"customer\"")?))
        }
    }
}

fn source_name(source: kicc_wechat::ResultSource) -> &'static str {
    match source {
        kicc_wechat::ResultSource::Notice => "notice",
        kicc_wechat::ResultSource::StatusQuery => "status_query",
        // ResultSource is #[non_exhaustive]: a source added later is reported as "other".
        _ => "other",
    }
}

/// Checks a resumed cancel's outcome against the sandbox's state `after` it, and names it for
/// the report: a success must be this request's one cancel; an ambiguous end may have made at
/// most one (and is "unprovable" when only a refund query's untied answer stands); any other
/// failure must have changed nothing.
fn judge_resume(
    check: &mut Check,
    after: &PaymentState,
    resumed: Result<(String, Option<u64>), Error>,
) -> &'static str {
    match resumed {
        Ok((cancel_pg_cno, amount)) => {
            check.success(after, Some(&cancel_pg_cno), amount, "resume");
            "success"
        }
        Err(e @ Error::Ambiguous { .. }) => {
            if check.resume_ambiguous(after, &e) {
                "unprovable_refund_query"
            } else if check.live_new(after).is_empty() {
                "ambiguous_nothing_cancelled"
            } else {
                "ambiguous"
            }
        }
        Err(e) => {
            let name = outcome_name(&e);
            check.no_change(after, name, "resume");
            name
        }
    }
}

/// The name of an error's outcome.
pub(crate) fn outcome_name(e: &Error) -> &'static str {
    match e {
        Error::Invalid(_) => "invalid",
        Error::Declined(_) => "declined",
        Error::Transport { .. } => "not_processed",
        Error::Ambiguous { .. } => "ambiguous",
        Error::AlreadyCancelled { .. } => "already_cancelled",
        Error::StatusUnknown { .. } => "status_unknown",
        Error::Pending { .. } => "pending",
        _ => "other_error",
    }
}

/// The checks of one scenario against the payment's state before its request.
struct Check {
    pre: PaymentState,
    requested: u64,
    /// Whether the request sent refund queries (generic), whose answers never tie.
    refund_queries: bool,
    violations: Vec<(&'static str, String)>,
}

impl Check {
    fn violate(&mut self, kind: &'static str, description: String) {
        self.violations.push((kind, description));
    }

    /// The cancels made since the snapshot that took or hold money (not failed ones).
    fn live_new<'a>(&self, post: &'a PaymentState) -> Vec<&'a CancelState> {
        let before: HashSet<&str> = self
            .pre
            .cancels
            .iter()
            .map(|c| c.cancel_pg_cno.as_str())
            .collect();
        post.cancels
            .iter()
            .filter(|c| !before.contains(c.cancel_pg_cno.as_str()) && c.outcome != "failed")
            .collect()
    }

    fn describe(cancels: &[&CancelState]) -> String {
        let parts: Vec<String> = cancels
            .iter()
            .map(|c| {
                format!(
                    "{}:{}:{}:{}",
                    c.cancel_pg_cno, c.amount, c.outcome, c.shop_transaction_id
                )
            })
            .collect();
        format!("[{}]", parts.join(" "))
    }

    /// Success: exactly one new cancel, applied, of exactly the requested amount, the one
    /// reported.
    fn success(
        &mut self,
        post: &PaymentState,
        cancel_pg_cno: Option<&str>,
        cancel_amount: Option<u64>,
        stage: &str,
    ) {
        let live = self.live_new(post);
        let desc = Self::describe(&live);
        if live.len() != 1 {
            self.violate(
                "success_without_exactly_one_cancel",
                format!(
                    "{stage}: success, but the sandbox shows {} new cancels {desc}",
                    live.len()
                ),
            );
            return;
        }
        let c = live[0];
        if c.amount != self.requested {
            self.violate(
                "success_wrong_amount",
                format!(
                    "{stage}: requested {}, the cancel is {desc}",
                    self.requested
                ),
            );
        }
        if c.outcome != "applied" {
            self.violate(
                "success_not_applied",
                format!("{stage}: success, the cancel is {desc}"),
            );
        }
        if let Some(id) = cancel_pg_cno {
            if id != c.cancel_pg_cno {
                self.violate(
                    "success_reports_another_cancel",
                    format!("{stage}: reported cancelPgCno {id}, the new cancel is {desc}"),
                );
            }
        }
        if let Some(a) = cancel_amount {
            if a != self.requested {
                self.violate(
                    "success_reports_wrong_amount",
                    format!(
                        "{stage}: reported cancelAmount {a}, requested {}",
                        self.requested
                    ),
                );
            }
        }
        let expected = self.pre.remaining_amount.saturating_sub(self.requested);
        if post.remaining_amount != expected {
            self.violate(
                "success_wrong_balance",
                format!(
                    "{stage}: balance {} -> {}, expected {expected}",
                    self.pre.remaining_amount, post.remaining_amount
                ),
            );
        }
    }

    /// Declined, not processed, invalid, already cancelled: nothing moved.
    fn no_change(&mut self, post: &PaymentState, outcome: &str, stage: &str) {
        let live = self.live_new(post);
        if !live.is_empty() || post.remaining_amount != self.pre.remaining_amount {
            self.violate(
                "no_change_but_changed",
                format!(
                    "{stage}: outcome {outcome}, but the sandbox shows new cancels {} and balance {} -> {}",
                    Self::describe(&live),
                    self.pre.remaining_amount,
                    post.remaining_amount
                ),
            );
        }
    }

    /// Unknown: at most one new cancel, and only of the requested amount.
    fn at_most_one(&mut self, post: &PaymentState, stage: &str) {
        let live = self.live_new(post);
        if live.len() > 1 {
            self.violate(
                "two_cancels",
                format!(
                    "{stage}: {} new cancels from one request {}",
                    live.len(),
                    Self::describe(&live)
                ),
            );
        } else if let Some(c) = live.first() {
            if c.amount != self.requested {
                self.violate(
                    "cancel_of_wrong_amount",
                    format!(
                        "{stage}: requested {}, the new cancel is {}",
                        self.requested,
                        Self::describe(&live)
                    ),
                );
            }
        }
    }

    /// A resume that is still unknown with no fault left. Allowed only when nothing moved:
    /// the request's keys were processed as refusals (a wallet key answers its refusal again,
    /// and after a maybe-processed attempt a refusal is never "did not happen"; a generic
    /// look-up reads a recorded refusal as an unexpected answer). A cancel the sandbox made
    /// that the resume cannot report is a resume that failed to finish.
    ///
    /// The exception is a request that sent refund queries: by design (DESIGN.md invariant 9)
    /// a refund query's answer, looked up or not, never proves that the cancel it describes is
    /// this request's rather than an earlier equal refund, so such a request may stay unknown
    /// with its one cancel made. That is counted (`unprovable_refund_query`), not a violation,
    /// as long as at most one cancel of the right amount exists.
    fn resume_ambiguous(&mut self, post: &PaymentState, e: &Error) -> bool {
        let before = self.violations.len();
        self.at_most_one(post, "resume");
        let live = self.live_new(post);
        if self.refund_queries && live.len() == 1 && self.violations.len() == before {
            return true;
        }
        if !live.is_empty() {
            self.violate(
                "resume_unfinished",
                format!(
                    "the resume, with no fault left, is unknown although the sandbox made the cancel {}: {e}",
                    Self::describe(&live)
                ),
            );
        }
        false
    }
}
