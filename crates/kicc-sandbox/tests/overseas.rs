//! Alipay and WeChat Pay over real HTTP: validation, same-key retries,
//! asynchronous WeChat cancels with webhooks, and the status endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::time::Duration;

use common::*;
use kicc_sandbox::{
    ALIPAY_REVISE_PATH as ALIPAY, WECHAT_FIND_PATH as FIND, WECHAT_REVISE_PATH as WECHAT,
};
use serde_json::{json, Value};

#[tokio::test]
async fn alipay_full_and_partial_cancels() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;

    let usd = c.payment("alipay", 5_022, "USD").await;
    let r = c.post(ALIPAY, &overseas(&usd, "a-1", &today, None)).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["pgCno"], usd.as_str());
    assert_eq!(r["shopTransactionId"], "a-1");
    assert_eq!(r["mallId"], MALL);
    // amountInfo.totAmount is a JSON number here.
    assert_eq!(
        r["amountInfo"],
        json!({"currency": "USD", "totAmount": 5022})
    );
    assert!(r["cancelPgCno"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(r["transactionDate"].as_str().map(str::len), Some(14));
    assert_eq!(c.state(&usd).await["statusCode"], "TS02");

    let krw = c.payment("alipay", 30_000, "KRW").await;
    let r = c
        .post(
            ALIPAY,
            &overseas(&krw, "a-2", &today, Some(("KRW", 10_000))),
        )
        .await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(
        r["amountInfo"],
        json!({"currency": "KRW", "totAmount": 10000})
    );
    let s = c.state(&krw).await;
    assert_eq!(
        (s["statusCode"].as_str(), s["remainingAmount"].as_u64()),
        (Some("TS06"), Some(20_000))
    );

    // Currency mismatch, over-cancel, wrong channel, unknown payment.
    let r = c
        .post(ALIPAY, &overseas(&krw, "a-3", &today, Some(("USD", 100))))
        .await;
    assert_eq!(res_cd(&r), "P006", "{r}");
    let r = c
        .post(
            ALIPAY,
            &overseas(&krw, "a-4", &today, Some(("KRW", 20_001))),
        )
        .await;
    assert_eq!(res_cd(&r), "P003", "{r}");
    let card = c.payment("card", 1_000, "KRW").await;
    assert_eq!(
        res_cd(&c.post(ALIPAY, &overseas(&card, "a-5", &today, None)).await),
        "P005"
    );
    let wechat = c.payment("wechat", 1_000, "KRW").await;
    assert_eq!(
        res_cd(
            &c.post(ALIPAY, &overseas(&wechat, "a-6", &today, None))
                .await
        ),
        "P005"
    );
    let r = c
        .post(
            ALIPAY,
            &overseas("SBP00000000000000000", "a-7", &today, None),
        )
        .await;
    assert_eq!(res_cd(&r), "P001");

    // The rest, then nothing left.
    let r = c.post(ALIPAY, &overseas(&krw, "a-8", &today, None)).await;
    assert_eq!(r["amountInfo"]["totAmount"], json!(20_000));
    assert_eq!(
        res_cd(&c.post(ALIPAY, &overseas(&krw, "a-9", &today, None)).await),
        "P002"
    );
}

#[tokio::test]
async fn alipay_and_wechat_validation() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    for path in [ALIPAY, WECHAT] {
        let channel = if path == ALIPAY { "alipay" } else { "wechat" };
        let pg = c.payment(channel, 10_000, "KRW").await;
        let k = |s: &str| format!("{channel}-{s}");
        let code = |v: Value| {
            let c = c.clone();
            async move { res_cd(&c.post(path, &v).await).to_owned() }
        };
        // V004: only 40 and 32 here.
        for bad in ["33", "20", "51"] {
            let mut r = overseas(&pg, &k("o-v4"), &today, None);
            r["reviseTypeCode"] = json!(bad);
            assert_eq!(code(r).await, "V004", "{path} {bad}");
        }
        // V005: amountInfo rules.
        let mut r = overseas(&pg, &k("o-v5"), &today, None);
        r["amountInfo"] = json!({"currency": "KRW", "totAmount": 100});
        assert_eq!(code(r).await, "V005", "40 with amountInfo");
        let mut r = overseas(&pg, &k("o-v5"), &today, Some(("KRW", 100)));
        r.as_object_mut().expect("object").remove("amountInfo");
        assert_eq!(code(r).await, "V005", "32 without amountInfo");
        for bad in [
            json!({"currency": "KRW", "totAmount": 12.5}),
            json!({"currency": "KRW", "totAmount": "100"}),
            json!({"currency": "KRW", "totAmount": 0}),
            json!({"currency": "KRW"}),
            json!({"totAmount": 100}),
            json!({"currency": "EUR", "totAmount": 100}),
        ] {
            let mut r = overseas(&pg, &k("o-v5"), &today, Some(("KRW", 1)));
            r["amountInfo"] = bad.clone();
            assert_eq!(code(r).await, "V005", "{path} {bad}");
        }
        // V002: pgCno may be 60 bytes here (unknown payment -> P001), not 61.
        let pg60 = "가".repeat(20);
        assert_eq!(
            code(overseas(&pg60, &k("o-v2a"), &today, None)).await,
            "P001"
        );
        let pg61 = format!("{pg60}X");
        assert_eq!(
            code(overseas(&pg61, &k("o-v2b"), &today, None)).await,
            "V002"
        );
        let mut r = overseas(&pg, &k("o-v2c"), &today, None);
        r["memo"] = json!("메".repeat(134)); // 402 bytes
        assert_eq!(code(r).await, "V002");
        // V003, V006, V007, V008.
        let mut r = overseas(&pg, &k("o-v3"), &today, None);
        r["memo"] = json!("refund 🙏");
        assert_eq!(code(r).await, "V003");
        assert_eq!(
            code(overseas(&pg, &k("o-v6"), "20000101", None)).await,
            "V006"
        );
        let mut r = overseas(&pg, &k("o-v7"), &today, None);
        r["mallId"] = json!("T0000002");
        assert_eq!(code(r).await, "V007");
        let mut r = overseas(&pg, &k("o-v8"), &today, None);
        r["msgAuthValue"] = json!(mac(&pg, "other"));
        assert_eq!(code(r).await, "V008");
        // V001: missing field.
        let mut r = overseas(&pg, &k("o-v1"), &today, None);
        r.as_object_mut().expect("object").remove("cancelReqDate");
        assert_eq!(code(r).await, "V001");
        // Nothing happened to the payment.
        assert_eq!(c.state(&pg).await["remainingAmount"], json!(10_000));
    }
}

#[tokio::test]
async fn alipay_same_key_retry_returns_the_original_bytes() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("alipay", 10_000, "KRW").await;
    let req = overseas(&pg, "retry-1", &today, Some(("KRW", 4_000)));
    let (_, first) = c.post_raw(ALIPAY, req.to_string().into_bytes()).await;
    // Move the sandbox clock on, so a re-processed answer would differ in transactionDate.
    sb.set_clock(sb.clock_offset() + 5).expect("clock set");
    let (_, second) = c.post_raw(ALIPAY, req.to_string().into_bytes()).await;
    assert_eq!(first, second, "byte-for-byte the original response");
    let s = c.state(&pg).await;
    assert_eq!(
        s["cancels"].as_array().map(Vec::len),
        Some(1),
        "not cancelled again"
    );
    assert_eq!(s["remainingAmount"], json!(6_000));

    // A retry must keep the first attempt's date.
    let mut other_date = req.clone();
    other_date["cancelReqDate"] = json!("20000101");
    assert_eq!(res_cd(&c.post(ALIPAY, &other_date).await), "V006");

    // The same key for another payment on the same day is a duplicate.
    let pg2 = c.payment("alipay", 10_000, "KRW").await;
    let r = c
        .post(ALIPAY, &overseas(&pg2, "retry-1", &today, None))
        .await;
    assert_eq!(res_cd(&r), "D001", "{r}");

    // After Korea midnight, the documented retry (same key, same ORIGINAL
    // date) still gets the original answer ...
    sb.set_clock(86_400).expect("offset accepted");
    let (_, third) = c.post_raw(ALIPAY, req.to_string().into_bytes()).await;
    assert_eq!(first, third);
    // ... while a new key must carry the new date.
    let r = c
        .post(ALIPAY, &overseas(&pg2, "retry-2", &today, None))
        .await;
    assert_eq!(res_cd(&r), "V006", "{r}");
    let tomorrow = sb.korea_date();
    let r = c
        .post(ALIPAY, &overseas(&pg2, "retry-2", &tomorrow, None))
        .await;
    assert_eq!(res_cd(&r), "0000", "{r}");
}

#[tokio::test]
async fn alipay_retry_codes_do_not_cancel_and_the_retry_does() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("alipay", 8_000, "USD").await;
    // A212: not processed (the default for A210..A219).
    c.fault(json!({"path": ALIPAY, "kind": "resCd", "resCd": "A212"}))
        .await;
    let req = overseas(&pg, "a212", &today, Some(("USD", 1_203)));
    let r = c.post(ALIPAY, &req).await;
    assert_eq!(res_cd(&r), "A212");
    assert_eq!(r["shopTransactionId"], "a212");
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(8_000));
    // The documented retry (same key, same date) now goes through, once.
    let r = c.post(ALIPAY, &req).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["amountInfo"]["totAmount"], json!(1_203));
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(8_000 - 1_203));
}

#[tokio::test]
async fn wechat_accepts_then_notifies_until_acknowledged() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    // Fails twice (HTTP 500, then a non-0000 answer), then acknowledges.
    let receiver = Receiver::start(vec![
        (500, "oops"),
        (200, r#"{"resCd":"9999","resMsg":"try later"}"#),
    ])
    .await;
    let pg = c.payment("wechat", 12_000, "KRW").await;
    let mut req = overseas(&pg, "w-1", &today, None);
    req["notifyUrl"] = json!(receiver.url);
    let r = c.post(WECHAT, &req).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    let cancel = r["cancelPgCno"].as_str().expect("cancelPgCno").to_owned();
    assert_eq!(
        r["amountInfo"],
        json!({"currency": "KRW", "totAmount": 12000})
    );

    // Accepted, not applied yet.
    assert_eq!(c.state(&pg).await["statusCode"], "TS01");
    let f = c.post(FIND, &find(&pg, &cancel, "wf-1")).await;
    assert_eq!(res_cd(&f), "0000", "{f}");
    assert_eq!(f["cancelStatus"], "TS01");
    assert_eq!(
        f["amountInfo"],
        json!({"currency": "KRW", "totAmount": 12000})
    );
    assert_eq!(f["shopTransactionId"], "wf-1");

    // While it is pending the amount is held: another cancel finds nothing left.
    let r = c
        .post(WECHAT, &overseas(&pg, "w-2", &today, Some(("KRW", 1))))
        .await;
    assert_eq!(res_cd(&r), "P002", "{r}");

    let acked = eventually(Duration::from_secs(5), || {
        let sb = &sb;
        async move { sb.webhook_log().iter().any(|d| d.acknowledged) }
    })
    .await;
    assert!(acked, "{:?}", sb.webhook_log());
    // The sandbox logs a delivery once it has its answer and stops at the acknowledged
    // one, so with that entry logged the receiver has seen every delivery there will be.
    let log = sb.webhook_log();
    assert_eq!(receiver.count(), 3, "exactly three deliveries");
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(
        log.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(log[0].http_status, Some(500));
    assert!(!log[1].acknowledged && log[2].acknowledged);

    // The notice's body, as documented (amount, not totAmount).
    let hits = receiver.hits();
    let n = &hits[0];
    assert_eq!(n["resCd"], "0000");
    assert_eq!(n["mallId"], MALL);
    assert_eq!(n["pgCno"], pg.as_str());
    assert_eq!(n["cancelPgCno"], cancel.as_str());
    assert!(n["shopOrderNo"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(n["amountInfo"], json!({"currency": "KRW", "amount": 12000}));
    let date = n["cancelDate"].as_str().unwrap_or("");
    assert!(
        date.len() == 14 && date.bytes().all(|b| b.is_ascii_digit()),
        "{date}"
    );
    assert_eq!(hits[0], hits[2], "re-sent unchanged");

    // Applied now.
    let f = c.post(FIND, &find(&pg, &cancel, "wf-2")).await;
    assert_eq!(f["cancelStatus"], "TS02", "{f}");
    let s = c.state(&pg).await;
    assert_eq!(s["statusCode"], "TS02");
    assert_eq!(s["webhookDeliveries"].as_array().map(Vec::len), Some(3));
    let (_, all) = c.get("/sandbox/webhooks").await;
    assert_eq!(all["deliveries"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn wechat_partial_cancel_and_find_rules() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let receiver = Receiver::start(Vec::new()).await;
    let pg = c.payment("wechat", 10_000, "USD").await;
    let mut req = overseas(&pg, "wp-1", &today, Some(("USD", 2_500)));
    req["notifyUrl"] = json!(receiver.url);
    let (_, first) = c.post_raw(WECHAT, req.to_string().into_bytes()).await;
    let r: Value = serde_json::from_slice(&first).expect("json");
    assert_eq!(res_cd(&r), "0000", "{r}");
    let cancel = r["cancelPgCno"].as_str().expect("cancelPgCno").to_owned();

    // Same-key retry: the original acceptance, no second cancel.
    let (_, again) = c.post_raw(WECHAT, req.to_string().into_bytes()).await;
    assert_eq!(first, again);

    assert!(eventually(Duration::from_secs(5), || async { receiver.count() == 1 }).await);
    let f = c.post(FIND, &find(&pg, &cancel, "wpf-1")).await;
    assert_eq!(
        (res_cd(&f), f["cancelStatus"].as_str()),
        ("0000", Some("TS06")),
        "{f}"
    );
    assert_eq!(
        f["amountInfo"],
        json!({"currency": "USD", "totAmount": 2500})
    );
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(7_500));
    assert_eq!(
        receiver.hits()[0]["amountInfo"],
        json!({"currency": "USD", "amount": 2500})
    );

    // find: the key is an idempotency key too.
    let f = c.post(FIND, &find(&pg, &cancel, "wpf-1")).await;
    assert_eq!(res_cd(&f), "D001");
    // No msgAuthValue needed; a wrong one is refused.
    let mut signed = find(&pg, &cancel, "wpf-2");
    signed["msgAuthValue"] = json!(mac(&pg, "wpf-2"));
    assert_eq!(res_cd(&c.post(FIND, &signed).await), "0000");
    let mut wrong = find(&pg, &cancel, "wpf-3");
    wrong["msgAuthValue"] = json!(mac(&pg, "nope"));
    assert_eq!(res_cd(&c.post(FIND, &wrong).await), "V008");
    // Unknown cancel, unknown payment, not a WeChat payment, bad fields.
    assert_eq!(
        res_cd(
            &c.post(FIND, &find(&pg, "SBC00000000000000000", "wpf-4"))
                .await
        ),
        "P001"
    );
    assert_eq!(
        res_cd(&c.post(FIND, &find("SBP0", &cancel, "wpf-5")).await),
        "P001"
    );
    let card = c.payment("card", 100, "KRW").await;
    assert_eq!(
        res_cd(&c.post(FIND, &find(&card, &cancel, "wpf-6")).await),
        "P005"
    );
    let mut missing = find(&pg, &cancel, "wpf-7");
    missing
        .as_object_mut()
        .expect("object")
        .remove("cancelPgCno");
    assert_eq!(res_cd(&c.post(FIND, &missing).await), "V001");
    let mut bad_mall = find(&pg, &cancel, "wpf-8");
    bad_mall["mallId"] = json!("X");
    assert_eq!(res_cd(&c.post(FIND, &bad_mall).await), "V007");
    // WeChat errors carry resDetailMsg, URL-encoded.
    let e = c.post(FIND, &find(&pg, "SBC1", "wpf-9")).await;
    assert!(
        e["resDetailMsg"]
            .as_str()
            .is_some_and(|m| m.contains("%20")),
        "{e}"
    );
}

#[tokio::test]
async fn withheld_webhook_still_finalizes_and_find_answers() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let receiver = Receiver::start(Vec::new()).await;
    c.fault(json!({"path": WECHAT, "kind": "withholdWebhook", "times": 1}))
        .await;
    let pg = c.payment("wechat", 3_000, "KRW").await;
    let mut req = overseas(&pg, "wh-1", &today, None);
    req["notifyUrl"] = json!(receiver.url);
    let r = c.post(WECHAT, &req).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    let cancel = r["cancelPgCno"].as_str().expect("cancelPgCno").to_owned();
    let mut n = 0;
    let applied = eventually(Duration::from_secs(5), || {
        n += 1;
        let c = c.clone();
        let (pg, cancel) = (pg.clone(), cancel.clone());
        async move {
            let f = c.post(FIND, &find(&pg, &cancel, &format!("whf-{n}"))).await;
            f["cancelStatus"] == "TS02"
        }
    })
    .await;
    assert!(applied);
    // Applying it decided the notice (withheld: nothing logged, not even "not sent").
    assert!(sb.webhook_log().is_empty());
    let s = c.state(&pg).await;
    assert_eq!(s["cancels"][0]["webhookWithheld"], json!(true));

    // Only the next one was withheld: a second WeChat cancel notifies again.
    let pg2 = c.payment("wechat", 3_000, "KRW").await;
    let mut req = overseas(&pg2, "wh-2", &today, None);
    req["notifyUrl"] = json!(receiver.url);
    assert_eq!(res_cd(&c.post(WECHAT, &req).await), "0000");
    assert!(eventually(Duration::from_secs(5), || async { receiver.count() >= 1 }).await);
    // The first cancel was applied before the second was even sent: a notice for it
    // would have come first. The only notice is the second one's.
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(
        hits[0]["pgCno"],
        json!(pg2),
        "no notice for the withheld cancel"
    );
}

#[tokio::test]
async fn notices_go_to_loopback_http_only() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("wechat", 3_000, "KRW").await;
    let mut req = overseas(&pg, "nl-1", &today, None);
    req["notifyUrl"] = json!("http://merchant.example/kicc/notify");
    let r = c.post(WECHAT, &req).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert!(
        eventually(Duration::from_secs(5), || async {
            !sb.webhook_log().is_empty()
        })
        .await
    );
    let log = sb.webhook_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].attempt, 0);
    assert!(!log[0].acknowledged);
    assert!(
        log[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("loopback")),
        "{log:?}"
    );
    // The cancel is applied all the same.
    assert_eq!(c.state(&pg).await["statusCode"], "TS02");
}

#[tokio::test]
async fn unacknowledged_notices_stop_after_max_attempts() {
    let sb = start_with(fast_config().with_webhook_max_attempts(4)).await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let receiver = Receiver::start(vec![(503, ""); 10]).await;
    let pg = c.payment("wechat", 100, "KRW").await;
    let mut req = overseas(&pg, "mx-1", &today, None);
    req["notifyUrl"] = json!(receiver.url);
    assert_eq!(res_cd(&c.post(WECHAT, &req).await), "0000");
    // The fourth attempt is the last: once the sandbox has logged it, it sends no more.
    assert!(
        eventually(Duration::from_secs(10), || async {
            sb.webhook_log().len() >= 4
        })
        .await
    );
    assert_eq!(receiver.count(), 4);
    assert_eq!(
        sb.webhook_log()
            .iter()
            .map(|d| d.attempt)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(sb
        .webhook_log()
        .iter()
        .all(|d| !d.acknowledged && d.http_status == Some(503)));
}
