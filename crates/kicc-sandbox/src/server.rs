//! The HTTP(S) server: routing, body limits, faults, connection handling.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::admin::{self, AdminRoute};
use crate::api::{self, ApiEndpoint, Ctx};
use crate::config::{SandboxConfig, SecretKey};
use crate::model::{Channel, Currency, Fault, Payment, PaymentState, WebhookDelivery};
use crate::settings::{Bounds, Settings};
use crate::state::State;
use crate::webhook::{self, WebhookClient};
use crate::wechatpay::{self, Settings as WechatpaySettings};
use crate::SandboxError;

/// Largest request body accepted (larger ones get HTTP 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// State and settings shared by every connection and background task.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) mall_id: String,
    secret: SecretKey,
    timeout_fault_delay: Duration,
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

    /// Processes one API call atomically and schedules its background work.
    fn process(self: &Arc<Self>, ep: ApiEndpoint, body: &[u8]) -> Bytes {
        let ctx = Ctx {
            mall_id: &self.mall_id,
            secret: &self.secret,
        };
        let out = {
            let mut st = self.lock();
            api::handle(ep, &mut st, &ctx, body)
        };
        for job in out.jobs {
            webhook::spawn_finalize(Arc::clone(self), job);
        }
        out.body
    }

    /// Sleeps `timeout_fault_delay`, or less if the sandbox shuts down;
    /// `false` when it was cut short by shutdown.
    pub(crate) async fn stall(&self) -> bool {
        self.sleep_unless_shutdown(self.timeout_fault_delay).await
    }

    /// Sleeps `duration` unless the sandbox shuts down first (then `false`).
    async fn sleep_unless_shutdown(&self, duration: Duration) -> bool {
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

/// Starts sandboxes.
#[derive(Debug, Clone, Copy)]
pub struct Sandbox;

impl Sandbox {
    /// Binds `addr` (port 0 picks a free port) and serves the KICC endpoints
    /// and the admin API until the returned handle is shut down or dropped.
    ///
    /// Must be called within a Tokio runtime (with the time and IO drivers).
    pub async fn start(
        addr: SocketAddr,
        config: SandboxConfig,
    ) -> Result<SandboxHandle, SandboxError> {
        config.validate()?;
        let wechatpay = config.wechatpay.load()?;
        let settings = config.initial_settings();
        let bounds = config.bounds();
        let tls = if config.tls {
            Some(crate::tls::generate()?)
        } else {
            None
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { addr, source })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let SandboxConfig {
            mall_id,
            secret_key,
            seed,
            tls: _,
            timeout_fault_delay,
            webhook_delay,
            webhook_retry_interval,
            webhook_max_attempts,
            webhook_timeout,
            clock_offset,
            wechatpay: _,
            processing_bound: _,
            latency: _,
            remain_amount_convention: _,
            refund_query_match: _,
        } = config;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::with_settings(seed, clock_offset, settings)),
            mall_id,
            secret: secret_key,
            timeout_fault_delay,
            bounds,
            webhook_delay,
            webhook_retry_interval,
            webhook_max_attempts,
            webhook_timeout,
            shutdown: shutdown_rx.clone(),
            client: webhook::new_client(),
            wechatpay,
        });
        let (acceptor, root_pem) = match tls {
            Some(m) => (Some(m.acceptor), Some(m.root_pem)),
            None => (None, None),
        };
        let accept_task = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            acceptor.clone(),
            shutdown_rx,
        ));
        tracing::info!(%local_addr, tls = acceptor.is_some(), "kicc sandbox listening");
        Ok(SandboxHandle {
            shared,
            local_addr,
            tls: acceptor.is_some(),
            root_pem,
            shutdown_tx,
            accept_task: Some(accept_task),
        })
    }
}

/// A running sandbox. Dropping it stops the server and every task it spawned.
pub struct SandboxHandle {
    pub(crate) shared: Arc<Shared>,
    local_addr: SocketAddr,
    tls: bool,
    root_pem: Option<String>,
    shutdown_tx: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

impl fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("base_url", &self.base_url())
            .field("mall_id", &self.shared.mall_id)
            .finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` (an unspecified bind
    /// address is reported as 127.0.0.1).
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        format!("{scheme}://{addr}")
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// In TLS mode, the PEM of the generated root certificate clients must trust.
    pub fn root_certificate_pem(&self) -> Option<String> {
        self.root_pem.clone()
    }

    /// The mall ID the sandbox accepts.
    pub fn mall_id(&self) -> &str {
        &self.shared.mall_id
    }

    /// Stops accepting, closes connections and ends background tasks.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(task) = self.accept_task.take() {
            let _ = task.await;
        }
    }

    /// Creates a payment (as `POST /sandbox/payments`).
    pub fn create_payment(
        &self,
        channel: Channel,
        amount_minor: u64,
        currency: Currency,
    ) -> Result<Payment, SandboxError> {
        self.shared.lock().create_payment(
            &self.shared.mall_id,
            channel,
            amount_minor,
            currency,
            false,
            false,
        )
    }

    /// Creates a KRW escrow payment on `channel` (card, transfer or mobile),
    /// as `POST /sandbox/payments` with `"escrow": true`: the generic cancel
    /// codes 40, 32 and 33 answer `P007`.
    pub fn create_escrow_payment(
        &self,
        channel: Channel,
        amount_minor: u64,
    ) -> Result<Payment, SandboxError> {
        self.shared.lock().create_payment(
            &self.shared.mall_id,
            channel,
            amount_minor,
            Currency::Krw,
            false,
            true,
        )
    }

    /// The run-time settings (as `GET /sandbox/settings`).
    pub fn settings(&self) -> Settings {
        self.shared.lock().settings
    }

    /// Replaces the run-time settings (as `POST /sandbox/settings`); the
    /// latency plus `timeout_fault_delay` must fit in `processing_bound`.
    pub fn set_settings(&self, settings: Settings) -> Result<(), SandboxError> {
        self.shared.set_settings(settings)
    }

    /// Creates a KRW card payment that is authorized but not captured
    /// (as `POST /sandbox/payments` with `"authorizedOnly": true`); code 20 captures it.
    pub fn create_authorized_payment(&self, amount_minor: u64) -> Result<Payment, SandboxError> {
        self.shared.lock().create_payment(
            &self.shared.mall_id,
            Channel::Card,
            amount_minor,
            Currency::Krw,
            true,
            false,
        )
    }

    /// A payment's state (as `GET /sandbox/payments/{id}`): by `pgCno`, or for
    /// a WeChat Pay Global order also by `transaction_id` or `out_trade_no`.
    pub fn payment(&self, pg_cno: &str) -> Option<PaymentState> {
        self.shared.lock().payment_state(pg_cno)
    }

    /// Injects a fault (as `POST /sandbox/faults`).
    pub fn inject_fault(&self, fault: Fault) -> Result<(), SandboxError> {
        self.shared.lock().inject_fault(fault)
    }

    /// Shifts the sandbox's clock to real time plus `offset_seconds` (as
    /// `POST /sandbox/clock`); not cumulative.
    pub fn set_clock(&self, offset_seconds: i64) -> Result<(), SandboxError> {
        self.shared.lock().set_clock(offset_seconds)
    }

    /// The current clock shift in seconds.
    pub fn clock_offset(&self) -> i64 {
        self.shared.lock().clock_offset()
    }

    /// The sandbox's current Korea date, `yyyyMMdd` (what `cancelReqDate` must be).
    pub fn korea_date(&self) -> String {
        self.shared.lock().now().date_string()
    }

    /// The sandbox's current Korea date and time, `yyyyMMddHHmmss`.
    pub fn korea_datetime(&self) -> String {
        self.shared.lock().now().datetime_string()
    }

    /// Every webhook delivery attempt so far (as `GET /sandbox/webhooks`).
    pub fn webhook_log(&self) -> Vec<WebhookDelivery> {
        self.shared.lock().webhook_log()
    }

    /// Forgets all payments, keys, faults and deliveries (as `POST /sandbox/reset`).
    pub fn reset(&self) {
        self.shared.lock().reset();
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(task) = self.accept_task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = wait_shutdown(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(connection(tcp, Arc::clone(&shared), acceptor.clone()));
                }
                Err(e) => {
                    // E.g. too many open files: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn connection(tcp: TcpStream, shared: Arc<Shared>, acceptor: Option<TlsAcceptor>) {
    let mut shutdown = shared.shutdown.clone();
    match acceptor {
        None => serve(tcp, shared, &mut shutdown).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
            match handshake.await {
                Ok(Ok(tls)) => serve(tls, shared, &mut shutdown).await,
                Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

async fn serve<I>(io: I, shared: Arc<Shared>, shutdown: &mut watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::select! {
        res = conn => if let Err(e) = res {
            tracing::debug!("connection ended: {e}");
        },
        () = wait_shutdown(shutdown) => {}
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

type Resp = Response<Full<Bytes>>;

pub(crate) fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Resp {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(crate) const JSON: &str = "application/json; charset=utf-8";

pub(crate) fn json_error(status: StatusCode, msg: &str) -> Resp {
    let body = serde_json::json!({ "error": msg }).to_string();
    respond(status, JSON, Bytes::from(body))
}

enum Route {
    Api(ApiEndpoint),
    Admin(AdminRoute),
    Wechatpay(wechatpay::WxRoute),
}

enum RouteError {
    NotFound,
    MethodNotAllowed(&'static str),
}

fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    use RouteError::{MethodNotAllowed, NotFound};
    let only = |allowed: &Method, allow: &'static str, r: Route| {
        if method == allowed {
            Ok(r)
        } else {
            Err(MethodNotAllowed(allow))
        }
    };
    if let Some(ep) = ApiEndpoint::from_path(path) {
        return only(&Method::POST, "POST", Route::Api(ep));
    }
    if let Some(r) = wechatpay::route(path) {
        let (allowed, allow) = r.allowed();
        return only(&allowed, allow, Route::Wechatpay(r));
    }
    match path {
        "/sandbox/payments" => only(
            &Method::POST,
            "POST",
            Route::Admin(AdminRoute::CreatePayment),
        ),
        "/sandbox/faults" => match *method {
            Method::POST => Ok(Route::Admin(AdminRoute::InjectFault)),
            Method::GET => Ok(Route::Admin(AdminRoute::ListFaults)),
            _ => Err(MethodNotAllowed("GET, POST")),
        },
        "/sandbox/clock" => match *method {
            Method::POST => Ok(Route::Admin(AdminRoute::SetClock)),
            Method::GET => Ok(Route::Admin(AdminRoute::GetClock)),
            _ => Err(MethodNotAllowed("GET, POST")),
        },
        "/sandbox/settings" => match *method {
            Method::POST => Ok(Route::Admin(AdminRoute::SetSettings)),
            Method::GET => Ok(Route::Admin(AdminRoute::GetSettings)),
            _ => Err(MethodNotAllowed("GET, POST")),
        },
        "/sandbox/webhooks" => only(&Method::GET, "GET", Route::Admin(AdminRoute::Webhooks)),
        "/sandbox/wechatpay/requests" => only(
            &Method::GET,
            "GET",
            Route::Admin(AdminRoute::WechatpayRequests),
        ),
        "/sandbox/reset" => only(&Method::POST, "POST", Route::Admin(AdminRoute::Reset)),
        _ => match path.strip_prefix("/sandbox/payments/") {
            Some(id) if !id.is_empty() && !id.contains('/') => only(
                &Method::GET,
                "GET",
                Route::Admin(AdminRoute::GetPayment(id.to_owned())),
            ),
            _ => Err(NotFound),
        },
    }
}

enum BodyError {
    TooLarge,
    Unreadable,
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Unreadable),
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, DropConnection> {
    let route = match route(req.method(), req.uri().path()) {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return Ok(json_error(
                StatusCode::NOT_FOUND,
                &format!("no such endpoint: {}", req.uri().path()),
            ))
        }
        Err(RouteError::MethodNotAllowed(allow)) => {
            let mut resp = json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{} is not allowed here (allowed: {allow})", req.method()),
            );
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            return Ok(resp);
        }
    };
    let head = matches!(route, Route::Wechatpay(_)).then(|| wechatpay::Head::from_request(&req));
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return Ok(json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            ))
        }
        Err(BodyError::Unreadable) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "request body could not be read",
            ))
        }
    };
    if !matches!(route, Route::Admin(_)) {
        // The provider's latency: before anything is processed, so the
        // request is in flight meanwhile (inside the processing bound).
        let latency = shared.lock().settings.latency;
        if !shared.sleep_unless_shutdown(latency).await {
            return Err(DropConnection);
        }
    }
    match (route, head) {
        (Route::Admin(r), _) => Ok(admin::handle(&shared, r, &body)),
        (Route::Api(ep), _) => api_call(shared, ep, body).await,
        (Route::Wechatpay(r), Some(head)) => wechatpay::call(shared, r, head, body).await,
        (Route::Wechatpay(_), None) => Ok(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "request head lost",
        )),
    }
}

async fn api_call(
    shared: Arc<Shared>,
    ep: ApiEndpoint,
    body: Bytes,
) -> Result<Resp, DropConnection> {
    let fault = shared.lock().take_fault(ep.path());
    let Some(fault) = fault else {
        return Ok(respond(StatusCode::OK, JSON, shared.process(ep, &body)));
    };
    use crate::model::FaultKind;
    tracing::debug!(
        path = ep.path(),
        kind = fault.kind.name(),
        apply = fault.apply,
        "injected fault"
    );
    match fault.kind {
        FaultKind::Timeout => {
            if fault.apply {
                let answer = shared.process(ep, &body);
                shared.stall().await;
                Ok(respond(StatusCode::OK, JSON, answer))
            } else {
                // Processed at the end of the stall, even if the client has
                // gone by then (as a gateway that finishes late would), and
                // so within the processing bound (the delay fits in it). A
                // shutdown during the stall drops the request unprocessed.
                let task = tokio::spawn(async move {
                    if shared.stall().await {
                        Some(shared.process(ep, &body))
                    } else {
                        None
                    }
                });
                match task.await {
                    Ok(Some(answer)) => Ok(respond(StatusCode::OK, JSON, answer)),
                    Ok(None) | Err(_) => Ok(json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "sandbox is shutting down",
                    )),
                }
            }
        }
        FaultKind::Http500 => {
            if fault.apply {
                shared.process(ep, &body);
            }
            Ok(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                Bytes::from_static(b"Internal Server Error (injected by the sandbox)"),
            ))
        }
        FaultKind::Drop => {
            if fault.apply {
                shared.process(ep, &body);
            }
            Err(DropConnection)
        }
        FaultKind::ResCd(code) => {
            if fault.apply {
                shared.process(ep, &body);
            }
            Ok(respond(
                StatusCode::OK,
                JSON,
                api::fault_body(ep, &code, fault.res_detail_msg.as_deref(), &body),
            ))
        }
        // Never queued on a path (they are consumed by accepted WeChat
        // cancels), nor the WeChat Pay revoke kinds on KICC paths; answer
        // normally should one ever be seen here.
        FaultKind::WithholdWebhook
        | FaultKind::WechatFail { .. }
        | FaultKind::WechatVoid
        | FaultKind::BadSignature
        | FaultKind::SignatureProbe
        | FaultKind::OldTimestamp
        | FaultKind::WechatpayCode { .. } => {
            Ok(respond(StatusCode::OK, JSON, shared.process(ep, &body)))
        }
    }
}
