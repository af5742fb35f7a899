//! The order query and the revoke that decides by it, against kicc-sandbox
//! over real HTTP. The sandbox checks the signed canonical URL (query string
//! included) with its own code, and signs its answers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "hyper")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kicc_sandbox::{
    Currency, Fault, FaultKind, NewWechatpayOrder, Sandbox, SandboxConfig, SandboxHandle,
    WechatpayConfig, WechatpayMerchant, DEFAULT_WECHATPAY_MCHID, DEFAULT_WECHATPAY_SUB_MCHID,
    SANDBOX_MERCHANT_PRIVATE_KEY_PEM, SANDBOX_MERCHANT_SERIAL_NO, SANDBOX_PLATFORM_CERTIFICATE_PEM,
    WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH,
};
use wechatpay_direct::kicc_transport::HyperTransport;
use wechatpay_direct::{
    ApiErrorCode, BaseUrl, MerchantConfig, MerchantMode, OrderRef, QueryError, Resolution,
    RetryPolicy, ReverseCall, ReverseClient, RsaPrivateKey, SerialNo, Settled, TradeState,
    VerificationKeys,
};

async fn sandbox(wechatpay: WechatpayConfig) -> SandboxHandle {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    Sandbox::start(addr, SandboxConfig::default().with_wechatpay(wechatpay))
        .await
        .expect("sandbox starts")
}

fn client(sb: &SandboxHandle, mode: MerchantMode) -> ReverseClient<HyperTransport> {
    let mut keys = VerificationKeys::new();
    keys.add_certificate_pem(SANDBOX_PLATFORM_CERTIFICATE_PEM)
        .expect("certificate");
    let config = MerchantConfig::builder()
        .mode(mode)
        .serial_no(SerialNo::new(SANDBOX_MERCHANT_SERIAL_NO).expect("serial"))
        .private_key(Arc::new(
            RsaPrivateKey::from_pem(SANDBOX_MERCHANT_PRIVATE_KEY_PEM).unwrap(),
        ))
        .verification_keys(keys)
        .build()
        .expect("merchant config");
    ReverseClient::new(HyperTransport::new().expect("transport"), config)
        .with_base_urls(BaseUrl::new(sb.base_url()).expect("base"), None)
        .with_retry_policy(
            RetryPolicy::builder()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(20))
                .build()
                .expect("retry policy"),
        )
}

fn common() -> MerchantMode {
    MerchantMode::common(DEFAULT_WECHATPAY_MCHID).unwrap()
}

fn order(sb: &SandboxHandle, out_trade_no: Option<&str>) -> (String, String) {
    let mut new = NewWechatpayOrder::new(1_234, Currency::Usd).paid_seconds_ago(60);
    if let Some(no) = out_trade_no {
        new = new.out_trade_no(no);
    }
    let p = sb.create_wechatpay_order(new).expect("order");
    (p.out_trade_no.unwrap(), p.transaction_id.unwrap())
}

fn call(out: &str) -> ReverseCall {
    ReverseCall::without_timing_checks(OrderRef::out_trade_no(out).unwrap())
}

fn system_error(apply: bool) -> Fault {
    Fault::new(
        WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH,
        FaultKind::WechatpayCode {
            code: "SYSTEM_ERROR".into(),
            http_status: None,
        },
    )
    .apply(apply)
}

#[tokio::test]
async fn query_by_either_id_in_either_mode_is_verified_and_typed() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let c = client(&sb, common());
    // A percent-encoded id: the signed URL is the encoded one.
    let (out, txn) = order(&sb, Some("订单 1/2?&="));
    let by_out = c
        .query(&OrderRef::out_trade_no(&out).unwrap())
        .await
        .unwrap();
    assert_eq!(by_out.trade_state, TradeState::Success);
    assert_eq!(by_out.raw["transaction_id"], txn.as_str());
    assert_eq!(by_out.raw["out_trade_no"], out.as_str());
    assert_eq!(by_out.raw["amount"]["total"], 1_234);
    assert_eq!(by_out.raw["mchid"], DEFAULT_WECHATPAY_MCHID);
    let by_id = c
        .query(&OrderRef::transaction_id(&txn).unwrap())
        .await
        .unwrap();
    assert_eq!(by_id.raw, by_out.raw);
    let log = sb.wechatpay_requests();
    assert!(
        log[0].path.ends_with("?mchid=1900000109"),
        "{:?}",
        log[0].path
    );
    assert!(log.iter().all(|r| r.http_status == Some(200)));

    c.reverse(&call(&out)).await.unwrap();
    let after = c
        .query(&OrderRef::transaction_id(&txn).unwrap())
        .await
        .unwrap();
    assert_eq!(after.trade_state, TradeState::Revoked);

    let err = c
        .query(&OrderRef::out_trade_no("NO-SUCH-ORDER").unwrap())
        .await
        .unwrap_err();
    assert!(err.is_order_not_found(), "{err}");
    assert_eq!(err.api_code(), Some(&ApiErrorCode::OrderNotExist));

    let inst = sandbox(
        WechatpayConfig::default().with_merchant(WechatpayMerchant::sandbox_institutional()),
    )
    .await;
    let (out, _) = order(&inst, None);
    let mode =
        MerchantMode::institutional(DEFAULT_WECHATPAY_MCHID, DEFAULT_WECHATPAY_SUB_MCHID).unwrap();
    let o = client(&inst, mode)
        .query(&OrderRef::out_trade_no(&out).unwrap())
        .await
        .unwrap();
    assert_eq!(o.raw["sub_mchid"], DEFAULT_WECHATPAY_SUB_MCHID);
    assert!(inst.wechatpay_requests()[0]
        .path
        .ends_with("?sub_mchid=1900000100&sp_mchid=1900000109"));
    // The wrong mode for this sandbox: refused, typed, unknown state.
    let err = client(&inst, common())
        .query(&OrderRef::out_trade_no(&out).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Api(_)), "{err}");
}

#[tokio::test]
async fn system_error_then_the_query_finds_revoked_is_done() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let (out, _) = order(&sb, None);
    sb.inject_fault(system_error(true)).unwrap();
    let r = client(&sb, common()).reverse_and_settle(&call(&out)).await;
    assert!(
        matches!(r, Resolution::RevokedPerQuery(ref o) if o.trade_state == TradeState::Revoked),
        "{r:?}"
    );
    assert_eq!(r.settled(), Settled::Done);
    let log = sb.wechatpay_requests();
    assert_eq!(log.len(), 2, "one revoke (not resent), one query");
    assert_eq!(log[0].code.as_deref(), Some("SYSTEM_ERROR"));
    assert!(log[1]
        .path
        .starts_with("/v3/global/transactions/out-trade-no/"));
}

#[tokio::test]
async fn system_error_then_the_query_finds_it_paid_revokes_again() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let (out, _) = order(&sb, None);
    sb.inject_fault(system_error(false)).unwrap();
    let r = client(&sb, common()).reverse_and_settle(&call(&out)).await;
    assert!(matches!(r, Resolution::Revoked(_)), "{r:?}");
    let log = sb.wechatpay_requests();
    assert_eq!(log.len(), 3, "revoke, query, revoke");
    assert_ne!(
        log[0].request_sha256, log[2].request_sha256,
        "the second revoke is signed afresh"
    );
    assert_eq!(
        sb.payment(&out).unwrap().trade_state.as_deref(),
        Some("REVOKED")
    );
}

#[tokio::test]
async fn other_5xx_are_resent_three_times_then_queried_and_bounded() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let (out, _) = order(&sb, None);
    // Every revoke fails with 500, processed or not: three identical sends,
    // a query (SUCCESS), one fresh revoke with three sends, a query, stop.
    sb.inject_fault(
        Fault::new(WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH, FaultKind::Http500)
            .apply(false)
            .times(6),
    )
    .unwrap();
    let r = client(&sb, common()).reverse_and_settle(&call(&out)).await;
    assert!(
        matches!(r, Resolution::StillNotRevoked(ref o) if o.trade_state == TradeState::Success),
        "{r:?}"
    );
    assert_eq!(r.settled(), Settled::NotDone);
    let log = sb.wechatpay_requests();
    assert_eq!(log.len(), 8);
    assert!(log[..3]
        .windows(2)
        .all(|w| w[0].request_sha256 == w[1].request_sha256));
    assert!(log[3].path.starts_with("/v3/global/transactions/"));
    assert_ne!(log[0].request_sha256, log[4].request_sha256);
}

#[tokio::test]
async fn a_failed_query_is_never_a_revoke_outcome() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let (out, _) = order(&sb, None);
    sb.inject_fault(system_error(true)).unwrap();
    sb.inject_fault(Fault::new(
        kicc_sandbox::WECHATPAY_QUERY_BY_OUT_TRADE_NO_PATH,
        FaultKind::BadSignature,
    ))
    .unwrap();
    let r = client(&sb, common()).reverse_and_settle(&call(&out)).await;
    let Resolution::QueryFailed { query, .. } = &r else {
        panic!("{r:?}")
    };
    assert!(
        matches!(query, QueryError::Unverified { status: 200, .. }),
        "{query}"
    );
    assert_eq!(r.settled(), Settled::Unknown);
    assert!(r.describe().contains("outcome unknown"), "{}", r.describe());
}

#[tokio::test]
async fn a_lost_answer_settles_as_revoked_under_every_inferred_setting() {
    // The sandbox's inferred behaviours (a second revoke of a revoked order; nonce
    // replay) change how the identical retry after a lost answer is answered, never
    // the settled outcome: the query decides.
    let settings = [
        WechatpayConfig::default(),
        WechatpayConfig::default().with_second_revoke(kicc_sandbox::SecondRevoke::Error),
        WechatpayConfig::default().with_reject_replayed_nonce(true),
    ];
    for config in settings {
        let label = format!("{config:?}");
        let sb = sandbox(config).await;
        let (out, _) = order(&sb, None);
        sb.inject_fault(
            Fault::new(WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH, FaultKind::Drop).apply(true),
        )
        .unwrap();
        let r = client(&sb, common()).reverse_and_settle(&call(&out)).await;
        assert_eq!(r.settled(), Settled::Done, "{label}: {r:?}");
        assert_eq!(
            sb.payment(&out).unwrap().trade_state.as_deref(),
            Some("REVOKED")
        );
    }
}

#[tokio::test]
async fn every_row_of_the_table_against_the_sandbox() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let c = client(&sb, common());
    // (state the query reports, expected verdict, whether the order ends revoked)
    let rows: [(&str, Settled, &str); 7] = [
        ("REVOKED", Settled::Done, "RevokedPerQuery"),
        ("CLOSED", Settled::Done, "Closed"),
        ("SUCCESS", Settled::Done, "Revoked"),
        ("USERPAYING", Settled::Done, "Revoked"),
        ("NOTPAY", Settled::Done, "Revoked"),
        ("REFUND", Settled::NotDone, "RefundInstead"),
        ("PAYERROR", Settled::Unknown, "UnknownState"),
    ];
    for (state, settled, variant) in rows {
        let (out, _) = order(&sb, None);
        sb.set_wechatpay_trade_state(&out, state).unwrap();
        // SYSTEM_ERROR before anything happened: the query decides.
        sb.inject_fault(system_error(false)).unwrap();
        let r = c.reverse_and_settle(&call(&out)).await;
        assert_eq!(r.settled(), settled, "{state}: {r:?}");
        assert!(format!("{r:?}").starts_with(variant), "{state}: {r:?}");
    }
    // A state no client knows is never treated as done.
    let (out, _) = order(&sb, None);
    sb.set_wechatpay_trade_state(&out, "X_SOMETHING_NEW")
        .unwrap();
    sb.inject_fault(system_error(false)).unwrap();
    let r = c.reverse_and_settle(&call(&out)).await;
    let Resolution::UnknownState(o) = &r else {
        panic!("{r:?}")
    };
    assert_eq!(o.trade_state, TradeState::Unknown("X_SOMETHING_NEW".into()));
    assert_eq!(r.settled(), Settled::Unknown);
    // A hook for an order that does not exist, or a state out of the list: refused.
    assert!(sb.set_wechatpay_trade_state("NOPE", "REFUND").is_err());
    assert!(sb.set_wechatpay_trade_state(&out, "refund").is_err());
}

#[tokio::test]
async fn a_revoke_processed_and_never_heard_resumes_by_querying_not_resending() {
    use wechatpay_direct::kicc_transport::Transport as _;
    use wechatpay_direct::{AttemptRecord, Heard, SignedRequest};
    let sb = sandbox(WechatpayConfig::default()).await;
    let (out, _) = order(&sb, None);
    let c = client(&sb, common());
    // The first run signs, journals and sends the revoke; the sandbox processes it; the
    // process stops before it hears the answer.
    let signed = c.sign(&call(&out)).unwrap();
    let journaled = (
        signed.path().as_str().to_owned(),
        signed.body().clone(),
        signed.authorization().to_owned(),
    );
    let request = signed
        .to_http_request(&BaseUrl::new(sb.base_url()).unwrap())
        .unwrap();
    let _unheard = c.transport().send(request).await;
    assert_eq!(
        sb.payment(&out).unwrap().trade_state.as_deref(),
        Some("REVOKED")
    );
    // After the restart: the bytes and the record from the journal.
    let restored = SignedRequest::restore(
        http::Method::POST,
        Some(OrderRef::out_trade_no(&out).unwrap()),
        &journaled.0,
        journaled.1,
        &journaled.2,
    )
    .unwrap();
    let records = vec![AttemptRecord::new(
        1,
        std::time::SystemTime::now(),
        Heard::Nothing,
    )];
    let r = c
        .resume_and_settle(&call(&out), Some(restored), records)
        .await;
    assert!(
        matches!(r, Resolution::RevokedPerQuery(ref o) if o.trade_state == TradeState::Revoked),
        "{r:?}"
    );
    let log = sb.wechatpay_requests();
    assert_eq!(log.len(), 2, "the first revoke, then only the order query");
    assert!(log[1].path.starts_with("/v3/global/transactions/"));
}
