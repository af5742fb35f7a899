//! Retrying one cancellation, as a pure state machine.
//!
//! [`Cancellation`] owns one logical cancel. It never touches a socket or a clock: the caller
//! asks it what to do next with [`Cancellation::poll`], passing the time, does it (send the
//! bytes, wait), and reports what happened with [`Cancellation::on_delivery`]. Tests drive it
//! with a virtual clock and canned deliveries; `kicc-transport` drives it with real ones.
//!
//! # The rules, in one place
//!
//! Every attempt ends in one of three ways: **tied** (an answer that is this request's),
//! **not processed** (certainly, e.g. the connection was never made), or **maybe processed**
//! (a timeout, a lost connection, HTTP 5xx, an unreadable answer, a retry code, or a success
//! answer that is not tied to this request).
//!
//! - **Tied** ([`tie`]): `resCd` 0000 echoing this request's key, `pgCno` and amount (when
//!   the amount is known), and not dated before this request was first sent (less
//!   [`RetryPolicy::clock_skew`]). A `0000` about another payment or another amount is never
//!   a success. The answer to a refund query (`refundQueryFlag = "Y"`) never ties by itself.
//! - **After a maybe-processed attempt**, only a tied success ends the cancel as done; a later
//!   decline or refusal makes it [`Error::Ambiguous`](crate::Error::Ambiguous), never "did not happen" (invariant 8).
//! - **Alipay / WeChat Pay** ([`RetryStyle::SameRequest`]): resend the identical bytes (same
//!   key, same first `cancelReqDate`, even after midnight). The gateway answers a resent key
//!   with the first attempt's result, which ties or not like any answer.
//! - **Generic** ([`RetryStyle::LookUp`]): never resend blindly. Wait until every
//!   maybe-processed attempt's send time plus [`RetryPolicy::processing_bound`] (a request may
//!   still be in flight after the client gave up on it), then look up each of those keys with
//!   its own Korea date (and the next day, if the bound crossed Korea midnight) through
//!   `/api/trades/retrieveTransaction` ([`crate::lookup`]). A tied look-up is the success; a
//!   look-up that fails, is refused, falls outside its window (today and yesterday in Korea)
//!   or finds an untied cancel is [`Error::Ambiguous`](crate::Error::Ambiguous) with what was found. Only when every
//!   key is "not found" ([`RetryPolicy::lookup_not_found_codes`]) is the request proven not
//!   processed, and only then may a new attempt go out, with a new key and today's date.
//! - **Not delivered** (connection never made): resend the same request (generic: refresh
//!   the date if the Korea day changed; the key was never used).
//!
//! The table of what each observation leads to is [`decide`]; the tie rule is [`tie`]; the
//! state machine only sequences them.
//!
//! # Resuming
//!
//! [`Cancellation::resume`] starts from recorded attempts ([`SentAttempt`]: key, Korea date,
//! send time): a generic cancel looks them up before anything new is sent; a wallet cancel
//! resends the stored identical message, and any decline is then ambiguous.
//!
//! # One retry model for KICC and WeChat Pay direct
//!
//! This module is protocol-neutral at its base, and `wechatpay-direct` uses it rather than a
//! retry model of its own (it depends on `kicc-core` already; a separate crate would have been
//! one more thing to publish for the same three ideas):
//!
//! - **one policy type** where the concepts coincide: [`AttemptBounds`] (attempts, backoff,
//!   deadline); KICC's [`RetryPolicy`] adds KICC's facts on top ([`RetryPolicy::bounds`]),
//!   WeChat Pay's policy adds how many revokes a settle may sign;
//! - **one backoff function**, [`backoff_delay`], and one deadline rule, [`starts_in_time`];
//! - **one mapping** of an attempt without an answer to "not delivered / maybe delivered":
//!   [`Delivery::NotDelivered`] / [`Delivery::Unknown`], or [`Heard::NotDelivered`] /
//!   [`Heard::Unknown`], decided by kicc-transport's `driver::never_delivered` for both
//!   clients (a refused connection is "not delivered" and is resent in both);
//! - **the same rules** on what an unknown outcome allows (invariant 8: never "not processed"
//!   after a maybe-processed attempt unless a look-up or query proves it).
//!
//! What differs by protocol is a parameter of the model, not a second model: KICC's channels
//! pick a [`RetryStyle`] (resend identically, or look up by key) and drive [`Cancellation`];
//! WeChat Pay direct drives [`Resender`] with a status query: identical signed bytes on 5xx and
//! timeouts ([`Heard::Unknown`]), `SYSTEM_ERROR` straight to the order query
//! ([`Heard::QueryFirst`]), and the order's `trade_state` read as a [`Settlement`]. Both resume
//! from recorded attempts ([`Cancellation::resume`], [`Resender::resume`]).

mod bounds;
mod machine;
mod resend;
mod table;
mod tie;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::date::KoreaDate;
use crate::error::FieldError;
use crate::random::Rng;
use crate::revise::Channel;
use crate::text::ShopTransactionId;

pub use crate::revise::RetryStyle;
pub use bounds::{backoff_delay, starts_in_time, AttemptBounds, AttemptBoundsBuilder};
pub use machine::{Action, Cancellation, InFlight};
pub use resend::{AttemptRecord, Heard, ResendStep, Resender, Settlement, Verdict};
pub use table::{decide, Decision, Observed, ResendKind};
pub use tie::{tie, Tie};

/// The time, as the caller's clocks tell it: a monotonic instant for scheduling and the wall
/// clock for Korea dates, idempotency keys and comparing with the gateway's timestamps.
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

    /// This time plus `d` on both clocks (saturating at the clocks' ends).
    pub fn plus(self, d: Duration) -> Self {
        Now {
            instant: self.instant.checked_add(d).unwrap_or(self.instant),
            wall: self.wall.checked_add(d).unwrap_or(self.wall),
        }
    }
}

/// Bounds on retrying one cancellation, and the gateway facts the retries rely on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most attempts, the first included (at least 1). Look-ups are not attempts.
    pub max_attempts: u32,
    /// The delay before the second attempt; it doubles for each later one.
    pub initial_backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// No new attempt starts later than this after the first one. `Duration::MAX` means no
    /// deadline.
    pub deadline: Duration,
    /// How long a request may still be processed by the gateway after it was sent (KICC
    /// documents a 30 s processing time). Look-ups of a key wait this long after its send.
    pub processing_bound: Duration,
    /// How far the gateway's clock may be behind ours: an answer dated earlier than this
    /// request's first send minus this allowance describes an earlier cancel, not this one.
    pub clock_skew: Duration,
    /// The `resCd`s with which `retrieveTransaction` says "no such transaction". KICC does not
    /// document this code, so the default is EMPTY: no look-up can then prove "not
    /// processed", and an unknown outcome stays [`Error::Ambiguous`](crate::Error::Ambiguous) (safe, never a second
    /// cancel). Set it to the code KICC gives you; the sandbox answers `R001`.
    pub lookup_not_found_codes: Vec<String>,
    /// Send the new attempt that follows a proven "not processed" with `refundQueryFlag = "Y"`
    /// (the API's documented resend). Off by default: after every key was looked up and found
    /// absent, a plain cancel is exact, while a refund query may be answered with an EARLIER,
    /// equal refund that is not this request's.
    pub refund_query_on_resend: bool,
}

impl Default for RetryPolicy {
    /// 4 attempts, backoff from 1 s doubling to at most 8 s with jitter, within 3 minutes;
    /// 30 s processing bound; 2 minutes of clock skew; no known "not found" code.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            deadline: Duration::from_secs(180),
            processing_bound: Duration::from_secs(30),
            clock_skew: Duration::from_secs(120),
            lookup_not_found_codes: Vec::new(),
            refund_query_on_resend: false,
        }
    }
}

impl RetryPolicy {
    /// The delay after attempt number `attempt` (1-based): half of the exponential step plus a
    /// random share of the other half, so many clients do not retry in lockstep.
    pub fn backoff(&self, attempt: u32, rng: &mut Rng) -> Duration {
        backoff_delay(self.initial_backoff, self.max_backoff, attempt, rng)
    }

    /// Whether `code` is one of [`RetryPolicy::lookup_not_found_codes`].
    pub fn is_not_found(&self, code: &str) -> bool {
        self.lookup_not_found_codes.iter().any(|c| c == code)
    }
}

/// One attempt that reached (or may have reached) the gateway: what a resume needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentAttempt {
    /// Its `shopTransactionId`.
    pub key: ShopTransactionId,
    /// Its `cancelReqDate`, the Korea date it is looked up under.
    pub date: KoreaDate,
    /// When it was sent, if known. Unknown (a resume from a key and date only): look-ups wait
    /// a full processing bound from the resume, and answers dated from the start of its
    /// Korea day count as possibly its own.
    pub sent_at: Option<SystemTime>,
    /// Whether it carried `refundQueryFlag = "Y"` (its answer never ties by itself).
    pub refund_query: bool,
}

impl SentAttempt {
    /// `KEY@yyyyMMdd`, as `kicc cancel --resume-key` takes it.
    pub fn resume_key(&self) -> String {
        format!("{}@{}", self.key, self.date)
    }
}

/// What a response body said, as the channel reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interpreted<T> {
    /// `resCd` 0000 and a readable response (not yet checked to be this request's: [`tie`]).
    Success(T),
    /// Any other `resCd`.
    Gateway {
        /// `resCd`.
        res_cd: String,
        /// `resMsg`.
        res_msg: String,
        /// `resDetailMsg`, form-decoded, if present.
        detail: Option<String>,
    },
    /// Not a response this channel can read.
    Unreadable(String),
}

/// How the next attempt must differ from the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resend {
    /// Resend the undelivered request; `now` for a date refresh.
    Undelivered {
        /// The time of the new attempt.
        now: SystemTime,
    },
    /// Every earlier key was proven not processed: a new cancel with `new_key`, dated `now`.
    Fresh {
        /// The new `shopTransactionId`.
        new_key: ShopTransactionId,
        /// The time of the new attempt.
        now: SystemTime,
        /// Whether to send it with `refundQueryFlag = "Y"`.
        refund_query: bool,
    },
}

/// What an answer must say to be this request's (see [`tie`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The payment this request cancels.
    pub pg_cno: &'a str,
    /// The amount it cancels in minor units, when known (partial cancels; a full cancel when
    /// the caller gave the balance).
    pub amount: Option<u64>,
}

/// What a gateway answer says about the request it answers: implemented by each response.
pub trait Describes {
    /// The echoed `shopTransactionId` (empty if absent).
    fn described_key(&self) -> &str;
    /// The payment it is about (`oriPgCno` / `pgCno`; empty if absent).
    fn described_pg_cno(&self) -> &str;
    /// The amount it cancelled, in minor units, if stated.
    fn described_amount(&self) -> Option<u64>;
    /// `transactionDate` (`yyyyMMddHHmmss`, Korea time; empty if absent).
    fn transaction_date(&self) -> &str;
    /// The cancel it describes (`cancelPgCno`; empty if absent).
    fn described_cancel_pg_cno(&self) -> &str;
}

/// One channel's request and how to read its answers; implemented by the channel crates.
pub trait Exchange {
    /// What a successful response gives the caller.
    type Output: Describes;
    /// The channel, for code classification and the retry style.
    fn channel(&self) -> Channel;
    /// The request for the next attempt.
    fn request(&self) -> &http::Request<Bytes>;
    /// The `shopTransactionId` in [`Exchange::request`].
    fn shop_transaction_id(&self) -> &ShopTransactionId;
    /// The `cancelReqDate` in [`Exchange::request`] (`None` for messages without one).
    fn request_date(&self) -> Option<KoreaDate>;
    /// How this exchange is retried (by default, its channel's style).
    fn retry_style(&self) -> RetryStyle {
        self.channel().retry_style()
    }
    /// Whether [`Exchange::request`] is a refund query (`refundQueryFlag = "Y"`).
    fn is_refund_query(&self) -> bool {
        false
    }
    /// What an answer must echo to be this request's.
    fn expected(&self) -> Expected<'_>;
    /// Reads an HTTP 200 body (the answer to the request keyed `key`, or a look-up of it).
    fn interpret(&self, body: &[u8]) -> Interpreted<Self::Output>;
    /// Rebuilds the request for a resend (never called with [`RetryStyle::SameRequest`]).
    fn prepare_resend(&mut self, resend: Resend) -> Result<(), FieldError>;
    /// The look-up of `key` under Korea date `date` (`retrieveTransaction`), for channels of
    /// [`RetryStyle::LookUp`]; `None` where the channel has no look-up.
    fn lookup(
        &self,
        _key: &ShopTransactionId,
        _date: KoreaDate,
    ) -> Option<Result<http::Request<Bytes>, FieldError>> {
        None
    }
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
