//! The Alipay client against the real sandbox, over the real hyper client on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

use std::time::Duration;

use kicc_alipay::{AlipayClient, CancelRequest};
use kicc_core::retry::RetryPolicy;
use kicc_core::*;
use kicc_sandbox::{
    Channel as SbChannel, Currency as SbCurrency, Fault, FaultKind, Sandbox, SandboxConfig,
    SandboxHandle, ALIPAY_REVISE_PATH,
};
use kicc_transport::{HyperTransport, RecordingTransport, Transport};

async fn sandbox() -> SandboxHandle {
    let config = SandboxConfig::default().with_timeout_fault_delay(Duration::from_secs(3));
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn merchant(sb: &SandboxHandle) -> Merchant {
    Merchant::new(
        Environment::Custom(BaseUrl::new(sb.base_url()).unwrap()),
        MallId::new(sb.mall_id()).unwrap(),
        SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY).unwrap(),
    )
}

fn client<T: Transport>(sb: &SandboxHandle, transport: T) -> AlipayClient<T> {
    AlipayClient::with_transport(merchant(sb), transport).with_retry_policy(
        RetryPolicy::builder()
            .max_attempts(4)
            .initial_backoff(Duration::from_millis(20))
            .max_backoff(Duration::from_millis(100))
            .deadline(Duration::from_secs(20))
            .processing_bound(Duration::from_secs(1))
            .lookup_not_found_code("R001")
            .build()
            .unwrap(),
    )
}

/// A transport whose attempts give up after 400 ms (the sandbox's timeout fault stalls 3 s).
fn fast_transport() -> RecordingTransport<HyperTransport> {
    RecordingTransport::new(
        HyperTransport::builder()
            .timeout(Duration::from_millis(400))
            .build()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cancel_in_krw() {
    let sb = sandbox().await;
    let pay = sb
        .create_payment(SbChannel::Alipay, 10_000, SbCurrency::Krw)
        .unwrap();
    let c = client(&sb, HyperTransport::new().unwrap());
    let req =
        CancelRequest::full(PgCno::new(&pay.pg_cno).unwrap()).memo(Memo::new("고객 요청").unwrap());
    let r = c.cancel(&req).await.unwrap();
    assert_eq!(r.res_cd, "0000");
    assert_eq!(r.pg_cno, pay.pg_cno);
    assert!(!r.cancel_pg_cno.is_empty());
    let state = sb.payment(&pay.pg_cno).unwrap();
    assert_eq!(
        (state.status_code.as_str(), state.remaining_amount),
        ("TS02", 0)
    );
    // Cancelling again is declined by the gateway: the cancel certainly did not happen twice.
    // The error names the request it answers (its key: KICC's request id) and the HTTP status.
    let key = ShopTransactionId::new("K-SECOND-CANCEL-0001").unwrap();
    let err = c.cancel_with_key(&req, key).await.unwrap_err();
    let gateway = err
        .gateway()
        .expect("a decline carries the gateway's answer");
    assert_eq!(
        (
            gateway.res_cd.as_str(),
            gateway.http_status,
            gateway.shop_transaction_id.as_str()
        ),
        ("P002", 200, "K-SECOND-CANCEL-0001"),
        "{err:?}"
    );
    assert!(err.certainly_not_cancelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usd_partial_cancel_in_cents() {
    let sb = sandbox().await;
    let pay = sb
        .create_payment(SbChannel::Alipay, 5_000, SbCurrency::Usd)
        .unwrap();
    let c = client(&sb, HyperTransport::new().unwrap());
    let req = CancelRequest::from_text(
        kicc_core::CancelText::new(&pay.pg_cno)
            .amount("12.03")
            .currency("USD"),
    )
    .unwrap();
    let r = c.cancel(&req).await.unwrap();
    let info = r.amount_info.unwrap();
    assert_eq!(
        (info.currency.as_str(), info.tot_amount),
        ("USD", Some(1203))
    );
    let state = sb.payment(&pay.pg_cno).unwrap();
    assert_eq!(
        (state.status_code.as_str(), state.remaining_amount),
        ("TS06", 5_000 - 1203)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_then_a212_are_retried_with_the_same_key_and_date_and_cancel_once() {
    let sb = sandbox().await;
    let pay = sb
        .create_payment(SbChannel::Alipay, 5_000, SbCurrency::Usd)
        .unwrap();
    // First attempt: processed, but the answer never comes in time. Second: A212.
    sb.inject_fault(Fault::new(ALIPAY_REVISE_PATH, FaultKind::Timeout))
        .unwrap();
    sb.inject_fault(Fault::new(
        ALIPAY_REVISE_PATH,
        FaultKind::ResCd("A212".into()),
    ))
    .unwrap();
    let transport = fast_transport();
    let c = client(&sb, transport.clone());
    let req = CancelRequest::from_text(
        kicc_core::CancelText::new(&pay.pg_cno)
            .amount("12.03")
            .currency("USD"),
    )
    .unwrap();
    let r = c.cancel(&req).await.unwrap();
    assert_eq!(r.amount_info.unwrap().tot_amount, Some(1203));
    let bodies = transport.sent_bodies();
    assert_eq!(bodies.len(), 3, "timeout, A212, success");
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "every retry resends identical bytes"
    );
    let state = sb.payment(&pay.pg_cno).unwrap();
    assert_eq!(state.cancels.len(), 1, "exactly one cancellation");
    assert_eq!(state.remaining_amount, 5_000 - 1203);
}

/// Sends through `inner`, and moves the sandbox's clock to the next Korea day right after the
/// first attempt, as if the retry happened after midnight.
struct MidnightAfterFirst<'a> {
    inner: RecordingTransport<HyperTransport>,
    sandbox: &'a SandboxHandle,
}

impl Transport for MidnightAfterFirst<'_> {
    async fn send(
        &self,
        request: kicc_transport::HttpRequest,
    ) -> Result<kicc_transport::HttpResponse, kicc_transport::TransportError> {
        let first = self.inner.sent().is_empty();
        let result = self.inner.send(request).await;
        if first {
            self.sandbox.set_clock(86_400).unwrap();
        }
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_korea_midnight_keeps_the_first_attempts_date() {
    let sb = sandbox().await;
    let pay = sb
        .create_payment(SbChannel::Alipay, 9_000, SbCurrency::Krw)
        .unwrap();
    let first_day = sb.korea_date();
    sb.inject_fault(Fault::new(ALIPAY_REVISE_PATH, FaultKind::Timeout))
        .unwrap();
    let recording = fast_transport();
    let transport = MidnightAfterFirst {
        inner: recording.clone(),
        sandbox: &sb,
    };
    let c = client(&sb, transport);
    let r = c
        .cancel(&CancelRequest::full(PgCno::new(&pay.pg_cno).unwrap()))
        .await
        .unwrap();
    assert_eq!(r.res_cd, "0000");
    assert_ne!(
        sb.korea_date(),
        first_day,
        "the sandbox is on the next day now"
    );
    let bodies = recording.sent_bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1]);
    assert!(bodies[1].contains(&format!("\"cancelReqDate\":\"{first_day}\"")));
    assert_eq!(sb.payment(&pay.pg_cno).unwrap().cancels.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_timeouts_end_ambiguous_with_the_key_to_query() {
    let sb = sandbox().await;
    let pay = sb
        .create_payment(SbChannel::Alipay, 9_000, SbCurrency::Krw)
        .unwrap();
    sb.inject_fault(Fault::new(ALIPAY_REVISE_PATH, FaultKind::Timeout).times(4))
        .unwrap();
    let c = client(&sb, fast_transport());
    let key = ShopTransactionId::new("AMBIGUOUS-1").unwrap();
    let err = c
        .cancel_with_key(&CancelRequest::full(PgCno::new(&pay.pg_cno).unwrap()), key)
        .await
        .unwrap_err();
    match err {
        Error::Ambiguous {
            shop_transaction_id,
            attempts,
            ..
        } => assert_eq!((shop_transaction_id.as_str(), attempts), ("AMBIGUOUS-1", 4)),
        other => panic!("{other:?}"),
    }
    // It did happen (the fault applies the cancel): exactly why the caller must query.
    assert_eq!(sb.payment(&pay.pg_cno).unwrap().status_code, "TS02");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_a_stored_message_returns_the_original_result() {
    let sb = sandbox().await;
    let pay = sb
        .create_payment(SbChannel::Alipay, 9_000, SbCurrency::Krw)
        .unwrap();
    let c = client(&sb, HyperTransport::new().unwrap());
    let req = CancelRequest::from_text(
        kicc_core::CancelText::new(&pay.pg_cno)
            .amount("1000")
            .currency("KRW"),
    )
    .unwrap();
    let message = req.message(
        c.merchant(),
        ShopTransactionId::new("STORED-1").unwrap(),
        std::time::SystemTime::now(),
    );
    let first = c.send(&message).await.unwrap();
    let again = c.send(&message).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(sb.payment(&pay.pg_cno).unwrap().remaining_amount, 8_000);
}
