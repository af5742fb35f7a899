//! The executor (feature `client`, on by default): cancels through the ledger.
//!
//! [`Ledger`] drives kicc-core's sans-IO [`Cancellation`] itself, so that every attempt is
//! durable before its first byte: for each request the machine asks to send, an attempt
//! (not a look-up) renews the lease for at least the attempt's timeout plus a margin and
//! records its key, Korea date and exact bytes; only then is it sent, and its result is
//! recorded before the next step. The message is built when the intent is leased (a batch
//! may cross Korea midnight).
//!
//! Recovery never rebuilds an intent that may have been processed as a new cancel:
//!
//! - generic: [`Cancellation::resume`] with a fresh, unused key and every journaled attempt;
//!   it looks each maybe-processed key up (no sooner than its send plus the processing
//!   bound) and sends anew only when all are absent;
//! - Alipay / WeChat Pay: the stored bytes are resent identically (same key, same date, also
//!   after midnight) until [`ExecConfig::wallet_resend_max_age`] after the first send, after
//!   which the intent stays unknown;
//! - WeChat Pay pending: stored webhook notices for (`pgCno`, `cancelPgCno`) are confirmed
//!   with `find`, or `find` is asked until [`ExecConfig::wait`] passes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kicc_core::retry::{
    Action, Cancellation, Delivery, Describes, Exchange, InFlight, RetryPolicy, SentAttempt,
};
use kicc_core::wallet::{WalletApi, WalletCancel, WalletRevise};
use kicc_core::webhook::WechatCancelNotice;
use kicc_core::wire::Envelope;
use kicc_core::{classify, ResponseClass};
use kicc_core::{
    Amount, Error as CoreError, FieldError, KoreaDate, Memo, Merchant, Money, NotifyUrl, PgCno,
    ReviseMessage, ReviseTypeCode, ShopTransactionId,
};
use kicc_generic::RemainAmountConvention;
use kicc_transport::driver::{attempt_copy, never_delivered, now, os_rng};
use kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};
use kicc_wechat::{ResultWaiter, StatusQuery, WaitAction, WaitPolicy};
use tokio::sync::watch;

use crate::error::{LedgerError, TransitionError};
use crate::model::{
    Attempt, AttemptPlan, AttemptResult, Channel, Finish, Intent, IntentParams, IntentSpec, Lease,
    NotProcessedProof, OutcomeKind, StateKind, Timestamp,
};
use crate::money::core_currency;
use crate::store::{Leased, Store, Summary};
use crate::transition::Planned;

/// How the executor sends and waits: [`ExecConfig::default`], then `with_*` to change a
/// setting.
///
/// ```
/// use std::time::Duration;
/// let config = kicc_ledger::ExecConfig::default()
///     .with_attempt_timeout(Duration::from_secs(20))
///     .with_wait(Duration::from_secs(120));
/// assert_eq!(config.attempt_timeout(), Duration::from_secs(20));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    policy: RetryPolicy,
    attempt_timeout: Duration,
    lease_margin: Duration,
    wallet_resend_max_age: Duration,
    wait: Duration,
    query_interval: Duration,
    remain_convention: RemainAmountConvention,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            policy: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(30),
            lease_margin: Duration::from_secs(10),
            wallet_resend_max_age: Duration::from_secs(24 * 60 * 60),
            wait: Duration::from_secs(60),
            query_interval: Duration::from_secs(2),
            remain_convention: RemainAmountConvention::default(),
        }
    }
}

impl ExecConfig {
    /// Retry bounds and gateway facts (processing bound, look-up "not found" codes), the
    /// same knobs as `kicc cancel` (default: [`RetryPolicy::default`]).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The longest one request may take (default 30 s); a request still unanswered then is
    /// treated as possibly delivered.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Lease left beyond the timeout before an attempt starts (default 10 s).
    pub fn with_lease_margin(mut self, margin: Duration) -> Self {
        self.lease_margin = margin;
        self
    }

    /// Identical Alipay / WeChat Pay resends stop this long after the first send (default
    /// one day); the intent is then left unknown.
    pub fn with_wallet_resend_max_age(mut self, age: Duration) -> Self {
        self.wallet_resend_max_age = age;
        self
    }

    /// How long a WeChat Pay cancel waits for its final result after acceptance (default
    /// 60 s); still pending after that.
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Status queries of a pending WeChat Pay cancel, this far apart (default 2 s).
    pub fn with_query_interval(mut self, interval: Duration) -> Self {
        self.query_interval = interval;
        self
    }

    /// What `remain_amount` means on the wire (default: the balance before the cancel).
    pub fn with_remain_convention(mut self, convention: RemainAmountConvention) -> Self {
        self.remain_convention = convention;
        self
    }

    /// See [`ExecConfig::with_retry_policy`].
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// See [`ExecConfig::with_attempt_timeout`].
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// See [`ExecConfig::with_lease_margin`].
    pub fn lease_margin(&self) -> Duration {
        self.lease_margin
    }

    /// See [`ExecConfig::with_wallet_resend_max_age`].
    pub fn wallet_resend_max_age(&self) -> Duration {
        self.wallet_resend_max_age
    }

    /// See [`ExecConfig::with_wait`].
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// See [`ExecConfig::with_query_interval`].
    pub fn query_interval(&self) -> Duration {
        self.query_interval
    }

    /// See [`ExecConfig::with_remain_convention`].
    pub fn remain_convention(&self) -> RemainAmountConvention {
        self.remain_convention
    }

    /// The lease a worker takes: an attempt's timeout and margin, plus the longest wait the
    /// machine may make between two attempts (processing bound, backoff) so a live worker
    /// is not taken over while it waits.
    pub fn lease_ttl(&self) -> Duration {
        self.attempt_timeout
            .saturating_add(self.lease_margin)
            .saturating_add(self.policy.processing_bound())
            .saturating_add(self.policy.max_backoff())
            .saturating_add(self.query_interval)
    }

    fn min_remaining(&self) -> Duration {
        self.attempt_timeout.saturating_add(self.lease_margin)
    }
}

/// Why the executor stopped before an intent reached a state it could record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The intent's parameters are invalid: nothing was stored or sent.
    #[error("invalid {0}")]
    Invalid(#[from] crate::error::InvalidField),
    /// The ledger refused or failed (conflict, busy, fenced, database error). Whatever was
    /// recorded stands; an intent left in flight is recovered later.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<TransitionError> for ExecError {
    fn from(e: TransitionError) -> Self {
        ExecError::Ledger(LedgerError::Transition(e))
    }
}

/// Options of [`Ledger::run_batch`]: [`BatchOptions::default`] (8 at once, no rate limit),
/// then `with_*`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchOptions {
    concurrency: usize,
    rate: Option<f64>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            concurrency: 8,
            rate: None,
        }
    }
}

impl BatchOptions {
    /// Workers (at least 1), each with one request on the wire at a time: the batch's
    /// requests at once. While a worker's request is on the wire it commits the outcome of
    /// its previous intent and leases and journals its next one, so up to three intents per
    /// worker are in flight in the ledger's sense (leased).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// At most this many intents started per second (`None`: no limit; a rate that is not
    /// a positive finite number is no limit either). A worker waits for its slot before it
    /// leases; the stop ends that wait with nothing leased, a slot that finds nothing to
    /// lease is handed back, and each intent's outcome is committed as soon as it ends.
    pub fn with_rate(mut self, per_second: Option<f64>) -> Self {
        self.rate = per_second;
        self
    }

    /// See [`BatchOptions::with_concurrency`].
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// See [`BatchOptions::with_rate`].
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }
}

/// Cancels through a ledger: one merchant, one transport, one store. See the crate's front
/// page for an example, and the module docs for what it guarantees.
#[derive(Debug, Clone)]
pub struct Ledger<S, T> {
    store: S,
    transport: T,
    merchant: Merchant,
    config: ExecConfig,
}

/// The state of one leased run: the lease (renewed as it goes) and the journal.
struct Run {
    lease: Lease,
    intent: Intent,
    /// A local instant no later than the database's "now" the lease's expiry was computed
    /// from (taken just before asking), when known: while `ttl` minus the time since then
    /// still covers an attempt, renewing would change nothing and is skipped.
    held_since: Option<Instant>,
    /// The result of the latest attempt, not yet written: it is written before the next
    /// step (a wait, a send), or with the outcome in one transaction when the next step is
    /// the end ([`Store::finish_with_result`]).
    unwritten: Option<(u32, AttemptResult)>,
}

impl<S: Store, T: Transport> Ledger<S, T> {
    /// A ledger executor with the default [`ExecConfig`].
    pub fn new(store: S, merchant: Merchant, transport: T) -> Self {
        Ledger {
            store,
            transport,
            merchant,
            config: ExecConfig::default(),
        }
    }

    /// Replaces the configuration (read it back with [`Ledger::exec_config`]).
    pub fn with_exec_config(mut self, config: ExecConfig) -> Self {
        self.config = config;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration.
    pub fn exec_config(&self) -> &ExecConfig {
        &self.config
    }

    /// Cancels once per `intent_id`: stores the intent, runs it to an outcome and returns
    /// it. The same id with the same parameters returns the stored intent (a final one as
    /// it is, sending nothing; an unfinished one is recovered); with different parameters
    /// it is a typed conflict ([`TransitionError::Conflict`]).
    pub async fn cancel(&self, params: IntentParams) -> Result<Intent, ExecError> {
        let spec = params.validate()?;
        self.cancel_spec(spec).await
    }

    /// [`Ledger::cancel`] with a validated spec.
    pub async fn cancel_spec(&self, spec: IntentSpec) -> Result<Intent, ExecError> {
        let id = spec.intent_id().clone();
        let intent = match self.store.plan(spec).await? {
            Planned::Created(i) | Planned::Existing(i) => i,
        };
        if intent.state.kind().is_final() {
            return Ok(intent);
        }
        let asked = Instant::now();
        let leased = self.store.lease(&id, self.config.lease_ttl()).await?;
        self.run_held(leased, Some(asked), None).await
    }

    /// Runs a leased intent to an outcome it can record (final, unknown or pending) and
    /// returns the intent as stored. `stop`, when it turns `true`, cuts a WeChat Pay wait
    /// short (the intent stays pending).
    pub async fn run_leased(
        &self,
        leased: Leased,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Result<Intent, ExecError> {
        self.run_held(leased, None, stop).await
    }

    /// [`Ledger::run_leased`] for a lease asked for at `asked` (local clock), if known.
    async fn run_held(
        &self,
        leased: Leased,
        asked: Option<Instant>,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Result<Intent, ExecError> {
        let run = Run {
            lease: leased.lease,
            intent: leased.intent,
            held_since: asked,
            unwritten: None,
        };
        match self.run_to_end(run, None, stop).await? {
            End::Finish(run, finish) => self.end_run(run, finish).await,
            End::Done(intent) => Ok(*intent),
        }
    }

    /// Runs `run` up to its last write: returns that write ([`End::Finish`]) for the caller
    /// to commit, or the intent when the run ended otherwise. `begun` is the first attempt
    /// recorded together with the lease ([`Store::start_next`]), not yet sent.
    async fn run_to_end(
        &self,
        mut run: Run,
        begun: Option<Begun>,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Result<End, ExecError> {
        // An attempt an earlier worker recorded but never saw answered may have been
        // processed: say so in the journal before anything else.
        let ours = begun.as_ref().map(|b| b.number);
        let orphans: Vec<u32> = run
            .intent
            .attempts
            .iter()
            .filter(|a| a.result.is_none() && Some(a.number) != ours)
            .map(|a| a.number)
            .collect();
        for number in orphans {
            let result = AttemptResult {
                http_status: None,
                res_cd: None,
                detail: "taken over: the earlier worker stopped before recording the result".into(),
                outcome: OutcomeKind::Ambiguous,
            };
            self.store
                .record_result(&run.lease, number, result.clone())
                .await?;
            if let Some(a) = run.intent.attempts.iter_mut().find(|a| a.number == number) {
                a.result = Some(result);
            }
        }
        let channel = run.intent.spec.channel();
        if channel == Channel::Wechat && begun.is_none() {
            if let Some(cancel_pg_cno) = run.intent.cancel_pg_cno.clone() {
                // Accepted earlier: learn the result, never send the cancel again.
                return Ok(End::Done(Box::new(
                    self.await_wechat(run, cancel_pg_cno, stop).await?,
                )));
            }
        }
        let outcome = match channel {
            Channel::Generic => self.run_generic(&mut run, begun.as_ref()).await,
            Channel::Alipay => {
                self.run_wallet(
                    &mut run,
                    begun.as_ref(),
                    wallet_request::<kicc_alipay::Alipay>,
                )
                .await
            }
            Channel::Wechat => {
                self.run_wallet(&mut run, begun.as_ref(), wechat_request)
                    .await
            }
        };
        let finish = match outcome {
            Err(ExecError::Ledger(e)) => return Err(ExecError::Ledger(e)),
            Err(ExecError::Invalid(f)) => self.unsendable(&run, f.to_string()),
            Ok(Built::Refused(why)) => self.unsendable(&run, why),
            Ok(Built::Finish(f)) => f,
        };
        if let Finish::Pending { cancel_pg_cno } = &finish {
            let cancel_pg_cno = cancel_pg_cno.clone();
            let intent = self.finish(&run, finish).await?;
            if stop.is_some_and(|s| *s.borrow()) {
                return Ok(End::Done(Box::new(intent)));
            }
            let asked = Instant::now();
            let leased = self
                .store
                .lease(intent.spec.intent_id(), self.config.lease_ttl())
                .await?;
            let run = Run {
                lease: leased.lease,
                intent: leased.intent,
                held_since: Some(asked),
                unwritten: None,
            };
            return Ok(End::Done(Box::new(
                self.await_wechat(run, cancel_pg_cno, stop).await?,
            )));
        }
        Ok(End::Finish(Box::new(run), finish))
    }

    /// Commits the last write of a run (its outcome, with the latest result if unwritten).
    async fn end_run(&self, run: Box<Run>, finish: Finish) -> Result<Intent, ExecError> {
        self.finish(&run, finish).await
    }

    /// Recovers every intent left in flight (expired lease or dead owner), unknown or
    /// pending, `concurrency` at a time; returns them as they ended. Intents a live owner
    /// holds are skipped.
    pub async fn recover(&self, concurrency: usize) -> Result<Vec<Intent>, ExecError> {
        let (_tx, rx) = watch::channel(false);
        let ended = std::sync::Mutex::new(Vec::new());
        let push = |i: &Intent| {
            if let Ok(mut e) = ended.lock() {
                e.push(i.clone());
            }
        };
        self.recover_with(concurrency, &rx, &push).await?;
        Ok(ended.into_inner().unwrap_or_default())
    }

    async fn recover_with(
        &self,
        concurrency: usize,
        stop: &watch::Receiver<bool>,
        on_done: &(dyn Fn(&Intent) + Sync),
    ) -> Result<(), ExecError>
    where
        S: Sync,
        T: Sync,
    {
        let mut ids: Vec<_> = self
            .store
            .recoverable()
            .await?
            .into_iter()
            .map(|i| i.spec.intent_id().clone())
            .collect();
        for p in self.store.list(Some(StateKind::Pending)).await? {
            let id = p.spec.intent_id().clone();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let next = AtomicUsize::new(0);
        let worker = || async {
            loop {
                if *stop.borrow() {
                    return Ok::<(), ExecError>(());
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(id) = ids.get(i) else {
                    return Ok(());
                };
                let asked = Instant::now();
                let leased = match self.store.lease(id, self.config.lease_ttl()).await {
                    Ok(l) => l,
                    // Someone else holds it, it ended meanwhile, or an earlier intent on its
                    // payment must end first: leave it to them / to the batch.
                    Err(LedgerError::Transition(
                        TransitionError::Busy { .. }
                        | TransitionError::AlreadyFinal { .. }
                        | TransitionError::Blocked { .. },
                    )) => continue,
                    Err(e) => return Err(e.into()),
                };
                match self.run_held(leased, Some(asked), Some(stop)).await {
                    Ok(intent) => on_done(&intent),
                    Err(e) if taken_over(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        };
        let workers: Vec<_> = (0..concurrency.max(1)).map(|_| worker()).collect();
        for r in join_all(workers).await {
            r?;
        }
        Ok(())
    }

    /// Runs the ledger's work: first recovers what an earlier run left (in flight, unknown,
    /// pending), then leases planned intents (import order, one at a time per `pgCno`) with
    /// `options.concurrency` workers until none is left or `stop` turns `true`; an intent
    /// in flight when `stop` turns is finished or recorded, never abandoned mid-attempt
    /// (one a worker already leased and journaled but not yet sent is run too).
    /// `on_done` sees each intent as it ends.
    pub async fn run_batch<'s>(
        &'s self,
        options: BatchOptions,
        stop: watch::Receiver<bool>,
        on_done: &(dyn Fn(&Intent) + Sync),
    ) -> Result<(), ExecError>
    where
        S: Sync,
        T: Sync,
    {
        let concurrency = options.concurrency.max(1);
        self.publish_metrics().await?;
        self.recover_with(concurrency, &stop, on_done).await?;
        let busy = AtomicUsize::new(0);
        let progressed = tokio::sync::Notify::new();
        let pacer = options
            .rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Pacer::new(Duration::from_secs_f64(1.0 / r)));
        // Each worker pipelines three intents, so that its commits overlap the network
        // instead of adding to it: while its CURRENT intent's request is on the wire, the
        // PREVIOUS intent's last write (outcome and latest result) and the NEXT intent's
        // lease with its journaled first attempt ([`Store::start_next`]) are committed,
        // queued together (the outcome first, so an intent it held back on the same payment
        // can be leased in the same commit). A worker still has one request on the wire at
        // a time, and nothing is sent for an intent before its own writes are committed.
        // With a rate, the outcome is committed as soon as its intent ends instead (the
        // next lease waits for its slot).
        type Tail<'t> = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Intent, ExecError>> + Send + 't>,
        >;
        // Settles an ended intent: `Err` only for a failure that stops the worker.
        let settle = |ended: Result<Intent, ExecError>| -> Result<(), ExecError> {
            busy.fetch_sub(1, Ordering::SeqCst);
            progressed.notify_waiters();
            match ended {
                Ok(intent) => {
                    on_done(&intent);
                    Ok(())
                }
                // Taken over while we waited (our lease expired): the new holder goes on
                // from what we recorded; nothing of ours can be written any more.
                Err(e) if taken_over(&e) => Ok(()),
                Err(e) => Err(e),
            }
        };
        // Commits `tail` (if any) and starts the next intent, both at once; `None` when no
        // intent was free or the stop came while waiting for a rate slot, with whether a
        // tail was settled (it may have freed one).
        //
        // With `--rate`, the tail is committed (and settled) BEFORE the wait for the slot,
        // so a finished intent never shows in flight for a slot's time; the wait ends at
        // the slot or at the stop, whichever comes first, and nothing is leased when
        // stopping; a slot that leases nothing is handed back.
        let start = |tail: Option<Tail<'s>>| async {
            let mut tail = tail;
            let mut slot = None;
            let mut settled_first = false;
            if let Some(pacer) = &pacer {
                if let Some(t) = tail.take() {
                    settled_first = true;
                    if let Err(e) = settle(t.await) {
                        return (None, true, Some(e));
                    }
                }
                match pacer.take(&stop).await {
                    Some(at) => slot = Some(at),
                    None => return (None, settled_first, None),
                }
            }
            busy.fetch_add(1, Ordering::SeqCst);
            let asked = Instant::now();
            let at = SystemTime::now();
            let key = ShopTransactionId::generate(at, &mut os_rng());
            let leasing = self.store.start_next(
                self.config.lease_ttl(),
                self.config.min_remaining(),
                self.first_attempt(key.clone(), at),
            );
            let (ended, started) = match tail {
                Some(t) => {
                    let (ended, started) = tokio::join!(t, leasing);
                    (Some(ended), started)
                }
                None => (None, leasing.await),
            };
            let settled = ended.is_some() || settled_first;
            let mut failed = ended.map(settle).and_then(Result::err);
            let started = match started {
                Ok(Some(s)) => Some((s, key, at, asked)),
                Ok(None) => {
                    busy.fetch_sub(1, Ordering::SeqCst);
                    None
                }
                Err(e) => {
                    busy.fetch_sub(1, Ordering::SeqCst);
                    progressed.notify_waiters();
                    failed.get_or_insert(e.into());
                    None
                }
            };
            if let (Some(pacer), Some(at), None) = (&pacer, slot, &started) {
                // Nothing leased: the slot sent nothing, so another worker may use it.
                pacer.give_back(at);
            }
            (started, settled, failed)
        };
        let worker = || async {
            let mut tail: Option<Tail<'s>> = None;
            let mut next = None;
            let mut failed: Option<ExecError> = None;
            loop {
                let (started, key, at, asked) = match next.take() {
                    // Already leased and journaled: run it even when stopping (it is in
                    // flight), so Ctrl-C never leaves an unsent attempt behind.
                    Some(n) => n,
                    None => {
                        if *stop.borrow() || failed.is_some() {
                            if let Some(t) = tail.take() {
                                if let Err(e) = settle(t.await) {
                                    failed.get_or_insert(e);
                                }
                            }
                            return failed.map_or(Ok(()), Err);
                        }
                        let (started, settled, err) = start(tail.take()).await;
                        if let Some(e) = err {
                            failed.get_or_insert(e);
                        }
                        match started {
                            Some(n) => n,
                            None if failed.is_some() || settled => continue,
                            None => {
                                if busy.load(Ordering::SeqCst) == 0 {
                                    // Nothing planned is free and none of our workers holds
                                    // back an intent on the same payment: done.
                                    progressed.notify_waiters();
                                    return Ok(());
                                }
                                // An intent held back behind one of ours: wait for progress.
                                let notified = progressed.notified();
                                let _ = tokio::time::timeout(Duration::from_millis(200), notified)
                                    .await;
                                continue;
                            }
                        }
                    }
                };
                let begun = started.attempt.as_ref().map(|a| Begun {
                    key: key.clone(),
                    at,
                    number: a.number,
                });
                let run = Run {
                    lease: started.lease,
                    intent: started.intent,
                    held_since: Some(asked),
                    unwritten: None,
                };
                // Settles what can be settled as soon as the intent ends, without waiting
                // for the next start (which may wait for a rate slot): `Some` is a last
                // write left to commit as the next start's tail.
                let current = async {
                    match self.run_to_end(run, begun, Some(&stop)).await {
                        // Rate-limited: the next lease waits for its slot, so the outcome
                        // is committed now rather than queued with that lease.
                        Ok(End::Finish(run, finish)) if pacer.is_some() => {
                            (None, settle(self.end_run(run, finish).await).err())
                        }
                        Ok(End::Finish(run, finish)) => (Some((run, finish)), None),
                        Ok(End::Done(intent)) => (None, settle(Ok(*intent)).err()),
                        Err(e) => (None, settle(Err(e)).err()),
                    }
                };
                let ahead = async {
                    if *stop.borrow() || failed.is_some() {
                        // Take nothing new; the tail is committed on the way out.
                        return (None, false, None);
                    }
                    start(tail.take()).await
                };
                let (ended, (prefetched, _, err)) = tokio::join!(current, ahead);
                if let Some(e) = err {
                    failed.get_or_insert(e);
                }
                next = prefetched;
                let (last, err) = ended;
                if let Some(e) = err {
                    failed.get_or_insert(e);
                }
                if let Some((run, finish)) = last {
                    let last: Tail<'s> = Box::pin(self.end_run(run, finish));
                    // Not committed yet (stopping): commit it first.
                    if let Some(t) = tail.take() {
                        if let Err(e) = settle(t.await) {
                            failed.get_or_insert(e);
                        }
                    }
                    tail = Some(last);
                }
            }
        };
        let workers: Vec<_> = (0..concurrency).map(|_| worker()).collect();
        let mut first_err = None;
        for r in join_all(workers).await {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        if first_err.is_none() {
            self.publish_metrics().await?;
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Sets the `kicc_ledger_intents{state}` gauge from the store's counts (feature
    /// `metrics`; see [`crate::metrics`]) and returns them.
    pub async fn publish_metrics(&self) -> Result<Summary, ExecError> {
        let summary = self.store.summary().await?;
        crate::metrics::publish(&summary);
        Ok(summary)
    }

    // ---- the channels ----

    async fn run_generic(&self, run: &mut Run, begun: Option<&Begun>) -> Result<Built, ExecError> {
        let request = match generic_request(&run.intent.spec, self.config.remain_convention) {
            Ok(r) => r,
            Err(e) => return Ok(self.not_sent(run, begun, e.to_string())),
        };
        let mut rng = os_rng();
        let (key, at) = match begun {
            Some(b) => (b.key.clone(), b.at),
            None => {
                let at = SystemTime::now();
                (ShopTransactionId::generate(at, &mut rng), at)
            }
        };
        let exchange = match kicc_generic::GenericExchange::new(&self.merchant, request, key, at) {
            Ok(x) => x,
            Err(e) => return Ok(self.not_sent(run, begun, e.to_string())),
        };
        // A begun intent was planned when leased: its only attempt is the one just recorded.
        let sent = match begun {
            Some(_) => Vec::new(),
            None => sent_attempts(&run.intent),
        };
        let mut cancellation = if sent.is_empty() {
            Cancellation::new(exchange, self.config.policy.clone(), rng)
        } else {
            Cancellation::resume(exchange, self.config.policy.clone(), rng, sent, at)
        };
        let first = match self.check_begun(run, begun, &mut cancellation) {
            Ok(first) => first,
            Err(why) => return Ok(self.not_sent(run, begun, why)),
        };
        let outcome = self.drive(run, cancellation, first).await?;
        Ok(Built::Finish(self.decide(run, outcome, false)))
    }

    /// The request of the begun attempt, rebuilt by `c`, when it is exactly what was
    /// recorded (key, Korea date, bytes); why not otherwise (then it must not be sent).
    fn check_begun<E: Exchange>(
        &self,
        run: &Run,
        begun: Option<&Begun>,
        c: &mut Cancellation<E>,
    ) -> Result<Option<(u32, HttpRequest)>, String> {
        let Some(b) = begun else { return Ok(None) };
        let recorded = run
            .intent
            .attempts
            .iter()
            .find(|a| a.number == b.number)
            .ok_or_else(|| format!("attempt {} is not in the journal", b.number))?;
        let request = match c.poll(now()) {
            Action::Send(request) => attempt_copy(request),
            _ => return Err("the rebuilt cancel has no request to send".into()),
        };
        let same = match c.in_flight() {
            Some(InFlight::Attempt(sent)) => {
                sent.key.as_str() == recorded.key
                    && sent.date.to_string() == recorded.korea_date
                    && request.body().as_ref() == recorded.request.as_slice()
            }
            _ => false,
        };
        if same {
            Ok(Some((b.number, request)))
        } else {
            Err("the rebuilt message differs from the one recorded; it was not sent".into())
        }
    }

    /// No message can be sent for this run. A begun attempt was recorded but is not sent:
    /// its result (not delivered) goes with the outcome.
    fn not_sent(&self, run: &mut Run, begun: Option<&Begun>, why: String) -> Built {
        if let Some(b) = begun {
            let result = AttemptResult {
                http_status: None,
                res_cd: None,
                detail: format!("not sent: {why}"),
                outcome: OutcomeKind::NotDelivered,
            };
            if let Some(a) = run
                .intent
                .attempts
                .iter_mut()
                .find(|a| a.number == b.number)
            {
                a.result = Some(result.clone());
            }
            run.unwritten = Some((b.number, result));
        }
        Built::Refused(why)
    }

    async fn run_wallet<C: WalletApi>(
        &self,
        run: &mut Run,
        begun: Option<&Begun>,
        build: fn(&IntentSpec) -> Result<WalletCancel<C>, FieldError>,
    ) -> Result<Built, ExecError> {
        let wechat = run.intent.spec.channel() == Channel::Wechat;
        let first = match begun {
            // A begun intent was planned when leased: its only attempt is the one just
            // recorded, rebuilt below from the same key and time.
            Some(_) => None,
            None => run.intent.attempts.first(),
        };
        let (message, sent) = match first {
            Some(first) => {
                // Taken over: resend the stored message identically, within the age limit.
                let age = self
                    .store
                    .now()
                    .await?
                    .millis()
                    .saturating_sub(first.sent_at.millis());
                let max = i64::try_from(self.config.wallet_resend_max_age.as_millis())
                    .unwrap_or(i64::MAX);
                if age > max
                    && run
                        .intent
                        .attempts
                        .iter()
                        .any(Attempt::may_have_been_processed)
                {
                    return Ok(Built::Finish(Finish::Unknown {
                        detail: format!(
                            "identical resends stopped {} s after the first send; ask KICC about key {}",
                            self.config.wallet_resend_max_age.as_secs(),
                            first.key
                        ),
                    }));
                }
                let message = match WalletRevise::<C>::from_json(&first.request) {
                    Ok(m) => m,
                    Err(e) => {
                        return Ok(Built::Finish(Finish::Unknown {
                            detail: format!("the stored message cannot be read: {e}"),
                        }))
                    }
                };
                let sent = sent_attempts(&run.intent);
                (message, sent)
            }
            None => match build(&run.intent.spec) {
                Ok(cancel) => {
                    let (key, at) = match begun {
                        Some(b) => (b.key.clone(), b.at),
                        None => {
                            let at = SystemTime::now();
                            (ShopTransactionId::generate(at, &mut os_rng()), at)
                        }
                    };
                    (cancel.message(&self.merchant, key, at), Vec::new())
                }
                Err(e) => return Ok(self.not_sent(run, begun, e.to_string())),
            },
        };
        let exchange = match message.exchange(&self.merchant) {
            Ok(x) => x,
            Err(e) => return Ok(self.not_sent(run, begun, e.to_string())),
        };
        let mut cancellation = if sent.is_empty() {
            Cancellation::new(exchange, self.config.policy.clone(), os_rng())
        } else {
            Cancellation::resume(
                exchange,
                self.config.policy.clone(),
                os_rng(),
                sent,
                SystemTime::now(),
            )
        };
        let first = match self.check_begun(run, begun, &mut cancellation) {
            Ok(first) => first,
            Err(why) => return Ok(self.not_sent(run, begun, why)),
        };
        let outcome = self.drive(run, cancellation, first).await?;
        Ok(Built::Finish(self.decide(run, outcome, wechat)))
    }

    /// Drives `c` to its outcome, journaling every attempt before its first byte. `first`,
    /// when given, is the request `c` already asked to send, recorded as attempt `number`
    /// with the lease ([`Store::start_next`]).
    async fn drive<E: Exchange>(
        &self,
        run: &mut Run,
        mut c: Cancellation<E>,
        mut first: Option<(u32, HttpRequest)>,
    ) -> Result<Result<E::Output, CoreError>, ExecError> {
        let channel = run.intent.spec.channel();
        loop {
            let (request, number) = match first.take() {
                Some((number, request)) => {
                    // Journaled with the lease, maybe a request's time ago (a batch worker
                    // leases its next intent while its current request is on the wire): the
                    // lease must still cover this attempt, as before any attempt.
                    self.renew_for_attempt(run).await?;
                    (request, Some(number))
                }
                None => {
                    let step = match c.poll(now()) {
                        Action::Done(outcome) => return Ok(outcome),
                        Action::WaitUntil(until) => Err(until),
                        // Every delivery is reported before the next poll, so nothing is in
                        // flight and no poll can change that: end as unknown, not spinning.
                        Action::AwaitDelivery => {
                            return Ok(Err(CoreError::Ambiguous {
                                reason: "internal error: the retry machine awaits a delivery, \
                                         but none is in flight"
                                    .into(),
                                shop_transaction_id: c.exchange().shop_transaction_id().to_string(),
                                attempts: c.attempts(),
                                last_res_cd: None,
                                sent: c.sent().cloned().collect(),
                                lookup_after: None,
                            }))
                        }
                        Action::Send(request) => Ok(attempt_copy(request)),
                    };
                    // Not the end: the last result must be durable before the next step.
                    self.write_result(run).await?;
                    let request = match step {
                        Ok(request) => request,
                        Err(until) => {
                            tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
                            continue;
                        }
                    };
                    let plan = match c.in_flight() {
                        Some(InFlight::Attempt(sent)) => Some(AttemptPlan {
                            key: sent.key.to_string(),
                            korea_date: sent.date.to_string(),
                            request: request.body().to_vec(),
                        }),
                        _ => None,
                    };
                    let number = match plan {
                        Some(plan) => {
                            self.renew_for_attempt(run).await?;
                            let attempt = self.store.record_attempt(&run.lease, plan).await?;
                            let number = attempt.number;
                            run.intent.attempts.push(attempt);
                            Some(number)
                        }
                        None => None,
                    };
                    (request, number)
                }
            };
            let result = match tokio::time::timeout(
                self.config.attempt_timeout,
                self.transport.send(request),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(TransportError::Timeout(self.config.attempt_timeout)),
            };
            if let Some(number) = number {
                let recorded = attempt_result(channel, &result);
                if let Some(a) = run.intent.attempts.iter_mut().find(|a| a.number == number) {
                    a.result = Some(recorded.clone());
                }
                run.unwritten = Some((number, recorded));
            }
            let reason = match &result {
                Err(e) => e.to_string(),
                Ok(_) => String::new(),
            };
            let delivery = match &result {
                Ok(r) => Delivery::Response {
                    status: r.status().as_u16(),
                    body: r.body(),
                },
                Err(e) if never_delivered(e) => Delivery::NotDelivered { reason: &reason },
                Err(_) => Delivery::Unknown { reason: &reason },
            };
            c.on_delivery(delivery, now());
        }
    }

    /// The builder of a planned intent's first attempt for [`Store::start_next`]: the
    /// message keyed `key`, dated the Korea date of `at` (taken when the lease is asked
    /// for), exactly as [`Ledger::drive`] would record it; `None` when no message can be
    /// built (the run then finds out why and records it).
    fn first_attempt(
        &self,
        key: ShopTransactionId,
        at: SystemTime,
    ) -> impl FnOnce(&Intent) -> Option<AttemptPlan> + Send + 'static {
        let merchant = self.merchant.clone();
        let policy = self.config.policy.clone();
        let convention = self.config.remain_convention;
        move |intent: &Intent| {
            let spec = &intent.spec;
            if !intent.attempts.is_empty() {
                return None;
            }
            match spec.channel() {
                Channel::Generic => {
                    let request = generic_request(spec, convention).ok()?;
                    let x = kicc_generic::GenericExchange::new(&merchant, request, key, at).ok()?;
                    first_plan(Cancellation::new(x, policy, os_rng()))
                }
                Channel::Alipay => {
                    let m = wallet_request::<kicc_alipay::Alipay>(spec)
                        .ok()?
                        .message(&merchant, key, at);
                    first_plan(Cancellation::new(
                        m.exchange(&merchant).ok()?,
                        policy,
                        os_rng(),
                    ))
                }
                Channel::Wechat => {
                    let m = wechat_request(spec).ok()?.message(&merchant, key, at);
                    first_plan(Cancellation::new(
                        m.exchange(&merchant).ok()?,
                        policy,
                        os_rng(),
                    ))
                }
            }
        }
    }

    /// Makes sure the lease covers one more request (its timeout plus the margin): renews
    /// it unless it was taken or renewed so recently that a renewal would change nothing
    /// (one commit saved per attempt; a second of slack for the clocks).
    async fn renew_for_attempt(&self, run: &mut Run) -> Result<(), ExecError> {
        let needed = self
            .config
            .min_remaining()
            .saturating_add(Duration::from_secs(1));
        let covered = run
            .held_since
            .is_some_and(|t| t.elapsed().saturating_add(needed) <= run.lease.ttl);
        if !covered {
            let asked = Instant::now();
            run.lease = self
                .store
                .renew(&run.lease, self.config.min_remaining())
                .await?;
            run.held_since = Some(asked);
        }
        Ok(())
    }

    /// The ledger outcome of a finished cancellation.
    fn decide<O: Describes>(
        &self,
        run: &Run,
        outcome: Result<O, CoreError>,
        wechat: bool,
    ) -> Finish {
        match outcome {
            Ok(out) => {
                let cancel_pg_cno = out.described_cancel_pg_cno().to_owned();
                if cancel_pg_cno.is_empty() {
                    Finish::Unknown {
                        detail: "answered 0000 without a cancelPgCno; query the payment".into(),
                    }
                } else if wechat {
                    Finish::Pending { cancel_pg_cno }
                } else {
                    Finish::Succeeded { cancel_pg_cno }
                }
            }
            Err(CoreError::Declined(g)) => Finish::Declined {
                res_cd: g.res_cd.clone(),
                detail: g.res_msg.clone(),
            },
            Err(CoreError::Pending { cancel_pg_cno, .. }) if wechat => {
                Finish::Pending { cancel_pg_cno }
            }
            Err(CoreError::Transport { .. } | CoreError::AlreadyCancelled { .. }) => {
                Finish::NotProcessed(proof(&run.intent))
            }
            Err(e) => Finish::Unknown {
                detail: e.to_string(),
            },
        }
    }

    /// The outcome when no message can be built for the intent.
    fn unsendable(&self, run: &Run, why: String) -> Finish {
        if run.intent.maybe_processed_keys().is_empty() {
            Finish::NotProcessed(NotProcessedProof::NothingDelivered)
        } else {
            Finish::Unknown {
                detail: format!("cannot resend: {why}"),
            }
        }
    }

    /// Writes the latest attempt's result if it is not yet durable.
    async fn write_result(&self, run: &mut Run) -> Result<(), ExecError> {
        if let Some((number, result)) = run.unwritten.take() {
            self.store.record_result(&run.lease, number, result).await?;
        }
        Ok(())
    }

    /// Ends the run (with the latest result, in the same transaction, if unwritten).
    async fn finish(&self, run: &Run, finish: Finish) -> Result<Intent, ExecError> {
        let end = |outcome: Finish| async {
            match run.unwritten.clone() {
                Some((number, result)) => {
                    self.store
                        .finish_with_result(&run.lease, number, result, outcome)
                        .await
                }
                None => self.store.finish(&run.lease, outcome).await,
            }
        };
        match end(finish.clone()).await {
            Ok(i) => Ok(i),
            // The ledger's own rules refused this outcome (e.g. a decline after an attempt
            // that may have been processed): never guess, leave it unknown.
            Err(LedgerError::Transition(TransitionError::Rule { rule, .. })) => {
                Ok(end(Finish::Unknown {
                    detail: format!("{finish:?} refused by the ledger: {rule}"),
                })
                .await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Waits for the final result of an accepted WeChat Pay cancel: stored notices confirmed
    /// by `find`, or `find` alone, within [`ExecConfig::wait`].
    async fn await_wechat(
        &self,
        mut run: Run,
        cancel_pg_cno: String,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Result<Intent, ExecError> {
        let pg_cno = run.intent.spec.pg_cno().to_owned();
        let key = run.intent.last_key().unwrap_or_default().to_owned();
        let policy = WaitPolicy::default()
            .with_first_query_after(Duration::ZERO)
            .with_query_interval(self.config.query_interval)
            .with_max_wait(self.config.wait)
            .with_confirm_notice(true);
        let query = match StatusQuery::from_text(&pg_cno, &cancel_pg_cno) {
            Ok(q) => q,
            Err(e) => {
                let detail = format!("cannot query the status: {e}");
                return self.finish(&run, Finish::Unknown { detail }).await;
            }
        };
        let mut waiter = ResultWaiter::new(&pg_cno, &cancel_pg_cno, &key, policy, Instant::now());
        let mut seen_notices = 0usize;
        let done = loop {
            if stop.is_some_and(|s| *s.borrow()) {
                break None;
            }
            let notices = self.store.notices(&pg_cno, &cancel_pg_cno).await?;
            for n in notices.iter().skip(seen_notices) {
                if let Ok(notice) = WechatCancelNotice::parse(&n.body) {
                    waiter.on_notice(&notice, Instant::now());
                }
            }
            seen_notices = notices.len();
            match waiter.poll(Instant::now()) {
                WaitAction::Done(result) => break Some(result),
                WaitAction::QueryStatus => {
                    self.renew_for_attempt(&mut run).await?;
                    let status = self.find(&query, &pg_cno).await;
                    waiter.on_status(status, Instant::now());
                }
                // Every query's outcome is reported before the next poll: a broken
                // invariant. End as unknown instead of looping without waiting.
                WaitAction::AwaitStatus => {
                    break Some(Err(CoreError::StatusUnknown {
                        reason: "internal error: the result waiter awaits a status query, \
                                 but none is in flight"
                            .into(),
                        shop_transaction_id: key.clone(),
                    }))
                }
                WaitAction::WaitForNotice(until) => {
                    let until = until.min(Instant::now() + Duration::from_millis(500));
                    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
                }
            }
        };
        let finish = match done {
            None => Finish::Pending { cancel_pg_cno },
            Some(Ok(result)) => Finish::Succeeded {
                cancel_pg_cno: result.cancel_pg_cno,
            },
            Some(Err(CoreError::Declined(g))) => Finish::Declined {
                res_cd: g.res_cd.clone(),
                detail: format!("the accepted cancel failed: {}", g.res_msg),
            },
            Some(Err(CoreError::Pending { .. })) => Finish::Pending { cancel_pg_cno },
            Some(Err(e)) => Finish::Unknown {
                detail: e.to_string(),
            },
        };
        self.finish(&run, finish).await
    }

    async fn find(
        &self,
        query: &StatusQuery,
        pg_cno: &str,
    ) -> Result<kicc_wechat::FindResponse, CoreError> {
        let key = ShopTransactionId::generate(SystemTime::now(), &mut os_rng());
        let exchange = query
            .message(&self.merchant, key)
            .exchange(&self.merchant)?;
        let policy = self.config.policy.to_builder().max_attempts(2).build()?;
        let labels = kicc_transport::driver::CancelLabels::new("wechat-find", pg_cno);
        let transport = TimeoutTransport {
            inner: &self.transport,
            timeout: self.config.attempt_timeout,
        };
        kicc_transport::driver::execute(&transport, exchange, policy, labels).await
    }
}

/// What a new cancellation records as its first attempt (key, Korea date, exact bytes).
fn first_plan<E: Exchange>(mut c: Cancellation<E>) -> Option<AttemptPlan> {
    let request = match c.poll(now()) {
        Action::Send(request) => request.body().to_vec(),
        _ => return None,
    };
    match c.in_flight() {
        Some(InFlight::Attempt(sent)) => Some(AttemptPlan {
            key: sent.key.to_string(),
            korea_date: sent.date.to_string(),
            request,
        }),
        _ => None,
    }
}

/// Whether `e` says another worker took the intent over (its writes are fenced).
fn taken_over(e: &ExecError) -> bool {
    matches!(
        e,
        ExecError::Ledger(LedgerError::Transition(
            TransitionError::Fenced { .. } | TransitionError::LeaseExpired { .. }
        ))
    )
}

/// A transport with a per-request bound (for status queries, which change nothing).
struct TimeoutTransport<'a, T> {
    inner: &'a T,
    timeout: Duration,
}

impl<T: Transport> Transport for TimeoutTransport<'_, T> {
    async fn send(
        &self,
        request: kicc_transport::HttpRequest,
    ) -> Result<HttpResponse, TransportError> {
        match tokio::time::timeout(self.timeout, self.inner.send(request)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout(self.timeout)),
        }
    }
}

/// The `--rate` schedule of [`Ledger::run_batch`] (sans-IO: the caller passes `now`): one
/// slot per lease, taken only once it is due (no credit builds up while idle), and handed
/// back when it leased nothing, so calls that find no free intent use up no rate.
#[derive(Debug)]
struct Pace {
    interval: Duration,
    /// When the next slot is due.
    next: tokio::time::Instant,
}

impl Pace {
    fn new(interval: Duration, now: tokio::time::Instant) -> Pace {
        Pace {
            interval,
            next: now,
        }
    }

    /// A slot at `now` if one is due (`Ok`), else when the next one is (`Err`).
    fn take(
        &mut self,
        now: tokio::time::Instant,
    ) -> Result<tokio::time::Instant, tokio::time::Instant> {
        if now < self.next {
            return Err(self.next);
        }
        self.next = now + self.interval;
        Ok(now)
    }

    /// Hands back the slot taken at `slot`, which sent nothing: the next slot comes one
    /// interval sooner, never before `slot`.
    fn give_back(&mut self, slot: tokio::time::Instant) {
        self.next = self
            .next
            .checked_sub(self.interval)
            .map_or(slot, |n| n.max(slot));
    }
}

/// [`Pace`] shared by the workers of one batch, with the waiting.
struct Pacer {
    pace: std::sync::Mutex<Pace>,
    /// Wakes the waiting workers when a slot is handed back.
    returned: tokio::sync::Notify,
}

impl Pacer {
    fn new(interval: Duration) -> Pacer {
        Pacer {
            pace: std::sync::Mutex::new(Pace::new(interval, tokio::time::Instant::now())),
            returned: tokio::sync::Notify::new(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Pace) -> R) -> R {
        let mut pace = self
            .pace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut pace)
    }

    /// Waits for a slot; `None` (no slot taken) once `stop` is `true`, also when it turns
    /// during the wait.
    async fn take(&self, stop: &watch::Receiver<bool>) -> Option<tokio::time::Instant> {
        loop {
            // Registered before looking, so a slot handed back meanwhile is not missed.
            let returned = self.returned.notified();
            if *stop.borrow() {
                return None;
            }
            let until = match self.with(|p| p.take(tokio::time::Instant::now())) {
                Ok(slot) => return Some(slot),
                Err(until) => until,
            };
            let mut stop = stop.clone();
            let stopped = async move {
                // A dropped sender can never signal a stop: wait for the slot then.
                if stop.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = returned => {}
                () = stopped => {}
            }
        }
    }

    /// Hands back a slot that leased nothing.
    fn give_back(&self, slot: tokio::time::Instant) {
        self.with(|p| p.give_back(slot));
        self.returned.notify_waiters();
    }
}

/// How a run ends: with one last write for the caller to commit, or already ended.
enum End {
    /// Commit this outcome ([`Ledger::end_run`]); nothing else remains to do.
    Finish(Box<Run>, Finish),
    /// The run ended and its last write is committed.
    Done(Box<Intent>),
}

/// The first attempt of a run, recorded with its lease ([`Store::start_next`]) and not yet
/// sent: built from `key` at `at`, and rebuilt identically (checked byte for byte) to send.
struct Begun {
    key: ShopTransactionId,
    at: SystemTime,
    number: u32,
}

enum Built {
    /// No message can be built for this intent (a rule of the API the ledger does not
    /// check): nothing was sent for it in this run.
    Refused(String),
    Finish(Finish),
}

/// The proof that nothing was processed, after the machine said so: either no attempt
/// may have been processed, or every such key was looked up and found absent (the only way
/// the machine reaches "not processed" after a maybe-processed attempt).
fn proof(intent: &Intent) -> NotProcessedProof {
    let keys: Vec<String> = intent
        .maybe_processed_keys()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        NotProcessedProof::NothingDelivered
    } else {
        NotProcessedProof::KeysAbsent { keys }
    }
}

/// Every journaled attempt that may have been processed, as the machine resumes them.
fn sent_attempts(intent: &Intent) -> Vec<SentAttempt> {
    let mut out: Vec<SentAttempt> = Vec::new();
    for a in intent
        .attempts
        .iter()
        .filter(|a| a.may_have_been_processed())
    {
        let (Ok(key), Ok(date)) = (
            ShopTransactionId::new(a.key.as_str()),
            KoreaDate::parse("cancelReqDate", &a.korea_date),
        ) else {
            continue;
        };
        if let Some(prev) = out.iter_mut().find(|s| s.key == key) {
            prev.sent_at = Some(system_time(a.sent_at));
            continue;
        }
        let mut sent = SentAttempt::new(key, date);
        sent.sent_at = Some(system_time(a.sent_at));
        out.push(sent);
    }
    out
}

fn system_time(t: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(t.millis()).unwrap_or(0))
}

/// What the sender can tell of one attempt.
fn attempt_result(
    channel: Channel,
    result: &Result<HttpResponse, TransportError>,
) -> AttemptResult {
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let env = Envelope::read(response.body());
            let res_cd = env.as_ref().map(|e| e.res_cd.clone());
            let outcome = if status == 200 {
                match res_cd
                    .as_deref()
                    .map(|c| classify(core_channel(channel), c))
                {
                    Some(ResponseClass::Success) if channel == Channel::Wechat => {
                        OutcomeKind::Pending
                    }
                    Some(ResponseClass::Success) => OutcomeKind::Succeeded,
                    Some(ResponseClass::Declined) => OutcomeKind::Declined,
                    _ => OutcomeKind::Ambiguous,
                }
            } else if status >= 500 || status == 408 || status == 429 {
                OutcomeKind::Ambiguous
            } else {
                OutcomeKind::Declined
            };
            let detail = match &env {
                Some(e) => format!("HTTP {status}: {}", e.res_msg),
                None => format!("HTTP {status}"),
            };
            AttemptResult {
                http_status: Some(status),
                res_cd: res_cd.filter(|c| !c.is_empty()),
                detail,
                outcome,
            }
        }
        Err(e) => AttemptResult {
            http_status: None,
            res_cd: None,
            detail: e.to_string(),
            outcome: if never_delivered(e) {
                OutcomeKind::NotDelivered
            } else {
                OutcomeKind::Ambiguous
            },
        },
    }
}

fn core_channel(channel: Channel) -> kicc_core::Channel {
    match channel {
        Channel::Generic => kicc_core::Channel::Generic,
        Channel::Alipay => kicc_core::Channel::Alipay,
        Channel::Wechat => kicc_core::Channel::WeChat,
    }
}

/// The generic request of `spec`.
fn generic_request(
    spec: &IntentSpec,
    convention: RemainAmountConvention,
) -> Result<kicc_generic::CancelRequest, FieldError> {
    let code = ReviseTypeCode::parse(spec.revise_type_code())?;
    let amount = spec
        .amount()
        .map(|a| Amount::new("amount", a))
        .transpose()?;
    let mut r = kicc_generic::CancelRequest::with_code(PgCno::new(spec.pg_cno())?, code, amount)?;
    if let Some(balance) = spec.remain_amount() {
        r = r
            .remain_amount(Amount::new("remain_amount", balance)?)?
            .remain_amount_convention(convention);
    }
    if let Some(reason) = spec.reason() {
        r = r.reason(ReviseMessage::new(reason)?);
    }
    Ok(r)
}

/// The wallet request of `spec` (Alipay / WeChat Pay).
fn wallet_request<C: WalletApi>(spec: &IntentSpec) -> Result<WalletCancel<C>, FieldError> {
    let code = ReviseTypeCode::parse(spec.revise_type_code())?;
    let amount = match (spec.amount(), spec.currency()) {
        (Some(a), Some(c)) => Some(Money::from_minor("amount", core_currency(c), a)?),
        (Some(a), None) => Some(Money::from_minor("amount", kicc_core::Currency::Krw, a)?),
        (None, _) => None,
    };
    let mut r = WalletCancel::<C>::with_code(PgCno::new(spec.pg_cno())?, code, amount)?;
    if let Some(reason) = spec.reason() {
        r = r.memo(Memo::new(reason)?);
    }
    Ok(r)
}

/// The WeChat Pay request of `spec`, with its `notifyUrl`.
fn wechat_request(spec: &IntentSpec) -> Result<WalletCancel<kicc_wechat::WeChat>, FieldError> {
    let mut r = wallet_request::<kicc_wechat::WeChat>(spec)?;
    if let Some(url) = spec.notify_url() {
        r = r.notify_url(NotifyUrl::new(url)?);
    }
    Ok(r)
}

/// Runs futures concurrently on this task, returning their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_some() {
                continue;
            }
            match f.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => out[i] = Some(v),
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// The summary counts of `intents`.
pub fn summarize<'a>(intents: impl IntoIterator<Item = &'a Intent>) -> crate::store::Summary {
    let mut s = crate::store::Summary::default();
    for i in intents {
        s.add(i.state.kind());
    }
    s
}

#[cfg(test)]
mod pace_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tokio::time::Instant as TokioInstant;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn slots_are_an_interval_apart_taken_only_when_due_with_no_credit_for_idle_time() {
        let t0 = TokioInstant::now();
        let mut pace = Pace::new(250 * MS, t0);
        assert_eq!(pace.take(t0), Ok(t0));
        assert_eq!(pace.take(t0 + 100 * MS), Err(t0 + 250 * MS));
        assert_eq!(pace.take(t0 + 250 * MS), Ok(t0 + 250 * MS));
        // Idle for 10 s: one slot now, the next a full interval later (no burst).
        let later = t0 + 10_000 * MS;
        assert_eq!(pace.take(later), Ok(later));
        assert_eq!(pace.take(later), Err(later + 250 * MS));
    }

    /// `--rate 4 --concurrency 8` on 8 rows: every lease is preceded by a call of an idle
    /// worker that finds nothing (all it could take is held back). Those calls hand their
    /// slot back, so the 8 rows are leased at 0, 0.25, ..., 1.75 s, as without them.
    #[test]
    fn calls_that_lease_nothing_use_up_no_rate() {
        let t0 = TokioInstant::now();
        let mut pace = Pace::new(250 * MS, t0);
        let mut now = t0;
        let (mut taken, mut handed_back) = (0, 0);
        let mut leased_at = Vec::new();
        let mut idle_turn = true;
        while leased_at.len() < 8 {
            match pace.take(now) {
                Ok(slot) => {
                    taken += 1;
                    if idle_turn {
                        pace.give_back(slot);
                        handed_back += 1;
                    } else {
                        leased_at.push(slot - t0);
                    }
                    idle_turn = !idle_turn;
                }
                Err(until) => now = until,
            }
        }
        let expected: Vec<Duration> = (0..8).map(|n| n * 250 * MS).collect();
        assert_eq!(leased_at, expected);
        assert_eq!(taken - handed_back, leased_at.len());
    }

    #[test]
    fn a_slot_handed_back_late_is_due_at_once_never_before_itself() {
        let t0 = TokioInstant::now();
        let mut pace = Pace::new(250 * MS, t0);
        let a = pace.take(t0).unwrap();
        // Another worker took the next slot before the first handed its back.
        let b = pace.take(t0 + 300 * MS).unwrap();
        pace.give_back(a);
        assert_eq!(pace.take(b), Ok(b));
        assert_eq!(pace.take(b), Err(b + 250 * MS));
        // Handed back with nobody after it: due again from the slot itself.
        let mut pace = Pace::new(250 * MS, t0);
        let a = pace.take(t0).unwrap();
        pace.give_back(a);
        assert_eq!(pace.take(t0), Ok(t0));
    }

    /// A worker waiting for its slot is woken by a slot handed back (not by the far
    /// schedule), and by a stop, which takes no slot.
    #[tokio::test]
    async fn a_waiting_worker_wakes_for_a_handed_back_slot_or_a_stop() {
        let day = Duration::from_secs(86_400);
        let pacer = Pacer::new(day);
        let (tx, rx) = watch::channel(false);
        let first = pacer.take(&rx).await.unwrap();
        let (second, ()) = tokio::join!(pacer.take(&rx), async {
            tokio::task::yield_now().await;
            pacer.give_back(first);
        });
        let second = second.unwrap();
        assert!(
            second < first + day,
            "woken by the schedule, not the hand-back"
        );
        // Now the next slot is a day away: a stop ends the wait without a slot.
        let (third, ()) = tokio::join!(pacer.take(&rx), async {
            tokio::task::yield_now().await;
            tx.send(true).unwrap();
        });
        assert_eq!(third, None);
        assert_eq!(pacer.with(|p| p.next), second + day);
        // Once stopped, no slot is taken even when one is due.
        pacer.give_back(second);
        assert_eq!(pacer.take(&rx).await, None);
        assert_eq!(pacer.with(|p| p.next), second);
    }
}
