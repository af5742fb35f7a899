//! Generated idempotency keys (`shopTransactionId`).
//!
//! A generated key is a ULID: 48 bits of Unix milliseconds and 80 random bits in Crockford
//! Base32, 26 characters. Keys sort by creation time, fit the 60-byte limit, and two keys
//! made in the same millisecond differ in 80 random bits, so two equal partial refunds of
//! one order on one day never collide (a key derived from order + amount + date would).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::random::Rng;
use crate::text::ShopTransactionId;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl ShopTransactionId {
    /// A new key for a request made at `now`, with its random part from `rng`.
    pub fn generate(now: SystemTime, rng: &mut Rng) -> ShopTransactionId {
        let mut random = [0u8; 10];
        rng.fill(&mut random);
        Self::from_parts(now, random)
    }

    /// A key from a time and 80 random bits (for callers with their own randomness).
    pub fn from_parts(now: SystemTime, random: [u8; 10]) -> ShopTransactionId {
        let millis = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
            .min((1u128 << 48) - 1) as u64;
        let mut value: u128 = u128::from(millis) << 80;
        for (i, b) in random.iter().enumerate() {
            value |= u128::from(*b) << (8 * (9 - i));
        }
        let mut out = [0u8; 26];
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 5 * (25 - i);
            *slot = CROCKFORD[((value >> shift) & 0x1F) as usize];
        }
        // Crockford characters are always a valid key (ASCII, 26 bytes, none forbidden).
        let text = String::from_utf8_lossy(&out).into_owned();
        match ShopTransactionId::new(text) {
            Ok(id) => id,
            Err(_) => unreachable_key(),
        }
    }
}

#[cold]
fn unreachable_key() -> ! {
    panic!("a Crockford Base32 ULID is always a valid shopTransactionId")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    #[test]
    fn keys_are_unique_time_ordered_and_short() {
        let mut rng = Rng::from_seed([1; 32]);
        let t0 = UNIX_EPOCH + Duration::from_millis(1_795_273_200_000);
        let mut seen = HashSet::new();
        let mut prev: Option<ShopTransactionId> = None;
        for i in 0..2000u64 {
            // Many keys in the same millisecond, then later ones.
            let t = t0 + Duration::from_millis(i / 100);
            let k = ShopTransactionId::generate(t, &mut rng);
            assert_eq!(k.as_str().len(), 26);
            assert!(seen.insert(k.clone()), "duplicate key {k}");
            if let Some(p) = &prev {
                if i % 100 == 0 {
                    assert!(p.as_str() < k.as_str(), "not time ordered: {p} then {k}");
                }
            }
            prev = Some(k);
        }
    }

    #[test]
    fn known_encoding() {
        // ULID of time 0 and random all 0xFF: "0000000000" + 16 'Z'.
        let k = ShopTransactionId::from_parts(UNIX_EPOCH, [0xFF; 10]);
        assert_eq!(k.as_str(), "0000000000ZZZZZZZZZZZZZZZZ");
    }
}
