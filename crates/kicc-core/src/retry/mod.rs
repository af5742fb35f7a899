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
//! - **Alipay / WeChat Pay** ([`RetryStyle::SameRequest`](crate::RetryStyle::SameRequest)): resend the identical bytes (same
//!   key, same first `cancelReqDate`, even after midnight). The gateway answers a resent key
//!   with the first attempt's result, which ties or not like any answer.
//! - **Generic** ([`RetryStyle::LookUp`](crate::RetryStyle::LookUp)): never resend blindly. Wait until every
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
//! The table of what an attempt that is not a final answer leads to, by retry style:
//!
//! | observed | Alipay / WeChat Pay ([`RetryStyle::SameRequest`](crate::RetryStyle::SameRequest)) | generic ([`RetryStyle::LookUp`](crate::RetryStyle::LookUp)) | status query ([`RetryStyle::Query`](crate::RetryStyle::Query)) |
//! |---|---|---|---|
//! | `A210`..`A219` | resend identical bytes | look up | new query, new key |
//! | `VTIM` / `VT00` | resend identical bytes | look up | new query, new key |
//! | timeout, lost connection, HTTP 5xx/408/429, unreadable or untied 200 | resend identical bytes | look up | new query, new key |
//! | connection never made | resend (same key) | resend (same key, today's date) | resend (same key) |
//! | other HTTP status | stop | stop | stop |
//!
//! A final `resCd` is not in the table: it ends the cancel (declined, or ambiguous if an
//! earlier attempt may have been processed), and a tied `0000` ends it as done. The table is
//! one private function with table tests; the tie rule is [`tie`]; the state machine only
//! sequences them. The table's inputs and outputs are not public: callers drive
//! [`Cancellation`] and read its [`Action`]s, and a new observation or decision can be added
//! without breaking them.
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
//! pick a [`RetryStyle`](crate::RetryStyle) (resend identically, or look up by key) and drive [`Cancellation`];
//! WeChat Pay direct drives [`Resender`] with a status query: identical signed bytes on 5xx and
//! timeouts ([`Heard::Unknown`]), `SYSTEM_ERROR` straight to the order query
//! ([`Heard::QueryFirst`]), and the order's `trade_state` read as a [`Settlement`]. Both resume
//! from recorded attempts ([`Cancellation::resume`], [`Resender::resume`]).

mod attempt;
mod bounds;
mod exchange;
mod machine;
mod policy;
mod resend;
mod table;
mod tie;

#[cfg(test)]
mod tests;

pub use attempt::SentAttempt;
pub use bounds::{backoff_delay, starts_in_time, AttemptBounds, AttemptBoundsBuilder};
pub use exchange::{Delivery, Describes, Exchange, Expected, Interpreted, Resend};
pub use machine::{Action, Cancellation, InFlight};
pub use policy::{Now, RetryPolicy, RetryPolicyBuilder};
pub use resend::{AttemptRecord, Heard, ResendStep, Resender, Settlement, Verdict};
pub(crate) use table::{decide, Decision, Observed, ResendKind};
pub use tie::{tie, Tie};
