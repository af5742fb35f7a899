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

// `KeyInit` by the path hmac 0.12 and 0.13 both have: the channel crates' benchmarks
// include this file with their own hmac.
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use kicc_core::{BaseUrl, Environment, MallId, Merchant, SecretKey};
use sha2::Sha256;

/// The sandbox's documented mall ID, used by every benchmark.
pub const MALL_ID: &str = "T0000001";
/// The sandbox-only secret key, used by every benchmark.
pub const SECRET: &str = "sandbox-secret-key";

/// The benchmarks' merchant: the sandbox's credentials on a loopback base URL.
pub fn merchant() -> Merchant {
    Merchant::new(
        Environment::Custom(BaseUrl::new("http://127.0.0.1:8780").expect("literal URL")),
        MallId::new(MALL_ID).expect("literal mall ID"),
        SecretKey::new(SECRET).expect("literal key"),
    )
}

/// The floor's HMAC: HMAC-SHA256 of `pg|key` as 64 lowercase hex characters, by hand.
pub fn hmac_hex(secret: &[u8], pg: &str, key: &str, out: &mut [u8; 64]) {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    mac.update(pg.as_bytes());
    mac.update(b"|");
    mac.update(key.as_bytes());
    hex::encode_to_slice(mac.finalize().into_bytes(), out).expect("64 bytes");
}

/// The floor's serialization: serde_json of `value` into a buffer sized like
/// `kicc_core::message::to_json`'s.
pub fn plain_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(384);
    serde_json::to_writer(&mut out, value).expect("plain struct serializes");
    out
}

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
