//! Randomized scenarios, each derived from the run's seed and its own index only, so any one
//! of them can be rerun alone (`--first INDEX --scenarios 1`).

use std::fmt;

use kicc_core::Rng;
use kicc_sandbox::{
    FaultKind, RefundQueryMatch, RemainAmountConvention, ALIPAY_REVISE_PATH, GENERIC_REVISE_PATH,
    RETRIEVE_TRANSACTION_PATH, WECHAT_FIND_PATH, WECHAT_REVISE_PATH,
};

/// The channel and payment method a scenario cancels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Generic card payment (partial code 32).
    Card,
    /// Generic bank transfer (partial code 33).
    Transfer,
    /// Generic mobile payment (partial code 33).
    Mobile,
    /// Alipay in won.
    AlipayKrw,
    /// Alipay in US dollars (cents).
    AlipayUsd,
    /// WeChat Pay through KICC, in won.
    Wechat,
}

impl Method {
    const ALL: [Method; 6] = [
        Method::Card,
        Method::Transfer,
        Method::Mobile,
        Method::AlipayKrw,
        Method::AlipayUsd,
        Method::Wechat,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::Card => "card",
            Method::Transfer => "transfer",
            Method::Mobile => "mobile",
            Method::AlipayKrw => "alipay-krw",
            Method::AlipayUsd => "alipay-usd",
            Method::Wechat => "wechat",
        }
    }

    /// Whether the generic revise API cancels it.
    pub fn is_generic(self) -> bool {
        matches!(self, Method::Card | Method::Transfer | Method::Mobile)
    }
}

/// What the scenario's request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Cancel the whole remaining balance (`40`).
    Full,
    /// Cancel this amount (minor units), at most the balance.
    Partial(u64),
    /// Cancel this amount, more than the balance (the gateway refuses it).
    OverCancel(u64),
    /// The payment was fully cancelled earlier; ask again (full, or this partial amount).
    AlreadyCancelled(Option<u64>),
    /// A zero amount: refused by the builder, nothing is sent.
    ZeroAmount,
    /// A reason / memo with a forbidden character: refused by the builder.
    ForbiddenCharacter,
    /// Generic only: `remainAmount` below the amount: refused by the builder.
    RemainBelowAmount(u64),
}

impl RequestKind {
    /// Whether the SDK must refuse it before sending.
    pub fn is_invalid(self) -> bool {
        matches!(
            self,
            RequestKind::ZeroAmount
                | RequestKind::ForbiddenCharacter
                | RequestKind::RemainBelowAmount(_)
        )
    }
}

/// The `remainAmount` a generic partial cancel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remain {
    /// None.
    Absent,
    /// The true balance, in the sandbox's convention.
    Correct,
    /// A wrong balance (the gateway refuses it with its rule code).
    Stale,
}

/// One fault injected before the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    /// The API path it hits.
    pub path: &'static str,
    /// What it does.
    pub kind: FaultKind,
    /// Whether the request is processed before the fault (`None`: the kind's default).
    pub apply: Option<bool>,
    /// How many calls it hits.
    pub times: u32,
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.rsplit('/').next().unwrap_or(self.path);
        let path = match self.path {
            ALIPAY_REVISE_PATH => "alipay/revise",
            WECHAT_REVISE_PATH => "wechatpay/revise",
            _ => path,
        };
        let kind = match &self.kind {
            FaultKind::ResCd(c) => format!("resCd:{c}"),
            FaultKind::WechatFail { res_cd } => format!("wechatFail:{res_cd}"),
            k => k.name().to_owned(),
        };
        let apply = match self.apply {
            Some(true) => "+apply",
            Some(false) => "-apply",
            None => "",
        };
        write!(f, "{path}:{kind}{apply}x{}", self.times)
    }
}

/// One randomized scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Its index in the run.
    pub index: u64,
    /// The channel.
    pub method: Method,
    /// The payment's amount, minor units.
    pub amount: u64,
    /// Partial cancels made (without faults) before the request.
    pub earlier: Vec<u64>,
    /// The request.
    pub kind: RequestKind,
    /// Generic partial cancels: the `remainAmount` sent.
    pub remain: Remain,
    /// The faults injected before the request (0 to 4).
    pub faults: Vec<FaultSpec>,
    /// The SDK's `max_attempts` (1 to 4).
    pub max_attempts: u32,
    /// Generic: `RetryPolicy::refund_query_on_resend`.
    pub refund_query_on_resend: bool,
    /// Generic: resume with `resume_with_refund_query` instead of `resume`.
    pub resume_with_refund_query: bool,
    /// The sandbox's refund-query matching rule.
    pub refund_query_match: RefundQueryMatch,
    /// The sandbox's `remainAmount` convention.
    pub remain_convention: RemainAmountConvention,
    /// The sandbox's latency, ms.
    pub latency_ms: u64,
}

impl Scenario {
    /// The amount the request asks to cancel when it is valid, given the balance before it.
    pub fn requested(&self, balance: u64) -> u64 {
        match self.kind {
            RequestKind::Full | RequestKind::AlreadyCancelled(None) => balance,
            RequestKind::Partial(a)
            | RequestKind::OverCancel(a)
            | RequestKind::AlreadyCancelled(Some(a))
            | RequestKind::RemainBelowAmount(a) => a,
            RequestKind::ZeroAmount | RequestKind::ForbiddenCharacter => 0,
        }
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        let faults: Vec<String> = self.faults.iter().map(ToString::to_string).collect();
        format!(
            "{} amount={} earlier={:?} kind={:?} remain={:?} faults=[{}] max_attempts={} rq_on_resend={} resume_rq={} match={:?} convention={:?} latency_ms={}",
            self.method.name(),
            self.amount,
            self.earlier,
            self.kind,
            self.remain,
            faults.join(","),
            self.max_attempts,
            self.refund_query_on_resend,
            self.resume_with_refund_query,
            self.refund_query_match,
            self.remain_convention,
            self.latency_ms,
        )
    }

    /// The scenario numbered `index` of the run seeded `seed`.
    pub fn generate(seed: u64, index: u64) -> Scenario {
        let mut rng = rng_for(seed, index);
        let r = &mut rng;
        let method = Method::ALL[pick(r, Method::ALL.len())];
        let amount = if method == Method::AlipayUsd {
            100 * (10 + below(r, 190)) + below(r, 100)
        } else {
            1_000 * (10 + below(r, 90))
        };
        let earlier: Vec<u64> = (0..below(r, 3))
            .map(|_| 1 + below(r, amount / 4 - 1))
            .collect();
        let balance = amount - earlier.iter().sum::<u64>();
        let partial = |r: &mut Rng| -> u64 {
            match below(r, 6) {
                0 | 1 if !earlier.is_empty() => earlier[pick(r, earlier.len())],
                2 => balance,
                _ => 1 + below(r, balance - 1),
            }
        };
        let kind = match below(r, 20) {
            0..=4 => RequestKind::Full,
            5..=11 => RequestKind::Partial(partial(r)),
            12 | 13 => RequestKind::OverCancel(balance + 1 + below(r, 999)),
            14 | 15 => {
                if below(r, 2) == 0 {
                    RequestKind::AlreadyCancelled(None)
                } else {
                    RequestKind::AlreadyCancelled(Some(partial(r)))
                }
            }
            16 => RequestKind::ZeroAmount,
            17 => RequestKind::ForbiddenCharacter,
            18 if method.is_generic() => {
                let a = 2 + below(r, balance - 2);
                RequestKind::RemainBelowAmount(a)
            }
            _ => RequestKind::Partial(partial(r)),
        };
        let remain = if method.is_generic() && matches!(kind, RequestKind::Partial(_)) {
            match below(r, 4) {
                0 | 1 => Remain::Absent,
                2 => Remain::Correct,
                _ => Remain::Stale,
            }
        } else {
            Remain::Absent
        };
        let faults = (0..below(r, 5)).map(|_| fault(r, method)).collect();
        let max_attempts = 1 + u32::try_from(below(r, 4)).unwrap_or(0);
        let refund_query_on_resend = below(r, 3) == 0;
        let resume_with_refund_query = below(r, 3) == 0;
        let refund_query_match = match below(r, 4) {
            0 => RefundQueryMatch::PgCnoAmountRemain,
            1 => RefundQueryMatch::Never,
            _ => RefundQueryMatch::PgCnoAmount,
        };
        let remain_convention = if below(r, 3) == 0 {
            RemainAmountConvention::BalanceAfter
        } else {
            RemainAmountConvention::BalanceBefore
        };
        let latency_ms = if below(r, 4) == 0 { below(r, 20) } else { 0 };
        Scenario {
            index,
            method,
            amount,
            earlier,
            kind,
            remain,
            faults,
            max_attempts,
            refund_query_on_resend,
            resume_with_refund_query,
            refund_query_match,
            remain_convention,
            latency_ms,
        }
    }
}

/// A fault on one of the paths `method`'s request, look-ups and status queries use.
fn fault(r: &mut Rng, method: Method) -> FaultSpec {
    let (path, lookup) = match method {
        m if m.is_generic() => {
            if below(r, 3) == 0 {
                (RETRIEVE_TRANSACTION_PATH, true)
            } else {
                (GENERIC_REVISE_PATH, false)
            }
        }
        Method::Wechat => {
            if below(r, 3) == 0 {
                (WECHAT_FIND_PATH, true)
            } else {
                (WECHAT_REVISE_PATH, false)
            }
        }
        _ => (ALIPAY_REVISE_PATH, false),
    };
    let times = 1 + u32::try_from(below(r, 2)).unwrap_or(0);
    let wechat_revise = path == WECHAT_REVISE_PATH;
    let choice = below(r, if wechat_revise { 8 } else { 5 });
    let apply_either = |r: &mut Rng| match below(r, 3) {
        0 => None,
        1 => Some(true),
        _ => Some(false),
    };
    let (kind, apply) = match choice {
        0 => (FaultKind::Timeout, apply_either(r)),
        1 => (FaultKind::Http500, apply_either(r)),
        2 => (FaultKind::Drop, apply_either(r)),
        3 | 4 => {
            let code = res_cd(r, method, lookup);
            // A code the channel reads as "retry / unknown" may come after processing; a
            // code it reads as a decline never does (a gateway that declines after
            // cancelling is a lie no client can detect), so those are never applied.
            let retry_code = match method {
                m if m.is_generic() => code == "VTIM" || code == "VT00",
                _ => code.starts_with("A21"),
            };
            let apply = if retry_code && !lookup {
                apply_either(r)
            } else {
                Some(false)
            };
            (FaultKind::ResCd(code), apply)
        }
        5 => (FaultKind::WithholdWebhook, None),
        6 => {
            let res_cd = if below(r, 2) == 0 { "W001" } else { "F123" };
            (
                FaultKind::WechatFail {
                    res_cd: res_cd.to_owned(),
                },
                None,
            )
        }
        _ => (FaultKind::WechatVoid, None),
    };
    FaultSpec {
        path,
        kind,
        apply,
        times,
    }
}

fn res_cd(r: &mut Rng, method: Method, lookup: bool) -> String {
    let codes: &[&str] = if lookup {
        // Never the look-up's own "not found" code: a forged R001 would be a gateway lying
        // that a processed request was not processed.
        &["VTIM", "E501", "9999", "A212"]
    } else if method.is_generic() {
        &["VTIM", "VT00", "VTIM", "A212", "E501", "P999"]
    } else {
        &["A210", "A212", "A219", "A215", "VTIM", "E501"]
    };
    codes[pick(r, codes.len())].to_owned()
}

/// The scenario's own generator: SplitMix64 of the seed and index spread over 32 bytes.
fn rng_for(seed: u64, index: u64) -> Rng {
    let mut x = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes());
    }
    Rng::from_seed(bytes)
}

/// A value in `0..n` (0 when `n` is 0).
fn below(r: &mut Rng, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        r.below_or_equal(n - 1)
    }
}

fn pick(r: &mut Rng, len: usize) -> usize {
    usize::try_from(below(r, len as u64)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_depends_only_on_seed_and_index() {
        for i in 0..200 {
            assert_eq!(Scenario::generate(7, i), Scenario::generate(7, i));
        }
        let differs = (0..50).any(|i| Scenario::generate(7, i) != Scenario::generate(8, i));
        assert!(differs);
    }

    #[test]
    fn scenarios_cover_every_channel_kind_and_fault() {
        let all: Vec<Scenario> = (0..2_000).map(|i| Scenario::generate(1, i)).collect();
        for m in Method::ALL {
            assert!(all.iter().any(|s| s.method == m), "{m:?}");
        }
        for name in [
            "timeout",
            "http500",
            "drop",
            "resCd",
            "withholdWebhook",
            "wechatFail",
            "wechatVoid",
        ] {
            assert!(
                all.iter()
                    .flat_map(|s| &s.faults)
                    .any(|f| f.kind.name() == name),
                "{name}"
            );
        }
        for path in [RETRIEVE_TRANSACTION_PATH, WECHAT_FIND_PATH] {
            assert!(all.iter().flat_map(|s| &s.faults).any(|f| f.path == path));
        }
        assert!(all.iter().any(|s| s.kind.is_invalid()));
        assert!(all
            .iter()
            .any(|s| matches!(s.kind, RequestKind::OverCancel(_))));
        // Every valid partial fits the balance; every over-cancel exceeds it.
        for s in &all {
            let balance = s.amount - s.earlier.iter().sum::<u64>();
            match s.kind {
                RequestKind::Partial(a) => assert!((1..=balance).contains(&a), "{s:?}"),
                RequestKind::OverCancel(a) => assert!(a > balance),
                _ => {}
            }
            assert!((1..=4).contains(&s.max_attempts));
            assert!(s.faults.len() <= 4);
        }
    }
}
