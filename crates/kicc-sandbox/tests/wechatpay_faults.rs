//! Fault injection on the WeChat Pay Global revoke path, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod wechatpay_support;

use std::time::{Duration, Instant};

use http::StatusCode;
use kicc_sandbox::{
    Fault, FaultKind, WECHATPAY_REVERSE_BY_ID_PATH, WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH,
};
use serde_json::{json, Value};
use wechatpay_direct::VerifyError;
use wechatpay_support::*;

const BY_OUT_TEMPLATE: &str = WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH;

async fn setup() -> (kicc_sandbox::SandboxHandle, Wx, String) {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let order = wx.order(json!({})).await;
    let out = order["outTradeNo"].as_str().expect("outTradeNo").to_owned();
    (sb, wx, out)
}

fn trade_state(sb: &kicc_sandbox::SandboxHandle, id: &str) -> String {
    sb.payment(id)
        .and_then(|p| p.trade_state)
        .unwrap_or_default()
}

#[tokio::test]
async fn http500_is_not_applied_by_default_and_identical_resends_then_succeed() {
    let (sb, wx, out) = setup().await;
    wx.fault(json!({"path": BY_OUT_TEMPLATE, "kind": "http500", "times": 2}))
        .await;
    let now = sb.unix_time();
    let signed = wechatpay_direct::ReverseRequest::new(
        wechatpay_direct::OrderRef::out_trade_no(&out).unwrap(),
        common(),
    )
    .sign(&serial(), &merchant_key(), ts(now), &nonce())
    .unwrap();
    let base = wechatpay_direct::BaseUrl::new(wx.base.clone()).unwrap();
    for _ in 0..2 {
        let r = wx.send(signed.to_http_request(&base).unwrap()).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!r.headers.contains_key("wechatpay-signature"));
        assert_eq!(trade_state(&sb, &out), "SUCCESS");
    }
    // The same signed bytes, a third time: the fault is used up.
    wx.send(signed.to_http_request(&base).unwrap())
        .await
        .assert_revoked(now);
    let log = sb.wechatpay_requests();
    assert_eq!(log.len(), 3);
    assert!(log
        .iter()
        .all(|r| r.request_sha256 == log[0].request_sha256));
    assert_eq!(
        log.iter().map(|r| r.http_status).collect::<Vec<_>>(),
        [Some(500), Some(500), Some(204)]
    );
    assert_eq!(
        log.iter().map(|r| r.fault.as_deref()).collect::<Vec<_>>(),
        [Some("http500"), Some("http500"), None]
    );
    assert_eq!(
        log.iter().map(|r| r.processed).collect::<Vec<_>>(),
        [false, false, true]
    );
}

#[tokio::test]
async fn http500_with_apply_revokes_behind_the_error() {
    let (sb, wx, out) = setup().await;
    wx.fault(json!({"path": BY_OUT_TEMPLATE, "kind": "http500", "apply": true}))
        .await;
    let r = wx.revoke_out(&sb, &out).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(trade_state(&sb, &out), "REVOKED");
}

#[tokio::test]
async fn bad_signature_probe_and_old_timestamp_faults() {
    let (sb, wx, out) = setup().await;
    let now = sb.unix_time();

    // badSignature: processed, 204, valid Base64 that does not verify.
    wx.fault(json!({"path": BY_OUT_TEMPLATE, "kind": "badSignature"}))
        .await;
    let r = wx.revoke_out(&sb, &out).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(matches!(
        r.verify_at(now),
        Err(VerifyError::BadSignature { .. })
    ));
    assert_eq!(trade_state(&sb, &out), "REVOKED");

    // signatureProbe on an error answer: the code is still there.
    wx.fault(json!({"path": BY_OUT_TEMPLATE, "kind": "signatureProbe"}))
        .await;
    let r = wx.revoke_out(&sb, "NO-SUCH-ORDER").await;
    assert_eq!(r.code(), "PARAM_ERROR");
    let sig = r.headers["wechatpay-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(sig.starts_with("WECHATPAY/SIGNTEST/"), "{sig}");
    assert_eq!(r.verify_at(now), Err(VerifyError::SignatureProbe));

    // oldTimestamp: correctly signed ten minutes ago, so only the window fails.
    let second = wx.order(json!({})).await;
    wx.fault(json!({"path": BY_OUT_TEMPLATE, "kind": "oldTimestamp"}))
        .await;
    let r = wx
        .revoke_out(&sb, second["outTradeNo"].as_str().unwrap())
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let signed_at: i64 = r.headers["wechatpay-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let age = sb.unix_time() - signed_at;
    assert!((600..610).contains(&age), "{age}");
    assert!(matches!(
        r.verify_at(sb.unix_time()),
        Err(VerifyError::OutsideWindow { .. })
    ));
    r.verify_at(signed_at)
        .expect("the signature itself is right");
}

#[tokio::test]
async fn signature_faults_without_apply_forge_a_success() {
    let (sb, wx, out) = setup().await;
    wx.fault(json!({"path": BY_OUT_TEMPLATE, "kind": "badSignature", "apply": false}))
        .await;
    let r = wx.revoke_out(&sb, &out).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.verify_at(sb.unix_time()).is_err());
    assert_eq!(trade_state(&sb, &out), "SUCCESS", "the 204 was a forgery");
    assert!(!sb.wechatpay_requests()[0].processed);
}

#[tokio::test]
async fn code_faults_answer_signed_errors_for_the_next_n_calls() {
    let (sb, wx, out) = setup().await;
    let now = sb.unix_time();
    // (code, httpStatus given, expected status)
    let cases: &[(&str, Option<u16>, u16)] = &[
        ("SYSTEM_ERROR", None, 500),
        ("SYSTEM_ERROR", Some(400), 400),
        ("TRADE_ERROR", None, 403),
        ("INVALID_REQUEST", None, 400),
        ("REVERSE_EXPIRE", None, 400),
        ("INVALID_TRANSACTIONID", None, 400),
        ("PARAM_ERROR", None, 400),
        ("SOMETHING_NEW", Some(418), 418),
    ];
    for (code, status, expected) in cases {
        let mut fault = json!({"path": BY_OUT_TEMPLATE, "kind": "code", "code": code});
        if let Some(s) = status {
            fault["httpStatus"] = json!(s);
        }
        wx.fault(fault).await;
        let v = wx
            .revoke_out(&sb, &out)
            .await
            .assert_error(*expected, code, now);
        if *code == "PARAM_ERROR" {
            assert_eq!(v["detail"]["location"], "body", "{v}");
        }
        assert_eq!(trade_state(&sb, &out), "SUCCESS", "{code}: not applied");
    }
    wx.fault(json!({"path": BY_OUT_TEMPLATE, "kind": "code", "code": "SYSTEM_ERROR", "times": 2}))
        .await;
    wx.revoke_out(&sb, &out)
        .await
        .assert_error(500, "SYSTEM_ERROR", now);
    wx.revoke_out(&sb, &out)
        .await
        .assert_error(500, "SYSTEM_ERROR", now);
    wx.revoke_out(&sb, &out).await.assert_revoked(now);

    // With apply: revoked, yet the answer says SYSTEM_ERROR (query the order).
    let second = wx.order(json!({})).await;
    let out2 = second["outTradeNo"].as_str().unwrap();
    wx.fault(
        json!({"path": BY_OUT_TEMPLATE, "kind": "code", "code": "SYSTEM_ERROR", "apply": true}),
    )
    .await;
    wx.revoke_out(&sb, out2)
        .await
        .assert_error(500, "SYSTEM_ERROR", now);
    assert_eq!(trade_state(&sb, out2), "REVOKED");
}

#[tokio::test]
async fn timeout_stalls_then_answers_and_drop_closes_the_connection() {
    let (sb, wx, out) = setup().await;
    wx.fault(json!({"path": BY_OUT_TEMPLATE, "kind": "timeout"}))
        .await;
    let started = Instant::now();
    let r = wx.revoke_out(&sb, &out).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    r.assert_revoked(sb.unix_time());

    let second = wx.order(json!({})).await;
    let out2 = second["outTradeNo"].as_str().unwrap();
    wx.fault(json!({"path": BY_OUT_TEMPLATE, "kind": "drop"}))
        .await;
    let signed = wechatpay_direct::ReverseRequest::new(
        wechatpay_direct::OrderRef::out_trade_no(out2).unwrap(),
        common(),
    )
    .sign(&serial(), &merchant_key(), ts(sb.unix_time()), &nonce())
    .unwrap();
    let base = wechatpay_direct::BaseUrl::new(wx.base.clone()).unwrap();
    let err = wx.try_send(signed.to_http_request(&base).unwrap()).await;
    assert!(err.is_err(), "no answer: {err:?}");
    assert_eq!(trade_state(&sb, out2), "REVOKED", "drop applies by default");
    let log = sb.wechatpay_requests();
    assert_eq!(log.last().unwrap().http_status, None);
}

#[tokio::test]
async fn timeout_without_apply_processes_after_the_stall() {
    // A stall long enough that the check below, made once the revoke has arrived, falls
    // inside it even on a loaded machine.
    let sb = start_with(fast_config().with_timeout_fault_delay(Duration::from_secs(3))).await;
    let wx = Wx::new(&sb);
    let order = wx.order(json!({})).await;
    let out = order["outTradeNo"].as_str().expect("outTradeNo").to_owned();
    wx.fault(json!({"path": BY_OUT_TEMPLATE, "kind": "timeout", "apply": false}))
        .await;
    let revoke = wx.revoke_out(&sb, &out);
    let probe = async {
        // The event: the revoke arrived and took its fault, so its stall has begun.
        wx.wait_until_faults_taken().await;
        trade_state(&sb, &out)
    };
    let (r, during) = tokio::join!(revoke, probe);
    assert_eq!(during, "SUCCESS", "not processed during the stall");
    r.assert_revoked(sb.unix_time());
    assert_eq!(trade_state(&sb, &out), "REVOKED");
}

#[tokio::test]
async fn fault_paths_choose_which_revokes_they_hit() {
    let (sb, wx, out) = setup().await;
    let other = wx.order(json!({})).await;
    let other_out = other["outTradeNo"].as_str().unwrap().to_owned();
    let txn = other["transactionId"].as_str().unwrap().to_owned();
    let now = sb.unix_time();

    // A concrete path hits that order only.
    sb.inject_fault(Fault::new(
        format!("{BY_OUT}{out}/reverse"),
        FaultKind::WechatpayCode {
            code: "TRADE_ERROR".into(),
            http_status: None,
        },
    ))
    .unwrap();
    // The by-id template does not hit revokes by out_trade_no.
    sb.inject_fault(Fault::new(WECHATPAY_REVERSE_BY_ID_PATH, FaultKind::Http500))
        .unwrap();
    wx.revoke_out(&sb, &other_out).await.assert_revoked(now);
    wx.revoke_out(&sb, &out)
        .await
        .assert_error(403, "TRADE_ERROR", now);
    let r = wx.revoke_id(&sb, &txn).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    wx.revoke_out(&sb, &out).await.assert_revoked(now);

    let (status, v) = wx.admin_get("/sandbox/faults").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["faults"], json!([]));
}

#[tokio::test]
async fn misplaced_or_malformed_faults_are_refused() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let bad: Vec<Value> = vec![
        json!({"path": BY_OUT_TEMPLATE, "kind": "resCd", "resCd": "A212"}),
        json!({"path": BY_OUT_TEMPLATE, "kind": "withholdWebhook"}),
        json!({"path": "/api/trades/revise", "kind": "badSignature"}),
        json!({"path": "/api/trades/alipay/revise", "kind": "code", "code": "SYSTEM_ERROR"}),
        json!({"path": BY_OUT_TEMPLATE, "kind": "code"}),
        json!({"path": BY_OUT_TEMPLATE, "kind": "code", "code": "system error"}),
        json!({"path": BY_OUT_TEMPLATE, "kind": "code", "code": "SYSTEM_ERROR", "httpStatus": 204}),
        json!({"path": BY_OUT_TEMPLATE, "kind": "code", "code": "SYSTEM_ERROR", "httpStatus": "500"}),
        json!({"path": "/v3/global/micropay/transactions/id/1/reverse/x", "kind": "http500"}),
        json!({"path": BY_OUT_TEMPLATE, "kind": "nonsense"}),
    ];
    for fault in bad {
        let (status, v) = wx.admin_post("/sandbox/faults", &fault).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{fault}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains("fault")),
            "{v}"
        );
    }
    let (status, v) = wx
        .admin_post(
            "/sandbox/faults",
            &json!({"path": BY_OUT_TEMPLATE, "kind": "code", "code": "SYSTEM_ERROR", "httpStatus": 503, "times": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["faults"],
        json!([{"path": BY_OUT_TEMPLATE, "kind": "code", "code": "SYSTEM_ERROR",
                "httpStatus": 503, "times": 3, "apply": false}])
    );
}
