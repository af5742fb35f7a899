//! The declared `rust-version` (workspace `Cargo.toml`) checked with that very toolchain.
//!
//! `cargo xtask ci` runs `cargo +<rust-version> check --workspace --lib --bins` in its own
//! target directory (`target/msrv`) when rustup has a matching toolchain installed
//! (`rustup toolchain install 1.88.0 --profile minimal`; `.ci/run` tries to install it). When
//! none is installed the step says so and is skipped, unless `KICC_REQUIRE_MSRV=1`, which
//! makes a missing toolchain an error. Tests, benches and dev-dependencies are not part of
//! the promise: the declared version is what a consumer of the libraries and the CLI needs.

use std::path::Path;
use std::process::Command;

/// Reads `rust-version = "X.Y"` from `[workspace.package]` in the root manifest.
fn declared(root: &Path) -> Result<String, String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("could not read Cargo.toml: {e}"))?;
    manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rust-version"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .next()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| "no rust-version in the workspace Cargo.toml".to_owned())
}

/// The installed rustup toolchain that is `version` (`1.88` matches `1.88.0-x86_64-...` and
/// `1.88-x86_64-...`), if any.
fn installed(version: &str, toolchains: &str) -> Option<String> {
    toolchains
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|name| {
            name.strip_prefix(version).is_some_and(|rest| {
                rest.starts_with('-') || rest.starts_with(".0-") || rest == ".0" || rest.is_empty()
            })
        })
        .map(str::to_owned)
}

/// Checks the workspace's libraries and binaries with the declared minimum toolchain.
pub fn run() -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent directory")?;
    let version = declared(root)?;
    eprintln!("\n==> rust-version {version}: cargo check with that toolchain");
    let listing = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let Some(toolchain) = installed(&version, &listing) else {
        let msg = format!(
            "toolchain {version} is not installed (`rustup toolchain install {version}.0 --profile minimal`)"
        );
        if std::env::var_os("KICC_REQUIRE_MSRV").is_some_and(|v| v == "1") {
            return Err(msg);
        }
        eprintln!("skipped: {msg}");
        return Ok(());
    };
    let status = Command::new("rustup")
        .args([
            "run",
            &toolchain,
            "cargo",
            "check",
            "--workspace",
            "--lib",
            "--bins",
        ])
        .env("CARGO_TARGET_DIR", root.join("target").join("msrv"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .current_dir(root)
        .status()
        .map_err(|e| format!("could not run rustup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the workspace does not build with its declared rust-version {version} ({status})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::installed;

    const LIST: &str = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                        nightly-x86_64-unknown-linux-gnu\n\
                        1.88.0-x86_64-unknown-linux-gnu\n\
                        1.95.0-x86_64-unknown-linux-gnu\n";

    #[test]
    fn finds_the_patch_zero_toolchain_of_a_minor_version() {
        assert_eq!(
            installed("1.88", LIST).as_deref(),
            Some("1.88.0-x86_64-unknown-linux-gnu")
        );
    }

    #[test]
    fn does_not_take_a_different_minor_version_for_it() {
        assert_eq!(installed("1.9", LIST), None);
        assert_eq!(installed("1.8", LIST), None);
        assert_eq!(installed("1.87", LIST), None);
    }
}
