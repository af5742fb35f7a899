//! Layer 4, IO: the server context every connection and background task
//! shares (the state behind its mutex, the fixed settings, shutdown, the
//! webhook client) and the response helpers.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use crate::config::SecretKey;
use crate::settings::{Bounds, Settings};
use crate::state::State;
use crate::wechatpay::WechatpaySettings;
use crate::SandboxError;

/// The client notices are sent with: plain HTTP only.
pub(crate) type WebhookClient = Client<HttpConnector, Full<Bytes>>;

/// A client for webhook notices: plain HTTP, 5 s connect timeout.
pub(crate) fn new_client() -> WebhookClient {
    let mut connector = HttpConnector::new();
    connector.enforce_http(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// State and settings shared by every connection and background task.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) mall_id: String,
    pub(crate) secret: SecretKey,
    pub(crate) timeout_fault_delay: Duration,
    /// The processing bound and the fault delay the settings must respect.
    pub(crate) bounds: Bounds,
    pub(crate) webhook_delay: Duration,
    pub(crate) webhook_retry_interval: Duration,
    pub(crate) webhook_max_attempts: u32,
    pub(crate) webhook_timeout: Duration,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) client: WebhookClient,
    /// The WeChat Pay revoke endpoint's merchant, keys and serials.
    pub(crate) wechatpay: WechatpaySettings,
}

impl Shared {
    /// Locks the state (a panic elsewhere never makes it unusable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps `timeout_fault_delay`, or less if the sandbox shuts down;
    /// `false` when it was cut short by shutdown.
    pub(crate) async fn stall(&self) -> bool {
        self.sleep_unless_shutdown(self.timeout_fault_delay).await
    }

    /// Sleeps `duration` unless the sandbox shuts down first (then `false`).
    pub(crate) async fn sleep_unless_shutdown(&self, duration: Duration) -> bool {
        if duration.is_zero() {
            return true;
        }
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            () = wait_shutdown(&mut shutdown) => false,
        }
    }

    /// Validates and installs new run-time settings.
    pub(crate) fn set_settings(&self, settings: Settings) -> Result<(), SandboxError> {
        self.update_settings(|_| settings)
    }

    /// Changes the run-time settings atomically (one lock), if the result is valid.
    pub(crate) fn update_settings(
        &self,
        change: impl FnOnce(Settings) -> Settings,
    ) -> Result<(), SandboxError> {
        let mut st = self.lock();
        let next = change(st.settings);
        self.bounds.check(next.latency)?;
        st.settings = next;
        Ok(())
    }
}

/// Resolves once shutdown is signalled or the handle is gone.
pub(crate) async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The service's error: makes hyper close the connection (HTTP/1.1) or reset
/// the stream (h2) without a response. Used by the `drop` fault only.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

/// A response as the server sends it.
pub(crate) type Resp = Response<Full<Bytes>>;

/// A response with a status, content type and body.
pub(crate) fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Resp {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The content type of JSON answers.
pub(crate) const JSON: &str = "application/json; charset=utf-8";

/// `{"error": msg}` with `status` (routing, admin and shutdown answers).
pub(crate) fn json_error(status: StatusCode, msg: &str) -> Resp {
    let body = serde_json::json!({ "error": msg }).to_string();
    respond(status, JSON, Bytes::from(body))
}
