//! The retry policy and the caller's clocks.

use std::time::{Duration, Instant, SystemTime};

use crate::random::Rng;

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
        let step = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let half = step / 2;
        let jitter_ms = rng.below_or_equal(u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
        half.saturating_add(Duration::from_millis(jitter_ms))
    }

    /// Whether `code` is one of [`RetryPolicy::lookup_not_found_codes`].
    pub fn is_not_found(&self, code: &str) -> bool {
        self.lookup_not_found_codes.iter().any(|c| c == code)
    }
}
