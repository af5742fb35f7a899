//! HyperTransport against loopback servers: round trips, TLS + ALPN, error
//! mapping (what may have reached the server), limits, policy and pooling.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "hyper-client")]

mod support;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode, Version};
use std::error::Error as _;

use kicc_transport::{
    ConfigError, HttpRequest, HyperTransport, IoErrorKind, RefusedKind, Transport, TransportError,
    DEFAULT_USER_AGENT,
};
use support::{closed_port, echo_server, raw_server, Misbehaviour, TestPki};

fn get(url: &str) -> HttpRequest {
    http::Request::get(url)
        .body(Bytes::new())
        .expect("valid request")
}

fn post(url: &str, body: &'static [u8]) -> HttpRequest {
    http::Request::post(url)
        .header("content-type", "application/octet-stream")
        .body(Bytes::from_static(body))
        .expect("valid request")
}

fn short_timeouts() -> kicc_transport::TransportConfig {
    HyperTransport::builder()
        .timeout(Duration::from_millis(400))
        .connect_timeout(Duration::from_millis(300))
}

/// Polls `future` once with no Tokio runtime anywhere: anything that tried to
/// open a socket, resolve a name or start a timer would panic or stay pending.
fn poll_once_without_runtime<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn plain_http1_round_trip_is_exact() {
    let server = echo_server(None).await;
    let transport = HyperTransport::new().expect("default transport");
    // Not UTF-8 on purpose: the body is bytes, end to end.
    let body: &'static [u8] = b"{\"pgCno\":\"1\"}\xff\x00\xfe";
    let mut request = post(&server.url("http", "/echo"), body);
    request
        .headers_mut()
        .insert("x-custom", http::HeaderValue::from_static("kept as sent"));

    let response = transport.send(request).await.expect("round trip");

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.headers()["x-echo-method"], "POST");
    assert_eq!(response.headers()["x-echo-custom"], "kept as sent");
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(response.body().as_ref(), body);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].version, Version::HTTP_11);
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].path, "/echo");
    assert_eq!(seen[0].body.as_ref(), body);
}

#[tokio::test]
async fn user_agent_is_set_only_when_missing() {
    let server = echo_server(None).await;
    let default = HyperTransport::new().expect("default transport");
    default
        .send(get(&server.url("http", "/echo")))
        .await
        .expect("default UA");

    let mut own = get(&server.url("http", "/echo"));
    own.headers_mut().insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static("caller/1"),
    );
    default.send(own).await.expect("caller's UA");

    let configured = HyperTransport::builder()
        .user_agent("shop/2 kicc-rs")
        .build()
        .expect("configured UA");
    configured
        .send(get(&server.url("http", "/echo")))
        .await
        .expect("configured UA");

    let agents: Vec<_> = server.seen().into_iter().map(|s| s.user_agent).collect();
    assert_eq!(
        agents,
        [
            Some(DEFAULT_USER_AGENT.to_owned()),
            Some("caller/1".to_owned()),
            Some("shop/2 kicc-rs".to_owned()),
        ]
    );
    assert_eq!(
        DEFAULT_USER_AGENT,
        concat!("kicc-rs/", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn tls_negotiates_h2_by_alpn_with_an_extra_root() {
    let pki = TestPki::new();
    let server = echo_server(Some(pki.server_config(&[b"h2", b"http/1.1"]))).await;
    // Extra root on top of Mozilla's: the sandbox case.
    let transport = HyperTransport::builder()
        .add_root_certificates(&pki.ca_pem)
        .build()
        .expect("transport with extra root");

    let response = transport
        .send(post(&server.url("https", "/echo"), b"over h2"))
        .await
        .expect("TLS round trip");

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.body().as_ref(), b"over h2");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].version, Version::HTTP_2, "server must see h2");
    assert_eq!(seen[0].user_agent.as_deref(), Some(DEFAULT_USER_AGENT));
}

#[tokio::test]
async fn tls_falls_back_to_http11_when_the_server_offers_only_that() {
    let pki = TestPki::new();
    let server = echo_server(Some(pki.server_config(&[b"http/1.1"]))).await;
    let transport = HyperTransport::builder()
        .root_certificates_only(&pki.ca_pem)
        .build()
        .expect("transport trusting only the test root");

    let response = transport
        .send(post(&server.url("https", "/echo"), b"over http/1.1"))
        .await
        .expect("TLS round trip");

    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.body().as_ref(), b"over http/1.1");
    assert_eq!(server.seen()[0].version, Version::HTTP_11);
}

#[tokio::test]
async fn untrusted_certificate_is_connect_and_nothing_is_sent() {
    let server_pki = TestPki::new();
    let other_pki = TestPki::new();
    let server = echo_server(Some(server_pki.server_config(&[b"h2", b"http/1.1"]))).await;

    let trusts_other_root = HyperTransport::builder()
        .root_certificates_only(&other_pki.ca_pem)
        .build()
        .expect("transport");
    let default_roots = HyperTransport::new().expect("transport");

    for transport in [trusts_other_root, default_roots] {
        let err = transport
            .send(post(&server.url("https", "/echo"), b"must not arrive"))
            .await
            .expect_err("an untrusted certificate must fail");
        assert!(
            matches!(err, TransportError::Connect(_)),
            "expected Connect, got {err:?}"
        );
        assert!(!err.may_have_reached_server());
        assert!(err.to_string().contains("certificate"), "{err}");
    }
    assert!(server.connections() >= 2, "the handshakes were attempted");
    assert!(server.seen().is_empty(), "no request may reach the server");
}

#[tokio::test]
async fn connection_refused_is_connect() {
    let addr = closed_port().await;
    let transport = HyperTransport::new().expect("transport");

    let err = transport
        .send(get(&format!("http://{addr}/echo")))
        .await
        .expect_err("nothing listens there");

    assert!(
        matches!(err, TransportError::Connect(_)),
        "expected Connect, got {err:?}"
    );
    assert!(!err.may_have_reached_server());
}

#[tokio::test]
async fn stalled_tls_handshake_hits_the_connect_timeout_and_is_connect() {
    let server = raw_server(Misbehaviour::Silent).await;
    let transport = HyperTransport::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .expect("transport");
    let err = transport
        .send(get(&format!("https://{}/echo", server.addr)))
        .await
        .expect_err("the handshake never completes");

    assert!(
        matches!(&err, TransportError::Connect(c) if c.message().contains("not established within")),
        "expected a connect timeout, got {err:?}"
    );
    // The connect timeout ended it, not the 5 s request timeout: that one would be
    // `TransportError::Timeout`. (How long it took is for the benchmarks.)
    assert!(!err.may_have_reached_server());
}

#[tokio::test]
async fn server_that_never_answers_is_timeout() {
    let server = raw_server(Misbehaviour::StallAfterRequest).await;
    let transport = short_timeouts().build().expect("transport");
    let started = Instant::now();

    let err = transport
        .send(post(&format!("http://{}/echo", server.addr), b"cancel"))
        .await
        .expect_err("no answer");

    assert_eq!(err, TransportError::Timeout(Duration::from_millis(400)));
    assert!(err.may_have_reached_server());
    assert_eq!(server.requests_read(), 1, "the request did arrive");
    // Not before the timeout; no upper bound (that belongs in the benchmarks).
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
}

#[tokio::test]
async fn timeout_covers_reading_the_body() {
    let server = raw_server(Misbehaviour::StallMidBody).await;
    let transport = short_timeouts().build().expect("transport");

    let err = transport
        .send(get(&format!("http://{}/echo", server.addr)))
        .await
        .expect_err("the body never completes");

    assert_eq!(err, TransportError::Timeout(Duration::from_millis(400)));
    assert!(err.may_have_reached_server());
}

#[tokio::test]
async fn connection_closed_after_the_request_is_io() {
    let server = raw_server(Misbehaviour::CloseAfterRequest).await;
    let transport = short_timeouts().build().expect("transport");

    let err = transport
        .send(post(&format!("http://{}/echo", server.addr), b"cancel"))
        .await
        .expect_err("the server hangs up");

    assert!(
        matches!(&err, TransportError::Io(e) if e.kind() == IoErrorKind::ConnectionLost),
        "expected Io(ConnectionLost), got {err:?}"
    );
    assert!(err.may_have_reached_server());
    // hyper's own error is kept as the cause, for logs and for callers that inspect it.
    let mut cause = std::error::Error::source(&err);
    let mut found_hyper = false;
    while let Some(e) = cause {
        found_hyper |= e.is::<hyper::Error>();
        cause = e.source();
    }
    assert!(found_hyper, "hyper::Error in the source chain of {err:?}");
    assert_eq!(server.requests_read(), 1, "the request did arrive");
}

#[tokio::test]
async fn response_body_is_bounded() {
    let server = echo_server(None).await;
    let transport = HyperTransport::builder()
        .max_response_body_size(1024)
        .build()
        .expect("transport");
    assert_eq!(transport.max_response_body_size(), 1024);

    let at_limit = transport
        .send(get(&server.url("http", "/bytes/1024")))
        .await
        .expect("exactly at the limit is fine");
    assert_eq!(at_limit.body().len(), 1024);

    for path in ["/bytes/1025", "/chunked/4096"] {
        let err = transport
            .send(get(&server.url("http", path)))
            .await
            .expect_err("over the limit");
        assert!(
            matches!(&err, TransportError::Io(e) if e.kind() == IoErrorKind::ResponseTooLarge
                && e.message().contains("exceeds the limit of 1024 bytes")),
            "{path}: {err:?}"
        );
        assert!(err.may_have_reached_server());
    }

    let chunked = transport
        .send(get(&server.url("http", "/chunked/1000")))
        .await
        .expect("chunked under the limit");
    assert_eq!(chunked.body().as_ref(), &[b'c'; 1000][..]);
}

#[test]
fn plain_http_to_a_remote_host_is_refused_without_any_network() {
    // No runtime exists: any DNS lookup, socket or timer would panic.
    let transport = HyperTransport::new().expect("transport builds without a runtime");
    for url in [
        "http://example.com/api/trades/revise",
        "http://testpgapi.easypay.co.kr/api/trades/revise",
        "http://10.0.0.1:8780/",
    ] {
        match poll_once_without_runtime(transport.send(post(url, b"secret-bearing body"))) {
            Poll::Ready(Err(TransportError::Refused(e))) => {
                assert_eq!(e.kind(), RefusedKind::PlainHttp, "{url}");
                assert!(e.message().contains("loopback"), "{url}: {e}");
            }
            other => panic!("{url}: expected an immediate Refused, got {other:?}"),
        }
    }
    assert_eq!(transport.connection_attempts(), 0);
}

#[test]
fn relative_uri_and_missing_runtime_are_refused() {
    let transport = HyperTransport::new().expect("transport");
    assert!(matches!(
        poll_once_without_runtime(transport.send(get("/api/trades/revise"))),
        Poll::Ready(Err(TransportError::Refused(e))) if e.kind() == RefusedKind::InvalidUri
    ));
    // A loopback URL passes the policy, then meets the missing runtime.
    assert!(matches!(
        poll_once_without_runtime(transport.send(get("http://127.0.0.1:9/"))),
        Poll::Ready(Err(TransportError::Refused(e)))
            if e.kind() == RefusedKind::NoRuntime && e.message().contains("Tokio runtime")
    ));
    assert_eq!(transport.connection_attempts(), 0);
}

#[tokio::test]
async fn sequential_requests_reuse_one_http1_connection_across_clones() {
    let server = echo_server(None).await;
    let transport = HyperTransport::new().expect("transport");
    let clone = transport.clone();

    for i in 0..10 {
        let response = transport
            .send(get(&server.url("http", "/echo")))
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    for i in 0..10 {
        clone
            .send(get(&server.url("http", "/echo")))
            .await
            .unwrap_or_else(|e| panic!("clone request {i}: {e}"));
    }

    assert_eq!(server.seen().len(), 20);
    assert_eq!(server.connections(), 1, "one pooled connection for all 20");
    assert_eq!(transport.connection_attempts(), 1);
    assert_eq!(clone.connection_attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_reuse_one_h2_connection() {
    let pki = TestPki::new();
    let server = echo_server(Some(pki.server_config(&[b"h2", b"http/1.1"]))).await;
    let transport = HyperTransport::builder()
        .root_certificates_only(&pki.ca_pem)
        .build()
        .expect("transport");
    let clone = transport.clone();

    for i in 0..10 {
        let t = if i % 2 == 0 { &transport } else { &clone };
        t.send(get(&server.url("https", "/echo")))
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
    }

    assert_eq!(server.seen().len(), 10);
    assert!(server.seen().iter().all(|s| s.version == Version::HTTP_2));
    assert_eq!(server.connections(), 1, "one h2 connection for all 10");
}

#[tokio::test]
async fn separately_built_transports_do_not_share_a_pool() {
    let server = echo_server(None).await;
    let a = HyperTransport::new().expect("transport");
    let b = HyperTransport::new().expect("transport");
    a.send(get(&server.url("http", "/echo"))).await.expect("a");
    b.send(get(&server.url("http", "/echo"))).await.expect("b");
    assert_eq!(server.connections(), 2);
}

#[test]
fn invalid_settings_name_the_field_and_rule() {
    let zero = Duration::ZERO;
    let cases = [
        (HyperTransport::builder().timeout(zero), "timeout"),
        (
            HyperTransport::builder().connect_timeout(zero),
            "connect_timeout",
        ),
        (
            HyperTransport::builder().pool_idle_timeout(zero),
            "pool_idle_timeout",
        ),
        (
            HyperTransport::builder().max_response_body_size(0),
            "max_response_body_size",
        ),
    ];
    for (config, field) in cases {
        let err = config.build().expect_err(field);
        assert!(
            matches!(err, ConfigError::Zero { field: f } if f == field),
            "{err:?}"
        );
        assert!(err.source().is_none(), "{field}");
        assert_eq!(
            err.to_string(),
            format!("{field} must be greater than zero")
        );
    }

    for bad in ["", "line\nbreak", "nul\0"] {
        let err = HyperTransport::builder()
            .user_agent(bad)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidUserAgent),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn bad_root_certificates_are_rejected_at_build() {
    let no_cert = HyperTransport::builder()
        .root_certificates_only("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        .build()
        .unwrap_err();
    assert!(
        matches!(no_cert, ConfigError::NoCertificateInPem { index: 0 }),
        "{no_cert:?}"
    );

    let pki = TestPki::new();
    let second_empty = HyperTransport::builder()
        .add_root_certificates(&pki.ca_pem)
        .add_root_certificates("not PEM at all")
        .build()
        .unwrap_err();
    assert!(
        matches!(second_empty, ConfigError::NoCertificateInPem { index: 1 }),
        "{second_empty:?}"
    );

    let garbage_der = HyperTransport::builder()
        .add_root_certificates("-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n")
        .build()
        .unwrap_err();
    assert!(
        matches!(garbage_der, ConfigError::BadCertificate { index: 0, .. }),
        "{garbage_der:?}"
    );
    assert_eq!(
        garbage_der.to_string(),
        "root certificates: certificate #0 cannot be used as a trust anchor"
    );
    let cause = garbage_der
        .source()
        .expect("BadCertificate keeps its cause");
    assert!(
        cause.downcast_ref::<rustls::Error>().is_some(),
        "the cause is rustls' error: {cause:?}"
    );

    let bad_base64 = HyperTransport::builder()
        .add_root_certificates("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
        .build()
        .unwrap_err();
    assert!(
        matches!(bad_base64, ConfigError::InvalidPem { index: 0, .. }),
        "{bad_base64:?}"
    );
    assert_eq!(
        bad_base64.to_string(),
        "root certificates: PEM data #0 could not be read"
    );
    let cause = bad_base64.source().expect("InvalidPem keeps its cause");
    assert!(
        cause
            .downcast_ref::<rustls_pki_types::pem::Error>()
            .is_some(),
        "the cause is the PEM parser's error: {cause:?}"
    );

    // The second PEM argument is the bad one, and the index says so.
    let second_bad = HyperTransport::builder()
        .add_root_certificates(&pki.ca_pem)
        .add_root_certificates("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
        .build()
        .unwrap_err();
    assert!(
        matches!(second_bad, ConfigError::InvalidPem { index: 1, .. }),
        "{second_bad:?}"
    );

    // Two roots in one PEM are both accepted.
    let other = TestPki::new();
    let both = format!("{}{}", pki.ca_pem, other.ca_pem);
    HyperTransport::builder()
        .root_certificates_only(both)
        .build()
        .expect("two certificates in one PEM");
}

/// Runs in a child process (this test binary, re-run with `SSL_CERT_FILE`
/// pointing nowhere), so the variable never changes for other tests.
#[test]
fn an_unreadable_native_store_keeps_the_load_error() {
    const CHILD: &str = "KICC_TRANSPORT_TEST_NATIVE_ROOTS_CHILD";
    const NAME: &str = "an_unreadable_native_store_keeps_the_load_error";
    if std::env::var_os(CHILD).is_some() {
        let err = HyperTransport::builder()
            .native_roots()
            .no_proxy()
            .build()
            .expect_err("SSL_CERT_FILE names a missing file");
        assert!(matches!(err, ConfigError::NativeRoots { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "native root certificates could not be loaded: reading the system store failed"
        );
        let cause = err.source().expect("NativeRoots keeps the load error");
        assert!(
            cause.to_string().contains("kicc-no-such-ca.pem"),
            "the cause names the file: {cause}"
        );
        assert!(
            cause.source().is_some(),
            "and keeps the io::Error: {cause:?}"
        );
        return;
    }
    let missing = std::env::temp_dir()
        .join("kicc-no-such-dir")
        .join("kicc-no-such-ca.pem");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([NAME, "--exact", "--test-threads=1"])
        .env(CHILD, "1")
        .env("SSL_CERT_FILE", &missing)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn debug_output_is_a_summary() {
    let pki = TestPki::new();
    let config = HyperTransport::builder().add_root_certificates(&pki.ca_pem);
    let text = format!("{config:?}");
    assert!(text.contains("extra_root_pem_count: 1"), "{text}");
    assert!(!text.contains("BEGIN CERTIFICATE"), "{text}");
    let transport = config.build().expect("transport");
    assert!(format!("{transport:?}").contains("timeout: 30s"));
}
