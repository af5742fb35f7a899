//! The sandbox's one generator of identifiers and random text: deterministic
//! from the configured seed (SplitMix64). The KICC identifiers and the WeChat
//! Pay nonces and request IDs use separate instances, so neither shifts the
//! other.

/// A deterministic generator: the same seed yields the same sequence.
#[derive(Clone, Debug)]
pub(crate) struct IdGen {
    state: u64,
}

impl IdGen {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `prefix` followed by `digits` pseudo-random decimal digits (at most 19).
    pub(crate) fn next_id(&mut self, prefix: &str, digits: u32) -> String {
        let digits = digits.min(19);
        let modulus = 10u64.pow(digits);
        let n = self.next_u64() % modulus;
        format!("{prefix}{n:0width$}", width = digits as usize)
    }

    /// `len` characters from `alphabet` (non-empty).
    pub(crate) fn text(&mut self, alphabet: &[u8], len: usize) -> String {
        let n = alphabet.len().max(1) as u64;
        (0..len)
            .map(|_| {
                let i = usize::try_from(self.next_u64() % n).unwrap_or(0);
                char::from(alphabet.get(i).copied().unwrap_or(b'0'))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ids() {
        let mut a = IdGen::new(42);
        let mut b = IdGen::new(42);
        let mut c = IdGen::new(43);
        let xa: Vec<_> = (0..5).map(|_| a.next_id("SBP", 17)).collect();
        let xb: Vec<_> = (0..5).map(|_| b.next_id("SBP", 17)).collect();
        let xc: Vec<_> = (0..5).map(|_| c.next_id("SBP", 17)).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        assert!(xa.iter().all(|id| id.len() == 20 && id.starts_with("SBP")));
    }

    #[test]
    fn text_uses_the_alphabet() {
        let mut r = IdGen::new(1);
        let t = r.text(b"ab", 64);
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|c| c == b'a' || c == b'b'));
        assert_ne!(r.text(b"0123456789", 20), r.text(b"0123456789", 20));
    }
}
