//! Paired measurement shared by the benchmarks of kicc-core and the channel crates.
//!
//! Criterion measures one benchmark after another, seconds apart; on a shared, noisy
//! machine a slow phase can land on the SDK's benchmark and not on its floor, or the other
//! way round. [`paired_ratio`] instead alternates short blocks of the two (tens of
//! microseconds each, the order flipped every block) and takes the median of the block
//! ratios, so both sides see the same machine. `cargo xtask bench` reports these as
//! `*_paired_ratio` and judges the goal on them.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Iterations per block (a block lasts some tens of microseconds).
const PER_BLOCK: u32 = 32;

/// The median over `blocks` adjacent block pairs of time(`measured`) / time(`floor`).
pub fn paired_ratio<A, B>(
    mut measured: impl FnMut() -> A,
    mut floor: impl FnMut() -> B,
    blocks: usize,
) -> f64 {
    let block = |f: &mut dyn FnMut()| {
        let t0 = Instant::now();
        for _ in 0..PER_BLOCK {
            f();
        }
        t0.elapsed()
    };
    let mut run_measured = || {
        black_box(measured());
    };
    let mut run_floor = || {
        black_box(floor());
    };
    // Warm caches and branch predictors on both sides first.
    for _ in 0..blocks / 10 + 1 {
        block(&mut run_measured);
        block(&mut run_floor);
    }
    let mut ratios: Vec<f64> = (0..blocks)
        .map(|i| {
            let (m, f): (Duration, Duration) = if i % 2 == 0 {
                let m = block(&mut run_measured);
                (m, block(&mut run_floor))
            } else {
                let f = block(&mut run_floor);
                (block(&mut run_measured), f)
            };
            m.as_secs_f64() / f.as_secs_f64().max(1e-12)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Whether the paired ratios are wanted: `KICC_BENCH_PAIRED_OUT` names a directory (as
/// `cargo xtask bench` sets it).
pub fn wanted() -> bool {
    std::env::var_os("KICC_BENCH_PAIRED_OUT").is_some()
}

/// Prints the ratios and writes `<KICC_BENCH_PAIRED_OUT>/<group>.txt` with one
/// `<group>_<name>_paired_ratio <ratio>` line per ratio.
pub fn write(group: &str, ratios: &[(&str, f64)]) {
    let Some(dir) = std::env::var_os("KICC_BENCH_PAIRED_OUT") else {
        return;
    };
    let mut text = String::new();
    for (name, ratio) in ratios {
        println!("{group}/{name} paired ratio: {ratio:.3}");
        text.push_str(&format!("{group}_{name}_paired_ratio {ratio}\n"));
    }
    let path = std::path::Path::new(&dir).join(format!("{group}.txt"));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("could not write {}: {e}", path.display());
    }
}
