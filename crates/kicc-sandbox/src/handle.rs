//! Layer 4, IO: starting the sandbox, and the handle tests drive it with
//! (the admin API's operations as methods).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::SandboxConfig;
use crate::model::{Channel, Currency, Fault, Payment, PaymentState, WebhookDelivery};
use crate::server::accept_loop;
use crate::settings::Settings;
use crate::shared::{new_client, Shared};
use crate::state::State;
use crate::tls;
use crate::wechatpay::{NewWechatpayOrder, WechatpayMerchant, WechatpayRequestRecord};
use crate::SandboxError;

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
            Some(tls::generate()?)
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
            client: new_client(),
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

    /// Creates a WeChat Pay Global order (as `POST /sandbox/payments` with
    /// `"channel": "wechatpay"`): the answer carries `transaction_id`,
    /// `out_trade_no` and `paid_at`.
    pub fn create_wechatpay_order(
        &self,
        order: NewWechatpayOrder,
    ) -> Result<Payment, SandboxError> {
        self.shared
            .lock()
            .create_wechatpay_order(&self.shared.mall_id, &order)
    }

    /// Every WeChat Pay request received (revokes, order queries, certificate
    /// downloads), oldest first (as
    /// `GET /sandbox/wechatpay/requests`; the last 1000 are kept).
    pub fn wechatpay_requests(&self) -> Vec<WechatpayRequestRecord> {
        self.shared.lock().wx.requests()
    }

    /// The sandbox's clock as Unix seconds (real time plus the clock offset):
    /// the "now" of the 5-minute signature window and the 7-day revoke period.
    pub fn unix_time(&self) -> i64 {
        self.shared.lock().unix_now()
    }

    /// The merchant the WeChat Pay revoke endpoint serves.
    pub fn wechatpay_merchant(&self) -> &WechatpayMerchant {
        &self.shared.wechatpay.merchant
    }

    /// The `Wechatpay-Serial` the endpoints sign their answers under now
    /// (changes after a [rotation](Self::rotate_wechatpay_platform) switches).
    pub fn wechatpay_platform_serial(&self) -> String {
        let mut st = self.shared.lock();
        let now = st.unix_now();
        st.platform(&self.shared.wechatpay, now)
            .signer(now)
            .map_or_else(String::new, |(s, _)| s.to_owned())
    }

    /// Makes the order query report `trade_state` `state` for the order with
    /// this `transaction_id` or `out_trade_no` (as `POST
    /// /sandbox/wechatpay/trade-state`): a test hook for the states the
    /// sandbox's own rules never reach (`REFUND`, `CLOSED`, `NOTPAY`,
    /// `USERPAYING`, `PAYERROR`, or `X_...` for one no client knows). The revoke
    /// rules do not change; a successful revoke clears it.
    pub fn set_wechatpay_trade_state(&self, id: &str, state: &str) -> Result<(), SandboxError> {
        self.shared.lock().set_trade_state(id, state)
    }

    /// Rotates the platform certificate (as `POST /sandbox/wechatpay/rotate`):
    /// a new certificate (new serial, made by rcgen) is listed at once and
    /// signs every answer from `switch_after_secs` (sandbox clock) on; the one
    /// it replaces stays listed `keep_old_secs` longer. Returns the new serial.
    pub fn rotate_wechatpay_platform(
        &self,
        switch_after_secs: u32,
        keep_old_secs: u32,
    ) -> Result<String, SandboxError> {
        self.shared
            .lock()
            .rotate_platform(
                &self.shared.wechatpay,
                i64::from(switch_after_secs),
                i64::from(keep_old_secs),
            )
            .map(|r| r.serial)
            .map_err(|rule| SandboxError::InvalidConfig {
                field: "wechatpay.rotation",
                rule,
            })
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
