//! Layer 1, types: WeChat Pay Global orders (created through the admin API),
//! the endpoints' own part of the state, and the log of their requests.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use super::platform::PlatformSet;
use crate::ids::IdGen;
use crate::model::Currency;

/// How many revoke requests the log keeps (oldest dropped first).
const REQUEST_LOG_CAP: usize = 1_000;
/// Largest accepted Unix time (WeChat Pay timestamps have at most 10 digits).
pub(crate) const MAX_UNIX_SECS: i64 = 9_999_999_999;
/// How long after the payment an order can be revoked (7 days).
pub(crate) const REVOKE_WINDOW_SECS: i64 = 7 * 24 * 60 * 60;

/// When a new WeChat Pay order was paid (by the sandbox's clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaidAt {
    /// At creation time.
    Now,
    /// This many seconds before creation (e.g. `8 * 86_400` for an order that
    /// can no longer be revoked).
    SecondsAgo(u64),
    /// At this Unix time (seconds).
    UnixSeconds(i64),
}

/// A WeChat Pay Global order to create (as `POST /sandbox/payments` with
/// `"channel": "wechatpay"`).
///
/// ```
/// use kicc_sandbox::{Currency, NewWechatpayOrder, PaidAt};
/// let order = NewWechatpayOrder::new(1_000, Currency::Usd)
///     .out_trade_no("ORDER-0001")
///     .paid_seconds_ago(60);
/// assert_eq!(order.paid_at, PaidAt::SecondsAgo(60));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewWechatpayOrder {
    /// Paid amount in minor units.
    pub amount: u64,
    /// Currency.
    pub currency: Currency,
    /// The merchant's order number; `None` lets the sandbox assign one.
    /// 1 to 32 characters, no control characters, not `.` or `..`, unique.
    pub out_trade_no: Option<String>,
    /// When it was paid.
    pub paid_at: PaidAt,
}

impl NewWechatpayOrder {
    /// An order of `amount` minor units, paid now, with an assigned `out_trade_no`.
    pub fn new(amount: u64, currency: Currency) -> Self {
        Self {
            amount,
            currency,
            out_trade_no: None,
            paid_at: PaidAt::Now,
        }
    }

    /// Sets the merchant's order number.
    #[must_use]
    pub fn out_trade_no(mut self, out_trade_no: impl Into<String>) -> Self {
        self.out_trade_no = Some(out_trade_no.into());
        self
    }

    /// Paid `seconds` before creation.
    #[must_use]
    pub fn paid_seconds_ago(mut self, seconds: u64) -> Self {
        self.paid_at = PaidAt::SecondsAgo(seconds);
        self
    }

    /// Paid at `unix_seconds`.
    #[must_use]
    pub fn paid_at_unix(mut self, unix_seconds: i64) -> Self {
        self.paid_at = PaidAt::UnixSeconds(unix_seconds);
        self
    }
}

/// The WeChat Pay side of an order.
#[derive(Clone, Debug)]
pub(crate) struct WxOrderRec {
    pub(crate) transaction_id: String,
    pub(crate) out_trade_no: String,
    /// Unix seconds.
    pub(crate) paid_at: i64,
    /// Unix seconds of the first successful revoke.
    pub(crate) revoked_at: Option<i64>,
    /// How many revoke calls were answered 204 (repeats included).
    pub(crate) reverse_calls: u32,
    /// What the order query reports instead of the rules' state (admin test hook).
    pub(crate) reported_state: Option<String>,
}

impl WxOrderRec {
    /// `SUCCESS` (paid) or `REVOKED`, as WeChat Pay's `trade_state` says.
    pub(crate) fn trade_state(&self) -> &'static str {
        if self.revoked_at.is_some() {
            "REVOKED"
        } else {
            "SUCCESS"
        }
    }
}

/// One WeChat Pay request (revoke, order query, certificates) as the sandbox received and answered it
/// (`GET /sandbox/wechatpay/requests`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WechatpayRequestRecord {
    /// Sandbox time of arrival, Unix seconds.
    pub at: i64,
    /// The request target as received (path and query, percent-encoded).
    pub path: String,
    /// `transaction_id` or `out_trade_no`: which path form was used (empty for
    /// the certificates download).
    pub order_field: String,
    /// The order ID from the path, percent-decoded (lossy for invalid UTF-8).
    pub order_id: String,
    /// `Authorization`'s `mchid`, when the header could be parsed.
    pub mchid: Option<String>,
    /// `Authorization`'s `nonce_str`, when the header could be parsed.
    pub nonce: Option<String>,
    /// `Authorization`'s `timestamp`, when the header could be parsed.
    pub timestamp: Option<String>,
    /// `Authorization`'s `serial_no`, when the header could be parsed.
    pub serial_no: Option<String>,
    /// Lowercase hex SHA-256 over the method, the target, the `Authorization`
    /// value and the body (each followed by `\n`): equal for byte-identical
    /// retries, different for anything re-signed.
    pub request_sha256: String,
    /// The body as text (lossy UTF-8, at most 1024 characters).
    pub body: String,
    /// The HTTP status answered; `None` when the connection was dropped.
    pub http_status: Option<u16>,
    /// The error `code` answered, if any.
    pub code: Option<String>,
    /// The injected fault that hit the request (its admin name), if any.
    pub fault: Option<String>,
    /// Whether the request was processed (it may have revoked the order).
    pub processed: bool,
}

/// Everything the revoke endpoint adds to the sandbox's state.
#[derive(Debug)]
pub(crate) struct WxState {
    pub(crate) by_transaction_id: HashMap<String, String>,
    pub(crate) by_out_trade_no: HashMap<String, String>,
    log: VecDeque<WechatpayRequestRecord>,
    /// Nonces and request IDs: the sandbox's one generator, seeded apart from
    /// the KICC identifiers so these never shift them.
    pub(crate) rng: IdGen,
    /// `(mchid, nonce_str)` of accepted requests and when, for the optional
    /// replay check; entries older than the signature window are pruned.
    nonces: HashMap<(String, String), i64>,
    /// The platform certificates (created on first use from the settings).
    pub(crate) platform: Option<PlatformSet>,
}

impl WxState {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            by_transaction_id: HashMap::new(),
            by_out_trade_no: HashMap::new(),
            log: VecDeque::new(),
            rng: IdGen::new(seed ^ 0x7765_6368_6174_7061),
            nonces: HashMap::new(),
            platform: None,
        }
    }

    /// Records `(mchid, nonce)` at `now`; whether it was already seen within
    /// `window` seconds.
    pub(crate) fn nonce_seen(&mut self, mchid: &str, nonce: &str, now: i64, window: i64) -> bool {
        self.nonces
            .retain(|_, at| now.saturating_sub(*at) <= window);
        self.nonces
            .insert((mchid.to_owned(), nonce.to_owned()), now)
            .is_some()
    }

    pub(crate) fn log(&mut self, record: WechatpayRequestRecord) {
        if self.log.len() >= REQUEST_LOG_CAP {
            self.log.pop_front();
        }
        self.log.push_back(record);
    }

    pub(crate) fn requests(&self) -> Vec<WechatpayRequestRecord> {
        self.log.iter().cloned().collect()
    }
}
