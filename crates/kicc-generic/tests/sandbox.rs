//! The generic client against the real sandbox, over the real hyper client on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

use std::time::Duration;

use kicc_core::retry::RetryPolicy;
use kicc_core::*;
use kicc_generic::{CancelRequest, GenericClient, PaymentMethod, ReviseRequest};
use kicc_sandbox::{
    Channel as SbChannel, Currency as SbCurrency, Fault, FaultKind, Sandbox, SandboxConfig,
    SandboxHandle, GENERIC_REVISE_PATH,
};
use kicc_transport::{HyperTransport, RecordingTransport, Transport};

async fn sandbox(tls: bool) -> SandboxHandle {
    let config = SandboxConfig::default()
        .with_tls(tls)
        .with_timeout_fault_delay(Duration::from_secs(1));
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn client<T: Transport>(sb: &SandboxHandle, transport: T) -> GenericClient<T> {
    let merchant = Merchant::new(
        Environment::Custom(BaseUrl::new(sb.base_url()).unwrap()),
        MallId::new(sb.mall_id()).unwrap(),
        SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY).unwrap(),
    );
    GenericClient::with_transport(merchant, transport).with_retry_policy(
        RetryPolicy::builder()
            .max_attempts(4)
            .initial_backoff(Duration::from_millis(20))
            .max_backoff(Duration::from_millis(100))
            .deadline(Duration::from_secs(20))
            // At least the sandbox's stall: a look-up before it could miss a request in flight.
            .processing_bound(Duration::from_millis(1_500))
            .lookup_not_found_code("R001")
            .build()
            .unwrap(),
    )
}

fn recording(timeout: Duration) -> RecordingTransport<HyperTransport> {
    RecordingTransport::new(HyperTransport::builder().timeout(timeout).build().unwrap())
}

fn pg(s: &str) -> PgCno {
    PgCno::new(s).unwrap()
}

fn won(n: u64) -> Amount {
    Amount::new("amount", n).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_full_and_partial_and_transfer_partial() {
    let sb = sandbox(false).await;
    let c = client(&sb, HyperTransport::new().unwrap());

    let card = sb
        .create_payment(SbChannel::Card, 51_004, SbCurrency::Krw)
        .unwrap();
    let r = c
        .cancel(&CancelRequest::partial(pg(&card.pg_cno), PaymentMethod::Card, won(1_004)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (r.cancel_amount, r.remain_amount),
        (Some(1_004), Some(50_000))
    );
    assert_eq!(r.status_code, Some(TransactionStatus::PartiallyCancelled));
    let r = c
        .cancel(
            &CancelRequest::full(pg(&card.pg_cno))
                .unwrap()
                .reason(ReviseMessage::new("고객 변심").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.status_code, Some(TransactionStatus::Cancelled));
    assert_eq!(sb.payment(&card.pg_cno).unwrap().remaining_amount, 0);

    let transfer = sb
        .create_payment(SbChannel::Transfer, 30_000, SbCurrency::Krw)
        .unwrap();
    let req = CancelRequest::partial(
        pg(&transfer.pg_cno),
        PaymentMethod::BankTransfer,
        won(10_000),
    )
    .unwrap()
    .remain_amount(won(30_000))
    .unwrap();
    let r = c.cancel(&req).await.unwrap();
    assert_eq!(r.remain_amount, Some(20_000));
    // The sandbox checks remainAmount as the balance before the cancel: a stale one is refused.
    let stale = CancelRequest::partial(
        pg(&transfer.pg_cno),
        PaymentMethod::BankTransfer,
        won(1_000),
    )
    .unwrap()
    .remain_amount(won(30_000))
    .unwrap();
    let err = c.cancel(&stale).await.unwrap_err();
    assert_eq!(err.res_cd(), Some("P004"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_and_cash_receipt() {
    let sb = sandbox(false).await;
    let c = client(&sb, HyperTransport::new().unwrap());
    let auth = sb.create_authorized_payment(20_000).unwrap();
    let r = c
        .cancel(&CancelRequest::capture(pg(&auth.pg_cno), None).unwrap())
        .await
        .unwrap();
    assert_eq!(r.res_cd, "0000");
    assert!(!sb.payment(&auth.pg_cno).unwrap().capture_required);
    let receipt = sb
        .create_payment(SbChannel::CashReceipt, 7_000, SbCurrency::Krw)
        .unwrap();
    c.cancel(&CancelRequest::cash_receipt_partial(pg(&receipt.pg_cno), won(2_000)).unwrap())
        .await
        .unwrap();
    c.cancel(&CancelRequest::cash_receipt(pg(&receipt.pg_cno)).unwrap())
        .await
        .unwrap();
    assert_eq!(sb.payment(&receipt.pg_cno).unwrap().status_code, "TS02");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vtim_is_looked_up_and_cancels_exactly_once() {
    let sb = sandbox(false).await;
    let card = sb
        .create_payment(SbChannel::Card, 10_000, SbCurrency::Krw)
        .unwrap();
    // The instant refund times out at KICC after the cancel was made: answer VTIM.
    sb.inject_fault(Fault::new(
        GENERIC_REVISE_PATH,
        FaultKind::ResCd("VTIM".into()),
    ))
    .unwrap();
    let transport = recording(Duration::from_secs(5));
    let c = client(&sb, transport.clone());
    let r = c
        .cancel(&CancelRequest::partial(pg(&card.pg_cno), PaymentMethod::Card, won(2_500)).unwrap())
        .await
        .unwrap();
    assert_eq!(r.cancel_amount, Some(2_500));
    let sent = transport.sent();
    assert_eq!(sent.len(), 2);
    let first = ReviseRequest::from_json(sent[0].body()).unwrap();
    // The second request is the look-up of the first key, not a second cancel.
    assert_eq!(sent[1].uri().path(), "/api/trades/retrieveTransaction");
    let asked: serde_json::Value = serde_json::from_slice(sent[1].body()).unwrap();
    assert_eq!(
        asked["shopTransactionId"],
        first.head().shop_transaction_id().as_str()
    );
    assert_eq!(
        asked["transactionDate"],
        first.head().cancel_req_date().as_str()
    );
    assert_eq!(
        r.shop_transaction_id,
        first.head().shop_transaction_id().as_str()
    );
    let state = sb.payment(&card.pg_cno).unwrap();
    assert_eq!((state.cancels.len(), state.remaining_amount), (1, 7_500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_resolved_by_a_look_up_without_a_second_cancel() {
    let sb = sandbox(false).await;
    let card = sb
        .create_payment(SbChannel::Card, 10_000, SbCurrency::Krw)
        .unwrap();
    sb.inject_fault(Fault::new(GENERIC_REVISE_PATH, FaultKind::Timeout))
        .unwrap();
    let transport = recording(Duration::from_millis(400));
    let c = client(&sb, transport.clone());
    let r = c
        .cancel(&CancelRequest::full(pg(&card.pg_cno)).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status_code, Some(TransactionStatus::Cancelled));
    let sent = transport.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].uri().path(), "/api/trades/retrieveTransaction");
    assert_eq!(sb.payment(&card.pg_cno).unwrap().cancels.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declines_and_unprocessed_requests_are_certain() {
    let sb = sandbox(false).await;
    let card = sb
        .create_payment(SbChannel::Card, 1_000, SbCurrency::Krw)
        .unwrap();
    let c = client(&sb, HyperTransport::new().unwrap());
    let key = ShopTransactionId::new("OVER-1").unwrap();
    let err = c
        .cancel_with_key(
            &CancelRequest::partial(pg(&card.pg_cno), PaymentMethod::Card, won(1_001)).unwrap(),
            key,
        )
        .await
        .unwrap_err();
    match &err {
        Error::Declined(g) => {
            assert_eq!(g.res_cd, "P003");
            assert_eq!(g.shop_transaction_id, "OVER-1");
            assert!(!g.res_msg.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // HTTP 500 three times then success: retried (the 500s did not process the cancel).
    sb.inject_fault(Fault::new(GENERIC_REVISE_PATH, FaultKind::Http500).times(2))
        .unwrap();
    let r = c
        .cancel(&CancelRequest::full(pg(&card.pg_cno)).unwrap())
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(sb.payment(&card.pg_cno).unwrap().cancels.len(), 1);
    // Nothing listening: certainly not processed.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let merchant = Merchant::new(
        Environment::Custom(BaseUrl::new(format!("http://{dead}")).unwrap()),
        MallId::new("T0000001").unwrap(),
        SecretKey::new("x").unwrap(),
    );
    let c = GenericClient::with_transport(merchant, HyperTransport::new().unwrap())
        .with_retry_policy(
            RetryPolicy::builder()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_millis(10))
                .deadline(Duration::from_secs(5))
                .processing_bound(Duration::from_secs(1))
                .lookup_not_found_code("R001")
                .build()
                .unwrap(),
        );
    let err = c
        .cancel(&CancelRequest::full(pg("P1")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_tls_with_the_sandbox_root() {
    let sb = sandbox(true).await;
    assert!(sb.base_url().starts_with("https://"));
    let root = sb.root_certificate_pem().unwrap();
    let transport = HyperTransport::builder()
        .root_certificates_only(root.as_bytes())
        .build()
        .unwrap();
    let c = client(&sb, transport);
    let card = sb
        .create_payment(SbChannel::Card, 5_000, SbCurrency::Krw)
        .unwrap();
    let r = c
        .cancel(&CancelRequest::full(pg(&card.pg_cno)).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status_code, Some(TransactionStatus::Cancelled));
    // Without the root, the certificate is refused and nothing is sent.
    let untrusting = client(&sb, HyperTransport::new().unwrap())
        .with_retry_policy(RetryPolicy::builder().max_attempts(1).build().unwrap());
    let other = sb
        .create_payment(SbChannel::Card, 5_000, SbCurrency::Krw)
        .unwrap();
    let err = untrusting
        .cancel(&CancelRequest::full(pg(&other.pg_cno)).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(sb.payment(&other.pg_cno).unwrap().status_code, "TS01");
}
