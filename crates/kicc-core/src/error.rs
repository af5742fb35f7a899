//! Errors, split by what the caller must do next.

use std::fmt;

use crate::field::FieldError;
use crate::retry::SentAttempt;

/// What KICC answered when it said no.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayError {
    /// The response code (`resCd`).
    pub res_cd: String,
    /// The response message (`resMsg`); may change over time, the code does not.
    pub res_msg: String,
    /// The `shopTransactionId` of the request that got this answer.
    pub shop_transaction_id: String,
    /// `resDetailMsg` (the wallet's or acquirer's own reason), form-decoded; `None` if absent.
    pub res_detail_msg: Option<String>,
    /// The HTTP status of the answer (200 when `resCd` is meaningful).
    pub http_status: u16,
}

impl GatewayError {
    /// A gateway answer `res_cd` / `res_msg` on HTTP 200 to the request keyed `key`.
    pub fn new(
        res_cd: impl Into<String>,
        res_msg: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        GatewayError {
            res_cd: res_cd.into(),
            res_msg: res_msg.into(),
            shop_transaction_id: key.into(),
            res_detail_msg: None,
            http_status: 200,
        }
    }

    /// Adds the decoded `resDetailMsg` (an empty one is kept as absent).
    pub fn with_detail(mut self, detail: Option<String>) -> Self {
        self.res_detail_msg = detail.filter(|d| !d.is_empty());
        self
    }
}

/// The gateway's answer is the [`source`](std::error::Error::source) of
/// [`Error::Declined`], so error reporters show its code and message as the cause.
impl std::error::Error for GatewayError {}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "resCd {} ({}) for shopTransactionId {}",
            self.res_cd, self.res_msg, self.shop_transaction_id
        )?;
        if let Some(detail) = &self.res_detail_msg {
            write!(f, "; detail: {detail}")?;
        }
        Ok(())
    }
}

/// Everything that can stop a cancellation, split by what the caller must do next.
///
/// | variant | did money move? | what to do |
/// |---|---|---|
/// | [`Error::Invalid`] | no, nothing was sent | fix the input |
/// | [`Error::Declined`] | no | read `res_cd`; the gateway said no |
/// | [`Error::Transport`] | no, nothing was processed | try again later |
/// | [`Error::Ambiguous`] | unknown | look the request up (resume it) before acting |
/// | [`Error::AlreadyCancelled`] | not by this request | an earlier cancel exists; do nothing |
/// | [`Error::Pending`] | not yet | wait for the webhook or query the status |
/// | [`Error::StatusUnknown`] | (a status query failed) | ask again later |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request broke an API rule and was never sent.
    #[error("invalid request, nothing was sent: {0}")]
    Invalid(#[from] FieldError),
    /// The gateway answered and refused: the cancel did not happen.
    #[error("declined by the gateway, the cancel did not happen: {0}")]
    Declined(#[source] GatewayError),
    /// Nothing reached the gateway's processing (connection failed, HTTP 4xx): the cancel did not happen.
    #[error("not processed, the cancel did not happen: {reason} (shopTransactionId {shop_transaction_id})")]
    Transport {
        /// What failed.
        reason: String,
        /// The request's `shopTransactionId`.
        shop_transaction_id: String,
    },
    /// The request may have been processed but no final answer tied to it arrived: look it
    /// up (or resume it) before acting. `sent` lists every key that may have been processed,
    /// with its Korea date, so the cancel can be resumed without risking a second one.
    #[error("outcome unknown after {attempts} attempt(s), do not send a new cancel before looking it up: {reason} (shopTransactionId {shop_transaction_id})")]
    Ambiguous {
        /// What happened, with every fact learned.
        reason: String,
        /// The `shopTransactionId` of the last attempt.
        shop_transaction_id: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last `resCd` received, if any.
        last_res_cd: Option<String>,
        /// Every attempt that may have been processed (key, Korea date, send time).
        sent: Vec<SentAttempt>,
        /// The earliest time a look-up of those keys is conclusive (the last send plus the
        /// gateway's processing bound), if known.
        lookup_after: Option<std::time::SystemTime>,
    },
    /// This request did not cancel anything: every key it sent was looked up and none made a
    /// cancel, and the gateway reported an earlier cancel matching it (for example the answer
    /// to a refund query, dated before this request).
    #[error("not cancelled by this request: already cancelled as {cancel_pg_cno}, not by this command (shopTransactionId {shop_transaction_id})")]
    AlreadyCancelled {
        /// The earlier cancellation's `cancelPgCno`.
        cancel_pg_cno: String,
        /// The `shopTransactionId` of the last attempt.
        shop_transaction_id: String,
    },
    /// A status query (`find`) failed: it changed nothing, and says nothing about the cancel.
    #[error("status unknown: {reason} (shopTransactionId {shop_transaction_id})")]
    StatusUnknown {
        /// What failed.
        reason: String,
        /// The query's `shopTransactionId`.
        shop_transaction_id: String,
    },
    /// Accepted by the gateway; the final result comes later (WeChat Pay: webhook or status query).
    #[error("accepted, final result pending: cancelPgCno {cancel_pg_cno} (shopTransactionId {shop_transaction_id})")]
    Pending {
        /// The cancellation's transaction ID, to query with.
        cancel_pg_cno: String,
        /// The request's `shopTransactionId`.
        shop_transaction_id: String,
    },
}

impl Error {
    /// `true` when the cancel certainly did not happen (safe to try again or give up).
    pub fn certainly_not_cancelled(&self) -> bool {
        matches!(
            self,
            Error::Invalid(_)
                | Error::Declined(_)
                | Error::Transport { .. }
                | Error::AlreadyCancelled { .. }
        )
    }

    /// `true` when money may have moved and the caller must query before acting.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Error::Ambiguous { .. })
    }

    /// `true` when the gateway accepted the cancel and the final result comes later.
    pub fn is_pending(&self) -> bool {
        matches!(self, Error::Pending { .. })
    }

    /// The gateway's full answer, when it declined.
    pub fn gateway(&self) -> Option<&GatewayError> {
        match self {
            Error::Declined(g) => Some(g),
            _ => None,
        }
    }

    /// The gateway's `resCd`, when it answered with one.
    pub fn res_cd(&self) -> Option<&str> {
        match self {
            Error::Declined(g) => Some(&g.res_cd),
            Error::Ambiguous { last_res_cd, .. } => last_res_cd.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::field::Rule;

    #[test]
    fn errors_that_wrap_another_keep_it_as_their_source() {
        let invalid = Error::from(FieldError::new("pgCno", Rule::Required));
        let source = invalid.source().expect("Invalid has a source");
        assert_eq!(source.to_string(), "pgCno: is required");

        let declined = Error::Declined(GatewayError::new("R102", "no such payment", "K1"));
        let source = declined.source().expect("Declined has a source");
        assert!(source
            .to_string()
            .starts_with("resCd R102 (no such payment)"));
        assert_eq!(declined.gateway().map(|g| g.http_status), Some(200));

        let ambiguous = Error::Ambiguous {
            reason: "timeout".into(),
            shop_transaction_id: "K1".into(),
            attempts: 1,
            last_res_cd: None,
            sent: Vec::new(),
            lookup_after: None,
        };
        assert!(ambiguous.source().is_none());
    }
}
