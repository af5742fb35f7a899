//! Fault injection, the admin API, TLS (HTTP/1.1 and h2) and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kicc_sandbox::{
    Fault, FaultKind, SandboxError, ALIPAY_REVISE_PATH as ALIPAY, GENERIC_REVISE_PATH as REVISE,
    WECHAT_FIND_PATH as FIND, WECHAT_REVISE_PATH as WECHAT,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::net::TcpStream;

#[tokio::test]
async fn timeout_fault_processes_then_stalls() {
    // The default 30 s stall: the client leaves long before it ends, and the sandbox's
    // shutdown at the end of the test cuts it short.
    let sb = start_with(fast_config().with_timeout_fault_delay(Duration::from_secs(30))).await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 5_000, "KRW").await;
    c.fault(json!({"path": REVISE, "kind": "timeout"})).await;

    let mut req = generic(&pg, "t-1", &today, "32", Some(1_000));
    req["remainAmount"] = json!(5_000);
    let c2 = c.clone();
    let client =
        tokio::spawn(async move { c2.post_raw(REVISE, req.to_string().into_bytes()).await });
    // The client gives up once the request has arrived (taken its fault), during the stall.
    wait_until_faults_taken(&sb).await;
    client.abort();
    assert!(
        client.await.is_err_and(|e| e.is_cancelled()),
        "the client gives up first"
    );
    // It was processed although the client never saw the answer (on arrival, just after
    // taking the fault: wait for that event).
    assert!(
        eventually(Duration::from_secs(10), || async {
            c.state(&pg).await["remainingAmount"] == json!(4_000)
        })
        .await,
        "{}",
        c.state(&pg).await
    );

    // The documented recovery: a new key with refundQueryFlag Y finds it.
    let mut query = generic(&pg, "t-2", &today, "32", Some(1_000));
    query["remainAmount"] = json!(5_000);
    query["refundQueryFlag"] = json!("Y");
    // The fault was used up by the first request: this one meets none.
    wait_until_faults_taken(&sb).await;
    let r = c.post(REVISE, &query).await;
    assert_eq!(res_cd(&r), "0000", "{r}");
    assert_eq!(
        c.state(&pg).await["cancels"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn timeout_fault_without_apply_processes_after_the_stall() {
    // A stall long enough that the check below, made once the request has arrived, falls
    // inside it even on a loaded machine.
    let sb = start_with(fast_config().with_timeout_fault_delay(Duration::from_secs(3))).await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("alipay", 5_000, "KRW").await;
    sb.inject_fault(Fault::new(ALIPAY, FaultKind::Timeout).apply(false))
        .expect("valid fault");
    let req = overseas(&pg, "ta-1", &today, None);
    let c2 = c.clone();
    let started = Instant::now();
    let pending = tokio::spawn(async move { c2.post(ALIPAY, &req).await });
    // The event: the request arrived and took its fault, so its stall has begun.
    wait_until_faults_taken(&sb).await;
    assert_eq!(
        c.state(&pg).await["statusCode"],
        "TS01",
        "not processed during the stall"
    );
    let r = pending.await.expect("task");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(res_cd(&r), "0000", "answered normally after the stall: {r}");
    assert_eq!(c.state(&pg).await["statusCode"], "TS02");
}

#[tokio::test]
async fn http500_fault() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 5_000, "KRW").await;
    // Default: not processed.
    c.fault(json!({"path": REVISE, "kind": "http500"})).await;
    let (status, _) = c
        .post_raw(
            REVISE,
            generic(&pg, "h-1", &today, "32", Some(100))
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(5_000));
    // With apply: processed, then 500.
    c.fault(json!({"path": REVISE, "kind": "http500", "apply": true}))
        .await;
    let (status, _) = c
        .post_raw(
            REVISE,
            generic(&pg, "h-2", &today, "32", Some(100))
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(c.state(&pg).await["remainingAmount"], json!(4_900));
    // Faults are per path: the Alipay endpoint is unaffected, and the generic one is normal again.
    let r = c
        .post(REVISE, &generic(&pg, "h-3", &today, "32", Some(100)))
        .await;
    assert_eq!(res_cd(&r), "0000");
}

#[tokio::test]
async fn drop_fault_closes_without_an_answer() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let today = c.today().await;
    let pg = c.payment("card", 5_000, "KRW").await;
    c.fault(json!({"path": REVISE, "kind": "drop"})).await;
    let res = c
        .send(
            http::Method::POST,
            REVISE,
            generic(&pg, "d-1", &today, "32", Some(100))
                .to_string()
                .into_bytes(),
        )
        .await;
    assert!(res.is_err(), "no response: {res:?}");
    assert_eq!(
        c.state(&pg).await["remainingAmount"],
        json!(4_900),
        "processed first"
    );

    c.fault(json!({"path": REVISE, "kind": "drop", "apply": false}))
        .await;
    let res = c
        .send(
            http::Method::POST,
            REVISE,
            generic(&pg, "d-2", &today, "32", Some(100))
                .to_string()
                .into_bytes(),
        )
        .await;
    assert!(res.is_err());
    assert_eq!(
        c.state(&pg).await["remainingAmount"],
        json!(4_900),
        "not processed"
    );

    // Over h2 the stream is reset instead.
    let h2 = TestClient::h2(&sb);
    c.fault(json!({"path": REVISE, "kind": "drop", "apply": false}))
        .await;
    let res = h2
        .send(
            http::Method::POST,
            REVISE,
            generic(&pg, "d-3", &today, "32", Some(100))
                .to_string()
                .into_bytes(),
        )
        .await;
    assert!(res.is_err());
    let r = h2
        .post(REVISE, &generic(&pg, "d-4", &today, "32", Some(100)))
        .await;
    assert_eq!(res_cd(&r), "0000", "the h2 client recovers: {r}");
}

#[tokio::test]
async fn res_cd_faults_count_down() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    let pg = c.payment("wechat", 5_000, "KRW").await;
    c.fault(json!({"path": FIND, "kind": "resCd", "resCd": "E999", "times": 2}))
        .await;
    let (_, listed) = c.get("/sandbox/faults").await;
    assert_eq!(listed["faults"][0]["times"], json!(2));
    assert_eq!(listed["faults"][0]["resCd"], "E999");
    assert_eq!(listed["faults"][0]["apply"], json!(false));
    for i in 0..2 {
        let r = c.post(FIND, &find(&pg, "SBC1", &format!("rc-{i}"))).await;
        assert_eq!(res_cd(&r), "E999");
        assert_eq!(r["shopTransactionId"], format!("rc-{i}"));
        assert!(r["resMsg"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = c.post(FIND, &find(&pg, "SBC1", "rc-2")).await;
    assert_eq!(res_cd(&r), "P001", "third call is normal: {r}");
    let (_, listed) = c.get("/sandbox/faults").await;
    assert_eq!(listed["faults"], json!([]));

    // Garbage bodies still get the fault's code (and an empty echo).
    c.fault(json!({"path": WECHAT, "kind": "resCd", "resCd": "A219"}))
        .await;
    let (status, bytes) = c.post_raw(WECHAT, b"not json".to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        (res_cd(&v), v["shopTransactionId"].as_str()),
        ("A219", Some(""))
    );
}

#[tokio::test]
async fn invalid_faults_are_refused() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    for bad in [
        json!({"path": "/api/trades/nope", "kind": "timeout"}),
        json!({"path": REVISE, "kind": "explode"}),
        json!({"path": REVISE, "kind": "resCd"}),
        json!({"path": REVISE, "kind": "resCd", "resCd": "0000"}),
        json!({"path": REVISE, "kind": "resCd", "resCd": "TOOLONG"}),
        json!({"path": REVISE, "kind": "timeout", "times": 0}),
        json!({"path": REVISE, "kind": "timeout", "apply": "yes"}),
        json!({"path": ALIPAY, "kind": "withholdWebhook"}),
        json!({"kind": "timeout"}),
        json!([]),
    ] {
        let (status, body) = c
            .post_raw("/sandbox/faults", bad.to_string().into_bytes())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let err = sb
        .inject_fault(Fault::new("/nope", FaultKind::Drop))
        .expect_err("unknown path");
    assert!(
        matches!(err, SandboxError::InvalidFault { field: "path", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn admin_api() {
    let sb = start().await;
    let c = TestClient::new(&sb);
    for (channel, currency) in [
        ("card", "KRW"),
        ("transfer", "KRW"),
        ("mobile", "KRW"),
        ("cash_receipt", "KRW"),
        ("alipay", "USD"),
        ("wechat", "USD"),
    ] {
        let v = c
            .post(
                "/sandbox/payments",
                &json!({"channel": channel, "amount": 1234, "currency": currency}),
            )
            .await;
        assert_eq!(v["channel"], channel);
        assert_eq!(v["currency"], currency);
        assert_eq!(v["amount"], json!(1234));
        assert_eq!(v["mallId"], MALL);
        let pg = v["pgCno"].as_str().expect("pgCno");
        assert!(pg.len() <= 20);
        let s = c.state(pg).await;
        assert_eq!(s["pgCno"], pg);
        assert_eq!(s["remainingAmount"], json!(1234));
        assert_eq!(s["statusCode"], "TS01");
        assert_eq!(s["cancels"], json!([]));
        assert_eq!(s["webhookDeliveries"], json!([]));
    }
    for bad in [
        json!({"channel": "card", "amount": 100, "currency": "USD"}),
        json!({"channel": "transfer", "amount": 100, "authorizedOnly": true}),
        json!({"channel": "card", "amount": 0}),
        json!({"channel": "card", "amount": "100"}),
        json!({"channel": "card", "amount": 1.5}),
        json!({"channel": "cheque", "amount": 100}),
        json!({"amount": 100}),
        json!({"channel": "card", "amount": 100, "currency": "EUR"}),
    ] {
        let (status, _) = c
            .post_raw("/sandbox/payments", bad.to_string().into_bytes())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _) = c.get("/sandbox/payments/SBP404").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Clock: absolute offsets, reported in Korea time.
    let (_, before) = c.get("/sandbox/clock").await;
    let v = c
        .post("/sandbox/clock", &json!({"offsetSeconds": 2 * 86_400}))
        .await;
    assert_eq!(v["offsetSeconds"], json!(2 * 86_400));
    assert_ne!(v["koreaDate"], before["koreaDate"]);
    assert_eq!(sb.clock_offset(), 2 * 86_400);
    let (status, _) = c
        .post_raw(
            "/sandbox/clock",
            json!({"offsetSeconds": "x"}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = c
        .post_raw(
            "/sandbox/clock",
            json!({"offsetSeconds": i64::MAX}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Reset forgets payments and the clock shift.
    let pg = c.payment("card", 1, "KRW").await;
    let v = c.post("/sandbox/reset", &json!({})).await;
    assert_eq!(v["reset"], json!(true));
    let (status, _) = c.get(&format!("/sandbox/payments/{pg}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(sb.clock_offset(), 0);
    let (status, v) = c.get("/sandbox/webhooks").await;
    assert_eq!((status, &v["deliveries"]), (StatusCode::OK, &json!([])));
}

#[tokio::test]
async fn h2_prior_knowledge_on_plain_tcp() {
    let sb = start().await;
    let c = TestClient::h2(&sb);
    let pg = c.payment("card", 1_000, "KRW").await;
    let today = c.today().await;
    let r = c
        .post(REVISE, &generic(&pg, "h2-1", &today, "40", None))
        .await;
    assert_eq!(res_cd(&r), "0000", "{r}");
}

/// Connects over TLS trusting only `root_pem`, offering `alpn`; sends one
/// POST; returns (negotiated ALPN, status, body).
async fn tls_post(
    addr: std::net::SocketAddr,
    root_pem: &str,
    server_name: ServerName<'static>,
    alpn: &[u8],
    path: &str,
    body: Vec<u8>,
) -> Result<(Option<Vec<u8>>, StatusCode, Bytes), Box<dyn std::error::Error + Send + Sync>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let tls = connector.connect(server_name, tcp).await?;
    let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let req = Request::post(format!("https://localhost:{}{path}", addr.port()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = if alpn == b"h2" {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        sender.send_request(req).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        sender.send_request(req).await?
    };
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((negotiated, status, bytes))
}

#[tokio::test]
async fn tls_with_the_generated_root_over_http1_and_h2() {
    let sb = start_with(fast_config().with_tls(true)).await;
    assert!(
        sb.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        sb.base_url()
    );
    let pem = sb.root_certificate_pem().expect("TLS mode has a root");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let pg = sb
        .create_payment(
            kicc_sandbox::Channel::Card,
            9_000,
            kicc_sandbox::Currency::Krw,
        )
        .expect("created")
        .pg_cno;
    let today = sb.korea_date();
    let names = [
        ServerName::try_from("localhost").expect("name"),
        ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into()),
    ];
    for (i, (alpn, name)) in [
        (&b"h2"[..], names[0].clone()),
        (&b"http/1.1"[..], names[1].clone()),
    ]
    .into_iter()
    .enumerate()
    {
        let body = generic(&pg, &format!("tls-{i}"), &today, "32", Some(1_000)).to_string();
        let (negotiated, status, bytes) =
            tls_post(sb.local_addr(), &pem, name, alpn, REVISE, body.into_bytes())
                .await
                .expect("TLS request");
        assert_eq!(negotiated.as_deref(), Some(alpn));
        assert_eq!(status, StatusCode::OK);
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(res_cd(&v), "0000", "{v}");
    }
    assert_eq!(sb.payment(&pg).expect("state").remaining_amount, 7_000);

    // A client that does not trust the generated root is refused.
    let other = start_with(fast_config().with_tls(true)).await;
    let foreign_root = other.root_certificate_pem().expect("root");
    let res = tls_post(
        sb.local_addr(),
        &foreign_root,
        names[0].clone(),
        b"h2",
        REVISE,
        b"{}".to_vec(),
    )
    .await;
    assert!(res.is_err(), "untrusted root must fail");
    // Plain mode has no root.
    assert!(start().await.root_certificate_pem().is_none());
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let sb = start().await;
    let addr = sb.local_addr();
    let c = TestClient::new(&sb);
    let (status, _) = c.get("/sandbox/clock").await;
    assert_eq!(status, StatusCode::OK);
    sb.shutdown().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );

    // Dropping the handle also stops it, with a WeChat job and a stalled call in flight.
    let sb = start_with(fast_config().with_timeout_fault_delay(Duration::from_secs(30))).await;
    let addr = sb.local_addr();
    let c = TestClient::new(&sb);
    let today = sb.korea_date();
    let pg = c.payment("wechat", 100, "KRW").await;
    assert_eq!(
        res_cd(&c.post(WECHAT, &overseas(&pg, "sd-1", &today, None)).await),
        "0000"
    );
    c.fault(json!({"path": REVISE, "kind": "timeout"})).await;
    let c2 = c.clone();
    let stalled =
        tokio::spawn(async move { c2.send(http::Method::POST, REVISE, b"{}".to_vec()).await });
    // The stalled call is in flight once it has taken its fault.
    wait_until_faults_taken(&sb).await;
    drop(sb);
    // Well under the 30 s stall: it ends because the sandbox went away.
    let res = tokio::time::timeout(Duration::from_secs(20), stalled).await;
    assert!(
        res.is_ok(),
        "the stalled call ends when the sandbox goes away"
    );
    // The listener closes when the server task sees the drop: wait for that event.
    let closed = eventually(Duration::from_secs(10), || async {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(closed, "no longer listening");
}
