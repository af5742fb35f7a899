//! HyperTransport through a real forward proxy on loopback (tests/support/proxy.rs):
//! absolute-form plain HTTP, CONNECT tunnels to a TLS server, Basic proxy
//! authentication, NO_PROXY, a proxy that is not there, and the local address.
//!
//! Every transport here gets its proxy settings explicitly, so that the
//! machine's own HTTP(S)_PROXY variables play no part.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "hyper-client")]

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use kicc_transport::{
    ConnectErrorKind, HttpRequest, HyperTransport, ProxySettings, Transport, TransportConfig,
    TransportError,
};
use support::proxy::forward_proxy;
use support::{closed_port, echo_server, TestPki};

/// base64("alice:s3cret")
const ALICE: &str = "YWxpY2U6czNjcmV0";

fn post(url: &str, body: &'static [u8]) -> HttpRequest {
    http::Request::post(url)
        .header("content-type", "application/octet-stream")
        .body(Bytes::from_static(body))
        .expect("valid request")
}

/// Explicit proxy, nothing exempt, short timeouts.
fn via(proxy_url: &str) -> TransportConfig {
    HyperTransport::builder()
        .proxy(proxy_url)
        .no_proxy_hosts("")
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
}

fn connect_kind(err: &TransportError) -> Option<ConnectErrorKind> {
    match err {
        TransportError::Connect(c) => Some(c.kind()),
        _ => None,
    }
}

#[tokio::test]
async fn plain_http_goes_to_the_proxy_in_absolute_form() {
    let server = echo_server(None).await;
    let proxy = forward_proxy(None).await;
    let transport = via(&proxy.url(None)).build().expect("transport");
    let url = server.url("http", "/echo");
    assert_eq!(
        transport.proxy_for(&url.parse().expect("uri")),
        Some(format!("http://{}/", proxy.addr).parse().expect("uri"))
    );

    let response = transport
        .send(post(&url, b"{\"pgCno\":\"1\"}"))
        .await
        .expect("round trip through the proxy");

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.body().as_ref(), b"{\"pgCno\":\"1\"}");
    let log = proxy.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].target, url, "absolute form");
    assert_eq!(log[0].proxy_authorization, None);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/echo");
    assert_eq!(seen[0].body.as_ref(), b"{\"pgCno\":\"1\"}");
}

#[tokio::test]
async fn https_goes_through_a_connect_tunnel_and_tls_is_verified_end_to_end() {
    let pki = TestPki::new();
    let server = echo_server(Some(pki.server_config(&[b"h2", b"http/1.1"]))).await;
    let proxy = forward_proxy(None).await;
    let url = server.url("https", "/echo");

    let trusting = via(&proxy.url(None))
        .root_certificates_only(&pki.ca_pem)
        .build()
        .expect("transport");
    let response = trusting
        .send(post(&url, b"tunnelled"))
        .await
        .expect("round trip through the tunnel");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.version(),
        http::Version::HTTP_2,
        "ALPN with the origin"
    );
    assert_eq!(response.body().as_ref(), b"tunnelled");
    let log = proxy.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].method, "CONNECT");
    assert_eq!(log[0].target, server.addr.to_string());

    // The proxy is no reason to trust the origin: without its root, the
    // handshake through the tunnel fails exactly as it would directly.
    let untrusting = via(&proxy.url(None)).build().expect("transport");
    let err = untrusting
        .send(post(&url, b"never"))
        .await
        .expect_err("untrusted origin");
    assert_eq!(connect_kind(&err), Some(ConnectErrorKind::Tls), "{err}");
    assert!(!err.may_have_reached_server());
    assert!(err.to_string().contains("--root-cert"), "{err}");
    assert_eq!(proxy.log().len(), 2);
    assert_eq!(server.seen().len(), 1, "nothing more reached the server");
}

#[tokio::test]
async fn a_proxy_demanding_authentication_gets_it_from_the_url() {
    let pki = TestPki::new();
    let tls_server = echo_server(Some(pki.server_config(&[b"http/1.1"]))).await;
    let plain_server = echo_server(None).await;
    let proxy = forward_proxy(Some(ALICE)).await;

    // Without credentials: 407, for the tunnel and for plain HTTP alike, and
    // reported as the proxy's failure: nothing reached the server.
    let anonymous = via(&proxy.url(None))
        .root_certificates_only(&pki.ca_pem)
        .build()
        .expect("transport");
    for url in [
        tls_server.url("https", "/echo"),
        plain_server.url("http", "/echo"),
    ] {
        let err = anonymous.send(post(&url, b"x")).await.expect_err("407");
        assert_eq!(
            connect_kind(&err),
            Some(ConnectErrorKind::ProxyAuthentication),
            "{url}: {err}"
        );
        assert!(!err.may_have_reached_server(), "{url}");
        let text = err.to_string();
        assert!(text.contains(&proxy.addr.to_string()), "{text}");
        assert!(text.contains("407"), "{text}");
    }

    // Wrong password: also 407, and the error never shows it.
    let wrong = via(&proxy.url(Some("alice:wrong-pass")))
        .root_certificates_only(&pki.ca_pem)
        .build()
        .expect("transport");
    let err = wrong
        .send(post(&tls_server.url("https", "/echo"), b"x"))
        .await
        .expect_err("407");
    assert_eq!(
        connect_kind(&err),
        Some(ConnectErrorKind::ProxyAuthentication)
    );
    assert!(!format!("{err} {err:?}").contains("wrong-pass"));
    assert!(!format!("{wrong:?}").contains("wrong-pass"));
    assert_eq!(tls_server.connections(), 0);
    assert_eq!(plain_server.connections(), 0);

    // With them: through, both ways.
    let alice = via(&proxy.url(Some("alice:s3cret")))
        .root_certificates_only(&pki.ca_pem)
        .build()
        .expect("transport");
    for url in [
        tls_server.url("https", "/echo"),
        plain_server.url("http", "/echo"),
    ] {
        let response = alice.send(post(&url, b"ok")).await.expect("authorized");
        assert_eq!(response.status(), StatusCode::CREATED, "{url}");
    }
    let log = proxy.log();
    let authorized: Vec<_> = log.iter().filter(|r| r.refused_with.is_none()).collect();
    assert_eq!(authorized.len(), 2, "{log:?}");
    for request in authorized {
        assert_eq!(
            request.proxy_authorization.as_deref(),
            Some(format!("Basic {ALICE}").as_str())
        );
    }
    assert_eq!(tls_server.seen().len(), 1);
    assert_eq!(plain_server.seen().len(), 1);
}

#[tokio::test]
async fn no_proxy_bypasses_the_proxy() {
    let server = echo_server(None).await;
    let proxy = forward_proxy(None).await;
    let url = server.url("http", "/echo");

    let explicit = HyperTransport::builder()
        .proxy(proxy.url(None))
        .no_proxy_hosts("example.com, 127.0.0.0/8")
        .build()
        .expect("transport");
    // The same rules, read from variables as the environment would give them.
    let proxy_url = proxy.url(None);
    let from_vars = HyperTransport::builder()
        .proxy_settings(ProxySettings::from_vars(|name| match name {
            "HTTP_PROXY" => Some(proxy_url.clone()),
            "no_proxy" => Some("localhost,127.0.0.1".to_owned()),
            _ => None,
        }))
        .build()
        .expect("transport");

    for transport in [&explicit, &from_vars] {
        assert_eq!(transport.proxy_for(&url.parse().expect("uri")), None);
        let response = transport.send(post(&url, b"direct")).await.expect("direct");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert!(proxy.log().is_empty(), "{:?}", proxy.log());
    assert_eq!(server.seen().len(), 2);
    // And a destination not in the list still goes through it.
    assert!(explicit
        .proxy_for(&"https://pgapi.easypay.co.kr/".parse().expect("uri"))
        .is_some());
}

#[tokio::test]
async fn a_proxy_that_is_not_there_means_not_delivered_and_names_the_proxy() {
    let pki = TestPki::new();
    let server = echo_server(Some(pki.server_config(&[b"http/1.1"]))).await;
    let plain = echo_server(None).await;
    let dead = closed_port().await;
    let transport = via(&format!("http://alice:s3cret@{dead}"))
        .root_certificates_only(&pki.ca_pem)
        .build()
        .expect("transport");

    for url in [server.url("https", "/echo"), plain.url("http", "/echo")] {
        let err = transport
            .send(post(&url, b"x"))
            .await
            .expect_err("no proxy");
        assert_eq!(
            connect_kind(&err),
            Some(ConnectErrorKind::ProxyUnreachable),
            "{url}: {err}"
        );
        assert!(!err.may_have_reached_server());
        let text = format!("{err} {err:?}");
        assert!(text.contains(&format!("proxy {dead}")), "{text}");
        assert!(text.contains("refused"), "{text}");
        assert!(
            !text.contains("s3cret") && !text.contains("alice"),
            "{text}"
        );
    }
    assert_eq!(server.connections() + plain.connections(), 0);
}

#[tokio::test]
async fn a_proxy_that_refuses_the_tunnel_is_rejected_not_unknown() {
    // The test proxy answers 502 to a CONNECT it will not open (a non-loopback host).
    let proxy = forward_proxy(None).await;
    let transport = via(&proxy.url(None)).build().expect("transport");
    let err = transport
        .send(post(
            "https://pgapi.easypay.invalid/api/trades/revise",
            b"x",
        ))
        .await
        .expect_err("502 to CONNECT");
    assert_eq!(
        connect_kind(&err),
        Some(ConnectErrorKind::ProxyRejected),
        "{err}"
    );
    assert!(!err.may_have_reached_server());
    assert!(
        err.to_string().contains("pgapi.easypay.invalid:443"),
        "{err}"
    );
    assert_eq!(proxy.log()[0].refused_with, Some(502));
}

#[tokio::test]
async fn connections_leave_from_the_local_address() {
    let server = echo_server(None).await;
    let proxy = forward_proxy(None).await;
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let url = server.url("http", "/echo");

    let direct = HyperTransport::builder()
        .no_proxy()
        .local_address(source)
        .build()
        .expect("transport");
    assert_eq!(direct.local_address(), Some(source));
    direct.send(post(&url, b"a")).await.expect("direct");
    assert_eq!(server.peers().len(), 1);
    assert_eq!(server.peers()[0].ip(), source);

    // Through a proxy, the proxy is what sees it.
    let proxied = via(&proxy.url(None))
        .local_address(source)
        .build()
        .expect("transport");
    proxied.send(post(&url, b"b")).await.expect("proxied");
    assert_eq!(proxy.log()[0].peer.ip(), source);
}

#[tokio::test]
async fn a_local_address_this_machine_lacks_is_a_typed_error() {
    let server = echo_server(None).await;
    // TEST-NET-1: never assigned to a host, so binding to it fails locally.
    let transport = HyperTransport::builder()
        .no_proxy()
        .local_address(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        .build()
        .expect("transport");
    let err = transport
        .send(post(&server.url("http", "/echo"), b"x"))
        .await
        .expect_err("cannot bind");
    assert_eq!(
        connect_kind(&err),
        Some(ConnectErrorKind::LocalAddress),
        "{err}"
    );
    assert!(err.to_string().contains("192.0.2.1"), "{err}");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_refused_connection_is_typed_and_names_the_address() {
    let dead = closed_port().await;
    let transport = HyperTransport::builder()
        .no_proxy()
        .build()
        .expect("transport");
    let err = transport
        .send(post(&format!("http://{dead}/echo"), b"x"))
        .await
        .expect_err("refused");
    assert_eq!(connect_kind(&err), Some(ConnectErrorKind::Refused), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("connection refused by {dead}")),
        "{err}"
    );
    // Only the default sandbox address earns the `kicc sandbox serve` hint.
    assert!(!err.to_string().contains("kicc sandbox serve"), "{err}");
}

#[test]
fn invalid_proxy_settings_fail_the_build_without_showing_secrets() {
    let err = HyperTransport::builder()
        .proxy("socks5://alice:s3cret@127.0.0.1:1080")
        .build()
        .expect_err("socks is not supported");
    let text = format!("{err} {err:?}");
    assert!(text.contains("socks5"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let config = HyperTransport::builder().proxy("http://alice:s3cret@proxy:3128");
    let debug = format!("{config:?}");
    assert!(
        debug.contains("***@proxy:3128") && !debug.contains("s3cret"),
        "{debug}"
    );
}

#[tokio::test]
async fn a_proxy_that_never_answers_connect_hits_the_connect_timeout() {
    let silent = support::raw_server(support::Misbehaviour::Silent).await;
    let transport = HyperTransport::builder()
        .proxy(format!("http://{}", silent.addr))
        .no_proxy_hosts("")
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("transport");
    let err = transport
        .send(post(
            "https://pgapi.easypay.invalid/api/trades/revise",
            b"x",
        ))
        .await
        .expect_err("no tunnel");
    assert_eq!(connect_kind(&err), Some(ConnectErrorKind::Timeout), "{err}");
    assert!(!err.may_have_reached_server());
    let text = err.to_string();
    assert!(
        text.contains(&format!("through proxy {}", silent.addr))
            && text.contains("not established within"),
        "{text}"
    );
}
