//! Tracing output of the client. In its own test binary: tracing caches
//! callsite interest process-wide, so a scoped subscriber races with other
//! tests' threads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "transport")]

mod common;

use std::sync::{Arc, Mutex};

use common::fake::*;
use wechatpay_direct::parse_authorization;

#[test]
fn tracing_names_the_order_and_never_the_signature() {
    use std::io::Write;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let fake = FakeWechat::new([Step::Error(503, "SERVICE_UNAVAILABLE"), Step::Revoked]);
    let c = client(&fake);
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        assert!(rt.block_on(c.reverse(&call())).unwrap().is_revoked());
    });
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("ORDER-20240101-0001"), "{logs}");
    assert!(logs.contains("attempt=2"), "{logs}");
    assert!(logs.contains("503"), "{logs}");
    let sent = fake.received();
    let auth = sent[0].headers()["authorization"].to_str().unwrap();
    let signature = parse_authorization(auth).unwrap().signature;
    assert!(!logs.contains(&signature[..24]), "signature leaked: {logs}");
    assert!(!logs.contains("BEGIN"), "key material leaked: {logs}");
}
