//! KICC's protocol layer on the one retry model: [`Cancellation`] is sequenced by
//! [`Resender`](super::Resender) (attempts, the attempt in flight, backoff, deadline, what may
//! have been processed, the verdict) and adds what is KICC's: building each message (the
//! identical bytes, a refreshed date, or a new key), reading each answer (the retry table,
//! `super::decide`, and [`tie`](super::tie)), and the generic API's look-ups as the model's
//! status query.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Instant, SystemTime};

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
    decide, tie, AttemptRecord, Decision, Delivery, Describes, Exchange, Heard, Interpreted, Now,
    Observed, Resend, ResendKind, ResendStep, Resender, RetryPolicy, SentAttempt, Settlement, Tie,
    Verdict,
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

/// One step of [`Cancellation::poll`], before the borrow of what to send is taken.
enum Step<T> {
    Continue,
    Await,
    Wait(Instant),
    Done(Result<T, Error>),
    SendAttempt,
    SendLookUp,
}

/// The generic API's look-ups: the one model's status query for KICC. Every key that may
/// have been processed is looked up under its Korea date(s); together they settle the
/// query ([`Settlement`]).
struct LookUps {
    /// The look-ups still to make: a record of the machine and the date to look it up under.
    queue: VecDeque<(usize, KoreaDate)>,
    /// The look-up in flight: its record, date and request.
    in_flight: Option<(usize, KoreaDate, http::Request<Bytes>)>,
}

/// How the cancellation ends, when this layer knows more than the machine's [`Verdict`].
enum Ending<T> {
    /// Nothing yet: the verdict and the last answer tell.
    Open,
    /// Decided here (a tied answer, a look-up's finding, a request that could not be built);
    /// the machine's verdict agrees.
    Decided(Result<T, Error>),
    /// The last attempt was declined.
    Declined(GatewayError),
    /// Every key was looked up and none was processed; a new attempt goes if the budget
    /// allows.
    AllAbsent,
    /// The outcome was returned.
    Returned,
}

/// Steps [`Cancellation::poll`] may take before it must act (see there).
const MAX_STEPS_PER_POLL: u32 = 64;

/// One logical cancellation and its retries. See the module docs.
pub struct Cancellation<E: Exchange> {
    exchange: E,
    policy: RetryPolicy,
    /// The one retry model: it sequences the attempts and the look-ups.
    machine: Resender,
    /// What each of `machine`'s records carried, index for index.
    sent: Vec<SentAttempt>,
    /// How the next resend that is not a new key is made, as the retry table said.
    resend: ResendKind,
    /// Boxed: only a generic cancel whose outcome is unknown looks up, and inline it would
    /// add to every cancellation (and every future that holds one).
    lookups: Option<Box<LookUps>>,
    /// Records whose key a look-up found to have made no cancel of its own (it was answered
    /// with an earlier one): no longer "maybe processed", though no query settled them.
    absent: Vec<usize>,
    ending: Ending<E::Output>,
    last_reason: String,
    last_res_cd: Option<String>,
    facts: Vec<String>,
    earlier_cancel: Option<String>,
}

impl<E: Exchange> Cancellation<E> {
    /// Starts a cancellation of `exchange`'s request. `rng` gives the backoff jitter and the
    /// random part of any new key (seed it from the OS in production).
    pub fn new(exchange: E, policy: RetryPolicy, rng: Rng) -> Self {
        let style = exchange.retry_style();
        let mut machine = Resender::new(policy.bounds(), rng).with_run_budget();
        match style {
            // Every key that may have been processed is looked up (the model's query) after
            // the processing bound; the attempts, not a count of keys, bound new ones.
            RetryStyle::LookUp => {
                machine = machine
                    .with_query(u32::MAX)
                    .with_query_not_before(policy.processing_bound());
            }
            // A status query changes nothing: each one that may have been answered is asked
            // anew, with a new key.
            RetryStyle::Query => machine = machine.with_fresh_resends(),
            RetryStyle::SameRequest => {}
        }
        Cancellation {
            exchange,
            policy,
            machine,
            sent: Vec::new(),
            resend: ResendKind::Identical,
            lookups: None,
            absent: Vec::new(),
            ending: Ending::Open,
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
        let mut c = Cancellation::new(exchange, policy, rng);
        // One request per key (attempts of one key carry the same bytes); sent and nothing
        // heard since; an unknown send time counts from the resume.
        let mut request = 0u32;
        let mut records = Vec::with_capacity(sent.len());
        for (i, s) in sent.iter().enumerate() {
            if i == 0 || sent[i - 1].key != s.key {
                request = request.saturating_add(1);
            }
            records.push(AttemptRecord::new(
                request,
                s.sent_at.unwrap_or(now),
                Heard::Nothing,
            ));
        }
        c.machine = c.machine.resume(records);
        c.sent = sent;
        c
    }

    /// The channel's exchange (its current request, key, ...).
    pub fn exchange(&self) -> &E {
        &self.exchange
    }

    /// Attempts started so far in this run (look-ups not counted).
    pub fn attempts(&self) -> u32 {
        self.machine.attempts()
    }

    /// Whether any attempt so far may have been processed by KICC (and was not since proven
    /// otherwise).
    pub fn may_have_been_processed(&self) -> bool {
        self.maybe_processed().next().is_some()
    }

    /// The records that may have been processed: the machine's unsettled attempts, less the
    /// keys a look-up found to have made no cancel of their own.
    fn maybe_processed(&self) -> impl Iterator<Item = usize> + '_ {
        self.machine
            .unsettled()
            .map(|(i, _)| i)
            .filter(move |i| !self.absent.contains(i))
    }

    /// What the request returned by the last [`Action::Send`] is, while it is in flight: an
    /// attempt (record its key, date and bytes durably BEFORE sending it, if you journal) or
    /// a look-up (which changes nothing).
    pub fn in_flight(&self) -> Option<InFlight<'_>> {
        if matches!(self.ending, Ending::Returned) {
            return None;
        }
        if let Some((record, date, _)) = self.lookups.as_ref().and_then(|l| l.in_flight.as_ref()) {
            return self.sent.get(*record).map(|r| InFlight::LookUp {
                key: &r.key,
                date: *date,
            });
        }
        self.machine.in_flight()?;
        self.sent.last().map(InFlight::Attempt)
    }

    /// Every attempt recorded so far (resumed ones included), in order.
    pub fn sent(&self) -> impl Iterator<Item = &SentAttempt> {
        self.sent.iter()
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
                self.ending = Ending::Returned;
                return Action::Done(Err(err));
            }
            match self.step(now) {
                Step::Continue => continue,
                Step::Await => return Action::AwaitDelivery,
                Step::Wait(until) => return Action::WaitUntil(until),
                Step::Done(outcome) => return Action::Done(outcome),
                Step::SendAttempt => return Action::Send(self.exchange.request()),
                Step::SendLookUp => {
                    return match self.lookups.as_ref().and_then(|l| l.in_flight.as_ref()) {
                        Some((_, _, request)) => Action::Send(request),
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
        if matches!(self.ending, Ending::Returned) {
            return Step::Done(Err(self.ambiguous(
                "the outcome of this cancellation was already returned".into(),
            )));
        }
        if let Some(lookups) = &self.lookups {
            if lookups.in_flight.is_some() {
                return Step::Await;
            }
            return self.next_lookup(now);
        }
        match self.machine.poll(now) {
            ResendStep::Finished(verdict) => {
                let outcome = self.conclude(verdict);
                self.ending = Ending::Returned;
                Step::Done(outcome)
            }
            ResendStep::AwaitAnswer => Step::Await,
            ResendStep::WaitUntil(until) => Step::Wait(until),
            ResendStep::Query => {
                self.lookups = Some(Box::new(LookUps {
                    queue: self.lookup_queue(),
                    in_flight: None,
                }));
                Step::Continue
            }
            ResendStep::Send { attempt, fresh, .. } => {
                // How this attempt's message is made: the first of a run as built (or, after
                // look-ups, a resumed cancel's own unused key dated today); a new request
                // with a new key; else as the retry table said (identical, or undelivered).
                let kind = if attempt <= 1 {
                    (self.machine.queries() > 0).then_some(ResendKind::Undelivered)
                } else if fresh {
                    Some(ResendKind::Fresh)
                } else {
                    Some(self.resend)
                };
                if let Err(e) = self.apply_resend(kind, now) {
                    self.machine.withdraw();
                    let outcome = if self.may_have_been_processed() {
                        Err(self.ambiguous(format!("could not rebuild the request: {e}")))
                    } else {
                        Err(Error::Invalid(e))
                    };
                    self.ending = Ending::Decided(outcome);
                    return Step::Continue;
                }
                if matches!(self.ending, Ending::Declined(_) | Ending::AllAbsent) {
                    self.ending = Ending::Open;
                }
                let date = self
                    .exchange
                    .request_date()
                    .unwrap_or_else(|| KoreaDate::of(now.wall));
                self.sent.push(SentAttempt {
                    key: self.exchange.shop_transaction_id().clone(),
                    date,
                    sent_at: Some(now.wall),
                    refund_query: self.exchange.is_refund_query(),
                });
                Step::SendAttempt
            }
        }
    }

    /// The outcome, once the machine has its verdict.
    fn conclude(&mut self, verdict: Verdict) -> Result<E::Output, Error> {
        match std::mem::replace(&mut self.ending, Ending::Open) {
            Ending::Decided(outcome) => outcome,
            Ending::Declined(gateway) => {
                if verdict == Verdict::NotProcessed {
                    Err(Error::Declined(gateway))
                } else {
                    // Invariant 8: once an attempt may have been processed, a decline of a
                    // later one (for example "already cancelled") cannot mean "did not
                    // happen".
                    Err(self.ambiguous(format!(
                        "an earlier attempt may have been processed, then the gateway declined: {gateway}"
                    )))
                }
            }
            Ending::AllAbsent if verdict == Verdict::NotProcessed => Err(Error::Transport {
                reason: format!(
                    "every key sent was looked up and none was processed; no attempt left ({})",
                    self.facts.join("; ")
                ),
                shop_transaction_id: self.key(),
            }),
            _ => {
                let reason = std::mem::take(&mut self.last_reason);
                if verdict != Verdict::NotProcessed {
                    Err(self.ambiguous(reason))
                } else if self.exchange.retry_style() == RetryStyle::Query {
                    Err(Error::StatusUnknown {
                        reason,
                        shop_transaction_id: self.key(),
                    })
                } else {
                    Err(Error::Transport {
                        reason,
                        shop_transaction_id: self.key(),
                    })
                }
            }
        }
    }

    fn next_lookup(&mut self, now: Now) -> Step<E::Output> {
        let Some((record, date)) = self.lookups.as_mut().and_then(|l| l.queue.pop_front()) else {
            self.after_lookups();
            return Step::Continue;
        };
        let today = KoreaDate::of(now.wall);
        let age = date.days_until(today);
        let key = self.sent[record].key.clone();
        if !(0..=1).contains(&age) {
            self.lookups_ambiguous(format!(
                "{key}@{date} cannot be looked up: retrieveTransaction answers only for today and yesterday in Korea (today is {today})"
            ));
            return Step::Continue;
        }
        match self.exchange.lookup(&key, date) {
            Some(Ok(request)) => {
                if let Some(l) = self.lookups.as_mut() {
                    l.in_flight = Some((record, date, request));
                }
                Step::SendLookUp
            }
            Some(Err(e)) => {
                self.lookups_ambiguous(format!(
                    "the look-up of {key}@{date} could not be built: {e}"
                ));
                Step::Continue
            }
            None => {
                self.lookups_ambiguous(format!("this channel has no look-up for {key}@{date}"));
                Step::Continue
            }
        }
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
                let new_key = ShopTransactionId::generate(now.wall, self.machine.rng());
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
        let r = self.sent.get(i)?;
        let t = r.sent_at.unwrap_or_else(|| r.date.start());
        Some(t.checked_sub(self.policy.clock_skew()).unwrap_or(t))
    }

    /// Ties `out`, an answer about record `i`: a refund query's answer (direct or looked up)
    /// never ties by itself, since it may describe an earlier, equal refund.
    fn tie_record(&self, out: &E::Output, i: usize) -> Tie {
        let Some(r) = self.sent.get(i) else {
            return Tie::Untied("an answer about no request of this cancel".into());
        };
        match tie(out, &r.key, self.exchange.expected(), self.not_before(i)) {
            Tie::Tied if r.refund_query => Tie::Untied(format!(
                "the refund query {} was answered with cancel {:?}, which may be an earlier refund of the same amount: a refund query's answer never proves it is this request's",
                r.key,
                out.described_cancel_pg_cno()
            )),
            other => other,
        }
    }

    /// Reports how the request returned by the last [`Action::Send`] went.
    /// Ignored unless a request is in flight.
    pub fn on_delivery(&mut self, delivery: Delivery<'_>, now: Now) {
        if matches!(self.ending, Ending::Returned) {
            return;
        }
        if let Some((record, date, _)) = self.lookups.as_mut().and_then(|l| l.in_flight.take()) {
            self.on_lookup(record, date, delivery);
        } else if self.machine.in_flight().is_some() {
            self.on_attempt(delivery, now);
        }
    }

    fn on_attempt(&mut self, delivery: Delivery<'_>, now: Now) {
        let current = self.sent.len().saturating_sub(1);
        let style = self.exchange.retry_style();
        let observed = match delivery {
            Delivery::Response { status: 200, body } => match self.exchange.interpret(body) {
                Interpreted::Success(out) => {
                    let tied = self.tie_record(&out, current);
                    if tied == Tie::Tied {
                        self.ending = Ending::Decided(Ok(out));
                        self.machine.on_attempt(Heard::Done, now);
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
                        // The identical resend would be answered the same way, and wallets
                        // have no look-up: maybe processed, and nothing more to do.
                        self.machine.on_attempt(Heard::QueryFirst, now);
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
                            let gateway = GatewayError::new(
                                res_cd,
                                res_msg,
                                self.exchange.shop_transaction_id().as_str(),
                            )
                            .with_detail(detail);
                            self.ending = Ending::Declined(gateway);
                            self.machine.on_attempt(Heard::Refused, now);
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
        if observed.may_have_been_processed() && !self.last_reason.is_empty() {
            let key = self.exchange.shop_transaction_id().clone();
            let reason = self.last_reason.clone();
            self.learn(format!("{key}: {reason}"));
        }
        // The retry table, read as what the one model hears: a resend of the same key
        // (identical, or undelivered), the look-ups (the model's query), or a stop.
        let heard = match decide(style, observed) {
            Decision::Stop => Heard::Refused,
            Decision::LookUp => Heard::QueryFirst,
            Decision::Retry(ResendKind::Undelivered) => {
                self.resend = ResendKind::Undelivered;
                Heard::NotDelivered
            }
            // A new key for a status query (the model builds such resends afresh).
            Decision::Retry(kind) => {
                self.resend = kind;
                Heard::Unknown
            }
        };
        self.machine.on_attempt(heard, now);
    }

    fn on_lookup(&mut self, record: usize, date: KoreaDate, delivery: Delivery<'_>) {
        let key = self.sent[record].key.clone();
        let failed = |what: String| format!("the look-up of {key}@{date} {what}");
        let body = match delivery {
            Delivery::Response { status: 200, body } => body,
            Delivery::Response { status, .. } => {
                return self.lookups_ambiguous(failed(format!("failed with HTTP {status}")))
            }
            Delivery::NotDelivered { reason } | Delivery::Unknown { reason } => {
                return self.lookups_ambiguous(failed(format!("failed: {reason}")))
            }
        };
        let Some(envelope) = Envelope::read(body) else {
            return self.lookups_ambiguous(failed("was answered with an unreadable body".into()));
        };
        if self.policy.is_not_found(&envelope.res_cd) {
            self.learn(format!("{key}@{date}: not found"));
            return;
        }
        if envelope.res_cd != SUCCESS {
            return self.lookups_ambiguous(failed(format!(
                "was answered resCd {} ({}), which says neither found nor not found",
                envelope.res_cd, envelope.res_msg
            )));
        }
        match self.exchange.interpret(body) {
            Interpreted::Success(out) => {
                match self.tie_record(&out, record) {
                    Tie::Tied => {
                        self.lookups = None;
                        self.ending = Ending::Decided(Ok(out));
                        self.machine.on_query(Settlement::Done);
                    }
                    Tie::Earlier { described, reason } => {
                        // This key made no new cancel: it was answered with an earlier one.
                        self.learn(format!("{key}@{date}: {reason}"));
                        self.earlier_cancel = Some(described);
                        self.absent.push(record);
                        if let Some(l) = self.lookups.as_mut() {
                            l.queue.retain(|(r, _)| *r != record);
                        }
                    }
                    Tie::Untied(why) => self.lookups_ambiguous(failed(format!("found {why}"))),
                }
            }
            Interpreted::Gateway {
                res_cd, res_msg, ..
            } => self.lookups_ambiguous(failed(format!("was answered resCd {res_cd} ({res_msg})"))),
            Interpreted::Unreadable(why) => {
                self.lookups_ambiguous(failed(format!("was answered unreadably: {why}")))
            }
        }
    }

    /// Every maybe-processed key was looked up and none made a cancel of this request: the
    /// query says so, and the model decides whether a new attempt goes.
    fn after_lookups(&mut self) {
        self.lookups = None;
        // The query settles every record, these included.
        self.absent.clear();
        let settlement = if let Some(cancel_pg_cno) = self.earlier_cancel.take() {
            self.ending = Ending::Decided(Err(Error::AlreadyCancelled {
                cancel_pg_cno,
                shop_transaction_id: self.key(),
            }));
            Settlement::NotDone
        } else {
            self.ending = Ending::AllAbsent;
            Settlement::SendAgain
        };
        self.machine.on_query(settlement);
    }

    /// A look-up that leaves the outcome unknown ends the query as unknown.
    fn lookups_ambiguous(&mut self, reason: String) {
        let err = self.ambiguous(reason);
        self.lookups = None;
        self.ending = Ending::Decided(Err(err));
        self.machine.on_query(Settlement::Unknown);
    }

    fn learn(&mut self, fact: String) {
        if !self.facts.contains(&fact) {
            self.facts.push(fact);
        }
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
        let records = self.machine.records();
        for i in self.maybe_processed() {
            let (Some(s), Some(r)) = (self.sent.get(i), records.get(i)) else {
                continue;
            };
            if !sent.iter().any(|x| x.key == s.key && x.date == s.date) {
                sent.push(s.clone());
                let at = r.sent_at();
                let ready = at.checked_add(self.policy.processing_bound()).unwrap_or(at);
                lookup_after = Some(lookup_after.map_or(ready, |t: SystemTime| t.max(ready)));
            }
        }
        Error::Ambiguous {
            reason: text,
            shop_transaction_id: self.key(),
            attempts: self.machine.attempts(),
            last_res_cd: self.last_res_cd.clone(),
            sent,
            lookup_after,
        }
    }

    /// The look-ups to make: every maybe-processed attempt under its own Korea date, and
    /// under the following days up to the date on which it could last have been processed
    /// (its send plus the processing bound), since a request sent before Korea midnight may
    /// be processed after it.
    fn lookup_queue(&self) -> VecDeque<(usize, KoreaDate)> {
        let mut queue = VecDeque::new();
        for (i, r) in self.machine.unsettled() {
            let Some(s) = self.sent.get(i) else {
                continue;
            };
            let at = r.sent_at();
            let last = KoreaDate::of(at.checked_add(self.policy.processing_bound()).unwrap_or(at));
            let mut date = s.date;
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
}

impl<E: Exchange> std::fmt::Debug for Cancellation<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellation")
            .field("channel", &self.exchange.channel())
            .field("shop_transaction_id", self.exchange.shop_transaction_id())
            .field("attempts", &self.attempts())
            .field("maybe_processed", &self.may_have_been_processed())
            .finish_non_exhaustive()
    }
}
