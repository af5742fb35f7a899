//! What the state machine needs from a channel: its request, how to read its answers, and
//! how an attempt ended.

use std::time::SystemTime;

use bytes::Bytes;

use crate::date::KoreaDate;
use crate::field::FieldError;
use crate::revise::{Channel, RetryStyle};
use crate::text::ShopTransactionId;

/// What a response body said, as the channel reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interpreted<T> {
    /// `resCd` 0000 and a readable response (not yet checked to be this request's: [`tie`](super::tie)).
    Success(T),
    /// Any other `resCd`.
    Gateway {
        /// `resCd`.
        res_cd: String,
        /// `resMsg`.
        res_msg: String,
        /// `resDetailMsg`, form-decoded, if present.
        detail: Option<String>,
    },
    /// Not a response this channel can read.
    Unreadable(String),
}

/// How the next attempt must differ from the last one.
///
/// Deliberately exhaustive: every channel's [`Exchange::prepare_resend`] must rebuild its
/// request for each kind, so a new kind is a breaking change the compiler points out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resend {
    /// Resend the undelivered request; `now` for a date refresh.
    Undelivered {
        /// The time of the new attempt.
        now: SystemTime,
    },
    /// Every earlier key was proven not processed: a new cancel with `new_key`, dated `now`.
    Fresh {
        /// The new `shopTransactionId`.
        new_key: ShopTransactionId,
        /// The time of the new attempt.
        now: SystemTime,
        /// Whether to send it with `refundQueryFlag = "Y"`.
        refund_query: bool,
    },
}

/// What an answer must say to be this request's (see [`tie`](super::tie)).
///
/// Built as a struct literal by each channel's [`Exchange::expected`], and deliberately
/// exhaustive: a new thing an answer must echo has to be given by every channel, so adding a
/// field should fail to compile there rather than default to "not checked".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The payment this request cancels.
    pub pg_cno: &'a str,
    /// The amount it cancels in minor units, when known (partial cancels; a full cancel when
    /// the caller gave the balance).
    pub amount: Option<u64>,
}

/// What a gateway answer says about the request it answers: implemented by each response.
pub trait Describes {
    /// The echoed `shopTransactionId` (empty if absent).
    fn described_key(&self) -> &str;
    /// The payment it is about (`oriPgCno` / `pgCno`; empty if absent).
    fn described_pg_cno(&self) -> &str;
    /// The amount it cancelled, in minor units, if stated.
    fn described_amount(&self) -> Option<u64>;
    /// `transactionDate` (`yyyyMMddHHmmss`, Korea time; empty if absent).
    fn transaction_date(&self) -> &str;
    /// The cancel it describes (`cancelPgCno`; empty if absent).
    fn described_cancel_pg_cno(&self) -> &str;
}

/// One channel's request and how to read its answers; implemented by the channel crates.
pub trait Exchange {
    /// What a successful response gives the caller.
    type Output: Describes;
    /// The channel, for code classification and the retry style.
    fn channel(&self) -> Channel;
    /// The request for the next attempt.
    fn request(&self) -> &http::Request<Bytes>;
    /// The `shopTransactionId` in [`Exchange::request`].
    fn shop_transaction_id(&self) -> &ShopTransactionId;
    /// The `cancelReqDate` in [`Exchange::request`] (`None` for messages without one).
    fn request_date(&self) -> Option<KoreaDate>;
    /// How this exchange is retried (by default, its channel's style).
    fn retry_style(&self) -> RetryStyle {
        self.channel().retry_style()
    }
    /// Whether [`Exchange::request`] is a refund query (`refundQueryFlag = "Y"`).
    fn is_refund_query(&self) -> bool {
        false
    }
    /// What an answer must echo to be this request's.
    fn expected(&self) -> Expected<'_>;
    /// Reads an HTTP 200 body (the answer to the request keyed `key`, or a look-up of it).
    fn interpret(&self, body: &[u8]) -> Interpreted<Self::Output>;
    /// Rebuilds the request for a resend (never called with [`RetryStyle::SameRequest`]).
    fn prepare_resend(&mut self, resend: Resend) -> Result<(), FieldError>;
    /// The look-up of `key` under Korea date `date` (`retrieveTransaction`), for channels of
    /// [`RetryStyle::LookUp`]; `None` where the channel has no look-up.
    fn lookup(
        &self,
        _key: &ShopTransactionId,
        _date: KoreaDate,
    ) -> Option<Result<http::Request<Bytes>, FieldError>> {
        None
    }
}

/// How one attempt ended, as the transport saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery<'a> {
    /// A complete HTTP response.
    Response {
        /// The HTTP status.
        status: u16,
        /// The body.
        body: &'a [u8],
    },
    /// The request certainly never reached the server (connection refused, DNS, TLS handshake).
    NotDelivered {
        /// What failed.
        reason: &'a str,
    },
    /// The request may have reached the server, but no response came (timeout, connection lost).
    Unknown {
        /// What failed.
        reason: &'a str,
    },
}
