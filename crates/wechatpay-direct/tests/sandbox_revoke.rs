//! `ReverseClient` over the real `HyperTransport` against kicc-sandbox's WeChat
//! Pay Global revoke endpoint, over real HTTP on loopback. The sandbox checks
//! the signature, the body and the order independently of this crate, and
//! signs its answers with its own (publicly known, sandbox-only) platform key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "hyper")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kicc_sandbox::{
    Currency, NewWechatpayOrder, Sandbox, SandboxConfig, SandboxHandle, WechatpayConfig,
    WechatpayMerchant, WechatpayRequestRecord, DEFAULT_WECHATPAY_MCHID,
    DEFAULT_WECHATPAY_SUB_MCHID, SANDBOX_MERCHANT_PRIVATE_KEY_PEM, SANDBOX_MERCHANT_SERIAL_NO,
    SANDBOX_PLATFORM_CERTIFICATE_PEM, SANDBOX_PLATFORM_CERTIFICATE_SERIAL,
    SANDBOX_PLATFORM_PRIVATE_KEY_PEM, SANDBOX_PLATFORM_PUBLIC_KEY_ID,
    SANDBOX_PLATFORM_PUBLIC_KEY_PEM, WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH,
};
use serde_json::json;
use wechatpay_direct::kicc_transport::HyperTransport;
use wechatpay_direct::{
    ApiErrorCode, BaseUrl, KeyKind, MaybeRevokedReason, MerchantConfig, MerchantMode, NextStep,
    OrderRef, RetryPolicy, ReverseCall, ReverseClient, ReverseError, ReverseOutcome, RsaPrivateKey,
    SerialNo, Timestamp, TimingViolation, VerificationKeys, VerifyError,
};

const BY_OUT: &str = WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH;

async fn sandbox(wechatpay: WechatpayConfig) -> SandboxHandle {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let config = SandboxConfig {
        timeout_fault_delay: Duration::from_millis(800),
        ..SandboxConfig::default()
    }
    .with_wechatpay(wechatpay);
    Sandbox::start(addr, config).await.expect("sandbox starts")
}

fn cert_keys() -> VerificationKeys {
    let mut keys = VerificationKeys::new();
    keys.add_certificate_pem(SANDBOX_PLATFORM_CERTIFICATE_PEM)
        .expect("sandbox platform certificate");
    keys
}

fn public_keys() -> VerificationKeys {
    let mut keys = VerificationKeys::new();
    keys.add_public_key_pem(
        SANDBOX_PLATFORM_PUBLIC_KEY_ID,
        SANDBOX_PLATFORM_PUBLIC_KEY_PEM,
    )
    .expect("sandbox platform public key");
    keys
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(40))
        .build()
        .expect("retry policy")
}

fn config_with(mode: MerchantMode, key_pem: &str, keys: VerificationKeys) -> MerchantConfig {
    MerchantConfig::builder()
        .mode(mode)
        .serial_no(SerialNo::new(SANDBOX_MERCHANT_SERIAL_NO).expect("serial"))
        .private_key(Arc::new(RsaPrivateKey::from_pem(key_pem).expect("key")))
        .verification_keys(keys)
        .build()
        .expect("merchant config")
}

fn common() -> MerchantMode {
    MerchantMode::common(DEFAULT_WECHATPAY_MCHID).expect("mchid")
}

fn client_for(sb: &SandboxHandle, config: MerchantConfig) -> ReverseClient<HyperTransport> {
    ReverseClient::new(HyperTransport::new().expect("transport"), config)
        .with_base_urls(BaseUrl::new(sb.base_url()).expect("base"), None)
        .with_retry_policy(fast_retries())
}

/// Common mode, sandbox merchant key, certificate-mode verification.
fn client(sb: &SandboxHandle) -> ReverseClient<HyperTransport> {
    client_for(
        sb,
        config_with(common(), SANDBOX_MERCHANT_PRIVATE_KEY_PEM, cert_keys()),
    )
}

/// An order paid a minute ago and the call that revokes it by `out_trade_no`.
fn order(sb: &SandboxHandle) -> (String, ReverseCall) {
    order_paid(sb, 60)
}

fn order_paid(sb: &SandboxHandle, seconds_ago: u64) -> (String, ReverseCall) {
    let p = sb
        .create_wechatpay_order(
            NewWechatpayOrder::new(1_000, Currency::Usd).paid_seconds_ago(seconds_ago),
        )
        .expect("order");
    let out = p.out_trade_no.expect("out_trade_no");
    let paid_at =
        Timestamp::from_unix_secs(u64::try_from(p.paid_at.expect("paid_at")).unwrap()).unwrap();
    let call = ReverseCall::new(OrderRef::out_trade_no(&out).unwrap(), paid_at);
    (out, call)
}

fn trade_state(sb: &SandboxHandle, id: &str) -> String {
    sb.payment(id)
        .and_then(|p| p.trade_state)
        .unwrap_or_default()
}

fn api_error(err: &ReverseError) -> &wechatpay_direct::ApiError {
    match err {
        ReverseError::Api(api) => api,
        ReverseError::RetriesExhausted { last, .. }
        | ReverseError::AfterAmbiguousAttempt { last, .. } => api_error(last),
        other => panic!("not an API error: {other:?}"),
    }
}

fn all_identical(log: &[WechatpayRequestRecord]) -> bool {
    log.windows(2)
        .all(|w| w[0].request_sha256 == w[1].request_sha256)
}

#[tokio::test]
async fn revoke_success_is_verified_with_the_platform_certificate() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let (out, call) = order(&sb);
    let outcome = client(&sb).reverse(&call).await.expect("revoked");
    let ReverseOutcome::Revoked(v) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(v.serial, SANDBOX_PLATFORM_CERTIFICATE_SERIAL);
    assert_eq!(v.kind, KeyKind::PlatformCertificate);
    assert_eq!(trade_state(&sb, &out), "REVOKED");
    let log = sb.wechatpay_requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].order_id, out);
    assert_eq!(log[0].mchid.as_deref(), Some(DEFAULT_WECHATPAY_MCHID));
}

#[tokio::test]
async fn public_key_mode_and_a_client_holding_both_keys() {
    let sb = sandbox(WechatpayConfig::default().public_key_mode()).await;
    let (_, call) = order(&sb);
    let pk = client_for(
        &sb,
        config_with(common(), SANDBOX_MERCHANT_PRIVATE_KEY_PEM, public_keys()),
    );
    let ReverseOutcome::Revoked(v) = pk.reverse(&call).await.expect("revoked") else {
        panic!("not revoked")
    };
    assert_eq!(v.kind, KeyKind::WechatpayPublicKey);
    assert_eq!(v.serial, SANDBOX_PLATFORM_PUBLIC_KEY_ID);

    // A certificate-only client does not trust an unknown serial.
    let (_, call) = order(&sb);
    let out = client(&sb).reverse(&call).await.expect("a 2xx");
    assert!(matches!(
        out.verification_error(),
        Some(VerifyError::UnknownSerial { .. })
    ));

    // During a switch a client holds both, and each sandbox mode verifies.
    let cert_sb = sandbox(WechatpayConfig::default()).await;
    for s in [&sb, &cert_sb] {
        let mut keys = cert_keys();
        keys.add_public_key_pem(
            SANDBOX_PLATFORM_PUBLIC_KEY_ID,
            SANDBOX_PLATFORM_PUBLIC_KEY_PEM,
        )
        .unwrap();
        let both = client_for(
            s,
            config_with(common(), SANDBOX_MERCHANT_PRIVATE_KEY_PEM, keys),
        );
        let (_, call) = order(s);
        assert!(both.reverse(&call).await.expect("revoked").is_revoked());
    }
}

#[tokio::test]
async fn institutional_mode_by_transaction_id() {
    let sb = sandbox(
        WechatpayConfig::default().with_merchant(WechatpayMerchant::sandbox_institutional()),
    )
    .await;
    let p = sb
        .create_wechatpay_order(NewWechatpayOrder::new(10, Currency::Krw).paid_seconds_ago(30))
        .unwrap();
    let txn = p.transaction_id.unwrap();
    let mode =
        MerchantMode::institutional(DEFAULT_WECHATPAY_MCHID, DEFAULT_WECHATPAY_SUB_MCHID).unwrap();
    let c = client_for(
        &sb,
        config_with(mode, SANDBOX_MERCHANT_PRIVATE_KEY_PEM, cert_keys()),
    );
    let call = ReverseCall::without_timing_checks(OrderRef::transaction_id(&txn).unwrap());
    assert!(c.reverse(&call).await.unwrap().is_revoked());
    assert_eq!(trade_state(&sb, &txn), "REVOKED");
    // Revoking again is a verified success too (the sandbox answers 204 again).
    assert!(c.reverse(&call).await.unwrap().is_revoked());

    // Another sub-merchant: INVALID_REQUEST, definitely not revoked.
    let (_, call) = order(&sb);
    let other = MerchantMode::institutional(DEFAULT_WECHATPAY_MCHID, "1900000999").unwrap();
    let c = client_for(
        &sb,
        config_with(other, SANDBOX_MERCHANT_PRIVATE_KEY_PEM, cert_keys()),
    );
    let err = c.reverse(&call).await.unwrap_err();
    assert_eq!(api_error(&err).code, ApiErrorCode::InvalidRequest);
    assert_eq!(err.next_step(), NextStep::NotRevoked);
}

#[tokio::test]
async fn each_error_code_is_typed_with_what_to_do_next() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let c = client(&sb);

    // REVERSE_EXPIRE from the sandbox's own rule (the client's timing check,
    // on by default, refuses to send at all).
    let (old, call) = order_paid(&sb, 8 * 86_400);
    let err = c.reverse(&call).await.unwrap_err();
    assert!(matches!(
        err,
        ReverseError::Timing(TimingViolation::TooLate { .. })
    ));
    assert!(sb.wechatpay_requests().is_empty(), "nothing was sent");
    let call = ReverseCall::without_timing_checks(OrderRef::out_trade_no(&old).unwrap());
    let err = c.reverse(&call).await.unwrap_err();
    let api = api_error(&err);
    assert_eq!((api.status, &api.code), (400, &ApiErrorCode::ReverseExpire));
    assert!(api.message.contains("7-day"), "{}", api.message);
    assert!(api.request_id.is_some());
    assert_eq!(err.next_step(), NextStep::NotRevoked);

    // INVALID_TRANSACTIONID: an unknown WeChat Pay order number.
    let call = ReverseCall::without_timing_checks(
        OrderRef::transaction_id("4200000000000000000000000000").unwrap(),
    );
    let err = c.reverse(&call).await.unwrap_err();
    assert_eq!(api_error(&err).code, ApiErrorCode::InvalidTransactionId);
    assert_eq!(err.next_step(), NextStep::NotRevoked);

    // PARAM_ERROR with its detail: an unknown out_trade_no.
    let call = ReverseCall::without_timing_checks(OrderRef::out_trade_no("NO-SUCH").unwrap());
    let err = c.reverse(&call).await.unwrap_err();
    let api = api_error(&err);
    assert_eq!(api.code, ApiErrorCode::ParamError);
    let d = api.detail.as_ref().expect("detail");
    assert_eq!(d.field.as_deref(), Some("out_trade_no"));
    assert_eq!(d.value.as_deref(), Some("NO-SUCH"));
    assert_eq!(d.location.as_deref(), Some("path"));
    assert!(d.issue.is_some());
    assert!(err.to_string().contains("field out_trade_no"), "{err}");
    assert_eq!(err.next_step(), NextStep::NotRevoked);

    // SIGN_ERROR: signed with a key the sandbox does not hold for this merchant.
    let wrong = client_for(
        &sb,
        config_with(common(), SANDBOX_PLATFORM_PRIVATE_KEY_PEM, cert_keys()),
    );
    let (out, call) = order(&sb);
    let err = wrong.reverse(&call).await.unwrap_err();
    let api = api_error(&err);
    assert_eq!((api.status, &api.code), (401, &ApiErrorCode::SignError));
    let d = api.detail.as_ref().expect("detail");
    assert_eq!(d.field.as_deref(), Some("signature"));
    assert!(d.raw["sign_information"]["truncated_sign_message"]
        .as_str()
        .is_some_and(|m| m.starts_with("POST\n/v3/global/micropay/transactions/out-trade-no/")));
    assert_eq!(err.next_step(), NextStep::NotRevoked);
    assert_eq!(trade_state(&sb, &out), "SUCCESS");

    // Codes only a fault produces: (code, httpStatus, next step).
    let cases = [
        (
            "TRADE_ERROR",
            None,
            ApiErrorCode::TradeError,
            NextStep::NotRevoked,
        ),
        (
            "INVALID_REQUEST",
            None,
            ApiErrorCode::InvalidRequest,
            NextStep::NotRevoked,
        ),
        (
            "SYSTEM_ERROR",
            Some(400),
            ApiErrorCode::SystemError,
            NextStep::QueryOrder,
        ),
    ];
    for (code, status, typed, step) in cases {
        sb.inject_fault(kicc_sandbox::Fault::new(
            BY_OUT,
            kicc_sandbox::FaultKind::WechatpayCode {
                code: code.to_owned(),
                http_status: status,
            },
        ))
        .unwrap();
        let err = c.reverse(&call).await.unwrap_err();
        let api = api_error(&err);
        assert_eq!(api.code, typed, "{code}");
        assert!(!api.message.is_empty());
        assert_eq!(err.next_step(), step, "{code}");
    }
    // SYSTEM_ERROR as WeChat Pay sends it (HTTP 500): not resent, but "query
    // the order" at once, as the revoke page says.
    sb.inject_fault(kicc_sandbox::Fault::new(
        BY_OUT,
        kicc_sandbox::FaultKind::WechatpayCode {
            code: "SYSTEM_ERROR".into(),
            http_status: None,
        },
    ))
    .unwrap();
    let before = sb.wechatpay_requests().len();
    let err = c.reverse(&call).await.unwrap_err();
    assert!(
        matches!(&err, ReverseError::Api(api) if api.status == 500),
        "{err:?}"
    );
    assert_eq!(api_error(&err).code, ApiErrorCode::SystemError);
    assert_eq!(err.next_step(), NextStep::QueryOrder);
    assert_eq!(sb.wechatpay_requests().len() - before, 1);
    assert_eq!(trade_state(&sb, &out), "SUCCESS");
}

#[tokio::test]
async fn a_5xx_is_retried_with_identical_signed_bytes_then_succeeds() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let (out, call) = order(&sb);
    sb.inject_fault(kicc_sandbox::Fault::new(BY_OUT, kicc_sandbox::FaultKind::Http500).times(2))
        .unwrap();
    let outcome = client(&sb).reverse(&call).await.expect("revoked");
    assert!(outcome.is_revoked(), "{outcome:?}");
    let log = sb.wechatpay_requests();
    assert_eq!(
        log.iter().map(|r| r.http_status).collect::<Vec<_>>(),
        [Some(500), Some(500), Some(204)]
    );
    assert!(all_identical(&log), "one signature, re-sent byte for byte");
    assert_eq!(log[0].nonce, log[2].nonce);
    assert_eq!(trade_state(&sb, &out), "REVOKED");
}

#[tokio::test]
async fn all_attempts_5xx_is_exhausted_and_nothing_is_revoked() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let (out, call) = order(&sb);
    sb.inject_fault(kicc_sandbox::Fault::new(BY_OUT, kicc_sandbox::FaultKind::Http500).times(3))
        .unwrap();
    let err = client(&sb).reverse(&call).await.unwrap_err();
    let ReverseError::RetriesExhausted {
        attempts,
        may_have_reached_server,
        last,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*attempts, *may_have_reached_server), (3, true));
    assert_eq!(last.http_status(), Some(500));
    assert_eq!(err.next_step(), NextStep::QueryOrder);
    let log = sb.wechatpay_requests();
    assert_eq!(log.len(), 3);
    assert!(all_identical(&log));
    assert_eq!(trade_state(&sb, &out), "SUCCESS");
}

#[tokio::test]
async fn an_unverified_2xx_is_maybe_revoked() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let c = client(&sb);
    let cases = [
        (kicc_sandbox::FaultKind::BadSignature, "bad"),
        (kicc_sandbox::FaultKind::SignatureProbe, "probe"),
        (kicc_sandbox::FaultKind::OldTimestamp, "old"),
    ];
    for (kind, name) in cases {
        let (out, call) = order(&sb);
        sb.inject_fault(kicc_sandbox::Fault::new(BY_OUT, kind))
            .unwrap();
        let outcome = c.reverse(&call).await.expect("a 2xx is not an error");
        let ReverseOutcome::MaybeRevoked {
            status,
            reason: MaybeRevokedReason::Unverified(e),
        } = &outcome
        else {
            panic!("{name}: {outcome:?}")
        };
        assert_eq!(*status, 204);
        match name {
            "bad" => assert!(matches!(e, VerifyError::BadSignature { .. }), "{e:?}"),
            "probe" => assert_eq!(*e, VerifyError::SignatureProbe),
            _ => assert!(matches!(e, VerifyError::OutsideWindow { .. }), "{e:?}"),
        }
        assert!(!outcome.is_revoked());
        // Querying would show the truth: the sandbox did revoke it.
        assert_eq!(trade_state(&sb, &out), "REVOKED", "{name}");
    }
    // A forged 204 (nothing done) looks the same to the client: hence "maybe".
    let (out, call) = order(&sb);
    sb.inject_fault(
        kicc_sandbox::Fault::new(BY_OUT, kicc_sandbox::FaultKind::BadSignature).apply(false),
    )
    .unwrap();
    let outcome = c.reverse(&call).await.unwrap();
    assert!(outcome.verification_error().is_some());
    assert_eq!(trade_state(&sb, &out), "SUCCESS");
}

#[tokio::test]
async fn the_backup_host_takes_over_when_the_primary_is_down() {
    let sb = sandbox(WechatpayConfig::default()).await;
    let (out, call) = order(&sb);
    // A loopback port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let c = client(&sb).with_base_urls(
        BaseUrl::new(format!("http://{dead}")).unwrap(),
        Some(BaseUrl::new(sb.base_url()).unwrap()),
    );
    assert!(c.reverse(&call).await.expect("revoked").is_revoked());
    assert_eq!(sb.wechatpay_requests().len(), 1, "only the backup got it");
    assert_eq!(trade_state(&sb, &out), "REVOKED");
}

#[tokio::test]
async fn a_lost_answer_is_retried_and_the_repeat_is_a_success() {
    let sb = sandbox(WechatpayConfig::default()).await;
    // The connection drops after the sandbox revoked: the retry's 204 confirms it.
    let (out, call) = order(&sb);
    sb.inject_fault(kicc_sandbox::Fault::new(
        BY_OUT,
        kicc_sandbox::FaultKind::Drop,
    ))
    .unwrap();
    assert!(client(&sb).reverse(&call).await.unwrap().is_revoked());
    assert_eq!(trade_state(&sb, &out), "REVOKED");
    let state = sb.payment(&out).unwrap();
    assert_eq!(state.reverse_calls, Some(2));

    // A client timeout shorter than the sandbox's stall: same story.
    let transport = HyperTransport::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let c = ReverseClient::new(
        transport,
        config_with(common(), SANDBOX_MERCHANT_PRIVATE_KEY_PEM, cert_keys()),
    )
    .with_base_urls(BaseUrl::new(sb.base_url()).unwrap(), None)
    .with_retry_policy(fast_retries());
    let (out, call) = order(&sb);
    sb.inject_fault(kicc_sandbox::Fault::new(
        BY_OUT,
        kicc_sandbox::FaultKind::Timeout,
    ))
    .unwrap();
    assert!(c.reverse(&call).await.unwrap().is_revoked());
    assert_eq!(trade_state(&sb, &out), "REVOKED");
    let log = sb.wechatpay_requests();
    let last_two = &log[log.len() - 2..];
    assert!(all_identical(last_two));
    assert_eq!(last_two[0].fault.as_deref(), Some("timeout"));
}

#[tokio::test]
async fn the_admin_api_sees_what_the_client_did() {
    // The same facts through the sandbox's HTTP admin API, as a user's own
    // test would read them.
    let sb = sandbox(WechatpayConfig::default()).await;
    let (out, call) = order(&sb);
    assert!(client(&sb).reverse(&call).await.unwrap().is_revoked());
    let transport = HyperTransport::new().unwrap();
    let url = format!("{}/sandbox/payments/{out}", sb.base_url());
    let req = http::Request::get(url).body(bytes::Bytes::new()).unwrap();
    let resp = wechatpay_direct::kicc_transport::Transport::send(&transport, req)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(v["tradeState"], "REVOKED");
    assert_eq!(v["reverseCalls"], 1);
    assert_eq!(v["channel"], json!("wechatpay"));
}
