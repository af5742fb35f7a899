//! The sandbox's inferred WeChat Pay behaviours are settings, each tested both ways.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;
mod wechatpay_support;

use kicc_sandbox::{SecondRevoke, WechatpayConfig};
use serde_json::json;
use wechatpay_direct::{BaseUrl, OrderRef, ReverseRequest};
use wechatpay_support::*;

#[tokio::test]
async fn second_revoke_is_204_by_default_and_an_error_when_configured() {
    let sb = start().await;
    let wx = Wx::new(&sb);
    let order = wx.order(json!({"paidSecondsAgo": 60})).await;
    let out = order["outTradeNo"].as_str().unwrap().to_owned();
    wx.revoke_out(&sb, &out)
        .await
        .assert_revoked(sb.unix_time());
    wx.revoke_out(&sb, &out)
        .await
        .assert_revoked(sb.unix_time());
    assert_eq!(wx.state(&out).await["reverseCalls"], 2);

    let sb =
        start_wechatpay(WechatpayConfig::default().with_second_revoke(SecondRevoke::Error)).await;
    let wx = Wx::new(&sb);
    let order = wx.order(json!({"paidSecondsAgo": 60})).await;
    let out = order["outTradeNo"].as_str().unwrap().to_owned();
    wx.revoke_out(&sb, &out)
        .await
        .assert_revoked(sb.unix_time());
    let v = wx
        .revoke_out(&sb, &out)
        .await
        .assert_error(400, "INVALID_REQUEST", sb.unix_time());
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("already been revoked"),
        "{v}"
    );
    let state = wx.state(&out).await;
    assert_eq!(state["tradeState"], "REVOKED");
    assert_eq!(state["reverseCalls"], 1);
}

#[tokio::test]
async fn a_replayed_nonce_is_accepted_by_default_and_refused_when_configured() {
    for reject in [false, true] {
        let sb =
            start_wechatpay(WechatpayConfig::default().with_reject_replayed_nonce(reject)).await;
        let wx = Wx::new(&sb);
        let order = wx.order(json!({"paidSecondsAgo": 60})).await;
        let out = order["outTradeNo"].as_str().unwrap().to_owned();
        let signed = ReverseRequest::new(OrderRef::out_trade_no(&out).unwrap(), common())
            .sign(&serial(), &merchant_key(), ts(sb.unix_time()), &nonce())
            .unwrap();
        let base = BaseUrl::new(wx.base.clone()).unwrap();
        wx.send(signed.to_http_request(&base).unwrap())
            .await
            .assert_revoked(sb.unix_time());
        let again = wx.send(signed.to_http_request(&base).unwrap()).await;
        if reject {
            let v = again.assert_error(401, "SIGN_ERROR", sb.unix_time());
            assert_eq!(v["detail"]["field"], "nonce_str", "{v}");
        } else {
            again.assert_revoked(sb.unix_time());
        }
    }
}
