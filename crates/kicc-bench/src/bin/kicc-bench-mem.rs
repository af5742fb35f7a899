//! `kicc-bench-mem`: client-side heap per in-flight request, for the SDK, raw hyper and the
//! hand-written reqwest client.
//!
//! ```text
//! kicc-bench-mem [--concurrency C] [--stall-ms MS] [--repeats N]
//! ```
//!
//! The sandbox runs in a child process (this binary with `serve`), so the counting global
//! allocator of this process sees only the clients. For each contender: a warm-up batch
//! opens C pooled connections; then the sandbox is told to hold the next C cancels for
//! `stall-ms` before answering (its `timeout` fault), C cancels are sent at once, and the
//! peak heap above the level before the batch, divided by C, is the figure (the median of
//! `repeats` batches). Request bodies and inputs built before the batch are not counted.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kicc_bench::{run, Clients, Contender, Figures, Job};
use kicc_sandbox::{Sandbox, SandboxConfig, DEFAULT_MALL_ID, DEFAULT_SECRET_KEY};
use peak_alloc::PeakAlloc;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const USAGE: &str = "usage: kicc-bench-mem [--concurrency C] [--stall-ms MS] [--repeats N]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("serve") {
        serve(&args[1..])
    } else {
        measure(&args).map(|f| print!("{}", f.render()))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kicc-bench-mem: {e}");
            ExitCode::FAILURE
        }
    }
}

fn number(it: &mut std::slice::Iter<'_, String>, name: &str) -> Result<u64, String> {
    it.next()
        .and_then(|v| v.parse().ok())
        .filter(|&v: &u64| v > 0)
        .ok_or(format!("{name} needs a positive number\n{USAGE}"))
}

/// Child mode: a sandbox whose stall lasts `--stall-ms`, until stdin closes.
fn serve(args: &[String]) -> Result<(), String> {
    let mut stall = 300u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--stall-ms" => stall = number(&mut it, "--stall-ms")?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        let config =
            SandboxConfig::default().with_timeout_fault_delay(Duration::from_millis(stall));
        let sandbox = Sandbox::start(addr, config)
            .await
            .map_err(|e| format!("starting the sandbox: {e}"))?;
        println!("listening on {}", sandbox.base_url());
        // Serve until the parent closes our stdin (or exits).
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .map_err(|e| e.to_string())?;
        sandbox.shutdown().await;
        Ok(())
    })
}

/// Stops the child sandbox when dropped.
struct ChildSandbox(Child);

impl Drop for ChildSandbox {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

fn measure(args: &[String]) -> Result<Figures, String> {
    let (mut concurrency, mut stall, mut repeats) = (8usize, 300u64, 3usize);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--concurrency" => concurrency = number(&mut it, "--concurrency")? as usize,
            "--stall-ms" => stall = number(&mut it, "--stall-ms")?,
            "--repeats" => repeats = number(&mut it, "--repeats")? as usize,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["serve", "--stall-ms", &stall.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the sandbox process: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or("no stdout from the sandbox process")?;
    let child = ChildSandbox(child);
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .map_err(|e| e.to_string())?;
    let base_url = first
        .trim()
        .strip_prefix("listening on ")
        .ok_or(format!("unexpected first line from the sandbox: {first:?}"))?
        .to_owned();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let figures = runtime.block_on(async {
        let clients = Arc::new(Clients::new(
            &base_url,
            DEFAULT_MALL_ID,
            DEFAULT_SECRET_KEY,
            concurrency.max(8),
        )?);
        let mut serial = 0u64;
        let mut f = Figures::new();
        f.push("mem_concurrency", concurrency as f64, "requests");
        for who in Contender::ALL {
            // Warm-up: C requests held at once, so C connections are open and pooled.
            let batch = jobs(&clients, who, concurrency, &mut serial).await?;
            clients.admin_stall_next(concurrency).await?;
            check(
                run(Arc::clone(&clients), who, batch, concurrency).await,
                who,
            )?;

            let mut per_request = Vec::with_capacity(repeats);
            for _ in 0..repeats {
                let batch = jobs(&clients, who, concurrency, &mut serial).await?;
                clients.admin_stall_next(concurrency).await?;
                let before = HEAP.current_usage();
                HEAP.reset_peak_usage();
                let result = run(Arc::clone(&clients), who, batch, concurrency).await;
                let peak = HEAP.peak_usage();
                check(result, who)?;
                per_request.push(peak.saturating_sub(before) as f64 / concurrency as f64);
            }
            per_request.sort_by(f64::total_cmp);
            let median = per_request[per_request.len() / 2];
            eprintln!(
                "  {}: {per_request:?} bytes per in-flight request",
                who.name()
            );
            f.push(
                format!("mem_{}_peak_per_inflight", who.name()),
                median.round(),
                "bytes",
            );
        }
        f.ratio(
            "mem_ratio_sdk_vs_raw_hyper",
            "mem_sdk_peak_per_inflight",
            "mem_raw_hyper_peak_per_inflight",
        );
        f.ratio(
            "mem_ratio_sdk_vs_reqwest",
            "mem_sdk_peak_per_inflight",
            "mem_reqwest_peak_per_inflight",
        );
        Ok::<_, String>(f)
    })?;
    drop(child);
    Ok(figures)
}

async fn jobs(
    clients: &Clients,
    who: Contender,
    n: usize,
    serial: &mut u64,
) -> Result<Arc<Vec<Job>>, String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let pg_cno = clients.admin_create_payment(10_000).await?;
        *serial += 1;
        out.push(clients.job(who, pg_cno, format!("KM{serial:012}"))?);
    }
    Ok(Arc::new(out))
}

fn check(result: kicc_bench::RunResult, who: Contender) -> Result<(), String> {
    if result.errors > 0 {
        return Err(format!(
            "{}: {} failed, first: {}",
            who.name(),
            result.errors,
            result.first_error.unwrap_or_default()
        ));
    }
    Ok(())
}
