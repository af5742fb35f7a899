//! `cargo xtask bench [--quick]`: every benchmark of the project, ending with one
//! `name value unit` line per figure (see BENCHMARKS.md).
//!
//! 1. Criterion micro-benchmarks in kicc-core, kicc-generic, kicc-alipay and kicc-wechat:
//!    each request built, validated, signed and serialized; each response and webhook read;
//!    and beside them the floor (HMAC-SHA256 + serde_json of a plain struct, serde_json into
//!    a plain struct). Reported as `micro_<group>_<bench> <median> ns`, and each build or
//!    parse against its floor as a `*_paired_ratio`, measured with the two alternating in
//!    short blocks (criterion medians are taken seconds apart, which a noisy machine skews).
//! 2. `kicc-bench`: the end-to-end load benchmark against the in-process sandbox (SDK, raw
//!    hyper with prebuilt bytes and with per-request signing and reading, hand-written
//!    reqwest): throughput, p50 / p99, ratios.
//! 3. `kicc-bench-mem`: client-side heap per in-flight request for the same three.
//! 4. `kicc-bench-batch`: the ledger's batch figure: 10,000 cancels at concurrency 64 with
//!    20 ms sandbox latency, unledgered (the SDK alone) and through the SQLite ledger, plus
//!    PostgreSQL when `KICC_BENCH_POSTGRES_URL` names a database.
//!
//! `--quick` shortens every part (under two minutes of run time after the build).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::os::fd::AsFd;

const USAGE: &str =
    "usage: cargo xtask bench [--quick] [--skip-micro] [--skip-e2e] [--skip-mem] [--skip-batch]";

/// The criterion benchmarks: (package, bench target = criterion group).
const MICRO: [(&str, &str); 4] = [
    ("kicc-core", "core"),
    ("kicc-generic", "generic"),
    ("kicc-alipay", "alipay"),
    ("kicc-wechat", "wechat"),
];

/// The goals from the benchmark issue: (figure, bound, `true` if the figure must be at most
/// the bound, `false` if at least).
const GOALS: [(&str, f64, bool); 7] = [
    ("core_build_vs_floor_paired_ratio", 1.5, true),
    (
        "alipay_client_in_memory_vs_build_http_and_parse_paired_ratio",
        2.0,
        true,
    ),
    ("e2e_p50_ratio_sdk_vs_raw_hyper", 1.10, true),
    ("e2e_throughput_ratio_sdk_vs_raw_hyper", 0.9, false),
    ("e2e_throughput_ratio_sdk_vs_reqwest", 1.0, false),
    ("batch_sqlite_ratio_vs_unledgered", 0.9, false),
    ("batch_postgres_ratio_vs_unledgered", 0.9, false),
];

/// Figures shown after the goals for comparison, without a goal of their own.
const ALSO_SHOWN: [&str; 2] = [
    // The SDK against raw hyper that builds, signs and reads each message itself (the
    // least a correct integration does per request), on the same pooled client.
    "e2e_throughput_ratio_sdk_vs_raw_hyper_signed",
    "e2e_p50_ratio_sdk_vs_raw_hyper_signed",
];

#[derive(Debug, Default)]
struct Options {
    quick: bool,
    skip_micro: bool,
    skip_e2e: bool,
    skip_mem: bool,
    skip_batch: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    for a in args {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--skip-micro" => o.skip_micro = true,
            "--skip-e2e" => o.skip_e2e = true,
            "--skip-mem" => o.skip_mem = true,
            "--skip-batch" => o.skip_batch = true,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

/// One `name value unit` figure.
struct Figure {
    name: String,
    value: f64,
    unit: String,
}

impl Figure {
    fn line(&self) -> String {
        let v = if self.unit == "ratio" {
            format!("{:.3}", self.value)
        } else if self.value.fract() == 0.0 {
            format!("{:.0}", self.value)
        } else {
            format!("{:.1}", self.value)
        };
        format!("{} {v} {}", self.name, self.unit)
    }
}

/// Runs the benchmarks.
pub fn run(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    let mut figures = Vec::new();

    if !o.skip_micro {
        figures.extend(micro(&o, &target)?);
    }
    if !o.skip_e2e {
        let mut args = vec![
            "run",
            "--release",
            "-p",
            "kicc-bench",
            "--bin",
            "kicc-bench",
            "--",
        ];
        if o.quick {
            args.push("--quick");
        }
        figures.extend(run_figures(&args)?);
    }
    if !o.skip_mem {
        let mut args = vec![
            "run",
            "--release",
            "-p",
            "kicc-bench",
            "--bin",
            "kicc-bench-mem",
            "--",
        ];
        if o.quick {
            args.extend(["--repeats", "1", "--stall-ms", "200"]);
        }
        figures.extend(run_figures(&args)?);
    }

    if !o.skip_batch {
        let mut args = vec![
            "run",
            "--release",
            "-p",
            "kicc-bench",
            "--bin",
            "kicc-bench-batch",
            "--",
        ];
        if o.quick {
            args.push("--quick");
        }
        figures.extend(run_figures(&args)?);
    }

    eprintln!("\n==> goals");
    for (name, bound, at_most) in GOALS {
        match figures.iter().find(|f| f.name == name) {
            Some(f) => {
                let met = if at_most {
                    f.value <= bound
                } else {
                    f.value >= bound
                };
                let rel = if at_most { "<=" } else { ">=" };
                eprintln!(
                    "  {} {name} = {:.3} (goal {rel} {bound})",
                    if met { "MET   " } else { "MISSED" },
                    f.value
                );
            }
            None => eprintln!("  (not run) {name}"),
        }
    }
    eprintln!("\n==> for comparison (no goal)");
    for name in ALSO_SHOWN {
        match figures.iter().find(|f| f.name == name) {
            Some(f) => eprintln!("         {name} = {:.3}", f.value),
            None => eprintln!("  (not run) {name}"),
        }
    }
    eprintln!("\n==> figures (name value unit)");
    for f in &figures {
        println!("{}", f.line());
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Runs the criterion benchmarks into a fresh directory and reads their medians.
fn micro(o: &Options, target: &Path) -> Result<Vec<Figure>, String> {
    let home = target.join("criterion-xtask");
    if home.exists() {
        std::fs::remove_dir_all(&home).map_err(|e| format!("clearing {}: {e}", home.display()))?;
    }
    let home_str = home.to_string_lossy().into_owned();
    let timing: &[&str] = if o.quick {
        &["--warm-up-time", "0.3", "--measurement-time", "0.8"]
    } else {
        &["--warm-up-time", "1", "--measurement-time", "3"]
    };
    let paired = home.join("paired");
    let paired_str = paired.to_string_lossy().into_owned();
    for (package, bench) in MICRO {
        let mut args = vec!["bench", "-p", package, "--bench", bench, "--", "--noplot"];
        args.extend_from_slice(timing);
        cargo_to_stderr(
            &args,
            &[
                ("CRITERION_HOME", &home_str),
                ("KICC_BENCH_PAIRED_OUT", &paired_str),
            ],
        )?;
    }

    let mut figures = Vec::new();
    for (_, group) in MICRO {
        let dir = home.join(group);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .filter(|e| e.path().join("new/estimates.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let median = read_median(&dir.join(&name).join("new/estimates.json"))?;
            figures.push(Figure {
                name: format!("micro_{group}_{name}"),
                value: median,
                unit: "ns".into(),
            });
        }
    }
    // The paired ratios (blocks of the two alternated; see benches/support in kicc-core).
    for (_, group) in MICRO {
        let path = paired.join(format!("{group}.txt"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        figures.extend(parse_figures(&text, "ratio")?);
    }
    Ok(figures)
}

/// `name value` lines (or `name value unit` lines when `unit` is empty) as figures.
fn parse_figures(text: &str, unit: &str) -> Result<Vec<Figure>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next();
            let value = parts.next().map(str::parse::<f64>);
            let unit = if unit.is_empty() {
                parts.next()
            } else {
                Some(unit)
            };
            match (name, value, unit) {
                (Some(name), Some(Ok(value)), Some(unit)) => Ok(Figure {
                    name: name.to_owned(),
                    value,
                    unit: unit.to_owned(),
                }),
                _ => Err(format!("not a `name value unit` line: {l:?}")),
            }
        })
        .collect()
}

/// Like `crate::cargo`, with the child's stdout sent to our stderr, so that this command's
/// stdout carries nothing but the figures.
fn cargo_to_stderr(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("\n==> cargo {}", args.join(" "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("duplicating stderr: {e}"))?;
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::from(stderr))
        .status()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// The median estimate (ns) in a criterion `estimates.json`.
fn read_median(path: &Path) -> Result<f64, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
    v.get("median")
        .and_then(|m| m.get("point_estimate"))
        .and_then(serde_json::Value::as_f64)
        .ok_or(format!("{} has no median.point_estimate", path.display()))
}

/// Runs `cargo args`, passing its stderr through, and reads `name value unit` lines from
/// its stdout.
fn run_figures(args: &[&str]) -> Result<Vec<Figure>, String> {
    eprintln!("\n==> cargo {}", args.join(" "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "`cargo {}` failed ({}): {stdout}",
            args.join(" "),
            out.status
        ));
    }
    parse_figures(&stdout, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_lines() {
        let f = |value, unit: &str| {
            Figure {
                name: "x".into(),
                value,
                unit: unit.into(),
            }
            .line()
        };
        assert_eq!(f(1.03456, "ratio"), "x 1.035 ratio");
        assert_eq!(f(512.0, "ns"), "x 512 ns");
        assert_eq!(f(512.25, "ns"), "x 512.2 ns");
    }

    #[test]
    fn figure_parsing() {
        let f = parse_figures("a 1.5 ratio\n\nb 2 us\n", "").expect("valid lines");
        assert_eq!(
            (f[0].name.as_str(), f[0].value, f[0].unit.as_str()),
            ("a", 1.5, "ratio")
        );
        assert_eq!(f[1].line(), "b 2 us");
        let p = parse_figures("core_x_paired_ratio 1.25\n", "ratio").expect("valid");
        assert_eq!(p[0].line(), "core_x_paired_ratio 1.250 ratio");
        assert!(parse_figures("oops\n", "").is_err());
        assert!(parse_figures("a x us\n", "").is_err());
    }

    #[test]
    fn arguments() {
        assert!(parse(&["--quick".into()]).is_ok_and(|o| o.quick));
        assert!(parse(&["--fast".into()]).is_err());
        assert!(parse(&["--skip-batch".into()]).is_ok_and(|o| o.skip_batch));
    }
}
