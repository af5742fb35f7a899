//! A randomized fault soak of the SDK's exactly-once promise (issue 9, point 8).
//!
//! Each scenario creates a payment in the real sandbox ([`kicc_sandbox::Sandbox`], started in
//! this process on `127.0.0.1:0`), makes 0 to 2 earlier cancels, injects 0 to 4 faults on the
//! paths the request, its look-ups and its status queries use, and sends one request through
//! the real client (`kicc-generic`, `kicc-alipay`, `kicc-wechat` over
//! `kicc_transport::HyperTransport`). It then compares the payment's state in the sandbox
//! before and after:
//!
//! - success: exactly one new cancel, applied, of exactly the requested amount, the one the
//!   client reported;
//! - declined, not processed, invalid, already cancelled: nothing changed;
//! - unknown (`Error::Ambiguous`): at most one new cancel; then, with every fault used up,
//!   the resume path (generic `GenericClient::resume` / `resume_with_refund_query` with the
//!   error's `sent`, wallet `resume` with the identical message) finishes it without a second
//!   cancel;
//! - WeChat: an accepted cancel is finished by `wait_for_result` (notices to a loopback
//!   receiver, confirmed by status queries), a pending one by waiting again once its faults
//!   are used up;
//! - never two cancels from one request.
//!
//! A scenario depends only on the run's seed and its index ([`Scenario::generate`]), and so
//! does the generator of its idempotency keys; each worker resets its own sandbox before each
//! scenario, so the sandbox's identifiers depend only on the run's seed and the worker that
//! ran it. Only timing varies between runs: rerun one scenario alone with
//! `--seed S --first I --scenarios 1`.
//!
//! Faults the soak never injects, because they make the gateway lie in a way no client can
//! detect: a decline code (`resCd` the channel reads as a refusal) sent AFTER the request was
//! processed, and a forged "not found" (`R001`) on the look-up.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod run;
mod scenario;
mod timing;
mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kicc_sandbox::{Sandbox, SandboxConfig};

pub use run::ScenarioResult;
pub use scenario::{FaultSpec, Method, Remain, RequestKind, Scenario};
pub use timing::Timing;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoakConfig {
    /// The run's seed.
    pub seed: u64,
    /// The index of the first scenario.
    pub first: u64,
    /// How many scenarios.
    pub scenarios: u64,
    /// How many run at once (each worker has its own sandbox, since faults hit a path, not a
    /// payment).
    pub concurrency: usize,
    /// The clocks.
    pub timing: Timing,
    /// Whether generic scenarios may send refund queries (`refundQueryFlag = "Y"`: the
    /// policy's `refund_query_on_resend`, and `resume_with_refund_query`).
    pub refund_queries: bool,
}

impl Default for SoakConfig {
    /// Seed 1, scenarios 0..100, 8 at a time, default timing, refund queries included.
    fn default() -> Self {
        SoakConfig {
            seed: 1,
            first: 0,
            scenarios: 100,
            concurrency: 8,
            timing: Timing::default(),
            refund_queries: true,
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The run's seed.
    pub seed: u64,
    /// The scenario's index.
    pub scenario: u64,
    /// Which rule.
    pub kind: &'static str,
    /// What happened.
    pub detail: String,
    /// The scenario, in one line.
    pub description: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "violation seed={} scenario={} kind={}: {} | {}",
            self.seed, self.scenario, self.kind, self.detail, self.description
        )
    }
}

/// The figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The run's seed.
    pub seed: u64,
    /// Scenarios run.
    pub scenarios: u64,
    /// Outcomes of the requests, by name.
    pub outcomes: BTreeMap<String, u64>,
    /// Outcomes of the resumes and second waits, by name.
    pub resumes: BTreeMap<String, u64>,
    /// WeChat results by how they became known (`notice`, `status_query`).
    pub wechat_results: BTreeMap<String, u64>,
    /// Scenarios by channel.
    pub channels: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Every violation.
    pub violations: Vec<Violation>,
    /// One line per scenario (index, outcome, resume outcome, description), in order.
    pub lines: Vec<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Report {
    /// Violations by kind.
    pub fn violations_by_kind(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for v in &self.violations {
            *m.entry(v.kind).or_insert(0) += 1;
        }
        m
    }
}

impl fmt::Display for Report {
    /// `name value` lines, then one line per violation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {}", self.seed)?;
        writeln!(f, "scenarios {}", self.scenarios)?;
        writeln!(f, "violations {}", self.violations.len())?;
        for (k, n) in self.violations_by_kind() {
            writeln!(f, "violations.{k} {n}")?;
        }
        for (k, n) in &self.outcomes {
            writeln!(f, "outcomes.{k} {n}")?;
        }
        for (k, n) in &self.resumes {
            writeln!(f, "resumed.{k} {n}")?;
        }
        for (k, n) in &self.wechat_results {
            writeln!(f, "wechat_results.{k} {n}")?;
        }
        for (k, n) in &self.channels {
            writeln!(f, "channels.{k} {n}")?;
        }
        for (k, n) in &self.faults {
            writeln!(f, "faults.{k} {n}")?;
        }
        writeln!(f, "elapsed_ms {}", self.elapsed.as_millis())?;
        for v in &self.violations {
            writeln!(f, "{v}")?;
        }
        Ok(())
    }
}

/// Runs the soak: `config.concurrency` workers, each with its own sandbox, take scenarios
/// `first..first + scenarios` in turn. Call it inside a multi-threaded tokio runtime.
pub async fn run(config: SoakConfig) -> Result<Report, String> {
    let end = config.first.saturating_add(config.scenarios);
    let scenarios = (config.first..end)
        .map(|i| {
            let mut s = Scenario::generate(config.seed, i);
            if !config.refund_queries {
                s.refund_query_on_resend = false;
                s.resume_with_refund_query = false;
            }
            s
        })
        .collect();
    run_scenarios(config, scenarios).await
}

/// Runs the given scenarios (for example a filtered selection of generated ones) with
/// `config`'s seed, concurrency and timing; `config.first`, `scenarios` and
/// `refund_queries` are not used.
pub async fn run_scenarios(config: SoakConfig, scenarios: Vec<Scenario>) -> Result<Report, String> {
    let started = Instant::now();
    let t = config.timing;
    let workers = config.concurrency.max(1);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(
        scenarios
            .into_iter()
            .collect::<std::collections::VecDeque<_>>(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let sandbox_config = SandboxConfig::default()
            .with_seed(config.seed ^ (w as u64).wrapping_mul(0x100_0000_01b3))
            .with_timeout_fault_delay(t.timeout_fault_delay)
            .with_processing_bound(t.sandbox_processing_bound)
            .with_webhook_delay(t.webhook_delay)
            .with_webhook_retry_interval(t.webhook_delay);
        let addr: SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
        let sandbox = Sandbox::start(addr, sandbox_config)
            .await
            .map_err(|e| format!("sandbox: {e}"))?;
        let worker = run::Worker::new(sandbox, t).await?;
        let queue = queue.clone();
        let seed = config.seed;
        tasks.spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(s) = next else { break };
                let r = worker.run(seed, &s).await;
                done.push((s, r));
            }
            worker.shutdown().await;
            done
        });
    }
    let mut report = Report {
        seed: config.seed,
        ..Report::default()
    };
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.map_err(|e| format!("worker panicked: {e}"))?);
    }
    all.sort_by_key(|(s, _)| s.index);
    for (s, r) in all {
        report.scenarios += 1;
        report.lines.push(format!(
            "scenario {} outcome={} resumed={} wechat={} | {}",
            s.index,
            r.outcome,
            r.resumed.unwrap_or("-"),
            r.wechat_source.unwrap_or("-"),
            s.describe()
        ));
        *report.outcomes.entry(r.outcome.to_owned()).or_insert(0) += 1;
        if let Some(resumed) = r.resumed {
            *report.resumes.entry(resumed.to_owned()).or_insert(0) += 1;
        }
        if let Some(source) = r.wechat_source {
            *report.wechat_results.entry(source.to_owned()).or_insert(0) += 1;
        }
        *report
            .channels
            .entry(s.method.name().to_owned())
            .or_insert(0) += 1;
        for f in &s.faults {
            *report.faults.entry(f.kind.name().to_owned()).or_insert(0) += 1;
        }
        for (kind, detail) in r.violations {
            report.violations.push(Violation {
                seed: config.seed,
                scenario: s.index,
                kind,
                detail,
                description: s.describe(),
            });
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}
