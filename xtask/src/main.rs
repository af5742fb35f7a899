//! Project chores: `cargo xtask ci` (what CI runs), `cargo xtask audit` (advisories),
//! `cargo xtask fuzz` and `cargo xtask bench`.
#![forbid(unsafe_code)]

mod audit;
mod bench;
mod cycles;
mod fuzz;
mod msrv;
mod package;
mod soak;

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <ci|audit|fuzz [--time SECS] [TARGET...]|bench [--quick]|soak [--scenarios N] [--seed S] [...]>

  ci      fmt check, clippy -D warnings (default and message-only features), all tests and
          doc tests, the message-only builds' tests, rustdoc -D warnings, the
          dependency-footprint checks, the declared rust-version's build and the
          advisory audit
  msrv    cargo check with the declared rust-version's toolchain, when rustup has it
  audit   Cargo.lock against the offline RustSec snapshot in ../shared/advisory-db
  fuzz    the cargo-fuzz targets in fuzz/ (nightly), SECS each (see `cargo xtask fuzz -h`)
  bench   criterion micro-benchmarks and the end-to-end load benchmark (see BENCHMARKS.md)
  soak    randomized faulted cancels, real clients against the sandbox (see RELIABILITY.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("audit") => audit::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("cycles") => cycles::run(),
        Some("msrv") => msrv::run(),
        Some("soak") => soak::run(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `cargo` with `args` (and extra environment), failing on a non-zero exit.
pub(crate) fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("\n==> cargo {}", args.join(" "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// `cargo tree ARGS -e normal --prefix none`, as text.
pub(crate) fn tree(args: &[&str]) -> Result<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .arg("tree")
        .args(args)
        .args(["-e", "normal", "--prefix", "none"])
        .output()
        .map_err(|e| format!("could not run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails if the normal dependency tree of `args` contains any of `forbidden`.
fn assert_tree_lacks(args: &[&str], forbidden: &[&str]) -> Result<(), String> {
    eprintln!(
        "\n==> cargo tree {} (must not contain {})",
        args.join(" "),
        forbidden.join(", ")
    );
    let text = tree(args)?;
    match forbidden_in(&text, forbidden) {
        Some(name) => Err(format!("`cargo tree {}` contains {name}", args.join(" "))),
        None => Ok(()),
    }
}

/// The first package name of `tree` (one `name vX.Y.Z ...` per line) that is in `names`.
pub(crate) fn forbidden_in<'a>(tree: &str, names: &[&'a str]) -> Option<&'a str> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .find_map(|name| names.iter().copied().find(|n| *n == name))
}

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cycles::run()?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    // The message layers alone, as a consumer with `default-features = false` builds them.
    for krate in [
        "kicc-transport",
        "kicc-generic",
        "kicc-alipay",
        "kicc-wechat",
        "wechatpay-direct",
    ] {
        cargo(
            &[
                "clippy",
                "-p",
                krate,
                "--no-default-features",
                "--lib",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
    }
    let io = ["tokio", "hyper", "hyper-util", "rustls", "mio", "socket2"];
    assert_tree_lacks(&["-p", "kicc-core"], &io)?;
    for krate in [
        "kicc-generic",
        "kicc-alipay",
        "kicc-wechat",
        "wechatpay-direct",
    ] {
        assert_tree_lacks(&["-p", krate, "--no-default-features"], &io)?;
    }
    assert_tree_lacks(&["-p", "kicc-core"], &["rsa"])?;
    assert_tree_lacks(&["-p", "wechatpay-direct"], &["rsa"])?;
    package::ci()?;
    cargo(&["test", "--workspace"], &[])?;
    // Optional features nothing in the workspace turns on (kicc-transport's `metrics`).
    cargo(
        &[
            "clippy",
            "-p",
            "kicc-transport",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(&["test", "-p", "kicc-transport", "--all-features"], &[])?;
    // kicc-ledger's `metrics` feature (the intents-by-state gauge).
    cargo(
        &[
            "clippy",
            "-p",
            "kicc-ledger",
            "--all-targets",
            "--features",
            "metrics",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(
        &[
            "test",
            "-p",
            "kicc-ledger",
            "--features",
            "metrics",
            "--lib",
        ],
        &[],
    )?;
    // The message layers' own tests as a `default-features = false` consumer builds them
    // (tests that need the client declare `required-features` and are skipped; the doc
    // tests show the client, and run in the default build above).
    for krate in [
        "kicc-generic",
        "kicc-alipay",
        "kicc-wechat",
        "wechatpay-direct",
    ] {
        cargo(
            &[
                "test",
                "-p",
                krate,
                "--no-default-features",
                "--lib",
                "--tests",
            ],
            &[],
        )?;
    }
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    msrv::run()?;
    eprintln!("\n==> cargo xtask audit");
    audit::run(&[])?;
    eprintln!("\nxtask ci: all checks passed");
    Ok(())
}
