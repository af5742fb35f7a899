//! The soak's clocks.

use std::time::Duration;

/// The clocks of a soak: short enough for thousands of scenarios, consistent with each other
/// (the sandbox stalls a `timeout` fault longer than the client waits, and processes every
/// request within its bound, which the SDK's bound covers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The client's limit per attempt.
    pub client_timeout: Duration,
    /// The sandbox's stall on a `timeout` fault (longer than `client_timeout`).
    pub timeout_fault_delay: Duration,
    /// The sandbox's processing bound (at least the stall plus the largest latency, 20 ms).
    pub sandbox_processing_bound: Duration,
    /// The SDK's `RetryPolicy::processing_bound` (at least the sandbox's, plus transit).
    pub sdk_processing_bound: Duration,
    /// The SDK's first backoff (later ones double, up to 4 times this).
    pub backoff: Duration,
    /// How long after a call the checker waits for requests still held by the sandbox
    /// (its processing bound plus a margin).
    pub settle: Duration,
    /// The sandbox's `webhook_delay` (when an accepted WeChat cancel finishes); also the
    /// interval of the status queries.
    pub webhook_delay: Duration,
    /// How long a WeChat wait lasts before it reports pending.
    pub wechat_wait: Duration,
}

impl Default for Timing {
    /// 100 ms per attempt, a 150 ms stall, bounds 200 ms (sandbox) and 300 ms (SDK), 5 ms
    /// backoff, 300 ms settle, 30 ms webhook delay, 3 s WeChat wait.
    fn default() -> Self {
        Timing {
            client_timeout: Duration::from_millis(100),
            timeout_fault_delay: Duration::from_millis(150),
            sandbox_processing_bound: Duration::from_millis(200),
            sdk_processing_bound: Duration::from_millis(300),
            backoff: Duration::from_millis(5),
            settle: Duration::from_millis(300),
            webhook_delay: Duration::from_millis(30),
            wechat_wait: Duration::from_secs(3),
        }
    }
}
