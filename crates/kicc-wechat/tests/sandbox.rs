//! The WeChat Pay client against the real sandbox: accepted, then completed by webhook or by
//! the status query, over the real hyper client and a real loopback webhook receiver.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kicc_core::retry::RetryPolicy;
use kicc_core::*;
use kicc_sandbox::{
    Channel as SbChannel, Currency as SbCurrency, Fault, FaultKind, Sandbox, SandboxConfig,
    SandboxHandle, WECHAT_REVISE_PATH,
};
use kicc_transport::HyperTransport;
#[path = "../examples/webhook_server.rs"]
mod webhook_server;

use kicc_wechat::{
    CancelRequest, ResultSource, StatusQuery, WaitPolicy, WebhookInbox, WechatClient,
};

async fn sandbox() -> SandboxHandle {
    let config = SandboxConfig::default()
        .with_webhook_delay(Duration::from_millis(50))
        .with_webhook_retry_interval(Duration::from_millis(50));
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn client(sb: &SandboxHandle) -> WechatClient {
    let merchant = Merchant::new(
        Environment::Custom(BaseUrl::new(sb.base_url()).unwrap()),
        MallId::new(sb.mall_id()).unwrap(),
        SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY).unwrap(),
    );
    WechatClient::with_transport(merchant, HyperTransport::new().unwrap()).with_retry_policy(
        RetryPolicy::builder()
            .initial_backoff(Duration::from_millis(20))
            .max_backoff(Duration::from_millis(50))
            .build()
            .unwrap(),
    )
}

/// The example's server (examples/webhook_server.rs), on a loopback port; returns its notify URL.
async fn webhook_receiver(inbox: Arc<WebhookInbox>) -> (NotifyUrl, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let task = tokio::spawn(webhook_server::serve_webhooks(listener, inbox));
    (
        NotifyUrl::new(format!("http://{addr}/kicc/wechat")).unwrap(),
        task,
    )
}

fn fast_wait() -> WaitPolicy {
    WaitPolicy::default()
        .with_first_query_after(Duration::from_millis(300))
        .with_query_interval(Duration::from_millis(100))
        .with_max_wait(Duration::from_secs(10))
        .with_confirm_notice(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cancel_accepted_then_completed_by_webhook() {
    let sb = sandbox().await;
    let inbox = Arc::new(WebhookInbox::default());
    let (notify_url, receiver) = webhook_receiver(inbox.clone()).await;
    let pay = sb
        .create_payment(SbChannel::Wechat, 20_000, SbCurrency::Krw)
        .unwrap();
    let c = client(&sb);
    let req = CancelRequest::full(PgCno::new(&pay.pg_cno).unwrap()).notify_url(notify_url);
    let accepted = c.cancel(&req).await.unwrap();
    assert_eq!(accepted.pg_cno, pay.pg_cno);
    let result = c
        .wait_for_result(
            &accepted,
            &inbox,
            fast_wait().with_first_query_after(Duration::from_secs(8)),
        )
        .await
        .unwrap();
    assert_eq!(result.source, ResultSource::Notice);
    assert_eq!(result.status, TransactionStatus::Cancelled);
    assert_eq!(result.cancel_pg_cno, accepted.cancel_pg_cno);
    assert!(inbox
        .notice_for(&accepted.cancel_pg_cno)
        .unwrap()
        .is_success());
    let state = sb.payment(&pay.pg_cno).unwrap();
    assert_eq!(
        (state.status_code.as_str(), state.remaining_amount),
        ("TS02", 0)
    );
    // The receiver acknowledged: the sandbox logs the delivery just after our receiver
    // answered (wait for that event), and a delivery logged as acknowledged is its last,
    // so the log then holds every delivery of this notice.
    let deliveries = || {
        sb.webhook_log()
            .into_iter()
            .filter(|d| d.cancel_pg_cno == accepted.cancel_pg_cno)
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !deliveries().iter().any(|d| d.acknowledged) {
        assert!(
            std::time::Instant::now() < deadline,
            "no acknowledged delivery logged: {:?}",
            deliveries()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = deliveries();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].acknowledged);
    receiver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usd_partial_completed_by_find_when_the_webhook_is_withheld() {
    let sb = sandbox().await;
    sb.inject_fault(Fault::new(WECHAT_REVISE_PATH, FaultKind::WithholdWebhook))
        .unwrap();
    let inbox = WebhookInbox::default();
    let pay = sb
        .create_payment(SbChannel::Wechat, 5_000, SbCurrency::Usd)
        .unwrap();
    let c = client(&sb);
    let req = CancelRequest::from_text(
        kicc_core::CancelText::new(&pay.pg_cno)
            .amount("12.03")
            .currency("USD"),
    )
    .unwrap();
    let accepted = c.cancel(&req).await.unwrap();
    let result = c
        .wait_for_result(&accepted, &inbox, fast_wait())
        .await
        .unwrap();
    assert_eq!(result.source, ResultSource::StatusQuery);
    assert_eq!(result.status, TransactionStatus::PartiallyCancelled);
    assert_eq!(result.amount_info.unwrap().tot_amount, Some(1203));
    assert_eq!(
        sb.payment(&pay.pg_cno).unwrap().remaining_amount,
        5_000 - 1203
    );
    // The status query on its own.
    let found = c
        .status(&StatusQuery::from_text(&pay.pg_cno, &accepted.cancel_pg_cno).unwrap())
        .await
        .unwrap();
    assert_eq!(
        found.cancel_status,
        Some(TransactionStatus::PartiallyCancelled)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_never_comes_is_pending_not_failed() {
    let config = SandboxConfig::default().with_webhook_delay(Duration::from_secs(30));
    let sb = Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let pay = sb
        .create_payment(SbChannel::Wechat, 5_000, SbCurrency::Krw)
        .unwrap();
    let c = client(&sb);
    let accepted = c
        .cancel(&CancelRequest::full(PgCno::new(&pay.pg_cno).unwrap()))
        .await
        .unwrap();
    let err = c
        .wait_for_result(
            &accepted,
            &WebhookInbox::default(),
            WaitPolicy::default()
                .with_first_query_after(Duration::from_millis(100))
                .with_query_interval(Duration::from_millis(100))
                .with_max_wait(Duration::from_millis(500))
                .with_confirm_notice(true),
        )
        .await
        .unwrap_err();
    assert!(err.is_pending(), "{err:?}");
    assert!(!err.certainly_not_cancelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a212_on_wechat_is_retried_with_the_same_message() {
    let sb = sandbox().await;
    sb.inject_fault(Fault::new(
        WECHAT_REVISE_PATH,
        FaultKind::ResCd("A215".into()),
    ))
    .unwrap();
    let pay = sb
        .create_payment(SbChannel::Wechat, 5_000, SbCurrency::Krw)
        .unwrap();
    let c = client(&sb);
    let accepted = c
        .cancel(&CancelRequest::full(PgCno::new(&pay.pg_cno).unwrap()))
        .await
        .unwrap();
    assert!(!accepted.cancel_pg_cno.is_empty());
    assert_eq!(sb.payment(&pay.pg_cno).unwrap().cancels.len(), 1);
}
