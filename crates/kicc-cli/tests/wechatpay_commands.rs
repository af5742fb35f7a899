//! `kicc wechatpay query`, `kicc wechatpay certificates`, and `reverse` downloading the
//! platform certificates itself and settling open outcomes by a query, against
//! `kicc sandbox serve` (sandbox-only keys from `kicc_sandbox`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::path::PathBuf;

use common::{http, run, Served};
use serde_json::{json, Value};

struct Files {
    dir: PathBuf,
    merchant_key: String,
    platform_cert: String,
}

impl Files {
    fn write(tag: &str) -> Files {
        let dir = common::temp_dir(tag);
        let put = |name: &str, pem: &str| {
            let p = dir.join(name);
            std::fs::write(&p, pem).unwrap();
            p.to_str().unwrap().to_owned()
        };
        Files {
            merchant_key: put(
                "merchant-key.pem",
                kicc_sandbox::SANDBOX_MERCHANT_PRIVATE_KEY_PEM,
            ),
            platform_cert: put(
                "platform-cert.pem",
                kicc_sandbox::SANDBOX_PLATFORM_CERTIFICATE_PEM,
            ),
            dir,
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn order(s: &Served) -> Value {
    let (status, v) = http(
        &s.base_url,
        "POST",
        "/sandbox/payments",
        Some(
            &json!({"channel": "wechatpay", "amount": 700, "currency": "USD", "paidSecondsAgo": 60}),
        ),
    );
    assert_eq!(status, 200, "{v}");
    v
}

/// `kicc wechatpay SUB ... --mchid --serial-no --private-key EXTRA --base-url` with `env`.
fn wx(s: &Served, sub: &str, f: &Files, extra: &[&str], env: &[(&str, &str)]) -> common::Run {
    let mut cmd = common::kicc();
    cmd.args(["wechatpay", sub])
        .args(extra)
        .args([
            "--mchid",
            kicc_sandbox::DEFAULT_WECHATPAY_MCHID,
            "--serial-no",
            kicc_sandbox::SANDBOX_MERCHANT_SERIAL_NO,
            "--private-key",
            &f.merchant_key,
            "--base-url",
            &s.base_url,
        ])
        .envs(env.iter().copied());
    run(&mut cmd)
}

#[test]
fn query_prints_the_verified_order_with_wechat_pays_field_names() {
    let s = Served::quick();
    let f = Files::write("wx-query");
    let o = order(&s);
    let no = o["outTradeNo"].as_str().unwrap();
    // Downloading the certificates (sandbox-only API v3 key under --env sandbox).
    let r = wx(&s, "query", &f, &["--out-trade-no", no], &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(v["trade_state"], "SUCCESS");
    assert_eq!(v["out_trade_no"], no);
    assert_eq!(v["transaction_id"], o["transactionId"]);
    assert_eq!(v["amount"]["total"], 700);
    // With a given certificate, by transaction id.
    let id = o["transactionId"].as_str().unwrap();
    let r = wx(
        &s,
        "query",
        &f,
        &["--transaction-id", id, "--platform-cert", &f.platform_cert],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    // No such order: exit 1.
    let r = wx(&s, "query", &f, &["--out-trade-no", "NO-SUCH-ORDER"], &[]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("ORDER_NOT_EXIST"), "{r:#?}");
    assert_eq!(r.stdout, "");
    // A wrong API v3 key: the certificates cannot be decrypted, exit 3.
    let r = wx(
        &s,
        "query",
        &f,
        &["--out-trade-no", no],
        &[("WECHATPAY_APIV3_KEY", "0123456789abcdef0123456789abcdef")],
    );
    assert_eq!(r.code, 3, "{r:#?}");
    assert!(r.stderr.contains("wrong API v3 key"), "{r:#?}");
    // --dry-run downloads nothing and needs no key, even a broken one.
    let before = s_requests(&s);
    let r = wx(
        &s,
        "query",
        &f,
        &["--out-trade-no", no, "--dry-run"],
        &[("WECHATPAY_APIV3_KEY", "short")],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(v["method"], "GET");
    assert!(
        v["url"].as_str().unwrap().ends_with("?mchid=1900000109"),
        "{v}"
    );
    assert!(v["signed_message"]
        .as_str()
        .unwrap()
        .starts_with("GET\n/v3/global/transactions/out-trade-no/"));
    assert_eq!(s_requests(&s), before, "nothing was sent");
    // Both ids: invalid input.
    let r = wx(
        &s,
        "query",
        &f,
        &["--out-trade-no", no, "--transaction-id", id],
        &[],
    );
    assert_eq!(r.code, 2, "{r:#?}");
}

fn s_requests(s: &Served) -> usize {
    let (_, v) = http(&s.base_url, "GET", "/sandbox/wechatpay/requests", None);
    v["requests"].as_array().unwrap().len()
}

#[test]
fn certificates_are_written_one_pem_per_certificate() {
    let s = Served::quick();
    let f = Files::write("wx-certs");
    let out = f.dir.join("certs");
    let r = wx(
        &s,
        "certificates",
        &f,
        &["--out", out.to_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{r:#?}");
    let line = &lines[0];
    assert_eq!(
        line["serial_no"],
        kicc_sandbox::SANDBOX_PLATFORM_CERTIFICATE_SERIAL
    );
    assert!(line["effective_time"].as_str().unwrap().ends_with("+08:00"));
    assert!(line["expire_time"].as_str().is_some());
    let file = line["file"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(file).unwrap().trim(),
        kicc_sandbox::SANDBOX_PLATFORM_CERTIFICATE_PEM.trim()
    );
    // After a rotation both are listed.
    let (status, rotated) = http(
        &s.base_url,
        "POST",
        "/sandbox/wechatpay/rotate",
        Some(&json!({})),
    );
    assert_eq!(status, 200, "{rotated}");
    let r = wx(
        &s,
        "certificates",
        &f,
        &["--out", out.to_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout.lines().count(), 2, "{r:#?}");
    assert!(r.stdout.contains(rotated["serialNo"].as_str().unwrap()));
    // A wrong key: exit 3, nothing printed.
    let r = wx(
        &s,
        "certificates",
        &f,
        &["--out", out.to_str().unwrap()],
        &[("WECHATPAY_APIV3_KEY", "0123456789abcdef0123456789abcdef")],
    );
    assert_eq!(r.code, 3, "{r:#?}");
    assert_eq!(r.stdout, "");
    // A key of the wrong length: invalid input.
    let r = wx(
        &s,
        "certificates",
        &f,
        &["--out", out.to_str().unwrap()],
        &[("WECHATPAY_APIV3_KEY", "short")],
    );
    r.assert_invalid(&["WECHATPAY_APIV3_KEY", "32 bytes"]);
    // DIR cannot be made (a file is in the way): local failure, exit 5.
    let r = wx(&s, "certificates", &f, &["--out", &f.merchant_key], &[]);
    assert_eq!(r.code, 5, "{r:#?}");
    // Production without the key: invalid input, nothing sent.
    let mut cmd = common::kicc();
    cmd.args([
        "--env",
        "production",
        "wechatpay",
        "certificates",
        "--mchid",
        "1900000109",
        "--serial-no",
        "AB",
        "--private-key",
        &f.merchant_key,
        "--out",
        out.to_str().unwrap(),
    ]);
    run(&mut cmd).assert_invalid(&["WECHATPAY_APIV3_KEY"]);
}

#[test]
fn the_sandbox_takes_its_api_v3_key_from_the_environment() {
    let key = "abcdefghijklmnopqrstuvwxyz012345";
    let s = Served::start(&[], &[("WECHATPAY_APIV3_KEY", key)]);
    let f = Files::write("wx-envkey");
    let out = f.dir.join("certs");
    let r = wx(
        &s,
        "certificates",
        &f,
        &["--out", out.to_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 3, "the sandbox default no longer decrypts: {r:#?}");
    let r = wx(
        &s,
        "certificates",
        &f,
        &["--out", out.to_str().unwrap()],
        &[("WECHATPAY_APIV3_KEY", key)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
}

#[test]
fn reverse_downloads_certificates_and_settles_by_query() {
    let s = Served::quick();
    let f = Files::write("wx-reverse");
    // No --platform-cert: downloaded first.
    let o = order(&s);
    let r = wx(
        &s,
        "reverse",
        &f,
        &["--out-trade-no", o["outTradeNo"].as_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.json()["result"], "revoked");

    // A wrong API v3 key: nothing is sent, certainly not revoked.
    let o = order(&s);
    let r = wx(
        &s,
        "reverse",
        &f,
        &["--out-trade-no", o["outTradeNo"].as_str().unwrap()],
        &[("WECHATPAY_APIV3_KEY", "0123456789abcdef0123456789abcdef")],
    );
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("nothing was sent"), "{r:#?}");
    assert_eq!(
        s.state(o["pgCno"].as_str().unwrap())["tradeState"],
        "SUCCESS"
    );

    // SYSTEM_ERROR after the order was revoked: the query finds it REVOKED, exit 0.
    let o = order(&s);
    s.fault(json!({"path": kicc_sandbox::WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH, "kind": "code", "code": "SYSTEM_ERROR", "apply": true}));
    let r = wx(
        &s,
        "reverse",
        &f,
        &["--out-trade-no", o["outTradeNo"].as_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.json()["confirmedBy"], "order query");

    // SYSTEM_ERROR before anything happened: the query finds SUCCESS, revoked again, exit 0.
    let o = order(&s);
    s.fault(json!({"path": kicc_sandbox::WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH, "kind": "code", "code": "SYSTEM_ERROR", "apply": false}));
    let r = wx(
        &s,
        "reverse",
        &f,
        &["--out-trade-no", o["outTradeNo"].as_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.json()["result"], "revoked");
    assert_eq!(
        s.state(o["pgCno"].as_str().unwrap())["tradeState"],
        "REVOKED"
    );

    // The table, through the sandbox's trade-state hook: the query decides.
    for (state, code, result) in [
        ("CLOSED", 0, "closed"),
        ("REFUND", 1, "not revocable"),
        ("PAYERROR", 3, "unknown"),
    ] {
        let o = order(&s);
        let no = o["outTradeNo"].as_str().unwrap();
        let (status, v) = http(
            &s.base_url,
            "POST",
            "/sandbox/wechatpay/trade-state",
            Some(&json!({"outTradeNo": no, "tradeState": state})),
        );
        assert_eq!(status, 200, "{v}");
        s.fault(json!({"path": kicc_sandbox::WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH, "kind": "code", "code": "SYSTEM_ERROR", "apply": false}));
        let r = wx(&s, "reverse", &f, &["--out-trade-no", no], &[]);
        assert_eq!(r.code, code, "{state}: {r:#?}");
        let v = r.json();
        assert_eq!(v["result"], result, "{state}");
        assert_eq!(v["trade_state"], state);
        assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
    }

    // --dry-run with a broken key: needs none, downloads nothing.
    let r = wx(
        &s,
        "reverse",
        &f,
        &["--out-trade-no", "X-1", "--dry-run"],
        &[("WECHATPAY_APIV3_KEY", "short")],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.json()["method"], "POST");
}
