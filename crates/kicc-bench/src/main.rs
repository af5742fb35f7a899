//! `kicc-bench`: N Alipay cancels at concurrency C through the SDK, raw hyper (prebuilt bytes,
//! and signing and reading per request) and a hand-written reqwest client (and, as a
//! diagnostic, the SDK's transport alone), against the sandbox running in this process on
//! loopback; then the same one request at a time.
//!
//! ```text
//! kicc-bench [--requests N] [--concurrency C] [--rounds R] [--warmup W] [--quick]
//!            [--only sdk|raw_hyper|reqwest|sdk_transport|raw_hyper_signed]
//! ```
//!
//! One tokio multi-thread runtime (2 workers) runs the sandbox and the clients. Each round
//! sends N cancels per contender, the contenders taking turns in an order that rotates every
//! round, so drift on a shared machine does not favour one of them; a warm-up opens the
//! connections first. Prints `name value unit` lines: throughput and p50 / p99 latency per
//! contender over all rounds, and the ratios SDK / raw hyper, SDK / reqwest and SDK / signed
//! raw hyper, each the median over rounds of that round's ratio (paired, so slow phases of
//! the machine cancel).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use kicc_bench::{percentile, run, Clients, Contender, Figures, Job};
use kicc_sandbox::{Channel, Currency, Sandbox, SandboxConfig, SandboxHandle, DEFAULT_SECRET_KEY};

const USAGE: &str = "usage: kicc-bench [--requests N] [--concurrency C] [--rounds R] [--warmup W] \
                     [--quick] [--only sdk|raw_hyper|reqwest|sdk_transport|raw_hyper_signed]";

#[derive(Debug, Clone, Copy)]
struct Options {
    requests: usize,
    concurrency: usize,
    rounds: usize,
    warmup: usize,
    /// Only these contenders (for profiling one of them); all three by default.
    only: Option<Contender>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        requests: 2000,
        concurrency: 8,
        rounds: 15,
        warmup: 500,
        only: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|&v: &usize| v > 0)
                .ok_or(format!("{name} needs a positive number\n{USAGE}"))
        };
        match a.as_str() {
            "--requests" => o.requests = number("--requests")?,
            "--concurrency" => o.concurrency = number("--concurrency")?,
            "--rounds" => o.rounds = number("--rounds")?,
            "--warmup" => o.warmup = number("--warmup")?,
            "--quick" => {
                o.requests = 500;
                o.rounds = 9;
                o.warmup = 300;
            }
            "--only" => {
                let name = it.next().map(String::as_str).unwrap_or("");
                o.only = Some(
                    Contender::ALL
                        .into_iter()
                        .find(|c| c.name() == name)
                        .ok_or(format!(
                            "--only needs sdk, raw_hyper, reqwest, sdk_transport or raw_hyper_signed\n{USAGE}"
                        ))?,
                );
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kicc-bench: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(options)) {
        Ok(figures) => {
            print!("{}", figures.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kicc-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Makes `n` jobs for `who`, each with a fresh payment and key.
fn jobs(
    sandbox: &SandboxHandle,
    clients: &Clients,
    who: Contender,
    n: usize,
    serial: &mut u64,
) -> Result<Arc<Vec<Job>>, String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let payment = sandbox
            .create_payment(Channel::Alipay, 10_000, Currency::Krw)
            .map_err(|e| format!("creating a payment: {e}"))?;
        *serial += 1;
        out.push(clients.job(who, payment.pg_cno, format!("KB{serial:012}"))?);
    }
    Ok(Arc::new(out))
}

async fn bench(o: Options) -> Result<Figures, String> {
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sandbox = Sandbox::start(addr, SandboxConfig::default())
        .await
        .map_err(|e| format!("starting the sandbox: {e}"))?;
    let clients = Arc::new(Clients::new(
        &sandbox.base_url(),
        sandbox.mall_id(),
        DEFAULT_SECRET_KEY,
        o.concurrency.max(8),
    )?);
    eprintln!(
        "kicc-bench: sandbox at {}; {} rounds x {} cancels per contender, concurrency {}",
        sandbox.base_url(),
        o.rounds,
        o.requests,
        o.concurrency
    );
    let mut serial = 0u64;
    let mut f = Figures::new();
    f.push(
        "e2e_requests_per_contender",
        (o.requests * o.rounds) as f64,
        "requests",
    );
    f.push("e2e_concurrency", o.concurrency as f64, "tasks");
    phase(
        &sandbox,
        &clients,
        &o,
        o.concurrency,
        "e2e",
        &mut serial,
        &mut f,
    )
    .await?;
    // One request at a time: latency without queueing behind the other in-flight requests.
    let sequential = Options {
        requests: (o.requests / 4).max(50),
        ..o
    };
    eprintln!("kicc-bench: the same, one request at a time");
    phase(
        &sandbox,
        &clients,
        &sequential,
        1,
        "e2e_c1",
        &mut serial,
        &mut f,
    )
    .await?;
    sandbox.shutdown().await;
    Ok(f)
}

/// Warm-up, then `o.rounds` rounds of `o.requests` cancels per contender at `concurrency`;
/// adds the figures, named `{prefix}_...`.
async fn phase(
    sandbox: &SandboxHandle,
    clients: &Arc<Clients>,
    o: &Options,
    concurrency: usize,
    prefix: &str,
    serial: &mut u64,
    f: &mut Figures,
) -> Result<(), String> {
    let selected = |who: Contender| o.only.is_none_or(|only| only == who);
    for who in Contender::ALL.into_iter().filter(|&w| selected(w)) {
        let batch = jobs(sandbox, clients, who, o.warmup.min(o.requests), serial)?;
        let r = run(Arc::clone(clients), who, batch, concurrency).await;
        if r.errors > 0 {
            return Err(format!(
                "warm-up of {}: {} failed, first: {}",
                who.name(),
                r.errors,
                r.first_error.unwrap_or_default()
            ));
        }
    }

    const N: usize = Contender::ALL.len();
    let mut latencies: [Vec<Duration>; N] = Default::default();
    let mut walls = [Duration::ZERO; N];
    let mut client_times: Vec<Duration> = Vec::new();
    // Per round and contender: throughput, p50, p99 (for the paired ratios).
    let mut per_round: Vec<[[f64; 3]; N]> = Vec::with_capacity(o.rounds);
    for round in 0..o.rounds {
        let mut line = format!("  round {}:", round + 1);
        let mut this_round = [[0.0; 3]; N];
        for k in 0..N {
            let who = Contender::ALL[(round + k) % N];
            if !selected(who) {
                continue;
            }
            let batch = jobs(sandbox, clients, who, o.requests, serial)?;
            let r = run(Arc::clone(clients), who, batch, concurrency).await;
            if r.errors > 0 {
                return Err(format!(
                    "round {} of {}: {} failed, first: {}",
                    round + 1,
                    who.name(),
                    r.errors,
                    r.first_error.unwrap_or_default()
                ));
            }
            let mut sorted = r.latencies.clone();
            sorted.sort_unstable();
            let us = |p: f64| percentile(&sorted, p).unwrap_or_default().as_secs_f64() * 1e6;
            let stats = [o.requests as f64 / r.wall.as_secs_f64(), us(50.0), us(99.0)];
            line.push_str(&format!(
                " {} {:.0} req/s p50 {:.0} us;",
                who.name(),
                stats[0],
                stats[1]
            ));
            this_round[who.index()] = stats;
            latencies[who.index()].extend(r.latencies);
            client_times.extend(r.client_times);
            walls[who.index()] += r.wall;
        }
        per_round.push(this_round);
        eprintln!("{line}");
    }

    for who in Contender::ALL {
        let i = who.index();
        let sorted = {
            let mut v = std::mem::take(&mut latencies[i]);
            v.sort_unstable();
            v
        };
        let us = |p: f64| percentile(&sorted, p).unwrap_or_default().as_secs_f64() * 1e6;
        let name = who.name();
        f.push(
            format!("{prefix}_{name}_throughput"),
            sorted.len() as f64 / walls[i].as_secs_f64(),
            "req/s",
        );
        f.push(format!("{prefix}_{name}_p50"), us(50.0), "us");
        f.push(format!("{prefix}_{name}_p99"), us(99.0), "us");
    }
    // The SDK's own time per cancel under this load (latency minus its transport's time).
    client_times.sort_unstable();
    if let Some(p50) = percentile(&client_times, 50.0) {
        f.push(
            format!("{prefix}_sdk_own_time_p50"),
            p50.as_secs_f64() * 1e6,
            "us",
        );
    }
    // Ratios: the median over rounds of each round's SDK / other figure. Each round measures
    // the contenders back to back, so drift on a shared machine cancels in its ratio.
    // The goals compare the SDK with raw hyper and reqwest; the next two split the SDK's
    // cost into its HTTP layer (transport alone vs raw hyper) and its protocol work; the last
    // compares it with the least a correct integration does per request on the same client.
    for (who, other) in [
        (Contender::Sdk, Contender::RawHyper),
        (Contender::Sdk, Contender::Reqwest),
        (Contender::SdkTransport, Contender::RawHyper),
        (Contender::Sdk, Contender::SdkTransport),
        (Contender::Sdk, Contender::RawHyperSigned),
    ] {
        let (i, j) = (who.index(), other.index());
        let pair = format!("{}_vs_{}", who.name(), other.name());
        for (stat, what) in [(1usize, "p50"), (2, "p99"), (0, "throughput")] {
            let mut ratios: Vec<f64> = per_round
                .iter()
                .filter(|r| r[i][stat] > 0.0 && r[j][stat] > 0.0)
                .map(|r| r[i][stat] / r[j][stat])
                .collect();
            ratios.sort_by(f64::total_cmp);
            if let Some(median) = ratios.get(ratios.len() / 2) {
                f.push(format!("{prefix}_{what}_ratio_{pair}"), *median, "ratio");
            }
        }
    }
    Ok(())
}
