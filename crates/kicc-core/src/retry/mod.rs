//! Retrying one request until its outcome is known, as one pure state machine.
//!
//! **One model, one sequencer.** [`Resender`] is the retry model of kicc-rs: it counts the
//! attempts, holds the attempt in flight, computes the backoff and the deadline, tracks
//! which attempts may have been processed, runs the status query that settles them, and
//! gives the final [`Verdict`]. It knows nothing of bytes or answers: a protocol layer reads
//! each answer and tells it what was [`Heard`] (and what a query proved, a [`Settlement`]).
//! Two protocol layers sit on it:
//!
//! - [`Cancellation`], KICC's: it builds each message (the identical bytes, a refreshed
//!   date, or a new key), reads each answer (the retry table and [`tie`]), and makes the
//!   generic API's look-ups as the model's status query;
//! - `wechatpay-direct`'s `Revocation`, WeChat Pay's: signed revokes and the order query.
//!
//! Neither touches a socket or a clock: the caller asks what to do next with
//! [`Cancellation::poll`], passing the time, does it (send the bytes, wait), and reports
//! what happened with [`Cancellation::on_delivery`]. Tests drive it with a virtual clock and
//! canned deliveries; `kicc-transport` drives it with real ones.
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
//! one private function with table tests; the tie rule is [`tie`]; [`Resender`] only
//! sequences them (see "One retry model" below). The table's inputs and outputs are not public: callers drive
//! [`Cancellation`] and read its [`Action`]s, and a new observation or decision can be added
//! without breaking them.
//!
//! # Resuming
//!
//! [`Cancellation::resume`] starts from recorded attempts ([`SentAttempt`]: key, Korea date,
//! send time): a generic cancel looks them up before anything new is sent; a wallet cancel
//! resends the stored identical message, and any decline is then ambiguous.
//! They become [`Resender`]'s records ([`AttemptRecord`], sent and nothing heard since: maybe
//! processed), so the model's own resume rule applies: query (look up) first where there is
//! a query, else resend the identical request.
//!
//! # One retry model for KICC and WeChat Pay direct
//!
//! This module is protocol-neutral at its base, and `wechatpay-direct` uses it rather than a
//! retry model of its own (it depends on `kicc-core` already; a separate crate would have been
//! one more thing to publish for the same ideas):
//!
//! - **one sequencer**, [`Resender`]: attempts, the attempt in flight, backoff, deadline,
//!   "may have been processed", the status query and the verdict;
//! - **one policy type** where the concepts coincide: [`AttemptBounds`] (attempts, backoff,
//!   deadline); KICC's [`RetryPolicy`] adds KICC's facts on top ([`RetryPolicy::bounds`]),
//!   WeChat Pay's policy adds how many revokes a settle may sign;
//! - **one backoff function**, [`backoff_delay`], and one deadline rule, [`starts_in_time`];
//! - **one mapping** of an attempt without an answer to "not delivered / maybe delivered":
//!   [`Delivery::NotDelivered`] / [`Delivery::Unknown`], or [`Heard::NotDelivered`] /
//!   [`Heard::Unknown`], decided by kicc-transport's `driver::never_delivered` for both
//!   clients (a refused connection is "not delivered" and is resent in both);
//! - **the same rules** on what an unknown outcome allows (invariant 8: never "not processed"
//!   after a maybe-processed attempt unless a look-up or query proves it), applied in one
//!   place, [`Resender`]'s transitions.
//!
//! What differs by protocol is a parameter of the model, not a second model:
//!
//! | | Alipay / WeChat Pay via KICC | generic KICC | KICC status query | WeChat Pay direct |
//! |---|---|---|---|---|
//! | maybe processed | identical resend ([`Heard::Unknown`]) | look-ups ([`Heard::QueryFirst`]) | asked anew ([`Resender::with_fresh_resends`]) | identical resend, or the order query for `SYSTEM_ERROR` |
//! | the query | none: unknown | every maybe-processed key, after the processing bound ([`Resender::with_query_not_before`]) | none | the order query |
//! | after "not processed" | | a new key ([`Settlement::SendAgain`]) | | a new signature |
//! | budget | the run's ([`Resender::with_run_budget`]) | the run's | the run's | per signed request |
//!
//! [`Cancellation`] turns each answer into what the model hears: a tied `0000` is
//! [`Heard::Done`]; a decline or a refused HTTP status [`Heard::Refused`]; a connection never
//! made [`Heard::NotDelivered`]; the table's "resend identical bytes" [`Heard::Unknown`] and
//! its "look up" [`Heard::QueryFirst`]. The look-ups report one [`Settlement`]: a tied
//! look-up is [`Settlement::Done`]; every key "not found" is [`Settlement::SendAgain`] (a
//! fresh key goes if the run's budget allows); a key answered only with an earlier cancel is
//! [`Settlement::NotDone`] (already cancelled); anything else [`Settlement::Unknown`], with
//! what was found. Both layers resume from recorded attempts ([`Cancellation::resume`],
//! [`Resender::resume`]).

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
