//! Publishing checks for `cargo xtask ci`: the clients over a custom `Transport` build
//! without hyper or rustls, and every crate meant for crates.io packages.

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

/// The crates whose `client` feature gives a client over any `Transport`.
const CLIENT_CRATES: [&str; 4] = [
    "kicc-generic",
    "kicc-alipay",
    "kicc-wechat",
    "wechatpay-direct",
];

/// What a client over your own `Transport` must not compile.
const HYPER_STACK: [&str; 5] = [
    "hyper",
    "hyper-util",
    "hyper-rustls",
    "rustls",
    "tokio-rustls",
];

/// Both checks, in the order CI wants them: the cheap tree check first.
pub(crate) fn ci() -> Result<(), String> {
    client_feature_lacks_hyper()?;
    package_published_crates()
}

/// `cargo tree -p CRATE --no-default-features --features client -e normal` holds no hyper,
/// rustls or tokio-rustls for every channel crate (tokio for timers is fine).
fn client_feature_lacks_hyper() -> Result<(), String> {
    for krate in CLIENT_CRATES {
        let args = ["-p", krate, "--no-default-features", "--features", "client"];
        eprintln!(
            "\n==> cargo tree {} -e normal (must not contain {})",
            args.join(" "),
            HYPER_STACK.join(", ")
        );
        let text = normal_tree(&args)?;
        if let Some(found) = forbidden_in(&text, &HYPER_STACK) {
            return Err(format!(
                "`cargo tree {}` contains {found}: the `client` feature must not pull in hyper",
                args.join(" ")
            ));
        }
        // The check is only worth something if the client is really there.
        if forbidden_in(&text, &["kicc-transport"]).is_none() {
            return Err(format!(
                "`cargo tree {}` has no kicc-transport: the `client` feature lost its client",
                args.join(" ")
            ));
        }
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

/// The first package name of `tree` (one `name vX.Y.Z ...` per line) that is in `names`.
fn forbidden_in<'a>(tree: &str, names: &[&'a str]) -> Option<&'a str> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .find_map(|name| names.iter().copied().find(|n| *n == name))
}

/// `cargo tree ARGS -e normal --prefix none`, as text.
fn normal_tree(args: &[&str]) -> Result<String, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
