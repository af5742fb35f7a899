//! The settings for what the pages leave open (`/sandbox/settings`): the
//! `remainAmount` convention and the refund-query matching rule, each tried
//! under every value; latency; and the processing bound's config rules.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;
use kicc_sandbox::{
    RefundQueryMatch, RemainAmountConvention, Sandbox, SandboxConfig, SandboxError, Settings,
    GENERIC_REVISE_PATH as REVISE,
};
use serde_json::{json, Value};

#[tokio::test]
async fn settings_admin_api() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let (status, v) = c.get("/sandbox/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        json!({
            "remainAmountConvention": "balanceBefore",
            "refundQueryMatch": "pgCnoAmount",
            "latencyMs": 0,
            "processingBoundMs": 30_000,
            "timeoutFaultDelayMs": 1_200,
        })
    );
    let v = c
        .settings(json!({"remainAmountConvention": "balanceAfter", "latencyMs": 3}))
        .await;
    assert_eq!(v["remainAmountConvention"], "balanceAfter");
    assert_eq!(v["refundQueryMatch"], "pgCnoAmount", "untouched");
    assert_eq!(v["latencyMs"], 3);
    assert_eq!(
        sb.settings(),
        Settings::default()
            .with_remain_amount_convention(RemainAmountConvention::BalanceAfter)
            .with_latency(Duration::from_millis(3))
    );

    for bad in [
        json!({"refundQueryMatch": "sometimes"}),
        json!({"remainAmountConvention": 1}),
        json!({"latencyMs": -1}),
        json!({"latencyMs": 28_801}),
        json!({"unknown": true}),
        json!([]),
    ] {
        let (status, body) = c
            .post_raw("/sandbox/settings", bad.to_string().into_bytes())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert!(v["error"].is_string(), "{v}");
    }
    assert!(sb
        .set_settings(Settings::default().with_latency(Duration::from_secs(29)))
        .is_err());
    // Settings survive a reset (they are configuration, not state).
    c.post("/sandbox/reset", &json!({})).await;
    assert_eq!(
        c.get("/sandbox/settings").await.1["remainAmountConvention"],
        "balanceAfter"
    );
}

#[tokio::test]
async fn remain_amount_convention_decides_p004() {
    for (convention, good, bad) in [
        ("balanceBefore", 10_000, 7_000),
        ("balanceAfter", 7_000, 10_000),
    ] {
        let sb = start().await;
        let c = TestClient::new(&sb);
        c.settings(json!({"remainAmountConvention": convention}))
            .await;
        let today = c.today().await;
        let pg = c.payment("card", 10_000, "KRW").await;
        let mut req = generic(&pg, "ra-1", &today, "32", Some(3_000));
        req["remainAmount"] = json!(bad);
        let r = c.post(REVISE, &req).await;
        assert_eq!(res_cd(&r), "P004", "{convention}: {r}");
        let mut req = generic(&pg, "ra-2", &today, "32", Some(3_000));
        req["remainAmount"] = json!(good);
        let r = c.post(REVISE, &req).await;
        assert_eq!(res_cd(&r), "0000", "{convention}: {r}");
        // The answer's remainAmount is the balance after, either way.
        assert_eq!(r["remainAmount"], "7000");
        assert_eq!(c.state(&pg).await["remainingAmount"], json!(7_000));
    }
}

/// What a refund query is answered with, for one setting: `(resCd,
/// cancelPgCno, cancels on the payment afterwards)`.
async fn refund_query(rule: &str, convention: &str, remain: Option<u64>) -> (String, bool, usize) {
    let sb = start().await;
    let c = TestClient::new(&sb);
    c.settings(json!({"refundQueryMatch": rule, "remainAmountConvention": convention}))
        .await;
    let today = c.today().await;
    let pg = c.payment("card", 9_000, "KRW").await;
    // An earlier refund A of 2000 (9000 -> 7000).
    let a = c
        .post(REVISE, &generic(&pg, "rm-a", &today, "32", Some(2_000)))
        .await;
    assert_eq!(res_cd(&a), "0000", "{a}");
    // A refund query of the same amount with a new key.
    let mut q = generic(&pg, "rm-q", &today, "32", Some(2_000));
    q["refundQueryFlag"] = json!("Y");
    if let Some(r) = remain {
        q["remainAmount"] = json!(r);
    }
    let r = c.post(REVISE, &q).await;
    assert_eq!(r["shopTransactionId"], "rm-q", "echoes its own key: {r}");
    let cancels = c.state(&pg).await["cancels"].as_array().map_or(0, Vec::len);
    let answered_with_a = r["cancelPgCno"] == a["cancelPgCno"];
    if answered_with_a {
        assert_eq!(r["transactionDate"], a["transactionDate"]);
    }
    (res_cd(&r).to_owned(), answered_with_a, cancels)
}

#[tokio::test]
async fn refund_query_match_under_every_setting() {
    // remainAmount = the balance NOW (a genuinely new refund whose first
    // attempt was lost unprocessed): before = 7000, after = 5000.
    // remainAmount = A's own balance: before = 9000, after = 7000.
    type Case = (&'static str, &'static str, Option<u64>, Expected);
    type Expected = (&'static str, bool, usize);
    let cases: [Case; 12] = [
        // Worst case: any earlier revision with this amount, remainAmount ignored.
        (
            "pgCnoAmount",
            "balanceBefore",
            Some(7_000),
            ("0000", true, 1),
        ),
        (
            "pgCnoAmount",
            "balanceAfter",
            Some(5_000),
            ("0000", true, 1),
        ),
        ("pgCnoAmount", "balanceBefore", None, ("0000", true, 1)),
        (
            "pgCnoAmount",
            "balanceBefore",
            Some(9_000),
            ("0000", true, 1),
        ),
        // remainAmount must match A's balance by the convention.
        (
            "pgCnoAmountRemain",
            "balanceBefore",
            Some(7_000),
            ("0000", false, 2),
        ),
        (
            "pgCnoAmountRemain",
            "balanceAfter",
            Some(5_000),
            ("0000", false, 2),
        ),
        (
            "pgCnoAmountRemain",
            "balanceBefore",
            Some(9_000),
            ("0000", true, 1),
        ),
        (
            "pgCnoAmountRemain",
            "balanceAfter",
            Some(7_000),
            ("0000", true, 1),
        ),
        (
            "pgCnoAmountRemain",
            "balanceBefore",
            None,
            ("0000", true, 1),
        ),
        // Never matched: processed as a new cancel (with its P004 check).
        ("never", "balanceBefore", Some(7_000), ("0000", false, 2)),
        ("never", "balanceBefore", Some(9_000), ("P004", false, 1)),
        ("never", "balanceAfter", None, ("0000", false, 2)),
    ];
    for (rule, convention, remain, (code, with_a, cancels)) in cases {
        let got = refund_query(rule, convention, remain).await;
        assert_eq!(
            got,
            (code.to_owned(), with_a, cancels),
            "{rule} {convention} remainAmount {remain:?}"
        );
    }
}

#[tokio::test]
async fn refund_query_of_a_full_cancel_under_the_worst_case() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 4_000, "KRW").await;
    let a = c
        .post(REVISE, &generic(&pg, "rf-a", &today, "40", None))
        .await;
    assert_eq!(res_cd(&a), "0000");
    // A plain second full cancel is refused ...
    let r = c
        .post(REVISE, &generic(&pg, "rf-b", &today, "40", None))
        .await;
    assert_eq!(res_cd(&r), "P002");
    // ... but a refund query is answered with the earlier full cancel, under
    // the new key: it describes rf-a, not a cancel made by rf-c.
    let mut q = generic(&pg, "rf-c", &today, "40", None);
    q["refundQueryFlag"] = json!("Y");
    let r = c.post(REVISE, &q).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["cancelPgCno"], a["cancelPgCno"]);
    assert_eq!(r["shopTransactionId"], "rf-c");
    assert_eq!(
        c.state(&pg).await["cancels"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn latency_delays_provider_endpoints() {
    let sb = start_with(fast_config().with_latency(Duration::from_millis(250))).await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 1_000, "KRW").await;
    let started = Instant::now();
    let r = c
        .post(REVISE, &generic(&pg, "lt-1", &today, "40", None))
        .await;
    assert_eq!(res_cd(&r), "0000");
    assert!(started.elapsed() >= Duration::from_millis(250));
    let started = Instant::now();
    let _ = c.retrieve("lt-1", &today).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    // Changed at run time.
    c.settings(json!({"latencyMs": 0})).await;
    assert_eq!(sb.settings().latency, Duration::ZERO);
}

#[tokio::test]
async fn the_processing_bound_holds_every_delay() {
    let addr = "127.0.0.1:0".parse().expect("literal");
    let too_slow = SandboxConfig::default()
        .with_processing_bound(Duration::from_secs(5))
        .with_timeout_fault_delay(Duration::from_secs(6));
    match Sandbox::start(addr, too_slow).await {
        Err(SandboxError::InvalidConfig { field, .. }) => assert_eq!(field, "timeout_fault_delay"),
        other => panic!("{other:?}"),
    }
    let too_late = SandboxConfig::default()
        .with_processing_bound(Duration::from_secs(5))
        .with_timeout_fault_delay(Duration::from_secs(4))
        .with_latency(Duration::from_millis(1_001));
    match Sandbox::start(addr, too_late).await {
        Err(e @ SandboxError::InvalidConfig { field, .. }) => {
            assert_eq!(field, "latency");
            // The field name leads the message once.
            assert_eq!(
                e.to_string(),
                "invalid sandbox config: latency plus timeout_fault_delay (4000 ms) \
                 must not exceed processing_bound (5000 ms)"
            );
        }
        other => panic!("{other:?}"),
    }
    let zero = SandboxConfig::default().with_processing_bound(Duration::ZERO);
    assert!(Sandbox::start(addr, zero).await.is_err());
    // Defaults fit: 30 s bound, 30 s timeout stall, no latency.
    let d = SandboxConfig::default();
    assert_eq!(d.processing_bound, Duration::from_secs(30));
    assert!(d.timeout_fault_delay <= d.processing_bound);
    assert_eq!(d.refund_query_match, RefundQueryMatch::PgCnoAmount);
    assert_eq!(
        d.remain_amount_convention,
        RemainAmountConvention::BalanceBefore
    );
    let sb = start_with(
        SandboxConfig::default()
            .with_processing_bound(Duration::from_secs(5))
            .with_timeout_fault_delay(Duration::from_secs(4))
            .with_latency(Duration::from_secs(1)),
    )
    .await;
    sb.shutdown().await;
}
