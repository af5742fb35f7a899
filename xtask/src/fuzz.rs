//! `cargo xtask fuzz`: runs the cargo-fuzz targets in `fuzz/` (nightly, libFuzzer).
//!
//! CI does not fuzz (an instrumented build is too slow on its 2 cores); it replays the
//! committed corpora as ordinary tests (`kicc-cli`'s `fuzz_replay`). This command is for
//! people: it runs each target for a while, growing `fuzz/corpus/<target>/`, and prints the
//! executions per target for RELIABILITY.md.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const USAGE: &str = "usage: cargo xtask fuzz [--time SECS] [--seed] [--minimize] [TARGET...]

  Runs every fuzz target (or the ones named) for SECS seconds each (default 120) with
  `cargo +nightly fuzz run`, one after the other, and prints executions per target.
  --seed      first write the seed corpora (fuzz/src/bin/seed.rs)
  --minimize  afterwards, minimize each target's corpus (`cargo fuzz cmin`, by edges)
  Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).";

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    pub secs: u64,
    pub seed: bool,
    pub minimize: bool,
    pub targets: Vec<String>,
}

pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        secs: 120,
        seed: false,
        minimize: false,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--time" => {
                o.secs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("--time needs a positive number of seconds\n{USAGE}"))?;
            }
            "--seed" => o.seed = true,
            "--minimize" => o.minimize = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            t if t.starts_with('-') => return Err(format!("unknown option {t}\n{USAGE}")),
            t => o.targets.push(t.to_owned()),
        }
    }
    Ok(o)
}

fn fuzz_dir() -> PathBuf {
    crate::audit::repo_root().join("fuzz")
}

/// The targets: one file per target in `fuzz/fuzz_targets/`.
pub(crate) fn all_targets(fuzz: &Path) -> Result<Vec<String>, String> {
    let dir = fuzz.join("fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// libFuzzer's final `stat::number_of_executed_units`, from `-print_final_stats=1`.
pub(crate) fn executions(line: &str) -> Option<u64> {
    line.trim()
        .strip_prefix("stat::number_of_executed_units:")
        .and_then(|v| v.trim().parse().ok())
}

fn run_target(fuzz: &Path, target: &str, secs: u64) -> Result<Option<u64>, String> {
    eprintln!("\n==> cargo +nightly fuzz run {target} -- -max_total_time={secs}");
    let mut child = Command::new("cargo")
        .current_dir(fuzz)
        .args(["+nightly", "fuzz", "run", target, "--"])
        .arg(format!("-max_total_time={secs}"))
        .arg("-print_final_stats=1")
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run cargo +nightly fuzz: {e}"))?;
    let mut execs = None;
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(n) = executions(&line) {
                execs = Some(n);
            }
            eprintln!("{line}");
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the fuzzer: {e}"))?;
    if status.success() {
        Ok(execs)
    } else {
        Err(format!(
            "{target}: the fuzzer stopped with {status} (a crash is saved under fuzz/artifacts/{target}/)"
        ))
    }
}

/// `cargo xtask fuzz [--time SECS] [--seed] [--minimize] [TARGET...]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let fuzz = fuzz_dir();
    let known = all_targets(&fuzz)?;
    let targets = if o.targets.is_empty() {
        known.clone()
    } else {
        for t in &o.targets {
            if !known.contains(t) {
                return Err(format!("no fuzz target {t} (known: {})", known.join(", ")));
            }
        }
        o.targets.clone()
    };
    if o.seed {
        let manifest = fuzz.join("Cargo.toml");
        let manifest = manifest.to_string_lossy();
        crate::cargo(&["run", "--manifest-path", &manifest, "--bin", "seed"], &[])?;
    }
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    for t in &targets {
        match run_target(&fuzz, t, o.secs) {
            Ok(execs) => summary.push((t.clone(), execs)),
            Err(e) => failures.push(e),
        }
        if o.minimize {
            let status = Command::new("cargo")
                .current_dir(&fuzz)
                // Edges only (no hit counters): one input per covered edge keeps the
                // committed corpora small.
                .args(["+nightly", "fuzz", "cmin", t, "--", "-use_counters=0"])
                .status()
                .map_err(|e| format!("could not run cargo fuzz cmin: {e}"))?;
            if !status.success() {
                failures.push(format!("{t}: cmin failed ({status})"));
            }
        }
    }
    eprintln!("\nfuzz: {} s per target", o.secs);
    for (t, execs) in &summary {
        match execs {
            Some(n) => eprintln!("  {t:<26} {n:>12} executions"),
            None => eprintln!("  {t:<26} {:>12}", "(no stats)"),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options() {
        assert_eq!(
            parse(&args(&[])).unwrap(),
            Options {
                secs: 120,
                seed: false,
                minimize: false,
                targets: vec![]
            }
        );
        let o = parse(&args(&["--time", "600", "money", "--seed", "text"])).unwrap();
        assert_eq!(o.secs, 600);
        assert!(o.seed);
        assert_eq!(o.targets, ["money", "text"]);
        assert!(parse(&args(&["--time"])).is_err());
        assert!(parse(&args(&["--time", "0"])).is_err());
        assert!(parse(&args(&["--time", "x"])).is_err());
        assert!(parse(&args(&["--fast"])).is_err());
    }

    #[test]
    fn reads_the_final_execution_count() {
        assert_eq!(
            executions("stat::number_of_executed_units: 1234567"),
            Some(1_234_567)
        );
        assert_eq!(executions("stat::peak_rss_mb: 80"), None);
        assert_eq!(executions("#1024 pulse cov: 10"), None);
    }

    #[test]
    fn every_target_file_is_found() {
        let targets = all_targets(&fuzz_dir()).unwrap();
        for t in [
            "generic_revise",
            "webhook_inbox",
            "pem_keys",
            "sandbox_request",
        ] {
            assert!(
                targets.iter().any(|x| x == t),
                "{t} missing from {targets:?}"
            );
        }
    }
}
