//! The merchant's secret key and `msgAuthValue`.
//!
//! `msgAuthValue` is HMAC-SHA256, keyed with the secret key's raw UTF-8 bytes, over
//! `pgCno + "|" + shopTransactionId`, written as 64 lowercase hex characters (KICC's sample
//! code in three languages does exactly this; integrations that used Base64 failed).
//! The channel crates compute it inside the request builder from the very values they
//! serialize, so the two can never disagree.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::field::{FieldError, Rule};
use crate::text::{PgCno, ShopTransactionId};

/// The merchant's KICC secret key. Never printed, zeroed on drop.
///
/// `Debug` and `Display` show `SecretKey(<redacted>)`. The SDK ships no default key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Box<[u8]>);

impl SecretKey {
    /// Wraps the secret key string KICC issued. It must not be empty.
    pub fn new(key: impl Into<String>) -> Result<Self, FieldError> {
        let mut s: String = key.into();
        if s.is_empty() {
            return Err(FieldError::new("secretKey", Rule::Empty));
        }
        let key = SecretKey(s.as_bytes().into());
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
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable_hmac(),
        };
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
