//! Verifying WeChat Pay's signed responses: both key modes, every failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use common::*;
use http::{HeaderMap, StatusCode};
use wechatpay_direct::{
    interpret_reverse_response, response_message, sign_response, verify_response, KeyKind,
    MaybeRevokedReason, Nonce, ReverseOutcome, SerialNo, SignatureHeaders, VerificationKeys,
    VerifyError,
};

const NOW: u64 = 1_700_000_000;
const NONCE: &str = "593BEC0C930BF1AFEB40B4A08C8FB242";

/// Headers signed by the 2048-bit platform certificate's key over `body`.
fn cert_signed(body: &[u8], at: u64) -> HeaderMap {
    let sig = sign_response(
        body,
        ts(at),
        &Nonce::new(NONCE).unwrap(),
        &cert_2048_serial(),
        &key(KEY_2048),
    )
    .unwrap();
    let mut h = HeaderMap::new();
    sig.write_to(&mut h);
    h
}

/// Headers signed by the 3072-bit "WeChat Pay public key" over `body`.
fn pubkey_signed(body: &[u8], at: u64) -> HeaderMap {
    let serial = SerialNo::new(PUB_KEY_ID).unwrap();
    let sig = sign_response(
        body,
        ts(at),
        &Nonce::new(NONCE).unwrap(),
        &serial,
        &key(KEY_3072),
    )
    .unwrap();
    let mut h = HeaderMap::new();
    sig.write_to(&mut h);
    h
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    h.insert(name, value.parse().unwrap());
}

#[test]
fn valid_in_certificate_mode_and_public_key_mode_from_one_store() {
    let keys = key_store();
    assert_eq!(keys.len(), 2);
    let body = br#"{"ok":true}"#;

    let v = verify_response(&cert_signed(body, NOW), body, ts(NOW), &keys).unwrap();
    assert_eq!(v.kind, KeyKind::PlatformCertificate);
    assert_eq!(v.serial, CERT_2048_SERIAL.trim());

    let v = verify_response(&pubkey_signed(body, NOW), body, ts(NOW), &keys).unwrap();
    assert_eq!(v.kind, KeyKind::WechatpayPublicKey);
    assert_eq!(v.serial, PUB_KEY_ID);
    assert_eq!(v.timestamp, ts(NOW));
}

#[test]
fn openssl_signed_204_verifies_in_public_key_mode() {
    // Produced by `openssl dgst -sha256 -sign key-3072.pem` over TIMESTAMP\nNONCE\n\n.
    assert_eq!(
        RESPONSE_204_MESSAGE.as_bytes(),
        response_message("1700000000", NONCE, b"")
    );
    let mut h = HeaderMap::new();
    set(&mut h, "Wechatpay-Timestamp", "1700000000");
    set(&mut h, "Wechatpay-Nonce", NONCE);
    set(&mut h, "Wechatpay-Signature", RESPONSE_204_SIG_3072.trim());
    set(&mut h, "Wechatpay-Serial", PUB_KEY_ID);
    let v = verify_response(&h, b"", ts(NOW + 120), &key_store()).unwrap();
    assert_eq!(v.kind, KeyKind::WechatpayPublicKey);
    // The same 204 signature does not cover a non-empty body.
    assert!(matches!(
        verify_response(&h, b" ", ts(NOW), &key_store()),
        Err(VerifyError::BadSignature { .. })
    ));
}

#[test]
fn the_serial_picks_the_key() {
    // A signature by the certificate's key, presented under the public key's ID, fails.
    let mut h = cert_signed(b"", NOW);
    set(&mut h, "Wechatpay-Serial", PUB_KEY_ID);
    assert_eq!(
        verify_response(&h, b"", ts(NOW), &key_store()),
        Err(VerifyError::BadSignature {
            serial: PUB_KEY_ID.into()
        })
    );
    // Serial lookup ignores hex case.
    let mut h = cert_signed(b"", NOW);
    set(
        &mut h,
        "Wechatpay-Serial",
        &CERT_2048_SERIAL.trim().to_ascii_lowercase(),
    );
    assert!(verify_response(&h, b"", ts(NOW), &key_store()).is_ok());
}

#[test]
fn tampered_body_fails() {
    let h = cert_signed(br#"{"a":1}"#, NOW);
    assert!(matches!(
        verify_response(&h, br#"{"a":2}"#, ts(NOW), &key_store()),
        Err(VerifyError::BadSignature { .. })
    ));
}

#[test]
fn tampered_timestamp_fails() {
    let mut h = cert_signed(b"", NOW);
    set(&mut h, "Wechatpay-Timestamp", &(NOW + 1).to_string());
    assert!(matches!(
        verify_response(&h, b"", ts(NOW), &key_store()),
        Err(VerifyError::BadSignature { .. })
    ));
    let mut h = cert_signed(b"", NOW);
    set(
        &mut h,
        "Wechatpay-Nonce",
        "593BEC0C930BF1AFEB40B4A08C8FB243",
    );
    assert!(matches!(
        verify_response(&h, b"", ts(NOW), &key_store()),
        Err(VerifyError::BadSignature { .. })
    ));
}

#[test]
fn outside_the_window_past_and_future() {
    let keys = key_store();
    // Exactly 5 minutes either way is accepted...
    assert!(verify_response(&cert_signed(b"", NOW - 300), b"", ts(NOW), &keys).is_ok());
    assert!(verify_response(&cert_signed(b"", NOW + 300), b"", ts(NOW), &keys).is_ok());
    // ...one second more is not, even with a valid signature.
    assert_eq!(
        verify_response(&cert_signed(b"", NOW - 301), b"", ts(NOW), &keys),
        Err(VerifyError::OutsideWindow {
            timestamp: NOW - 301,
            now: NOW,
            max_skew_secs: 300
        })
    );
    assert_eq!(
        verify_response(&cert_signed(b"", NOW + 301), b"", ts(NOW), &keys),
        Err(VerifyError::OutsideWindow {
            timestamp: NOW + 301,
            now: NOW,
            max_skew_secs: 300
        })
    );
    // A millisecond timestamp is not a timestamp.
    let mut h = cert_signed(b"", NOW);
    set(&mut h, "Wechatpay-Timestamp", "1700000000000");
    assert!(matches!(
        verify_response(&h, b"", ts(NOW), &keys),
        Err(VerifyError::InvalidHeader {
            name: "Wechatpay-Timestamp",
            ..
        })
    ));
}

#[test]
fn unknown_serial_is_an_error() {
    let mut h = cert_signed(b"", NOW);
    set(
        &mut h,
        "Wechatpay-Serial",
        "7132D72A03E93CDDF8C03BBD1F37EEDF",
    );
    assert_eq!(
        verify_response(&h, b"", ts(NOW), &key_store()),
        Err(VerifyError::UnknownSerial {
            serial: "7132D72A03E93CDDF8C03BBD1F37EEDF".into()
        })
    );
    // An empty store never verifies anything.
    assert!(matches!(
        verify_response(
            &cert_signed(b"", NOW),
            b"",
            ts(NOW),
            &VerificationKeys::new()
        ),
        Err(VerifyError::UnknownSerial { .. })
    ));
}

#[test]
fn probe_signature_fails_cleanly() {
    let mut h = cert_signed(b"", NOW);
    set(
        &mut h,
        "Wechatpay-Signature",
        "WECHATPAY/SIGNTEST/5OXvn6vJJuPvsDD3MhHrLCzXtz+Y1V8yKv6KHyNfBqoZrEQ+LhKnMGSh5MBXF8=",
    );
    assert_eq!(
        verify_response(&h, b"", ts(NOW), &key_store()),
        Err(VerifyError::SignatureProbe)
    );
}

#[test]
fn malformed_base64_fails_cleanly() {
    for bad in ["not base64 at all", "AAE", "A===", "@@@@"] {
        let mut h = cert_signed(b"", NOW);
        set(&mut h, "Wechatpay-Signature", bad);
        assert_eq!(
            verify_response(&h, b"", ts(NOW), &key_store()),
            Err(VerifyError::MalformedSignature),
            "{bad}"
        );
    }
    // Valid Base64 of the wrong length is just a bad signature.
    let mut h = cert_signed(b"", NOW);
    set(&mut h, "Wechatpay-Signature", "AAECAw==");
    assert!(matches!(
        verify_response(&h, b"", ts(NOW), &key_store()),
        Err(VerifyError::BadSignature { .. })
    ));
}

#[test]
fn empty_204_body_verifies() {
    let h = cert_signed(b"", NOW);
    let out =
        interpret_reverse_response(StatusCode::NO_CONTENT, &h, b"", ts(NOW), &key_store()).unwrap();
    let ReverseOutcome::Revoked(v) = out else {
        panic!("{out:?}")
    };
    assert_eq!(v.serial, CERT_2048_SERIAL.trim());
}

#[test]
fn each_missing_header_is_named() {
    for (name, display) in [
        ("wechatpay-timestamp", "Wechatpay-Timestamp"),
        ("wechatpay-nonce", "Wechatpay-Nonce"),
        ("wechatpay-signature", "Wechatpay-Signature"),
        ("wechatpay-serial", "Wechatpay-Serial"),
    ] {
        let mut h = cert_signed(b"", NOW);
        h.remove(name);
        assert_eq!(
            verify_response(&h, b"", ts(NOW), &key_store()),
            Err(VerifyError::MissingHeader { name: display })
        );
    }
}

#[test]
fn unverified_or_unexpected_2xx_is_maybe_revoked() {
    let keys = key_store();
    // 204 with a tampered timestamp.
    let mut h = cert_signed(b"", NOW);
    set(&mut h, "Wechatpay-Timestamp", &(NOW - 1).to_string());
    let out = interpret_reverse_response(StatusCode::NO_CONTENT, &h, b"", ts(NOW), &keys).unwrap();
    assert!(matches!(
        out,
        ReverseOutcome::MaybeRevoked {
            status: 204,
            reason: MaybeRevokedReason::Unverified(VerifyError::BadSignature { .. })
        }
    ));
    // A verified 200 is not the documented success.
    let out = interpret_reverse_response(
        StatusCode::OK,
        &cert_signed(b"{}", NOW),
        b"{}",
        ts(NOW),
        &keys,
    )
    .unwrap();
    assert_eq!(
        out,
        ReverseOutcome::MaybeRevoked {
            status: 200,
            reason: MaybeRevokedReason::UnexpectedStatus
        }
    );
}

#[test]
fn key_store_rules() {
    let mut keys = VerificationKeys::new();
    // WeChat Pay public keys live under PUB_KEY_ID_ ids.
    assert!(keys
        .add_public_key_pem("7132D72A03E93CDD", PUB_3072)
        .is_err());
    assert!(keys.add_public_key_pem("PUB_KEY_ID_1", CERT_2048).is_err());
    assert!(keys.add_certificate_pem(PUB_2048).is_err());
    // An explicit serial overrides the certificate's own.
    keys.add_certificate_pem_with_serial(SerialNo::new("ROTATED01").unwrap(), CERT_3072)
        .unwrap();
    assert_eq!(keys.serials().collect::<Vec<_>>(), ["ROTATED01"]);
    assert!(keys.remove("rotated01"));
    assert!(keys.is_empty());
    // Debug shows serials and sizes only.
    assert_eq!(
        format!("{:?}", key_store()).matches("PUB_KEY_ID_").count(),
        1
    );
    let _ = SignatureHeaders::from_headers(&HeaderMap::new()).unwrap_err();
}
