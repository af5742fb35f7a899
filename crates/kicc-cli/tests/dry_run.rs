//! `--dry-run`: one JSON object with exactly method/url/headers/body (WeChat Pay direct adds
//! signed_message), the body being the exact text the SDK would send; nothing is sent.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use common::{fixture, kicc, kicc_run, run};
use kicc_core::{PgCno, SecretKey, ShopTransactionId};
use serde_json::Value;
use wechatpay_direct::{parse_authorization, RsaPrivateKey};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn generic_dry_run_is_the_exact_signed_request() {
    let r = run(kicc()
        .args([
            "cancel",
            "generic",
            "--pg-cno",
            "PG20261121000001",
            "--shop-transaction-id",
            "K01JD0000000000000000000001",
            "--reason",
            "고객 요청",
            "--dry-run",
        ])
        .env("KICC_MALL_ID", "T0000001")
        .env("KICC_SECRET_KEY", "sandbox-secret-key"));
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stderr, "");
    let v = r.json();
    assert_eq!(keys(&v), ["body", "headers", "method", "url"]);
    assert_eq!(v["method"], "POST");
    // The default environment is the local sandbox, never production.
    assert_eq!(v["url"], "http://127.0.0.1:8780/api/trades/revise");
    assert_eq!(
        v["headers"]["content-type"],
        "application/json; charset=utf-8"
    );
    let body = v["body"].as_str().expect("body is a string");
    let b: Value = serde_json::from_str(body).expect("body is JSON text");
    assert_eq!(b["mallId"], "T0000001");
    assert_eq!(b["pgCno"], "PG20261121000001");
    assert_eq!(b["shopTransactionId"], "K01JD0000000000000000000001");
    assert_eq!(b["reviseTypeCode"], "40");
    assert_eq!(b["reviseMessage"], "고객 요청");
    assert_eq!(b["cancelReqDate"].as_str().map(str::len), Some(8));
    // msgAuthValue is HMAC-SHA256 of the very pgCno and key in the body, with the env's secret.
    let expected = SecretKey::new("sandbox-secret-key")
        .unwrap()
        .msg_auth_value(
            &PgCno::new("PG20261121000001").unwrap(),
            &ShopTransactionId::new("K01JD0000000000000000000001").unwrap(),
        );
    assert_eq!(b["msgAuthValue"], expected.as_str());
    // The body is the exact text: field order as the SDK serializes it, no reformatting.
    assert!(body.starts_with(r#"{"mallId":"T0000001","shopTransactionId":"K01JD0000000000000000000001","pgCno":"PG20261121000001","reviseTypeCode":"40","cancelReqDate":""#), "{body}");
    assert!(!r.stdout.contains("sandbox-secret-key"));
}

#[test]
fn alipay_usd_amount_is_sent_in_cents() {
    let r = kicc_run(&[
        "cancel",
        "alipay",
        "--pg-cno",
        "P1",
        "--amount",
        "12.03",
        "--currency",
        "USD",
        "--dry-run",
    ]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(keys(&v), ["body", "headers", "method", "url"]);
    assert_eq!(v["url"], "http://127.0.0.1:8780/api/trades/alipay/revise");
    let b: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(b["reviseTypeCode"], "32");
    assert_eq!(
        b["amountInfo"],
        serde_json::json!({"currency": "USD", "totAmount": 1203})
    );
}

#[test]
fn wechat_and_status_dry_runs() {
    let r = kicc_run(&[
        "cancel",
        "wechat",
        "--pg-cno",
        "P1",
        "--notify-url",
        "https://shop.example/kicc/wechat",
        "--dry-run",
    ]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(
        v["url"],
        "http://127.0.0.1:8780/api/trades/wechatpay/revise"
    );
    let b: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(b["notifyUrl"], "https://shop.example/kicc/wechat");

    let r = kicc_run(&[
        "status",
        "wechat",
        "--pg-cno",
        "P1",
        "--cancel-pg-cno",
        "C1",
        "--shop-transaction-id",
        "Q1",
        "--dry-run",
    ]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(keys(&v), ["body", "headers", "method", "url"]);
    assert_eq!(v["url"], "http://127.0.0.1:8780/api/trades/wechatpay/find");
    assert_eq!(
        v["body"],
        r#"{"mallId":"T0000001","shopTransactionId":"Q1","pgCno":"P1","cancelPgCno":"C1"}"#
    );
}

#[test]
fn production_is_named_explicitly_and_needs_credentials() {
    let r = kicc_run(&[
        "cancel",
        "generic",
        "--pg-cno",
        "P1",
        "--env",
        "production",
        "--dry-run",
    ]);
    r.assert_invalid(&["KICC_MALL_ID", "production"]);
    let r = run(kicc()
        .args([
            "--env",
            "production",
            "cancel",
            "generic",
            "--pg-cno",
            "P1",
            "--dry-run",
        ])
        .env("KICC_MALL_ID", "M0000001"));
    r.assert_invalid(&["KICC_SECRET_KEY"]);
    let r = run(kicc()
        .args([
            "cancel",
            "generic",
            "--pg-cno",
            "P1",
            "--env",
            "production",
            "--dry-run",
        ])
        .env("KICC_MALL_ID", "M0000001")
        .env("KICC_SECRET_KEY", "prod-secret-value"));
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        r.json()["url"],
        "https://pgapi.easypay.co.kr/api/trades/revise"
    );
    assert!(!r.stdout.contains("prod-secret-value"));
    let r = run(kicc()
        .args([
            "cancel",
            "generic",
            "--pg-cno",
            "P1",
            "--env",
            "test",
            "--dry-run",
        ])
        .env("KICC_MALL_ID", "T5102001"));
    r.assert_invalid(&["KICC_SECRET_KEY", "test"]);
}

const TEST_SERIAL: &str = "5B2FA0C1D2E3F40516273849ABCDEF0123456789";
const TEST_NONCE: &str = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";

fn reverse_args<'a>(key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "wechatpay",
        "reverse",
        "--out-trade-no",
        "ORDER-20240101-0001",
        "--mchid",
        "1900000109",
        "--serial-no",
        TEST_SERIAL,
        "--private-key",
        key,
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn wechatpay_reverse_dry_run_reproduces_a_signature() {
    let key = fixture("test-merchant-key.pem");
    let key = key.to_str().unwrap();
    let args = reverse_args(
        key,
        &[
            "--timestamp",
            "1700000000",
            "--nonce",
            TEST_NONCE,
            "--env",
            "production",
            "--dry-run",
        ],
    );
    let r = kicc_run(&args);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(
        keys(&v),
        ["body", "headers", "method", "signed_message", "url"]
    );
    assert_eq!(v["method"], "POST");
    assert_eq!(
        v["url"],
        "https://apihk.mch.weixin.qq.com/v3/global/micropay/transactions/out-trade-no/ORDER-20240101-0001/reverse"
    );
    assert_eq!(v["body"], r#"{"mchid":"1900000109"}"#);
    let signed = v["signed_message"].as_str().unwrap();
    assert_eq!(
        signed,
        "POST\n/v3/global/micropay/transactions/out-trade-no/ORDER-20240101-0001/reverse\n\
         1700000000\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\n{\"mchid\":\"1900000109\"}\n"
    );
    // The Authorization header carries a signature of exactly signed_message by our key.
    let auth = parse_authorization(v["headers"]["authorization"].as_str().unwrap())
        .expect("a well-formed Authorization header");
    assert_eq!(auth.mchid, "1900000109");
    assert_eq!(auth.serial_no, TEST_SERIAL);
    let pem = std::fs::read_to_string(fixture("test-merchant-key.pem")).unwrap();
    let public = RsaPrivateKey::from_pem(&pem).unwrap().public_key();
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&auth.signature)
        .unwrap();
    assert!(public.verify(signed.as_bytes(), &sig));
    assert!(!r.stdout.contains("PRIVATE KEY"));

    // Same inputs, same bytes: the signature is reproducible.
    let again = kicc_run(&args);
    assert_eq!(again.stdout, r.stdout);

    // Without --timestamp / --nonce, the current time and a random nonce are used.
    let r = kicc_run(&reverse_args(key, &["--dry-run"]));
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert!(v["url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:8780/v3/"));
    assert!(!v["signed_message"].as_str().unwrap().contains(TEST_NONCE));
}

#[test]
fn wechatpay_reverse_refusals() {
    let key = fixture("test-merchant-key.pem");
    let key = key.to_str().unwrap();
    // The signature inputs can only be fixed for a dry run.
    kicc_run(&reverse_args(key, &["--timestamp", "1700000000"]))
        .assert_invalid(&["timestamp", "--dry-run"]);
    kicc_run(&reverse_args(key, &["--nonce", TEST_NONCE])).assert_invalid(&["nonce", "--dry-run"]);
    // Bad inputs name the field and the rule.
    kicc_run(&reverse_args(key, &["--nonce", "short", "--dry-run"]))
        .assert_invalid(&["nonce_str", "32"]);
    kicc_run(&reverse_args(
        key,
        &["--timestamp", "1700000000000", "--dry-run"],
    ))
    .assert_invalid(&["timestamp", "milliseconds"]);
    kicc_run(&reverse_args("/nonexistent/key.pem", &["--dry-run"]))
        .assert_invalid(&["private-key", "/nonexistent/key.pem"]);
    kicc_run(&reverse_args(key, &["--env", "test", "--dry-run"])).assert_invalid(&["env", "test"]);
    // A real send must be able to verify the answer: without --platform-cert it downloads the
    // certificates, which needs the API v3 key (only the sandbox has a default).
    kicc_run(&reverse_args(key, &["--env", "production"]))
        .assert_invalid(&["WECHATPAY_APIV3_KEY", "--platform-cert"]);
    // Exactly one order reference.
    let r = kicc_run(&[
        "wechatpay",
        "reverse",
        "--mchid",
        "1",
        "--serial-no",
        "S",
        "--private-key",
        key,
        "--dry-run",
    ]);
    r.assert_invalid(&["--out-trade-no"]);
    // Timing rules, when the payment time is given: not within 15 s of it.
    kicc_run(&reverse_args(
        key,
        &[
            "--timestamp",
            "1700000000",
            "--nonce",
            TEST_NONCE,
            "--paid-at",
            "1699999990",
            "--dry-run",
        ],
    ))
    .assert_invalid(&["paid_at", "15"]);
}
