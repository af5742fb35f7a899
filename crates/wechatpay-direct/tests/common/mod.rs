//! Fixtures shared by the integration tests (test-only keys; see fixtures/README.md).
#![allow(dead_code, unused_imports)]

#[cfg(feature = "transport")]
pub mod fake;

use wechatpay_direct::{RsaPrivateKey, SerialNo, Timestamp, VerificationKeys};

pub const GO_SDK_KEY: &str = include_str!("../fixtures/go-sdk-test-key.pem");
pub const GO_SDK_SIG: &str = include_str!("../fixtures/go-sdk-source.sig.b64");
pub const KEY_2048: &str = include_str!("../fixtures/key-2048.pem");
pub const KEY_2048_PKCS1: &str = include_str!("../fixtures/key-2048-pkcs1.pem");
pub const KEY_3072: &str = include_str!("../fixtures/key-3072.pem");
pub const KEY_1024: &str = include_str!("../fixtures/key-1024.pem");
pub const EC_KEY: &str = include_str!("../fixtures/ec-p256.pem");
pub const CERT_2048: &str = include_str!("../fixtures/cert-2048.pem");
pub const CERT_3072: &str = include_str!("../fixtures/cert-3072.pem");
pub const CERT_2048_SERIAL: &str = include_str!("../fixtures/cert-2048.serial");
pub const CERT_3072_SERIAL: &str = include_str!("../fixtures/cert-3072.serial");
pub const PUB_2048: &str = include_str!("../fixtures/pub-2048.pem");
pub const PUB_3072: &str = include_str!("../fixtures/pub-3072.pem");
pub const REQUEST_MESSAGE: &str = include_str!("../fixtures/request-message.txt");
pub const REQUEST_SIG_2048: &str = include_str!("../fixtures/request-message.sig-2048.b64");
pub const REQUEST_SIG_3072: &str = include_str!("../fixtures/request-message.sig-3072.b64");
pub const RESPONSE_204_MESSAGE: &str = include_str!("../fixtures/response-204-message.txt");
pub const RESPONSE_204_SIG_3072: &str =
    include_str!("../fixtures/response-204-message.sig-3072.b64");

/// The WeChat Pay public key ID the 3072-bit key is registered under in tests.
pub const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000000001";

pub fn ts(secs: u64) -> Timestamp {
    Timestamp::from_unix_secs(secs).unwrap()
}

pub fn key(pem: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pem(pem).unwrap()
}

pub fn cert_2048_serial() -> SerialNo {
    SerialNo::new(CERT_2048_SERIAL.trim()).unwrap()
}

/// Both modes in one store: the 2048-bit platform certificate (by its serial)
/// and the 3072-bit key as a WeChat Pay public key (by PUB_KEY_ID).
pub fn key_store() -> VerificationKeys {
    let mut keys = VerificationKeys::new();
    keys.add_certificate_pem(CERT_2048).unwrap();
    keys.add_public_key_pem(PUB_KEY_ID, PUB_3072).unwrap();
    keys
}
