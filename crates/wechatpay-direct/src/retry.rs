//! The retry decision as a pure function: what happened on attempt `n`, and
//! what to do next. The client executes it with real timers; tests table it.

use std::time::Duration;

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
            Self::Refused => false,
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
/// - Retryable: HTTP 5xx, timeout, connection failure (before or after sending).
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
    fn reach_and_retryability() {
        assert!(!ConnectFailed.may_have_reached_server());
        assert!(!Refused.may_have_reached_server());
        assert!(TimedOut.may_have_reached_server());
        assert!(ConnectionLost.may_have_reached_server());
        assert!(Status(500).may_have_reached_server());
        assert!(Status(599).is_retryable());
        assert!(!Status(600).is_retryable());
    }
}
