//! `kicc wechatpay reverse`, really sent to `kicc sandbox serve`'s WeChat Pay Global revoke
//! endpoint, signed with the sandbox's published merchant key and verified with its platform
//! certificate (both sandbox-only, from `kicc_sandbox`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::path::PathBuf;

use common::{http, Served};
use serde_json::{json, Value};

/// The sandbox's key files, written where the CLI can read them.
struct Keys {
    dir: PathBuf,
    merchant_key: String,
    platform_cert: String,
    platform_public_key: String,
}

impl Keys {
    fn write(tag: &str) -> Keys {
        let dir = common::temp_dir(tag);
        let put = |name: &str, pem: &str| {
            let p = dir.join(name);
            std::fs::write(&p, pem).unwrap();
            p.to_str().unwrap().to_owned()
        };
        Keys {
            merchant_key: put(
                "merchant-key.pem",
                kicc_sandbox::SANDBOX_MERCHANT_PRIVATE_KEY_PEM,
            ),
            platform_cert: put(
                "platform-cert.pem",
                kicc_sandbox::SANDBOX_PLATFORM_CERTIFICATE_PEM,
            ),
            platform_public_key: put(
                "platform-public-key.pem",
                kicc_sandbox::SANDBOX_PLATFORM_PUBLIC_KEY_PEM,
            ),
            dir,
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates a WeChat Pay Global order paid `ago` seconds ago; returns the admin API's answer.
fn order(s: &Served, ago: u64) -> Value {
    let (status, v) = http(
        &s.base_url,
        "POST",
        "/sandbox/payments",
        Some(
            &json!({"channel": "wechatpay", "amount": 1_000, "currency": "USD", "paidSecondsAgo": ago}),
        ),
    );
    assert_eq!(status, 200, "{v}");
    v
}

fn reverse(s: &Served, by: &[&str], verify: &[&str], keys: &Keys, extra: &[&str]) -> common::Run {
    let mut args = vec!["wechatpay", "reverse"];
    args.extend_from_slice(by);
    args.extend_from_slice(&[
        "--mchid",
        kicc_sandbox::DEFAULT_WECHATPAY_MCHID,
        "--serial-no",
        kicc_sandbox::SANDBOX_MERCHANT_SERIAL_NO,
        "--private-key",
        &keys.merchant_key,
    ]);
    args.extend_from_slice(verify);
    args.extend_from_slice(extra);
    s.kicc(&args)
}

#[test]
fn revoked_with_a_verified_answer_then_again_idempotently() {
    let s = Served::quick();
    let keys = Keys::write("reverse-ok");
    let o = order(&s, 60);
    let no = o["outTradeNo"].as_str().unwrap().to_owned();
    let verify = ["--platform-cert", keys.platform_cert.as_str()];
    let r = reverse(
        &s,
        &["--out-trade-no", &no],
        &verify,
        &keys,
        &["--paid-at", &o["paidAt"].to_string()],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(v["result"], "revoked");
    assert_eq!(v["order"]["out_trade_no"], no.as_str());
    assert_eq!(
        v["verifiedBy"],
        kicc_sandbox::SANDBOX_PLATFORM_CERTIFICATE_SERIAL
    );
    let state = s.state(o["pgCno"].as_str().unwrap());
    assert_eq!(state["tradeState"], "REVOKED");
    assert!(!r.stdout.contains("PRIVATE KEY") && !r.stderr.contains("PRIVATE KEY"));

    // By transaction_id, the same (already revoked) order: WeChat Pay answers 204 again.
    let id = o["transactionId"].as_str().unwrap();
    let r = reverse(&s, &["--transaction-id", id], &verify, &keys, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
}

#[test]
fn refusals_and_unknown_outcomes() {
    let s = Served::quick();
    let keys = Keys::write("reverse-errors");
    let verify = ["--platform-cert", keys.platform_cert.as_str()];

    // Paid 8 days ago: WeChat Pay refuses (REVERSE_EXPIRE), certainly not revoked: exit 1.
    let old = order(&s, 8 * 86_400);
    let r = reverse(
        &s,
        &["--out-trade-no", old["outTradeNo"].as_str().unwrap()],
        &verify,
        &keys,
        &[],
    );
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
    assert!(
        r.stderr.contains("REVERSE_EXPIRE") && r.stderr.contains("not revoked"),
        "{r:#?}"
    );

    // The same 8-day-old order is refused before sending when the payment time is given.
    let r = reverse(
        &s,
        &["--out-trade-no", old["outTradeNo"].as_str().unwrap()],
        &verify,
        &keys,
        &["--paid-at", &old["paidAt"].to_string()],
    );
    r.assert_invalid(&["paid_at", "7 days"]);

    // A 204 whose signature does not verify is not a success: with --no-query, outcome
    // unknown, exit 3.
    let o = order(&s, 60);
    let no = o["outTradeNo"].as_str().unwrap();
    s.fault(json!({"path": kicc_sandbox::WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH, "kind": "badSignature"}));
    let r = reverse(&s, &["--out-trade-no", no], &verify, &keys, &["--no-query"]);
    assert_eq!(r.code, 3, "{r:#?}");
    assert!(r.stderr.contains("query the order"), "{r:#?}");
    assert_eq!(r.json()["result"], "maybe revoked");
    // By default the order is queried: the (verified) query says REVOKED, exit 0.
    let o = order(&s, 60);
    let no = o["outTradeNo"].as_str().unwrap();
    s.fault(json!({"path": kicc_sandbox::WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH, "kind": "badSignature"}));
    let r = reverse(&s, &["--out-trade-no", no], &verify, &keys, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(v["result"], "revoked");
    assert_eq!(v["confirmedBy"], "order query");
    assert_eq!(v["trade_state"], "REVOKED");

    // Only a key the answer is not signed with (public-key ID vs. certificate serial): the
    // query cannot be verified either, so the outcome is unknown, exit 3.
    let o = order(&s, 60);
    let r = reverse(
        &s,
        &["--out-trade-no", o["outTradeNo"].as_str().unwrap()],
        &[
            "--wechatpay-public-key",
            keys.platform_public_key.as_str(),
            "--wechatpay-public-key-id",
            kicc_sandbox::SANDBOX_PLATFORM_PUBLIC_KEY_ID,
        ],
        &keys,
        &[],
    );
    assert_eq!(r.code, 3, "{r:#?}");

    // A lost answer after the order was revoked: with --no-query, outcome unknown, exit 3 ...
    let o = order(&s, 60);
    s.fault(json!({"path": kicc_sandbox::WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH, "kind": "drop"}));
    let r = reverse(
        &s,
        &["--out-trade-no", o["outTradeNo"].as_str().unwrap()],
        &verify,
        &keys,
        &["--max-attempts", "1", "--no-query"],
    );
    assert_eq!(r.code, 3, "{r:#?}");
    assert_eq!(
        s.state(o["pgCno"].as_str().unwrap())["tradeState"],
        "REVOKED"
    );
    // ... and by default the query settles it: revoked, exit 0.
    let o = order(&s, 60);
    s.fault(json!({"path": kicc_sandbox::WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH, "kind": "drop"}));
    let r = reverse(
        &s,
        &["--out-trade-no", o["outTradeNo"].as_str().unwrap()],
        &verify,
        &keys,
        &["--max-attempts", "1"],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.json()["confirmedBy"], "order query");
    assert_eq!(
        s.state(o["pgCno"].as_str().unwrap())["tradeState"],
        "REVOKED"
    );

    // A merchant key the sandbox does not know: SIGN_ERROR, certainly not revoked.
    let o = order(&s, 60);
    let other_key = common::fixture("test-merchant-key.pem");
    let mut args = vec![
        "wechatpay",
        "reverse",
        "--out-trade-no",
        o["outTradeNo"].as_str().unwrap(),
        "--mchid",
        kicc_sandbox::DEFAULT_WECHATPAY_MCHID,
        "--serial-no",
        kicc_sandbox::SANDBOX_MERCHANT_SERIAL_NO,
        "--private-key",
        other_key.to_str().unwrap(),
    ];
    args.extend_from_slice(&verify);
    let r = s.kicc(&args);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("SIGN_ERROR"), "{r:#?}");
    assert_eq!(
        s.state(o["pgCno"].as_str().unwrap())["tradeState"],
        "SUCCESS"
    );
}
