//! Retrying one cancellation, as a pure state machine.
//!
//! [`Cancellation`] owns one logical cancel. It never touches a socket or a clock: the caller
//! asks it what to do next with [`Cancellation::poll`], passing the time, does it (send the
//! bytes, wait), and reports what happened with [`Cancellation::on_delivery`]. Tests drive it
//! with a virtual clock and canned deliveries; `kicc-transport` drives it with real ones.
//!
//! The decision for every observation is the pure function [`decide`], one table:
//!
//! | observed | Alipay / WeChat Pay ([`RetryStyle::SameRequest`]) | generic ([`RetryStyle::RefundQuery`]) |
//! |---|---|---|
//! | `resCd` 0000 | done | done |
//! | any other final `resCd` | declined | declined |
//! | `A210`..`A219` | resend identical bytes | — |
//! | `VTIM` / `VT00` | — | resend with `refundQueryFlag=Y`, new key, today |
//! | timeout, lost connection, HTTP 5xx/408/429, unreadable 200 | resend identical bytes | resend with `refundQueryFlag=Y`, new key, today |
//! | connection never made | resend (same key; generic refreshes the date) | same |
//! | other HTTP status | stop | stop |
//!
//! When attempts or time run out, the outcome is [`Error::Ambiguous`] if any attempt may have
//! reached KICC, and [`Error::Transport`] (certainly not cancelled) if none did.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::codes::{classify, ResponseClass};
use crate::error::{Error, FieldError, GatewayError};
use crate::random::Rng;
use crate::revise::{Channel, RetryStyle};
use crate::text::ShopTransactionId;

/// The time, as the caller's clocks tell it: a monotonic instant for scheduling and the wall
/// clock for Korea dates and idempotency keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for backoff and deadlines.
    pub instant: Instant,
    /// Wall-clock time, for `cancelReqDate` and generated keys.
    pub wall: SystemTime,
}

impl Now {
    /// A point in time.
    pub fn new(instant: Instant, wall: SystemTime) -> Self {
        Now { instant, wall }
    }

    /// This time plus `d` on both clocks.
    pub fn plus(self, d: Duration) -> Self {
        Now {
            instant: self.instant + d,
            wall: self.wall + d,
        }
    }
}

/// Bounds on retrying one cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most attempts, the first included (at least 1).
    pub max_attempts: u32,
    /// The delay before the second attempt; it doubles for each later one.
    pub initial_backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// No new attempt starts later than this after the first one.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, backoff from 1 s doubling to at most 8 s with jitter, within 3 minutes.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            deadline: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// The delay after attempt number `attempt` (1-based): half of the exponential step plus a
    /// random share of the other half, so many clients do not retry in lockstep.
    pub fn backoff(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let step = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let half = step / 2;
        let jitter_ms = rng.below_or_equal(u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
        half + Duration::from_millis(jitter_ms)
    }
}

/// What a response body said, as the channel reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interpreted<T> {
    /// `resCd` 0000 and a readable response.
    Success(T),
    /// Any other `resCd`.
    Gateway {
        /// `resCd`.
        res_cd: String,
        /// `resMsg`.
        res_msg: String,
    },
    /// Not a response this channel can read.
    Unreadable(String),
}

/// How the next attempt must differ from the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendKind {
    /// The same bytes (Alipay / WeChat Pay: same key, same `cancelReqDate`).
    Identical,
    /// The last request never reached KICC: send it again (the generic API refreshes
    /// `cancelReqDate` if the Korea date changed; the key is unused so it stays).
    Undelivered,
    /// Generic API: learn the unknown outcome with `refundQueryFlag = "Y"`, a new key and today's date.
    RefundQuery,
}

/// What the channel must change before the next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resend {
    /// Resend the undelivered request; `now` for a date refresh.
    Undelivered {
        /// The time of the new attempt.
        now: SystemTime,
    },
    /// Resend as a refund query with `new_key`.
    RefundQuery {
        /// The new `shopTransactionId`.
        new_key: ShopTransactionId,
        /// The time of the new attempt.
        now: SystemTime,
    },
}

/// One channel's request and how to read its answers; implemented by the channel crates.
pub trait Exchange {
    /// What a successful response gives the caller.
    type Output;
    /// The channel, for code classification and the retry style.
    fn channel(&self) -> Channel;
    /// The request for the next attempt.
    fn request(&self) -> &http::Request<Bytes>;
    /// The `shopTransactionId` in [`Exchange::request`].
    fn shop_transaction_id(&self) -> &ShopTransactionId;
    /// Reads an HTTP 200 body.
    fn interpret(&self, body: &[u8]) -> Interpreted<Self::Output>;
    /// Rebuilds the request for a resend (never called with [`RetryStyle::SameRequest`]).
    fn prepare_resend(&mut self, resend: Resend) -> Result<(), FieldError>;
}

/// How one attempt ended, as the transport saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// A complete HTTP response.
    Response {
        /// The HTTP status.
        status: u16,
        /// The body.
        body: &'a [u8],
    },
    /// The request certainly never reached the server (connection refused, DNS, TLS handshake).
    NotDelivered {
        /// What failed.
        reason: &'a str,
    },
    /// The request may have reached the server, but no response came (timeout, connection lost).
    Unknown {
        /// What failed.
        reason: &'a str,
    },
}

/// An observation, reduced to what matters for the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// `A210`..`A219`.
    GatewayRetry,
    /// `VTIM` / `VT00`.
    GatewayRefundQuery,
    /// HTTP 5xx, 408, 429, a timeout, a lost connection, or an unreadable 200: maybe processed.
    OutcomeUnknown,
    /// The connection was never made.
    NotDelivered,
    /// Another HTTP status: refused before processing.
    Rejected,
}

/// What to do about an observation that is not a final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again, changed as said.
    Retry(ResendKind),
    /// Stop: no retry can help.
    Stop,
}

/// The retry table (see the module docs): what a channel with `style` does after `observed`.
pub fn decide(style: RetryStyle, observed: Observed) -> Decision {
    use Decision::*;
    use Observed::*;
    match (style, observed) {
        (_, Rejected) => Stop,
        (_, NotDelivered) => Retry(ResendKind::Undelivered),
        (RetryStyle::SameRequest, GatewayRetry | GatewayRefundQuery | OutcomeUnknown) => {
            Retry(ResendKind::Identical)
        }
        (RetryStyle::RefundQuery, GatewayRetry | GatewayRefundQuery | OutcomeUnknown) => {
            Retry(ResendKind::RefundQuery)
        }
    }
}

impl Observed {
    /// Whether the attempt may have been processed by KICC.
    pub fn may_have_been_processed(self) -> bool {
        !matches!(self, Observed::NotDelivered | Observed::Rejected)
    }
}

/// The next thing to do for a cancellation.
#[derive(Debug)]
pub enum Action<'a, T> {
    /// Send this request, then report how it went with [`Cancellation::on_delivery`].
    Send(&'a http::Request<Bytes>),
    /// A request is in flight: report its result with [`Cancellation::on_delivery`].
    AwaitDelivery,
    /// Nothing to do before this instant; poll again then.
    WaitUntil(Instant),
    /// Finished. Returned once; later polls say the outcome was already taken.
    Done(Result<T, Error>),
}

enum State<T> {
    Ready(Option<ResendKind>),
    InFlight,
    Backoff { until: Instant, then: ResendKind },
    Finished(Option<Result<T, Error>>),
}

/// One logical cancellation and its retries. See the module docs.
pub struct Cancellation<E: Exchange> {
    exchange: E,
    policy: RetryPolicy,
    rng: Rng,
    state: State<E::Output>,
    attempts: u32,
    started: Option<Instant>,
    maybe_processed: bool,
    last_reason: String,
    last_res_cd: Option<String>,
}

impl<E: Exchange> Cancellation<E> {
    /// Starts a cancellation of `exchange`'s request. `rng` gives the backoff jitter and the
    /// random part of any new key (seed it from the OS in production).
    pub fn new(exchange: E, policy: RetryPolicy, rng: Rng) -> Self {
        Cancellation {
            exchange,
            policy: RetryPolicy {
                max_attempts: policy.max_attempts.max(1),
                ..policy
            },
            rng,
            state: State::Ready(None),
            attempts: 0,
            started: None,
            maybe_processed: false,
            last_reason: String::new(),
            last_res_cd: None,
        }
    }

    /// The channel's exchange (its current request, key, ...).
    pub fn exchange(&self) -> &E {
        &self.exchange
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether any attempt so far may have been processed by KICC.
    pub fn may_have_been_processed(&self) -> bool {
        self.maybe_processed
    }

    /// What to do next, at `now`.
    pub fn poll(&mut self, now: Now) -> Action<'_, E::Output> {
        loop {
            match &mut self.state {
                State::Finished(outcome) => {
                    return Action::Done(outcome.take().unwrap_or_else(|| {
                        Err(self.ambiguous(
                            "the outcome of this cancellation was already returned".into(),
                        ))
                    }))
                }
                State::InFlight => return Action::AwaitDelivery,
                State::Backoff { until, then } => {
                    if now.instant < *until {
                        return Action::WaitUntil(*until);
                    }
                    let then = *then;
                    self.state = State::Ready(Some(then));
                }
                State::Ready(resend) => {
                    let resend = resend.take();
                    if let Err(e) = self.apply_resend(resend, now) {
                        let outcome = if self.maybe_processed {
                            Err(self.ambiguous(format!("could not rebuild the request: {e}")))
                        } else {
                            Err(Error::Invalid(e))
                        };
                        self.state = State::Finished(Some(outcome));
                        continue;
                    }
                    self.started.get_or_insert(now.instant);
                    self.attempts += 1;
                    self.state = State::InFlight;
                    return Action::Send(self.exchange.request());
                }
            }
        }
    }

    fn apply_resend(&mut self, resend: Option<ResendKind>, now: Now) -> Result<(), FieldError> {
        match resend {
            None | Some(ResendKind::Identical) => Ok(()),
            Some(ResendKind::Undelivered) => {
                if self.exchange.channel().retry_style() == RetryStyle::SameRequest {
                    return Ok(());
                }
                self.exchange
                    .prepare_resend(Resend::Undelivered { now: now.wall })
            }
            Some(ResendKind::RefundQuery) => {
                let new_key = ShopTransactionId::generate(now.wall, &mut self.rng);
                self.exchange.prepare_resend(Resend::RefundQuery {
                    new_key,
                    now: now.wall,
                })
            }
        }
    }

    /// Reports how the request returned by the last [`Action::Send`] went.
    /// Ignored unless a request is in flight.
    pub fn on_delivery(&mut self, delivery: Delivery<'_>, now: Now) {
        if !matches!(self.state, State::InFlight) {
            return;
        }
        let channel = self.exchange.channel();
        let observed = match delivery {
            Delivery::Response { status: 200, body } => match self.exchange.interpret(body) {
                Interpreted::Success(out) => {
                    self.state = State::Finished(Some(Ok(out)));
                    return;
                }
                Interpreted::Gateway { res_cd, res_msg } => {
                    self.last_res_cd = Some(res_cd.clone());
                    self.last_reason = format!("resCd {res_cd}: {res_msg}");
                    match classify(channel, &res_cd) {
                        ResponseClass::Declined => {
                            let err = Error::Declined(GatewayError {
                                res_cd,
                                res_msg,
                                shop_transaction_id: self.key(),
                            });
                            self.state = State::Finished(Some(Err(err)));
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
        self.maybe_processed |= observed.may_have_been_processed();
        match decide(channel.retry_style(), observed) {
            Decision::Stop => self.stop(),
            Decision::Retry(kind) => {
                let delay = self.policy.backoff(self.attempts, &mut self.rng);
                let started = self.started.unwrap_or(now.instant);
                let out_of_time = now.instant + delay > started + self.policy.deadline;
                if self.attempts >= self.policy.max_attempts || out_of_time {
                    self.stop();
                } else {
                    self.state = State::Backoff {
                        until: now.instant + delay,
                        then: kind,
                    };
                }
            }
        }
    }

    fn key(&self) -> String {
        self.exchange.shop_transaction_id().as_str().to_owned()
    }

    fn ambiguous(&self, reason: String) -> Error {
        Error::Ambiguous {
            reason,
            shop_transaction_id: self.key(),
            attempts: self.attempts,
            last_res_cd: self.last_res_cd.clone(),
        }
    }

    fn stop(&mut self) {
        let reason = std::mem::take(&mut self.last_reason);
        let err = if self.maybe_processed {
            self.ambiguous(reason)
        } else {
            Error::Transport {
                reason,
                shop_transaction_id: self.key(),
            }
        };
        self.state = State::Finished(Some(Err(err)));
    }
}

impl<E: Exchange> std::fmt::Debug for Cancellation<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellation")
            .field("channel", &self.exchange.channel())
            .field("shop_transaction_id", self.exchange.shop_transaction_id())
            .field("attempts", &self.attempts)
            .field("maybe_processed", &self.maybe_processed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Envelope;
    use std::time::UNIX_EPOCH;

    /// A minimal exchange: the body is `key|date|flag`, answers are JSON envelopes.
    struct Fake {
        channel: Channel,
        key: ShopTransactionId,
        date: crate::date::KoreaDate,
        flag: bool,
        request: http::Request<Bytes>,
        resends: Vec<Resend>,
    }

    impl Fake {
        fn new(channel: Channel, wall: SystemTime) -> Self {
            let key = ShopTransactionId::new("FIRSTKEY").unwrap();
            let date = crate::date::KoreaDate::of(wall);
            let mut f = Fake {
                channel,
                key,
                date,
                flag: false,
                request: http::Request::new(Bytes::new()),
                resends: vec![],
            };
            f.rebuild();
            f
        }
        fn rebuild(&mut self) {
            let body = format!(
                "{}|{}|{}",
                self.key,
                self.date,
                if self.flag { "Y" } else { "N" }
            );
            self.request = http::Request::new(Bytes::from(body));
        }
        fn body(r: &http::Request<Bytes>) -> String {
            String::from_utf8(r.body().to_vec()).unwrap()
        }
    }

    impl Exchange for Fake {
        type Output = String;
        fn channel(&self) -> Channel {
            self.channel
        }
        fn request(&self) -> &http::Request<Bytes> {
            &self.request
        }
        fn shop_transaction_id(&self) -> &ShopTransactionId {
            &self.key
        }
        fn interpret(&self, body: &[u8]) -> Interpreted<String> {
            match Envelope::read(body) {
                Some(e) if e.res_cd == "0000" => Interpreted::Success(e.res_msg),
                Some(e) => Interpreted::Gateway {
                    res_cd: e.res_cd,
                    res_msg: e.res_msg,
                },
                None => Interpreted::Unreadable("not JSON".into()),
            }
        }
        fn prepare_resend(&mut self, resend: Resend) -> Result<(), FieldError> {
            match &resend {
                Resend::Undelivered { now } => self.date = crate::date::KoreaDate::of(*now),
                Resend::RefundQuery { new_key, now } => {
                    self.key = new_key.clone();
                    self.date = crate::date::KoreaDate::of(*now);
                    self.flag = true;
                }
            }
            self.resends.push(resend);
            self.rebuild();
            Ok(())
        }
    }

    fn ok() -> &'static [u8] {
        br#"{"resCd":"0000","resMsg":"done"}"#
    }

    /// Drives a cancellation through scripted deliveries on a virtual clock; returns the sent
    /// bodies and the outcome.
    fn run(
        channel: Channel,
        start_wall: SystemTime,
        script: &[Delivery<'_>],
        policy: RetryPolicy,
    ) -> (Vec<String>, Result<String, Error>, Duration) {
        let start = Instant::now();
        let mut now = Now::new(start, start_wall);
        let mut c = Cancellation::new(
            Fake::new(channel, start_wall),
            policy,
            Rng::from_seed([3; 32]),
        );
        let mut sent = vec![];
        let mut script = script.iter();
        loop {
            match c.poll(now) {
                Action::Send(req) => {
                    sent.push(Fake::body(req));
                    let d = *script.next().expect("script too short");
                    now = now.plus(Duration::from_millis(10));
                    c.on_delivery(d, now);
                }
                Action::WaitUntil(t) => {
                    assert!(t > now.instant);
                    now = now.plus(t - now.instant);
                }
                Action::AwaitDelivery => panic!("polled while in flight"),
                Action::Done(r) => return (sent, r, now.instant - start),
            }
        }
    }

    const TIMEOUT: Delivery<'static> = Delivery::Unknown {
        reason: "timed out",
    };
    const REFUSED: Delivery<'static> = Delivery::NotDelivered { reason: "refused" };
    fn code(b: &'static [u8]) -> Delivery<'static> {
        Delivery::Response {
            status: 200,
            body: b,
        }
    }

    fn late_evening() -> SystemTime {
        // 2026-11-21 23:59:59.500 KST: any retry (backoff >= 0.5 s) lands on the 22nd in Korea.
        UNIX_EPOCH + Duration::from_millis(1_795_273_199_500)
    }

    #[test]
    fn decision_table() {
        use Decision::*;
        use Observed::*;
        use ResendKind::*;
        let same = RetryStyle::SameRequest;
        let rq = RetryStyle::RefundQuery;
        let table = [
            (same, GatewayRetry, Retry(Identical)),
            (same, OutcomeUnknown, Retry(Identical)),
            (same, NotDelivered, Retry(Undelivered)),
            (same, Rejected, Stop),
            (rq, GatewayRefundQuery, Retry(RefundQuery)),
            (rq, OutcomeUnknown, Retry(RefundQuery)),
            (rq, NotDelivered, Retry(Undelivered)),
            (rq, Rejected, Stop),
        ];
        for (style, obs, want) in table {
            assert_eq!(decide(style, obs), want, "{style:?} {obs:?}");
        }
    }

    #[test]
    fn alipay_timeout_and_a212_resend_identical_bytes_even_across_midnight() {
        let (sent, out, _) = run(
            Channel::Alipay,
            late_evening(),
            &[
                TIMEOUT,
                code(br#"{"resCd":"A212","resMsg":"retry"}"#),
                code(ok()),
            ],
            RetryPolicy::default(),
        );
        assert_eq!(out.unwrap(), "done");
        assert_eq!(sent.len(), 3);
        // Same key, same (first attempt's) date, although the retries happen after midnight KST.
        assert!(sent.iter().all(|b| b == "FIRSTKEY|20261121|N"), "{sent:?}");
    }

    #[test]
    fn generic_timeout_resends_with_refund_query_new_key_and_todays_date() {
        let (sent, out, _) = run(
            Channel::Generic,
            late_evening(),
            &[
                TIMEOUT,
                code(br#"{"resCd":"VTIM","resMsg":"t"}"#),
                code(ok()),
            ],
            RetryPolicy::default(),
        );
        assert_eq!(out.unwrap(), "done");
        assert_eq!(sent[0], "FIRSTKEY|20261121|N");
        let parts: Vec<Vec<&str>> = sent.iter().map(|s| s.split('|').collect()).collect();
        // The resends use new, distinct keys, the flag, and the date of the resend (next day in Korea).
        assert_ne!(parts[1][0], "FIRSTKEY");
        assert_ne!(parts[2][0], parts[1][0]);
        assert_eq!(&parts[1][1..], ["20261122", "Y"]);
        assert_eq!(&parts[2][1..], ["20261122", "Y"]);
    }

    #[test]
    fn undelivered_is_resent_and_then_reported_as_not_cancelled() {
        let (sent, out, _) = run(
            Channel::Generic,
            late_evening(),
            &[REFUSED, REFUSED, REFUSED, REFUSED],
            RetryPolicy::default(),
        );
        assert_eq!(sent.len(), 4);
        // The key never reached KICC so it is kept; the date follows the Korea day.
        assert!(sent.iter().all(|b| b.starts_with("FIRSTKEY|")));
        assert!(sent[1].ends_with("20261122|N"));
        let err = out.unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{err:?}");
        assert!(err.certainly_not_cancelled());
    }

    #[test]
    fn exhausted_after_a_possible_delivery_is_ambiguous() {
        let (sent, out, _) = run(
            Channel::Alipay,
            late_evening(),
            &[TIMEOUT, REFUSED, REFUSED, REFUSED],
            RetryPolicy::default(),
        );
        assert_eq!(sent.len(), 4);
        let err = out.unwrap_err();
        assert!(err.is_ambiguous(), "{err:?}");
        match err {
            Error::Ambiguous {
                attempts,
                shop_transaction_id,
                ..
            } => {
                assert_eq!(attempts, 4);
                assert_eq!(shop_transaction_id, "FIRSTKEY");
            }
            _ => unreachable!(),
        }
        let (_, out, _) = run(
            Channel::Alipay,
            late_evening(),
            &[code(br#"{"resCd":"A211","resMsg":"x"}"#); 4],
            RetryPolicy::default(),
        );
        assert_eq!(out.unwrap_err().res_cd(), Some("A211"));
    }

    #[test]
    fn declines_are_final_and_carry_code_message_and_key() {
        let (sent, out, _) = run(
            Channel::Generic,
            late_evening(),
            &[code(br#"{"resCd":"8521","resMsg":"issuer declined"}"#)],
            RetryPolicy::default(),
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(
            out.unwrap_err(),
            Error::Declined(GatewayError {
                res_cd: "8521".into(),
                res_msg: "issuer declined".into(),
                shop_transaction_id: "FIRSTKEY".into()
            })
        );
    }

    #[test]
    fn http_statuses() {
        let r500 = Delivery::Response {
            status: 500,
            body: b"oops",
        };
        let r404 = Delivery::Response {
            status: 404,
            body: b"",
        };
        let (sent, out, _) = run(
            Channel::WeChat,
            late_evening(),
            &[r500, code(ok())],
            RetryPolicy::default(),
        );
        assert_eq!((sent.len(), out.unwrap().as_str()), (2, "done"));
        let (_, out, _) = run(
            Channel::WeChat,
            late_evening(),
            &[r404],
            RetryPolicy::default(),
        );
        assert!(matches!(out.unwrap_err(), Error::Transport { .. }));
        let (_, out, _) = run(
            Channel::WeChat,
            late_evening(),
            &[TIMEOUT, r404],
            RetryPolicy::default(),
        );
        assert!(out.unwrap_err().is_ambiguous());
        // HTTP 200 without a resCd: outcome unknown, retried.
        let (sent, out, _) = run(
            Channel::Alipay,
            late_evening(),
            &[code(b"<html>"), code(ok())],
            RetryPolicy::default(),
        );
        assert_eq!((sent.len(), out.is_ok()), (2, true));
    }

    #[test]
    fn backoff_grows_with_jitter_and_respects_the_deadline() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(4),
            deadline: Duration::from_secs(8),
        };
        let (sent, out, elapsed) = run(Channel::Alipay, late_evening(), &[TIMEOUT; 10], policy);
        assert!(out.unwrap_err().is_ambiguous());
        assert!(
            sent.len() < 10,
            "deadline must stop early, sent {}",
            sent.len()
        );
        assert!(elapsed <= Duration::from_secs(8) + Duration::from_millis(100));
        let mut rng = Rng::from_seed([9; 32]);
        for attempt in 1..8 {
            let d = policy.backoff(attempt, &mut rng);
            let step = Duration::from_secs(1 << (attempt - 1)).min(policy.max_backoff);
            assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?}");
        }
        let delays: Vec<_> = (0..5).map(|_| policy.backoff(3, &mut rng)).collect();
        assert!(
            delays.windows(2).any(|w| w[0] != w[1]),
            "no jitter: {delays:?}"
        );
    }

    #[test]
    fn outcome_is_returned_once_and_deliveries_out_of_turn_are_ignored() {
        let start = Instant::now();
        let now = Now::new(start, late_evening());
        let mut c = Cancellation::new(
            Fake::new(Channel::Alipay, late_evening()),
            RetryPolicy::default(),
            Rng::from_seed([0; 32]),
        );
        c.on_delivery(code(ok()), now); // nothing in flight: ignored
        assert!(matches!(c.poll(now), Action::Send(_)));
        assert!(matches!(c.poll(now), Action::AwaitDelivery));
        c.on_delivery(code(ok()), now);
        assert!(matches!(c.poll(now), Action::Done(Ok(_))));
        assert!(matches!(
            c.poll(now),
            Action::Done(Err(Error::Ambiguous { .. }))
        ));
        assert_eq!(c.attempts(), 1);
    }
}
