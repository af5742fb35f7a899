//! The retry policy and the caller's clocks.

use std::time::{Duration, Instant, SystemTime};

use crate::codes::SUCCESS;
use crate::field::{FieldError, Rule};
use crate::random::Rng;

use super::bounds::AttemptBounds;

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
///
/// Built with [`RetryPolicy::builder`] (which checks the values hang together) or
/// [`RetryPolicy::default`]; read with the getters. The fields are private so a policy is
/// always valid and new settings can be added without breaking callers.
///
/// ```
/// use std::time::Duration;
/// use kicc_core::retry::RetryPolicy;
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(2)
///     .processing_bound(Duration::from_secs(1))
///     .lookup_not_found_code("R001") // the sandbox's "no such transaction"
///     .build()?;
/// assert_eq!(policy.max_attempts(), 2);
/// assert!(policy.is_not_found("R001"));
///
/// // Zero attempts would never send anything: refused, naming the setting.
/// let err = RetryPolicy::builder().max_attempts(0).build().unwrap_err();
/// assert_eq!(err.field, "max_attempts");
/// # Ok::<(), kicc_core::FieldError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts, backoff and deadline: the part every protocol shares.
    bounds: AttemptBounds,
    processing_bound: Duration,
    clock_skew: Duration,
    lookup_not_found_codes: Vec<String>,
    refund_query_on_resend: bool,
}

impl Default for RetryPolicy {
    /// 4 attempts, backoff from 1 s doubling to at most 8 s with jitter, within 3 minutes;
    /// 30 s processing bound; 2 minutes of clock skew; no known "not found" code.
    fn default() -> Self {
        RetryPolicy {
            // 4 attempts, 1 s doubling to at most 8 s, within 3 minutes.
            bounds: AttemptBounds::default(),
            processing_bound: Duration::from_secs(30),
            clock_skew: Duration::from_secs(120),
            lookup_not_found_codes: Vec::new(),
            refund_query_on_resend: false,
        }
    }
}

impl RetryPolicy {
    /// A builder starting from [`RetryPolicy::default`].
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: RetryPolicy::default(),
        }
    }

    /// A builder starting from this policy, to change some of its settings.
    pub fn to_builder(&self) -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: self.clone(),
        }
    }

    /// The most attempts, the first included (at least 1). Look-ups are not attempts.
    pub fn max_attempts(&self) -> u32 {
        self.bounds.max_attempts
    }

    /// The delay before the second attempt; it doubles for each later one.
    pub fn initial_backoff(&self) -> Duration {
        self.bounds.initial_backoff
    }

    /// The longest delay between attempts (never shorter than
    /// [`RetryPolicy::initial_backoff`]).
    pub fn max_backoff(&self) -> Duration {
        self.bounds.max_backoff
    }

    /// No new attempt starts later than this after the first one. `Duration::MAX` means no
    /// deadline.
    pub fn deadline(&self) -> Duration {
        self.bounds.deadline
    }

    /// How long a request may still be processed by the gateway after it was sent (KICC
    /// documents a 30 s processing time). Look-ups of a key wait this long after its send.
    pub fn processing_bound(&self) -> Duration {
        self.processing_bound
    }

    /// How far the gateway's clock may be behind ours: an answer dated earlier than this
    /// request's first send minus this allowance describes an earlier cancel, not this one.
    pub fn clock_skew(&self) -> Duration {
        self.clock_skew
    }

    /// The `resCd`s with which `retrieveTransaction` says "no such transaction" (empty by
    /// default; see [`RetryPolicyBuilder::lookup_not_found_codes`]).
    pub fn lookup_not_found_codes(&self) -> &[String] {
        &self.lookup_not_found_codes
    }

    /// Whether the new attempt that follows a proven "not processed" carries
    /// `refundQueryFlag = "Y"` (see [`RetryPolicyBuilder::refund_query_on_resend`]).
    pub fn refund_query_on_resend(&self) -> bool {
        self.refund_query_on_resend
    }

    /// The delay after attempt number `attempt` (1-based): half of the exponential step plus a
    /// random share of the other half, so many clients do not retry in lockstep.
    pub fn backoff(&self, attempt: u32, rng: &mut Rng) -> Duration {
        self.bounds.backoff(attempt, rng)
    }

    /// The attempts, backoff and deadline of this policy, as the protocol-neutral
    /// [`AttemptBounds`] every retried request shares.
    pub fn bounds(&self) -> AttemptBounds {
        self.bounds
    }

    /// Whether `code` is one of [`RetryPolicy::lookup_not_found_codes`].
    pub fn is_not_found(&self, code: &str) -> bool {
        self.lookup_not_found_codes.iter().any(|c| c == code)
    }
}

/// Builds a [`RetryPolicy`]; [`RetryPolicyBuilder::build`] checks the settings together.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

impl RetryPolicyBuilder {
    /// The most attempts, the first included; at least 1. Look-ups are not attempts.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.policy.bounds.max_attempts = max_attempts;
        self
    }

    /// The delay before the second attempt; it doubles for each later one.
    pub fn initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.policy.bounds.initial_backoff = initial_backoff;
        self
    }

    /// The longest delay between attempts; not shorter than the initial backoff.
    pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.policy.bounds.max_backoff = max_backoff;
        self
    }

    /// No new attempt starts later than this after the first one. `Duration::MAX` means no
    /// deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.policy.bounds.deadline = deadline;
        self
    }

    /// How long a request may still be processed by the gateway after it was sent (KICC
    /// documents a 30 s processing time). Look-ups of a key wait this long after its send.
    pub fn processing_bound(mut self, processing_bound: Duration) -> Self {
        self.policy.processing_bound = processing_bound;
        self
    }

    /// How far the gateway's clock may be behind ours: an answer dated earlier than this
    /// request's first send minus this allowance describes an earlier cancel, not this one.
    pub fn clock_skew(mut self, clock_skew: Duration) -> Self {
        self.policy.clock_skew = clock_skew;
        self
    }

    /// The `resCd`s with which `retrieveTransaction` says "no such transaction" (replacing
    /// any given before). KICC does not document this code, so the default is EMPTY: no
    /// look-up can then prove "not processed", and an unknown outcome stays
    /// [`Error::Ambiguous`](crate::Error::Ambiguous) (safe, never a second cancel). Set it to
    /// the code KICC gives you; the sandbox answers `R001`.
    pub fn lookup_not_found_codes<I, S>(mut self, codes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policy.lookup_not_found_codes = codes.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one "no such transaction" code (see
    /// [`RetryPolicyBuilder::lookup_not_found_codes`]).
    pub fn lookup_not_found_code(mut self, code: impl Into<String>) -> Self {
        self.policy.lookup_not_found_codes.push(code.into());
        self
    }

    /// Send the new attempt that follows a proven "not processed" with
    /// `refundQueryFlag = "Y"` (the API's documented resend). Off by default: after every key
    /// was looked up and found absent, a plain cancel is exact, while a refund query may be
    /// answered with an EARLIER, equal refund that is not this request's.
    pub fn refund_query_on_resend(mut self, on: bool) -> Self {
        self.policy.refund_query_on_resend = on;
        self
    }

    /// The policy, or the first setting that cannot work: `max_attempts` of 0 (nothing would
    /// be sent), a `max_backoff` shorter than `initial_backoff`, or a "not found" code that is
    /// empty or the success code `0000` (a found cancel would then count as absent and a
    /// second cancel could follow).
    pub fn build(self) -> Result<RetryPolicy, FieldError> {
        let p = self.policy;
        if p.bounds.max_attempts == 0 {
            return Err(FieldError::new("max_attempts", Rule::NotPositive));
        }
        if p.bounds.max_backoff < p.bounds.initial_backoff {
            return Err(FieldError::new(
                "max_backoff",
                Rule::Other("must not be shorter than initial_backoff"),
            ));
        }
        for code in &p.lookup_not_found_codes {
            if code.is_empty() {
                return Err(FieldError::new("lookup_not_found_codes", Rule::Empty));
            }
            if code == SUCCESS {
                return Err(FieldError::new(
                    "lookup_not_found_codes",
                    Rule::NotAllowed {
                        value: code.clone(),
                        allowed: "any resCd but the success code 0000",
                    },
                ));
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_starts_from_the_default_and_keeps_what_it_is_given() {
        assert_eq!(RetryPolicy::builder().build(), Ok(RetryPolicy::default()));
        let p = RetryPolicy::builder()
            .max_attempts(2)
            .initial_backoff(Duration::from_millis(5))
            .max_backoff(Duration::from_millis(5))
            .deadline(Duration::MAX)
            .processing_bound(Duration::from_secs(1))
            .clock_skew(Duration::ZERO)
            .lookup_not_found_codes(["R001"])
            .lookup_not_found_code("R002")
            .refund_query_on_resend(true)
            .build()
            .unwrap();
        assert_eq!(p.max_attempts(), 2);
        assert_eq!(p.initial_backoff(), Duration::from_millis(5));
        assert_eq!(p.max_backoff(), Duration::from_millis(5));
        assert_eq!(p.deadline(), Duration::MAX);
        assert_eq!(p.processing_bound(), Duration::from_secs(1));
        assert_eq!(p.clock_skew(), Duration::ZERO);
        assert_eq!(p.lookup_not_found_codes(), ["R001", "R002"]);
        assert!(p.is_not_found("R002") && !p.is_not_found("R003"));
        assert!(p.refund_query_on_resend());
        let q = p.to_builder().max_attempts(3).build().unwrap();
        assert_eq!((q.max_attempts(), q.lookup_not_found_codes().len()), (3, 2));
    }

    #[test]
    fn settings_that_cannot_work_are_refused_by_name() {
        let field = |b: RetryPolicyBuilder| b.build().unwrap_err().field;
        assert_eq!(
            field(RetryPolicy::builder().max_attempts(0)),
            "max_attempts"
        );
        assert_eq!(
            field(
                RetryPolicy::builder()
                    .initial_backoff(Duration::from_secs(2))
                    .max_backoff(Duration::from_secs(1))
            ),
            "max_backoff"
        );
        for bad in ["", "0000"] {
            assert_eq!(
                field(RetryPolicy::builder().lookup_not_found_code(bad)),
                "lookup_not_found_codes"
            );
        }
    }
}
