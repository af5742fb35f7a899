//! `cargo xtask bench`: filled in by the benchmarking work (see BENCHMARKS.md).

/// Runs the benchmarks.
pub fn run(_args: &[String]) -> Result<(), String> {
    Err("the benchmarks are not built yet".into())
}
