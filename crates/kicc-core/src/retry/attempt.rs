//! One attempt that reached (or may have reached) the gateway: the unit of resuming.

use std::time::SystemTime;

use crate::date::KoreaDate;
use crate::text::ShopTransactionId;

/// One attempt that reached (or may have reached) the gateway: what a resume needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentAttempt {
    /// Its `shopTransactionId`.
    pub key: ShopTransactionId,
    /// Its `cancelReqDate`, the Korea date it is looked up under.
    pub date: KoreaDate,
    /// When it was sent, if known. Unknown (a resume from a key and date only): look-ups wait
    /// a full processing bound from the resume, and answers dated from the start of its
    /// Korea day count as possibly its own.
    pub sent_at: Option<SystemTime>,
    /// Whether it carried `refundQueryFlag = "Y"` (its answer never ties by itself).
    pub refund_query: bool,
}

impl SentAttempt {
    /// `KEY@yyyyMMdd`, as `kicc cancel --resume-key` takes it.
    pub fn resume_key(&self) -> String {
        format!("{}@{}", self.key, self.date)
    }
}
