//! Helpers for the WeChat Pay revoke tests: a sandbox with short delays, a
//! plain hyper-util client, requests signed with wechatpay-direct's signer
//! and the committed sandbox merchant key, and responses verified with the
//! sandbox platform certificate. Everything binds 127.0.0.1:0.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kicc_sandbox::{
    Sandbox, SandboxConfig, SandboxHandle, WechatpayConfig, DEFAULT_WECHATPAY_MCHID,
    SANDBOX_MERCHANT_PRIVATE_KEY_PEM, SANDBOX_MERCHANT_SERIAL_NO, SANDBOX_PLATFORM_CERTIFICATE_PEM,
    SANDBOX_PLATFORM_PUBLIC_KEY_ID, SANDBOX_PLATFORM_PUBLIC_KEY_PEM,
};
use serde_json::{json, Value};
use wechatpay_direct::{
    sign_request, verify_response, BaseUrl, MchId, MerchantMode, Nonce, OrderRef, ReverseRequest,
    RsaPrivateKey, SerialNo, Signer, Timestamp, Verified, VerifyError, USER_AGENT,
};

pub const BY_ID: &str = "/v3/global/micropay/transactions/id/";
pub const BY_OUT: &str = "/v3/global/micropay/transactions/out-trade-no/";

/// Short delays so the suite stays fast.
pub fn fast_config() -> SandboxConfig {
    SandboxConfig {
        timeout_fault_delay: Duration::from_millis(300),
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

pub async fn start_wechatpay(wechatpay: WechatpayConfig) -> SandboxHandle {
    start_with(fast_config().with_wechatpay(wechatpay)).await
}

pub fn merchant_key() -> RsaPrivateKey {
    RsaPrivateKey::from_pem(SANDBOX_MERCHANT_PRIVATE_KEY_PEM).expect("sandbox merchant key loads")
}

pub fn common() -> MerchantMode {
    MerchantMode::common(DEFAULT_WECHATPAY_MCHID).expect("valid mchid")
}

/// A fresh 32-character nonce for each request of the test process.
pub fn nonce() -> Nonce {
    static N: AtomicU64 = AtomicU64::new(1);
    Nonce::new(format!("{:032}", N.fetch_add(1, Ordering::Relaxed))).expect("32 digits")
}

pub fn ts(unix: i64) -> Timestamp {
    Timestamp::from_unix_secs(u64::try_from(unix).expect("positive")).expect("10 digits")
}

/// Verification keys holding the sandbox platform certificate.
pub fn cert_keys() -> wechatpay_direct::VerificationKeys {
    let mut keys = wechatpay_direct::VerificationKeys::new();
    keys.add_certificate_pem(SANDBOX_PLATFORM_CERTIFICATE_PEM)
        .expect("sandbox platform certificate loads");
    keys
}

/// Verification keys holding the sandbox platform key as a WeChat Pay public key.
pub fn public_key_keys() -> wechatpay_direct::VerificationKeys {
    let mut keys = wechatpay_direct::VerificationKeys::new();
    keys.add_public_key_pem(
        SANDBOX_PLATFORM_PUBLIC_KEY_ID,
        SANDBOX_PLATFORM_PUBLIC_KEY_PEM,
    )
    .expect("sandbox platform public key loads");
    keys
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("<none>").to_owned()
    }

    /// Verifies the `Wechatpay-*` signature with the platform certificate.
    pub fn verify_at(&self, now: i64) -> Result<Verified, VerifyError> {
        verify_response(&self.headers, &self.body, ts(now), &cert_keys())
    }

    /// Asserts a signed error answer with this status and code.
    pub fn assert_error(&self, status: u16, code: &str, now: i64) -> Value {
        assert_eq!(
            (self.status.as_u16(), self.code().as_str()),
            (status, code),
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        self.verify_at(now).expect("error answers are signed too");
        let v = self.json();
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        v
    }

    /// Asserts a verified 204 with an empty body.
    pub fn assert_revoked(&self, now: i64) -> Verified {
        assert_eq!(
            self.status,
            StatusCode::NO_CONTENT,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert!(self.body.is_empty());
        self.verify_at(now).expect("204 is signed")
    }
}

/// A hyper-util client for one sandbox.
#[derive(Clone)]
pub struct Wx {
    client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
}

impl Wx {
    pub fn new(sandbox: &SandboxHandle) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: sandbox.base_url(),
        }
    }

    pub fn h2(sandbox: &SandboxHandle) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
            base: sandbox.base_url(),
        }
    }

    /// Sends a request built elsewhere (URI may be relative to the sandbox).
    pub async fn try_send(
        &self,
        req: Request<Bytes>,
    ) -> Result<Reply, hyper_util::client::legacy::Error> {
        let (mut parts, body) = req.into_parts();
        if parts.uri.scheme().is_none() {
            let pq = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            parts.uri = format!("{}{pq}", self.base).parse().expect("valid URI");
        }
        let resp = self
            .client
            .request(Request::from_parts(parts, Full::new(body)))
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("body readable")
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub async fn send(&self, req: Request<Bytes>) -> Reply {
        self.try_send(req).await.expect("answered")
    }

    /// Signs (sandbox merchant key, timestamp `at`) and sends a revoke.
    pub async fn revoke_at(&self, order: OrderRef, mode: MerchantMode, at: i64) -> Reply {
        let signed = ReverseRequest::new(order, mode)
            .sign(&serial(), &merchant_key(), ts(at), &nonce())
            .expect("signs");
        let req = signed
            .to_http_request(&BaseUrl::new(self.base.clone()).expect("base URL"))
            .expect("request");
        self.send(req).await
    }

    /// A common-mode revoke by `out_trade_no`, signed at the sandbox's time.
    pub async fn revoke_out(&self, sandbox: &SandboxHandle, out_trade_no: &str) -> Reply {
        let order = OrderRef::out_trade_no(out_trade_no).expect("valid out_trade_no");
        self.revoke_at(order, common(), sandbox.unix_time()).await
    }

    /// A common-mode revoke by `transaction_id`, signed at the sandbox's time.
    pub async fn revoke_id(&self, sandbox: &SandboxHandle, transaction_id: &str) -> Reply {
        let order = OrderRef::transaction_id(transaction_id).expect("valid transaction_id");
        self.revoke_at(order, common(), sandbox.unix_time()).await
    }

    /// Admin GET, parsed.
    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(Bytes::new())
            .expect("request");
        let r = self.send(req).await;
        (r.status, r.json())
    }

    /// Admin POST, parsed.
    pub async fn admin_post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/json")
            .body(Bytes::from(body.to_string()))
            .expect("request");
        let r = self.send(req).await;
        (r.status, r.json())
    }

    /// Admin: creates a WeChat Pay order with extra fields, expects 200.
    pub async fn order(&self, extra: Value) -> Value {
        let mut body = json!({"channel": "wechatpay", "amount": 1_000, "currency": "USD"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let (status, v) = self.admin_post("/sandbox/payments", &body).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// Admin: an order's state by any of its IDs.
    pub async fn state(&self, id: &str) -> Value {
        let (status, v) = self.admin_get(&format!("/sandbox/payments/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// Admin: injects a fault, expects 200.
    pub async fn fault(&self, fault: Value) {
        let (status, v) = self.admin_post("/sandbox/faults", &fault).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }

    /// Waits until no injected fault is pending (`GET /sandbox/faults` lists none): the
    /// event that a request reached the sandbox and took its fault (a `timeout` fault is
    /// taken on arrival, before its stall). Panics after 30 s.
    pub async fn wait_until_faults_taken(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (status, v) = self.admin_get("/sandbox/faults").await;
            if status == StatusCode::OK && v["faults"].as_array().is_some_and(Vec::is_empty) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the request never reached the sandbox's fault: {v}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub fn serial() -> SerialNo {
    SerialNo::new(SANDBOX_MERCHANT_SERIAL_NO).expect("valid serial")
}

/// A request with every part chosen by the test, signed over exactly those
/// parts with `key` (as `mchid`, `serial_no`); `headers` default to the ones
/// API v3 requires.
pub struct Raw {
    pub method: Method,
    pub target: String,
    pub body: Vec<u8>,
    pub mchid: String,
    pub serial: String,
    pub timestamp: i64,
    pub key: RsaPrivateKey,
    pub user_agent: Option<&'static str>,
    pub accept: Option<&'static str>,
    pub content_type: Option<&'static str>,
    /// Replaces the computed `Authorization` value.
    pub authorization: Option<String>,
}

impl Raw {
    pub fn new(sandbox: &SandboxHandle, target: impl Into<String>, body: &str) -> Self {
        Self {
            method: Method::POST,
            target: target.into(),
            body: body.as_bytes().to_vec(),
            mchid: DEFAULT_WECHATPAY_MCHID.to_owned(),
            serial: SANDBOX_MERCHANT_SERIAL_NO.to_owned(),
            timestamp: sandbox.unix_time(),
            key: merchant_key(),
            user_agent: Some(USER_AGENT),
            accept: Some("application/json"),
            content_type: Some("application/json"),
            authorization: None,
        }
    }

    pub fn build(&self) -> Request<Bytes> {
        let mchid = MchId::new(self.mchid.clone()).expect("valid mchid");
        let serial = SerialNo::new(self.serial.clone()).expect("valid serial");
        let signature = sign_request(
            Signer {
                mchid: &mchid,
                serial_no: &serial,
                key: &self.key,
            },
            &self.method,
            &self.target.parse().expect("valid target"),
            ts(self.timestamp),
            &nonce(),
            &self.body,
        )
        .expect("signs");
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(self.target.as_str())
            .header(
                "authorization",
                self.authorization
                    .clone()
                    .unwrap_or_else(|| signature.authorization().to_owned()),
            );
        for (name, value) in [
            ("user-agent", self.user_agent),
            ("accept", self.accept),
            ("content-type", self.content_type),
        ] {
            if let Some(v) = value {
                b = b.header(name, v);
            }
        }
        b.body(Bytes::from(self.body.clone())).expect("request")
    }
}
