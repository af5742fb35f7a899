//! Helpers shared by the integration tests: a sandbox with short delays, an
//! HTTP client from hyper-util, request builders with independently computed
//! HMACs, and a scripted webhook receiver. Everything binds 127.0.0.1:0.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kicc_sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;

pub const MALL: &str = "T0000001";
pub const SECRET: &str = "sandbox-secret-key";

/// HMAC-SHA256 of `pg|key` keyed with the sandbox secret, as lowercase hex.
/// Computed here with the hmac crate, not with the sandbox's code; the test
/// `hmac_helper_matches_openssl` pins it to vectors produced by openssl.
pub fn mac(pg_cno: &str, key: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("HMAC takes any key");
    m.update(format!("{pg_cno}|{key}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Short delays so the suite stays fast.
pub fn fast_config() -> SandboxConfig {
    SandboxConfig {
        timeout_fault_delay: Duration::from_millis(1200),
        webhook_delay: Duration::from_millis(150),
        webhook_retry_interval: Duration::from_millis(50),
        webhook_timeout: Duration::from_secs(2),
        ..SandboxConfig::default()
    }
}

pub async fn start() -> SandboxHandle {
    start_with(fast_config()).await
}

pub async fn start_with(config: SandboxConfig) -> SandboxHandle {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    Sandbox::start(addr, config).await.expect("sandbox starts")
}

/// A hyper-util client bound to one sandbox.
#[derive(Clone)]
pub struct TestClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl TestClient {
    pub fn new(sandbox: &SandboxHandle) -> Self {
        Self::with_base(sandbox.base_url())
    }

    pub fn with_base(base: String) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { client, base }
    }

    /// HTTP/2 with prior knowledge (plain TCP).
    pub fn h2(sandbox: &SandboxHandle) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        Self {
            client,
            base: sandbox.base_url(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), hyper_util::client::legacy::Error> {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .expect("valid request");
        let resp = self.client.request(req).await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("body readable")
            .to_bytes();
        Ok((status, bytes))
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> (StatusCode, Bytes) {
        self.send(Method::POST, path, body)
            .await
            .expect("request answered")
    }

    /// POSTs JSON, expects HTTP 200, returns the parsed body.
    pub async fn post(&self, path: &str, body: &Value) -> Value {
        let (status, bytes) = self.post_raw(path, body.to_string().into_bytes()).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).expect("JSON answer")
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, bytes) = self
            .send(Method::GET, path, Vec::new())
            .await
            .expect("request answered");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Admin: creates a payment, returns its pgCno.
    pub async fn payment(&self, channel: &str, amount: u64, currency: &str) -> String {
        let v = self
            .post(
                "/sandbox/payments",
                &json!({"channel": channel, "amount": amount, "currency": currency}),
            )
            .await;
        v["pgCno"].as_str().expect("pgCno").to_owned()
    }

    /// Admin: the payment's state.
    pub async fn state(&self, pg_cno: &str) -> Value {
        let (status, v) = self.get(&format!("/sandbox/payments/{pg_cno}")).await;
        assert_eq!(status, StatusCode::OK);
        v
    }

    /// Admin: the sandbox's Korea date.
    pub async fn today(&self) -> String {
        let (_, v) = self.get("/sandbox/clock").await;
        v["koreaDate"].as_str().expect("koreaDate").to_owned()
    }

    /// Admin: changes run-time settings, expects HTTP 200, returns them all.
    pub async fn settings(&self, patch: Value) -> Value {
        self.post("/sandbox/settings", &patch).await
    }

    /// A `retrieveTransaction` look-up of `key` processed on `date`.
    pub async fn retrieve(&self, key: &str, date: &str) -> Value {
        self.post(
            "/api/trades/retrieveTransaction",
            &json!({"mallId": MALL, "shopTransactionId": key, "transactionDate": date}),
        )
        .await
    }

    pub async fn fault(&self, fault: Value) {
        let (status, bytes) = self
            .post_raw("/sandbox/faults", fault.to_string().into_bytes())
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

/// A signed generic cancel request.
pub fn generic(pg: &str, key: &str, date: &str, code: &str, amount: Option<u64>) -> Value {
    let mut v = json!({
        "mallId": MALL,
        "shopTransactionId": key,
        "pgCno": pg,
        "reviseTypeCode": code,
        "cancelReqDate": date,
        "msgAuthValue": mac(pg, key),
        "reviseMessage": "고객 변심",
    });
    if let Some(a) = amount {
        v["amount"] = json!(a);
    }
    v
}

/// A signed Alipay / WeChat cancel request.
pub fn overseas(pg: &str, key: &str, date: &str, partial: Option<(&str, u64)>) -> Value {
    let mut v = json!({
        "mallId": MALL,
        "shopTransactionId": key,
        "pgCno": pg,
        "reviseTypeCode": if partial.is_some() { "32" } else { "40" },
        "cancelReqDate": date,
        "msgAuthValue": mac(pg, key),
        "memo": "Customer Request",
    });
    if let Some((currency, amount)) = partial {
        v["amountInfo"] = json!({"currency": currency, "totAmount": amount});
    }
    v
}

pub fn find(pg: &str, cancel: &str, key: &str) -> Value {
    json!({"mallId": MALL, "shopTransactionId": key, "pgCno": pg, "cancelPgCno": cancel})
}

pub fn res_cd(v: &Value) -> &str {
    v["resCd"].as_str().unwrap_or("<none>")
}

/// A webhook receiver on 127.0.0.1:0 that answers from a script (status,
/// body), then acknowledges every further notice.
pub struct Receiver {
    pub url: String,
    pub hits: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(script: Vec<(u16, &'static str)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let hits2 = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let hits = Arc::clone(&hits2);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let hits = Arc::clone(&hits);
                        let script = Arc::clone(&script);
                        async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            hits.lock().expect("lock").push(v);
                            let (status, text) = script
                                .lock()
                                .expect("lock")
                                .pop_front()
                                .unwrap_or((200, r#"{"resCd":"0000","resMsg":"OK"}"#));
                            let mut resp = http::Response::new(Full::new(Bytes::from(text)));
                            *resp.status_mut() =
                                StatusCode::from_u16(status).expect("valid status");
                            Ok::<_, hyper::Error>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Self {
            url: format!("http://{addr}/kicc/notify"),
            hits,
            task,
        }
    }

    pub fn count(&self) -> usize {
        self.hits.lock().expect("lock").len()
    }

    pub fn hits(&self) -> Vec<Value> {
        self.hits.lock().expect("lock").clone()
    }
}

/// Polls `check` every 20 ms until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no injected fault is pending (`GET /sandbox/faults` lists none): the event
/// that a request reached the sandbox and took its fault. A `timeout` fault is taken when
/// the request arrives, before its stall, so after this returns the stall has begun.
/// Panics if that has not happened within 30 s.
pub async fn wait_until_faults_taken(sb: &SandboxHandle) {
    let c = TestClient::new(sb);
    let taken = eventually(Duration::from_secs(30), || {
        let c = c.clone();
        async move {
            let (status, v) = c.get("/sandbox/faults").await;
            status == StatusCode::OK && v["faults"].as_array().is_some_and(Vec::is_empty)
        }
    })
    .await;
    assert!(taken, "the request never reached the sandbox's fault");
}
