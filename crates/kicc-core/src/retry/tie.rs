//! When an answer is this request's own (DESIGN.md invariant 9).

use std::time::SystemTime;

use crate::date::KoreaDateTime;
use crate::text::ShopTransactionId;

use super::{Describes, Expected};

/// Whether a `0000` answer belongs to the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tie {
    /// It echoes the key, the payment and the amount, and is not dated before the request.
    Tied,
    /// It cannot be taken as this request's (and says why); the outcome stays unknown.
    Untied(String),
    /// It describes the right payment but is dated before this request was first sent (less
    /// the clock skew allowance): an EARLIER cancel, certainly not this request's.
    Earlier {
        /// The earlier cancel's `cancelPgCno`, as the answer gives it.
        described: String,
        /// Why.
        reason: String,
    },
}

/// Ties `answer`, received for the request keyed `key`, to the request described by
/// `expected`. `not_before` is the earliest time an answer of this request can be dated
/// (its first send less the clock skew); `None` skips the date check.
pub fn tie<T: Describes + ?Sized>(
    answer: &T,
    key: &ShopTransactionId,
    expected: Expected<'_>,
    not_before: Option<SystemTime>,
) -> Tie {
    let echoed = answer.described_key();
    if echoed != key.as_str() {
        return Tie::Untied(if echoed.is_empty() {
            format!("a 0000 answer that does not echo shopTransactionId {key}")
        } else {
            format!("a 0000 answer echoing shopTransactionId {echoed:?}, not {key}")
        });
    }
    let pg_cno = answer.described_pg_cno();
    if pg_cno != expected.pg_cno {
        return Tie::Untied(if pg_cno.is_empty() {
            format!(
                "a 0000 answer that does not name the payment {}",
                expected.pg_cno
            )
        } else {
            format!(
                "a 0000 answer about payment {pg_cno:?}, not {}",
                expected.pg_cno
            )
        });
    }
    if let Some(want) = expected.amount {
        match answer.described_amount() {
            Some(got) if got == want => {}
            Some(got) => {
                return Tie::Untied(format!(
                    "a 0000 answer for the amount {got}, not the requested {want}"
                ))
            }
            None => {
                return Tie::Untied(format!(
                    "a 0000 answer that does not state the amount (requested {want})"
                ))
            }
        }
    }
    if let Some(not_before) = not_before {
        let date = answer.transaction_date();
        if !date.is_empty() {
            match KoreaDateTime::parse("transactionDate", date) {
                Ok(t) if t.to_system_time() < not_before => {
                    let cancel_pg_cno = answer.described_cancel_pg_cno();
                    return Tie::Earlier {
                        described: cancel_pg_cno.to_owned(),
                        reason: format!(
                            "the answer describes cancel {cancel_pg_cno} dated {date} (Korea time), before this request was sent"
                        ),
                    };
                }
                Ok(_) => {}
                Err(e) => return Tie::Untied(format!("an unreadable transactionDate: {e}")),
            }
        }
    }
    Tie::Tied
}
