//! The merchant's secret key and `msgAuthValue`.
//!
//! `msgAuthValue` is HMAC-SHA256, keyed with the secret key's raw UTF-8 bytes, over
//! `pgCno + "|" + shopTransactionId`, written as 64 lowercase hex characters (KICC's sample
//! code in three languages does exactly this; integrations that used Base64 failed).
//! The channel crates compute it inside the request builder from the very values they
//! serialize, so the two can never disagree.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::field::{FieldError, Rule};
use crate::text::{PgCno, ShopTransactionId};

/// The merchant's KICC secret key. Never printed, zeroed on drop.
///
/// `Debug` and `Display` show `SecretKey(<redacted>)`. The SDK ships no default key.
///
/// It is kept keyed: HMAC's two key blocks are hashed once, here, and each `msgAuthValue`
/// starts from a copy of that state, so signing hashes two blocks instead of four. The keyed
/// state is as secret as the key, and is zeroed on drop like it (`hmac`'s and `sha2`'s
/// `zeroize` feature), every copy included.
#[derive(Clone)]
pub struct SecretKey {
    key: Box<[u8]>,
    /// Boxed: HMAC-SHA256's keyed state is over a hundred bytes (two SHA-256 states and a
    /// block buffer), and a merchant is moved around.
    keyed: Box<Hmac<Sha256>>,
}

impl SecretKey {
    /// Wraps the secret key string KICC issued. It must not be empty.
    pub fn new(key: impl Into<String>) -> Result<Self, FieldError> {
        let mut s: String = key.into();
        if s.is_empty() {
            return Err(FieldError::new("secretKey", Rule::Empty));
        }
        let key = SecretKey {
            keyed: Box::new(keyed(s.as_bytes())),
            key: s.as_bytes().into(),
        };
        s.zeroize();
        Ok(key)
    }

    /// Computes `msgAuthValue` for a request carrying this `pg_cno` and `shop_transaction_id`.
    pub fn msg_auth_value(
        &self,
        pg_cno: &PgCno,
        shop_transaction_id: &ShopTransactionId,
    ) -> MsgAuthValue {
        self.hmac_hex(&[
            pg_cno.as_str().as_bytes(),
            b"|",
            shop_transaction_id.as_str().as_bytes(),
        ])
    }

    /// HMAC-SHA256 over the concatenation of `parts`, as lowercase hex.
    fn hmac_hex(&self, parts: &[&[u8]]) -> MsgAuthValue {
        let mut mac = Hmac::<Sha256>::clone(&self.keyed);
        for p in parts {
            mac.update(p);
        }
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; 64];
        // 32 bytes always encode into exactly 64 hex characters.
        let _ = hex::encode_to_slice(tag, &mut out);
        MsgAuthValue(out)
    }
}

/// HMAC-SHA256 keyed with `key`, before any message.
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    }
}

impl Zeroize for SecretKey {
    fn zeroize(&mut self) {
        self.key.zeroize();
        // The keyed state replaced by that of an empty key: the old one is zeroed as it drops.
        *self.keyed = keyed(&[]);
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        // The keyed state zeroes itself as it drops.
        self.key.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` only fails for fixed-size-key MACs; HMAC-SHA256 takes any length.
    panic!("HMAC-SHA256 rejected a key, which it never does")
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A computed `msgAuthValue`: 64 lowercase hex characters.
///
/// It is not the secret, but it is a credential for one request, so `Debug` hides it and the
/// SDK never logs it. [`MsgAuthValue::as_str`] gives it to the serializer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MsgAuthValue([u8; 64]);

impl MsgAuthValue {
    pub(crate) fn from_hex_bytes(hex: [u8; 64]) -> Self {
        MsgAuthValue(hex)
    }

    /// The value, as sent.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// Compares with a received value in constant time (for servers and tests).
    pub fn matches(&self, received: &str) -> bool {
        // `subtle` keeps the comparison free of data-dependent branches (a length mismatch
        // returns early, which only tells that the length is not 64).
        self.0[..].ct_eq(received.as_bytes()).into()
    }
}

impl fmt::Debug for MsgAuthValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MsgAuthValue(<redacted>)")
    }
}

impl serde::Serialize for MsgAuthValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_values_computed_independently() {
        // Expected values computed outside Rust with OpenSSL:
        //   printf '%s' 'PG20261121000001|K01JD0000000000000000000001' \
        //     | openssl dgst -sha256 -hmac 'sandbox-secret-key'
        //   printf '%s' '2026112100000012345|주문-취소-1' | openssl dgst -sha256 -hmac '비밀키-테스트'
        // (the second uses a UTF-8 key and UTF-8 message, checking raw-bytes keying).
        let key = SecretKey::new("sandbox-secret-key").unwrap();
        let v = key.msg_auth_value(
            &PgCno::new("PG20261121000001").unwrap(),
            &ShopTransactionId::new("K01JD0000000000000000000001").unwrap(),
        );
        assert_eq!(
            v.as_str(),
            include_str!("../tests/vectors/hmac1.txt").trim()
        );
        let key = SecretKey::new("비밀키-테스트").unwrap();
        let v = key.msg_auth_value(
            &PgCno::new("2026112100000012345").unwrap(),
            &ShopTransactionId::new("주문-취소-1").unwrap(),
        );
        assert_eq!(
            v.as_str(),
            include_str!("../tests/vectors/hmac2.txt").trim()
        );
        assert!(v
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(v.matches(include_str!("../tests/vectors/hmac2.txt").trim()));
        assert!(!v.matches("00"));
        // Same length, one character off (first, last), and the uppercase spelling.
        let good = v.as_str().to_owned();
        for i in [0, 63] {
            let mut bad = good.clone().into_bytes();
            bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
            assert!(!v.matches(std::str::from_utf8(&bad).unwrap()));
        }
        assert!(!v.matches(&good.to_uppercase()));
        assert!(!v.matches(&format!("{good}0")));
        assert!(!v.matches(""));
    }

    /// HMAC keyed afresh for every message, as the hmac crate documents it.
    fn fresh(key: &[u8], message: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn the_kept_keyed_state_signs_as_a_fresh_key_does() {
        // Keys shorter than, equal to and longer than SHA-256's 64-byte block (a longer key
        // is hashed first); messages across the one-block padding boundary (55/56 bytes).
        for key_len in [1usize, 20, 63, 64, 65, 200] {
            let key_text: String = (0..key_len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let key = SecretKey::new(key_text.clone()).unwrap();
            for (pg_len, key_len2) in [(1usize, 1usize), (20, 34), (27, 27), (28, 27), (60, 60)] {
                let pg = PgCno::new("P".repeat(pg_len)).unwrap();
                let k = ShopTransactionId::new("K".repeat(key_len2)).unwrap();
                let message = format!("{}|{}", pg.as_str(), k.as_str());
                let want = fresh(key_text.as_bytes(), message.as_bytes());
                // Twice: signing must not change the kept state.
                assert_eq!(key.msg_auth_value(&pg, &k).as_str(), want);
                assert_eq!(key.clone().msg_auth_value(&pg, &k).as_str(), want);
                assert_eq!(key.msg_auth_value(&pg, &k).as_str(), want);
            }
        }
    }

    #[test]
    fn a_zeroized_key_no_longer_signs_as_before() {
        let mut key = SecretKey::new("sandbox-secret-key").unwrap();
        let pg = PgCno::new("PG20261121000001").unwrap();
        let k = ShopTransactionId::new("K01JD0000000000000000000001").unwrap();
        let before = key.msg_auth_value(&pg, &k);
        key.zeroize();
        let after = key.msg_auth_value(&pg, &k);
        assert!(!before.matches(after.as_str()));
        assert_eq!(
            after.as_str(),
            fresh(b"", format!("{}|{}", pg.as_str(), k.as_str()).as_bytes())
        );
        assert!(key.key.iter().all(|&b| b == 0));
    }

    #[test]
    fn secrets_never_print() {
        let key = SecretKey::new("super-secret-value").unwrap();
        assert!(!format!("{key:?} {key}").contains("super-secret"));
        let v = key.msg_auth_value(
            &PgCno::new("a").unwrap(),
            &ShopTransactionId::new("b").unwrap(),
        );
        assert!(!format!("{v:?}").contains(v.as_str()));
        assert!(SecretKey::new("").is_err());
    }
}
