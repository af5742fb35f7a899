//! `/api/trades/retrieveTransaction`: every revise request that passed the
//! `V` checks can be looked up by its own key and the Korea date it was
//! processed on, and answers exactly what that request got; requests not
//! processed (rejected, dropped before processing, still stalled) are not found.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;
use kicc_sandbox::{
    SandboxConfig, ALIPAY_REVISE_PATH as ALIPAY, GENERIC_REVISE_PATH as REVISE,
    RETRIEVE_TRANSACTION_PATH as RETRIEVE, WECHAT_FIND_PATH as FIND, WECHAT_REVISE_PATH as WECHAT,
};
use serde_json::{json, Value};

#[tokio::test]
async fn each_key_answers_what_its_request_got() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 10_000, "KRW").await;

    // A success.
    let a = c
        .post(REVISE, &generic(&pg, "rt-a", &today, "32", Some(1_000)))
        .await;
    assert_eq!(res_cd(&a), "0000", "{a}");
    assert_eq!(
        c.retrieve("rt-a", &today).await,
        a,
        "the cancel response itself"
    );

    // A business decline (P003) is recorded too, as answered.
    let b = c
        .post(REVISE, &generic(&pg, "rt-b", &today, "32", Some(50_000)))
        .await;
    assert_eq!(res_cd(&b), "P003");
    let found = c.retrieve("rt-b", &today).await;
    assert_eq!(found, b);
    assert_eq!(found["shopTransactionId"], "rt-b");

    // A duplicate of rt-a (D001) changes nothing about what rt-a got.
    let dup = c
        .post(REVISE, &generic(&pg, "rt-a", &today, "32", Some(2_000)))
        .await;
    assert_eq!(res_cd(&dup), "D001");
    assert_eq!(c.retrieve("rt-a", &today).await, a);

    // Rejected by a V check (bad msgAuthValue): never processed, not found.
    let mut bad = generic(&pg, "rt-c", &today, "32", Some(1_000));
    bad["msgAuthValue"] = json!("0".repeat(64));
    assert_eq!(res_cd(&c.post(REVISE, &bad).await), "V008");
    let nf = c.retrieve("rt-c", &today).await;
    assert_eq!(res_cd(&nf), "R001", "{nf}");
    assert_eq!(nf["shopTransactionId"], "rt-c");
    assert_eq!(nf["mallId"], MALL);
    assert_eq!(res_cd(&c.retrieve("never-sent", &today).await), "R001");

    // A refund query answered with rt-a's revision is recorded under its OWN
    // key, with the answer it got: rt-a's cancel and transactionDate.
    let mut q = generic(&pg, "rt-d", &today, "32", Some(1_000));
    q["refundQueryFlag"] = json!("Y");
    let d = c.post(REVISE, &q).await;
    assert_eq!(res_cd(&d), "0000", "{d}");
    assert_eq!(d["cancelPgCno"], a["cancelPgCno"]);
    let found = c.retrieve("rt-d", &today).await;
    assert_eq!(found, d);
    assert_eq!(found["shopTransactionId"], "rt-d");
    assert_eq!(found["transactionDate"], a["transactionDate"]);
    assert_eq!(found["oriPgCno"], json!(pg));
    assert_eq!(found["cancelAmount"], "1000");

    // Looking up changes nothing and uses up no key.
    let s = c.state(&pg).await;
    assert_eq!(s["remainingAmount"], json!(9_000));
    assert_eq!(s["cancels"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn wallet_revises_are_recorded_find_is_not() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;

    let ali = c.payment("alipay", 5_000, "USD").await;
    let r = c
        .post(
            ALIPAY,
            &overseas(&ali, "rw-1", &today, Some(("USD", 1_203))),
        )
        .await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    let found = c.retrieve("rw-1", &today).await;
    assert_eq!(found, r);
    assert_eq!(found["pgCno"], json!(ali));
    assert_eq!(
        found["amountInfo"],
        json!({"currency": "USD", "totAmount": 1203})
    );
    assert!(found["cancelPgCno"].is_string());
    assert!(found["transactionDate"].is_string());

    // A same-key retry is answered the same bytes; the record is unchanged.
    let again = c
        .post(
            ALIPAY,
            &overseas(&ali, "rw-1", &today, Some(("USD", 1_203))),
        )
        .await;
    assert_eq!(again, r);
    assert_eq!(c.retrieve("rw-1", &today).await, r);

    let wx = c.payment("wechat", 8_000, "KRW").await;
    let w = c.post(WECHAT, &overseas(&wx, "rw-2", &today, None)).await;
    assert_eq!(res_cd(&w), "0000", "{w}");
    assert_eq!(c.retrieve("rw-2", &today).await, w);

    // A status query is not a revision.
    let cancel = w["cancelPgCno"].as_str().expect("cancelPgCno");
    let f = c.post(FIND, &find(&wx, cancel, "rw-3")).await;
    assert_eq!(res_cd(&f), "0000", "{f}");
    assert_eq!(res_cd(&c.retrieve("rw-3", &today).await), "R001");
}

#[tokio::test]
async fn field_checks_and_the_query_window() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 3_000, "KRW").await;
    let first = c
        .post(REVISE, &generic(&pg, "rq-1", &today, "40", None))
        .await;
    assert_eq!(res_cd(&first), "0000");

    let ask = |v: Value| {
        let c = c.clone();
        async move { c.post(RETRIEVE, &v).await }
    };
    let base = json!({"mallId": MALL, "shopTransactionId": "rq-1", "transactionDate": today});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let mut missing = base.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("transactionDate");
    for (body, code) in [
        (missing, "V001"),
        (with("transactionDate", json!(20_250_101)), "V001"),
        (with("shopTransactionId", json!("")), "V001"),
        (with("shopTransactionId", json!("k".repeat(61))), "V002"),
        (with("mallId", json!("T00000011")), "V002"),
        (with("transactionDate", json!("2025-01-01")), "V002"),
        (with("shopTransactionId", json!("a;b")), "V003"),
        (with("transactionDate", json!("20250230")), "V006"),
        (with("mallId", json!("T9999999")), "V007"),
        (with("transactionDate", json!("20000101")), "R002"),
    ] {
        let r = ask(body.clone()).await;
        assert_eq!(res_cd(&r), code, "{body} -> {r}");
    }
    let (status, bytes) = c.post_raw(RETRIEVE, b"not json".to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(res_cd(&v), "V001");

    // The next Korea day: yesterday's record is still found, a date two
    // days back or in the future is outside the window.
    sb.set_clock(86_400).expect("clock");
    let tomorrow = c.today().await;
    assert_ne!(tomorrow, today);
    assert_eq!(c.retrieve("rq-1", &today).await, first);
    assert_eq!(res_cd(&c.retrieve("rq-1", &tomorrow).await), "R001");
    // The key may be used again on the new day; both days answer their own.
    let pg2 = c.payment("card", 2_000, "KRW").await;
    let second = c
        .post(REVISE, &generic(&pg2, "rq-1", &tomorrow, "40", None))
        .await;
    assert_eq!(res_cd(&second), "0000", "{second}");
    assert_eq!(c.retrieve("rq-1", &tomorrow).await, second);
    assert_eq!(c.retrieve("rq-1", &today).await, first);

    sb.set_clock(2 * 86_400).expect("clock");
    let r = c.retrieve("rq-1", &today).await;
    assert_eq!(res_cd(&r), "R002", "{r}");
    sb.set_clock(0).expect("clock");
    let r = c.retrieve("rq-1", &tomorrow).await;
    assert_eq!(res_cd(&r), "R002", "the future is outside the window: {r}");
}

#[tokio::test]
async fn faults_record_what_was_processed_only() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 10_000, "KRW").await;

    // http500 with apply: processed, then 500; the look-up shows the success.
    c.fault(json!({"path": REVISE, "kind": "http500", "apply": true}))
        .await;
    let (status, _) = c
        .post_raw(
            REVISE,
            generic(&pg, "rf-1", &today, "32", Some(100))
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let r = c.retrieve("rf-1", &today).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["cancelAmount"], "100");
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(9_900));

    // drop without apply: nothing processed, nothing to find.
    c.fault(json!({"path": REVISE, "kind": "drop", "apply": false}))
        .await;
    let res = c
        .send(
            http::Method::POST,
            REVISE,
            generic(&pg, "rf-2", &today, "32", Some(100))
                .to_string()
                .into_bytes(),
        )
        .await;
    assert!(res.is_err(), "no answer: {res:?}");
    assert_eq!(res_cd(&c.retrieve("rf-2", &today).await), "R001");
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(9_900));

    // drop with apply (the default): processed, found.
    c.fault(json!({"path": REVISE, "kind": "drop"})).await;
    let res = c
        .send(
            http::Method::POST,
            REVISE,
            generic(&pg, "rf-3", &today, "32", Some(100))
                .to_string()
                .into_bytes(),
        )
        .await;
    assert!(res.is_err());
    assert_eq!(res_cd(&c.retrieve("rf-3", &today).await), "0000");

    // VTIM (processed) vs. A212 (not processed by default).
    c.fault(json!({"path": REVISE, "kind": "resCd", "resCd": "VTIM"}))
        .await;
    let r = c
        .post(REVISE, &generic(&pg, "rf-4", &today, "32", Some(100)))
        .await;
    assert_eq!(res_cd(&r), "VTIM");
    let found = c.retrieve("rf-4", &today).await;
    assert_eq!(res_cd(&found), "0000", "what the gateway did: {found}");
    c.fault(json!({"path": ALIPAY, "kind": "resCd", "resCd": "A212"}))
        .await;
    let ali = c.payment("alipay", 1_000, "KRW").await;
    let r = c.post(ALIPAY, &overseas(&ali, "rf-5", &today, None)).await;
    assert_eq!(res_cd(&r), "A212");
    assert_eq!(res_cd(&c.retrieve("rf-5", &today).await), "R001");
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(9_700));

    // Faults on the look-up path itself.
    c.fault(json!({"path": RETRIEVE, "kind": "http500"})).await;
    let (status, _) = c
        .post_raw(
            RETRIEVE,
            json!({"mallId": MALL, "shopTransactionId": "rf-1", "transactionDate": today})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_stalled_request_is_in_flight_until_processed() {
    let config = SandboxConfig {
        timeout_fault_delay: Duration::from_secs(3),
        processing_bound: Duration::from_secs(3),
        ..fast_config()
    };
    let sb = start_with(config).await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 10_000, "KRW").await;
    c.fault(json!({"path": REVISE, "kind": "timeout", "apply": false}))
        .await;
    let req = generic(&pg, "rs-1", &today, "32", Some(1_000));
    let c2 = c.clone();
    let pending = tokio::spawn(async move { c2.post(REVISE, &req).await });

    // Once the request has taken the fault it is stalled, not processed.
    assert!(
        eventually(Duration::from_secs(5), || async {
            c.get("/sandbox/faults").await.1["faults"]
                .as_array()
                .is_some_and(Vec::is_empty)
        })
        .await
    );
    let r = c.retrieve("rs-1", &today).await;
    assert_eq!(res_cd(&r), "R001", "in flight: {r}");
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(10_000));

    // After the stall it is processed and answered; the look-up agrees.
    let answer = pending.await.expect("task");
    assert_eq!(res_cd(&answer), "0000", "{answer}");
    assert_eq!(c.retrieve("rs-1", &today).await, answer);
}

#[tokio::test]
async fn a_stalled_request_is_processed_after_the_client_left() {
    // A 3 s stall: the client surely leaves inside it, once the request has arrived.
    let sb = start_with(fast_config().with_timeout_fault_delay(Duration::from_secs(3))).await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 10_000, "KRW").await;
    c.fault(json!({"path": REVISE, "kind": "timeout", "apply": false}))
        .await;
    let req = generic(&pg, "rl-1", &today, "32", Some(1_000));
    let c2 = c.clone();
    let client =
        tokio::spawn(async move { c2.post_raw(REVISE, req.to_string().into_bytes()).await });
    // The client leaves during the stall: once the request has arrived (taken its fault),
    // not after a guessed delay.
    wait_until_faults_taken(&sb).await;
    client.abort();
    assert!(
        client.await.is_err_and(|e| e.is_cancelled()),
        "the client left before any answer"
    );
    // Within the processing bound the request is processed anyway.
    assert!(
        eventually(Duration::from_secs(30), || async {
            res_cd(&c.retrieve("rl-1", &today).await) == "0000"
        })
        .await
    );
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(9_000));
}
