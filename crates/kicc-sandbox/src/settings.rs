//! Run-time settings for behaviour the API pages leave open, each one the
//! sandbox's **inference**, switchable so that clients can be tested under
//! every reading (`GET` / `POST /sandbox/settings`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::SandboxError;

/// What `P004` compares a generic partial cancel's `remainAmount` with.
///
/// The page calls the field "Remaining Amount ... used for validation"
/// (Korean: "cancellable amount"); public integrations disagree whether it is
/// the balance before or after the cancel. **Inference**; default
/// [`BalanceBefore`](Self::BalanceBefore).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum RemainAmountConvention {
    /// `remainAmount` must equal the cancellable balance before this cancel
    /// (admin name `balanceBefore`).
    #[default]
    BalanceBefore,
    /// `remainAmount` must equal the balance left after this cancel, i.e. the
    /// balance before minus `amount` (admin name `balanceAfter`).
    BalanceAfter,
}

impl RemainAmountConvention {
    /// The admin API's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BalanceBefore => "balanceBefore",
            Self::BalanceAfter => "balanceAfter",
        }
    }

    /// The balance `remainAmount` must equal for a cancel of `amount` from
    /// a cancellable balance `before`.
    pub(crate) fn expected(self, before: u64, amount: u64) -> u64 {
        match self {
            Self::BalanceBefore => before,
            Self::BalanceAfter => before.saturating_sub(amount),
        }
    }
}

/// Which earlier revision a generic `refundQueryFlag: "Y"` request is answered
/// with (instead of being processed as a new cancel).
///
/// The page only says the flag is "required in case of timeout"; how the
/// gateway matches it to the lost request is not documented. **Inference**;
/// the default is the worst case for a client, [`PgCnoAmount`](Self::PgCnoAmount).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum RefundQueryMatch {
    /// Any earlier successful generic revision of the same `pgCno` with the
    /// same `reviseTypeCode` and `amount` (the latest of them), whatever
    /// `remainAmount` says: its result is answered, echoing the new key, and
    /// nothing is cancelled (admin name `pgCnoAmount`).
    #[default]
    PgCnoAmount,
    /// As [`PgCnoAmount`](Self::PgCnoAmount), but when `remainAmount` is sent
    /// it must also match that revision's balance by the
    /// [`RemainAmountConvention`] in force (admin name `pgCnoAmountRemain`).
    PgCnoAmountRemain,
    /// Never: a refund query is processed as a normal cancel (admin name `never`).
    Never,
}

impl RefundQueryMatch {
    /// The admin API's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PgCnoAmount => "pgCnoAmount",
            Self::PgCnoAmountRemain => "pgCnoAmountRemain",
            Self::Never => "never",
        }
    }
}

/// The settings that can change while the sandbox runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// See [`RemainAmountConvention`].
    pub remain_amount_convention: RemainAmountConvention,
    /// See [`RefundQueryMatch`].
    pub refund_query_match: RefundQueryMatch,
    /// Added before every provider endpoint request is processed (not the
    /// `/sandbox/` admin API).
    pub latency: Duration,
}

impl Settings {
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

    /// Sets [`latency`](Self::latency).
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
}

/// The fixed timing limits the settings are checked against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub(crate) processing_bound: Duration,
    pub(crate) timeout_fault_delay: Duration,
}

impl Bounds {
    /// Every request is processed (or dropped) within `processing_bound`
    /// after it arrived: `latency + timeout_fault_delay` must fit in it.
    pub(crate) fn check(&self, latency: Duration) -> Result<(), SandboxError> {
        if self.timeout_fault_delay > self.processing_bound {
            return Err(SandboxError::InvalidConfig {
                field: "timeout_fault_delay",
                rule: format!(
                    "must not exceed processing_bound ({} ms)",
                    self.processing_bound.as_millis()
                ),
            });
        }
        if latency.saturating_add(self.timeout_fault_delay) > self.processing_bound {
            return Err(SandboxError::InvalidConfig {
                field: "latency",
                rule: format!(
                    "plus timeout_fault_delay ({} ms) must not exceed processing_bound ({} ms)",
                    self.timeout_fault_delay.as_millis(),
                    self.processing_bound.as_millis()
                ),
            });
        }
        Ok(())
    }
}

/// The body of `POST /sandbox/settings`: any subset of the settings.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SettingsPatch {
    remain_amount_convention: Option<RemainAmountConvention>,
    refund_query_match: Option<RefundQueryMatch>,
    latency_ms: Option<u64>,
}

impl SettingsPatch {
    /// Parses the admin body; the error names the rule.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, SandboxError> {
        serde_json::from_slice(body).map_err(|e| SandboxError::InvalidConfig {
            field: "settings",
            rule: format!(
                "must be a JSON object with any of remainAmountConvention (balanceBefore|balanceAfter), refundQueryMatch (pgCnoAmount|pgCnoAmountRemain|never), latencyMs (integer): {e}"
            ),
        })
    }

    /// The settings with this patch applied.
    pub(crate) fn apply_to(&self, mut s: Settings) -> Settings {
        if let Some(c) = self.remain_amount_convention {
            s.remain_amount_convention = c;
        }
        if let Some(m) = self.refund_query_match {
            s.refund_query_match = m;
        }
        if let Some(ms) = self.latency_ms {
            s.latency = Duration::from_millis(ms);
        }
        s
    }
}

/// The JSON `GET /sandbox/settings` answers.
pub(crate) fn to_json(s: &Settings, bounds: &Bounds) -> serde_json::Value {
    serde_json::json!({
        "remainAmountConvention": s.remain_amount_convention.as_str(),
        "refundQueryMatch": s.refund_query_match.as_str(),
        "latencyMs": u64::try_from(s.latency.as_millis()).unwrap_or(u64::MAX),
        "processingBoundMs": u64::try_from(bounds.processing_bound.as_millis()).unwrap_or(u64::MAX),
        "timeoutFaultDelayMs": u64::try_from(bounds.timeout_fault_delay.as_millis()).unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_parses_and_applies() {
        let p = SettingsPatch::parse(
            br#"{"remainAmountConvention":"balanceAfter","refundQueryMatch":"never"}"#,
        )
        .unwrap();
        let s = p.apply_to(Settings::default().with_latency(Duration::from_millis(5)));
        assert_eq!(
            s.remain_amount_convention,
            RemainAmountConvention::BalanceAfter
        );
        assert_eq!(s.refund_query_match, RefundQueryMatch::Never);
        assert_eq!(s.latency, Duration::from_millis(5), "untouched");
        for bad in [
            &br#"{"refundQueryMatch":"pgcnoamount"}"#[..],
            br#"{"latencyMs":-1}"#,
            br#"{"other":1}"#,
            b"[]",
            b"",
        ] {
            assert!(SettingsPatch::parse(bad).is_err());
        }
    }

    #[test]
    fn bounds() {
        let b = Bounds {
            processing_bound: Duration::from_millis(100),
            timeout_fault_delay: Duration::from_millis(60),
        };
        assert!(b.check(Duration::from_millis(40)).is_ok());
        assert!(b.check(Duration::from_millis(41)).is_err());
        let b = Bounds {
            processing_bound: Duration::from_millis(100),
            timeout_fault_delay: Duration::from_millis(101),
        };
        assert!(b.check(Duration::ZERO).is_err());
        assert_eq!(RemainAmountConvention::BalanceAfter.expected(10, 3), 7);
        assert_eq!(RemainAmountConvention::BalanceBefore.expected(10, 3), 10);
    }
}
