//! `kicc sandbox serve`: the sandbox as a process, until Ctrl-C or SIGTERM.
//!
//! The first stdout line is exactly `listening on http://HOST:PORT` (or `https://`), flushed at
//! once, so a script or a test can start it on port 0 and read where it listens. With `--tls`
//! the second line is `root certificate: PATH`: the generated root's PEM, written to
//! `--root-cert-out FILE` or else to a new file in the temporary directory that is removed when
//! the sandbox stops.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use kicc_sandbox::{
    RefundQueryMatch, RemainAmountConvention, Sandbox, SandboxConfig, SandboxError,
};

use crate::cli::ServeArgs;
use crate::creds::{env_var, MALL_ID_VAR, SECRET_KEY_VAR};
use crate::exit::{Exit, Failure, Report};

fn sandbox_failure(e: SandboxError) -> Failure {
    match e {
        SandboxError::InvalidConfig { .. } => Failure::invalid(e.to_string()),
        other => Failure::local(other.to_string()),
    }
}

/// `--remain-amount-convention` (clap has checked the value).
fn remain_amount_convention(name: &str) -> Result<RemainAmountConvention, Failure> {
    match name {
        "balanceBefore" => Ok(RemainAmountConvention::BalanceBefore),
        "balanceAfter" => Ok(RemainAmountConvention::BalanceAfter),
        other => Err(Failure::invalid(format!(
            "--remain-amount-convention: must be balanceBefore or balanceAfter, got {other:?}"
        ))),
    }
}

/// `--refund-query-match` (clap has checked the value).
fn refund_query_match(name: &str) -> Result<RefundQueryMatch, Failure> {
    match name {
        "pgCnoAmount" => Ok(RefundQueryMatch::PgCnoAmount),
        "pgCnoAmountRemain" => Ok(RefundQueryMatch::PgCnoAmountRemain),
        "never" => Ok(RefundQueryMatch::Never),
        other => Err(Failure::invalid(format!(
            "--refund-query-match: must be pgCnoAmount, pgCnoAmountRemain or never, got {other:?}"
        ))),
    }
}

/// Writes `pem` to a new file; refuses to overwrite anything in the temporary directory.
fn write_root(path: Option<&PathBuf>, port: u16, pem: &str) -> Result<(PathBuf, bool), Failure> {
    let (path, temporary) = match path {
        Some(p) => (p.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "kicc-sandbox-root-{}-{port}.pem",
                std::process::id()
            )),
            true,
        ),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if temporary {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let written = options
        .open(&path)
        .and_then(|mut f| f.write_all(pem.as_bytes()));
    written.map_err(|e| {
        Failure::local(format!(
            "root-cert-out: cannot write {}: {e}",
            path.display()
        ))
    })?;
    Ok((path, temporary))
}

/// Ctrl-C and (on Unix) SIGTERM, watched from creation on: a signal that arrives before
/// [`StopSignals::wait`] is polled still stops the sandbox cleanly.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn watch() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let watch = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|e| Failure::local(format!("cannot watch {name}: {e}")))
            };
            Ok(StopSignals {
                term: watch(SignalKind::terminate(), "SIGTERM")?,
                int: watch(SignalKind::interrupt(), "Ctrl-C")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignals {})
        }
    }

    /// Resolves on the first stop signal.
    async fn wait(mut self) -> Result<(), Failure> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
            }
            Ok(())
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c()
                .await
                .map_err(|e| Failure::local(format!("cannot watch Ctrl-C: {e}")))
        }
    }
}

/// The stall of an injected `timeout` fault: as given, or else the longest the processing
/// bound allows after the latency (so `--latency-ms N` alone is a valid configuration).
fn timeout_fault_delay_ms(args: &ServeArgs) -> u64 {
    args.timeout_fault_delay_ms
        .unwrap_or_else(|| args.processing_bound_ms.saturating_sub(args.latency_ms))
}

/// `kicc sandbox serve ...`.
pub async fn serve(args: &ServeArgs) -> Result<Report, Failure> {
    let mut config = SandboxConfig::default()
        .with_tls(args.tls)
        .with_webhook_delay(Duration::from_millis(args.webhook_delay_ms))
        .with_webhook_retry_interval(Duration::from_millis(args.webhook_retry_interval_ms))
        .with_timeout_fault_delay(Duration::from_millis(timeout_fault_delay_ms(args)))
        .with_processing_bound(Duration::from_millis(args.processing_bound_ms))
        .with_latency(Duration::from_millis(args.latency_ms))
        .with_remain_amount_convention(remain_amount_convention(&args.remain_amount_convention)?)
        .with_refund_query_match(refund_query_match(&args.refund_query_match)?);
    if let Some(seed) = args.seed {
        config = config.with_seed(seed);
    }
    let mall_from_env = env_var(MALL_ID_VAR)?;
    if let Some(mall) = &mall_from_env {
        config = config.with_mall_id(mall.as_str());
    }
    let key_from_env = env_var(SECRET_KEY_VAR)?;
    let key_source = if key_from_env.is_some() {
        SECRET_KEY_VAR
    } else {
        "the sandbox-only default (see --help)"
    };
    if let Some(key) = key_from_env {
        config = config.with_secret_key(key);
    }
    // The API v3 key the WeChat Pay certificates listing is encrypted with.
    if let Some(key) = env_var(crate::wechatpay_cmds::APIV3_KEY_VAR)? {
        let key = zeroize::Zeroizing::new(key);
        if key.len() != 32 {
            return Err(Failure::invalid(format!(
                "{}: must be exactly 32 bytes, got {}",
                crate::wechatpay_cmds::APIV3_KEY_VAR,
                key.len()
            )));
        }
        let wechatpay = config.wechatpay.clone().with_apiv3_key(key.as_str());
        config = config.with_wechatpay(wechatpay);
    }

    // Before anything is announced, so that a signal sent right after the first line counts.
    let signals = StopSignals::watch()?;
    let handle = Sandbox::start(args.addr, config)
        .await
        .map_err(sandbox_failure)?;
    let mut stdout = std::io::stdout().lock();
    let announced =
        writeln!(stdout, "listening on {}", handle.base_url()).and_then(|()| stdout.flush());
    drop(stdout);
    announced.map_err(|e| Failure::local(format!("cannot write to stdout: {e}")))?;

    let mut temporary_root = None;
    if let Some(pem) = handle.root_certificate_pem() {
        let (path, temporary) = write_root(
            args.root_cert_out.as_ref(),
            handle.local_addr().port(),
            &pem,
        )?;
        let mut stdout = std::io::stdout().lock();
        let _ =
            writeln!(stdout, "root certificate: {}", path.display()).and_then(|()| stdout.flush());
        if temporary {
            temporary_root = Some(path);
        }
    }
    if !handle.local_addr().ip().is_loopback() {
        eprintln!(
            "kicc sandbox: warning: listening on {}, reachable from other machines; the sandbox is for tests only",
            handle.local_addr()
        );
    }
    eprintln!(
        "kicc sandbox: mall ID {}, secret key from {key_source}; stop with Ctrl-C",
        handle.mall_id()
    );

    let stopped = signals.wait().await;
    handle.shutdown().await;
    if let Some(path) = temporary_root {
        let _ = std::fs::remove_file(path);
    }
    stopped?;
    eprintln!("kicc sandbox: stopped");
    Ok(Report {
        exit: Exit::Ok,
        stdout: None,
        stderr: None,
    })
}
