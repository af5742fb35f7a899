//! WeChat Pay Global orders (created through the admin API), the endpoint's
//! own state, and the log of revoke requests.

use std::collections::{HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::model::{Channel, Currency, Payment};
use crate::state::{PaymentRec, State, MAX_PAYMENT_AMOUNT};
use crate::SandboxError;

/// How many revoke requests the log keeps (oldest dropped first).
const REQUEST_LOG_CAP: usize = 1_000;
/// Largest accepted Unix time (WeChat Pay timestamps have at most 10 digits).
pub(crate) const MAX_UNIX_SECS: i64 = 9_999_999_999;
/// How long after the payment an order can be revoked (7 days).
pub(crate) const REVOKE_WINDOW_SECS: i64 = 7 * 24 * 60 * 60;

/// The sandbox's "now" as Unix seconds (real time plus the clock offset).
pub(crate) fn unix_now(offset: i64) -> i64 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    real.saturating_add(offset)
}

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

/// A small deterministic generator (SplitMix64) for nonces and request IDs,
/// separate from the KICC identifiers so these never shift them.
#[derive(Clone, Debug)]
pub(crate) struct WxRng(u64);

impl WxRng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `len` characters from `alphabet` (non-empty).
    pub(crate) fn text(&mut self, alphabet: &[u8], len: usize) -> String {
        let n = alphabet.len().max(1) as u64;
        (0..len)
            .map(|_| {
                let i = usize::try_from(self.next_u64() % n).unwrap_or(0);
                char::from(alphabet.get(i).copied().unwrap_or(b'0'))
            })
            .collect()
    }
}

/// Everything the revoke endpoint adds to the sandbox's state.
#[derive(Debug)]
pub(crate) struct WxState {
    pub(crate) by_transaction_id: HashMap<String, String>,
    pub(crate) by_out_trade_no: HashMap<String, String>,
    log: VecDeque<WechatpayRequestRecord>,
    pub(crate) rng: WxRng,
    /// `(mchid, nonce_str)` of accepted requests and when, for the optional
    /// replay check; entries older than the signature window are pruned.
    nonces: HashMap<(String, String), i64>,
    /// The platform certificates (created on first use from the settings).
    pub(crate) platform: Option<super::platform::PlatformSet>,
}

impl WxState {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            by_transaction_id: HashMap::new(),
            by_out_trade_no: HashMap::new(),
            log: VecDeque::new(),
            rng: WxRng(seed ^ 0x7765_6368_6174_7061),
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

/// Checks an `out_trade_no` given to the admin API (the revoke page's
/// `string(32)`, and usable as a URL path segment).
fn check_out_trade_no(value: &str) -> Result<(), String> {
    let count = value.chars().count();
    if count == 0 || count > 32 {
        return Err(format!("must be 1 to 32 characters, got {count}"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    if value == "." || value == ".." {
        return Err("must not be \".\" or \"..\" (it is a URL path segment)".to_owned());
    }
    Ok(())
}

impl State {
    /// The sandbox's "now" as Unix seconds.
    pub(crate) fn unix_now(&self) -> i64 {
        unix_now(self.clock_offset())
    }

    /// The pgCno of a WeChat Pay order, by `transaction_id` or `out_trade_no`.
    pub(crate) fn wechatpay_pg_cno(&self, id: &str) -> Option<&str> {
        self.wx
            .by_transaction_id
            .get(id)
            .or_else(|| self.wx.by_out_trade_no.get(id))
            .map(String::as_str)
    }

    /// Creates a WeChat Pay Global order.
    pub(crate) fn create_wechatpay_order(
        &mut self,
        mall_id: &str,
        order: &NewWechatpayOrder,
    ) -> Result<Payment, SandboxError> {
        let invalid =
            |field: &'static str, rule: String| SandboxError::InvalidPayment { field, rule };
        if order.amount == 0 || order.amount > MAX_PAYMENT_AMOUNT {
            return Err(invalid(
                "amount",
                format!("must be a positive integer in minor units, at most {MAX_PAYMENT_AMOUNT}"),
            ));
        }
        if let Some(no) = &order.out_trade_no {
            check_out_trade_no(no).map_err(|rule| invalid("outTradeNo", rule))?;
            if let Some(pg) = self.wx.by_out_trade_no.get(no) {
                return Err(invalid(
                    "outTradeNo",
                    format!("must be unique; {no:?} already belongs to payment {pg}"),
                ));
            }
        }
        let now = self.unix_now();
        let paid_at = match order.paid_at {
            PaidAt::Now => now,
            PaidAt::SecondsAgo(secs) => now.saturating_sub(i64::try_from(secs).unwrap_or(i64::MAX)),
            PaidAt::UnixSeconds(t) => t,
        };
        if !(0..=MAX_UNIX_SECS).contains(&paid_at) {
            return Err(invalid(
                "paidAt",
                format!("must fall within 0..={MAX_UNIX_SECS} Unix seconds, got {paid_at}"),
            ));
        }
        let pg_cno = self.fresh_id("SBP");
        let transaction_id = loop {
            let id = format!(
                "4200{}{}",
                self.ids.next_id("", 12),
                self.ids.next_id("", 12)
            );
            if !self.wx.by_transaction_id.contains_key(&id) {
                break id;
            }
        };
        let out_trade_no = match &order.out_trade_no {
            Some(no) => no.clone(),
            None => loop {
                let no = self.ids.next_id("WXORDER", 17);
                if !self.wx.by_out_trade_no.contains_key(&no) {
                    break no;
                }
            },
        };
        let rec = PaymentRec {
            pg_cno: pg_cno.clone(),
            shop_order_no: out_trade_no.clone(),
            channel: Channel::WechatpayGlobal,
            currency: order.currency,
            amount: order.amount,
            remaining: order.amount,
            reserved: 0,
            authorized_only: false,
            captured: false,
            cancels: Vec::new(),
            wechatpay: Some(WxOrderRec {
                transaction_id: transaction_id.clone(),
                out_trade_no: out_trade_no.clone(),
                paid_at,
                revoked_at: None,
                reverse_calls: 0,
                reported_state: None,
            }),
        };
        self.payments.insert(pg_cno.clone(), rec);
        self.wx
            .by_transaction_id
            .insert(transaction_id.clone(), pg_cno.clone());
        self.wx
            .by_out_trade_no
            .insert(out_trade_no.clone(), pg_cno.clone());
        Ok(Payment {
            pg_cno,
            mall_id: mall_id.to_owned(),
            shop_order_no: out_trade_no.clone(),
            amount: order.amount,
            currency: order.currency,
            channel: Channel::WechatpayGlobal,
            authorized_only: false,
            transaction_id: Some(transaction_id),
            out_trade_no: Some(out_trade_no),
            paid_at: Some(paid_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_trade_no_rules() {
        assert!(check_out_trade_no("ORDER-1").is_ok());
        assert!(check_out_trade_no(&"订".repeat(32)).is_ok());
        assert!(check_out_trade_no(&"订".repeat(33)).is_err());
        assert!(check_out_trade_no("").is_err());
        assert!(check_out_trade_no("a\nb").is_err());
        assert!(check_out_trade_no("..").is_err());
    }

    #[test]
    fn orders_get_unique_ids_and_paid_times() {
        let mut st = State::new(7, 0);
        let a = st
            .create_wechatpay_order("T0000001", &NewWechatpayOrder::new(100, Currency::Usd))
            .unwrap();
        let b = st
            .create_wechatpay_order(
                "T0000001",
                &NewWechatpayOrder::new(100, Currency::Krw).paid_seconds_ago(8 * 86_400),
            )
            .unwrap();
        let (ta, tb) = (a.transaction_id.unwrap(), b.transaction_id.unwrap());
        assert_ne!(ta, tb);
        assert_eq!(ta.len(), 28);
        assert!(ta.bytes().all(|c| c.is_ascii_digit()));
        assert!(a.out_trade_no.unwrap().len() <= 32);
        let age = a.paid_at.unwrap() - b.paid_at.unwrap();
        assert!((8 * 86_400..8 * 86_400 + 5).contains(&age), "{age}");
        let dup = NewWechatpayOrder::new(1, Currency::Krw).out_trade_no(b.shop_order_no);
        assert!(matches!(
            st.create_wechatpay_order("T0000001", &dup),
            Err(SandboxError::InvalidPayment {
                field: "outTradeNo",
                ..
            })
        ));
        let future = NewWechatpayOrder::new(1, Currency::Krw).paid_at_unix(-1);
        assert!(st.create_wechatpay_order("T0000001", &future).is_err());
    }

    #[test]
    fn rng_text_uses_the_alphabet() {
        let mut r = WxRng(1);
        let t = r.text(b"ab", 64);
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|c| c == b'a' || c == b'b'));
        assert_ne!(r.text(b"0123456789", 20), r.text(b"0123456789", 20));
    }
}
