//! The order query ("Query Order" of a Quick Pay order) as plain data: the
//! request, and the verified answer with its typed `trade_state`.
//!
//! A query changes nothing. Its own failure is "status unknown", never a
//! revoke outcome (DESIGN invariant 10).

use std::fmt;

use http::header::HeaderMap;
use http::uri::PathAndQuery;
use http::{Method, StatusCode};
use percent_encoding::utf8_percent_encode;

use crate::ids::{InvalidInput, MerchantMode, Nonce, OrderRef, SerialNo, Timestamp};
use crate::keys::{RsaPrivateKey, SignError, VerificationKeys};
use crate::reverse::{
    excerpt, parse_api_error, ApiError, ApiErrorCode, SignedRequest, PATH_SEGMENT,
};
use crate::sign::Signer;
use crate::verify::{verify_response, Verified, VerifyError};

/// A validated order query: which order, on whose behalf.
///
/// ```
/// use wechatpay_direct::{MerchantMode, OrderRef, QueryRequest};
/// let q = QueryRequest::new(
///     OrderRef::out_trade_no("A 1/2")?,
///     MerchantMode::institutional("1900000109", "1900000100")?,
/// );
/// assert_eq!(
///     q.path()?.as_str(),
///     "/v3/global/transactions/out-trade-no/A%201%2F2?sub_mchid=1900000100&sp_mchid=1900000109"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    order: OrderRef,
    mode: MerchantMode,
}

impl QueryRequest {
    /// A query of `order` in `mode`.
    pub fn new(order: OrderRef, mode: MerchantMode) -> Self {
        Self { order, mode }
    }

    /// The order.
    pub fn order(&self) -> &OrderRef {
        &self.order
    }

    /// The merchant mode.
    pub fn mode(&self) -> &MerchantMode {
        &self.mode
    }

    /// The request target, which is also the signed canonical URL:
    /// `/v3/global/transactions/{id/ID|out-trade-no/NO}?mchid=M` (common) or
    /// `...?sub_mchid=S&sp_mchid=SP` (institutional); the id and the values
    /// percent-encoded (everything but RFC 3986 unreserved characters).
    pub fn path(&self) -> Result<PathAndQuery, SignError> {
        let enc = |s: &str| utf8_percent_encode(s, PATH_SEGMENT).to_string();
        let order = match &self.order {
            OrderRef::TransactionId(id) => format!("id/{}", enc(id.as_str())),
            OrderRef::OutTradeNo(no) => format!("out-trade-no/{}", enc(no.as_str())),
        };
        let query = match &self.mode {
            MerchantMode::Common { mchid } => format!("mchid={}", enc(mchid.as_str())),
            MerchantMode::Institutional {
                sp_mchid,
                sub_mchid,
            } => format!(
                "sub_mchid={}&sp_mchid={}",
                enc(sub_mchid.as_str()),
                enc(sp_mchid.as_str())
            ),
        };
        // Every byte is unreserved, '%', '/', '?', '=' or '&': all valid; should that ever
        // break, refuse rather than sign a different target.
        format!("/v3/global/transactions/{order}?{query}")
            .parse()
            .map_err(|_| SignError::Request("the order query is not a valid request target"))
    }

    /// Signs the `GET` once (empty body). `timestamp` and `nonce` are inputs.
    pub fn sign(
        &self,
        serial_no: &SerialNo,
        key: &RsaPrivateKey,
        timestamp: Timestamp,
        nonce: &Nonce,
    ) -> Result<SignedRequest, SignError> {
        SignedRequest::sign(
            Method::GET,
            Some(&self.order),
            self.path()?,
            Vec::new(),
            Signer {
                mchid: self.mode.caller_mchid(),
                serial_no,
                key,
            },
            timestamp,
            nonce,
        )
    }
}

/// An order's `trade_state`. Only `REVOKED` and `CLOSED` mean "nothing is
/// charged"; any value not listed stays [`TradeState::Unknown`], never done.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TradeState {
    /// `SUCCESS`: paid.
    Success,
    /// `REFUND`: a refund exists (revoke no longer applies: refund instead).
    Refund,
    /// `NOTPAY`: not paid.
    NotPay,
    /// `CLOSED`: closed, nothing was charged.
    Closed,
    /// `REVOKED`: revoked.
    Revoked,
    /// `USERPAYING`: waiting for the payer (password).
    UserPaying,
    /// `PAYERROR`: the payment failed.
    PayError,
    /// Any other value, verbatim.
    Unknown(String),
}

impl TradeState {
    /// Parses a `trade_state` value (case-sensitive, as WeChat Pay writes it).
    pub fn parse(value: &str) -> Self {
        match value {
            "SUCCESS" => Self::Success,
            "REFUND" => Self::Refund,
            "NOTPAY" => Self::NotPay,
            "CLOSED" => Self::Closed,
            "REVOKED" => Self::Revoked,
            "USERPAYING" => Self::UserPaying,
            "PAYERROR" => Self::PayError,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The value as WeChat Pay writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "SUCCESS",
            Self::Refund => "REFUND",
            Self::NotPay => "NOTPAY",
            Self::Closed => "CLOSED",
            Self::Revoked => "REVOKED",
            Self::UserPaying => "USERPAYING",
            Self::PayError => "PAYERROR",
            Self::Unknown(s) => s,
        }
    }
}

impl fmt::Display for TradeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified order-query answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueriedOrder {
    /// `trade_state`, typed.
    pub trade_state: TradeState,
    /// `trade_state_desc`, when given.
    pub trade_state_desc: Option<String>,
    /// The whole order object as received (WeChat Pay's own field names).
    pub raw: serde_json::Map<String, serde_json::Value>,
    /// Which key verified the answer.
    pub verified: Verified,
}

/// Why an order query produced no verified answer. Never a revoke outcome.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// An input breaks the API's rules; nothing was sent.
    #[error("invalid input: {0}")]
    Invalid(#[from] InvalidInput),
    /// The request could not be signed; nothing was sent.
    #[error("{0}")]
    Sign(#[from] SignError),
    /// WeChat Pay answered with an error code (`ORDER_NOT_EXIST`: see
    /// [`QueryError::is_order_not_found`]).
    #[error("WeChat Pay error: {0}")]
    Api(#[source] Box<ApiError>),
    /// A 2xx whose signature did not verify: the answer cannot be trusted.
    #[error("HTTP {status} answer failed verification: {error}")]
    Unverified {
        /// The HTTP status.
        status: u16,
        /// Why verification failed.
        error: VerifyError,
    },
    /// A verified 2xx that is not an order (not a JSON object, or no string `trade_state`).
    #[error("HTTP {status} answer is not an order: {reason}")]
    Malformed {
        /// The HTTP status.
        status: u16,
        /// What is missing or wrong.
        reason: &'static str,
    },
    /// An error status whose body is not WeChat Pay's JSON error shape, or a
    /// 1xx/3xx/2xx other than 200.
    #[error("unexpected HTTP {status} response: {body_excerpt:?}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// The first 256 characters of the body (lossy UTF-8).
        body_excerpt: String,
    },
    /// One attempt produced no response.
    #[cfg(feature = "transport")]
    #[cfg_attr(docsrs, doc(cfg(feature = "transport")))]
    #[error("transport: {0}")]
    Transport(#[source] kicc_transport::TransportError),
    /// Every attempt failed in a retryable way (5xx, timeout, connection).
    #[error("gave up after {attempts} attempts; last: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        last: Box<QueryError>,
    },
}

impl QueryError {
    /// Whether WeChat Pay said the order does not exist (`ORDER_NOT_EXIST`).
    pub fn is_order_not_found(&self) -> bool {
        matches!(self.api_code(), Some(ApiErrorCode::OrderNotExist))
    }

    /// WeChat Pay's error code, when one was received.
    pub fn api_code(&self) -> Option<&ApiErrorCode> {
        match self {
            Self::Api(e) => Some(&e.code),
            Self::RetriesExhausted { last, .. } => last.api_code(),
            _ => None,
        }
    }

    /// The HTTP status, when a response was received.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Api(e) => Some(e.status),
            Self::Unverified { status, .. }
            | Self::Malformed { status, .. }
            | Self::UnexpectedResponse { status, .. } => Some(*status),
            Self::RetriesExhausted { last, .. } => last.http_status(),
            _ => None,
        }
    }

    /// The `Request-ID` WeChat Pay gave the answer, when one was received.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.request_id.as_deref(),
            Self::RetriesExhausted { last, .. } => last.request_id(),
            _ => None,
        }
    }
}

/// Interprets an order-query response. Never panics, whatever the input.
///
/// - 200 with a verified signature and a JSON object carrying a string
///   `trade_state` → [`QueriedOrder`]; a 2xx failing verification →
///   [`QueryError::Unverified`]; verified but not an order → [`QueryError::Malformed`].
/// - 4xx/5xx `{code, message, detail?}` → [`QueryError::Api`]; other bodies
///   and statuses → [`QueryError::UnexpectedResponse`].
pub fn interpret_query_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
    keys: &VerificationKeys,
) -> Result<QueriedOrder, QueryError> {
    let code = status.as_u16();
    if status == StatusCode::OK {
        let verified =
            verify_response(headers, body, now, keys).map_err(|error| QueryError::Unverified {
                status: code,
                error,
            })?;
        let malformed = |reason| QueryError::Malformed {
            status: code,
            reason,
        };
        let Ok(serde_json::Value::Object(raw)) = serde_json::from_slice(body) else {
            return Err(malformed("the body is not a JSON object"));
        };
        let trade_state = match raw.get("trade_state") {
            Some(serde_json::Value::String(s)) => TradeState::parse(s),
            _ => return Err(malformed("trade_state is missing or not a string")),
        };
        let trade_state_desc = raw
            .get("trade_state_desc")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        return Ok(QueriedOrder {
            trade_state,
            trade_state_desc,
            raw,
            verified,
        });
    }
    if status.is_client_error() || status.is_server_error() {
        if let Some(err) = parse_api_error(code, headers, body) {
            return Err(QueryError::Api(Box::new(err)));
        }
    }
    Err(QueryError::UnexpectedResponse {
        status: code,
        body_excerpt: excerpt(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths() {
        let q = QueryRequest::new(
            OrderRef::transaction_id("4200000001").unwrap(),
            MerchantMode::common("1900000109").unwrap(),
        );
        assert_eq!(
            q.path().unwrap().as_str(),
            "/v3/global/transactions/id/4200000001?mchid=1900000109"
        );
        let q = QueryRequest::new(
            OrderRef::out_trade_no("订单?#%&=").unwrap(),
            MerchantMode::common("a&b=c").unwrap(),
        );
        assert_eq!(
            q.path().unwrap().as_str(),
            "/v3/global/transactions/out-trade-no/%E8%AE%A2%E5%8D%95%3F%23%25%26%3D?mchid=a%26b%3Dc"
        );
    }

    #[test]
    fn trade_states_round_trip_and_unknown_stays_unknown() {
        for s in [
            "SUCCESS",
            "REFUND",
            "NOTPAY",
            "CLOSED",
            "REVOKED",
            "USERPAYING",
            "PAYERROR",
        ] {
            let t = TradeState::parse(s);
            assert!(!matches!(t, TradeState::Unknown(_)), "{s}");
            assert_eq!(t.as_str(), s);
        }
        assert_eq!(
            TradeState::parse("revoked"),
            TradeState::Unknown("revoked".into())
        );
        assert_eq!(
            TradeState::parse("ACCEPT"),
            TradeState::Unknown("ACCEPT".into())
        );
    }

    #[test]
    fn errors_are_typed() {
        let now = Timestamp::from_unix_secs(1_700_000_000).unwrap();
        let keys = VerificationKeys::new();
        let e = interpret_query_response(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            br#"{"code":"ORDER_NOT_EXIST","message":"no such order"}"#,
            now,
            &keys,
        )
        .unwrap_err();
        assert!(e.is_order_not_found(), "{e}");
        let e = interpret_query_response(
            StatusCode::OK,
            &HeaderMap::new(),
            br#"{"trade_state":"REVOKED"}"#,
            now,
            &keys,
        )
        .unwrap_err();
        assert!(
            matches!(e, QueryError::Unverified { status: 200, .. }),
            "{e}"
        );
        let e = interpret_query_response(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>",
            now,
            &keys,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            QueryError::UnexpectedResponse { status: 502, .. }
        ));
    }

    proptest! {
        #[test]
        fn never_panics(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let now = Timestamp::from_unix_secs(1_700_000_000).unwrap();
            let r = interpret_query_response(StatusCode::from_u16(status).unwrap(), &HeaderMap::new(), &body, now, &VerificationKeys::new());
            // Nothing is trusted without a verified signature.
            prop_assert!(r.is_err());
        }
    }
}
