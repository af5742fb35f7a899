//! The one retry model of kicc-rs: the sequencing of attempts, resends and a status query
//! for any protocol. KICC's [`Cancellation`](super::Cancellation) and WeChat Pay direct's
//! revoke (`wechatpay-direct`'s `Revocation`) are both protocol layers on it.
//!
//! It knows nothing of bytes, signatures or answers: the protocol reads each answer and
//! reports what was [`Heard`]; a status query's answer is reported as a [`Settlement`]. The
//! rules:
//!
//! - **Not delivered** (the connection was never made): resend, within the
//!   [`AttemptBounds`]. If nothing ever may have been processed, the end is
//!   [`Verdict::NotProcessed`].
//! - **Unknown** (timeout, lost connection, 5xx): maybe processed; resend the identical
//!   request within the bounds (or a new one, [`Resender::with_fresh_resends`], for a
//!   request that changes nothing), then query.
//! - **Query first** (a protocol answer that says "look before you resend"): maybe processed;
//!   query at once, no resend.
//! - **Refused** after an attempt that may have been processed: never "not processed" by
//!   itself (DESIGN.md invariant 8); the status query decides.
//! - **The query**: changes nothing; its own failure is [`Settlement::Unknown`], which ends as
//!   [`Verdict::Unknown`] (invariant 10). Only a query can turn a maybe-processed request into
//!   "not processed" ([`Settlement::NotDone`] / [`Settlement::SendAgain`]). It may be made to
//!   wait until the attempts it settles can no longer be processed
//!   ([`Resender::with_query_not_before`]); it covers [`Resender::unsettled`].
//! - **The budget**: attempts and deadline per request (per identical bytes), or for the whole
//!   run ([`Resender::with_run_budget`]).
//!
//! Time is passed in ([`Now`]); randomness (backoff jitter) comes from the caller's [`Rng`].
//! [`Resender::resume`] continues from recorded attempts ([`AttemptRecord`]) after a restart.

use std::time::{Duration, Instant, SystemTime};

use crate::random::Rng;

use super::{starts_in_time, AttemptBounds, Delivery, Now};

/// What one attempt's end says, as the protocol reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Heard {
    /// Sent, and nothing recorded since (the process stopped while it was in flight): it may
    /// have been processed.
    Nothing,
    /// The request certainly never reached the server (no connection, refused before
    /// sending).
    NotDelivered,
    /// It may have been processed and the outcome is unknown; the identical request may be
    /// resent (a timeout, a lost connection, HTTP 5xx).
    Unknown,
    /// It may have been processed, and the protocol says to query the status before
    /// anything else is sent (WeChat Pay's `SYSTEM_ERROR`, a 2xx that does not verify).
    QueryFirst,
    /// A definite refusal of this request: it was not processed.
    Refused,
    /// A success tied to this request.
    Done,
}

impl Heard {
    /// Whether the attempt may have been processed by the server.
    pub fn may_have_been_processed(self) -> bool {
        matches!(
            self,
            Heard::Nothing | Heard::Unknown | Heard::QueryFirst | Heard::Done
        )
    }

    /// The one mapping from an attempt without an answer: not delivered, or unknown. The
    /// transport decides which (kicc-transport's `driver::never_delivered`).
    pub fn without_answer(never_delivered: bool) -> Heard {
        if never_delivered {
            Heard::NotDelivered
        } else {
            Heard::Unknown
        }
    }

    /// [`Heard::without_answer`] for a [`Delivery`] without a response; `None` for a
    /// response, which the protocol reads.
    pub fn of_delivery(delivery: &Delivery<'_>) -> Option<Heard> {
        match delivery {
            Delivery::Response { .. } => None,
            Delivery::NotDelivered { .. } => Some(Heard::NotDelivered),
            Delivery::Unknown { .. } => Some(Heard::Unknown),
        }
    }
}

/// What a status query proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Settlement {
    /// The request's effect is there (WeChat Pay: `REVOKED`, or `CLOSED`: nothing charged).
    Done,
    /// It was not processed, and sending again would not help (WeChat Pay: `REFUND`).
    NotDone,
    /// It was not processed; a new request (freshly built) may go.
    SendAgain,
    /// The query failed or its answer is not conclusive: the outcome stays unknown.
    Unknown,
}

/// How the requests ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// Done: a tied success, or a query showing the effect.
    Done,
    /// Certainly not processed: nothing may have been, or a query proved it.
    NotProcessed,
    /// Nobody knows: query again later.
    Unknown,
}

/// One attempt, as a journal keeps it: which request (1 for the first built, 2 for one built
/// afresh after a query, ...), when it was sent, and what was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptRecord {
    request: u32,
    sent_at: SystemTime,
    heard: Heard,
}

impl AttemptRecord {
    /// A record of an attempt of request number `request` (1-based), sent at `sent_at`.
    pub fn new(request: u32, sent_at: SystemTime, heard: Heard) -> Self {
        AttemptRecord {
            request: request.max(1),
            sent_at,
            heard,
        }
    }

    /// The request number (1-based): attempts of one number carry identical bytes.
    pub fn request(&self) -> u32 {
        self.request
    }

    /// When it was sent.
    pub fn sent_at(&self) -> SystemTime {
        self.sent_at
    }

    /// What was heard ([`Heard::Nothing`] while it is in flight).
    pub fn heard(&self) -> Heard {
        self.heard
    }
}

/// The next thing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResendStep {
    /// Send attempt `attempt` of request `request`: the identical bytes of the earlier
    /// attempts of that request, or, when `fresh`, a newly built request (record it durably
    /// before sending, if you journal). Then report with [`Resender::on_attempt`].
    Send {
        /// The request number (1-based).
        request: u32,
        /// The attempt number (1-based) within the current request, or within the whole run
        /// with [`Resender::with_run_budget`].
        attempt: u32,
        /// Whether the request must be built anew (a new signature, ...).
        fresh: bool,
    },
    /// Query the status; report with [`Resender::on_query`].
    Query,
    /// Something is in flight: report its end first.
    AwaitAnswer,
    /// Nothing to do before this instant.
    WaitUntil(Instant),
    /// Finished (every later poll says the same).
    Finished(Verdict),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready {
        fresh: bool,
    },
    Backoff {
        until: Instant,
        fresh: bool,
    },
    Attempt,
    Querying,
    Query,
    /// A query said "send again" and the budget is the run's: whether a new request may
    /// go is checked at the next poll, at its time.
    Again,
    Finished(Verdict),
}

/// The machine: see the module docs.
#[derive(Debug, Clone)]
pub struct Resender {
    bounds: AttemptBounds,
    max_requests: u32,
    has_query: bool,
    /// The attempts and the deadline count for the whole run, not per request.
    run_budget: bool,
    /// A resend after a maybe-processed attempt is a newly built request.
    fresh_resends: bool,
    /// A query waits until every attempt it settles was sent at least this long ago.
    query_after: Option<Duration>,
    rng: Rng,
    state: State,
    records: Vec<AttemptRecord>,
    /// Records before this index were settled by a query ("not processed").
    settled: usize,
    request: u32,
    attempts: u32,
    started: Option<Instant>,
    queries: u32,
}

impl Resender {
    /// A machine for one request under `bounds`, without a status query: what stays unknown
    /// ends as [`Verdict::Unknown`] (a status query itself is run this way). The attempts and
    /// the deadline count per request (per identical bytes): a request built afresh after a
    /// query gets its own, unless [`Resender::with_run_budget`].
    pub fn new(bounds: AttemptBounds, rng: Rng) -> Self {
        Resender {
            bounds,
            max_requests: 1,
            has_query: false,
            run_budget: false,
            fresh_resends: false,
            query_after: None,
            rng,
            state: State::Ready { fresh: true },
            records: Vec::new(),
            settled: 0,
            request: 0,
            attempts: 0,
            started: None,
            queries: 0,
        }
    }

    /// Counts the attempts and the deadline for the whole run instead of per request: a
    /// request built afresh after a query ([`Settlement::SendAgain`]) goes only if an attempt
    /// is left and the deadline (from the run's first attempt) has not passed, else the end
    /// is [`Verdict::NotProcessed`]. KICC's cancellation: its attempts span every key.
    pub fn with_run_budget(mut self) -> Self {
        self.run_budget = true;
        self
    }

    /// Builds every resend after an attempt that may have been processed afresh
    /// ([`ResendStep::Send`] with `fresh`), instead of resending the identical bytes: for a
    /// request that changes nothing, such as a status query, which is simply asked anew. A
    /// request never delivered is still sent again as it was.
    pub fn with_fresh_resends(mut self) -> Self {
        self.fresh_resends = true;
        self
    }

    /// Makes a status query wait until every attempt it must settle
    /// ([`Resender::unsettled`]) was sent at least `bound` ago: a request may still be
    /// processed after the client gave up on it, so an earlier query proves nothing. (KICC:
    /// the gateway's processing bound before `retrieveTransaction`.)
    pub fn with_query_not_before(mut self, bound: Duration) -> Self {
        self.query_after = Some(bound);
        self
    }

    /// Settles unknown outcomes by a status query; after a query answers
    /// [`Settlement::SendAgain`], a fresh request may go, up to `max_requests` requests in
    /// all (at least 1).
    pub fn with_query(mut self, max_requests: u32) -> Self {
        self.has_query = true;
        self.max_requests = max_requests.max(1);
        self
    }

    /// Continues from `records` (a journal), in a new run with its own attempt budget:
    ///
    /// - if any attempt may have been processed: query first, a recorded [`Heard::Done`]
    ///   included (the journal holds no answer to show for it); never "not processed"
    ///   without a query;
    /// - without a query: a recorded [`Heard::Done`] is done; another maybe-processed
    ///   attempt is resent identically;
    /// - else, after a definite refusal: not processed;
    /// - else (nothing delivered, or nothing sent): send the last request again.
    pub fn resume(mut self, records: Vec<AttemptRecord>) -> Self {
        self.request = records
            .iter()
            .map(AttemptRecord::request)
            .max()
            .unwrap_or(0);
        self.settled = 0;
        let maybe = records.iter().any(|r| r.heard.may_have_been_processed());
        let last = records.last().map(AttemptRecord::heard);
        self.state = if maybe && self.has_query {
            State::Querying
        } else if records.iter().any(|r| r.heard == Heard::Done) {
            State::Finished(Verdict::Done)
        } else if maybe || last != Some(Heard::Refused) {
            State::Ready {
                fresh: self.request == 0,
            }
        } else {
            State::Finished(Verdict::NotProcessed)
        };
        self.records = records;
        self
    }

    /// Every attempt so far, resumed ones included, in order.
    pub fn records(&self) -> &[AttemptRecord] {
        &self.records
    }

    /// The attempt in flight, if one is.
    pub fn in_flight(&self) -> Option<&AttemptRecord> {
        match self.state {
            State::Attempt => self.records.last(),
            _ => None,
        }
    }

    /// Attempts started in this run: of the current request, or of the whole run with
    /// [`Resender::with_run_budget`] (the count the attempt bounds apply to).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Status queries started in this run.
    pub fn queries(&self) -> u32 {
        self.queries
    }

    /// The current request number (0 before the first).
    pub fn request(&self) -> u32 {
        self.request
    }

    /// Whether an attempt may have been processed and no query since has said otherwise
    /// (the attempt in flight not counted).
    pub fn may_have_been_processed(&self) -> bool {
        self.unsettled().next().is_some()
    }

    /// The attempts that may have been processed and that no query has settled since, with
    /// their index in [`Resender::records`], oldest first (the attempt in flight not
    /// included): what a status query must cover.
    pub fn unsettled(&self) -> impl Iterator<Item = (usize, &AttemptRecord)> + '_ {
        let end = match self.state {
            State::Attempt => self.records.len().saturating_sub(1),
            _ => self.records.len(),
        };
        self.records
            .get(self.settled.min(end)..end)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, r)| (self.settled + i, r))
            .filter(|(_, r)| r.heard.may_have_been_processed())
    }

    /// The randomness of this run (backoff jitter), for a protocol layer that draws from
    /// the same stream (KICC's new keys).
    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// What to do next, at `now`.
    pub fn poll(&mut self, now: Now) -> ResendStep {
        loop {
            match self.state {
                State::Finished(v) => return ResendStep::Finished(v),
                State::Attempt | State::Query => return ResendStep::AwaitAnswer,
                State::Backoff { until, fresh } => {
                    if now.instant < until {
                        return ResendStep::WaitUntil(until);
                    }
                    self.state = State::Ready { fresh };
                }
                State::Querying => {
                    if let Some(until) = self.query_wait(now) {
                        return ResendStep::WaitUntil(until);
                    }
                    self.queries = self.queries.saturating_add(1);
                    self.state = State::Query;
                    return ResendStep::Query;
                }
                State::Again => {
                    let started = self.started.unwrap_or(now.instant);
                    self.state = if self.attempts < self.bounds.max_attempts()
                        && starts_in_time(
                            started,
                            self.bounds.deadline(),
                            now.instant,
                            Duration::ZERO,
                        ) {
                        State::Ready { fresh: true }
                    } else {
                        State::Finished(Verdict::NotProcessed)
                    };
                }
                State::Ready { fresh } => {
                    if fresh || self.request == 0 {
                        self.request = self.request.saturating_add(1);
                        if !self.run_budget {
                            self.started = None;
                        }
                    }
                    self.started.get_or_insert(now.instant);
                    self.attempts = self.attempts.saturating_add(1);
                    self.records
                        .push(AttemptRecord::new(self.request, now.wall, Heard::Nothing));
                    self.state = State::Attempt;
                    return ResendStep::Send {
                        request: self.request,
                        attempt: self.attempts,
                        fresh,
                    };
                }
            }
        }
    }

    /// Reports what the attempt in flight produced. Ignored unless one is in flight.
    pub fn on_attempt(&mut self, heard: Heard, now: Now) {
        if self.state != State::Attempt {
            return;
        }
        if let Some(r) = self.records.last_mut() {
            r.heard = heard;
        }
        // The attempt is no longer in flight: it counts in `may_have_been_processed`.
        self.state = State::Ready { fresh: false };
        let maybe = self.may_have_been_processed();
        self.state = match heard {
            Heard::Done => State::Finished(Verdict::Done),
            Heard::Refused if maybe => self.unresolved(),
            Heard::Refused => State::Finished(Verdict::NotProcessed),
            Heard::QueryFirst => self.unresolved(),
            Heard::Unknown | Heard::Nothing | Heard::NotDelivered => match self.resend_at(now) {
                Some(until) => State::Backoff {
                    until,
                    fresh: self.fresh_resends && heard.may_have_been_processed(),
                },
                None if maybe => self.unresolved(),
                None => State::Finished(Verdict::NotProcessed),
            },
        };
    }

    /// The attempt asked for could not be made (its request could not be built): nothing
    /// was sent. It is forgotten (not recorded, not counted) and the run ends: not
    /// processed, unless an earlier attempt may have been processed (then unknown; no
    /// query can build the request either). Ignored unless an attempt is in flight.
    pub fn withdraw(&mut self) {
        if self.state != State::Attempt {
            return;
        }
        self.records.pop();
        self.attempts = self.attempts.saturating_sub(1);
        // Nothing is in flight any more: every record counts in `may_have_been_processed`.
        self.state = State::Finished(Verdict::NotProcessed);
        self.state = State::Finished(if self.may_have_been_processed() {
            Verdict::Unknown
        } else {
            Verdict::NotProcessed
        });
    }

    /// Reports what the status query proved. Ignored unless a query is in flight.
    pub fn on_query(&mut self, settlement: Settlement) {
        if self.state != State::Query {
            return;
        }
        self.state = match settlement {
            Settlement::Done => State::Finished(Verdict::Done),
            Settlement::NotDone => {
                self.settled = self.records.len();
                State::Finished(Verdict::NotProcessed)
            }
            Settlement::SendAgain => {
                self.settled = self.records.len();
                if self.run_budget {
                    State::Again
                } else if self.request < self.max_requests {
                    self.attempts = 0;
                    State::Ready { fresh: true }
                } else {
                    State::Finished(Verdict::NotProcessed)
                }
            }
            Settlement::Unknown => State::Finished(Verdict::Unknown),
        };
    }

    /// When the identical request may go again, if the bounds allow it.
    fn resend_at(&mut self, now: Now) -> Option<Instant> {
        let started = self.started.unwrap_or(now.instant);
        self.bounds
            .next_attempt(self.attempts, started, now.instant, &mut self.rng)
    }

    /// When a query may start, if not yet: every unsettled attempt's send plus
    /// [`Resender::with_query_not_before`]'s bound (on the wall clock, as the send times).
    fn query_wait(&self, now: Now) -> Option<Instant> {
        let bound = self.query_after?;
        let ready = self
            .unsettled()
            .map(|(_, r)| r.sent_at.checked_add(bound).unwrap_or(r.sent_at))
            .max()?;
        let wait = ready.duration_since(now.wall).ok()?;
        (!wait.is_zero()).then(|| now.instant.checked_add(wait).unwrap_or(now.instant))
    }

    /// A maybe-processed request that resending will not settle: query, or unknown.
    fn unresolved(&self) -> State {
        if self.has_query {
            State::Querying
        } else {
            State::Finished(Verdict::Unknown)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn bounds(n: u32) -> AttemptBounds {
        AttemptBounds::builder()
            .max_attempts(n)
            .initial_backoff(Duration::from_secs(1))
            .max_backoff(Duration::from_secs(1))
            .deadline(Duration::from_secs(60))
            .build()
    }

    enum Input {
        A(Heard),
        Q(Settlement),
    }
    use Input::{A, Q};

    /// Runs the machine through `inputs` on a virtual clock; returns the steps it asked for
    /// (`S<request>[f]` for a send, fresh or not, `Q` for a query) and its verdict.
    fn run(mut m: Resender, inputs: &[Input]) -> (String, Verdict) {
        let mut now = Now::new(
            Instant::now(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let mut steps = Vec::new();
        let mut inputs = inputs.iter();
        loop {
            match m.poll(now) {
                ResendStep::Send { request, fresh, .. } => {
                    steps.push(format!("S{request}{}", if fresh { "f" } else { "" }));
                    match inputs.next() {
                        Some(A(h)) => m.on_attempt(*h, now),
                        _ => panic!("no answer for {steps:?}"),
                    }
                }
                ResendStep::Query => {
                    steps.push("Q".into());
                    match inputs.next() {
                        Some(Q(s)) => m.on_query(*s),
                        _ => panic!("no query answer for {steps:?}"),
                    }
                }
                ResendStep::WaitUntil(t) => now = now.plus(t - now.instant),
                ResendStep::AwaitAnswer => panic!("nothing in flight"),
                ResendStep::Finished(v) => {
                    assert!(inputs.next().is_none(), "unused inputs after {steps:?}");
                    assert_eq!(m.poll(now), ResendStep::Finished(v));
                    return (steps.join(" "), v);
                }
            }
        }
    }

    #[test]
    fn table() {
        use Heard::{NotDelivered, QueryFirst, Refused, Unknown};
        use Settlement as S;
        use Verdict::NotProcessed;
        let q = || Resender::new(bounds(3), Rng::from_seed([0; 32])).with_query(2);
        let plain = || Resender::new(bounds(3), Rng::from_seed([0; 32]));
        let table: Vec<(&str, Resender, Vec<Input>, &str, Verdict)> = vec![
            (
                "done at once",
                q(),
                vec![A(Heard::Done)],
                "S1f",
                Verdict::Done,
            ),
            (
                "refused at once",
                q(),
                vec![A(Refused)],
                "S1f",
                NotProcessed,
            ),
            (
                "5xx then done",
                q(),
                vec![A(Unknown), A(Heard::Done)],
                "S1f S1",
                Verdict::Done,
            ),
            (
                "unknown three times, then the query decides",
                q(),
                vec![A(Unknown), A(Unknown), A(Unknown), Q(S::Done)],
                "S1f S1 S1 Q",
                Verdict::Done,
            ),
            (
                "query first: no resend",
                q(),
                vec![A(QueryFirst), Q(S::Unknown)],
                "S1f Q",
                Verdict::Unknown,
            ),
            (
                "refused after a maybe: the query decides",
                q(),
                vec![A(Unknown), A(Refused), Q(S::NotDone)],
                "S1f S1 Q",
                NotProcessed,
            ),
            (
                "not delivered every time: not processed",
                q(),
                vec![A(NotDelivered), A(NotDelivered), A(NotDelivered)],
                "S1f S1 S1",
                NotProcessed,
            ),
            (
                "not delivered after a maybe: query",
                q(),
                vec![A(Unknown), A(NotDelivered), A(NotDelivered), Q(S::Unknown)],
                "S1f S1 S1 Q",
                Verdict::Unknown,
            ),
            (
                "send again once, then still not done",
                q(),
                vec![
                    A(QueryFirst),
                    Q(S::SendAgain),
                    A(QueryFirst),
                    Q(S::SendAgain),
                ],
                "S1f Q S2f Q",
                NotProcessed,
            ),
            (
                "send again, then done",
                q(),
                vec![A(QueryFirst), Q(S::SendAgain), A(Heard::Done)],
                "S1f Q S2f",
                Verdict::Done,
            ),
            (
                "no query: attempts used up after a maybe is unknown",
                plain(),
                vec![A(Unknown), A(NotDelivered), A(NotDelivered)],
                "S1f S1 S1",
                Verdict::Unknown,
            ),
            (
                "no query: refused after a maybe is unknown",
                plain(),
                vec![A(Unknown), A(Refused)],
                "S1f S1",
                Verdict::Unknown,
            ),
        ];
        for (name, m, inputs, steps, verdict) in table {
            assert_eq!(run(m, &inputs), (steps.to_owned(), verdict), "{name}");
        }
    }

    #[test]
    fn deadline_stops_resends() {
        let b = AttemptBounds::builder()
            .max_attempts(10)
            .initial_backoff(Duration::from_secs(4))
            .max_backoff(Duration::from_secs(4))
            .deadline(Duration::from_secs(5))
            .build();
        let m = Resender::new(b, Rng::from_seed([0; 32])).with_query(1);
        let (steps, v) = run(
            m,
            &[A(Heard::Unknown), A(Heard::Unknown), Q(Settlement::Unknown)],
        );
        assert_eq!((steps.as_str(), v), ("S1f S1 Q", Verdict::Unknown));
    }

    #[test]
    fn resume_from_records() {
        use Heard::*;
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let rec = |request, heard| AttemptRecord::new(request, at, heard);
        let q = || Resender::new(bounds(3), Rng::from_seed([0; 32])).with_query(2);
        // A crash while in flight: query first, never "not processed" without it.
        assert_eq!(
            run(q().resume(vec![rec(1, Nothing)]), &[Q(Settlement::Unknown)]),
            ("Q".into(), Verdict::Unknown)
        );
        // Maybe processed, then refused: the query decides.
        assert_eq!(
            run(
                q().resume(vec![rec(1, Unknown), rec(1, Refused)]),
                &[Q(Settlement::SendAgain), A(Done)]
            ),
            ("Q S2f".into(), Verdict::Done)
        );
        // Never delivered: the same request again, with a new budget.
        assert_eq!(
            run(
                q().resume(vec![rec(1, NotDelivered), rec(1, NotDelivered)]),
                &[A(Done)]
            ),
            ("S1".into(), Verdict::Done)
        );
        // Refused and nothing else: not processed, nothing sent.
        assert_eq!(
            run(q().resume(vec![rec(1, Refused)]), &[]),
            (String::new(), Verdict::NotProcessed)
        );
        // A recorded success is confirmed by the query; without a query it is done.
        assert_eq!(
            run(q().resume(vec![rec(1, Done)]), &[Q(Settlement::Done)]),
            ("Q".into(), Verdict::Done)
        );
        assert_eq!(
            run(
                Resender::new(bounds(3), Rng::from_seed([0; 32])).resume(vec![rec(1, Done)]),
                &[]
            ),
            (String::new(), Verdict::Done)
        );
        // Nothing recorded: a fresh start.
        assert_eq!(
            run(q().resume(vec![]), &[A(Done)]),
            ("S1f".into(), Verdict::Done)
        );
        // Without a query, a maybe-processed request is resent identically.
        let plain = Resender::new(bounds(3), Rng::from_seed([0; 32]));
        let m = plain.resume(vec![rec(1, Unknown)]);
        assert!(m.may_have_been_processed());
        assert_eq!(run(m, &[A(Refused)]), ("S1".into(), Verdict::Unknown));
    }

    #[test]
    fn fresh_resends_build_a_new_request_after_an_unknown_outcome_only() {
        let m = || Resender::new(bounds(3), Rng::from_seed([0; 32])).with_fresh_resends();
        // A maybe-processed attempt: the next is built anew (a status query asked again).
        assert_eq!(
            run(m(), &[A(Heard::Unknown), A(Heard::Unknown), A(Heard::Done)]),
            ("S1f S2f S3f".into(), Verdict::Done)
        );
        // Never delivered: the same request again.
        assert_eq!(
            run(m(), &[A(Heard::NotDelivered), A(Heard::Done)]),
            ("S1f S1".into(), Verdict::Done)
        );
    }

    #[test]
    fn a_run_budget_bounds_requests_sent_again_by_the_attempts_left() {
        // Two attempts for the whole run: the second request is the last.
        let run_budget = Resender::new(bounds(2), Rng::from_seed([0; 32]))
            .with_query(u32::MAX)
            .with_run_budget();
        assert_eq!(
            run(
                run_budget,
                &[
                    A(Heard::QueryFirst),
                    Q(Settlement::SendAgain),
                    A(Heard::QueryFirst),
                    Q(Settlement::SendAgain),
                ]
            ),
            ("S1f Q S2f Q".into(), Verdict::NotProcessed)
        );
        // Per request (the default), each request sent again has two attempts of its own.
        let per_request = Resender::new(bounds(2), Rng::from_seed([0; 32])).with_query(2);
        assert_eq!(
            run(
                per_request,
                &[
                    A(Heard::QueryFirst),
                    Q(Settlement::SendAgain),
                    A(Heard::Unknown),
                    A(Heard::Done),
                ]
            ),
            ("S1f Q S2f S2".into(), Verdict::Done)
        );
        // The run's deadline, from its first attempt, also holds after a query.
        let b = AttemptBounds::builder()
            .max_attempts(5)
            .deadline(Duration::from_secs(10))
            .build();
        let mut m = Resender::new(b, Rng::from_seed([0; 32]))
            .with_query(u32::MAX)
            .with_run_budget();
        let t0 = Now::new(
            Instant::now(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        assert!(matches!(m.poll(t0), ResendStep::Send { .. }));
        m.on_attempt(Heard::QueryFirst, t0);
        assert_eq!(m.poll(t0), ResendStep::Query);
        m.on_query(Settlement::SendAgain);
        let late = t0.plus(Duration::from_secs(11));
        assert_eq!(m.poll(late), ResendStep::Finished(Verdict::NotProcessed));
    }

    #[test]
    fn a_query_waits_until_every_unsettled_attempt_is_past_the_bound() {
        let bound = Duration::from_secs(30);
        let mut m = Resender::new(bounds(3), Rng::from_seed([0; 32]))
            .with_query(1)
            .with_query_not_before(bound);
        let t0 = Now::new(
            Instant::now(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        assert!(matches!(m.poll(t0), ResendStep::Send { .. }));
        let t1 = t0.plus(Duration::from_secs(2));
        m.on_attempt(Heard::QueryFirst, t1);
        // Sent at t0: no query before t0 + 30 s.
        assert_eq!(m.poll(t1), ResendStep::WaitUntil(t0.instant + bound));
        assert_eq!(m.queries(), 0);
        assert_eq!(m.poll(t0.plus(bound)), ResendStep::Query);
        // Without the setting, the query goes at once.
        let mut m = Resender::new(bounds(3), Rng::from_seed([0; 32])).with_query(1);
        assert!(matches!(m.poll(t0), ResendStep::Send { .. }));
        m.on_attempt(Heard::QueryFirst, t0);
        assert_eq!(m.poll(t0), ResendStep::Query);
    }

    #[test]
    fn unsettled_lists_maybe_processed_attempts_until_a_query_settles_them() {
        let mut m = Resender::new(bounds(3), Rng::from_seed([0; 32])).with_query(2);
        let t0 = Now::new(
            Instant::now(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let unsettled = |m: &Resender| m.unsettled().map(|(i, _)| i).collect::<Vec<_>>();
        assert!(matches!(m.poll(t0), ResendStep::Send { .. }));
        // The attempt in flight is not listed.
        assert!(unsettled(&m).is_empty());
        m.on_attempt(Heard::NotDelivered, t0);
        let t1 = t0.plus(Duration::from_secs(5));
        assert!(matches!(m.poll(t1), ResendStep::Send { .. }));
        m.on_attempt(Heard::Unknown, t1);
        assert_eq!(unsettled(&m), vec![1]);
        assert!(m.may_have_been_processed());
        let t2 = t1.plus(Duration::from_secs(5));
        assert!(matches!(m.poll(t2), ResendStep::Send { .. }));
        m.on_attempt(Heard::QueryFirst, t2);
        assert_eq!(unsettled(&m), vec![1, 2]);
        assert_eq!(m.poll(t2), ResendStep::Query);
        m.on_query(Settlement::SendAgain);
        assert!(unsettled(&m).is_empty());
        assert!(!m.may_have_been_processed());
    }

    #[test]
    fn a_withdrawn_attempt_is_forgotten_and_ends_the_run() {
        let t0 = Now::new(
            Instant::now(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let mut m = Resender::new(bounds(3), Rng::from_seed([0; 32]));
        assert!(matches!(m.poll(t0), ResendStep::Send { .. }));
        m.withdraw();
        assert_eq!((m.attempts(), m.records().len()), (0, 0));
        assert_eq!(m.poll(t0), ResendStep::Finished(Verdict::NotProcessed));
        // After an attempt that may have been processed: unknown, never "not processed".
        let mut m = Resender::new(bounds(3), Rng::from_seed([0; 32])).with_fresh_resends();
        assert!(matches!(m.poll(t0), ResendStep::Send { .. }));
        m.on_attempt(Heard::Unknown, t0);
        let t1 = t0.plus(Duration::from_secs(5));
        assert!(matches!(m.poll(t1), ResendStep::Send { fresh: true, .. }));
        m.withdraw();
        assert_eq!((m.attempts(), m.records().len()), (1, 1));
        assert_eq!(m.poll(t1), ResendStep::Finished(Verdict::Unknown));
        // Nothing in flight: ignored.
        m.withdraw();
        assert_eq!(m.records().len(), 1);
    }

    mod invariant {
        use proptest::prelude::*;

        use super::*;

        fn heard() -> impl Strategy<Value = Heard> {
            prop_oneof![
                Just(Heard::Nothing),
                Just(Heard::NotDelivered),
                Just(Heard::Unknown),
                Just(Heard::QueryFirst),
                Just(Heard::Refused),
                Just(Heard::Done),
            ]
        }

        fn settlement() -> impl Strategy<Value = Settlement> {
            prop_oneof![
                Just(Settlement::Done),
                Just(Settlement::NotDone),
                Just(Settlement::SendAgain),
                Just(Settlement::Unknown),
            ]
        }

        proptest! {
            /// DESIGN.md invariant 8, for any answers: once an attempt may have been
            /// processed, the end is "not processed" only if a query said so after it; and
            /// "done" only after a success or a query saying done.
            #[test]
            fn never_not_processed_after_a_maybe_without_a_query(
                attempts in 1u32..5,
                requests in 1u32..3,
                with_query in any::<bool>(),
                resumed in proptest::collection::vec(heard(), 0..3),
                answers in proptest::collection::vec(heard(), 0..12),
                settlements in proptest::collection::vec(settlement(), 0..6),
            ) {
                let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
                let mut m = Resender::new(bounds(attempts), crate::random::Rng::from_seed([4; 32]));
                if with_query {
                    m = m.with_query(requests);
                }
                let records: Vec<AttemptRecord> =
                    resumed.iter().map(|h| AttemptRecord::new(1, at, *h)).collect();
                // Whether something may have been processed that no later query settled.
                let mut unsettled = resumed.iter().any(|h| h.may_have_been_processed());
                let mut proven_done = false;
                let mut proven_not = false;
                m = m.resume(records);
                let mut now = Now::new(Instant::now(), at);
                let (mut answers, mut settlements) = (answers.into_iter(), settlements.into_iter());
                let verdict = loop {
                    match m.poll(now) {
                        ResendStep::Send { .. } => {
                            let h = answers.next().unwrap_or(Heard::Unknown);
                            unsettled |= h.may_have_been_processed();
                            proven_done |= h == Heard::Done;
                            proven_not = false;
                            m.on_attempt(h, now);
                        }
                        ResendStep::Query => {
                            let s = settlements.next().unwrap_or(Settlement::Unknown);
                            match s {
                                Settlement::Done => proven_done = true,
                                Settlement::NotDone | Settlement::SendAgain => {
                                    unsettled = false;
                                    proven_not = true;
                                }
                                _ => {}
                            }
                            m.on_query(s);
                        }
                        ResendStep::WaitUntil(t) => now = now.plus(t - now.instant),
                        ResendStep::Finished(v) => break v,
                        other => panic!("{other:?}"),
                    }
                };
                match verdict {
                    Verdict::NotProcessed => prop_assert!(
                        !unsettled || proven_not,
                        "not processed after a maybe-processed attempt without a query"
                    ),
                    Verdict::Done => prop_assert!(
                        proven_done || resumed.contains(&Heard::Done),
                        "done without a success or a query saying so"
                    ),
                    _ => {}
                }
            }
        }
    }
}
