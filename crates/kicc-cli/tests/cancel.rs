//! `kicc cancel` and `kicc status wechat` against `kicc sandbox serve` children: every exit code
//! a script relies on, checked against the sandbox's own state.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use common::{kicc, run, Served};
use serde_json::json;

#[test]
fn generic_full_then_again_is_declined() {
    let s = Served::quick();
    let pg = s.payment("card", 51_004, "KRW");
    let r = s.kicc(&["cancel", "generic", "--pg-cno", &pg]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(v["result"], "cancelled");
    assert_eq!(v["statusCode"], "TS02");
    assert_eq!(v["pgCno"], pg.as_str());
    assert_eq!(s.state(&pg)["remainingAmount"], 0);

    // Cancelling a cancelled payment: exit 1 with the gateway's code and message on one line.
    let r = s.kicc(&["cancel", "generic", "--pg-cno", &pg]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
    assert!(
        r.stderr.contains("declined") && r.stderr.contains("resCd P002"),
        "{r:#?}"
    );
    assert_eq!(s.state(&pg)["cancels"].as_array().map(Vec::len), Some(1));
}

#[test]
fn partial_then_over_cancel_is_declined() {
    let s = Served::quick();
    let pg = s.payment("card", 30_000, "KRW");
    let r = s.kicc(&[
        "cancel",
        "generic",
        "--pg-cno",
        &pg,
        "--amount",
        "10000",
        "--currency",
        "KRW",
    ]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(v["reviseTypeCode"], "32");
    assert_eq!(v["statusCode"], "TS06");
    assert_eq!(s.state(&pg)["remainingAmount"], 20_000);

    let r = s.kicc(&["cancel", "generic", "--pg-cno", &pg, "--amount", "25000"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("resCd P003"), "{r:#?}");
    assert_eq!(s.state(&pg)["remainingAmount"], 20_000);
}

#[test]
fn alipay_usd_partial_survives_a_retry_code_with_one_cancel() {
    let s = Served::quick();
    let pg = s.payment("alipay", 5_000, "USD");
    s.fault(
        json!({"path": "/api/trades/alipay/revise", "kind": "resCd", "resCd": "A212", "times": 1}),
    );
    let r = s.kicc(&[
        "cancel",
        "alipay",
        "--pg-cno",
        &pg,
        "--amount",
        "12.03",
        "--currency",
        "USD",
        "--reason",
        "customer request",
    ]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(v["amountInfo"]["totAmount"], 1203);
    assert_eq!(v["amountInfo"]["display"], "12.03 USD");
    let state = s.state(&pg);
    assert_eq!(state["remainingAmount"], 3_797);
    let cancels = state["cancels"].as_array().unwrap();
    assert_eq!(cancels.len(), 1);
    // The retry reused the key the command printed.
    assert_eq!(cancels[0]["shopTransactionId"], v["shopTransactionId"]);
}

#[test]
fn a_lost_answer_is_an_unknown_outcome_and_no_server_is_certainly_not_processed() {
    let s = Served::quick();
    let pg = s.payment("alipay", 10_000, "KRW");
    // The sandbox cancels, then drops the connection: the cancel happened, the CLI cannot know.
    s.fault(json!({"path": "/api/trades/alipay/revise", "kind": "drop", "times": 1}));
    let r = s.kicc(&["cancel", "alipay", "--pg-cno", &pg, "--max-attempts", "1"]);
    assert_eq!(r.code, 3, "{r:#?}");
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("outcome unknown"), "{r:#?}");
    // The line ends with the command that resends the identical message.
    let resume = r
        .stderr
        .split("resume this one with: ")
        .nth(1)
        .unwrap_or("");
    assert!(
        resume.starts_with("kicc ")
            && resume.contains(&format!("--pg-cno {pg}"))
            && resume.contains("--shop-transaction-id ")
            && resume.contains("--cancel-req-date "),
        "{r:#?}"
    );
    assert_eq!(s.state(&pg)["statusCode"], "TS02");

    // Nothing listens on this port once the listener is gone: nothing can have been processed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let r = run(kicc().args([
        "cancel",
        "generic",
        "--pg-cno",
        "P1",
        "--max-attempts",
        "1",
        "--base-url",
        &format!("http://{closed}"),
    ]));
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("did not happen"), "{r:#?}");
}

#[test]
fn credentials_come_from_the_environment_and_are_never_printed() {
    let secret = "a-very-private-test-secret";
    let s = Served::start(
        &[],
        &[("KICC_SECRET_KEY", secret), ("KICC_MALL_ID", "T7777777")],
    );
    let pg = s.payment("card", 1_000, "KRW");
    // The sandbox defaults do not match this sandbox: the gateway refuses (exit 1).
    let r = s.kicc(&["cancel", "generic", "--pg-cno", &pg]);
    assert_eq!(r.code, 1, "{r:#?}");
    // With the environment's credentials it works, and the secret appears nowhere.
    let r = run(kicc()
        .args([
            "cancel",
            "generic",
            "--pg-cno",
            &pg,
            "--base-url",
            &s.base_url,
        ])
        .env("KICC_SECRET_KEY", secret)
        .env("KICC_MALL_ID", "T7777777"));
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret));
    let r = run(kicc()
        .args([
            "cancel",
            "generic",
            "--pg-cno",
            &pg,
            "--base-url",
            &s.base_url,
        ])
        .env("KICC_SECRET_KEY", secret)
        .env("KICC_MALL_ID", "T7777777"));
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret));
}

#[test]
fn wechat_accepted_then_final_by_status_and_by_wait() {
    let s = Served::quick();
    let pg = s.payment("wechat", 10_000, "KRW");
    let r = s.kicc(&["cancel", "wechat", "--pg-cno", &pg]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(v["result"], "accepted");
    let cancel = v["cancelPgCno"].as_str().unwrap().to_owned();
    assert!(v["next"].as_str().unwrap().contains(&cancel));

    // Applied after the sandbox's webhook delay: `status wechat` then says TS02 (exit 0).
    // Polled until it is final (the event), with a deadline rather than a count of tries.
    let mut last = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let r = s.kicc(&[
            "status",
            "wechat",
            "--pg-cno",
            &pg,
            "--cancel-pg-cno",
            &cancel,
        ]);
        if r.code == 0 {
            last = Some(r);
            break;
        }
        assert_eq!(r.code, 4, "{r:#?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = last.expect("the cancel became final");
    assert_eq!(r.json()["cancelStatus"], "TS02");

    // An unknown cancellation: the gateway says no (exit 1).
    let r = s.kicc(&[
        "status",
        "wechat",
        "--pg-cno",
        &pg,
        "--cancel-pg-cno",
        "SBC00000000000000000",
    ]);
    assert_eq!(r.code, 1, "{r:#?}");

    // --wait polls until final.
    let pg = s.payment("wechat", 5_000, "KRW");
    let r = s.kicc(&[
        "cancel",
        "wechat",
        "--pg-cno",
        &pg,
        "--amount",
        "2000",
        "--currency",
        "KRW",
        "--wait",
        "10",
    ]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v = r.json();
    assert_eq!(v["result"], "cancelled");
    assert_eq!(v["cancelStatus"], "TS06");
    assert_eq!(s.state(&pg)["remainingAmount"], 3_000);
}

#[test]
fn wechat_not_final_in_time_is_pending() {
    let s = Served::start(&["--webhook-delay-ms", "60000"], &[]);
    let pg = s.payment("wechat", 10_000, "KRW");
    let r = s.kicc(&["cancel", "wechat", "--pg-cno", &pg, "--wait", "1"]);
    assert_eq!(r.code, 4, "{r:#?}");
    let v = r.json();
    assert_eq!(v["result"], "pending");
    let cancel = v["cancelPgCno"].as_str().unwrap().to_owned();
    assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
    assert!(r.stderr.contains(&cancel), "{r:#?}");

    let r = s.kicc(&[
        "status",
        "wechat",
        "--pg-cno",
        &pg,
        "--cancel-pg-cno",
        &cancel,
    ]);
    assert_eq!(r.code, 4, "{r:#?}");
    assert_eq!(r.json()["cancelStatus"], "TS01");
}

#[test]
fn tls_sandbox_with_its_root_certificate() {
    let dir = common::temp_dir("tls");
    let root = dir.join("root.pem");
    let root_arg = root.to_str().unwrap().to_owned();
    let s = Served::start(&["--tls", "--root-cert-out", &root_arg], &[]);
    assert!(
        s.base_url.starts_with("https://127.0.0.1:"),
        "{}",
        s.base_url
    );
    assert_eq!(
        s.root_cert_line.as_deref(),
        Some(format!("root certificate: {root_arg}").as_str())
    );
    assert!(std::fs::read_to_string(&root)
        .unwrap()
        .contains("BEGIN CERTIFICATE"));

    // Without trusting the root, the TLS handshake fails: certainly not processed.
    let r = s.kicc(&[
        "cancel",
        "generic",
        "--pg-cno",
        "SBP00000000000000000",
        "--max-attempts",
        "1",
    ]);
    assert_eq!(r.code, 1, "{r:#?}");
    // Trusting it, the request goes through (and is declined: no such payment).
    let r = s.kicc(&[
        "cancel",
        "generic",
        "--pg-cno",
        "SBP00000000000000000",
        "--root-cert",
        &root_arg,
    ]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("resCd P001"), "{r:#?}");
    let _ = std::fs::remove_dir_all(dir);
}
