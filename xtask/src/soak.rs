//! `cargo xtask soak`: the randomized fault soak (crate `kicc-soak`, issue 9 point 8).
//!
//! Runs `cargo run -p kicc-soak -- ARGS` in the DEBUG profile: on a shared 2-core machine a
//! release build of the whole client and sandbox stack costs more minutes than it saves, and
//! the soak's time goes to its own timeouts and processing bounds, not to CPU. Pass
//! `--release` first to build it optimized anyway. Every other argument goes to the soak
//! (`--scenarios N --seed S`, `--first I` to rerun one scenario, `--concurrency`, `--backoff-ms`,
//! `--time-scale`, `--no-refund-queries`); it prints `name value` lines and one line per
//! violation, and fails on any violation.

/// Runs the soak with `args`.
pub fn run(args: &[String]) -> Result<(), String> {
    let (release, rest): (Vec<&String>, Vec<&String>) =
        args.iter().partition(|a| a.as_str() == "--release");
    let mut cargo_args = vec!["run", "-p", "kicc-soak"];
    if !release.is_empty() {
        cargo_args.push("--release");
    }
    cargo_args.push("--");
    cargo_args.extend(rest.iter().map(|a| a.as_str()));
    crate::cargo(&cargo_args, &[])
}
