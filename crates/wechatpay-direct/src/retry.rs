//! The retry decisions as pure functions: what happened on attempt `n`, and
//! what to do next ([`decide`]); after a revoke, whether to query the order
//! ([`after_revoke`]); and what the order's `trade_state` means for the revoke
//! ([`after_query`]). The client executes them with real timers and I/O;
//! tests table them.

use std::time::Duration;

use crate::query::{QueryError, TradeState};
use crate::reverse::{NextStep, ReverseError, ReverseOutcome};

/// How many times to try, and how long to wait in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base_delay: Duration,
    /// Cap on the backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms base, 2 s cap (WeChat Pay: retry 5xx 2-3 times).
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// What one attempt produced, reduced to what the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A response with this HTTP status.
    Status(u16),
    /// No connection could be made: the request was not sent.
    ConnectFailed,
    /// No response within the timeout: the request may have arrived.
    TimedOut,
    /// The connection broke after the request may have been written.
    ConnectionLost,
    /// The client refused to send (policy): retrying will not help.
    Refused,
    /// WeChat Pay answered `SYSTEM_ERROR` (whatever the HTTP status): the
    /// revoke page says to query the order at once, not to resend.
    SystemError,
}

impl AttemptResult {
    /// Whether this attempt may have been processed by WeChat Pay.
    pub fn may_have_reached_server(self) -> bool {
        !matches!(self, Self::ConnectFailed | Self::Refused)
    }

    /// Whether this result is worth another attempt with the same bytes.
    pub fn is_retryable(self) -> bool {
        match self {
            Self::Status(s) => (500..=599).contains(&s),
            Self::ConnectFailed | Self::TimedOut | Self::ConnectionLost => true,
            Self::Refused | Self::SystemError => false,
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Stop: the attempt's result is final (success, definite error, or attempts used up).
    Stop,
    /// Wait `delay`, then re-send the identical signed bytes.
    Retry {
        /// Backoff, jitter included.
        delay: Duration,
        /// Send the next attempt to the backup host.
        use_backup: bool,
    },
}

/// Decides what follows attempt number `attempt` (1-based) that ended in `result`.
///
/// - Retryable: HTTP 5xx (but not `SYSTEM_ERROR`: query instead), timeout,
///   connection failure (before or after sending).
/// - Backoff: `min(max_delay, base_delay * 2^(attempt-1))`, then "equal jitter":
///   half fixed, half scaled by `jitter` (a random fraction `0..=u16::MAX`,
///   drawn by the caller so this stays pure).
/// - Host: once on the backup, stay there; switch to it (when there is one)
///   after a connection failure or a 5xx, not after a timeout.
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    result: AttemptResult,
    on_backup: bool,
    has_backup: bool,
    jitter: u16,
) -> RetryDecision {
    if !result.is_retryable() || attempt >= policy.max_attempts.max(1) {
        return RetryDecision::Stop;
    }
    let exponent = attempt.saturating_sub(1).min(20);
    let full = policy
        .base_delay
        .saturating_mul(1u32 << exponent)
        .min(policy.max_delay);
    let half = full / 2;
    let jittered = half + (full - half).mul_f64(f64::from(jitter) / f64::from(u16::MAX));
    let switch = matches!(
        result,
        AttemptResult::ConnectFailed
            | AttemptResult::ConnectionLost
            | AttemptResult::Status(500..=599)
    );
    RetryDecision::Retry {
        delay: jittered.min(full),
        use_backup: has_backup && (on_backup || switch),
    }
}

/// What to do once a revoke call (with its retries) has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRevoke {
    /// A verified 204: revoked, nothing more to do.
    Revoked,
    /// The outcome is not known (`SYSTEM_ERROR`, attempts exhausted, a 2xx
    /// that did not verify, an unexpected answer): query the order.
    Query,
    /// A definite refusal: nothing was revoked; the error says why.
    NotRevoked,
}

/// Decides what follows a revoke call's result.
///
/// `SYSTEM_ERROR` and exhausted attempts (other 5xx were already resent with
/// the same bytes) go to the order query, as does any answer that leaves the
/// outcome open; definite refusals (`REVERSE_EXPIRE`, `PARAM_ERROR`, a
/// signature error, a timing rule...) end it.
pub fn after_revoke(result: &Result<ReverseOutcome, ReverseError>) -> AfterRevoke {
    match result {
        Ok(ReverseOutcome::Revoked(_)) => AfterRevoke::Revoked,
        Ok(_) => AfterRevoke::Query,
        Err(e) => match e.next_step() {
            NextStep::NotRevoked => AfterRevoke::NotRevoked,
            NextStep::QueryOrder | NextStep::Retry => AfterRevoke::Query,
        },
    }
}

/// At most this many revokes per order in one settle: the first, and one
/// more with a fresh signature after a query found the order still paid.
pub const MAX_REVOKES: u32 = 2;

/// What an order query says about a revoke whose outcome was unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryVerdict {
    /// `REVOKED`: done.
    Revoked,
    /// `CLOSED`: done, nothing was charged.
    Closed,
    /// `SUCCESS`, `USERPAYING`, `NOTPAY`: revoke once more with a fresh
    /// signature, then decide again.
    RevokeAgain,
    /// Still `SUCCESS`/`USERPAYING`/`NOTPAY` after [`MAX_REVOKES`] revokes:
    /// definitely not revoked (yet); the state is given.
    StillNotRevoked(TradeState),
    /// `REFUND`: a refund exists, revoke no longer applies: refund instead.
    NotRevocable,
    /// `PAYERROR` or a value this crate does not know: the outcome is
    /// unknown; the state is given.
    UnknownState(TradeState),
    /// The query itself failed: the outcome is unknown (never a revoke outcome).
    QueryFailed,
}

/// Decides by the order's state, after `revokes_sent` revokes (1 or more).
pub fn after_query(query: Result<&TradeState, &QueryError>, revokes_sent: u32) -> QueryVerdict {
    let Ok(state) = query else {
        return QueryVerdict::QueryFailed;
    };
    match state {
        TradeState::Revoked => QueryVerdict::Revoked,
        TradeState::Closed => QueryVerdict::Closed,
        TradeState::Success | TradeState::UserPaying | TradeState::NotPay => {
            if revokes_sent < MAX_REVOKES {
                QueryVerdict::RevokeAgain
            } else {
                QueryVerdict::StillNotRevoked(state.clone())
            }
        }
        TradeState::Refund => QueryVerdict::NotRevocable,
        TradeState::PayError | TradeState::Unknown(_) => QueryVerdict::UnknownState(state.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptResult::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn decision_table() {
        let p = RetryPolicy::default();
        // (attempt, result, on_backup, has_backup, jitter) -> decision
        let table: &[(u32, AttemptResult, bool, bool, u16, RetryDecision)] = &[
            (1, Status(204), false, true, 0, RetryDecision::Stop),
            (1, Status(400), false, true, 0, RetryDecision::Stop),
            (1, Status(401), false, true, 0, RetryDecision::Stop),
            (1, Status(429), false, true, 0, RetryDecision::Stop),
            (1, Status(302), false, true, 0, RetryDecision::Stop),
            (1, Refused, false, true, 0, RetryDecision::Stop),
            (1, SystemError, false, true, 0, RetryDecision::Stop),
            (
                1,
                Status(500),
                false,
                false,
                0,
                RetryDecision::Retry {
                    delay: MS(100),
                    use_backup: false,
                },
            ),
            (
                1,
                Status(503),
                false,
                true,
                u16::MAX,
                RetryDecision::Retry {
                    delay: MS(200),
                    use_backup: true,
                },
            ),
            (
                2,
                Status(502),
                false,
                false,
                0,
                RetryDecision::Retry {
                    delay: MS(200),
                    use_backup: false,
                },
            ),
            (
                2,
                Status(502),
                false,
                false,
                u16::MAX,
                RetryDecision::Retry {
                    delay: MS(400),
                    use_backup: false,
                },
            ),
            (3, Status(500), false, true, 0, RetryDecision::Stop),
            (
                1,
                ConnectFailed,
                false,
                true,
                0,
                RetryDecision::Retry {
                    delay: MS(100),
                    use_backup: true,
                },
            ),
            (
                1,
                ConnectionLost,
                false,
                true,
                0,
                RetryDecision::Retry {
                    delay: MS(100),
                    use_backup: true,
                },
            ),
            (
                1,
                TimedOut,
                false,
                true,
                0,
                RetryDecision::Retry {
                    delay: MS(100),
                    use_backup: false,
                },
            ),
            (
                2,
                TimedOut,
                true,
                true,
                0,
                RetryDecision::Retry {
                    delay: MS(200),
                    use_backup: true,
                },
            ),
            (
                1,
                ConnectFailed,
                false,
                false,
                0,
                RetryDecision::Retry {
                    delay: MS(100),
                    use_backup: false,
                },
            ),
        ];
        for &(attempt, result, on_backup, has_backup, jitter, expected) in table {
            assert_eq!(
                decide(&p, attempt, result, on_backup, has_backup, jitter),
                expected,
                "attempt {attempt} {result:?} on_backup={on_backup} has_backup={has_backup}"
            );
        }
    }

    #[test]
    fn backoff_is_capped_and_bounded_by_jitter() {
        let p = RetryPolicy {
            max_attempts: 30,
            base_delay: MS(100),
            max_delay: MS(1000),
        };
        for attempt in 1..30 {
            for jitter in [0, 1, 30_000, u16::MAX] {
                let RetryDecision::Retry { delay, .. } =
                    decide(&p, attempt, TimedOut, false, false, jitter)
                else {
                    panic!("attempt {attempt} should retry");
                };
                let full = MS(100)
                    .saturating_mul(1 << (attempt - 1).min(20))
                    .min(MS(1000));
                assert!(
                    delay >= full / 2 && delay <= full,
                    "attempt {attempt}: {delay:?}"
                );
            }
        }
        // Zero delays (tests) stay zero.
        let zero = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        };
        assert_eq!(
            decide(&zero, 1, Status(500), false, false, 999),
            RetryDecision::Retry {
                delay: Duration::ZERO,
                use_backup: false
            }
        );
        // A policy of 0 attempts behaves as 1.
        let none = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(
            decide(&none, 1, Status(500), false, false, 0),
            RetryDecision::Stop
        );
    }

    #[test]
    fn the_issue_table_after_a_query() {
        use crate::query::TradeState as S;
        let failed = QueryError::Malformed {
            status: 200,
            reason: "x",
        };
        let unknown = S::Unknown("ACCEPT".into());
        // (state or failure, revokes sent) -> verdict
        let table: Vec<(Result<&S, &QueryError>, u32, QueryVerdict)> = vec![
            (Ok(&S::Revoked), 1, QueryVerdict::Revoked),
            (Ok(&S::Revoked), 2, QueryVerdict::Revoked),
            (Ok(&S::Closed), 1, QueryVerdict::Closed),
            (Ok(&S::Success), 1, QueryVerdict::RevokeAgain),
            (Ok(&S::UserPaying), 1, QueryVerdict::RevokeAgain),
            (Ok(&S::NotPay), 1, QueryVerdict::RevokeAgain),
            (
                Ok(&S::Success),
                2,
                QueryVerdict::StillNotRevoked(S::Success),
            ),
            (Ok(&S::NotPay), 2, QueryVerdict::StillNotRevoked(S::NotPay)),
            (Ok(&S::Refund), 1, QueryVerdict::NotRevocable),
            (Ok(&S::PayError), 1, QueryVerdict::UnknownState(S::PayError)),
            (Ok(&unknown), 1, QueryVerdict::UnknownState(unknown.clone())),
            (Err(&failed), 1, QueryVerdict::QueryFailed),
            (Err(&failed), 2, QueryVerdict::QueryFailed),
        ];
        for (query, sent, expected) in table {
            assert_eq!(after_query(query, sent), expected, "{query:?} after {sent}");
        }
    }

    #[test]
    fn the_issue_table_after_a_revoke() {
        use crate::reverse::{ApiError, ApiErrorCode, MaybeRevokedReason};
        use crate::verify::VerifyError;
        let api = |status, code| {
            Err(ReverseError::Api(Box::new(ApiError {
                status,
                code,
                message: String::new(),
                detail: None,
                request_id: None,
            })))
        };
        let table: Vec<(Result<ReverseOutcome, ReverseError>, AfterRevoke)> = vec![
            (api(500, ApiErrorCode::SystemError), AfterRevoke::Query),
            (api(400, ApiErrorCode::SystemError), AfterRevoke::Query),
            (
                Err(ReverseError::RetriesExhausted {
                    attempts: 3,
                    may_have_reached_server: true,
                    last: Box::new(ReverseError::UnexpectedResponse {
                        status: 502,
                        body_excerpt: String::new(),
                    }),
                }),
                AfterRevoke::Query,
            ),
            (
                Ok(ReverseOutcome::MaybeRevoked {
                    status: 204,
                    reason: MaybeRevokedReason::Unverified(VerifyError::SignatureProbe),
                }),
                AfterRevoke::Query,
            ),
            (
                api(403, ApiErrorCode::ReverseExpire),
                AfterRevoke::NotRevoked,
            ),
            (api(400, ApiErrorCode::ParamError), AfterRevoke::NotRevoked),
            (api(401, ApiErrorCode::SignError), AfterRevoke::NotRevoked),
            (
                api(400, ApiErrorCode::Other("NEW".into())),
                AfterRevoke::Query,
            ),
        ];
        for (result, expected) in table {
            assert_eq!(after_revoke(&result), expected, "{result:?}");
        }
    }

    #[test]
    fn reach_and_retryability() {
        assert!(!ConnectFailed.may_have_reached_server());
        assert!(!Refused.may_have_reached_server());
        assert!(TimedOut.may_have_reached_server());
        assert!(ConnectionLost.may_have_reached_server());
        assert!(Status(500).may_have_reached_server());
        assert!(SystemError.may_have_reached_server());
        assert!(!SystemError.is_retryable());
        assert!(Status(599).is_retryable());
        assert!(!Status(600).is_retryable());
    }
}
