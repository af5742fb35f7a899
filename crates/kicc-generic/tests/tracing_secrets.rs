//! No secret key and no msgAuthValue ever reaches the tracing output, even at TRACE level and
//! through retries. (Its own test binary: it installs a subscriber.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kicc_core::retry::RetryPolicy;
use kicc_core::*;
use kicc_generic::{CancelRequest, GenericClient, PaymentMethod};
use kicc_sandbox::{
    Channel as SbChannel, Currency as SbCurrency, Fault, FaultKind, Sandbox, SandboxConfig,
    GENERIC_REVISE_PATH,
};
use kicc_transport::HyperTransport;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SECRET: &str = "tracing-test-secret-8f3a";

#[tokio::test(flavor = "current_thread")]
async fn nothing_secret_is_traced() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let config = SandboxConfig::default().with_secret_key(SECRET);
    let sb = Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let card = sb
        .create_payment(SbChannel::Card, 10_000, SbCurrency::Krw)
        .unwrap();
    sb.inject_fault(Fault::new(GENERIC_REVISE_PATH, FaultKind::Http500))
        .unwrap();
    sb.inject_fault(Fault::new(
        GENERIC_REVISE_PATH,
        FaultKind::ResCd("VT00".into()),
    ))
    .unwrap();

    let merchant = Merchant::new(
        Environment::Custom(BaseUrl::new(sb.base_url()).unwrap()),
        MallId::new(sb.mall_id()).unwrap(),
        SecretKey::new(SECRET).unwrap(),
    );
    let secret = merchant.secret_key().clone();
    let client = GenericClient::with_transport(merchant, HyperTransport::new().unwrap())
        .with_retry_policy(
            RetryPolicy::builder()
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_millis(20))
                .processing_bound(Duration::from_millis(100))
                .lookup_not_found_code("R001")
                .build()
                .unwrap(),
        );
    let pg_cno = PgCno::new(&card.pg_cno).unwrap();
    let key = ShopTransactionId::new("TRACE-KEY-1").unwrap();
    let req = CancelRequest::partial(
        pg_cno.clone(),
        PaymentMethod::Card,
        Amount::new("amount", 100).unwrap(),
    )
    .unwrap();
    client.cancel_with_key(&req, key.clone()).await.unwrap();
    drop(_guard);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The spans are there, with what an operator needs...
    assert!(text.contains("kicc.cancel"), "{text}");
    assert!(text.contains("kicc.attempt"), "{text}");
    assert!(text.contains("TRACE-KEY-1"), "{text}");
    assert!(text.contains(pg_cno.as_str()));
    assert!(
        text.contains("res_cd=VT00") || text.contains("res_cd=\"VT00\""),
        "{text}"
    );
    // The look-ups are traced too (by path), without any secret.
    assert!(text.contains("retrieveTransaction"), "{text}");
    assert!(text.contains("http_status=500"), "{text}");
    // ...and nothing secret: not the key, not any msgAuthValue of any attempt.
    assert!(!text.contains(SECRET));
    assert!(!text.contains(secret.msg_auth_value(&pg_cno, &key).as_str()));
    assert!(!text.contains("msgAuthValue"));
    for word in text.split(|c: char| !c.is_ascii_hexdigit()) {
        assert!(word.len() < 64, "a 64-hex value was traced: {word}");
    }
}
