//! Publishing checks for `cargo xtask ci`: the clients over a custom `Transport` build
//! without hyper or rustls, every crate meant for crates.io packages, and nothing in
//! Cargo.lock needs a newer Rust than the declared `rust-version`.

use std::process::Command;

/// The crates published to crates.io (`publish = true`); kicc-bench, kicc-soak and xtask
/// are not.
const PUBLISHED: [&str; 9] = [
    "kicc-core",
    "kicc-transport",
    "kicc-generic",
    "kicc-alipay",
    "kicc-wechat",
    "wechatpay-direct",
    "kicc-sandbox",
    "kicc-ledger",
    "kicc-cli",
];

/// The crates with a feature that gives a client over any `Transport`, and that feature:
/// `transport` in the channel crates (their default `hyper` feature adds kicc-transport's
/// hyper + rustls client), `client` in kicc-ledger (its executor over the caller's transport).
const CLIENT_CRATES: [(&str, &str); 5] = [
    ("kicc-generic", "transport"),
    ("kicc-alipay", "transport"),
    ("kicc-wechat", "transport"),
    ("wechatpay-direct", "transport"),
    ("kicc-ledger", "client"),
];

/// What a client over your own `Transport` must not compile.
const HYPER_STACK: [&str; 5] = [
    "hyper",
    "hyper-util",
    "hyper-rustls",
    "rustls",
    "tokio-rustls",
];

/// The checks, in the order CI wants them: the cheap ones first.
pub(crate) fn ci() -> Result<(), String> {
    transport_feature_builds_without_hyper()?;
    locked_dependencies_fit_msrv()?;
    package_published_crates()
}

/// Every package in Cargo.lock that declares a `rust-version` declares one no newer than
/// the workspace's: it keeps a `cargo update` from quietly raising the minimum (ordered-float
/// 5.5 needs 1.90, so the lock keeps 5.0.0). The build with that toolchain is `msrv::run`.
fn locked_dependencies_fit_msrv() -> Result<(), String> {
    eprintln!("\n==> cargo metadata (every locked rust-version <= the workspace's)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata has no packages")?;
    let msrv = packages
        .iter()
        .find(|p| p["name"] == "kicc-core")
        .and_then(|p| p["rust_version"].as_str())
        .ok_or("kicc-core declares no rust-version")?
        .to_owned();
    let limit = parse_version(&msrv).ok_or(format!("unreadable rust-version {msrv}"))?;
    let too_new: Vec<String> = packages
        .iter()
        .filter_map(|p| {
            let declared = p["rust_version"].as_str()?;
            let newer = parse_version(declared).is_none_or(|v| v > limit);
            newer.then(|| format!("{} {} needs {declared}", p["name"], p["version"]))
        })
        .collect();
    if !too_new.is_empty() {
        return Err(format!(
            "Cargo.lock needs a newer Rust than rust-version {msrv}: {}",
            too_new.join("; ")
        ));
    }
    // The build with that toolchain itself is `cargo xtask msrv`, a later step of ci.
    Ok(())
}

/// `1.88` or `1.88.0` as `(1, 88, 0)`.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split('.').map(str::parse::<u32>);
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    parts.next().is_none().then_some((major, minor, patch))
}

/// `cargo tree -p CRATE --no-default-features --features FEATURE -e normal` holds no hyper,
/// rustls or tokio-rustls for every crate in [`CLIENT_CRATES`] (tokio for timers is fine),
/// and the crate builds that way, clippy-clean.
fn transport_feature_builds_without_hyper() -> Result<(), String> {
    for (krate, feature) in CLIENT_CRATES {
        let args = ["-p", krate, "--no-default-features", "--features", feature];
        eprintln!(
            "\n==> cargo tree {} -e normal (must not contain {})",
            args.join(" "),
            HYPER_STACK.join(", ")
        );
        let text = crate::tree(&args)?;
        if let Some(found) = crate::forbidden_in(&text, &HYPER_STACK) {
            return Err(format!(
                "`cargo tree {}` contains {found}: the `{feature}` feature must not pull in hyper",
                args.join(" ")
            ));
        }
        // The check is only worth something if the client is really there.
        if crate::forbidden_in(&text, &["kicc-transport"]).is_none() {
            return Err(format!(
                "`cargo tree {}` has no kicc-transport: the `{feature}` feature lost its client",
                args.join(" ")
            ));
        }
        crate::cargo(
            &[
                "clippy",
                "-p",
                krate,
                "--no-default-features",
                "--features",
                feature,
                "--lib",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
    }
    Ok(())
}

/// `cargo package --no-verify` of every published crate at once, so path dependencies
/// between them resolve to the versions being packaged (`--no-verify` skips the builds that
/// `cargo test` already did; `--allow-dirty` lets it run on a working tree).
fn package_published_crates() -> Result<(), String> {
    let mut args = vec!["package", "--no-verify", "--allow-dirty"];
    for krate in PUBLISHED {
        args.extend(["-p", krate]);
    }
    crate::cargo(&args, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forbidden_in;

    #[test]
    fn reads_rust_versions_as_numbers() {
        assert_eq!(parse_version("1.88"), Some((1, 88, 0)));
        assert_eq!(parse_version("1.88.1"), Some((1, 88, 1)));
        assert!(parse_version("1.90").unwrap() > parse_version("1.88").unwrap());
        assert!(parse_version("1.100").unwrap() > parse_version("1.88.9").unwrap());
        assert_eq!(parse_version("1.x"), None);
        assert_eq!(parse_version("1.2.3.4"), None);
    }

    #[test]
    fn finds_a_forbidden_package_by_its_exact_name() {
        let tree = "kicc-alipay v0.1.0 (/x)\nkicc-transport v0.1.0 (/y)\ntokio v1.54.1\n";
        assert_eq!(forbidden_in(tree, &HYPER_STACK), None);
        assert_eq!(
            forbidden_in(tree, &["kicc-transport"]),
            Some("kicc-transport")
        );
        let with_hyper = format!("{tree}hyper-rustls v0.27.7\n");
        assert_eq!(
            forbidden_in(&with_hyper, &HYPER_STACK),
            Some("hyper-rustls")
        );
        // A name that merely starts like a forbidden one is not it.
        assert_eq!(forbidden_in("hyperlocal v0.9.0\n", &HYPER_STACK), None);
    }
}
