//! Webhooks (notifications) KICC sends, and the acknowledgements it expects.
//!
//! Notices carry no signature: KICC protects them by source IP (see
//! [`is_documented_source_ip`]). They are re-sent until acknowledged (WeChat Pay cancel: up to
//! 15 times; generic: 10 times, 3 minutes apart), so a receiver must de-duplicate
//! ([`WechatCancelNotice::dedup_key`], [`GenericNotice::dedup_key`]) and should confirm with a
//! status query before moving money on a notice alone. Reply within 10 s with
//! [`Acknowledgement::Received`].

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::wire::{opt_amount, ResponseAmountInfo};

/// Why a notice could not be read. Answer such a request with [`Acknowledgement::Rejected`]
/// (or a non-2xx status) so KICC re-sends it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The body is not a JSON object of the expected shape; the JSON reader's error is the
    /// [`source`](std::error::Error::source).
    #[error("webhook body is not a valid notice: {0}")]
    Malformed(#[source] JsonError),
    /// A field the notice cannot be used without is missing or empty.
    #[error("webhook notice lacks {0}")]
    Missing(&'static str),
}

/// Why a body is not the JSON expected: where reading stopped and why. Its
/// [`source`](std::error::Error::source) is the JSON reader's own error.
///
/// Cheap to clone; two are equal when they say the same thing at the same place.
#[derive(Clone)]
pub struct JsonError(Arc<serde_json::Error>);

impl JsonError {
    fn new(e: serde_json::Error) -> Self {
        JsonError(Arc::new(e))
    }

    /// The line (1-based) where reading stopped.
    pub fn line(&self) -> usize {
        self.0.line()
    }

    /// The column (1-based) where reading stopped.
    pub fn column(&self) -> usize {
        self.0.column()
    }
}

impl fmt::Debug for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl PartialEq for JsonError {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for JsonError {}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The WeChat Pay cancel result KICC posts to `notifyUrl`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WechatCancelNotice {
    /// `resCd`: `0000` when the cancel succeeded.
    pub res_cd: String,
    /// `resMsg`.
    #[serde(default)]
    pub res_msg: String,
    /// `mallId`.
    #[serde(default)]
    pub mall_id: String,
    /// `shopOrderNo`.
    #[serde(default)]
    pub shop_order_no: String,
    /// `pgCno`: the original payment.
    pub pg_cno: String,
    /// `cancelPgCno`: the cancellation.
    pub cancel_pg_cno: String,
    /// `cancelDate`, `yyyyMMddHHmmss` Korea time.
    #[serde(default)]
    pub cancel_date: String,
    /// `amountInfo { currency, amount }` (spelled `amount` here, `totAmount` elsewhere).
    #[serde(default)]
    pub amount_info: Option<ResponseAmountInfo>,
    /// `resDetailMsg` (a failed cancel's detail from WeChat Pay), as received (form-encoded).
    #[serde(default)]
    pub res_detail_msg: Option<String>,
}

impl WechatCancelNotice {
    /// Parses a notice body. Never panics; unknown fields are ignored.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        let n: WechatCancelNotice =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(JsonError::new(e)))?;
        if n.res_cd.is_empty() {
            return Err(WebhookError::Missing("resCd"));
        }
        if n.pg_cno.is_empty() {
            return Err(WebhookError::Missing("pgCno"));
        }
        if n.cancel_pg_cno.is_empty() {
            return Err(WebhookError::Missing("cancelPgCno"));
        }
        Ok(n)
    }

    /// Whether the cancel succeeded.
    pub fn is_success(&self) -> bool {
        self.res_cd == crate::codes::SUCCESS
    }

    /// The same for every re-send of this notice, different for any other notice.
    pub fn dedup_key(&self) -> DedupKey {
        DedupKey(format!(
            "wechat|{}|{}|{}",
            self.pg_cno, self.cancel_pg_cno, self.res_cd
        ))
    }
}

/// `notiType` of the generic webhook.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotiType {
    /// `10` approval.
    Approval,
    /// `20` change / cancel.
    ChangeOrCancel,
    /// `30` deposit (virtual account).
    Deposit,
    /// `31` deposit cancelled.
    DepositCancelled,
    /// `40` escrow.
    Escrow,
    /// `50` refund complete.
    RefundComplete,
    /// `51` transfer failed.
    TransferFailed,
    /// Any other value, verbatim.
    Other(String),
}

impl NotiType {
    fn parse(s: &str) -> Self {
        match s {
            "10" => NotiType::Approval,
            "20" => NotiType::ChangeOrCancel,
            "30" => NotiType::Deposit,
            "31" => NotiType::DepositCancelled,
            "40" => NotiType::Escrow,
            "50" => NotiType::RefundComplete,
            "51" => NotiType::TransferFailed,
            other => NotiType::Other(other.to_owned()),
        }
    }

    /// The code as KICC sends it.
    pub fn code(&self) -> &str {
        match self {
            NotiType::Approval => "10",
            NotiType::ChangeOrCancel => "20",
            NotiType::Deposit => "30",
            NotiType::DepositCancelled => "31",
            NotiType::Escrow => "40",
            NotiType::RefundComplete => "50",
            NotiType::TransferFailed => "51",
            NotiType::Other(s) => s,
        }
    }
}

impl<'de> serde::Deserialize<'de> for NotiType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Sent as a string; tolerate a number.
        let v = serde_json::Value::deserialize(d)?;
        match v {
            serde_json::Value::String(s) => Ok(NotiType::parse(&s)),
            serde_json::Value::Number(n) => Ok(NotiType::parse(&n.to_string())),
            _ => Err(serde::de::Error::custom("notiType must be a string")),
        }
    }
}

/// The generic notice (approval, cancel, deposit, ...). Amounts arrive as strings; both
/// strings and numbers are accepted. Fields this SDK does not model are kept in `extra`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct GenericNotice {
    /// `notiType`.
    pub noti_type: NotiType,
    /// `resCd`.
    #[serde(default)]
    pub res_cd: String,
    /// `resMsg`.
    #[serde(default)]
    pub res_msg: String,
    /// `mallId`.
    #[serde(default)]
    pub mall_id: String,
    /// `pgCno`.
    pub pg_cno: String,
    /// `shopOrderNo`.
    #[serde(default)]
    pub shop_order_no: String,
    /// `cancelPgCno`, on change / cancel notices.
    #[serde(default)]
    pub cancel_pg_cno: String,
    /// `amount`.
    #[serde(default, deserialize_with = "opt_amount")]
    pub amount: Option<u64>,
    /// `cancelAmount`.
    #[serde(default, deserialize_with = "opt_amount")]
    pub cancel_amount: Option<u64>,
    /// `remainAmount`.
    #[serde(default, deserialize_with = "opt_amount")]
    pub remain_amount: Option<u64>,
    /// `statusCode` (TS02, TS06, ...).
    #[serde(default)]
    pub status_code: String,
    /// `transactionDate`, `yyyyMMddHHmmss`.
    #[serde(default)]
    pub transaction_date: String,
    /// Every other field, verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl GenericNotice {
    /// Parses a notice body (JSON). Never panics.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        let n: GenericNotice =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(JsonError::new(e)))?;
        if n.pg_cno.is_empty() {
            return Err(WebhookError::Missing("pgCno"));
        }
        Ok(n)
    }

    /// The same for every re-send of this notice, different for any other notice about the
    /// same payment (type, cancellation, time and amounts all take part).
    pub fn dedup_key(&self) -> DedupKey {
        let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        DedupKey(format!(
            "generic|{}|{}|{}|{}|{}|{}|{}",
            self.noti_type.code(),
            self.pg_cno,
            self.cancel_pg_cno,
            self.transaction_date,
            n(self.amount),
            n(self.cancel_amount),
            self.res_cd
        ))
    }
}

/// Identifies one notice across KICC's re-sends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DedupKey(String);

impl DedupKey {
    /// The key as text (store it in your database's unique index).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Remembers the notices already handled, so KICC's re-sends are acknowledged without being
/// processed twice. Bounded: the oldest keys are forgotten first (re-sends come within
/// hours, so a few thousand keys cover them; keep a database unique index for durability).
#[derive(Debug, Clone)]
pub struct Deduplicator {
    seen: std::collections::HashSet<DedupKey>,
    order: std::collections::VecDeque<DedupKey>,
    capacity: usize,
}

impl Deduplicator {
    /// Remembers at most `capacity` notices (at least 1).
    pub fn new(capacity: usize) -> Self {
        Deduplicator {
            seen: std::collections::HashSet::new(),
            order: std::collections::VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// `true` the first time `key` is seen, `false` for a re-send.
    pub fn first_time(&mut self, key: &DedupKey) -> bool {
        if self.seen.contains(key) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(key.clone());
        self.order.push_back(key.clone());
        true
    }
}

impl Default for Deduplicator {
    /// Remembers 10,000 notices.
    fn default() -> Self {
        Deduplicator::new(10_000)
    }
}

/// The reply to a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acknowledgement {
    /// Received (also for a duplicate): KICC stops re-sending.
    Received,
    /// Not accepted: KICC re-sends later. The reason is for KICC's logs.
    Rejected(String),
}

impl Acknowledgement {
    /// The JSON body: `{"resCd":"0000","resMsg":"OK"}` or a non-0000 code with the reason.
    pub fn to_body(&self) -> Vec<u8> {
        let (code, msg) = match self {
            Acknowledgement::Received => ("0000", "OK"),
            Acknowledgement::Rejected(reason) => ("9999", reason.as_str()),
        };
        serde_json::json!({ "resCd": code, "resMsg": msg })
            .to_string()
            .into_bytes()
    }
}

/// The documented source addresses of KICC's notices.
pub mod source_ips {
    /// WeChat Pay cancel notices, production.
    pub const WECHAT_PRODUCTION: &[&str] = &["203.233.72.66"];
    /// Generic notices, production.
    pub const GENERIC_PRODUCTION: &[&str] = &["203.233.72.150", "203.233.72.151", "61.33.211.180"];
    /// Both kinds, development (test host).
    pub const DEVELOPMENT: &[&str] = &["61.33.205.151"];
}

/// Whether `ip` is one of KICC's documented notice sources, production and development
/// (allow-list it at your edge; the list may change, so keep it configurable there).
pub fn is_documented_source_ip(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    source_ips::WECHAT_PRODUCTION
        .iter()
        .chain(source_ips::GENERIC_PRODUCTION)
        .chain(source_ips::DEVELOPMENT)
        .any(|s| s.parse::<IpAddr>().ok() == Some(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_malformed_body_keeps_the_json_error_as_its_source() {
        use std::error::Error as _;
        let err = GenericNotice::parse(b"{\"pgCno\": ").unwrap_err();
        let WebhookError::Malformed(json) = &err else {
            panic!("expected Malformed, got {err:?}");
        };
        assert_eq!((json.line(), json.column()), (1, 10));
        let source = err.source().expect("Malformed has a source");
        assert_eq!(source.to_string(), json.to_string());
        assert!(
            source.source().is_some(),
            "the JSON reader's own error is below it"
        );
        assert_eq!(err.clone(), err);
    }

    #[test]
    fn wechat_notice() {
        let body = br#"{"resCd":"0000","resMsg":"OK","mallId":"T0000001","shopOrderNo":"O-1",
            "pgCno":"P1","cancelPgCno":"C1","cancelDate":"20261121235959",
            "amountInfo":{"currency":"USD","amount":1203},"newField":true}"#;
        let n = WechatCancelNotice::parse(body).unwrap();
        assert!(n.is_success());
        assert_eq!(n.amount_info.as_ref().unwrap().tot_amount, Some(1203));
        assert_eq!(
            n.dedup_key(),
            WechatCancelNotice::parse(body).unwrap().dedup_key()
        );
        let other = WechatCancelNotice::parse(
            &String::from_utf8_lossy(body)
                .replace("C1", "C2")
                .into_bytes(),
        )
        .unwrap();
        assert_ne!(n.dedup_key(), other.dedup_key());
        assert_eq!(
            WechatCancelNotice::parse(br#"{"resCd":"0000","pgCno":"P1","cancelPgCno":""}"#)
                .unwrap_err(),
            WebhookError::Missing("cancelPgCno")
        );
    }

    #[test]
    fn generic_notice_with_string_amounts() {
        let body = br#"{"notiType":"20","resCd":"0000","pgCno":"P1","cancelPgCno":"C9",
            "amount":"51004","cancelAmount":"1000","remainAmount":"50004","statusCode":"TS06",
            "transactionDate":"20261121101010","approvalNo":"123"}"#;
        let n = GenericNotice::parse(body).unwrap();
        assert_eq!(n.noti_type, NotiType::ChangeOrCancel);
        assert_eq!(
            (n.amount, n.cancel_amount, n.remain_amount),
            (Some(51004), Some(1000), Some(50004))
        );
        assert_eq!(
            n.extra.get("approvalNo").and_then(|v| v.as_str()),
            Some("123")
        );
        let n2 = GenericNotice::parse(br#"{"notiType":30,"pgCno":"P1","amount":5}"#).unwrap();
        assert_eq!(n2.noti_type, NotiType::Deposit);
        assert_ne!(n.dedup_key(), n2.dedup_key());
    }

    #[test]
    fn dedup_is_bounded() {
        let k = |s: &str| DedupKey(s.to_owned());
        let mut d = Deduplicator::new(2);
        assert!(d.first_time(&k("a")));
        assert!(!d.first_time(&k("a")));
        assert!(d.first_time(&k("b")));
        assert!(d.first_time(&k("c"))); // evicts "a"
        assert!(!d.first_time(&k("b")));
        assert!(d.first_time(&k("a")));
    }

    #[test]
    fn acknowledgements() {
        assert_eq!(
            Acknowledgement::Received.to_body(),
            br#"{"resCd":"0000","resMsg":"OK"}"#
        );
        let body = Acknowledgement::Rejected("bad \"x\"".into()).to_body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["resCd"], "9999");
        assert_eq!(v["resMsg"], "bad \"x\"");
    }

    #[test]
    fn source_ips() {
        assert!(is_documented_source_ip("203.233.72.66".parse().unwrap()));
        assert!(is_documented_source_ip(
            "::ffff:61.33.205.151".parse().unwrap()
        ));
        assert!(!is_documented_source_ip("127.0.0.1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = WechatCancelNotice::parse(&bytes);
            let _ = GenericNotice::parse(&bytes);
        }

        #[test]
        fn parsing_arbitrary_json_never_panics(s in r#"\{("[a-zA-Z]{1,12}":("[^"\\]{0,8}"|-?[0-9]{1,25}(\.[0-9])?|null|true|\{\}|\[\]),?){0,8}\}"#) {
            let _ = WechatCancelNotice::parse(s.as_bytes());
            let _ = GenericNotice::parse(s.as_bytes());
        }
    }
}
