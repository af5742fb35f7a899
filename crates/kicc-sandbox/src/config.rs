//! Configuration of a sandbox instance.

use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::settings::{Bounds, RefundQueryMatch, RemainAmountConvention, Settings};
use crate::wechatpay::WechatpayConfig;

/// The mall ID the sandbox accepts unless configured otherwise.
pub const DEFAULT_MALL_ID: &str = "T0000001";

/// The sandbox-only secret key used when none is configured.
///
/// It authenticates nothing real: it exists so that a fresh sandbox and a
/// fresh client agree without setup. Never use it against KICC.
pub const DEFAULT_SECRET_KEY: &str = "sandbox-secret-key";

/// The seed used when none is configured.
pub const DEFAULT_SEED: u64 = 0x6b69_6363_7362_7831;

/// The merchant's secret key for `msgAuthValue` (HMAC-SHA256).
///
/// Its `Debug` output is redacted, it has no `Display`, and its memory is
/// zeroed when it is dropped.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    /// Wraps a secret key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(Zeroizing::new(key.into()))
    }

    /// The key's raw UTF-8 bytes, as used for the HMAC key.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<String> for SecretKey {
    fn from(key: String) -> Self {
        Self::new(key)
    }
}

impl From<&str> for SecretKey {
    fn from(key: &str) -> Self {
        Self::new(key)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// How a sandbox behaves: credentials, determinism, TLS and timings.
///
/// Build it with struct-update syntax or the `with_*` methods:
///
/// ```
/// use std::time::Duration;
/// use kicc_sandbox::SandboxConfig;
///
/// let config = SandboxConfig {
///     seed: 7,
///     webhook_retry_interval: Duration::from_millis(50),
///     ..SandboxConfig::default()
/// }
/// .with_secret_key("my-test-key");
/// assert_eq!(config.mall_id, "T0000001");
/// assert!(!format!("{config:?}").contains("my-test-key"));
/// ```
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The only mall ID the sandbox accepts (others get `V007`). Default `T0000001`.
    pub mall_id: String,
    /// The secret key `msgAuthValue` is checked against. Default [`DEFAULT_SECRET_KEY`].
    pub secret_key: SecretKey,
    /// Seed of every generated identifier (`pgCno`, `cancelPgCno`, `shopOrderNo`,
    /// approval numbers): the same seed and the same calls give the same identifiers.
    pub seed: u64,
    /// Serve HTTPS with a freshly generated certificate for `127.0.0.1`, `::1` and
    /// `localhost`, signed by a generated root
    /// ([`SandboxHandle::root_certificate_pem`](crate::SandboxHandle::root_certificate_pem)).
    pub tls: bool,
    /// How long a `timeout` fault stalls before answering. Default 30 s (the
    /// client timeout the API pages prescribe, counted from the sandbox's
    /// arrival, so a client that started its 30 s earlier gives up first). At
    /// most [`processing_bound`](Self::processing_bound) minus
    /// [`latency`](Self::latency).
    pub timeout_fault_delay: Duration,
    /// The sandbox's promise: every request it received is processed, or
    /// definitively dropped (shutdown), within this bound after it arrived, so
    /// a `retrieveTransaction` look-up made later than arrival + bound is
    /// authoritative. Default 30 s (the time KICC tells clients to wait).
    pub processing_bound: Duration,
    /// Added before every provider endpoint request is processed (not the
    /// `/sandbox/` admin API). Default 0. Changed at run time with
    /// `POST /sandbox/settings` (`latencyMs`).
    pub latency: Duration,
    /// What `P004` checks `remainAmount` against (an inference). Default
    /// [`RemainAmountConvention::BalanceBefore`]. Changed at run time with
    /// `POST /sandbox/settings`.
    pub remain_amount_convention: RemainAmountConvention,
    /// How a generic `refundQueryFlag: "Y"` request is matched to an earlier
    /// revision (an inference). Default the worst case,
    /// [`RefundQueryMatch::PgCnoAmount`]. Changed at run time with
    /// `POST /sandbox/settings`.
    pub refund_query_match: RefundQueryMatch,
    /// How long after accepting a WeChat cancel the sandbox applies it and sends
    /// the first notice. Default 500 ms.
    pub webhook_delay: Duration,
    /// Wait between two deliveries of an unacknowledged notice. Default 1 s.
    pub webhook_retry_interval: Duration,
    /// Deliveries of one notice at most (the provider documents 15). Default 15.
    pub webhook_max_attempts: u32,
    /// How long one delivery waits for the receiver's answer (the provider
    /// documents 10 s). Default 10 s.
    pub webhook_timeout: Duration,
    /// Initial shift of the sandbox's clock, in seconds (positive = later).
    /// Changed at run time with `POST /sandbox/clock`. Default 0.
    pub clock_offset: i64,
    /// The WeChat Pay Global revoke endpoint: merchant, keys, serials.
    /// Default: the committed, publicly known, sandbox-only keys (see
    /// [`WechatpayConfig`]).
    pub wechatpay: WechatpayConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            mall_id: DEFAULT_MALL_ID.to_owned(),
            secret_key: SecretKey::new(DEFAULT_SECRET_KEY),
            seed: DEFAULT_SEED,
            tls: false,
            timeout_fault_delay: Duration::from_secs(30),
            processing_bound: Duration::from_secs(30),
            latency: Duration::ZERO,
            remain_amount_convention: RemainAmountConvention::default(),
            refund_query_match: RefundQueryMatch::default(),
            webhook_delay: Duration::from_millis(500),
            webhook_retry_interval: Duration::from_secs(1),
            webhook_max_attempts: 15,
            webhook_timeout: Duration::from_secs(10),
            clock_offset: 0,
            wechatpay: WechatpayConfig::default(),
        }
    }
}

impl SandboxConfig {
    /// Sets [`mall_id`](Self::mall_id).
    #[must_use]
    pub fn with_mall_id(mut self, mall_id: impl Into<String>) -> Self {
        self.mall_id = mall_id.into();
        self
    }

    /// Sets [`secret_key`](Self::secret_key).
    #[must_use]
    pub fn with_secret_key(mut self, key: impl Into<SecretKey>) -> Self {
        self.secret_key = key.into();
        self
    }

    /// Sets [`seed`](Self::seed).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets [`tls`](Self::tls).
    #[must_use]
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Sets [`timeout_fault_delay`](Self::timeout_fault_delay).
    #[must_use]
    pub fn with_timeout_fault_delay(mut self, delay: Duration) -> Self {
        self.timeout_fault_delay = delay;
        self
    }

    /// Sets [`processing_bound`](Self::processing_bound).
    #[must_use]
    pub fn with_processing_bound(mut self, bound: Duration) -> Self {
        self.processing_bound = bound;
        self
    }

    /// Sets [`latency`](Self::latency).
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets [`remain_amount_convention`](Self::remain_amount_convention).
    #[must_use]
    pub fn with_remain_amount_convention(mut self, convention: RemainAmountConvention) -> Self {
        self.remain_amount_convention = convention;
        self
    }

    /// Sets [`refund_query_match`](Self::refund_query_match).
    #[must_use]
    pub fn with_refund_query_match(mut self, rule: RefundQueryMatch) -> Self {
        self.refund_query_match = rule;
        self
    }

    /// The run-time settings this configuration starts with.
    pub(crate) fn initial_settings(&self) -> Settings {
        Settings::default()
            .with_remain_amount_convention(self.remain_amount_convention)
            .with_refund_query_match(self.refund_query_match)
            .with_latency(self.latency)
    }

    /// The fixed timing limits.
    pub(crate) fn bounds(&self) -> Bounds {
        Bounds {
            processing_bound: self.processing_bound,
            timeout_fault_delay: self.timeout_fault_delay,
        }
    }

    /// Sets [`webhook_delay`](Self::webhook_delay).
    #[must_use]
    pub fn with_webhook_delay(mut self, delay: Duration) -> Self {
        self.webhook_delay = delay;
        self
    }

    /// Sets [`webhook_retry_interval`](Self::webhook_retry_interval).
    #[must_use]
    pub fn with_webhook_retry_interval(mut self, interval: Duration) -> Self {
        self.webhook_retry_interval = interval;
        self
    }

    /// Sets [`webhook_max_attempts`](Self::webhook_max_attempts).
    #[must_use]
    pub fn with_webhook_max_attempts(mut self, attempts: u32) -> Self {
        self.webhook_max_attempts = attempts;
        self
    }

    /// Sets [`clock_offset`](Self::clock_offset) (seconds).
    #[must_use]
    pub fn with_clock_offset(mut self, offset_seconds: i64) -> Self {
        self.clock_offset = offset_seconds;
        self
    }

    /// Sets [`wechatpay`](Self::wechatpay).
    #[must_use]
    pub fn with_wechatpay(mut self, wechatpay: WechatpayConfig) -> Self {
        self.wechatpay = wechatpay;
        self
    }

    /// Checks the configuration; the error names the field and the rule.
    pub(crate) fn validate(&self) -> Result<(), crate::SandboxError> {
        let invalid = |field: &'static str, rule: &str| {
            Err(crate::SandboxError::InvalidConfig {
                field,
                rule: rule.to_owned(),
            })
        };
        if self.mall_id.is_empty() || self.mall_id.len() > 8 {
            return invalid("mall_id", "must be 1 to 8 bytes");
        }
        if self.mall_id.chars().any(crate::validate::is_forbidden_char) {
            return invalid("mall_id", "must not contain forbidden characters");
        }
        if self.secret_key.as_bytes().is_empty() {
            return invalid("secret_key", "must not be empty");
        }
        if self.webhook_max_attempts == 0 {
            return invalid("webhook_max_attempts", "must be at least 1");
        }
        if self.webhook_timeout.is_zero() {
            return invalid("webhook_timeout", "must be positive");
        }
        if !crate::clock::offset_in_range(self.clock_offset) {
            return invalid("clock_offset", crate::clock::OFFSET_RULE);
        }
        if self.processing_bound.is_zero() {
            return invalid("processing_bound", "must be positive");
        }
        self.bounds().check(self.latency)?;
        Ok(())
    }
}
