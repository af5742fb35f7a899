//! Layer 2, state: the records the state is made of (payments, cancels,
//! keys, faults, notices, the look-up log). Plain data.

use std::collections::HashMap;

use bytes::Bytes;

use crate::model::{Channel, Currency, FaultKind};
use crate::routes::ApiEndpoint;
use crate::wechat_final::WechatFinal;
use crate::wechatpay::WxOrderRec;

/// Status: approved (or authorized only).
pub(crate) const TS01: &str = "TS01";
/// Status: fully cancelled.
pub(crate) const TS02: &str = "TS02";
/// Status: captured.
pub(crate) const TS04: &str = "TS04";
/// Status: partially cancelled.
pub(crate) const TS06: &str = "TS06";
/// Status: network cancel (void), WeChat only.
pub(crate) const TS12: &str = "TS12";

/// The largest payment the admin API creates (keeps amounts exact in JSON
/// consumers that use doubles).
pub(crate) const MAX_PAYMENT_AMOUNT: u64 = 999_999_999_999_999;

/// Human-readable status message for a status code.
pub(crate) fn status_message(code: &str) -> &'static str {
    match code {
        TS01 => "Approved",
        TS02 => "Approval Cancelled",
        TS04 => "Captured",
        TS06 => "Partially Cancelled",
        TS12 => "Network Cancelled",
        _ => "Unknown",
    }
}

/// A simulated payment.
#[derive(Clone, Debug)]
pub(crate) struct PaymentRec {
    pub(crate) pg_cno: String,
    pub(crate) shop_order_no: String,
    pub(crate) channel: Channel,
    pub(crate) currency: Currency,
    pub(crate) amount: u64,
    /// Cancellable balance (applied revisions only).
    pub(crate) remaining: u64,
    /// Amount held by accepted, not yet applied WeChat cancels.
    pub(crate) reserved: u64,
    pub(crate) authorized_only: bool,
    pub(crate) captured: bool,
    pub(crate) cancels: Vec<CancelRec>,
    /// WeChat Pay Global orders only: the WeChat Pay side.
    pub(crate) wechatpay: Option<WxOrderRec>,
}

impl PaymentRec {
    /// What a new cancel may still take.
    pub(crate) fn available(&self) -> u64 {
        self.remaining.saturating_sub(self.reserved)
    }

    /// The status derived from the balances.
    pub(crate) fn status(&self) -> &'static str {
        if self.remaining == 0 {
            TS02
        } else if self.remaining < self.amount {
            TS06
        } else if self.authorized_only && self.captured {
            TS04
        } else {
            TS01
        }
    }
}

/// A revision (cancel or capture) of a payment.
#[derive(Clone, Debug)]
pub(crate) struct CancelRec {
    pub(crate) cancel_pg_cno: String,
    pub(crate) shop_transaction_id: String,
    pub(crate) endpoint: ApiEndpoint,
    pub(crate) revise_type_code: String,
    /// The amount the request carried, if any (matched by `refundQueryFlag`).
    pub(crate) requested_amount: Option<u64>,
    /// Amount cancelled (captured amount for code 20).
    pub(crate) amount: u64,
    /// Cancellable balance before this revision.
    pub(crate) balance_before: u64,
    /// Cancellable balance after it.
    pub(crate) remaining_after: u64,
    /// `TS01` while pending (WeChat), else the payment's status right after it.
    pub(crate) status: &'static str,
    pub(crate) cancel_req_date: String,
    pub(crate) transaction_date: String,
    pub(crate) approval_no: String,
    pub(crate) notify_url: Option<String>,
    pub(crate) withheld: bool,
    /// WeChat: how the cancel will finish (decided when it is accepted).
    pub(crate) finish_as: WechatFinal,
    /// WeChat: the failure it finished with (`resCd`, detail), if it failed.
    pub(crate) failure: Option<(String, Option<String>)>,
}

impl CancelRec {
    /// `pending`, `applied` or `failed` (see [`CancelState::outcome`](crate::CancelState::outcome)).
    pub(crate) fn outcome(&self) -> &'static str {
        if self.failure.is_some() {
            "failed"
        } else if self.endpoint == ApiEndpoint::WechatRevise && self.status == TS01 {
            "pending"
        } else {
            "applied"
        }
    }
}

/// What an idempotency key was used for.
#[derive(Clone, Debug)]
pub(crate) struct KeyRecord {
    /// Korea day number of the first use.
    pub(crate) day: i64,
    pub(crate) endpoint: ApiEndpoint,
    pub(crate) pg_cno: String,
    pub(crate) cancel_req_date: String,
    /// The exact response body answered.
    pub(crate) body: Bytes,
}

/// A fault waiting for calls.
#[derive(Clone, Debug)]
pub(crate) struct FaultEntry {
    pub(crate) kind: FaultKind,
    pub(crate) remaining: u32,
    pub(crate) apply: bool,
    pub(crate) res_detail_msg: Option<String>,
}

/// A fault that hit a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ActiveFault {
    pub(crate) kind: FaultKind,
    pub(crate) apply: bool,
    pub(crate) res_detail_msg: Option<String>,
}

/// A fault still waiting, as `GET /sandbox/faults` lists it.
#[derive(Clone, Debug)]
pub(crate) struct PendingFault {
    pub(crate) path: String,
    pub(crate) kind: FaultKind,
    pub(crate) times: u32,
    pub(crate) apply: bool,
    pub(crate) res_detail_msg: Option<String>,
}

/// A notice ready to send.
#[derive(Clone, Debug)]
pub(crate) struct Notice {
    pub(crate) pg_cno: String,
    pub(crate) cancel_pg_cno: String,
    pub(crate) url: String,
    pub(crate) body: Bytes,
}

/// Entries older than this many Korea days are forgotten (only the current
/// and the previous day can be asked for).
const RETENTION_DAYS: i64 = 2;

/// Processed revise requests by (`shopTransactionId`, Korea day processed).
#[derive(Debug, Default)]
pub(crate) struct TxLog {
    entries: HashMap<(String, i64), Bytes>,
    inserts: u64,
}

impl TxLog {
    /// Logs what a processed request answered. The first record of a key on a
    /// day stays: a later same-day request with that key is a duplicate
    /// (`D001`, not logged) or an Alipay/WeChat retry answered the same bytes.
    pub(crate) fn record(&mut self, key: &str, day: i64, body: &Bytes) {
        self.entries
            .entry((key.to_owned(), day))
            .or_insert_with(|| body.clone());
        self.inserts = self.inserts.wrapping_add(1);
        if self.inserts.is_multiple_of(1024) {
            self.entries
                .retain(|(_, d), _| *d >= day.saturating_sub(RETENTION_DAYS));
        }
    }

    pub(crate) fn get(&self, key: &str, day: i64) -> Option<&Bytes> {
        self.entries.get(&(key.to_owned(), day))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_record_of_a_day_stays() {
        let mut log = TxLog::default();
        log.record("k", 10, &Bytes::from_static(b"first"));
        log.record("k", 10, &Bytes::from_static(b"second"));
        log.record("k", 11, &Bytes::from_static(b"next day"));
        assert_eq!(log.get("k", 10).map(|b| &b[..]), Some(&b"first"[..]));
        assert_eq!(log.get("k", 11).map(|b| &b[..]), Some(&b"next day"[..]));
        assert!(log.get("k", 12).is_none());
        assert!(log.get("other", 10).is_none());
    }
}
