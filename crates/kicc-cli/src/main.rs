//! `kicc`: cancel KICC EasyPay payments (card and other domestic methods, Alipay, WeChat Pay),
//! check WeChat Pay cancellations, revoke WeChat Pay Global orders directly, and run the local
//! KICC sandbox, from a terminal or a script.
//!
//! ```text
//! kicc cancel <generic|alipay|wechat> --pg-cno ID [--type CODE] [--amount DECIMAL] [--currency KRW|USD]
//!             [--reason TEXT] [--shop-transaction-id KEY] [--notify-url URL] [--wait SECONDS] [--dry-run]
//! kicc status wechat --pg-cno ID --cancel-pg-cno ID [--shop-transaction-id KEY] [--dry-run]
//! kicc wechatpay reverse (--out-trade-no NO | --transaction-id ID) --mchid ID --serial-no SERIAL
//!             --private-key PEM_FILE [--platform-cert PEM_FILE] [--timestamp UNIX] [--nonce STR]
//!             [--no-query] [--dry-run]
//! kicc wechatpay query (--out-trade-no NO | --transaction-id ID) --mchid ID [--sub-mchid ID]
//!             --serial-no SERIAL --private-key PEM_FILE [--platform-cert PEM_FILE] [--dry-run]
//! kicc wechatpay certificates --mchid ID --serial-no SERIAL --private-key PEM_FILE --out DIR
//!             [--dry-run]
//! kicc sandbox serve [--addr 127.0.0.1:8780] [--tls] [--root-cert-out FILE]
//! kicc batch run FILE.csv [--ledger URL] [--concurrency N] [--rate PER_SECOND] [--report FILE.csv] [--timeout SECS] [--wait SECS]
//! kicc ledger list [--ledger URL] [--state STATE]
//! kicc ledger recover [--ledger URL]
//! kicc cancel ... --intent-id ID [--ledger URL]
//! kicc demo
//! ```
//!
//! Global options: `--env sandbox|test|production` (default `sandbox`, `http://127.0.0.1:8780`;
//! production is never a default), `--base-url URL`, `--root-cert PEM_FILE`.
//!
//! # Credentials
//!
//! Only from the environment: `KICC_MALL_ID` and `KICC_SECRET_KEY`; never from flags, never
//! printed. With `--env sandbox` and no `--base-url` (or a loopback one), missing ones fall back
//! to the sandbox-only `T0000001` / `sandbox-secret-key`; otherwise a missing one is invalid
//! input (exit 2) naming the variable. WeChat Pay direct reads the merchant's RSA key from the
//! PEM file given with `--private-key`.
//!
//! # Output
//!
//! Results go to stdout as one JSON object; errors go to stderr as ONE line (`error: ...`)
//! naming the field and the rule for invalid input, the gateway's code and message for a
//! decline. `--dry-run` sends nothing and prints the exact request as
//! `{"method", "url", "headers", "body"}` (`body` is the exact body text, the only place the
//! `msgAuthValue` is ever printed); WeChat Pay direct adds `"signed_message"`. Long waits
//! (retries, slow answers, `--wait`) report progress on stderr when it is a terminal.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success: cancelled (WeChat Pay: accepted, or final with `--wait`); `status`: cancelled; revoked; sandbox stopped by a signal; demo passed |
//! | 1 | declined, or certainly not processed (the gateway said no, or nothing reached it) |
//! | 2 | invalid input: nothing was sent (also every usage error) |
//! | 3 | outcome unknown (timeouts, lost connections, unverifiable answers): query before acting |
//! | 4 | still pending: WeChat Pay accepted but not final within `--wait`; `status`: not cancelled yet |
//! | 5 | local failure: cannot listen, TLS setup, a demo step that did not behave as expected |
#![forbid(unsafe_code)]

mod cli;
mod creds;
mod demo;
mod exit;
mod kicc_cmds;
mod ledger_cmds;
mod observe;
mod receiver;
mod resume;
mod reverse;
mod serve;
mod wechatpay_cmds;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, SandboxCommand, StatusCommand, WechatpayCommand};
use crate::exit::{one_line, Exit, Failure, Report};

async fn run(cli: Cli) -> Result<Report, Failure> {
    let global = &cli.global;
    match &cli.command {
        Command::Cancel(args) if args.intent_id.is_some() => {
            ledger_cmds::cancel(global, args).await
        }
        Command::Cancel(args) => kicc_cmds::cancel(global, args).await,
        Command::Batch(ledger_cmds::BatchCommand::Run(args)) => {
            ledger_cmds::batch_run(global, args).await
        }
        Command::Ledger(ledger_cmds::LedgerCommand::List(args)) => ledger_cmds::list(args).await,
        Command::Ledger(ledger_cmds::LedgerCommand::Recover(args)) => {
            ledger_cmds::recover(global, args).await
        }
        Command::Status(StatusCommand::Wechat(args)) => {
            kicc_cmds::status_wechat(global, args).await
        }
        Command::Wechatpay(WechatpayCommand::Reverse(args)) => reverse::reverse(global, args).await,
        Command::Wechatpay(WechatpayCommand::Query(args)) => {
            wechatpay_cmds::query(global, args).await
        }
        Command::Wechatpay(WechatpayCommand::Certificates(args)) => {
            wechatpay_cmds::certificates(global, args).await
        }
        Command::Sandbox(SandboxCommand::Serve(args)) => serve::serve(args).await,
        Command::Demo => demo::demo().await,
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::clap_failure(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Local.into();
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Background tasks (pooled connections, webhook deliveries) must not delay the exit.
    runtime.shutdown_background();
    match outcome {
        Ok(report) => {
            if let Some(out) = &report.stdout {
                let mut stdout = std::io::stdout().lock();
                let written = writeln!(stdout, "{}", out.trim_end()).and_then(|()| stdout.flush());
                if written.is_err() {
                    return Exit::Local.into();
                }
            }
            if let Some(note) = &report.stderr {
                eprintln!("{}", one_line(note));
            }
            report.exit.into()
        }
        Err(failure) => {
            eprintln!("error: {}", one_line(&failure.message));
            failure.exit.into()
        }
    }
}
