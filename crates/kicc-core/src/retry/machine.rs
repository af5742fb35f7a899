//! The per-cancellation state machine: it sequences attempts and look-ups; the rules it
//! applies are the retry table (`super::decide`) and [`tie`](super::tie).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::codes::{classify, ResponseClass, SUCCESS};
use crate::date::KoreaDate;
use crate::error::{Error, GatewayError};
use crate::field::FieldError;
use crate::random::Rng;
use crate::revise::RetryStyle;
use crate::text::ShopTransactionId;
use crate::wire::Envelope;

use super::{
    decide, tie, Decision, Delivery, Describes, Exchange, Interpreted, Now, Observed, Resend,
    ResendKind, RetryPolicy, SentAttempt, Tie,
};

/// The next thing to do for a cancellation.
///
/// Deliberately exhaustive: a driver must do every action, so a new one is a breaking change
/// that the compiler points out, not a wildcard arm that silently does nothing.
#[derive(Debug)]
pub enum Action<'a, T> {
    /// Send this request (an attempt or a look-up), then report how it went with
    /// [`Cancellation::on_delivery`].
    Send(&'a http::Request<Bytes>),
    /// A request is in flight: report its result with [`Cancellation::on_delivery`].
    AwaitDelivery,
    /// Nothing to do before this instant; poll again then.
    WaitUntil(Instant),
    /// Finished. Returned once; later polls say the outcome was already taken.
    Done(Result<T, Error>),
}

/// The request in flight (see [`Cancellation::in_flight`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InFlight<'a> {
    /// A cancel attempt: it may cancel.
    Attempt(&'a SentAttempt),
    /// A look-up of an earlier key under `date`: it changes nothing.
    LookUp {
        /// The key looked up.
        key: &'a ShopTransactionId,
        /// The Korea date it is looked up under.
        date: KoreaDate,
    },
}

/// What is known of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    InFlight,
    /// Certainly not processed: never delivered, refused, declined, or looked up and absent.
    NotProcessed,
    /// May have been processed.
    Maybe,
}

#[derive(Debug, Clone)]
struct Record {
    sent: SentAttempt,
    status: Status,
}

enum Flight {
    Attempt,
    LookUp { record: usize, date: KoreaDate },
}

/// One step of [`Cancellation::poll`], before the borrow of what to send is taken.
enum Step<T> {
    Continue,
    Await,
    Wait(Instant),
    Done(Result<T, Error>),
    SendAttempt,
    SendLookUp,
}

enum State<T> {
    Ready(Option<ResendKind>),
    InFlight(Flight),
    Backoff {
        until: Instant,
        then: ResendKind,
    },
    /// Looking up every maybe-processed key (the queue is `Cancellation::lookups`).
    LookingUp,
    Finished(Option<Result<T, Error>>),
}

/// Steps [`Cancellation::poll`] may take before it must act (see there).
const MAX_STEPS_PER_POLL: u32 = 64;

/// One logical cancellation and its retries. See the module docs.
pub struct Cancellation<E: Exchange> {
    exchange: E,
    policy: RetryPolicy,
    rng: Rng,
    state: State<E::Output>,
    attempts: u32,
    started: Option<Instant>,
    resumed_at: Option<SystemTime>,
    records: Vec<Record>,
    /// Boxed: only a generic cancel whose outcome is unknown looks up, and inline it would
    /// add 256 bytes to every cancellation (and every future that holds one).
    lookup_request: Option<Box<http::Request<Bytes>>>,
    /// The look-ups still to make; built at the first poll of a look-up round.
    lookups: Option<VecDeque<(usize, KoreaDate)>>,
    last_reason: String,
    last_res_cd: Option<String>,
    facts: Vec<String>,
    earlier_cancel: Option<String>,
}

impl<E: Exchange> Cancellation<E> {
    /// Starts a cancellation of `exchange`'s request. `rng` gives the backoff jitter and the
    /// random part of any new key (seed it from the OS in production).
    pub fn new(exchange: E, policy: RetryPolicy, rng: Rng) -> Self {
        Cancellation {
            exchange,
            policy,
            rng,
            state: State::Ready(None),
            attempts: 0,
            started: None,
            resumed_at: None,
            records: Vec::new(),
            lookup_request: None,
            lookups: None,
            last_reason: String::new(),
            last_res_cd: None,
            facts: Vec::new(),
            earlier_cancel: None,
        }
    }

    /// Resumes a cancellation whose earlier attempts `sent` may have been processed (from a
    /// journal, or from the keys an [`Error::Ambiguous`] listed), at wall time `now`.
    ///
    /// - Generic ([`RetryStyle::LookUp`]): `exchange` holds a NEW, unused key; it is sent only
    ///   if every key in `sent` is looked up and found absent.
    /// - Alipay / WeChat Pay: `exchange` holds the stored message (same key and date) and is
    ///   resent identically; any decline is then ambiguous, since the first may have cancelled.
    pub fn resume(
        exchange: E,
        policy: RetryPolicy,
        rng: Rng,
        sent: Vec<SentAttempt>,
        now: SystemTime,
    ) -> Self {
        let style = exchange.retry_style();
        let mut c = Cancellation::new(exchange, policy, rng);
        c.resumed_at = Some(now);
        c.records = sent
            .into_iter()
            .map(|sent| Record {
                sent,
                status: Status::Maybe,
            })
            .collect();
        if style == RetryStyle::LookUp && !c.records.is_empty() {
            c.state = State::LookingUp;
        }
        c
    }

    /// The channel's exchange (its current request, key, ...).
    pub fn exchange(&self) -> &E {
        &self.exchange
    }

    /// Attempts started so far in this run (look-ups not counted).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether any attempt so far may have been processed by KICC (and was not since proven
    /// otherwise).
    pub fn may_have_been_processed(&self) -> bool {
        self.records.iter().any(|r| r.status == Status::Maybe)
    }

    /// What the request returned by the last [`Action::Send`] is, while it is in flight: an
    /// attempt (record its key, date and bytes durably BEFORE sending it, if you journal) or
    /// a look-up (which changes nothing).
    pub fn in_flight(&self) -> Option<InFlight<'_>> {
        match &self.state {
            State::InFlight(Flight::Attempt) => {
                self.records.last().map(|r| InFlight::Attempt(&r.sent))
            }
            State::InFlight(Flight::LookUp { record, date }) => {
                self.records.get(*record).map(|r| InFlight::LookUp {
                    key: &r.sent.key,
                    date: *date,
                })
            }
            _ => None,
        }
    }

    /// Every attempt recorded so far (resumed ones included), in order.
    pub fn sent(&self) -> impl Iterator<Item = &SentAttempt> {
        self.records.iter().map(|r| &r.sent)
    }

    /// What to do next, at `now`.
    pub fn poll(&mut self, now: Now) -> Action<'_, E::Output> {
        // A step that continues changes the state towards one that acts (a backoff ends,
        // a resend is prepared), so a handful suffice; more means a broken invariant, which
        // ends the cancellation as unknown rather than spinning.
        let mut steps: u32 = 0;
        loop {
            steps = steps.saturating_add(1);
            if steps > MAX_STEPS_PER_POLL {
                let err = self.ambiguous(format!(
                    "internal error: the retry machine made {MAX_STEPS_PER_POLL} steps in one poll without acting"
                ));
                self.state = State::Finished(None);
                return Action::Done(Err(err));
            }
            match self.step(now) {
                Step::Continue => continue,
                Step::Await => return Action::AwaitDelivery,
                Step::Wait(until) => return Action::WaitUntil(until),
                Step::Done(outcome) => return Action::Done(outcome),
                Step::SendAttempt => return Action::Send(self.exchange.request()),
                Step::SendLookUp => {
                    return match &self.lookup_request {
                        Some(request) => Action::Send(request),
                        // Unreachable by construction: `step` stores the request first.
                        None => Action::Done(Err(
                            self.ambiguous("a look-up was lost before it was sent".into())
                        )),
                    };
                }
            }
        }
    }

    fn step(&mut self, now: Now) -> Step<E::Output> {
        match &mut self.state {
            State::Finished(outcome) => Step::Done(outcome.take().unwrap_or_else(|| {
                Err(self.ambiguous("the outcome of this cancellation was already returned".into()))
            })),
            State::InFlight(_) => Step::Await,
            State::Backoff { until, then } => {
                if now.instant < *until {
                    return Step::Wait(*until);
                }
                let then = *then;
                self.state = State::Ready(Some(then));
                Step::Continue
            }
            State::Ready(resend) => {
                let resend = resend.take();
                if let Err(e) = self.apply_resend(resend, now) {
                    let outcome = if self.may_have_been_processed() {
                        Err(self.ambiguous(format!("could not rebuild the request: {e}")))
                    } else {
                        Err(Error::Invalid(e))
                    };
                    self.state = State::Finished(Some(outcome));
                    return Step::Continue;
                }
                self.started.get_or_insert(now.instant);
                self.attempts += 1;
                let date = self
                    .exchange
                    .request_date()
                    .unwrap_or_else(|| KoreaDate::of(now.wall));
                self.records.push(Record {
                    sent: SentAttempt {
                        key: self.exchange.shop_transaction_id().clone(),
                        date,
                        sent_at: Some(now.wall),
                        refund_query: self.exchange.is_refund_query(),
                    },
                    status: Status::InFlight,
                });
                self.state = State::InFlight(Flight::Attempt);
                Step::SendAttempt
            }
            State::LookingUp => self.next_lookup(now),
        }
    }

    fn next_lookup(&mut self, now: Now) -> Step<E::Output> {
        if self.lookups.is_none() {
            self.lookups = Some(lookup_queue(
                &self.records,
                &self.policy,
                self.resumed_at,
                now.wall,
            ));
        }
        // Every look-up waits until every key it concerns can no longer be in flight: the
        // latest send plus the processing bound.
        let ready_at = self
            .lookups
            .iter()
            .flatten()
            .map(|(i, _)| self.ready_at(*i, now.wall))
            .max();
        if let Some(wait) = ready_at.and_then(|t| t.duration_since(now.wall).ok()) {
            if !wait.is_zero() {
                return Step::Wait(now.instant.checked_add(wait).unwrap_or(now.instant));
            }
        }
        let Some((record, date)) = self.lookups.as_mut().and_then(VecDeque::pop_front) else {
            self.lookups = None;
            self.after_lookups(now);
            return Step::Continue;
        };
        let today = KoreaDate::of(now.wall);
        let age = date.days_until(today);
        let key = self.records[record].sent.key.clone();
        if !(0..=1).contains(&age) {
            self.finish_ambiguous(format!(
                "{key}@{date} cannot be looked up: retrieveTransaction answers only for today and yesterday in Korea (today is {today})"
            ));
            return Step::Continue;
        }
        match self.exchange.lookup(&key, date) {
            Some(Ok(request)) => {
                self.lookup_request = Some(Box::new(request));
                self.state = State::InFlight(Flight::LookUp { record, date });
                Step::SendLookUp
            }
            Some(Err(e)) => {
                self.finish_ambiguous(format!(
                    "the look-up of {key}@{date} could not be built: {e}"
                ));
                Step::Continue
            }
            None => {
                self.finish_ambiguous(format!("this channel has no look-up for {key}@{date}"));
                Step::Continue
            }
        }
    }

    /// When a look-up of record `i` becomes conclusive (`now` if its send time is unknown
    /// and this is no resume).
    fn ready_at(&self, i: usize, now: SystemTime) -> SystemTime {
        let sent = self.records[i]
            .sent
            .sent_at
            .or(self.resumed_at)
            .unwrap_or(now);
        sent.checked_add(self.policy.processing_bound())
            .unwrap_or(sent)
    }

    fn apply_resend(&mut self, resend: Option<ResendKind>, now: Now) -> Result<(), FieldError> {
        match resend {
            None | Some(ResendKind::Identical) => Ok(()),
            Some(ResendKind::Undelivered) => {
                if self.exchange.retry_style() == RetryStyle::SameRequest {
                    return Ok(());
                }
                self.exchange
                    .prepare_resend(Resend::Undelivered { now: now.wall })
            }
            Some(ResendKind::Fresh) => {
                let new_key = ShopTransactionId::generate(now.wall, &mut self.rng);
                let refund_query = self.policy.refund_query_on_resend()
                    && self.exchange.retry_style() == RetryStyle::LookUp;
                self.exchange.prepare_resend(Resend::Fresh {
                    new_key,
                    now: now.wall,
                    refund_query,
                })
            }
        }
    }

    /// The earliest time an answer about record `i` can be dated: a cancel made by a key is
    /// made after that key was sent (less the clock skew); a key resumed without its send
    /// time, after the start of its Korea day.
    fn not_before(&self, i: usize) -> Option<SystemTime> {
        if self.exchange.retry_style() == RetryStyle::Query {
            return None;
        }
        let r = self.records.get(i)?;
        let t = r.sent.sent_at.unwrap_or_else(|| r.sent.date.start());
        Some(t.checked_sub(self.policy.clock_skew()).unwrap_or(t))
    }

    /// Ties `out`, an answer about record `i`: a refund query's answer (direct or looked up)
    /// never ties by itself, since it may describe an earlier, equal refund.
    fn tie_record(&self, out: &E::Output, i: usize) -> Tie {
        let Some(r) = self.records.get(i) else {
            return Tie::Untied("an answer about no request of this cancel".into());
        };
        match tie(out, &r.sent.key, self.exchange.expected(), self.not_before(i)) {
            Tie::Tied if r.sent.refund_query => Tie::Untied(format!(
                "the refund query {} was answered with cancel {:?}, which may be an earlier refund of the same amount: a refund query's answer never proves it is this request's",
                r.sent.key,
                out.described_cancel_pg_cno()
            )),
            other => other,
        }
    }

    /// Reports how the request returned by the last [`Action::Send`] went.
    /// Ignored unless a request is in flight.
    pub fn on_delivery(&mut self, delivery: Delivery<'_>, now: Now) {
        match std::mem::replace(&mut self.state, State::Ready(None)) {
            State::InFlight(Flight::Attempt) => self.on_attempt(delivery, now),
            State::InFlight(Flight::LookUp { record, date }) => {
                self.on_lookup(record, date, delivery)
            }
            other => self.state = other,
        }
    }

    fn on_attempt(&mut self, delivery: Delivery<'_>, now: Now) {
        let current = self.records.len().saturating_sub(1);
        let style = self.exchange.retry_style();
        let observed = match delivery {
            Delivery::Response { status: 200, body } => match self.exchange.interpret(body) {
                Interpreted::Success(out) => {
                    let tied = self.tie_record(&out, current);
                    if tied == Tie::Tied {
                        self.state = State::Finished(Some(Ok(out)));
                        return;
                    }
                    // Only an untied answer needs the key, for the facts it reports.
                    let key = self.exchange.shop_transaction_id().clone();
                    match tied {
                        Tie::Tied => {}
                        Tie::Earlier { described, reason } => {
                            self.learn(format!("{key}: {reason}"));
                            self.earlier_cancel = Some(described);
                        }
                        Tie::Untied(why) => self.learn(format!("{key}: {why}")),
                    }
                    self.last_res_cd = Some(SUCCESS.to_owned());
                    if style == RetryStyle::SameRequest {
                        // The identical resend would be answered the same way: stop here.
                        self.records[current].status = Status::Maybe;
                        self.stop();
                        return;
                    }
                    Observed::OutcomeUnknown
                }
                Interpreted::Gateway {
                    res_cd,
                    res_msg,
                    detail,
                } => {
                    self.last_res_cd = Some(res_cd.clone());
                    self.last_reason = format!("resCd {res_cd}: {res_msg}");
                    match classify(self.exchange.channel(), &res_cd) {
                        ResponseClass::Declined => {
                            self.records[current].status = Status::NotProcessed;
                            let gateway = GatewayError::new(
                                res_cd,
                                res_msg,
                                self.exchange.shop_transaction_id().as_str(),
                            )
                            .with_detail(detail);
                            self.declined(gateway);
                            return;
                        }
                        ResponseClass::RetrySameRequest => Observed::GatewayRetry,
                        ResponseClass::ResendWithRefundQuery => Observed::GatewayRefundQuery,
                        ResponseClass::Success | ResponseClass::Ambiguous => {
                            Observed::OutcomeUnknown
                        }
                    }
                }
                Interpreted::Unreadable(why) => {
                    self.last_reason = format!("unreadable HTTP 200 response: {why}");
                    Observed::OutcomeUnknown
                }
            },
            Delivery::Response { status, .. } => {
                self.last_reason = format!("HTTP {status}");
                if status >= 500 || status == 408 || status == 429 {
                    Observed::OutcomeUnknown
                } else {
                    Observed::Rejected
                }
            }
            Delivery::NotDelivered { reason } => {
                self.last_reason = format!("not delivered: {reason}");
                Observed::NotDelivered
            }
            Delivery::Unknown { reason } => {
                self.last_reason = format!("no response: {reason}");
                Observed::OutcomeUnknown
            }
        };
        if let Some(r) = self.records.get_mut(current) {
            r.status = if observed.may_have_been_processed() {
                Status::Maybe
            } else {
                Status::NotProcessed
            };
        }
        if observed.may_have_been_processed() && !self.last_reason.is_empty() {
            let key = self.exchange.shop_transaction_id().clone();
            let reason = self.last_reason.clone();
            self.learn(format!("{key}: {reason}"));
        }
        match decide(style, observed) {
            Decision::Stop => self.stop(),
            Decision::LookUp => {
                self.lookups = None;
                self.state = State::LookingUp;
            }
            Decision::Retry(kind) => {
                // The one "may another attempt start, and when" rule (attempts, backoff,
                // deadline), shared with WeChat Pay direct.
                let started = self.started.unwrap_or(now.instant);
                match self.policy.bounds().next_attempt(
                    self.attempts,
                    started,
                    now.instant,
                    &mut self.rng,
                ) {
                    Some(until) => self.state = State::Backoff { until, then: kind },
                    None => self.stop(),
                }
            }
        }
    }

    /// Whether an attempt `delay` from `now` still starts within the deadline.
    fn in_time(&self, now: Now, delay: Duration) -> bool {
        let started = self.started.unwrap_or(now.instant);
        super::starts_in_time(started, self.policy.deadline(), now.instant, delay)
    }

    fn on_lookup(&mut self, record: usize, date: KoreaDate, delivery: Delivery<'_>) {
        self.lookup_request = None;
        let key = self.records[record].sent.key.clone();
        let failed = |what: String| format!("the look-up of {key}@{date} {what}");
        let body = match delivery {
            Delivery::Response { status: 200, body } => body,
            Delivery::Response { status, .. } => {
                return self.finish_ambiguous(failed(format!("failed with HTTP {status}")))
            }
            Delivery::NotDelivered { reason } | Delivery::Unknown { reason } => {
                return self.finish_ambiguous(failed(format!("failed: {reason}")))
            }
        };
        let Some(envelope) = Envelope::read(body) else {
            return self.finish_ambiguous(failed("was answered with an unreadable body".into()));
        };
        if self.policy.is_not_found(&envelope.res_cd) {
            self.learn(format!("{key}@{date}: not found"));
            self.state = State::LookingUp;
            return;
        }
        if envelope.res_cd != SUCCESS {
            return self.finish_ambiguous(failed(format!(
                "was answered resCd {} ({}), which says neither found nor not found",
                envelope.res_cd, envelope.res_msg
            )));
        }
        match self.exchange.interpret(body) {
            Interpreted::Success(out) => {
                match self.tie_record(&out, record) {
                    Tie::Tied => {
                        self.records[record].status = Status::Maybe;
                        self.state = State::Finished(Some(Ok(out)));
                    }
                    Tie::Earlier { described, reason } => {
                        // This key made no new cancel: it was answered with an earlier one.
                        self.learn(format!("{key}@{date}: {reason}"));
                        self.earlier_cancel = Some(described);
                        self.records[record].status = Status::NotProcessed;
                        if let Some(q) = &mut self.lookups {
                            q.retain(|(r, _)| *r != record);
                        }
                        self.state = State::LookingUp;
                    }
                    Tie::Untied(why) => self.finish_ambiguous(failed(format!("found {why}"))),
                }
            }
            Interpreted::Gateway {
                res_cd, res_msg, ..
            } => self.finish_ambiguous(failed(format!("was answered resCd {res_cd} ({res_msg})"))),
            Interpreted::Unreadable(why) => {
                self.finish_ambiguous(failed(format!("was answered unreadably: {why}")))
            }
        }
    }

    /// Every maybe-processed key was looked up and none made a cancel of this request.
    fn after_lookups(&mut self, now: Now) {
        for r in &mut self.records {
            if r.status == Status::Maybe {
                r.status = Status::NotProcessed;
            }
        }
        let key = self.exchange.shop_transaction_id().as_str().to_owned();
        if let Some(cancel_pg_cno) = self.earlier_cancel.take() {
            self.state = State::Finished(Some(Err(Error::AlreadyCancelled {
                cancel_pg_cno,
                shop_transaction_id: key,
            })));
            return;
        }
        let attempts_left = self.attempts < self.policy.max_attempts();
        if attempts_left && self.in_time(now, Duration::ZERO) {
            // A resumed cancel has not sent its own (unused) key yet: send it, dated today;
            // otherwise every key of this run was used: a new one.
            let next = if self.attempts == 0 {
                ResendKind::Undelivered
            } else {
                ResendKind::Fresh
            };
            self.state = State::Ready(Some(next));
        } else {
            self.state = State::Finished(Some(Err(Error::Transport {
                reason: format!(
                    "every key sent was looked up and none was processed; no attempt left ({})",
                    self.facts.join("; ")
                ),
                shop_transaction_id: key,
            })));
        }
    }

    fn learn(&mut self, fact: String) {
        if !self.facts.contains(&fact) {
            self.facts.push(fact);
        }
    }

    fn declined(&mut self, gateway: GatewayError) {
        let outcome = if self.may_have_been_processed() {
            // Invariant 8: once an attempt may have been processed, a decline of a later one
            // (for example "already cancelled") cannot mean "did not happen".
            let reason = format!(
                "an earlier attempt may have been processed, then the gateway declined: {gateway}"
            );
            self.ambiguous(reason)
        } else {
            Error::Declined(gateway)
        };
        self.state = State::Finished(Some(Err(outcome)));
    }

    fn finish_ambiguous(&mut self, reason: String) {
        let err = self.ambiguous(reason);
        self.state = State::Finished(Some(Err(err)));
    }

    fn key(&self) -> String {
        self.exchange.shop_transaction_id().as_str().to_owned()
    }

    fn ambiguous(&self, reason: String) -> Error {
        if self.exchange.retry_style() == RetryStyle::Query {
            return Error::StatusUnknown {
                reason,
                shop_transaction_id: self.key(),
            };
        }
        let mut text = reason;
        for fact in &self.facts {
            if !text.contains(fact.as_str()) {
                let _ = write!(text, "; {fact}");
            }
        }
        let mut sent: Vec<SentAttempt> = Vec::new();
        let mut lookup_after = None;
        for r in &self.records {
            if matches!(r.status, Status::Maybe | Status::InFlight)
                && !sent
                    .iter()
                    .any(|s| s.key == r.sent.key && s.date == r.sent.date)
            {
                sent.push(r.sent.clone());
                if let Some(at) = r.sent.sent_at.or(self.resumed_at) {
                    let ready = at.checked_add(self.policy.processing_bound()).unwrap_or(at);
                    lookup_after = Some(lookup_after.map_or(ready, |t: SystemTime| t.max(ready)));
                }
            }
        }
        Error::Ambiguous {
            reason: text,
            shop_transaction_id: self.key(),
            attempts: self.attempts,
            last_res_cd: self.last_res_cd.clone(),
            sent,
            lookup_after,
        }
    }

    fn stop(&mut self) {
        let reason = std::mem::take(&mut self.last_reason);
        let err = if self.may_have_been_processed() {
            self.ambiguous(reason)
        } else if self.exchange.retry_style() == RetryStyle::Query {
            Error::StatusUnknown {
                reason,
                shop_transaction_id: self.key(),
            }
        } else {
            Error::Transport {
                reason,
                shop_transaction_id: self.key(),
            }
        };
        self.state = State::Finished(Some(Err(err)));
    }
}

/// The look-ups to make: every maybe-processed attempt under its own Korea date, and under
/// the following days up to the date on which it could last have been processed (its send
/// plus the processing bound), since a request sent before Korea midnight may be processed
/// after it.
fn lookup_queue(
    records: &[Record],
    policy: &RetryPolicy,
    resumed_at: Option<SystemTime>,
    now: SystemTime,
) -> VecDeque<(usize, KoreaDate)> {
    let mut queue = VecDeque::new();
    for (i, r) in records.iter().enumerate() {
        if r.status != Status::Maybe {
            continue;
        }
        let sent = r.sent.sent_at.or(resumed_at).unwrap_or(now);
        let last = KoreaDate::of(sent.checked_add(policy.processing_bound()).unwrap_or(sent));
        let mut date = r.sent.date;
        queue.push_back((i, date));
        // At most two more days: beyond that the window check fails anyway.
        for _ in 0..2 {
            if date >= last {
                break;
            }
            date = date.next();
            queue.push_back((i, date));
        }
    }
    queue
}

impl<E: Exchange> std::fmt::Debug for Cancellation<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellation")
            .field("channel", &self.exchange.channel())
            .field("shop_transaction_id", self.exchange.shop_transaction_id())
            .field("attempts", &self.attempts)
            .field("maybe_processed", &self.may_have_been_processed())
            .finish_non_exhaustive()
    }
}
