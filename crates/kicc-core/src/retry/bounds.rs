//! The bounds every retried request shares, whatever its protocol: how many attempts, the
//! backoff between them, and the deadline after which no new attempt starts.
//!
//! KICC's [`RetryPolicy`](super::RetryPolicy) and WeChat Pay direct's policy both hold these
//! concepts; both compute their delays with the one [`backoff_delay`] and both check the
//! deadline with the one [`starts_in_time`].

use std::time::{Duration, Instant};

use crate::random::Rng;

/// The delay after attempt number `attempt` (1-based): the exponential step
/// `min(max, initial * 2^(attempt-1))`, of which half is fixed and the other half scaled by
/// a random share drawn from `rng` ("equal jitter", in whole milliseconds), so many clients
/// do not retry in lockstep. Never more than the step; zero bounds give zero.
///
/// The one backoff function of kicc-rs: KICC's cancellation machine and WeChat Pay direct's
/// revoke both call it.
pub fn backoff_delay(initial: Duration, max: Duration, attempt: u32, rng: &mut Rng) -> Duration {
    let step = initial
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(max);
    let half = step / 2;
    let jitter_ms = rng.below_or_equal(u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
    half.saturating_add(Duration::from_millis(jitter_ms))
}

/// Whether an attempt starting `delay` after `now` still starts within `deadline` of
/// `started` (the first attempt). A wait past the clock's end never ends (false); a deadline
/// past the clock's end is no deadline (true).
pub fn starts_in_time(started: Instant, deadline: Duration, now: Instant, delay: Duration) -> bool {
    match (started.checked_add(deadline), now.checked_add(delay)) {
        (_, None) => false,
        (Some(deadline), Some(next)) => next <= deadline,
        (None, Some(_)) => true,
    }
}

/// Attempts, backoff and deadline: the part of a retry policy that is the same for every
/// protocol. Build it with [`AttemptBounds::builder`].
///
/// ```
/// use std::time::Duration;
/// use kicc_core::retry::AttemptBounds;
///
/// let bounds = AttemptBounds::builder()
///     .max_attempts(3)
///     .initial_backoff(Duration::from_millis(200))
///     .max_backoff(Duration::from_secs(2))
///     .deadline(Duration::from_secs(60))
///     .build();
/// assert_eq!(bounds.max_attempts(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptBounds {
    // `pub(super)`: `RetryPolicy` keeps its bounds here and its builder sets them as given
    // (a 0 is refused by `RetryPolicyBuilder::build`, not raised to 1 as this builder does).
    pub(super) max_attempts: u32,
    pub(super) initial_backoff: Duration,
    pub(super) max_backoff: Duration,
    pub(super) deadline: Duration,
}

impl Default for AttemptBounds {
    /// KICC's defaults: 4 attempts, backoff from 1 s doubling to at most 8 s, within 3 minutes.
    fn default() -> Self {
        AttemptBounds {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            deadline: Duration::from_secs(180),
        }
    }
}

impl AttemptBounds {
    /// A builder starting from [`AttemptBounds::default`].
    pub fn builder() -> AttemptBoundsBuilder {
        AttemptBoundsBuilder {
            bounds: AttemptBounds::default(),
        }
    }

    /// A builder starting from these bounds.
    pub fn to_builder(self) -> AttemptBoundsBuilder {
        AttemptBoundsBuilder { bounds: self }
    }

    /// The most attempts of one request, the first included (at least 1).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The delay before the second attempt; it doubles for each later one.
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The longest delay between attempts.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// No new attempt starts later than this after the first one (`Duration::MAX`: none).
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// [`backoff_delay`] with these bounds.
    pub fn backoff(&self, attempt: u32, rng: &mut Rng) -> Duration {
        backoff_delay(self.initial_backoff, self.max_backoff, attempt, rng)
    }

    /// When attempt `made + 1` may start, after `made` attempts of which the first started at
    /// `started`, at `now`: `None` when the attempts are used up or the wait would end past
    /// the deadline.
    pub fn next_attempt(
        &self,
        made: u32,
        started: Instant,
        now: Instant,
        rng: &mut Rng,
    ) -> Option<Instant> {
        if made >= self.max_attempts {
            return None;
        }
        let delay = self.backoff(made, rng);
        if !starts_in_time(started, self.deadline, now, delay) {
            return None;
        }
        now.checked_add(delay)
    }
}

/// Builds [`AttemptBounds`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct AttemptBoundsBuilder {
    bounds: AttemptBounds,
}

impl AttemptBoundsBuilder {
    /// The most attempts, the first included; 0 is taken as 1.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.bounds.max_attempts = n.max(1);
        self
    }

    /// The delay before the second attempt.
    pub fn initial_backoff(mut self, d: Duration) -> Self {
        self.bounds.initial_backoff = d;
        self
    }

    /// The longest delay between attempts.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.bounds.max_backoff = d;
        self
    }

    /// No new attempt starts later than this after the first one.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.bounds.deadline = d;
        self
    }

    /// The bounds.
    pub fn build(self) -> AttemptBounds {
        self.bounds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_doubles_is_capped_and_jitter_stays_in_the_upper_half() {
        let mut rng = Rng::from_seed([7; 32]);
        for attempt in 1..30 {
            let step = MS(100)
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(MS(1000));
            for _ in 0..20 {
                let d = backoff_delay(MS(100), MS(1000), attempt, &mut rng);
                assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?}");
            }
        }
        assert_eq!(
            backoff_delay(Duration::ZERO, Duration::ZERO, 3, &mut rng),
            Duration::ZERO
        );
    }

    #[test]
    fn kicc_policy_backoff_is_the_shared_function() {
        let policy = super::super::RetryPolicy::default();
        for attempt in 1..8 {
            let (mut a, mut b) = (Rng::from_seed([3; 32]), Rng::from_seed([3; 32]));
            assert_eq!(
                policy.backoff(attempt, &mut a),
                policy.bounds().backoff(attempt, &mut b)
            );
        }
        assert_eq!(policy.bounds(), AttemptBounds::default());
    }

    #[test]
    fn next_attempt_respects_attempts_and_deadline() {
        let bounds = AttemptBounds::builder()
            .max_attempts(3)
            .initial_backoff(MS(1000))
            .max_backoff(MS(1000))
            .deadline(MS(2500))
            .build();
        let t0 = Instant::now();
        let mut rng = Rng::from_seed([1; 32]);
        let next = bounds.next_attempt(1, t0, t0, &mut rng).unwrap();
        assert!(next >= t0 + MS(500) && next <= t0 + MS(1000));
        // Attempts used up.
        assert_eq!(bounds.next_attempt(3, t0, t0, &mut rng), None);
        // A wait ending past the deadline.
        assert_eq!(bounds.next_attempt(2, t0, t0 + MS(2100), &mut rng), None);
        assert_eq!(
            AttemptBounds::builder()
                .max_attempts(0)
                .build()
                .max_attempts(),
            1
        );
        assert!(starts_in_time(t0, Duration::MAX, t0, MS(5)));
        assert!(!starts_in_time(t0, MS(1), t0, MS(5)));
    }
}
