//! Signatures and messages made outside the code, with openssl (commands in
//! fixtures/README.md): the crate must reproduce them byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use common::*;
use http::header::{HeaderMap, HeaderValue};
use wechatpay_direct::{
    response_message, sign_response, verify_response, MerchantMode, Nonce, OrderRef, QueryRequest,
    RsaPrivateKey, SerialNo, Timestamp, VerificationKeys,
};

const NONCE: &str = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn serial() -> SerialNo {
    SerialNo::new(CERT_2048_SERIAL.trim()).unwrap()
}

fn sign_query(order: OrderRef, mode: MerchantMode) -> wechatpay_direct::SignedRequest {
    QueryRequest::new(order, mode)
        .sign(
            &serial(),
            &RsaPrivateKey::from_pem(KEY_2048).unwrap(),
            Timestamp::from_unix_secs(1_700_000_000).unwrap(),
            &Nonce::new(NONCE).unwrap(),
        )
        .unwrap()
}

fn authorization(signed: &wechatpay_direct::SignedRequest) -> String {
    signed.headers()["authorization"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn query_with_a_query_string_matches_openssl() {
    let signed = sign_query(
        OrderRef::out_trade_no("ORDER-20240101-0001").unwrap(),
        MerchantMode::common("1900000109").unwrap(),
    );
    assert_eq!(signed.signed_message(), fixture("query-common-message.txt"));
    assert_eq!(
        authorization(&signed),
        fixture("query-common-authorization.txt")
    );
    assert!(authorization(&signed).ends_with(&format!(
        "signature=\"{}\"",
        fixture("query-common-message.sig-2048.b64")
    )));
}

#[test]
fn a_percent_encoded_id_matches_openssl() {
    let signed = sign_query(
        OrderRef::out_trade_no("订单 1/2").unwrap(),
        MerchantMode::common("1900000109").unwrap(),
    );
    assert_eq!(
        signed.signed_message(),
        fixture("query-encoded-message.txt")
    );
    assert!(authorization(&signed).contains(&format!(
        "signature=\"{}\"",
        fixture("query-encoded-message.sig-2048.b64")
    )));
    assert_eq!(
        signed.path().as_str(),
        "/v3/global/transactions/out-trade-no/%E8%AE%A2%E5%8D%95%201%2F2?mchid=1900000109"
    );
}

#[test]
fn institutional_mode_matches_openssl() {
    let signed = sign_query(
        OrderRef::transaction_id("4200000001202401010000000001").unwrap(),
        MerchantMode::institutional("1900000109", "1900000100").unwrap(),
    );
    assert_eq!(
        signed.signed_message(),
        fixture("query-institutional-message.txt")
    );
    assert_eq!(
        authorization(&signed),
        fixture("query-institutional-authorization.txt")
    );
}

#[test]
fn a_response_with_a_body_verifies_and_signs_like_openssl() {
    let body = fixture("response-body.json");
    let message = fixture("response-body-message.txt");
    let signature = fixture("response-body-message.sig-3072.b64");
    let nonce = "593BEC0C930BF1AFEB40B4A08C8FB242";
    assert_eq!(
        response_message("1700000000", nonce, body.as_bytes()),
        message.as_bytes()
    );
    let mut keys = VerificationKeys::new();
    let cert_serial = keys.add_certificate_pem(CERT_3072).unwrap();
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("wechatpay-timestamp", "1700000000"),
        ("wechatpay-nonce", nonce),
        ("wechatpay-signature", signature.as_str()),
        ("wechatpay-serial", cert_serial.as_str()),
    ] {
        headers.insert(k, HeaderValue::from_str(v).unwrap());
    }
    let now = Timestamp::from_unix_secs(1_700_000_100).unwrap();
    let v = verify_response(&headers, body.as_bytes(), now, &keys).unwrap();
    assert_eq!(v.serial, cert_serial.as_str());
    // One byte changed in the body: refused.
    let tampered = body.replace("REVOKED", "SUCCESS");
    assert!(verify_response(&headers, tampered.as_bytes(), now, &keys).is_err());
    // PKCS#1 v1.5 is deterministic: signing gives openssl's bytes.
    let ours = sign_response(
        body.as_bytes(),
        Timestamp::from_unix_secs(1_700_000_000).unwrap(),
        &Nonce::new(nonce).unwrap(),
        &cert_serial,
        &RsaPrivateKey::from_pem(KEY_3072).unwrap(),
    )
    .unwrap();
    assert_eq!(ours.signature, signature);
}
