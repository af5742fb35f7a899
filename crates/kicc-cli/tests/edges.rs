//! Issue 9's reproductions, through the real `kicc` binary against `kicc sandbox serve`:
//! no false success, no false "not processed", a status query failure never a cancel
//! outcome, and a safe way to finish an unknown outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use common::{kicc_run, Run, Served};
use serde_json::{json, Value};

/// A sandbox whose stalled requests answer after 2 s (well after the client's 1 s attempt
/// timeout, even on a loaded machine) and are processed within 2.2 s, with short webhook
/// delays.
fn served(extra: &[&str]) -> Served {
    let mut args = vec![
        "--webhook-delay-ms",
        "100",
        "--webhook-retry-interval-ms",
        "100",
        "--timeout-fault-delay-ms",
        "2000",
        "--processing-bound-ms",
        "2200",
    ];
    args.extend_from_slice(extra);
    Served::start(&args, &[])
}

/// `kicc cancel ...` with a short attempt timeout and the sandbox's processing bound.
fn cancel(s: &Served, args: &[&str]) -> Run {
    let mut all = vec!["cancel"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--timeout", "1", "--processing-bound", "2.3"]);
    s.kicc(&all)
}

fn cancels(s: &Served, pg: &str) -> Vec<Value> {
    s.state(pg)["cancels"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The resume command at the end of an exit-3 error line, as arguments.
fn resume_args(r: &Run) -> Vec<String> {
    let line = r.stderr.trim_end();
    let command = line
        .split("resume this one with: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no resume command: {r:#?}"));
    // The test's arguments need no shell quoting.
    assert!(!command.contains('\''), "{command}");
    command.split(' ').skip(1).map(str::to_owned).collect()
}

#[test]
fn a_second_equal_partial_refund_after_an_unprocessed_500_is_made_not_reported_from_the_first() {
    let s = served(&[]);
    let pg = s.payment("card", 50_000, "KRW");
    let first = cancel(&s, &["generic", "--pg-cno", &pg, "--amount", "1000"]);
    assert_eq!(first.code, 0, "{first:#?}");
    let a = first.json()["cancelPgCno"].clone();
    s.fault(json!({"path": "/api/trades/revise", "kind": "http500", "apply": false}));
    let second = cancel(&s, &["generic", "--pg-cno", &pg, "--amount", "1000"]);
    assert_eq!(second.code, 0, "{second:#?}");
    // Its own, new cancel: the refund it reports is not A, and the sandbox shows two.
    assert_ne!(second.json()["cancelPgCno"], a);
    assert_eq!(cancels(&s, &pg).len(), 2);
    assert_eq!(s.state(&pg)["remainingAmount"], 48_000);
}

#[test]
fn a_full_cancel_of_a_cancelled_payment_is_never_a_success() {
    let s = served(&[]);
    let pg = s.payment("card", 5_000, "KRW");
    assert_eq!(cancel(&s, &["generic", "--pg-cno", &pg]).code, 0);
    s.fault(json!({"path": "/api/trades/revise", "kind": "http500", "apply": false}));
    let again = cancel(&s, &["generic", "--pg-cno", &pg]);
    assert_eq!(again.code, 1, "{again:#?}");
    assert_eq!(again.stdout, "");
    assert_eq!(cancels(&s, &pg).len(), 1);
}

#[test]
fn a_refund_query_answered_with_an_earlier_refund_is_already_cancelled_not_by_this_command() {
    // The worst-case matching rule (the sandbox's default): a refund query matches any earlier
    // refund of the same payment and amount.
    let s = served(&[]);
    let pg = s.payment("card", 50_000, "KRW");
    // Refund A was made ten minutes ago (by the sandbox's clock, which this first command is
    // told to allow for), well beyond the default clock skew of the later command.
    s.set_clock(-600);
    let first = cancel(
        &s,
        &[
            "generic",
            "--pg-cno",
            &pg,
            "--amount",
            "1000",
            "--clock-skew",
            "900",
        ],
    );
    assert_eq!(first.code, 0, "{first:#?}");
    let a = first.json()["cancelPgCno"].as_str().unwrap().to_owned();
    s.set_clock(0);
    // A key of this command that never reached the gateway, resumed with a refund query.
    let today = s.korea_date();
    let key = format!("NEVERSENT{}", std::process::id());
    let r = s.kicc(&[
        "cancel",
        "generic",
        "--pg-cno",
        &pg,
        "--amount",
        "1000",
        "--resume-key",
        &format!("{key}@{today}"),
        "--lookup-after",
        "20000101000000",
        "--refund-query",
        "--timeout",
        "2",
    ]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stderr
            .contains(&format!("already cancelled as {a}, not by this command")),
        "{r:#?}"
    );
    assert_eq!(cancels(&s, &pg).len(), 1);
}

#[test]
fn maybe_processed_then_declined_is_unknown_and_the_printed_resume_finishes_it() {
    let s = served(&[]);
    let pg = s.payment("alipay", 5000, "USD");
    s.fault(json!({"path": "/api/trades/alipay/revise", "kind": "http500", "apply": true}));
    s.fault(json!({"path": "/api/trades/alipay/revise", "kind": "resCd", "resCd": "E501"}));
    let r = cancel(
        &s,
        &[
            "alipay",
            "--pg-cno",
            &pg,
            "--amount",
            "10.00",
            "--currency",
            "USD",
        ],
    );
    assert_eq!(r.code, 3, "{r:#?}");
    assert!(
        r.stderr.contains("E501") && r.stderr.contains("HTTP 500"),
        "{r:#?}"
    );
    assert_eq!(cancels(&s, &pg).len(), 1);
    // The printed command resends the identical message, which the gateway answers with the
    // first outcome: done, and still one cancel.
    let args = resume_args(&r);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let resumed = common::run(common::kicc().args(&args));
    assert_eq!(resumed.code, 0, "{resumed:#?}");
    assert_eq!(cancels(&s, &pg).len(), 1);
    assert_eq!(s.state(&pg)["remainingAmount"], 4_000);
}

#[test]
fn a_generic_timeout_prints_a_resume_that_looks_up_before_sending() {
    let s = served(&[]);
    let pg = s.payment("card", 20_000, "KRW");
    // The answer is lost and the request is processed after the client gave up; with one
    // attempt and a look-up that fails, the outcome is unknown.
    s.fault(json!({"path": "/api/trades/revise", "kind": "timeout", "apply": false}));
    s.fault(json!({"path": "/api/trades/retrieveTransaction", "kind": "http500"}));
    let r = cancel(
        &s,
        &[
            "generic",
            "--pg-cno",
            &pg,
            "--amount",
            "3000",
            "--max-attempts",
            "1",
        ],
    );
    assert_eq!(r.code, 3, "{r:#?}");
    assert!(r.stderr.contains("--resume-key "), "{r:#?}");
    assert!(r.stderr.contains("--lookup-after "), "{r:#?}");
    // The stalled request was processed meanwhile: the resume finds it and sends nothing new.
    let args = resume_args(&r);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let resumed = common::run(common::kicc().args(&args));
    assert_eq!(resumed.code, 0, "{resumed:#?}");
    assert_eq!(cancels(&s, &pg).len(), 1);
    assert_eq!(s.state(&pg)["remainingAmount"], 17_000);
}

#[test]
fn a_short_wait_queries_before_giving_up_and_reports_failures_and_voids() {
    let s = served(&[]);
    let pg = s.payment("wechat", 10_000, "KRW");
    let r = cancel(&s, &["wechat", "--pg-cno", &pg, "--wait", "1"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.json()["cancelStatus"], "TS02");

    let pg = s.payment("wechat", 10_000, "KRW");
    s.fault(json!({"path": "/api/trades/wechatpay/revise", "kind": "wechatFail", "resCd": "W001", "resDetailMsg": "card closed!"}));
    let r = cancel(&s, &["wechat", "--pg-cno", &pg, "--wait", "2"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stderr.contains("W001") && r.stderr.contains("card closed!"),
        "{r:#?}"
    );
    assert_eq!(s.state(&pg)["remainingAmount"], 10_000);

    let pg = s.payment("wechat", 10_000, "KRW");
    s.fault(json!({"path": "/api/trades/wechatpay/revise", "kind": "wechatVoid"}));
    let r = cancel(&s, &["wechat", "--pg-cno", &pg, "--wait", "2"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.json()["cancelStatus"], "TS12");
}

#[test]
fn a_failed_status_query_is_status_unknown_never_a_cancel_outcome() {
    let s = served(&[]);
    let pg = s.payment("wechat", 10_000, "KRW");
    let accepted = cancel(&s, &["wechat", "--pg-cno", &pg]);
    assert_eq!(accepted.code, 0, "{accepted:#?}");
    let c = accepted.json()["cancelPgCno"].as_str().unwrap().to_owned();
    // Every attempt dropped: the status is unknown (exit 3), not "declined".
    s.fault(
        json!({"path": "/api/trades/wechatpay/find", "kind": "drop", "apply": true, "times": 4}),
    );
    let r = s.kicc(&[
        "status",
        "wechat",
        "--pg-cno",
        &pg,
        "--cancel-pg-cno",
        &c,
        "--timeout",
        "1",
    ]);
    assert_eq!(r.code, 3, "{r:#?}");
    assert!(r.stderr.starts_with("error: status unknown: "), "{r:#?}");
    // One dropped attempt: the resend uses a new key (no duplicate) and gets the answer.
    s.fault(json!({"path": "/api/trades/wechatpay/find", "kind": "drop", "apply": true}));
    let r = s.kicc(&["status", "wechat", "--pg-cno", &pg, "--cancel-pg-cno", &c]);
    assert!(r.code == 0 || r.code == 4, "{r:#?}");
    assert_ne!(r.json()["resCd"], "D001");
}

#[test]
fn the_gateways_detail_is_kept_decoded_and_printed_on_one_line() {
    let s = served(&[]);
    let pg = s.payment("card", 5_000, "KRW");
    // The sandbox sends the detail form-encoded, as KICC does.
    s.fault(json!({"path": "/api/trades/revise", "kind": "resCd", "resCd": "E777", "resDetailMsg": "issuer said: no\nretry 100%"}));
    let r = cancel(&s, &["generic", "--pg-cno", &pg]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
    // Decoded ('+' is a space), and the line break inside it escaped.
    assert!(
        r.stderr.contains("detail: issuer said: no\\nretry 100%"),
        "{r:#?}"
    );
}

#[test]
fn generic_options_reach_the_wire_and_channel_options_are_checked() {
    let dir = std::env::temp_dir().join(format!("kicc-basket-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let basket = dir.join("basket.json");
    std::fs::write(&basket, r#"{"productPgCno":"PP1","sellerId":"S1"}"#).unwrap();
    let basket = basket.to_str().unwrap();
    let r = kicc_run(&[
        "cancel",
        "generic",
        "--pg-cno",
        "PG1",
        "--amount",
        "1000",
        "--method",
        "transfer",
        "--remain-amount",
        "5000",
        "--tax-amount",
        "900",
        "--vat-amount",
        "90",
        "--tax-free-amount",
        "10",
        "--basket",
        basket,
        "--client-ip",
        "10.0.0.1",
        "--client-id",
        "admin",
        "--dry-run",
    ]);
    assert_eq!(r.code, 0, "{r:#?}");
    let body: Value = serde_json::from_str(r.json()["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["reviseTypeCode"], "33");
    assert_eq!(body["remainAmount"], 5000);
    assert_eq!(body["taxInfo"]["vatAmount"], 90);
    assert_eq!(body["basketUsed"], "Y");
    assert_eq!(body["basketInfo"]["sellerId"], "S1");
    assert_eq!(body["clientIp"], "10.0.0.1");
    kicc_run(&[
        "cancel",
        "generic",
        "--pg-cno",
        "PG1",
        "--tax-amount",
        "1",
        "--dry-run",
    ])
    .assert_invalid(&["taxInfo"]);
    kicc_run(&[
        "cancel",
        "generic",
        "--pg-cno",
        "PG1",
        "--refund-query",
        "--dry-run",
    ])
    .assert_invalid(&["refund-query", "resume-key"]);
    kicc_run(&[
        "cancel",
        "alipay",
        "--pg-cno",
        "PG1",
        "--remain-amount",
        "1",
        "--dry-run",
    ])
    .assert_invalid(&["remain-amount", "generic"]);
    kicc_run(&[
        "cancel",
        "generic",
        "--pg-cno",
        "PG1",
        "--reg-id",
        "r",
        "--dry-run",
    ])
    .assert_invalid(&["reg-id"]);
    kicc_run(&[
        "cancel",
        "alipay",
        "--pg-cno",
        "PG1",
        "--cancel-req-date",
        "20261121",
        "--dry-run",
    ])
    .assert_invalid(&["cancel-req-date", "shop-transaction-id"]);
    kicc_run(&[
        "cancel",
        "generic",
        "--pg-cno",
        "PG1",
        "--resume-key",
        "nodate",
        "--dry-run",
    ])
    .assert_invalid(&["resume-key"]);
    // The identical wallet message with its first date, for a resume after midnight.
    let r = kicc_run(&[
        "cancel",
        "alipay",
        "--pg-cno",
        "PG1",
        "--shop-transaction-id",
        "K1",
        "--cancel-req-date",
        "20261121",
        "--reg-id",
        "ops",
        "--dry-run",
    ]);
    let body: Value = serde_json::from_str(r.json()["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["cancelReqDate"], "20261121");
    assert_eq!(body["shopTransactionId"], "K1");
    assert_eq!(body["regId"], "ops");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_escrow_payment_is_refused_with_a_message_that_says_why() {
    let s = served(&[]);
    let (status, v) = common::http(
        &s.base_url,
        "POST",
        "/sandbox/payments",
        Some(&json!({"channel": "card", "amount": 5000, "currency": "KRW", "escrow": true})),
    );
    assert_eq!(status, 200, "{v}");
    let pg = v["pgCno"].as_str().unwrap().to_owned();
    let r = cancel(&s, &["generic", "--pg-cno", &pg]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("escrow status change"), "{r:#?}");
    assert_eq!(s.state(&pg)["statusCode"], "TS01");
}
