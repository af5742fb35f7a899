//! The generic cancel endpoint over real HTTP: every validation code, the
//! business rules, idempotency by day, and the refundQueryFlag model.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use common::*;
use http::{Method, StatusCode};
use kicc_sandbox::GENERIC_REVISE_PATH as REVISE;
use serde_json::{json, Value};

#[test]
fn hmac_helper_matches_openssl() {
    // Vectors produced with:
    //   printf 'PG|KEY' | openssl dgst -sha256 -hmac 'sandbox-secret-key'
    //   printf 'SBP00000000000000001|KEY-1' | openssl dgst -sha256 -hmac 'sandbox-secret-key'
    assert_eq!(
        mac("PG", "KEY"),
        "148f1ae7d460facdcb9b299502d05905ff84b25591b0a6b9eb18c464bd585eaa"
    );
    assert_eq!(
        mac("SBP00000000000000001", "KEY-1"),
        "c08d52c46ef56b3cfaf8f4988241e07e0ed1c10337ac5189fa924c383df5aad2"
    );
}

#[tokio::test]
async fn full_cancel_answers_like_the_page() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let pg = c.payment("card", 51_004, "KRW").await;
    let today = c.today().await;
    let r = c
        .post(REVISE, &generic(&pg, "k-full-1", &today, "40", None))
        .await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["shopTransactionId"], "k-full-1");
    assert_eq!(r["mallId"], MALL);
    assert_eq!(r["oriPgCno"], pg.as_str());
    // Amounts are JSON strings in generic responses, like the page's example.
    assert_eq!(r["cancelAmount"], json!("51004"));
    assert_eq!(r["remainAmount"], json!("0"));
    assert_eq!(r["statusCode"], "TS02");
    assert!(r["shopOrderNo"].as_str().is_some_and(|s| !s.is_empty()));
    let cancel = r["cancelPgCno"].as_str().expect("cancelPgCno");
    assert!(cancel.len() <= 20);
    assert_eq!(r["transactionDate"].as_str().map(str::len), Some(14));
    assert!(r["transactionDate"]
        .as_str()
        .unwrap_or("")
        .starts_with(&today));
    assert_eq!(r["reviseInfo"]["payMethodTypeCode"], "11");
    assert_eq!(r["reviseInfo"]["cardInfo"]["couponAmount"], json!(0));

    let s = c.state(&pg).await;
    assert_eq!(s["statusCode"], "TS02");
    assert_eq!(s["remainingAmount"], json!(0));
    assert_eq!(s["cancels"][0]["cancelPgCno"], cancel);
    assert_eq!(s["cancels"][0]["shopTransactionId"], "k-full-1");
    assert_eq!(s["cancels"][0]["reviseTypeCode"], "40");
    assert_eq!(s["cancels"][0]["cancelReqDate"], today.as_str());

    // Cancelling the cancelled payment: P002, and nothing changes.
    let r = c
        .post(REVISE, &generic(&pg, "k-full-2", &today, "40", None))
        .await;
    assert_eq!(res_cd(&r), "P002", "{r}");
    assert_eq!(r["shopTransactionId"], "k-full-2");
    assert_eq!(
        c.state(&pg).await["cancels"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn partial_then_full_and_balance_rules() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let pg = c.payment("card", 10_000, "KRW").await;
    let today = c.today().await;

    // remainAmount is the cancellable balance BEFORE this cancel.
    let mut req = generic(&pg, "p-1", &today, "32", Some(3_000));
    req["remainAmount"] = json!(10_000);
    let r = c.post(REVISE, &req).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["cancelAmount"], "3000");
    assert_eq!(r["remainAmount"], "7000");
    assert_eq!(r["statusCode"], "TS06");
    assert_eq!(c.state(&pg).await["statusCode"], "TS06");

    // Sending the original total as remainAmount (a classic mistake): P004.
    let mut req = generic(&pg, "p-2", &today, "32", Some(1_000));
    req["remainAmount"] = json!(10_000);
    assert_eq!(res_cd(&c.post(REVISE, &req).await), "P004");

    // Over-cancel: P003.
    let r = c
        .post(REVISE, &generic(&pg, "p-3", &today, "32", Some(7_001)))
        .await;
    assert_eq!(res_cd(&r), "P003", "{r}");
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(7_000));

    // Full cancel of the rest.
    let r = c
        .post(REVISE, &generic(&pg, "p-4", &today, "40", None))
        .await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["cancelAmount"], "7000");
    assert_eq!(r["remainAmount"], "0");
    assert_eq!(r["statusCode"], "TS02");

    // Partial cancels reaching zero also give TS02.
    let pg2 = c.payment("transfer", 500, "KRW").await;
    let r = c
        .post(REVISE, &generic(&pg2, "p-5", &today, "33", Some(200)))
        .await;
    assert_eq!(
        (res_cd(&r), r["statusCode"].as_str()),
        ("0000", Some("TS06"))
    );
    assert_eq!(r["reviseInfo"]["payMethodTypeCode"], "21");
    let r = c
        .post(REVISE, &generic(&pg2, "p-6", &today, "33", Some(300)))
        .await;
    assert_eq!(
        (res_cd(&r), r["statusCode"].as_str()),
        ("0000", Some("TS02"))
    );
    let r = c
        .post(REVISE, &generic(&pg2, "p-7", &today, "33", Some(1)))
        .await;
    assert_eq!(res_cd(&r), "P002");

    // Unknown payment.
    let r = c
        .post(
            REVISE,
            &generic("SBP99999999999999999", "p-8", &today, "40", None),
        )
        .await;
    assert_eq!(res_cd(&r), "P001");
}

#[tokio::test]
async fn codes_must_fit_the_payment_method() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let card = c.payment("card", 1_000, "KRW").await;
    let transfer = c.payment("transfer", 1_000, "KRW").await;
    let mobile = c.payment("mobile", 1_000, "KRW").await;
    let receipt = c.payment("cash_receipt", 1_000, "KRW").await;
    let alipay = c.payment("alipay", 1_000, "KRW").await;
    let wechat = c.payment("wechat", 1_000, "KRW").await;
    let cases = [
        (&card, "33", Some(100)),
        (&card, "51", None),
        (&card, "52", Some(100)),
        (&card, "20", None), // already captured
        (&transfer, "32", Some(100)),
        (&mobile, "32", Some(100)),
        (&receipt, "40", None),
        (&receipt, "32", Some(100)),
        (&alipay, "40", None),
        (&wechat, "32", Some(100)),
    ];
    for (i, (pg, code, amount)) in cases.into_iter().enumerate() {
        let r = c
            .post(
                REVISE,
                &generic(pg, &format!("m-{i}"), &today, code, amount),
            )
            .await;
        assert_eq!(res_cd(&r), "P005", "{pg} {code}: {r}");
    }
    for pg in [&card, &transfer, &mobile, &receipt, &alipay, &wechat] {
        assert_eq!(c.state(pg).await["remainingAmount"], json!(1_000));
    }
    let r = c
        .post(REVISE, &generic(&mobile, "m-ok", &today, "33", Some(100)))
        .await;
    assert_eq!(res_cd(&r), "0000");
    assert_eq!(r["reviseInfo"]["payMethodTypeCode"], "31");
}

#[tokio::test]
async fn capture_of_an_authorized_card_payment() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let created = c
        .post(
            "/sandbox/payments",
            &json!({"channel": "card", "amount": 20_000, "currency": "KRW", "authorizedOnly": true}),
        )
        .await;
    let pg = created["pgCno"].as_str().expect("pgCno").to_owned();
    let s = c.state(&pg).await;
    assert_eq!(
        (s["statusCode"].as_str(), s["captureRequired"].as_bool()),
        (Some("TS01"), Some(true))
    );

    // Not capturable with a partial amount, not partially cancellable before capture.
    let r = c
        .post(REVISE, &generic(&pg, "c-0", &today, "20", Some(5_000)))
        .await;
    assert_eq!(res_cd(&r), "P005", "{r}");
    let r = c
        .post(REVISE, &generic(&pg, "c-1", &today, "32", Some(5_000)))
        .await;
    assert_eq!(res_cd(&r), "P005", "{r}");

    let r = c
        .post(REVISE, &generic(&pg, "c-2", &today, "20", None))
        .await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["statusCode"], "TS04");
    assert_eq!(r["cancelAmount"], "0");
    assert_eq!(r["remainAmount"], "20000");
    let s = c.state(&pg).await;
    assert_eq!(
        (s["statusCode"].as_str(), s["captureRequired"].as_bool()),
        (Some("TS04"), Some(false))
    );
    assert_eq!(s["cancels"][0]["reviseTypeCode"], "20");

    // Captured now: a second capture is not applicable; a partial cancel is.
    let r = c
        .post(REVISE, &generic(&pg, "c-3", &today, "20", None))
        .await;
    assert_eq!(res_cd(&r), "P005", "{r}");
    let r = c
        .post(REVISE, &generic(&pg, "c-4", &today, "32", Some(5_000)))
        .await;
    assert_eq!(
        (res_cd(&r), r["statusCode"].as_str()),
        ("0000", Some("TS06"))
    );

    // An authorization can also be voided whole.
    let pg2 = sb.create_authorized_payment(700).expect("created").pg_cno;
    let r = c
        .post(REVISE, &generic(&pg2, "c-5", &today, "40", None))
        .await;
    assert_eq!(
        (res_cd(&r), r["statusCode"].as_str()),
        ("0000", Some("TS02"))
    );
}

#[tokio::test]
async fn cash_receipt_partial_then_full() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("cash_receipt", 3_300, "KRW").await;
    let r = c
        .post(REVISE, &generic(&pg, "cr-1", &today, "52", Some(1_100)))
        .await;
    assert_eq!(
        (res_cd(&r), r["statusCode"].as_str()),
        ("0000", Some("TS06")),
        "{r}"
    );
    assert_eq!(r["reviseInfo"]["cashReceiptInfo"]["resCd"], "0000");
    // 51 cancels what is left; an amount other than that is refused.
    let r = c
        .post(REVISE, &generic(&pg, "cr-2", &today, "51", Some(1)))
        .await;
    assert_eq!(res_cd(&r), "P005", "{r}");
    let r = c
        .post(REVISE, &generic(&pg, "cr-3", &today, "51", None))
        .await;
    assert_eq!(
        (res_cd(&r), r["statusCode"].as_str()),
        ("0000", Some("TS02")),
        "{r}"
    );
    assert_eq!(r["cancelAmount"], "2200");
}

/// Sends `req` and returns its resCd.
async fn code_of(c: &TestClient, req: &Value) -> String {
    res_cd(&c.post(REVISE, req).await).to_owned()
}

#[tokio::test]
async fn every_validation_code() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 100_000, "KRW").await;
    let ok = |key: &str| generic(&pg, key, &today, "32", Some(10));

    // V001: not JSON (still HTTP 200 with a JSON body), not an object, missing, wrong type, empty.
    let (status, body) = c.post_raw(REVISE, b"{not json".to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).expect("JSON even for garbage");
    assert_eq!(res_cd(&v), "V001");
    assert_eq!(res_cd(&c.post(REVISE, &json!([1, 2])).await), "V001");
    for field in [
        "mallId",
        "shopTransactionId",
        "pgCno",
        "reviseTypeCode",
        "cancelReqDate",
        "msgAuthValue",
    ] {
        let mut r = ok("v1");
        r.as_object_mut().expect("object").remove(field);
        assert_eq!(code_of(&c, &r).await, "V001", "missing {field}");
    }
    let mut r = ok("v1");
    r["pgCno"] = json!(12345);
    assert_eq!(code_of(&c, &r).await, "V001");
    let mut r = ok("v1");
    r["shopTransactionId"] = json!("");
    assert_eq!(code_of(&c, &r).await, "V001");
    let mut r = ok("v1");
    r["refundQueryFlag"] = json!("X");
    assert_eq!(code_of(&c, &r).await, "V001");

    // V002 in UTF-8 bytes: 20 Hangul syllables are 60 bytes (at the limit), 21 are 63.
    let at_limit = "가".repeat(20);
    let r = c
        .post(REVISE, &generic(&pg, &at_limit, &today, "32", Some(10)))
        .await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["shopTransactionId"], at_limit.as_str());
    let over = "가".repeat(21);
    assert_eq!(
        code_of(&c, &generic(&pg, &over, &today, "32", Some(10))).await,
        "V002"
    );
    let mut r = ok("v2-msg-ok");
    r["reviseMessage"] = json!("취".repeat(33)); // 99 bytes
    assert_eq!(code_of(&c, &r).await, "0000");
    let mut r = ok("v2-msg-over");
    r["reviseMessage"] = json!("취".repeat(34)); // 102 bytes
    assert_eq!(code_of(&c, &r).await, "V002");
    // pgCno: 20 bytes on the generic endpoint.
    let long_pg = format!("{pg}X");
    assert_eq!(
        code_of(&c, &generic(&long_pg, "v2-pg", &today, "40", None)).await,
        "V002"
    );
    let mut r = ok("v2-flag");
    r["refundQueryFlag"] = json!("YY");
    assert_eq!(code_of(&c, &r).await, "V002");

    // V003: each forbidden character, control characters and emoji, in any string field.
    for (i, bad) in [
        "'",
        "\"",
        "<",
        ">",
        "\\",
        ";",
        "|",
        "&",
        "\r",
        "\n",
        "\t",
        "\u{7}",
        "😀",
        "❤\u{FE0F}",
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = ok(&format!("v3-{i}"));
        r["reviseMessage"] = json!(format!("환불{bad}요청"));
        assert_eq!(code_of(&c, &r).await, "V003", "{bad:?}");
    }
    let mut r = ok("v3-nested");
    r["basketUsed"] = json!("Y");
    r["basketInfo"] = json!({"productPgCno": "P1", "sellerId": "a&b"});
    assert_eq!(code_of(&c, &r).await, "V003");
    let mut r = ok("v3-unknown-field");
    r["extra"] = json!("<script>");
    assert_eq!(code_of(&c, &r).await, "V003");

    // V004: codes not allowed on the generic endpoint.
    for code in ["41", "10", "31", "xx"] {
        assert_eq!(
            code_of(&c, &generic(&pg, "v4", &today, code, None)).await,
            "V004",
            "{code}"
        );
    }

    // V005: partial codes need a positive integer amount; 40 takes none.
    assert_eq!(
        code_of(&c, &generic(&pg, "v5", &today, "32", None)).await,
        "V005"
    );
    assert_eq!(
        code_of(&c, &generic(&pg, "v5", &today, "40", Some(10))).await,
        "V005"
    );
    for bad in [
        json!(12.5),
        json!(10.0),
        json!("10"),
        json!(0),
        json!(-5),
        json!(true),
    ] {
        let mut r = ok("v5");
        r["amount"] = bad.clone();
        assert_eq!(code_of(&c, &r).await, "V005", "{bad}");
    }
    let mut r = ok("v5");
    r["remainAmount"] = json!("100000");
    assert_eq!(code_of(&c, &r).await, "V005");

    // V006: not yyyyMMdd, not a date, or not the current Korea date.
    for bad in ["2024-1-1", "20241301", "20240230", "２０２４０１０１"] {
        let mut r = ok("v6");
        r["cancelReqDate"] = json!(bad);
        let code = code_of(&c, &r).await;
        assert!(code == "V006" || code == "V002", "{bad}: {code}");
    }
    let mut r = ok("v6");
    r["cancelReqDate"] = json!("20240230");
    assert_eq!(code_of(&c, &r).await, "V006");
    assert_eq!(
        code_of(&c, &generic(&pg, "v6", "20000101", "32", Some(10))).await,
        "V006"
    );

    // V007: unknown mall.
    let mut r = ok("v7");
    r["mallId"] = json!("T9999999");
    assert_eq!(code_of(&c, &r).await, "V007");

    // V008: wrong MAC, MAC over another key, upper-case hex, base64.
    let mut r = ok("v8");
    r["msgAuthValue"] = json!(mac(&pg, "another-key"));
    assert_eq!(code_of(&c, &r).await, "V008");
    let mut r = ok("v8");
    r["msgAuthValue"] = json!(mac(&pg, "v8").to_uppercase());
    assert_eq!(code_of(&c, &r).await, "V008");
    let mut r = ok("v8");
    r["msgAuthValue"] = json!("FI8a59RgyvbLh5AqDwHvM6yXvVL8QwTyb7K+BG09SSo=");
    assert_eq!(code_of(&c, &r).await, "V008");

    // V009: taxInfo needs all three amounts.
    let mut r = ok("v9");
    r["taxInfo"] = json!({"taxationAmount": 9, "vatAmount": 1});
    assert_eq!(code_of(&c, &r).await, "V009");
    let mut r = ok("v9-ok");
    r["taxInfo"] = json!({"taxationAmount": 9, "taxFreeAmount": 0, "vatAmount": 1});
    assert_eq!(code_of(&c, &r).await, "0000");

    // V010: basketUsed and basketInfo must come together.
    let mut r = ok("v10");
    r["basketUsed"] = json!("Y");
    assert_eq!(code_of(&c, &r).await, "V010");
    let mut r = ok("v10");
    r["basketInfo"] = json!({"productPgCno": "P1", "sellerId": "S1"});
    assert_eq!(code_of(&c, &r).await, "V010");
    let mut r = ok("v10-ok");
    r["basketUsed"] = json!("Y");
    r["basketInfo"] = json!({"productPgCno": "P1", "sellerId": "S1"});
    assert_eq!(code_of(&c, &r).await, "0000");

    // None of the rejected requests cancelled anything; the four accepted ones did.
    let s = c.state(&pg).await;
    assert_eq!(s["cancels"].as_array().map(Vec::len), Some(4));
    assert_eq!(s["remainingAmount"], json!(100_000 - 40));
}

#[tokio::test]
async fn keys_are_unique_per_korea_day() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let pg = c.payment("card", 10_000, "KRW").await;
    let today = c.today().await;
    let r = c
        .post(REVISE, &generic(&pg, "dup-1", &today, "32", Some(100)))
        .await;
    assert_eq!(res_cd(&r), "0000");
    // Same key, same day: duplicate, even for a different request.
    let r = c
        .post(REVISE, &generic(&pg, "dup-1", &today, "32", Some(200)))
        .await;
    assert_eq!(res_cd(&r), "D001", "{r}");
    assert_eq!(r["shopTransactionId"], "dup-1");
    // A key used by a rejected business outcome is used up too.
    let r = c
        .post(REVISE, &generic(&pg, "dup-2", &today, "32", Some(999_999)))
        .await;
    assert_eq!(res_cd(&r), "P003");
    let r = c
        .post(REVISE, &generic(&pg, "dup-2", &today, "32", Some(1)))
        .await;
    assert_eq!(res_cd(&r), "D001");
    // A request refused by validation does not use its key.
    let r = c
        .post(REVISE, &generic(&pg, "dup-3", "20000101", "32", Some(1)))
        .await;
    assert_eq!(res_cd(&r), "V006");
    let r = c
        .post(REVISE, &generic(&pg, "dup-3", &today, "32", Some(1)))
        .await;
    assert_eq!(res_cd(&r), "0000");

    // Next Korea day: the key is free again, and today's date is the new one.
    let (status, clock) = c
        .send(
            Method::POST,
            "/sandbox/clock",
            json!({"offsetSeconds": 86_400}).to_string().into_bytes(),
        )
        .await
        .expect("answered");
    assert_eq!(status, StatusCode::OK);
    let tomorrow = c.today().await;
    assert_ne!(tomorrow, today, "{clock:?}");
    let r = c
        .post(REVISE, &generic(&pg, "dup-1", &today, "32", Some(100)))
        .await;
    assert_eq!(res_cd(&r), "V006", "yesterday's date is refused: {r}");
    let r = c
        .post(REVISE, &generic(&pg, "dup-1", &tomorrow, "32", Some(100)))
        .await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert!(r["transactionDate"]
        .as_str()
        .unwrap_or("")
        .starts_with(&tomorrow));
}

#[tokio::test]
async fn refund_query_flag_answers_the_lost_outcome() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    // The matching rule that also checks remainAmount (not the default).
    c.settings(json!({"refundQueryMatch": "pgCnoAmountRemain"}))
        .await;
    let pg = c.payment("card", 9_000, "KRW").await;
    let today = c.today().await;

    // The gateway processes the cancel but answers VTIM (apply is the default for VTIM).
    c.fault(json!({"path": REVISE, "kind": "resCd", "resCd": "VTIM"}))
        .await;
    let mut first = generic(&pg, "rq-1", &today, "32", Some(2_000));
    first["remainAmount"] = json!(9_000);
    let r = c.post(REVISE, &first).await;
    assert_eq!(res_cd(&r), "VTIM");
    assert_eq!(r["shopTransactionId"], "rq-1");
    let s = c.state(&pg).await;
    assert_eq!(s["remainingAmount"], json!(7_000));
    let cancel = s["cancels"][0]["cancelPgCno"].clone();

    // Resending with the same key is a duplicate ...
    let mut same_key = first.clone();
    same_key["refundQueryFlag"] = json!("Y");
    assert_eq!(res_cd(&c.post(REVISE, &same_key).await), "D001");

    // ... with a new key and refundQueryFlag Y it answers the earlier cancel.
    let mut query = generic(&pg, "rq-2", &today, "32", Some(2_000));
    query["remainAmount"] = json!(9_000);
    query["refundQueryFlag"] = json!("Y");
    let r = c.post(REVISE, &query).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(r["cancelPgCno"], cancel);
    assert_eq!(r["shopTransactionId"], "rq-2");
    assert_eq!(r["cancelAmount"], "2000");
    assert_eq!(r["remainAmount"], "7000");
    let s = c.state(&pg).await;
    assert_eq!(s["remainingAmount"], json!(7_000), "not cancelled twice");
    assert_eq!(s["cancels"].as_array().map(Vec::len), Some(1));

    // A second, equal partial refund whose first attempt was lost before
    // processing (VT00 with apply false): its remainAmount is the balance now,
    // which no earlier cancel had before it, so it is processed as new.
    c.fault(json!({"path": REVISE, "kind": "resCd", "resCd": "VT00", "apply": false}))
        .await;
    let mut second = generic(&pg, "rq-3", &today, "32", Some(2_000));
    second["remainAmount"] = json!(7_000);
    assert_eq!(res_cd(&c.post(REVISE, &second).await), "VT00");
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(7_000));
    let mut retry = generic(&pg, "rq-4", &today, "32", Some(2_000));
    retry["remainAmount"] = json!(7_000);
    retry["refundQueryFlag"] = json!("Y");
    let r = c.post(REVISE, &retry).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_ne!(r["cancelPgCno"], cancel);
    assert_eq!(r["remainAmount"], "5000");
    assert_eq!(
        c.state(&pg).await["cancels"].as_array().map(Vec::len),
        Some(2)
    );

    // refundQueryFlag Y for a cancel that never happened: processed normally.
    let pg2 = c.payment("card", 1_000, "KRW").await;
    let mut fresh = generic(&pg2, "rq-5", &today, "40", None);
    fresh["refundQueryFlag"] = json!("Y");
    let r = c.post(REVISE, &fresh).await;
    assert_eq!(
        (res_cd(&r), r["statusCode"].as_str()),
        ("0000", Some("TS02"))
    );
    // ... and asking again (new key) finds that full cancel instead of P002.
    let mut again = generic(&pg2, "rq-6", &today, "40", None);
    again["refundQueryFlag"] = json!("Y");
    let r2 = c.post(REVISE, &again).await;
    assert_eq!(res_cd(&r2), "0000", "{r2}");
    assert_eq!(r2["cancelPgCno"], r["cancelPgCno"]);
}

#[tokio::test]
async fn http_level_errors() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let (status, _) = c.post_raw("/api/trades/nope", b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = c
        .send(Method::GET, REVISE, Vec::new())
        .await
        .expect("answered");
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = c
        .send(Method::PUT, "/sandbox/payments", Vec::new())
        .await
        .expect("answered");
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let big = vec![b' '; kicc_sandbox::MAX_BODY_BYTES + 1];
    let (status, _) = c.post_raw(REVISE, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is read (and answered as a business outcome).
    let mut body = b"{}".to_vec();
    body.resize(kicc_sandbox::MAX_BODY_BYTES, b' ');
    let (status, bytes) = c.post_raw(REVISE, body).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(res_cd(&v), "V001");
}

#[tokio::test]
async fn identifiers_follow_the_seed() {
    let a = start_with(fast_config().with_seed(7)).await;
    let b = start_with(fast_config().with_seed(7)).await;
    let d = start_with(fast_config().with_seed(8)).await;
    let ids = |h: &kicc_sandbox::SandboxHandle| {
        (0..3)
            .map(|_| {
                h.create_payment(
                    kicc_sandbox::Channel::Card,
                    100,
                    kicc_sandbox::Currency::Krw,
                )
                .expect("created")
                .pg_cno
            })
            .collect::<Vec<_>>()
    };
    let (ia, ib, id) = (ids(&a), ids(&b), ids(&d));
    assert_eq!(ia, ib);
    assert_ne!(ia, id);
    assert!(ia.iter().all(|p| p.len() <= 20 && p.is_ascii()));
    // Reset restarts the sequence.
    a.reset();
    assert_eq!(ids(&a), ib);
    assert!(a.payment(&ia[0]).is_some(), "same id again after reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cancels_never_overdraw() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let pg = c.payment("card", 2_000, "KRW").await;
    let today = c.today().await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let c = c.clone();
            let req = generic(&pg, &format!("cc-{i}"), &today, "32", Some(100));
            tokio::spawn(async move { res_cd(&c.post(REVISE, &req).await).to_owned() })
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.expect("task"));
    }
    let ok = codes.iter().filter(|c| *c == "0000").count();
    assert_eq!(ok, 20, "{codes:?}");
    assert!(
        codes.iter().all(|c| c == "0000" || c == "P002"),
        "{codes:?}"
    );
    let s = c.state(&pg).await;
    assert_eq!(s["remainingAmount"], json!(0));
    assert_eq!(s["statusCode"], "TS02");
    assert_eq!(s["cancels"].as_array().map(Vec::len), Some(20));
}

#[tokio::test]
async fn configured_credentials_are_the_only_ones_accepted() {
    let sb = start_with(
        fast_config()
            .with_secret_key("another-secret")
            .with_mall_id("T5102001"),
    )
    .await;
    let c = TestClient::new(&sb);
    let pg = c.payment("card", 1_000, "KRW").await;
    let today = c.today().await;
    // Signed with the default sandbox key: refused.
    let mut req = generic(&pg, "cfg-1", &today, "40", None);
    req["mallId"] = json!("T5102001");
    assert_eq!(code_of(&c, &req).await, "V008");
    // The default mall is unknown to this sandbox.
    let req = generic(&pg, "cfg-2", &today, "40", None);
    assert_eq!(code_of(&c, &req).await, "V007");
    assert_eq!(sb.mall_id(), "T5102001");
    assert!(!format!("{sb:?}").contains("another-secret"));
}

#[tokio::test]
async fn invalid_configs_are_refused() {
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("literal");
    for (config, field) in [
        (fast_config().with_mall_id("T00000001"), "mall_id"),
        (fast_config().with_mall_id(""), "mall_id"),
        (fast_config().with_secret_key(""), "secret_key"),
        (
            fast_config().with_webhook_max_attempts(0),
            "webhook_max_attempts",
        ),
        (fast_config().with_clock_offset(i64::MAX), "clock_offset"),
    ] {
        match kicc_sandbox::Sandbox::start(addr, config).await {
            Err(kicc_sandbox::SandboxError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidConfig, got {other:?}"),
        }
    }
}
