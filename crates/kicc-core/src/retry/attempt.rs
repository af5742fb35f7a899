//! One attempt that reached (or may have reached) the gateway: the unit of resuming.

use std::time::SystemTime;

use crate::date::KoreaDate;
use crate::text::ShopTransactionId;

/// One attempt that reached (or may have reached) the gateway: what a resume needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// An attempt keyed `key` and dated `date`, with no known send time and no refund query
    /// (set [`SentAttempt::sent_at`] and [`SentAttempt::refund_query`] when they are known).
    ///
    /// ```
    /// use kicc_core::retry::SentAttempt;
    /// use kicc_core::{KoreaDate, ShopTransactionId};
    ///
    /// let mut sent = SentAttempt::new(
    ///     ShopTransactionId::new("KEY1")?,
    ///     KoreaDate::parse("date", "20261121")?,
    /// );
    /// sent.sent_at = Some(std::time::SystemTime::now());
    /// assert_eq!(sent.resume_key(), "KEY1@20261121");
    /// # Ok::<(), kicc_core::FieldError>(())
    /// ```
    pub fn new(key: ShopTransactionId, date: KoreaDate) -> Self {
        SentAttempt {
            key,
            date,
            sent_at: None,
            refund_query: false,
        }
    }

    /// `KEY@yyyyMMdd`, as `kicc cancel --resume-key` takes it.
    pub fn resume_key(&self) -> String {
        format!("{}@{}", self.key, self.date)
    }
}
