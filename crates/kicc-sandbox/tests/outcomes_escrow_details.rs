//! WeChat cancels that finish as failures (`wechatFail`) or voids
//! (`wechatVoid`), escrow payments refused by the cancel API (`P007`), and
//! `resDetailMsg` on injected `resCd` faults.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;
use kicc_sandbox::{
    Channel, Fault, FaultKind, ALIPAY_REVISE_PATH as ALIPAY, GENERIC_REVISE_PATH as REVISE,
    WECHAT_FIND_PATH as FIND, WECHAT_REVISE_PATH as WECHAT,
};
use serde_json::{json, Value};

/// Form decoding as a client would do it: `+` is a space, then `%XX`.
fn form_decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .expect("utf-8")
        .into_owned()
}

#[tokio::test]
async fn wechat_fail_releases_the_amount_and_says_so_everywhere() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let receiver = Receiver::start(Vec::new()).await;
    let pg = c.payment("wechat", 10_000, "KRW").await;
    c.fault(json!({
        "path": WECHAT, "kind": "wechatFail", "resCd": "W777",
        "resDetailMsg": "refund refused: balance/limit 가",
    }))
    .await;
    let (_, listed) = c.get("/sandbox/faults").await;
    assert_eq!(
        listed["faults"][0],
        json!({"path": WECHAT, "kind": "wechatFail", "times": 1, "apply": true,
               "resCd": "W777", "resDetailMsg": "refund refused: balance/limit 가"})
    );

    let mut req = overseas(&pg, "wf-1", &today, Some(("KRW", 4_000)));
    req["notifyUrl"] = json!(receiver.url);
    let r = c.post(WECHAT, &req).await;
    assert_eq!(res_cd(&r), "0000", "accepted: {r}");
    let cancel = r["cancelPgCno"].as_str().expect("cancelPgCno").to_owned();

    assert!(eventually(Duration::from_secs(5), || async { receiver.count() == 1 }).await);
    let notice = receiver.hits()[0].clone();
    assert_eq!(res_cd(&notice), "W777", "{notice}");
    assert!(notice["resMsg"].is_string());
    let detail = notice["resDetailMsg"].as_str().expect("resDetailMsg");
    assert_eq!(detail, "refund+refused%3A+balance%2Flimit+%EA%B0%80");
    assert_eq!(form_decode(detail), "refund refused: balance/limit 가");
    assert_eq!(notice["cancelPgCno"], json!(cancel));
    assert_eq!(
        notice["amountInfo"],
        json!({"currency": "KRW", "amount": 4000})
    );

    let f = c.post(FIND, &find(&pg, &cancel, "wf-2")).await;
    assert_eq!(res_cd(&f), "W777", "{f}");
    assert_eq!(f["cancelStatus"], "TS01");
    assert_eq!(f["resDetailMsg"].as_str(), Some(detail));
    assert_eq!(f["cancelPgCno"], json!(cancel));

    let s = c.state(&pg).await;
    assert_eq!(s["remainingAmount"], json!(10_000), "nothing cancelled");
    assert_eq!(s["statusCode"], "TS01");
    let entry = &s["cancels"][0];
    assert_eq!(entry["outcome"], "failed");
    assert_eq!(entry["resCd"], "W777");
    assert_eq!(entry["status"], "TS01");
    assert_eq!(entry["shopTransactionId"], "wf-1");
    assert_eq!(entry["amount"], json!(4_000));

    // The held amount is released: the whole payment can be cancelled now.
    let r = c.post(WECHAT, &overseas(&pg, "wf-3", &today, None)).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["amountInfo"]["totAmount"], json!(10_000));
}

#[tokio::test]
async fn wechat_fail_defaults_and_wechat_void() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let receiver = Receiver::start(Vec::new()).await;
    let pg = c.payment("wechat", 9_000, "USD").await;
    c.fault(json!({"path": WECHAT, "kind": "wechatFail"})).await;
    c.fault(json!({"path": WECHAT, "kind": "wechatVoid"})).await;

    let mut first = overseas(&pg, "wv-1", &today, Some(("USD", 1_000)));
    first["notifyUrl"] = json!(receiver.url);
    let a = c.post(WECHAT, &first).await;
    let mut second = overseas(&pg, "wv-2", &today, Some(("USD", 2_000)));
    second["notifyUrl"] = json!(receiver.url);
    let b = c.post(WECHAT, &second).await;
    assert_eq!((res_cd(&a), res_cd(&b)), ("0000", "0000"));
    assert!(eventually(Duration::from_secs(5), || async { receiver.count() == 2 }).await);
    let hits = receiver.hits();
    let by_cancel = |v: &Value| {
        hits.iter()
            .find(|h| h["cancelPgCno"] == v["cancelPgCno"])
            .cloned()
            .expect("a notice")
    };
    let failed = by_cancel(&a);
    assert_eq!(res_cd(&failed), "W001", "the default failure code");
    assert!(failed["resDetailMsg"].is_string());
    let voided = by_cancel(&b);
    assert_eq!(res_cd(&voided), "0000", "{voided}");
    assert!(voided.get("resDetailMsg").is_none());

    let cancel_b = b["cancelPgCno"].as_str().expect("cancelPgCno");
    let f = c.post(FIND, &find(&pg, cancel_b, "wv-3")).await;
    assert_eq!(
        (res_cd(&f), f["cancelStatus"].as_str()),
        ("0000", Some("TS12"))
    );
    let s = c.state(&pg).await;
    assert_eq!(
        s["remainingAmount"],
        json!(7_000),
        "the void cancelled 2000"
    );
    assert_eq!(s["cancels"][1]["status"], "TS12");
    assert_eq!(s["cancels"][1]["outcome"], "applied");
    assert_eq!(s["cancels"][0]["outcome"], "failed");
    assert_eq!(s["cancels"][0]["resCd"], "W001");

    // The next one is normal again.
    let c3 = c
        .post(WECHAT, &overseas(&pg, "wv-4", &today, Some(("USD", 500))))
        .await;
    let cancel_c = c3["cancelPgCno"].as_str().expect("cancelPgCno").to_owned();
    assert_eq!(c.state(&pg).await["cancels"][2]["outcome"], "pending");
    assert!(
        eventually(Duration::from_secs(5), || async {
            c.state(&pg).await["cancels"][2]["outcome"] == "applied"
        })
        .await
    );
    let f = c.post(FIND, &find(&pg, &cancel_c, "wv-5")).await;
    assert_eq!(f["cancelStatus"], "TS06");
}

#[tokio::test]
async fn wechat_outcome_faults_are_checked() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    for bad in [
        json!({"path": REVISE, "kind": "wechatFail"}),
        json!({"path": FIND, "kind": "wechatVoid"}),
        json!({"path": WECHAT, "kind": "wechatVoid", "apply": false}),
        json!({"path": WECHAT, "kind": "wechatFail", "resCd": "0000"}),
        json!({"path": WECHAT, "kind": "wechatFail", "resCd": "W1"}),
        json!({"path": WECHAT, "kind": "wechatFail", "resCd": 7}),
        json!({"path": WECHAT, "kind": "wechatVoid", "resDetailMsg": "x"}),
        json!({"path": REVISE, "kind": "http500", "resDetailMsg": "x"}),
        json!({"path": REVISE, "kind": "resCd", "resCd": "E501", "resDetailMsg": 5}),
        json!({"path": REVISE, "kind": "resCd", "resCd": "E501", "resDetailMsg": "가".repeat(120)}),
    ] {
        let (status, body) = c
            .post_raw("/sandbox/faults", bad.to_string().into_bytes())
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // The Rust API takes the same kinds.
    sb.inject_fault(Fault::new(WECHAT, FaultKind::WechatVoid).times(2))
        .expect("valid");
    sb.inject_fault(
        Fault::new(
            WECHAT,
            FaultKind::WechatFail {
                res_cd: "W002".into(),
            },
        )
        .res_detail_msg("no"),
    )
    .expect("valid");
    let (_, listed) = c.get("/sandbox/faults").await;
    assert_eq!(listed["faults"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn escrow_payments_are_not_cancelled_by_the_cancel_api() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let created = c
        .post(
            "/sandbox/payments",
            &json!({"channel": "card", "amount": 5_000, "escrow": true}),
        )
        .await;
    assert_eq!(created["escrow"], true);
    let pg = created["pgCno"].as_str().expect("pgCno").to_owned();
    for (key, code, amount) in [("es-1", "40", None), ("es-2", "32", Some(1_000))] {
        let r = c
            .post(REVISE, &generic(&pg, key, &today, code, amount))
            .await;
        assert_eq!(res_cd(&r), "P007", "{code}: {r}");
        let msg = r["resMsg"].as_str().expect("resMsg");
        assert!(msg.contains("escrow status change API"), "{msg}");
        // Recorded like every processed request.
        assert_eq!(c.retrieve(key, &today).await, r);
    }
    let s = c.state(&pg).await;
    assert_eq!(s["escrow"], true);
    assert_eq!(s["remainingAmount"], json!(5_000));

    let transfer = sb
        .create_escrow_payment(Channel::Transfer, 3_000)
        .expect("transfer escrow");
    let r = c
        .post(
            REVISE,
            &generic(&transfer.pg_cno, "es-3", &today, "33", Some(100)),
        )
        .await;
    assert_eq!(res_cd(&r), "P007");
    // Not escrow: the same request is fine.
    let plain = c.payment("transfer", 3_000, "KRW").await;
    let r = c
        .post(REVISE, &generic(&plain, "es-4", &today, "33", Some(100)))
        .await;
    assert_eq!(res_cd(&r), "0000");
    assert_eq!(c.state(&plain).await["escrow"], false);

    // A capture (20) is not a cancel: allowed, and the answer says escrow.
    let auth = c
        .post(
            "/sandbox/payments",
            &json!({"channel": "card", "amount": 2_000, "escrow": true, "authorizedOnly": true}),
        )
        .await;
    let auth = auth["pgCno"].as_str().expect("pgCno");
    let r = c
        .post(REVISE, &generic(auth, "es-5", &today, "20", None))
        .await;
    assert_eq!(
        (res_cd(&r), r["escrowUsed"].as_str()),
        ("0000", Some("Y")),
        "{r}"
    );
    let r = c
        .post(REVISE, &generic(&plain, "es-6", &today, "40", None))
        .await;
    assert_eq!(r["escrowUsed"], "N");

    for bad in [
        json!({"channel": "alipay", "amount": 1_000, "escrow": true}),
        json!({"channel": "cash_receipt", "amount": 1_000, "escrow": true}),
        json!({"channel": "card", "amount": 1_000, "escrow": "Y"}),
    ] {
        let (status, _) = c
            .post_raw("/sandbox/payments", bad.to_string().into_bytes())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert!(sb.create_escrow_payment(Channel::Wechat, 1_000).is_err());
    assert!(sb
        .create_escrow_payment(Channel::WechatpayGlobal, 1_000)
        .is_err());
}

#[tokio::test]
async fn res_cd_faults_carry_a_form_encoded_detail() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 5_000, "KRW").await;

    c.fault(json!({"path": REVISE, "kind": "resCd", "resCd": "E501",
                   "resDetailMsg": "a b/c\nd"}))
        .await;
    let r = c
        .post(REVISE, &generic(&pg, "rd-1", &today, "32", Some(100)))
        .await;
    assert_eq!(res_cd(&r), "E501");
    assert_eq!(r["resDetailMsg"], "a+b%2Fc%0Ad");
    assert_eq!(r["shopTransactionId"], "rd-1");
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(5_000));

    // Without a detail the generic endpoint sends none.
    c.fault(json!({"path": REVISE, "kind": "resCd", "resCd": "E502"}))
        .await;
    let r = c
        .post(REVISE, &generic(&pg, "rd-2", &today, "32", Some(100)))
        .await;
    assert_eq!(res_cd(&r), "E502");
    assert!(r.get("resDetailMsg").is_none(), "{r}");

    // Alipay too, through the Rust API.
    let ali = c.payment("alipay", 1_000, "KRW").await;
    sb.inject_fault(
        Fault::new(ALIPAY, FaultKind::ResCd("A212".into())).res_detail_msg("retry later"),
    )
    .expect("valid");
    let r = c.post(ALIPAY, &overseas(&ali, "rd-3", &today, None)).await;
    assert_eq!(
        (res_cd(&r), r["resDetailMsg"].as_str()),
        ("A212", Some("retry+later"))
    );

    // WeChat: the fault's detail replaces the message's.
    let wx = c.payment("wechat", 1_000, "KRW").await;
    c.fault(json!({"path": WECHAT, "kind": "resCd", "resCd": "E503",
                   "resDetailMsg": "x&y"}))
        .await;
    let r = c.post(WECHAT, &overseas(&wx, "rd-4", &today, None)).await;
    assert_eq!(r["resDetailMsg"], "x%26y");
}
