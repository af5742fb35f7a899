//! `kicc batch run`, `kicc ledger list|recover` and `kicc cancel ... --ledger URL --intent-id
//! ID`: cancels journaled in a kicc-ledger (SQLite by default, PostgreSQL for many hosts), so
//! a crash, a rerun or a second instance never cancels twice.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use kicc_ledger::batch::{list_json_line, read_batch, write_report, BatchError};
use kicc_ledger::{
    summarize, AnyStore, BatchOptions, Channel, ExecConfig, ExecError, Intent, Ledger, LedgerError,
    LedgerUrl, StateKind, Store, Summary, TransitionError, UrlError,
};
use kicc_transport::HyperTransport;
use tokio::sync::watch;

use crate::cli::{CancelArgs, Global, EXIT_CODES_HELP};
use crate::creds;
use crate::exit::{Exit, Failure, Report};

/// `kicc batch ...`.
#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Cancel every row of a CSV file through the ledger, exactly once per `intent_id`;
    /// rerunning the same command resumes.
    #[command(after_help = BATCH_HELP)]
    Run(BatchRunArgs),
}

const BATCH_HELP: &str = "\
The CSV has a header; required columns intent_id,channel,pg_cno,amount,currency,reason (amount,
currency and reason may be empty; empty amount = full cancel; channel generic|alipay|wechat);
optional type,remain_amount,notify_url. Amounts in major units (12.03 USD). The whole file is
checked before anything is sent. Summary JSON on stdout; --report writes one CSV row per intent.

Exit codes: 0 every row succeeded; 3 some unknown or in flight; else 4 some pending; else 1 some
declined or not processed; 2 invalid file (nothing sent); 5 local failure.";

/// The options every ledger command shares.
#[derive(Debug, Clone, Args)]
pub struct LedgerArgs {
    /// The ledger: sqlite:PATH or postgres://USER@HOST:PORT/DB (the password comes from
    /// PGPASSWORD or ~/.pgpass, never from the URL).
    #[arg(long, value_name = "URL", default_value = LedgerUrl::DEFAULT)]
    pub ledger: String,
}

/// The retry knobs, as `kicc cancel` has them.
#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    /// The most attempts for one request (retries follow the API's rules).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,

    /// How long the gateway may still process a request after it was sent, in seconds (a
    /// decimal such as 1.5): the earliest look-up of a key (KICC documents 30 s).
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_seconds)]
    pub processing_bound: Duration,

    /// How far the gateway's clock may be behind this machine's, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "120", value_parser = parse_seconds)]
    pub clock_skew: Duration,

    /// The `resCd` with which retrieveTransaction says "not found" (repeatable). Default with
    /// --env sandbox: the sandbox's R001.
    #[arg(long, value_name = "CODE")]
    pub lookup_not_found_code: Vec<String>,

    /// Identical Alipay / WeChat Pay resends stop this many seconds after the first send (the
    /// intent then stays unknown).
    #[arg(long, value_name = "SECONDS", default_value = "86400", value_parser = parse_age)]
    pub wallet_resend_max_age: Duration,

    /// How long a WeChat Pay cancel waits for its final result after acceptance, in seconds
    /// (still pending after that: exit 4).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub wait: u64,

    /// What a generic row's `remainAmount` carries for its `remain_amount` (the balance
    /// before this cancel): that balance (`balanceBefore`, the default) or the balance left
    /// after this cancel (`balanceAfter`). KICC's pages leave it open (an inference); give
    /// the same on every rerun of a file.
    #[arg(long, value_name = "RULE", value_parser = ["balanceBefore", "balanceAfter"])]
    pub remain_amount_convention: Option<String>,
}

/// `kicc batch run`.
#[derive(Debug, Args)]
pub struct BatchRunArgs {
    /// The batch file (CSV, UTF-8).
    #[arg(value_name = "FILE.csv")]
    pub file: PathBuf,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    /// Cancels in flight at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    /// At most this many cancels started per second.
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Write the report CSV here (one row per intent of the file).
    #[arg(long, value_name = "FILE.csv")]
    pub report: Option<PathBuf>,

    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `kicc ledger ...`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Every intent (or those in one state), one JSON object per line.
    List(LedgerListArgs),
    /// Finish what crashed or interrupted runs left: intents in flight under an expired lease
    /// or a dead owner, unknown ones, and pending WeChat Pay cancels.
    #[command(after_help = EXIT_CODES_HELP)]
    Recover(LedgerRecoverArgs),
}

/// `kicc ledger list`.
#[derive(Debug, Args)]
pub struct LedgerListArgs {
    #[command(flatten)]
    pub ledger: LedgerArgs,

    /// Only intents in this state: planned, in_flight, succeeded, declined, not_processed,
    /// unknown, pending.
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
}

/// `kicc ledger recover`.
#[derive(Debug, Args)]
pub struct LedgerRecoverArgs {
    #[command(flatten)]
    pub ledger: LedgerArgs,

    /// Intents recovered at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    #[command(flatten)]
    pub retry: RetryArgs,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&secs) {
        return Err(format!("{s} is not between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_age(s: &str) -> Result<Duration, String> {
    let secs: u64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of seconds"))?;
    Ok(Duration::from_secs(secs))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("{s:?} is not a positive number per second")),
    }
}

/// The executor's configuration from the command line.
fn exec_config(global: &Global, retry: &RetryArgs) -> Result<ExecConfig, Failure> {
    Ok(ExecConfig::default()
        .with_retry_policy(crate::kicc_cmds::retry_policy(
            global,
            retry.max_attempts,
            retry.processing_bound,
            retry.clock_skew,
            &retry.lookup_not_found_code,
        )?)
        .with_attempt_timeout(Duration::from_secs(global.timeout))
        .with_wallet_resend_max_age(retry.wallet_resend_max_age)
        .with_wait(Duration::from_secs(retry.wait))
        .with_remain_convention(crate::kicc_cmds::remain_convention(
            retry.remain_amount_convention.as_deref(),
        )))
}

fn url_failure(e: &UrlError) -> Failure {
    Failure::invalid(format!("ledger: {e}"))
}

fn ledger_failure(e: LedgerError) -> Failure {
    match e {
        LedgerError::Url(u) => url_failure(&u),
        other => Failure::local(format!("ledger: {other}")),
    }
}

async fn open(args: &LedgerArgs) -> Result<AnyStore, Failure> {
    let url = LedgerUrl::parse(&args.ledger).map_err(|e| url_failure(&e))?;
    AnyStore::open(&url).await.map_err(ledger_failure)
}

fn executor(
    global: &Global,
    store: AnyStore,
    retry: &RetryArgs,
) -> Result<Ledger<AnyStore, HyperTransport>, Failure> {
    let merchant = creds::merchant(global)?;
    let transport = creds::transport(global)?;
    Ok(Ledger::new(store, merchant, transport).with_exec_config(exec_config(global, retry)?))
}

/// The exit code of a set of outcomes: 0 all succeeded; 3 any unknown or in flight; else 4
/// any pending; else 1.
fn exit_of(s: &Summary) -> Exit {
    if s.succeeded == s.total {
        Exit::Ok
    } else if s.unknown > 0 || s.in_flight > 0 {
        Exit::Unknown
    } else if s.pending > 0 {
        Exit::Pending
    } else {
        Exit::NotDone
    }
}

fn exec_failure(e: ExecError) -> Failure {
    match e {
        ExecError::Invalid(f) => Failure::invalid(f.to_string()),
        ExecError::Ledger(LedgerError::Transition(t @ TransitionError::Conflict(_))) => {
            Failure::invalid(t.to_string())
        }
        ExecError::Ledger(e) => ledger_failure(e),
        other => Failure::local(other.to_string()),
    }
}

/// A watch that turns `true` on SIGINT (Ctrl-C) or SIGTERM.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
            match term {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        let _ = tx.send(true);
    });
    rx
}

/// Counts of this run's outcomes, for the progress line.
#[derive(Default)]
struct Progress {
    done: AtomicU64,
    succeeded: AtomicU64,
    declined: AtomicU64,
    not_processed: AtomicU64,
    unknown: AtomicU64,
    pending: AtomicU64,
}

impl Progress {
    fn add(&self, i: &Intent) {
        self.done.fetch_add(1, Ordering::Relaxed);
        let c = match i.state.kind() {
            StateKind::Succeeded => &self.succeeded,
            StateKind::Declined => &self.declined,
            StateKind::NotProcessed => &self.not_processed,
            StateKind::Pending => &self.pending,
            _ => &self.unknown,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn line(&self, total: u64, already: u64, started: Instant) -> String {
        let done = self.done.load(Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / elapsed;
        let left = total.saturating_sub(already + done);
        let eta = if rate > 0.0 {
            format!("{:.0}s", left as f64 / rate)
        } else {
            "?".into()
        };
        format!(
            "{}/{} rows, {rate:.1}/s, ETA {eta}: {} succeeded, {} declined, {} not processed, {} unknown, {} pending",
            already + done,
            total,
            self.succeeded.load(Ordering::Relaxed),
            self.declined.load(Ordering::Relaxed),
            self.not_processed.load(Ordering::Relaxed),
            self.unknown.load(Ordering::Relaxed),
            self.pending.load(Ordering::Relaxed),
        )
    }
}

/// `kicc batch run FILE.csv`.
pub async fn batch_run(global: &Global, args: &BatchRunArgs) -> Result<Report, Failure> {
    // Everything is checked before anything is sent.
    let url = LedgerUrl::parse(&args.ledger.ledger).map_err(|e| url_failure(&e))?;
    let bytes = std::fs::read(&args.file)
        .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", args.file.display())))?;
    let rows = match read_batch(&bytes) {
        Ok(rows) => rows,
        Err(BatchError::BadRows(bad)) => {
            let lines: Vec<String> = bad.iter().map(ToString::to_string).collect();
            return Ok(invalid_rows(&lines));
        }
        Err(e) => return Err(Failure::invalid(format!("{}: {e}", args.file.display()))),
    };
    if let Some(path) = &args.report {
        // A report that cannot be written is found out before anything is sent, not after
        // the batch ran (opened without truncating: an earlier report stays until the new
        // one is written).
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| {
                Failure::local(format!(
                    "cannot write {}: {e}; nothing was sent",
                    path.display()
                ))
            })?;
    }
    let merchant = creds::merchant(global)?;
    let transport = creds::transport(global)?;
    let store = AnyStore::open(&url).await.map_err(ledger_failure)?;
    let ids: Vec<_> = rows.iter().map(|r| r.spec.intent_id().clone()).collect();
    let specs = rows.iter().map(|r| r.spec.clone()).collect();
    match store.import(specs).await.map_err(ledger_failure)? {
        Ok(_) => {}
        Err(conflicts) => {
            let lines: Vec<String> = conflicts
                .iter()
                .map(|c| {
                    let line = rows.get(c.index).map_or(0, |r| r.line);
                    format!("line {line}: {}", c.conflict)
                })
                .collect();
            return Ok(invalid_rows(&lines));
        }
    }
    let ledger =
        Ledger::new(store, merchant, transport).with_exec_config(exec_config(global, &args.retry)?);
    let wanted: HashSet<_> = ids.iter().cloned().collect();
    let already = ledger
        .store()
        .list(None)
        .await
        .map_err(ledger_failure)?
        .iter()
        .filter(|i| wanted.contains(i.spec.intent_id()) && i.state.kind().is_final())
        .count() as u64;
    let total = ids.len() as u64;

    let stop = stop_on_signal();
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let ticker = {
        let progress = Arc::clone(&progress);
        let terminal = std::io::stderr().is_terminal();
        tokio::spawn(async move {
            let every = if terminal {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(5)
            };
            loop {
                tokio::time::sleep(every).await;
                let line = progress.line(total, already, started);
                let mut err = std::io::stderr().lock();
                let _ = if terminal {
                    write!(err, "\r\x1b[2K{line}")
                } else {
                    writeln!(err, "{line}")
                };
                let _ = err.flush();
            }
        })
    };
    let options = BatchOptions::default()
        .with_concurrency(args.concurrency as usize)
        .with_rate(args.rate);
    let counted = Arc::clone(&progress);
    let ran = ledger
        .run_batch(options, stop, &move |i: &Intent| counted.add(i))
        .await;
    ticker.abort();
    if std::io::stderr().is_terminal() {
        eprintln!("\r\x1b[2K{}", progress.line(total, already, started));
    }

    // The report and the summary cover exactly the file's intents, in file order.
    let all = ledger.store().list(None).await.map_err(ledger_failure)?;
    let by_id: std::collections::HashMap<_, _> = all
        .iter()
        .map(|i| (i.spec.intent_id().clone(), i))
        .collect();
    let intents: Vec<&Intent> = ids.iter().filter_map(|id| by_id.get(id).copied()).collect();
    let summary = summarize(intents.iter().copied());
    // The summary is printed whatever happens to the report: the cancels were sent.
    let reported = match &args.report {
        None => Ok(()),
        Some(path) => std::fs::File::create(path)
            .map_err(|e| e.to_string())
            .and_then(|file| {
                write_report(std::io::BufWriter::new(file), intents.iter().copied())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
    };
    let line = summary.to_json_line();
    match (ran, reported) {
        (Ok(()), Ok(())) => Ok(Report {
            exit: exit_of(&summary),
            stdout: Some(line),
            stderr: None,
        }),
        (Err(e), _) => {
            let failure = exec_failure(e);
            Ok(Report::with_note(
                Exit::Local,
                line,
                format!("error: {}", failure.message),
            ))
        }
        (Ok(()), Err(why)) => Ok(Report::with_note(
            Exit::Local,
            line,
            format!("error: {why}"),
        )),
    }
}

/// Exit 2 with `error: N invalid rows` and one line per bad row (the one multi-line error).
fn invalid_rows(lines: &[String]) -> Report {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {} invalid rows", lines.len());
    for l in lines {
        let _ = writeln!(err, "{}", l.replace(['\n', '\r'], " "));
    }
    Report {
        exit: Exit::Invalid,
        stdout: None,
        stderr: None,
    }
}

/// `kicc ledger list`.
pub async fn list(args: &LedgerListArgs) -> Result<Report, Failure> {
    let state = match &args.state {
        None => None,
        Some(s) => Some(StateKind::parse(s).ok_or_else(|| {
            Failure::invalid(format!(
                "state: {s:?} is not one of planned, in_flight, succeeded, declined, not_processed, unknown, pending"
            ))
        })?),
    };
    let store = open(&args.ledger).await?;
    let intents = store.list(state).await.map_err(ledger_failure)?;
    let mut out = String::new();
    for i in &intents {
        out.push_str(&list_json_line(i));
        out.push('\n');
    }
    Ok(Report {
        exit: Exit::Ok,
        stdout: (!out.is_empty()).then_some(out),
        stderr: None,
    })
}

/// `kicc ledger recover`.
pub async fn recover(global: &Global, args: &LedgerRecoverArgs) -> Result<Report, Failure> {
    let store = open(&args.ledger).await?;
    let ledger = executor(global, store, &args.retry)?;
    let recovered = ledger
        .recover(args.concurrency as usize)
        .await
        .map_err(exec_failure)?;
    let summary = summarize(&recovered);
    Ok(Report {
        exit: exit_of(&summary),
        stdout: Some(summary.to_json_line()),
        stderr: None,
    })
}

/// `kicc cancel CHANNEL ... --ledger URL --intent-id ID`: one journaled cancel.
pub async fn cancel(global: &Global, args: &CancelArgs) -> Result<Report, Failure> {
    let intent_id = args
        .intent_id
        .clone()
        .ok_or_else(|| Failure::invalid("intent-id: required with --ledger"))?;
    let unsupported: [(&str, bool); 13] = [
        ("shop-transaction-id", args.shop_transaction_id.is_some()),
        ("dry-run", args.dry_run),
        ("method", args.method.is_some()),
        ("tax-amount", args.tax_amount.is_some()),
        ("vat-amount", args.vat_amount.is_some()),
        ("tax-free-amount", args.tax_free_amount.is_some()),
        ("basket", args.basket.is_some()),
        ("client-ip", args.client_ip.is_some()),
        ("client-id", args.client_id.is_some()),
        ("reg-id", args.reg_id.is_some()),
        ("cancel-req-date", args.cancel_req_date.is_some()),
        (
            "resume-key",
            !args.resume_key.is_empty() || !args.resume_refund_query_key.is_empty(),
        ),
        (
            "refund-query",
            args.refund_query || args.lookup_after.is_some(),
        ),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(Failure::invalid(format!(
            "{name}: not used with --ledger (the ledger makes the keys and resumes by itself)"
        )));
    }
    let channel = match args.channel {
        crate::cli::CancelChannel::Generic => Channel::Generic,
        crate::cli::CancelChannel::Alipay => Channel::Alipay,
        crate::cli::CancelChannel::Wechat => Channel::Wechat,
    };
    if channel != Channel::Generic && args.remain_amount_convention.is_some() {
        return Err(Failure::invalid(format!(
            "remain-amount-convention: is only taken by generic, not by the {} channel",
            channel.as_str()
        )));
    }
    // Amounts and codes are read exactly as a batch row reads them.
    let mut csv = String::from(
        "intent_id,channel,pg_cno,amount,currency,reason,type,remain_amount,notify_url\n",
    );
    {
        let mut w = one_row_csv(&mut csv);
        let fields = [
            intent_id.as_str(),
            channel.as_str(),
            args.pg_cno.as_str(),
            args.amount.as_deref().unwrap_or(""),
            args.currency.as_deref().unwrap_or(""),
            args.reason.as_deref().unwrap_or(""),
            args.revise_type.as_deref().unwrap_or(""),
            args.remain_amount.as_deref().unwrap_or(""),
            args.notify_url.as_deref().unwrap_or(""),
        ];
        w(&fields);
    }
    let spec = match read_batch(csv.as_bytes()) {
        Ok(mut rows) if rows.len() == 1 => rows.remove(0).spec,
        Ok(_) => return Err(Failure::invalid("the cancel could not be read")),
        Err(BatchError::BadRows(bad)) => {
            let why: Vec<String> = bad.into_iter().map(|b| b.why).collect();
            return Err(Failure::invalid(why.join("; ")));
        }
        Err(e) => return Err(Failure::invalid(e.to_string())),
    };
    let retry = RetryArgs {
        max_attempts: args.max_attempts,
        processing_bound: args.processing_bound,
        clock_skew: args.clock_skew,
        lookup_not_found_code: args.lookup_not_found_code.clone(),
        wallet_resend_max_age: Duration::from_secs(24 * 60 * 60),
        wait: args.wait.unwrap_or(0),
        remain_amount_convention: args.remain_amount_convention.clone(),
    };
    let ledger_args = LedgerArgs {
        ledger: args
            .ledger
            .clone()
            .unwrap_or_else(|| LedgerUrl::DEFAULT.to_owned()),
    };
    let store = open(&ledger_args).await?;
    let ledger = executor(global, store, &retry)?;
    let intent = ledger.cancel_spec(spec).await.map_err(exec_failure)?;
    let summary = summarize([&intent]);
    let exit = exit_of(&summary);
    let line = list_json_line(&intent);
    Ok(match exit {
        Exit::Ok => Report::ok(line),
        other => Report::with_note(
            other,
            line,
            format!(
                "intent {} is {}{}",
                intent.spec.intent_id().as_str(),
                intent.state.kind().as_str(),
                intent
                    .detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        ),
    })
}

/// A tiny CSV writer for one row into `out` (quotes every field).
fn one_row_csv(out: &mut String) -> impl FnMut(&[&str]) + '_ {
    move |fields: &[&str]| {
        let quoted: Vec<String> = fields
            .iter()
            .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
            .collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
}
