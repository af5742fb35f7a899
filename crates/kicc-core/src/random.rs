//! Randomness, injected: the core never reads an entropy source of its own.
//!
//! The caller seeds a [`Rng`] with 32 bytes from the operating system (the client crates do
//! this with `getrandom`); tests seed it with fixed bytes and get the same jitter and keys
//! every run. [`Rng::seeded_on_first_use`] defers the seeding to the first value drawn, so a
//! cancel that succeeds at its first attempt (no jitter, no new key) never asks the OS.

/// A small, fast pseudo-random generator (xoshiro256**), seeded by the caller.
///
/// Used for backoff jitter and for the random part of generated idempotency keys. It is not
/// used for anything secret.
#[derive(Clone)]
pub struct Rng {
    s: [u64; 4],
    /// Where the seed comes from when it is still to be taken ([`Rng::seeded_on_first_use`]).
    pending: Option<fn() -> [u8; 32]>,
}

impl Rng {
    /// A generator seeded with `seed` (give it 32 bytes of OS randomness in production).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Rng {
            s: Self::state_of(seed),
            pending: None,
        }
    }

    /// A generator that calls `seed` for its seed when the first value is drawn, not before:
    /// a generator that is never used costs no call to `seed` (for OS randomness, a system
    /// call). Drawing gives exactly the values of `Rng::from_seed(seed())`. A clone made
    /// before the first draw calls `seed` itself, so with OS randomness it draws its own
    /// values, also in a process forked in between.
    pub fn seeded_on_first_use(seed: fn() -> [u8; 32]) -> Self {
        Rng {
            s: [0; 4],
            pending: Some(seed),
        }
    }

    /// The xoshiro256** state for `seed`.
    fn state_of(seed: [u8; 32]) -> [u64; 4] {
        let mut s = [0u64; 4];
        for (i, chunk) in seed.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            s[i] = u64::from_le_bytes(b);
        }
        // An all-zero state would stay zero forever; stir with SplitMix64.
        let mut x = s[0] ^ s[1] ^ s[2] ^ s[3] ^ 0x9E37_79B9_7F4A_7C15;
        for w in &mut s {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *w ^= z ^ (z >> 31);
        }
        s
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        if let Some(seed) = self.pending.take() {
            self.s = Self::state_of(seed());
        }
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A value in `0..=max`.
    pub fn below_or_equal(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        // Multiply-shift: bias is below 2^-64 * (max + 1), negligible for delays.
        ((u128::from(self.next_u64()) * (u128::from(max) + 1)) >> 64) as u64
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_spread() {
        let mut a = Rng::from_seed([7; 32]);
        let mut b = Rng::from_seed([7; 32]);
        let mut c = Rng::from_seed([8; 32]);
        let va: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        let mut z = Rng::from_seed([0; 32]);
        assert_ne!(z.next_u64(), 0);
        for _ in 0..1000 {
            assert!(z.below_or_equal(10) <= 10);
        }
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[z.below_or_equal(3) as usize] = true;
        }
        assert_eq!(seen, [true; 4]);
    }

    /// Reads the hex outputs listed under `heading` in the reference program's output.
    fn reference(heading: &str) -> Vec<u64> {
        let out = include_str!("../tests/vectors/xoshiro_ref.out");
        out.lines()
            .skip_while(|l| *l != heading)
            .skip(1)
            .take_while(|l| l.starts_with("0x"))
            .map(|l| u64::from_str_radix(l.trim_end_matches(',').trim_start_matches("0x"), 16))
            .collect::<Result<_, _>>()
            .expect("hex outputs")
    }

    /// The generator against the authors' C code (`tests/vectors/xoshiro_ref.c`, compiled
    /// with gcc; its output is `xoshiro_ref.out`). From the state {1, 2, 3, 4} the first
    /// values are also the ones other implementations publish (11520, 0, 1509978240, ...).
    #[test]
    fn next_u64_matches_the_reference_implementation() {
        let expected = reference("state 1,2,3,4:");
        assert_eq!(expected.len(), 10);
        assert_eq!(&expected[..3], &[11520, 0, 1_509_978_240]);
        let mut r = Rng {
            s: [1, 2, 3, 4],
            pending: None,
        };
        let got: Vec<u64> = (0..expected.len()).map(|_| r.next_u64()).collect();
        assert_eq!(got, expected);
    }

    /// Seeding (little-endian words stirred with SplitMix64) against the same C program.
    #[test]
    fn seeding_matches_the_reference_implementation() {
        let mut counting = [0u8; 32];
        for (i, b) in counting.iter_mut().enumerate() {
            *b = i as u8;
        }
        for (heading, seed) in [("seed 0:", [7u8; 32]), ("seed 1:", counting)] {
            let expected = reference(heading);
            assert_eq!(expected.len(), 6);
            let mut r = Rng::from_seed(seed);
            let got: Vec<u64> = (0..expected.len()).map(|_| r.next_u64()).collect();
            assert_eq!(got, expected, "{heading}");
        }
        // The C program's SplitMix64 is the published one: its first output from 1234567.
        assert_eq!(
            reference("splitmix64 1234567:")[0],
            6_457_827_717_110_365_317
        );
    }

    static SEEDS_TAKEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn counted_seed() -> [u8; 32] {
        SEEDS_TAKEN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        [7; 32]
    }

    #[test]
    fn seeded_on_first_use_seeds_once_at_the_first_draw() {
        use std::sync::atomic::Ordering::SeqCst;
        let before = SEEDS_TAKEN.load(SeqCst);
        let mut lazy = Rng::seeded_on_first_use(counted_seed);
        let _unused = lazy.clone();
        assert_eq!(SEEDS_TAKEN.load(SeqCst), before, "seeded before any draw");
        let mut eager = Rng::from_seed([7; 32]);
        let got: Vec<u64> = (0..8).map(|_| lazy.next_u64()).collect();
        let want: Vec<u64> = (0..8).map(|_| eager.next_u64()).collect();
        assert_eq!(got, want, "the values of from_seed(seed())");
        assert_eq!(SEEDS_TAKEN.load(SeqCst), before + 1, "seeded exactly once");
        // A clone taken before the first draw seeds itself.
        let mut fresh = Rng::seeded_on_first_use(counted_seed);
        let mut twin = fresh.clone();
        assert_eq!(fresh.next_u64(), twin.next_u64());
        assert_eq!(SEEDS_TAKEN.load(SeqCst), before + 3);
    }

    #[test]
    fn fill_uses_little_endian_words() {
        let mut a = Rng::from_seed([7; 32]);
        let mut buf = [0u8; 12];
        a.fill(&mut buf);
        let first = reference("seed 0:");
        assert_eq!(&buf[..8], &first[0].to_le_bytes());
        assert_eq!(&buf[8..], &first[1].to_le_bytes()[..4]);
    }
}
