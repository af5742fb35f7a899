//! `kicc-soak`: the randomized fault soak (see the library docs). Prints `name value` lines
//! and one line per violation; exits 1 on any violation, 2 on a harness error.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kicc_soak::{SoakConfig, Timing};

/// Randomized faulted cancels through the real clients against the in-process sandbox.
#[derive(Debug, Parser)]
#[command(name = "kicc-soak")]
struct Args {
    /// How many scenarios.
    #[arg(long, default_value_t = 200)]
    scenarios: u64,
    /// The run's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The index of the first scenario (rerun one: `--first I --scenarios 1`).
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Scenarios run at once (one sandbox each).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The SDK's first backoff, in ms (later ones double, up to 4 times this).
    #[arg(long, default_value_t = 5)]
    backoff_ms: u64,
    /// Multiplies every clock (client timeout, stall, bounds, settle, webhook delay): raise it
    /// on a loaded machine, where a 100 ms client timeout may expire without any fault.
    #[arg(long, default_value_t = 1)]
    time_scale: u32,
    /// Overrides the SDK's processing bound, in ms (a control: below the sandbox's stall
    /// the SDK looks keys up too early, and the soak must then find double cancels).
    #[arg(long)]
    sdk_processing_bound_ms: Option<u64>,
    /// Also print one line per scenario (outcome, resume outcome, description) on stderr.
    #[arg(long)]
    verbose: bool,
    /// Never send generic refund queries (`refundQueryFlag = "Y"`).
    #[arg(long)]
    no_refund_queries: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let base = Timing::default();
    let k = args.time_scale.max(1);
    let timing = Timing {
        client_timeout: base.client_timeout * k,
        timeout_fault_delay: base.timeout_fault_delay * k,
        sandbox_processing_bound: base.sandbox_processing_bound * k,
        sdk_processing_bound: args
            .sdk_processing_bound_ms
            .map_or(base.sdk_processing_bound * k, Duration::from_millis),
        backoff: Duration::from_millis(args.backoff_ms),
        settle: base.settle * k,
        webhook_delay: base.webhook_delay * k,
        wechat_wait: base.wechat_wait * k,
    };
    let config = SoakConfig {
        seed: args.seed,
        first: args.first,
        scenarios: args.scenarios,
        concurrency: args.concurrency,
        timing,
        refund_queries: !args.no_refund_queries,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kicc-soak: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(kicc_soak::run(config)) {
        Ok(report) => {
            if args.verbose {
                for line in &report.lines {
                    eprintln!("{line}");
                }
            }
            print!("{report}");
            if report.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("kicc-soak: {e}");
            ExitCode::from(2)
        }
    }
}
