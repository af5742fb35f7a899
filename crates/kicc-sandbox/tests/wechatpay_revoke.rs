//! The WeChat Pay Global revoke endpoint over real HTTP: every rule, with
//! requests signed by wechatpay-direct's signer and the committed sandbox
//! merchant key, and answers verified with the sandbox platform certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;
mod wechatpay_support;

use http::{Method, StatusCode};
use kicc_sandbox::{
    Channel, Currency, NewWechatpayOrder, WechatpayConfig, WechatpayMerchant,
    DEFAULT_WECHATPAY_MCHID, DEFAULT_WECHATPAY_SUB_MCHID, SANDBOX_PLATFORM_CERTIFICATE_SERIAL,
    SANDBOX_PLATFORM_PRIVATE_KEY_PEM, SANDBOX_PLATFORM_PUBLIC_KEY_ID,
};
use serde_json::{json, Value};
use wechatpay_direct::{verify_response, KeyKind, MerchantMode, OrderRef, RsaPrivateKey};
use wechatpay_support::*;

#[tokio::test]
async fn revoke_by_out_trade_no_is_a_signed_204_and_the_order_is_revoked() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let order = wx.order(json!({"paidSecondsAgo": 60})).await;
    let out = order["outTradeNo"].as_str().expect("outTradeNo").to_owned();
    let txn = order["transactionId"]
        .as_str()
        .expect("transactionId")
        .to_owned();
    assert_eq!(order["channel"], "wechatpay");
    assert_eq!(order["amount"], 1_000);
    assert!(order["pgCno"].as_str().is_some_and(|p| p.len() == 20));
    assert_eq!(txn.len(), 28);

    let before = wx.state(&txn).await;
    assert_eq!(before["tradeState"], "SUCCESS");
    assert_eq!(before["remainingAmount"], 1_000);

    let reply = wx.revoke_out(&sb, &out).await;
    let v = reply.assert_revoked(sb.unix_time());
    assert_eq!(v.serial, SANDBOX_PLATFORM_CERTIFICATE_SERIAL);
    assert_eq!(v.kind, KeyKind::PlatformCertificate);
    assert!(reply.headers.contains_key("request-id"));
    assert!(!reply.headers.contains_key("content-type"));

    for id in [txn.as_str(), out.as_str(), order["pgCno"].as_str().unwrap()] {
        let after = wx.state(id).await;
        assert_eq!(after["tradeState"], "REVOKED", "{id}");
        assert_eq!(after["statusCode"], "TS02");
        assert_eq!(after["remainingAmount"], 0);
        assert_eq!(after["reverseCalls"], 1);
        assert!(after["revokedAt"].as_i64().is_some());
    }
    let state = sb
        .payment(&txn)
        .expect("in-process lookup by transaction_id");
    assert_eq!(state.trade_state.as_deref(), Some("REVOKED"));
}

#[tokio::test]
async fn revoke_by_transaction_id_then_again_is_204_both_times() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let p = sb
        .create_wechatpay_order(NewWechatpayOrder::new(5_000, Currency::Krw))
        .expect("created");
    let txn = p.transaction_id.clone().expect("transaction_id");
    wx.revoke_id(&sb, &txn).await.assert_revoked(sb.unix_time());
    // Documented: revoking a revoked order answers 204 again (idempotent).
    wx.revoke_id(&sb, &txn).await.assert_revoked(sb.unix_time());
    let state = sb.payment(&p.pg_cno).expect("state");
    assert_eq!(state.reverse_calls, Some(2));
    assert_eq!(state.remaining_amount, 0);
}

#[tokio::test]
async fn path_segments_are_percent_decoded_and_work_over_h2() {
    let sb = start().await;
    let wx = Wx::h2(&sb);
    let out = "订单 1/2?#%";
    let order = wx.order(json!({"outTradeNo": out})).await;
    assert_eq!(order["outTradeNo"], out);
    // The SDK encodes the segment: %E8%AE%A2%E5%8D%95%201%2F2%3F%23%25.
    let reply = wx.revoke_out(&sb, out).await;
    reply.assert_revoked(sb.unix_time());
    let log = sb.wechatpay_requests();
    let last = log.last().expect("logged");
    assert_eq!(last.order_id, out);
    assert_eq!(last.order_field, "out_trade_no");
    assert!(last.path.contains("%2F"), "{}", last.path);
    // The admin lookup decodes too.
    let state = wx.state("%E8%AE%A2%E5%8D%95%201%2F2%3F%23%25").await;
    assert_eq!(state["tradeState"], "REVOKED");
}

#[tokio::test]
async fn public_key_mode_announces_the_public_key_id() {
    let sb = start_wechatpay(WechatpayConfig::default().public_key_mode()).await;
    let wx = Wx::new(&sb);
    let order = wx.order(json!({})).await;
    let reply = wx
        .revoke_out(&sb, order["outTradeNo"].as_str().unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        reply.headers["wechatpay-serial"].to_str().unwrap(),
        SANDBOX_PLATFORM_PUBLIC_KEY_ID
    );
    let v = verify_response(
        &reply.headers,
        &reply.body,
        ts(sb.unix_time()),
        &public_key_keys(),
    )
    .expect("verifies with the public key");
    assert_eq!(v.kind, KeyKind::WechatpayPublicKey);
    // A certificate-mode client does not hold that serial: an error, not a pass.
    assert!(matches!(
        reply.verify_at(sb.unix_time()),
        Err(wechatpay_direct::VerifyError::UnknownSerial { .. })
    ));
}

#[tokio::test]
async fn institutional_mode() {
    let sb = start_wechatpay(
        WechatpayConfig::default().with_merchant(WechatpayMerchant::sandbox_institutional()),
    )
    .await;
    let wx = Wx::new(&sb);
    let now = sb.unix_time();
    let inst =
        MerchantMode::institutional(DEFAULT_WECHATPAY_MCHID, DEFAULT_WECHATPAY_SUB_MCHID).unwrap();
    let order = wx.order(json!({})).await;
    let out = order["outTradeNo"].as_str().unwrap();
    let oref = || OrderRef::out_trade_no(out).unwrap();

    // Common mode against an institutional merchant: no permission.
    let r = wx.revoke_at(oref(), common(), now).await;
    r.assert_error(400, "INVALID_REQUEST", now);
    // Another sub-merchant: no permission.
    let other = MerchantMode::institutional(DEFAULT_WECHATPAY_MCHID, "1900000999").unwrap();
    let r = wx.revoke_at(oref(), other, now).await;
    let v = r.assert_error(400, "INVALID_REQUEST", now);
    assert!(v["message"].as_str().unwrap().contains("sub_mchid"), "{v}");
    // sub_mchid missing.
    let r = wx
        .send(
            Raw::new(
                &sb,
                format!("{BY_OUT}{out}/reverse"),
                r#"{"sp_mchid":"1900000109"}"#,
            )
            .build(),
        )
        .await;
    let v = r.assert_error(400, "PARAM_ERROR", now);
    assert_eq!(v["detail"]["field"], "sub_mchid");
    assert_eq!(
        sb.payment(out).unwrap().trade_state.as_deref(),
        Some("SUCCESS")
    );

    wx.revoke_at(oref(), inst, now).await.assert_revoked(now);
    assert_eq!(
        sb.payment(out).unwrap().trade_state.as_deref(),
        Some("REVOKED")
    );
}

#[tokio::test]
async fn body_must_name_the_configured_merchant() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let now = sb.unix_time();
    let order = wx.order(json!({})).await;
    let target = format!("{BY_OUT}{}/reverse", order["outTradeNo"].as_str().unwrap());

    // (body, code, detail field)
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("not json", "PARAM_ERROR", Some("body")),
        ("[1,2]", "PARAM_ERROR", Some("body")),
        ("", "PARAM_ERROR", Some("body")),
        ("{}", "PARAM_ERROR", Some("mchid")),
        (r#"{"mchid":1900000109}"#, "PARAM_ERROR", Some("mchid")),
        (r#"{"mchid":""}"#, "PARAM_ERROR", Some("mchid")),
        (
            r#"{"mchid":"123456789012345678901234567890123"}"#,
            "PARAM_ERROR",
            Some("mchid"),
        ),
        (
            r#"{"mchid":"1900000109","sp_mchid":"1900000109","sub_mchid":"1"}"#,
            "PARAM_ERROR",
            Some("mchid"),
        ),
        (r#"{"mchid":"1900000999"}"#, "INVALID_REQUEST", None),
        (
            r#"{"sp_mchid":"1900000109","sub_mchid":"1900000100"}"#,
            "INVALID_REQUEST",
            None,
        ),
    ];
    for (body, code, field) in cases {
        let reply = wx.send(Raw::new(&sb, target.as_str(), body).build()).await;
        let v = reply.assert_error(400, code, now);
        match field {
            Some(f) => {
                assert_eq!(v["detail"]["field"], *f, "{body}: {v}");
                assert_eq!(v["detail"]["location"], "body", "{body}: {v}");
                assert!(v["detail"]["issue"].as_str().is_some(), "{v}");
                assert!(v["detail"]["value"].is_string(), "{v}");
            }
            None => assert!(v.get("detail").is_none(), "{body}: {v}"),
        }
    }
    assert_eq!(
        wx.state(order["transactionId"].as_str().unwrap()).await["tradeState"],
        "SUCCESS"
    );
    // Unknown extra fields are tolerated.
    let reply = wx
        .send(Raw::new(&sb, target.as_str(), r#"{"mchid":"1900000109","note":1}"#).build())
        .await;
    reply.assert_revoked(now);
}

#[tokio::test]
async fn unknown_orders_and_bad_path_parameters() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let now = sb.unix_time();
    let body = r#"{"mchid":"1900000109"}"#;

    let r = wx.revoke_id(&sb, "4200000000000000000000000000").await;
    let v = r.assert_error(400, "INVALID_TRANSACTIONID", now);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("4200000000000000000000000000"));

    // Documented: an unknown out_trade_no is PARAM_ERROR located in the path.
    let r = wx.revoke_out(&sb, "NO-SUCH-ORDER").await;
    let v = r.assert_error(400, "PARAM_ERROR", now);
    assert_eq!(
        v["detail"],
        json!({"field": "out_trade_no", "value": "NO-SUCH-ORDER",
               "issue": "names no order of this merchant", "location": "path"})
    );

    let long = "a".repeat(33);
    for (target, field, value) in [
        (format!("{BY_OUT}/reverse"), "out_trade_no", ""),
        (
            format!("{BY_ID}{long}/reverse"),
            "transaction_id",
            long.as_str(),
        ),
        (format!("{BY_OUT}%FF%FE/reverse"), "out_trade_no", "%FF%FE"),
        (format!("{BY_OUT}a%0Ab/reverse"), "out_trade_no", "a\nb"),
    ] {
        let r = wx.send(Raw::new(&sb, target.as_str(), body).build()).await;
        let v = r.assert_error(400, "PARAM_ERROR", now);
        assert_eq!(v["detail"]["field"], field, "{target}");
        assert_eq!(v["detail"]["value"], value, "{target}");
        assert_eq!(v["detail"]["location"], "path", "{target}");
    }

    // Not a revoke path / not POST: the sandbox's routing answers.
    let r = wx
        .send(Raw::new(&sb, format!("{BY_OUT}a/b/reverse"), body).build())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let mut raw = Raw::new(&sb, format!("{BY_OUT}a/reverse"), "");
    raw.method = Method::GET;
    let r = wx.send(raw.build()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "POST");
}

#[tokio::test]
async fn more_than_seven_days_after_payment_is_reverse_expire() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let old = wx.order(json!({"paidSecondsAgo": 8 * 86_400})).await;
    let fresh = wx.order(json!({"paidSecondsAgo": 7 * 86_400 - 60})).await;
    let now = sb.unix_time();
    let r = wx
        .revoke_out(&sb, old["outTradeNo"].as_str().unwrap())
        .await;
    let v = r.assert_error(400, "REVERSE_EXPIRE", now);
    assert!(v["message"].as_str().unwrap().contains("7-day"), "{v}");
    assert_eq!(
        wx.state(old["pgCno"].as_str().unwrap()).await["tradeState"],
        "SUCCESS"
    );
    wx.revoke_out(&sb, fresh["outTradeNo"].as_str().unwrap())
        .await
        .assert_revoked(now);

    // paidAt as a Unix time works the same way.
    let at = wx.order(json!({"paidAt": now - 8 * 86_400})).await;
    assert_eq!(at["paidAt"], now - 8 * 86_400);
    wx.revoke_id(&sb, at["transactionId"].as_str().unwrap())
        .await
        .assert_error(400, "REVERSE_EXPIRE", now);
}

#[tokio::test]
async fn the_sandbox_clock_drives_the_revoke_period_and_the_signature_window() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let order = wx.order(json!({})).await;
    let out = order["outTradeNo"].as_str().unwrap().to_owned();
    let real_now = sb.unix_time();
    let (status, _) = wx
        .admin_post("/sandbox/clock", &json!({"offsetSeconds": 8 * 86_400}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let later = sb.unix_time();
    assert!(later - real_now >= 8 * 86_400);

    // Signed with the real time: outside the window of the shifted clock.
    let r = wx
        .revoke_at(OrderRef::out_trade_no(&out).unwrap(), common(), real_now)
        .await;
    let v = r.assert_error(401, "SIGN_ERROR", later);
    assert_eq!(v["detail"]["field"], "timestamp");
    // Signed with the sandbox's time: eight days after payment.
    let r = wx
        .revoke_at(OrderRef::out_trade_no(&out).unwrap(), common(), later)
        .await;
    r.assert_error(400, "REVERSE_EXPIRE", later);
    // The answers' own timestamps follow the sandbox clock too.
    assert!(r.verify_at(real_now).is_err());
}

#[tokio::test]
async fn signature_errors_are_401_with_sign_information() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let order = wx.order(json!({})).await;
    let target = format!("{BY_OUT}{}/reverse", order["outTradeNo"].as_str().unwrap());
    let body = r#"{"mchid":"1900000109"}"#;
    let now = sb.unix_time();
    let check = |v: &Value, field: &str| {
        assert_eq!(v["detail"]["field"], field, "{v}");
        assert_eq!(v["detail"]["location"], "header", "{v}");
        assert!(v["detail"]["issue"].as_str().is_some(), "{v}");
    };

    // 6 minutes old, and 6 minutes ahead.
    for skew in [-360, 360] {
        let mut raw = Raw::new(&sb, target.as_str(), body);
        raw.timestamp = now + skew;
        let v = wx
            .send(raw.build())
            .await
            .assert_error(401, "SIGN_ERROR", now);
        check(&v, "timestamp");
        let info = &v["detail"]["sign_information"];
        assert_eq!(info["method"], "POST");
        assert_eq!(info["url"], target);
        let msg = info["truncated_sign_message"].as_str().unwrap();
        assert!(
            msg.starts_with(&format!("POST\n{target}\n{}\n", now + skew)),
            "{msg}"
        );
        assert!(msg.ends_with(&format!("\n{body}\n")), "{msg}");
        assert_eq!(info["sign_message_length"].as_u64(), Some(msg.len() as u64));
    }
    // 4 minutes old is inside the window.
    let mut raw = Raw::new(&sb, target.as_str(), "{}");
    raw.timestamp = now - 240;
    let v = wx
        .send(raw.build())
        .await
        .assert_error(400, "PARAM_ERROR", now);
    assert_eq!(
        v["detail"]["field"], "mchid",
        "passed the signature check: {v}"
    );

    // Signed with another key (the platform key).
    let mut raw = Raw::new(&sb, target.as_str(), body);
    raw.key = RsaPrivateKey::from_pem(SANDBOX_PLATFORM_PRIVATE_KEY_PEM).unwrap();
    let v = wx
        .send(raw.build())
        .await
        .assert_error(401, "SIGN_ERROR", now);
    check(&v, "signature");
    assert!(v["detail"]["sign_information"].is_object());

    // Signed over one body, sent with another.
    let raw = Raw::new(&sb, target.as_str(), body);
    let mut req = raw.build();
    *req.body_mut() = bytes::Bytes::from_static(br#"{"mchid": "1900000109"}"#);
    let v = wx.send(req).await.assert_error(401, "SIGN_ERROR", now);
    check(&v, "signature");

    // Signed for another path.
    let raw = Raw::new(&sb, format!("{BY_OUT}OTHER/reverse"), body);
    let mut req = raw.build();
    *req.uri_mut() = target.parse().unwrap();
    let v = wx.send(req).await.assert_error(401, "SIGN_ERROR", now);
    check(&v, "signature");

    // Unknown certificate serial; unknown merchant in Authorization.
    let mut raw = Raw::new(&sb, target.as_str(), body);
    raw.serial = "0123456789ABCDEF".into();
    let v = wx
        .send(raw.build())
        .await
        .assert_error(401, "SIGN_ERROR", now);
    check(&v, "serial_no");
    assert_eq!(v["detail"]["value"], "0123456789ABCDEF");
    let mut raw = Raw::new(&sb, target.as_str(), body);
    raw.mchid = "1900000999".into();
    let v = wx
        .send(raw.build())
        .await
        .assert_error(401, "SIGN_ERROR", now);
    check(&v, "mchid");

    // Missing, foreign-scheme, malformed Authorization; a probe as signature.
    for auth in [
        "Bearer abc",
        "WECHATPAY2-SHA256-RSA2048 mchid=\"1900000109\"",
        "WECHATPAY2-SHA256-RSA2048 mchid=1900000109",
        "WECHATPAY2-SHA256-RSA2048 mchid=\"1900000109\",nonce_str=\"a\",timestamp=\"1\",serial_no=\"3A4DB0C5A4DB0C5A4DB0C5A4DB0C5A4DB0C50002\",signature=\"WECHATPAY/SIGNTEST/x\"",
    ] {
        let mut raw = Raw::new(&sb, target.as_str(), body);
        raw.authorization = Some(auth.to_owned());
        let v = wx.send(raw.build()).await.assert_error(401, "SIGN_ERROR", now);
        assert!(v["detail"]["issue"].as_str().is_some(), "{auth}: {v}");
    }
    let raw = Raw::new(&sb, target.as_str(), body);
    let mut req = raw.build();
    req.headers_mut().remove("authorization");
    let v = wx.send(req).await.assert_error(401, "SIGN_ERROR", now);
    check(&v, "Authorization");

    // Milliseconds instead of seconds: refused by the SDK's own types, so sent raw.
    let mut raw = Raw::new(&sb, target.as_str(), body);
    raw.authorization = Some(format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"1900000109\",nonce_str=\"{}\",timestamp=\"{}000\",serial_no=\"3A4DB0C5A4DB0C5A4DB0C5A4DB0C5A4DB0C50002\",signature=\"AAAA\"",
        nonce(),
        now
    ));
    let v = wx
        .send(raw.build())
        .await
        .assert_error(401, "SIGN_ERROR", now);
    check(&v, "timestamp");

    assert_eq!(
        wx.state(order["pgCno"].as_str().unwrap()).await["tradeState"],
        "SUCCESS",
        "nothing was revoked"
    );
}

#[tokio::test]
async fn api_v3_headers_are_required() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let now = sb.unix_time();
    let order = wx.order(json!({})).await;
    let target = format!("{BY_OUT}{}/reverse", order["outTradeNo"].as_str().unwrap());
    let body = r#"{"mchid":"1900000109"}"#;
    let mut cases = Vec::new();
    let mut raw = Raw::new(&sb, target.as_str(), body);
    raw.user_agent = None;
    cases.push((raw, "User-Agent"));
    let mut raw = Raw::new(&sb, target.as_str(), body);
    raw.accept = None;
    cases.push((raw, "Accept"));
    let mut raw = Raw::new(&sb, target.as_str(), body);
    raw.accept = Some("text/html");
    cases.push((raw, "Accept"));
    let mut raw = Raw::new(&sb, target.as_str(), body);
    raw.content_type = Some("text/plain");
    cases.push((raw, "Content-Type"));
    let mut raw = Raw::new(&sb, target.as_str(), body);
    raw.content_type = None;
    cases.push((raw, "Content-Type"));
    for (raw, header) in cases {
        let v = wx
            .send(raw.build())
            .await
            .assert_error(400, "INVALID_REQUEST", now);
        assert!(v["message"].as_str().unwrap().contains(header), "{v}");
    }
    let mut raw = Raw::new(&sb, target.as_str(), body);
    raw.accept = Some("*/*");
    raw.content_type = Some("application/json; charset=utf-8");
    wx.send(raw.build()).await.assert_revoked(now);
}

#[tokio::test]
async fn admin_orders_and_the_request_log() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let bad = [
        json!({"channel": "wechatpay", "amount": 1, "paidAt": 1, "paidSecondsAgo": 1}),
        json!({"channel": "wechatpay", "amount": 1, "paidSecondsAgo": -5}),
        json!({"channel": "wechatpay", "amount": 1, "paidAt": "yesterday"}),
        json!({"channel": "wechatpay", "amount": 1, "outTradeNo": 7}),
        json!({"channel": "wechatpay", "amount": 1, "outTradeNo": "a".repeat(33)}),
        json!({"channel": "wechatpay", "amount": 0}),
        json!({"channel": "wechatpay", "amount": 1, "authorizedOnly": true}),
        json!({"channel": "card", "amount": 1, "outTradeNo": "X"}),
        json!({"channel": "alipay", "amount": 1, "paidSecondsAgo": 5}),
    ];
    for body in bad {
        let (status, v) = wx.admin_post("/sandbox/payments", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["error"].as_str().is_some(), "{v}");
    }
    wx.order(json!({"outTradeNo": "DUP-1"})).await;
    let (status, v) = wx
        .admin_post(
            "/sandbox/payments",
            &json!({"channel": "wechatpay", "amount": 1, "outTradeNo": "DUP-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("outTradeNo"), "{v}");

    // In-process creation through the generic helper works too.
    let p = sb
        .create_payment(Channel::WechatpayGlobal, 300, Currency::Usd)
        .unwrap();
    assert!(p.transaction_id.is_some() && p.out_trade_no.is_some() && p.paid_at.is_some());

    let (_, v) = wx
        .admin_get(&format!("/sandbox/payments/{}", p.pg_cno))
        .await;
    assert_eq!(v["channel"], "wechatpay");
    // The KICC endpoints refuse a WeChat Pay Global order.
    let kicc = common::TestClient::new(&sb);
    let today = kicc.today().await;
    let v = kicc
        .post(
            "/api/trades/revise",
            &common::generic(&p.pg_cno, "wx-on-kicc-1", &today, "40", None),
        )
        .await;
    assert_eq!(common::res_cd(&v), "P005", "{v}");
    let v = kicc
        .post(
            "/api/trades/wechatpay/revise",
            &common::overseas(&p.pg_cno, "wx-on-kicc-2", &today, None),
        )
        .await;
    assert_eq!(common::res_cd(&v), "P005", "{v}");

    // Every revoke request is logged, with a fingerprint of its bytes.
    let r = wx.revoke_out(&sb, "DUP-1").await;
    r.assert_revoked(sb.unix_time());
    let (status, log) = wx.admin_get("/sandbox/wechatpay/requests").await;
    assert_eq!(status, StatusCode::OK);
    let last = log["requests"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["orderId"], "DUP-1");
    assert_eq!(last["httpStatus"], 204);
    assert_eq!(last["mchid"], "1900000109");
    assert_eq!(last["processed"], true);
    assert_eq!(last["requestSha256"].as_str().unwrap().len(), 64);
    assert_eq!(last["body"], r#"{"mchid":"1900000109"}"#);
    // KICC payment JSON carries none of the WeChat Pay fields.
    let card = sb
        .create_payment(Channel::Card, 100, Currency::Krw)
        .unwrap();
    let (_, v) = wx
        .admin_get(&format!("/sandbox/payments/{}", card.pg_cno))
        .await;
    assert!(
        v.get("transactionId").is_none() && v.get("tradeState").is_none(),
        "{v}"
    );
    // Reset forgets the orders and the log.
    sb.reset();
    assert!(sb.wechatpay_requests().is_empty());
    assert!(sb.payment("DUP-1").is_none());
}
