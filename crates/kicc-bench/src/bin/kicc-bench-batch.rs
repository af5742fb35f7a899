//! `kicc-bench-batch`: the batch figure of issue 10. N Alipay cancels at concurrency C against
//! the in-process sandbox with a 20 ms latency per request, three ways:
//!
//! - unledgered: C tasks calling `AlipayClient::cancel` (the SDK, nothing journaled);
//! - SQLite ledger: the intents imported, then `Ledger::run_batch` with C workers (every
//!   attempt durable before its first byte, `synchronous=FULL`);
//! - PostgreSQL ledger: the same, when `--postgres URL` (or `KICC_BENCH_POSTGRES_URL`) names
//!   a database (password from `PGPASSWORD` / `.pgpass`): the store's group committers
//!   (`--pg-committers`, default the store's 2) write every lease, attempt and outcome;
//!   `--pg-pool` pooled connections (default the store's 4) serve the import and reads.
//!
//! ```text
//! kicc-bench-batch [--quick] [--cancels N] [--concurrency C] [--latency-ms MS] [--postgres URL] [--pg-pool N] [--pg-committers N]
//! ```
//!
//! Prints `name value unit` lines: `batch_<way>_throughput` (cancels/s) and
//! `batch_<way>_ratio_vs_unledgered`. The ledgered time includes the import.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kicc_core::{BaseUrl, Environment, MallId, Merchant, PgCno, SecretKey};
use kicc_ledger::{
    BatchOptions, Channel, IntentParams, Ledger, LedgerUrl, PostgresStore, SqliteStore, Store,
};
use kicc_sandbox::{Sandbox, SandboxConfig, SandboxHandle, DEFAULT_MALL_ID, DEFAULT_SECRET_KEY};
use kicc_transport::HyperTransport;

const USAGE: &str = "usage: kicc-bench-batch [--quick] [--cancels N] [--concurrency C] [--latency-ms MS] [--postgres URL] [--pg-pool N] [--pg-committers N]";

struct Options {
    cancels: usize,
    concurrency: usize,
    latency: Duration,
    postgres: Option<String>,
    /// PostgreSQL pooled connections (default: the store's).
    pg_pool: Option<usize>,
    /// PostgreSQL group committers (default: the store's).
    pg_committers: Option<usize>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        cancels: 10_000,
        concurrency: 64,
        latency: Duration::from_millis(20),
        postgres: std::env::var("KICC_BENCH_POSTGRES_URL").ok(),
        pg_pool: None,
        pg_committers: None,
    };
    let mut it = args.iter();
    let number = |v: Option<&String>, name: &str| -> Result<u64, String> {
        v.and_then(|v| v.parse().ok())
            .filter(|&n: &u64| n > 0)
            .ok_or(format!("{name} needs a positive number\n{USAGE}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.cancels = 1_000,
            "--cancels" => o.cancels = number(it.next(), "--cancels")? as usize,
            "--concurrency" => o.concurrency = number(it.next(), "--concurrency")? as usize,
            "--pg-pool" => o.pg_pool = Some(number(it.next(), "--pg-pool")? as usize),
            "--pg-committers" => {
                o.pg_committers = Some(number(it.next(), "--pg-committers")? as usize)
            }
            "--latency-ms" => o.latency = Duration::from_millis(number(it.next(), "--latency-ms")?),
            "--postgres" => {
                o.postgres = Some(
                    it.next()
                        .ok_or(format!("--postgres needs a URL\n{USAGE}"))?
                        .clone(),
                )
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse(&args).and_then(|o| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(measure(o))
    });
    match result {
        Ok(lines) => {
            print!("{lines}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kicc-bench-batch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn payments(sb: &SandboxHandle, n: usize) -> Result<Vec<String>, String> {
    (0..n)
        .map(|_| {
            sb.create_payment(
                kicc_sandbox::Channel::Alipay,
                5_000,
                kicc_sandbox::Currency::Krw,
            )
            .map(|p| p.pg_cno)
            .map_err(|e| e.to_string())
        })
        .collect()
}

async fn unledgered(merchant: &Merchant, pg: Vec<String>, c: usize) -> Result<f64, String> {
    let client = Arc::new(kicc_alipay::AlipayClient::with_transport(
        merchant.clone(),
        HyperTransport::new().map_err(|e| e.to_string())?,
    ));
    let pg = Arc::new(pg);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (client, pg, next) = (client.clone(), pg.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = pg.get(i) else {
                    return Ok::<(), String>(());
                };
                let request = kicc_alipay::CancelRequest::full(
                    PgCno::new(p.as_str()).map_err(|e| e.to_string())?,
                );
                client.cancel(&request).await.map_err(|e| e.to_string())?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(pg.len() as f64 / started.elapsed().as_secs_f64())
}

async fn ledgered<S: Store + Sync>(
    store: S,
    merchant: &Merchant,
    pg: Vec<String>,
    c: usize,
    tag: &str,
) -> Result<f64, String> {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let specs = pg
        .iter()
        .enumerate()
        .map(|(i, p)| {
            IntentParams::new(
                format!("bench-{tag}-{run}-{i}"),
                Channel::Alipay,
                p.as_str(),
            )
            .validate()
            .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = specs.len();
    let ledger = Ledger::new(
        store,
        merchant.clone(),
        HyperTransport::new().map_err(|e| e.to_string())?,
    );
    let started = Instant::now();
    ledger
        .store()
        .import(specs)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|c| format!("{} conflicts", c.len()))?;
    let imported = started.elapsed().as_secs_f64();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let done = AtomicUsize::new(0);
    ledger
        .run_batch(BatchOptions::default().with_concurrency(c), rx, &|_| {
            done.fetch_add(1, Ordering::Relaxed);
        })
        .await
        .map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "batch: {tag}: import {imported:.2} s, run {:.2} s",
        secs - imported
    );
    if done.into_inner() < n {
        return Err(format!("{tag}: not every intent ran"));
    }
    Ok(n as f64 / secs)
}

async fn measure(o: Options) -> Result<String, String> {
    // No faults are injected; the stall of a `timeout` fault only has to fit the bound.
    let config = SandboxConfig {
        latency: o.latency,
        timeout_fault_delay: Duration::from_secs(1),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(
        "127.0.0.1:0"
            .parse()
            .map_err(|e: std::net::AddrParseError| e.to_string())?,
        config,
    )
    .await
    .map_err(|e| e.to_string())?;
    let merchant = Merchant::new(
        Environment::Custom(BaseUrl::new(sb.base_url()).map_err(|e| e.to_string())?),
        MallId::new(DEFAULT_MALL_ID).map_err(|e| e.to_string())?,
        SecretKey::new(DEFAULT_SECRET_KEY).map_err(|e| e.to_string())?,
    );
    let mut out = String::new();
    eprintln!(
        "batch: {} cancels at concurrency {}, {} ms latency",
        o.cancels,
        o.concurrency,
        o.latency.as_millis()
    );
    let base = unledgered(&merchant, payments(&sb, o.cancels)?, o.concurrency).await?;
    out.push_str(&format!("batch_unledgered_throughput {base:.1} req/s\n"));

    let dir = std::env::temp_dir().join(format!("kicc-bench-batch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let store = SqliteStore::open(dir.join("ledger.db"))
        .await
        .map_err(|e| e.to_string())?;
    let sqlite = ledgered(
        store,
        &merchant,
        payments(&sb, o.cancels)?,
        o.concurrency,
        "sqlite",
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let sqlite = sqlite?;
    out.push_str(&format!("batch_sqlite_throughput {sqlite:.1} req/s\n"));
    out.push_str(&format!(
        "batch_sqlite_ratio_vs_unledgered {:.3} ratio\n",
        sqlite / base
    ));

    match &o.postgres {
        Some(url) => {
            let LedgerUrl::Postgres(target) = LedgerUrl::parse(url).map_err(|e| e.to_string())?
            else {
                return Err(format!("--postgres needs a postgres:// URL, not {url:?}"));
            };
            let mut builder = PostgresStore::builder(&target);
            if let Some(n) = o.pg_pool {
                builder = builder.pool_size(n);
            }
            if let Some(n) = o.pg_committers {
                builder = builder.committers(n);
            }
            let store = builder.connect().await.map_err(|e| e.to_string())?;
            let pg = ledgered(
                store,
                &merchant,
                payments(&sb, o.cancels)?,
                o.concurrency,
                "pg",
            )
            .await?;
            out.push_str(&format!("batch_postgres_throughput {pg:.1} req/s\n"));
            out.push_str(&format!(
                "batch_postgres_ratio_vs_unledgered {:.3} ratio\n",
                pg / base
            ));
        }
        None => eprintln!(
            "batch: PostgreSQL figure skipped (set KICC_BENCH_POSTGRES_URL or pass --postgres URL)"
        ),
    }
    Ok(out)
}
