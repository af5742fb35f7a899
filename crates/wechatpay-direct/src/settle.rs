//! How a revoke ended once the order query (when needed) has spoken.

use crate::query::{QueriedOrder, QueryError};
use crate::reverse::{ReverseError, ReverseOutcome};
use crate::verify::Verified;

/// The end of a revoke that queried the order when its outcome was unknown
/// (see [`Revocation`](crate::Revocation) for the rules).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Resolution {
    /// A verified 204: revoked.
    Revoked(Verified),
    /// The order query (verified) says `REVOKED`.
    RevokedPerQuery(QueriedOrder),
    /// The order query says `CLOSED`: nothing was charged.
    Closed(QueriedOrder),
    /// A definite refusal: nothing was revoked.
    NotRevoked(ReverseError),
    /// Still `SUCCESS`/`USERPAYING`/`NOTPAY` after the bounded second revoke:
    /// not revoked.
    StillNotRevoked(QueriedOrder),
    /// `REFUND`: not revocable, refund instead.
    RefundInstead(QueriedOrder),
    /// `PAYERROR` or an unknown `trade_state`: the outcome is unknown.
    UnknownState(QueriedOrder),
    /// The revoke's outcome was unknown and the order query failed too: the
    /// outcome is unknown (a failed query is never a revoke outcome).
    QueryFailed {
        /// The last revoke's result.
        last_revoke: Box<Result<ReverseOutcome, ReverseError>>,
        /// Why the query failed.
        query: QueryError,
    },
}

/// The three ways a [`Resolution`] can end, as the CLI's exit codes count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settled {
    /// Nothing is (or remains) charged: revoked or closed (exit 0).
    Done,
    /// Definitely not revoked (exit 1).
    NotDone,
    /// Nobody knows: query again later (exit 3).
    Unknown,
}

impl Resolution {
    /// Done, not done, or unknown.
    pub fn settled(&self) -> Settled {
        match self {
            Self::Revoked(_) | Self::RevokedPerQuery(_) | Self::Closed(_) => Settled::Done,
            Self::NotRevoked(_) | Self::StillNotRevoked(_) | Self::RefundInstead(_) => {
                Settled::NotDone
            }
            Self::UnknownState(_) | Self::QueryFailed { .. } => Settled::Unknown,
        }
    }

    /// The verified order query, when one decided.
    pub fn queried(&self) -> Option<&QueriedOrder> {
        match self {
            Self::RevokedPerQuery(o)
            | Self::Closed(o)
            | Self::StillNotRevoked(o)
            | Self::RefundInstead(o)
            | Self::UnknownState(o) => Some(o),
            _ => None,
        }
    }

    /// One line for people: what happened and what to do.
    pub fn describe(&self) -> String {
        match self {
            Self::Revoked(v) => format!("revoked (HTTP 204 verified with {})", v.serial),
            Self::RevokedPerQuery(o) => format!(
                "revoked: the order query says trade_state {}",
                o.trade_state
            ),
            Self::Closed(o) => format!(
                "nothing charged: the order query says trade_state {}",
                o.trade_state
            ),
            Self::NotRevoked(e) => format!("not revoked: {e}"),
            Self::StillNotRevoked(o) => format!(
                "not revoked: the order query still says trade_state {} after revoking again",
                o.trade_state
            ),
            Self::RefundInstead(o) => format!(
                "not revocable: the order query says trade_state {} (a refund exists): refund instead",
                o.trade_state
            ),
            Self::UnknownState(o) => format!(
                "outcome unknown: the order query says trade_state {}; query the order again later",
                o.trade_state
            ),
            Self::QueryFailed { query, .. } => format!(
                "outcome unknown: the revoke's answer was not conclusive and the order query failed ({query}); query the order again later"
            ),
        }
    }
}
