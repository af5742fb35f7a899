//! Signing: official test vector, OpenSSL-made signatures, key loading rules.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use common::*;
use http::uri::PathAndQuery;
use http::Method;
use wechatpay_direct::{
    parse_authorization, request_message, sign_request, verify_request_signature, KeyError, MchId,
    MerchantMode, Nonce, OrderRef, ReverseRequest, RsaPrivateKey, RsaPublicKey, SerialNo, Signer,
    VerifyError, AUTH_SCHEME, USER_AGENT,
};

#[test]
fn reproduces_the_go_sdk_test_vector() {
    let key = key(GO_SDK_KEY);
    assert_eq!(key.bits(), 2048);
    assert_eq!(key.sign_base64(b"source").unwrap(), GO_SDK_SIG.trim());
}

#[test]
fn matches_openssl_signatures_for_2048_and_3072_bit_keys() {
    for (pem, sig, bits) in [
        (KEY_2048, REQUEST_SIG_2048, 2048),
        (KEY_3072, REQUEST_SIG_3072, 3072),
    ] {
        let key = key(pem);
        assert_eq!(key.bits(), bits);
        assert_eq!(
            key.sign_base64(REQUEST_MESSAGE.as_bytes()).unwrap(),
            sig.trim(),
            "{bits}-bit key"
        );
    }
}

#[test]
fn pkcs1_and_pkcs8_forms_of_a_key_sign_identically() {
    let pkcs1 = key(KEY_2048_PKCS1);
    assert!(KEY_2048_PKCS1.contains("BEGIN RSA PRIVATE KEY"));
    assert_eq!(
        pkcs1.sign_base64(REQUEST_MESSAGE.as_bytes()).unwrap(),
        REQUEST_SIG_2048.trim()
    );
    assert_eq!(pkcs1.public_key(), key(KEY_2048).public_key());
}

#[test]
fn revoke_request_signs_the_exact_canonical_message() {
    let request = ReverseRequest::new(
        OrderRef::out_trade_no("ORDER-20240101-0001").unwrap(),
        MerchantMode::common("1900000109").unwrap(),
    );
    let serial = cert_2048_serial();
    let nonce = Nonce::new("5K8264ILTKCH16CQ2502SI8ZNMTM67VS").unwrap();
    let signed = request
        .sign(&serial, &key(KEY_2048), ts(1_700_000_000), &nonce)
        .unwrap();
    // The fixture message was written by hand from the documentation and signed by OpenSSL.
    assert_eq!(signed.signed_message(), REQUEST_MESSAGE);
    let expected_auth = format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"1900000109\",nonce_str=\"5K8264ILTKCH16CQ2502SI8ZNMTM67VS\",timestamp=\"1700000000\",serial_no=\"{}\",signature=\"{}\"",
        serial,
        REQUEST_SIG_2048.trim()
    );
    let h = signed.headers();
    assert_eq!(h["authorization"], expected_auth.as_str());
    assert_eq!(h["accept"], "application/json");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["user-agent"], USER_AGENT);
    assert!(USER_AGENT.starts_with("kicc-rs wechatpay-direct/"));
    assert_eq!(signed.body().as_ref(), br#"{"mchid":"1900000109"}"#);

    // The dry-run object carries the same facts.
    let dry = signed.dry_run_json(&wechatpay_direct::BaseUrl::hong_kong());
    assert_eq!(dry["method"], "POST");
    assert_eq!(
        dry["url"],
        "https://apihk.mch.weixin.qq.com/v3/global/micropay/transactions/out-trade-no/ORDER-20240101-0001/reverse"
    );
    assert_eq!(dry["signed_message"], REQUEST_MESSAGE);
    assert_eq!(dry["body"], r#"{"mchid":"1900000109"}"#);
    assert_eq!(dry["headers"]["authorization"], expected_auth.as_str());

    // Debug never shows the signature.
    assert!(!format!("{signed:?}").contains(REQUEST_SIG_2048.trim()));
}

#[test]
fn institutional_mode_signs_as_the_institution() {
    let request = ReverseRequest::new(
        OrderRef::transaction_id("4200001234202401010000000001").unwrap(),
        MerchantMode::institutional("1900000109", "1900000100").unwrap(),
    );
    let nonce = Nonce::new("0123456789abcdefghijABCDEFGHIJkl").unwrap();
    let signed = request
        .sign(
            &cert_2048_serial(),
            &key(KEY_2048),
            ts(1_700_000_000),
            &nonce,
        )
        .unwrap();
    assert_eq!(
        signed.body().as_ref(),
        br#"{"sp_mchid":"1900000109","sub_mchid":"1900000100"}"#
    );
    let parts = parse_authorization(signed.headers()["authorization"].to_str().unwrap()).unwrap();
    assert_eq!(parts.mchid, "1900000109");
    assert!(signed
        .signed_message()
        .starts_with("POST\n/v3/global/micropay/transactions/id/4200001234202401010000000001/reverse\n1700000000\n"));
}

#[test]
fn server_side_verifies_what_the_client_signed() {
    let key = key(KEY_3072);
    let mchid = MchId::new("1900000109").unwrap();
    let serial = SerialNo::new("ABC123").unwrap();
    let nonce = Nonce::new("5K8264ILTKCH16CQ2502SI8ZNMTM67VS").unwrap();
    let url =
        PathAndQuery::from_static("/v3/global/micropay/transactions/out-trade-no/X/reverse?a=1");
    let signer = Signer {
        mchid: &mchid,
        serial_no: &serial,
        key: &key,
    };
    let sig = sign_request(
        signer,
        &Method::POST,
        &url,
        ts(1_700_000_000),
        &nonce,
        b"{}",
    )
    .unwrap();
    assert_eq!(
        sig.message(),
        request_message(&Method::POST, &url, ts(1_700_000_000), &nonce, b"{}")
    );
    assert!(sig.authorization().starts_with(AUTH_SCHEME));

    let parts = parse_authorization(sig.authorization()).unwrap();
    assert_eq!(parts.serial_no, "ABC123");
    assert_eq!(parts.signature, sig.signature());
    let public = key.public_key();
    let now = ts(1_700_000_100);
    assert_eq!(
        verify_request_signature(&Method::POST, url.as_str(), b"{}", &parts, now, &public),
        Ok(())
    );
    // Tampering with any signed part fails.
    let bad = |r| {
        assert_eq!(
            r,
            Err(VerifyError::BadSignature {
                serial: "ABC123".into()
            })
        )
    };
    bad(verify_request_signature(
        &Method::POST,
        url.as_str(),
        b"{ }",
        &parts,
        now,
        &public,
    ));
    bad(verify_request_signature(
        &Method::PUT,
        url.as_str(),
        b"{}",
        &parts,
        now,
        &public,
    ));
    bad(verify_request_signature(
        &Method::POST,
        "/v3/other",
        b"{}",
        &parts,
        now,
        &public,
    ));
    let mut other_nonce = parts.clone();
    other_nonce.nonce_str = "X".repeat(32);
    bad(verify_request_signature(
        &Method::POST,
        url.as_str(),
        b"{}",
        &other_nonce,
        now,
        &public,
    ));
    // A stale timestamp is refused before the signature is even checked.
    assert!(matches!(
        verify_request_signature(
            &Method::POST,
            url.as_str(),
            b"{}",
            &parts,
            ts(1_700_000_301),
            &public
        ),
        Err(VerifyError::OutsideWindow { .. })
    ));
    // Another key does not verify.
    bad(verify_request_signature(
        &Method::POST,
        url.as_str(),
        b"{}",
        &parts,
        now,
        &common::key(KEY_2048).public_key(),
    ));
}

#[test]
fn key_loading_rules() {
    assert!(matches!(
        RsaPrivateKey::from_pem(KEY_1024),
        Err(KeyError::SizeOutOfRange {
            bits: 1024,
            min: 2048,
            max: 4096
        })
    ));
    assert_eq!(
        RsaPrivateKey::from_pem(EC_KEY).unwrap_err(),
        KeyError::NotRsa
    );
    assert!(matches!(
        RsaPrivateKey::from_pem(CERT_2048),
        Err(KeyError::Pem(_))
    ));
    assert!(matches!(
        RsaPrivateKey::from_pem("garbage"),
        Err(KeyError::Pem(_))
    ));
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(matches!(
        RsaPrivateKey::from_pem(encrypted),
        Err(KeyError::Pem(wechatpay_direct::PemError::Encrypted))
    ));
    // A private key whose body is not a key at all.
    let junk = "-----BEGIN PRIVATE KEY-----\nAAECAwQ=\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        RsaPrivateKey::from_pem(junk),
        Err(KeyError::Der(_))
    ));
}

#[test]
fn private_key_debug_and_errors_are_redacted() {
    let key = key(KEY_2048);
    let debug = format!("{key:?}");
    assert!(
        debug.contains("redacted") && debug.contains("2048"),
        "{debug}"
    );
    // No fragment of the PEM body shows up.
    for line in KEY_2048.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!debug.contains(&line[..16]));
    }
    let err = RsaPrivateKey::from_pem(KEY_1024).unwrap_err().to_string();
    for line in KEY_1024.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!err.contains(&line[..16]), "{err}");
    }
}

#[test]
fn public_keys_from_spki_certificate_and_private_key_agree() {
    let from_spki = RsaPublicKey::from_pem(PUB_2048).unwrap();
    let (serial, from_cert) = RsaPublicKey::from_certificate_pem(CERT_2048).unwrap();
    assert_eq!(serial.as_str(), CERT_2048_SERIAL.trim());
    assert_eq!(from_spki, from_cert);
    assert_eq!(from_spki, key(KEY_2048).public_key());
    assert_eq!(from_spki.to_spki_pem(), PUB_2048);

    let (serial, from_cert) = RsaPublicKey::from_certificate_pem(CERT_3072).unwrap();
    assert_eq!(serial.as_str(), CERT_3072_SERIAL.trim());
    assert_eq!(from_cert.bits(), 3072);
    assert_eq!(from_cert, RsaPublicKey::from_pem(PUB_3072).unwrap());

    // OpenSSL's signatures verify.
    let sig = |b64: &str| base64_decode(b64.trim());
    assert!(from_spki.verify(REQUEST_MESSAGE.as_bytes(), &sig(REQUEST_SIG_2048)));
    assert!(from_cert.verify(REQUEST_MESSAGE.as_bytes(), &sig(REQUEST_SIG_3072)));
    assert!(!from_cert.verify(REQUEST_MESSAGE.as_bytes(), &sig(REQUEST_SIG_2048)));
    // Private and certificate PEMs are not public keys.
    assert!(RsaPublicKey::from_pem(KEY_2048).is_err());
    assert!(RsaPublicKey::from_certificate_pem(PUB_2048).is_err());
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
