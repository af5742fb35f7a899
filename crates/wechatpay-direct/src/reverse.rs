//! The revoke ("reverse") call as plain data: the request, its signature, the
//! timing rules, and the interpretation of the response.

use std::fmt;

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT as USER_AGENT_HEADER,
};
use http::uri::PathAndQuery;
use http::{Method, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;

use crate::ids::{BaseUrl, InvalidInput, MerchantMode, Nonce, OrderRef, SerialNo, Timestamp};
use crate::keys::{RsaPrivateKey, SignError, VerificationKeys};
use crate::sign::{sign_request, Signer};
use crate::verify::{verify_response, Verified, VerifyError};

/// `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("kicc-rs wechatpay-direct/", env!("CARGO_PKG_VERSION"));

/// Characters left as-is in a path segment: RFC 3986 unreserved.
pub(crate) const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A validated revoke request: which order, on whose behalf.
///
/// ```
/// use wechatpay_direct::{MerchantMode, OrderRef, ReverseRequest};
/// let req = ReverseRequest::new(
///     OrderRef::out_trade_no("A 1/2")?,
///     MerchantMode::institutional("1900000109", "1900000100")?,
/// );
/// assert_eq!(req.path()?.as_str(), "/v3/global/micropay/transactions/out-trade-no/A%201%2F2/reverse");
/// assert_eq!(req.body()?, br#"{"sp_mchid":"1900000109","sub_mchid":"1900000100"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseRequest {
    order: OrderRef,
    mode: MerchantMode,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Common {
        mchid: &'a str,
    },
    Institutional {
        sp_mchid: &'a str,
        sub_mchid: &'a str,
    },
}

impl ReverseRequest {
    /// A request to revoke `order` in `mode`.
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

    /// The request target (path, percent-encoded id), which is also the signed
    /// canonical URL.
    pub fn path(&self) -> Result<PathAndQuery, SignError> {
        let path = match &self.order {
            OrderRef::TransactionId(id) => format!(
                "/v3/global/micropay/transactions/id/{}/reverse",
                utf8_percent_encode(id.as_str(), PATH_SEGMENT)
            ),
            OrderRef::OutTradeNo(no) => format!(
                "/v3/global/micropay/transactions/out-trade-no/{}/reverse",
                utf8_percent_encode(no.as_str(), PATH_SEGMENT)
            ),
        };
        // Every byte is unreserved, '%', or '/', all valid in a path; should that ever break,
        // refuse rather than sign a different path.
        path.parse()
            .map_err(|_| SignError::Request("the order's path is not a valid request target"))
    }

    /// The JSON body: `{"mchid":...}` or `{"sp_mchid":...,"sub_mchid":...}`.
    pub fn body(&self) -> Result<Vec<u8>, SignError> {
        let body = match &self.mode {
            MerchantMode::Common { mchid } => Body::Common {
                mchid: mchid.as_str(),
            },
            MerchantMode::Institutional {
                sp_mchid,
                sub_mchid,
            } => Body::Institutional {
                sp_mchid: sp_mchid.as_str(),
                sub_mchid: sub_mchid.as_str(),
            },
        };
        // Serializing two strings cannot fail; should it, refuse rather than send no body.
        serde_json::to_vec(&body)
            .map_err(|_| SignError::Request("the JSON body could not be written"))
    }

    /// Signs the request once. `timestamp` (Unix seconds) and `nonce` are
    /// inputs: the sans-IO layer never reads the clock or draws randomness
    /// for them. `serial_no` is the merchant API certificate's serial.
    pub fn sign(
        &self,
        serial_no: &SerialNo,
        key: &RsaPrivateKey,
        timestamp: Timestamp,
        nonce: &Nonce,
    ) -> Result<SignedRequest, SignError> {
        SignedRequest::sign(
            Method::POST,
            Some(&self.order),
            self.path()?,
            self.body()?,
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

/// A signed request (a revoke, or an order query): the exact bytes to send
/// (and re-send on retry).
///
/// The host is not signed, so [`SignedRequest::to_http_request`] can target
/// the primary or a backup base URL with the same signature.
#[derive(Clone)]
pub struct SignedRequest {
    method: Method,
    order: Option<OrderRef>,
    path: PathAndQuery,
    body: Bytes,
    headers: HeaderMap,
    signed_message: String,
    timestamp: Timestamp,
    nonce: Nonce,
}

impl SignedRequest {
    /// Signs `method path body` once and builds the headers: `Authorization`,
    /// `Accept`, `User-Agent`, and `Content-Type` (sent with every request, as
    /// the official SDKs do).
    pub(crate) fn sign(
        method: Method,
        order: Option<&OrderRef>,
        path: PathAndQuery,
        body: Vec<u8>,
        signer: Signer<'_>,
        timestamp: Timestamp,
        nonce: &Nonce,
    ) -> Result<Self, SignError> {
        let signature = sign_request(signer, &method, &path, timestamp, nonce, &body)?;
        let mut headers = HeaderMap::new();
        // The Authorization value is built from validated ASCII parts and Base64.
        if let Ok(v) = HeaderValue::from_str(signature.authorization()) {
            headers.insert(AUTHORIZATION, v);
        } else {
            return Err(SignError::Crypto);
        }
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT));
        Ok(Self {
            method,
            order: order.cloned(),
            path,
            body: Bytes::from(body),
            headers,
            // The message is made of UTF-8 parts (ASCII header fields, JSON body).
            signed_message: String::from_utf8_lossy(signature.message()).into_owned(),
            timestamp,
            nonce: nonce.clone(),
        })
    }

    /// The order being revoked or queried (`None` for the certificates download).
    pub fn order(&self) -> Option<&OrderRef> {
        self.order.as_ref()
    }

    /// `POST` for a revoke, `GET` for a query.
    pub fn method(&self) -> Method {
        self.method.clone()
    }

    /// The request target (path and query), as signed.
    pub fn path(&self) -> &PathAndQuery {
        &self.path
    }

    /// The exact body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// `Authorization`, `Accept`, `Content-Type` and `User-Agent`.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The exact string that was signed (`METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`).
    pub fn signed_message(&self) -> &str {
        &self.signed_message
    }

    /// The signature's timestamp.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The signature's nonce.
    pub fn nonce(&self) -> &Nonce {
        &self.nonce
    }

    /// The full URL at `base`.
    pub fn url(&self, base: &BaseUrl) -> String {
        format!("{}{}", base.as_str(), self.path.as_str())
    }

    /// The HTTP request for `base`: same method, path, headers and body bytes
    /// whatever the host.
    pub fn to_http_request(&self, base: &BaseUrl) -> Result<http::Request<Bytes>, InvalidInput> {
        let uri: http::Uri = self.url(base).parse().map_err(|_| InvalidInput::Rule {
            field: "base_url",
            rule: "must be an absolute URL like https://host[:port]",
        })?;
        let mut request = http::Request::new(self.body.clone());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.clone();
        Ok(request)
    }

    /// Rebuilds a signed request from what a journal stored: the method, the request
    /// target (path and query, as signed), the exact body bytes and the `Authorization`
    /// value sent. Nothing is signed again: the same bytes go out, so a resumed revoke can
    /// resend exactly what it sent before (see [`Revocation::resume`](crate::Revocation::resume)).
    /// The `Authorization` value must be well formed; its signature is not checked here
    /// (WeChat Pay does that).
    pub fn restore(
        method: Method,
        order: Option<OrderRef>,
        path_and_query: &str,
        body: impl Into<Bytes>,
        authorization: &str,
    ) -> Result<Self, InvalidInput> {
        let path: PathAndQuery = path_and_query.parse().map_err(|_| InvalidInput::Rule {
            field: "path",
            rule: "must be a request target like /v3/...",
        })?;
        let parts =
            crate::sign::parse_authorization(authorization).map_err(|_| InvalidInput::Rule {
                field: "authorization",
                rule: "must be a WECHATPAY2-SHA256-RSA2048 Authorization value",
            })?;
        let secs: u64 = parts.timestamp.parse().map_err(|_| InvalidInput::Rule {
            field: "timestamp",
            rule: "must be Unix seconds",
        })?;
        let timestamp = Timestamp::from_unix_secs(secs)?;
        let nonce = Nonce::new(parts.nonce_str.as_str())?;
        let auth = HeaderValue::from_str(authorization).map_err(|_| InvalidInput::Rule {
            field: "authorization",
            rule: "must be a valid header value",
        })?;
        let body: Bytes = body.into();
        let message = crate::sign::request_message(&method, &path, timestamp, &nonce, &body);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT));
        Ok(Self {
            method,
            order,
            path,
            body,
            headers,
            signed_message: String::from_utf8_lossy(&message).into_owned(),
            timestamp,
            nonce,
        })
    }

    /// The `Authorization` value, to store with the bytes for [`SignedRequest::restore`].
    pub fn authorization(&self) -> &str {
        self.headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CLI's `--dry-run` object: `{"method", "url", "headers", "body",
    /// "signed_message"}` (header names lowercase, values verbatim).
    pub fn dry_run_json(&self, base: &BaseUrl) -> serde_json::Value {
        let headers: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                )
            })
            .collect();
        serde_json::json!({
            "method": self.method.as_str(),
            "url": self.url(base),
            "headers": headers,
            "body": String::from_utf8_lossy(&self.body),
            "signed_message": self.signed_message,
        })
    }
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("order", &self.order)
            .field("path", &self.path.as_str())
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("timestamp", &self.timestamp)
            .field("nonce", &self.nonce)
            .field("authorization", &"[redacted]")
            .finish()
    }
}

/// One revoke as the client takes it: the order, the payment time and which
/// timing checks apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseCall {
    order: OrderRef,
    paid_at: Option<Timestamp>,
    checks: TimingChecks,
}

impl ReverseCall {
    /// Revoke `order`, paid at `paid_at`, with both timing checks on.
    pub fn new(order: OrderRef, paid_at: Timestamp) -> Self {
        Self {
            order,
            paid_at: Some(paid_at),
            checks: TimingChecks::default(),
        }
    }

    /// Revoke `order` without timing checks (payment time unknown).
    pub fn without_timing_checks(order: OrderRef) -> Self {
        Self {
            order,
            paid_at: None,
            checks: TimingChecks::none(),
        }
    }

    /// Replaces the timing checks.
    pub fn with_checks(mut self, checks: TimingChecks) -> Self {
        self.checks = checks;
        self
    }

    /// The order to revoke.
    pub fn order(&self) -> &OrderRef {
        &self.order
    }

    /// When the payment was made (needed while a timing check is on).
    pub fn paid_at(&self) -> Option<Timestamp> {
        self.paid_at
    }

    /// The timing checks (both on by default).
    pub fn checks(&self) -> TimingChecks {
        self.checks
    }
}

/// The revoke's timing rules, as checks the caller can switch off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimingChecks {
    refuse_within_15s: bool,
    refuse_after_7_days: bool,
}

impl Default for TimingChecks {
    /// Both checks on.
    fn default() -> Self {
        Self {
            refuse_within_15s: true,
            refuse_after_7_days: true,
        }
    }
}

/// A timing rule that a revoke would break. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimingViolation {
    /// Less than 15 s since the payment (or the payment time is in the future).
    #[error(
        "paid_at: revoke at least {min_secs} s after the payment; only {elapsed_secs} s elapsed"
    )]
    TooSoon {
        /// Seconds since the payment (negative if it is in the future).
        elapsed_secs: i64,
        /// The minimum.
        min_secs: i64,
    },
    /// More than 7 days since the payment: use a refund instead.
    #[error("paid_at: revoke only within {max_secs} s (7 days) of the payment; {elapsed_secs} s elapsed (refund instead)")]
    TooLate {
        /// Seconds since the payment.
        elapsed_secs: i64,
        /// The maximum.
        max_secs: i64,
    },
    /// A check is on but no payment time was given.
    #[error("paid_at: the payment time is required while timing checks are on")]
    PaymentTimeRequired,
}

impl TimingChecks {
    /// Minimum delay after the payment.
    pub const MIN_DELAY_SECS: i64 = 15;
    /// Maximum age of the payment.
    pub const MAX_AGE_SECS: i64 = 7 * 24 * 60 * 60;

    /// Whether a revoke less than 15 s after the payment is refused.
    pub fn refuse_within_15s(&self) -> bool {
        self.refuse_within_15s
    }

    /// Whether a revoke more than 7 days after the payment is refused.
    pub fn refuse_after_7_days(&self) -> bool {
        self.refuse_after_7_days
    }

    /// The same checks, with "refuse within 15 s of the payment" set to `on`.
    pub fn with_refuse_within_15s(mut self, on: bool) -> Self {
        self.refuse_within_15s = on;
        self
    }

    /// The same checks, with "refuse more than 7 days after the payment" set to `on`.
    pub fn with_refuse_after_7_days(mut self, on: bool) -> Self {
        self.refuse_after_7_days = on;
        self
    }

    /// Both checks off.
    pub fn none() -> Self {
        Self {
            refuse_within_15s: false,
            refuse_after_7_days: false,
        }
    }

    /// Checks a revoke at `now` of a payment made at `paid_at`.
    pub fn check(&self, paid_at: Option<Timestamp>, now: Timestamp) -> Result<(), TimingViolation> {
        if !self.refuse_within_15s && !self.refuse_after_7_days {
            return Ok(());
        }
        let paid_at = paid_at.ok_or(TimingViolation::PaymentTimeRequired)?;
        // Both are at most 10 digits, so this cannot overflow.
        let elapsed = i64::try_from(now.unix_secs()).unwrap_or(i64::MAX)
            - i64::try_from(paid_at.unix_secs()).unwrap_or(i64::MAX);
        if self.refuse_within_15s && elapsed < Self::MIN_DELAY_SECS {
            return Err(TimingViolation::TooSoon {
                elapsed_secs: elapsed,
                min_secs: Self::MIN_DELAY_SECS,
            });
        }
        if self.refuse_after_7_days && elapsed > Self::MAX_AGE_SECS {
            return Err(TimingViolation::TooLate {
                elapsed_secs: elapsed,
                max_secs: Self::MAX_AGE_SECS,
            });
        }
        Ok(())
    }
}

/// WeChat Pay's error codes for revoke (unknown ones kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiErrorCode {
    /// `SYSTEM_ERROR`: query the order, then decide.
    SystemError,
    /// `INVALID_TRANSACTIONID`: the transaction id is invalid.
    InvalidTransactionId,
    /// `PARAM_ERROR`: see the detail (field, value, issue, location).
    ParamError,
    /// `REVERSE_EXPIRE`: past the revoke window.
    ReverseExpire,
    /// `INVALID_REQUEST`: permissions, repeated payment, certificate, rate limit.
    InvalidRequest,
    /// `TRADE_ERROR`: the account is under risk control.
    TradeError,
    /// `SIGN_ERROR` (HTTP 401): the request signature was refused.
    SignError,
    /// `ORDER_NOT_EXIST` (order query, HTTP 404): no such order.
    OrderNotExist,
    /// Any other code, verbatim.
    Other(String),
}

impl ApiErrorCode {
    /// Parses a code.
    pub fn parse(code: &str) -> Self {
        match code {
            "SYSTEM_ERROR" => Self::SystemError,
            "INVALID_TRANSACTIONID" => Self::InvalidTransactionId,
            "PARAM_ERROR" => Self::ParamError,
            "REVERSE_EXPIRE" => Self::ReverseExpire,
            "INVALID_REQUEST" => Self::InvalidRequest,
            "TRADE_ERROR" => Self::TradeError,
            "SIGN_ERROR" => Self::SignError,
            "ORDER_NOT_EXIST" => Self::OrderNotExist,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as WeChat Pay writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::SystemError => "SYSTEM_ERROR",
            Self::InvalidTransactionId => "INVALID_TRANSACTIONID",
            Self::ParamError => "PARAM_ERROR",
            Self::ReverseExpire => "REVERSE_EXPIRE",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::TradeError => "TRADE_ERROR",
            Self::SignError => "SIGN_ERROR",
            Self::OrderNotExist => "ORDER_NOT_EXIST",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `detail` of an error response (`PARAM_ERROR`: field, value, issue,
/// location; `SIGN_ERROR`: `sign_information` and more, kept in `raw`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ErrorDetail {
    /// `field`: which field was wrong.
    pub field: Option<String>,
    /// `value`: the value given (non-string values as JSON text).
    pub value: Option<String>,
    /// `issue`: what was wrong.
    pub issue: Option<String>,
    /// `location`: where (body, path, header...).
    pub location: Option<String>,
    /// The whole `detail` object as received.
    pub raw: serde_json::Value,
}

impl ErrorDetail {
    fn from_json(raw: serde_json::Value) -> Self {
        let text = |name: &str| {
            raw.get(name).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        Self {
            field: text("field"),
            value: text("value"),
            issue: text("issue"),
            location: text("location"),
            raw,
        }
    }
}

/// An error answer from WeChat Pay: `{code, message, detail?}` with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// `code`.
    pub code: ApiErrorCode,
    /// `message`.
    pub message: String,
    /// `detail`, when given.
    pub detail: Option<ErrorDetail>,
    /// The `Request-ID` response header, when present (quote it to WeChat Pay support).
    pub request_id: Option<String>,
}

impl std::error::Error for ApiError {}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}: {}", self.status, self.code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " [Request-ID {id}]")?;
        }
        if let Some(d) = &self.detail {
            if let Some(field) = &d.field {
                write!(f, " (field {field}")?;
                if let Some(issue) = &d.issue {
                    write!(f, ": {issue}")?;
                }
                if let Some(location) = &d.location {
                    write!(f, ", in {location}")?;
                }
                write!(f, ")")?;
            }
        }
        Ok(())
    }
}

/// What the caller should do after a failed revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NextStep {
    /// The order was definitely not revoked (fix the cause; a refund may be the right tool).
    NotRevoked,
    /// The order may have been revoked: query it before acting.
    QueryOrder,
    /// The same signed request may be re-sent: nothing was delivered, or WeChat Pay
    /// answered 5xx (whose documented remedy is a resend with the original parameters;
    /// the order is queried once the resends are used up).
    Retry,
}

/// Why a revoke did not end in a verified success.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReverseError {
    /// An input breaks the API's rules; nothing was sent.
    #[error("invalid input: {0}")]
    Invalid(#[from] InvalidInput),
    /// A timing rule forbids the revoke now; nothing was sent.
    #[error("timing rule: {0}")]
    Timing(#[from] TimingViolation),
    /// The request could not be signed; nothing was sent.
    #[error("{0}")]
    Sign(#[from] SignError),
    /// WeChat Pay answered with an error code.
    #[error("WeChat Pay error: {0}")]
    Api(#[source] Box<ApiError>),
    /// An error status whose body is not WeChat Pay's JSON error shape
    /// (e.g. from a proxy), or an unexpected 1xx/3xx status.
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
        /// Whether any attempt may have reached WeChat Pay (then the order may be revoked).
        may_have_reached_server: bool,
        /// The last attempt's failure.
        #[source]
        last: Box<ReverseError>,
    },
    /// A resumed revoke's last recorded attempt, whose answer the journal does not
    /// keep (see [`Revocation::resume`](crate::Revocation::resume)).
    #[error("the journal records {attempts} attempt(s), the last one: {heard:?}")]
    Recorded {
        /// Attempts recorded.
        attempts: u32,
        /// What the last one heard.
        heard: kicc_core::retry::Heard,
    },
    /// A definite refusal that came after an attempt which may have been
    /// processed (e.g. a timeout, then `REVERSE_EXPIRE`): the outcome is unknown.
    #[error("attempt {attempts} failed after an earlier attempt may have been processed: {last}")]
    AfterAmbiguousAttempt {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        last: Box<ReverseError>,
    },
}

impl ReverseError {
    /// What to do next.
    pub fn next_step(&self) -> NextStep {
        match self {
            Self::Invalid(_) | Self::Timing(_) | Self::Sign(_) => NextStep::NotRevoked,
            Self::Api(e) => {
                if e.code == ApiErrorCode::SystemError {
                    return NextStep::QueryOrder;
                }
                if e.status >= 500 {
                    return NextStep::Retry;
                }
                match e.code {
                    ApiErrorCode::SystemError | ApiErrorCode::Other(_) => NextStep::QueryOrder,
                    ApiErrorCode::InvalidTransactionId
                    | ApiErrorCode::ParamError
                    | ApiErrorCode::ReverseExpire
                    | ApiErrorCode::InvalidRequest
                    | ApiErrorCode::TradeError
                    | ApiErrorCode::SignError
                    | ApiErrorCode::OrderNotExist => NextStep::NotRevoked,
                }
            }
            Self::UnexpectedResponse { status, .. } => {
                if *status >= 500 {
                    NextStep::Retry
                } else {
                    NextStep::QueryOrder
                }
            }
            // The one mapping of an attempt without an answer (shared with KICC).
            #[cfg(feature = "transport")]
            Self::Transport(e) => {
                if kicc_transport::driver::never_delivered(e) {
                    NextStep::Retry
                } else {
                    NextStep::QueryOrder
                }
            }
            Self::RetriesExhausted {
                may_have_reached_server,
                ..
            } => {
                if *may_have_reached_server {
                    NextStep::QueryOrder
                } else {
                    NextStep::Retry
                }
            }
            Self::AfterAmbiguousAttempt { .. } => NextStep::QueryOrder,
            Self::Recorded { heard, .. } => {
                if heard.may_have_been_processed() {
                    NextStep::QueryOrder
                } else if *heard == kicc_core::retry::Heard::Refused {
                    NextStep::NotRevoked
                } else {
                    NextStep::Retry
                }
            }
        }
    }

    /// The HTTP status, when a response was received.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Api(e) => Some(e.status),
            Self::UnexpectedResponse { status, .. } => Some(*status),
            Self::RetriesExhausted { last, .. } | Self::AfterAmbiguousAttempt { last, .. } => {
                last.http_status()
            }
            _ => None,
        }
    }

    /// WeChat Pay's error code, when one was received.
    pub fn api_code(&self) -> Option<&ApiErrorCode> {
        match self {
            Self::Api(e) => Some(&e.code),
            Self::RetriesExhausted { last, .. } | Self::AfterAmbiguousAttempt { last, .. } => {
                last.api_code()
            }
            _ => None,
        }
    }

    /// The `Request-ID` WeChat Pay gave the answer, when one was received (quote it to
    /// WeChat Pay support).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.request_id.as_deref(),
            Self::RetriesExhausted { last, .. } | Self::AfterAmbiguousAttempt { last, .. } => {
                last.request_id()
            }
            _ => None,
        }
    }
}

/// Why a 2xx answer is only "maybe revoked".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaybeRevokedReason {
    /// The signature did not verify: treat the answer as possibly forged.
    Unverified(VerifyError),
    /// Verified, but a 2xx other than the documented 204.
    UnexpectedStatus,
}

/// The outcome of a revoke whose response was a 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReverseOutcome {
    /// HTTP 204 with a verified signature: revoked.
    Revoked(Verified),
    /// A 2xx that cannot be trusted as success: query the order before acting.
    MaybeRevoked {
        /// The HTTP status.
        status: u16,
        /// Why it is not a confirmed success.
        reason: MaybeRevokedReason,
    },
}

impl ReverseOutcome {
    /// `true` only for a verified 204.
    pub fn is_revoked(&self) -> bool {
        matches!(self, Self::Revoked(_))
    }

    /// The verification error of a `MaybeRevoked`, if that was the reason.
    pub fn verification_error(&self) -> Option<&VerifyError> {
        match self {
            Self::MaybeRevoked {
                reason: MaybeRevokedReason::Unverified(e),
                ..
            } => Some(e),
            _ => None,
        }
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

/// WeChat Pay's JSON error `{code, message, detail?}` of a 4xx/5xx, if the body is one.
pub(crate) fn parse_api_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Option<ApiError> {
    let err = serde_json::from_slice::<ErrorBody>(body).ok()?;
    let message = match err.message {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Some(ApiError {
        status,
        code: ApiErrorCode::parse(&err.code),
        message,
        detail: err
            .detail
            .filter(|d| !d.is_null())
            .map(ErrorDetail::from_json),
        request_id: headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    })
}

pub(crate) fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(256).collect()
}

/// Interprets a revoke response. Never panics, whatever the input.
///
/// - 2xx: verified 204 → [`ReverseOutcome::Revoked`]; any 2xx failing
///   verification (or a verified non-204) → [`ReverseOutcome::MaybeRevoked`].
/// - 4xx/5xx: `{code, message, detail?}` → [`ReverseError::Api`]; anything
///   else → [`ReverseError::UnexpectedResponse`]. Error responses are not
///   signature-checked (as the official SDKs do); they never count as success.
/// - 1xx/3xx → [`ReverseError::UnexpectedResponse`].
pub fn interpret_reverse_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
    keys: &VerificationKeys,
) -> Result<ReverseOutcome, ReverseError> {
    let code = status.as_u16();
    if status.is_success() {
        return Ok(match verify_response(headers, body, now, keys) {
            Ok(v) if status == StatusCode::NO_CONTENT => ReverseOutcome::Revoked(v),
            Ok(_) => ReverseOutcome::MaybeRevoked {
                status: code,
                reason: MaybeRevokedReason::UnexpectedStatus,
            },
            Err(e) => ReverseOutcome::MaybeRevoked {
                status: code,
                reason: MaybeRevokedReason::Unverified(e),
            },
        });
    }
    if status.is_client_error() || status.is_server_error() {
        if let Some(err) = parse_api_error(code, headers, body) {
            return Err(ReverseError::Api(Box::new(err)));
        }
    }
    Err(ReverseError::UnexpectedResponse {
        status: code,
        body_excerpt: excerpt(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: u64) -> Timestamp {
        Timestamp::from_unix_secs(s).unwrap()
    }

    #[test]
    fn paths_and_bodies() {
        let r = ReverseRequest::new(
            OrderRef::transaction_id("1217752501201407033233368018").unwrap(),
            MerchantMode::common("1900000109").unwrap(),
        );
        assert_eq!(
            r.path().unwrap().as_str(),
            "/v3/global/micropay/transactions/id/1217752501201407033233368018/reverse"
        );
        assert_eq!(r.body().unwrap(), br#"{"mchid":"1900000109"}"#);
        let r = ReverseRequest::new(
            OrderRef::out_trade_no("订单?#%").unwrap(),
            MerchantMode::common("a\"b").unwrap(),
        );
        assert_eq!(
            r.path().unwrap().as_str(),
            "/v3/global/micropay/transactions/out-trade-no/%E8%AE%A2%E5%8D%95%3F%23%25/reverse"
        );
        assert_eq!(r.body().unwrap(), br#"{"mchid":"a\"b"}"#);
    }

    #[test]
    fn timing_table() {
        let paid = ts(1_700_000_000);
        let at = |d: i64| ts((1_700_000_000i64 + d) as u64);
        let on = TimingChecks::default();
        assert!(matches!(
            on.check(Some(paid), at(14)),
            Err(TimingViolation::TooSoon {
                elapsed_secs: 14,
                ..
            })
        ));
        assert!(on.check(Some(paid), at(15)).is_ok());
        assert!(on.check(Some(paid), at(604_800)).is_ok());
        assert!(matches!(
            on.check(Some(paid), at(604_801)),
            Err(TimingViolation::TooLate { .. })
        ));
        assert!(matches!(
            on.check(Some(paid), at(-5)),
            Err(TimingViolation::TooSoon {
                elapsed_secs: -5,
                ..
            })
        ));
        assert_eq!(
            on.check(None, at(100)),
            Err(TimingViolation::PaymentTimeRequired)
        );
        assert!(TimingChecks::none().check(None, at(0)).is_ok());
        let only_late = TimingChecks {
            refuse_within_15s: false,
            ..TimingChecks::default()
        };
        assert!(only_late.check(Some(paid), at(1)).is_ok());
        assert!(only_late.check(Some(paid), at(604_801)).is_err());
        let only_soon = TimingChecks {
            refuse_after_7_days: false,
            ..TimingChecks::default()
        };
        assert!(only_soon.check(Some(paid), at(10_000_000)).is_ok());
    }

    #[test]
    fn error_codes_map_to_next_steps() {
        let keys = VerificationKeys::new();
        let now = ts(1_700_000_000);
        let cases = [
            (400, "SYSTEM_ERROR", NextStep::QueryOrder),
            (500, "SYSTEM_ERROR", NextStep::QueryOrder),
            (400, "INVALID_TRANSACTIONID", NextStep::NotRevoked),
            (400, "PARAM_ERROR", NextStep::NotRevoked),
            (403, "REVERSE_EXPIRE", NextStep::NotRevoked),
            (403, "INVALID_REQUEST", NextStep::NotRevoked),
            (403, "TRADE_ERROR", NextStep::NotRevoked),
            (401, "SIGN_ERROR", NextStep::NotRevoked),
            (400, "SOMETHING_NEW", NextStep::QueryOrder),
            (503, "SOMETHING_NEW", NextStep::Retry),
        ];
        for (status, code, step) in cases {
            let body = format!(r#"{{"code":"{code}","message":"m"}}"#);
            let err = interpret_reverse_response(
                StatusCode::from_u16(status).unwrap(),
                &HeaderMap::new(),
                body.as_bytes(),
                now,
                &keys,
            )
            .unwrap_err();
            assert_eq!(err.next_step(), step, "{status} {code}");
            assert_eq!(err.http_status(), Some(status));
            assert_eq!(err.api_code().map(|c| c.as_str()), Some(code));
        }
    }

    #[test]
    fn param_error_detail() {
        let body = r##"{"code":"PARAM_ERROR","message":"Parameter format verification error","detail":{"field":"#/properties/payer","value":1346177081915535577,"issue":"bad","location":"body"}}"##;
        let mut headers = HeaderMap::new();
        headers.insert(
            "request-id",
            HeaderValue::from_static("08F78BB5AF0610D302A6E90D2A1D5C8B"),
        );
        let err = interpret_reverse_response(
            StatusCode::BAD_REQUEST,
            &headers,
            body.as_bytes(),
            ts(1_700_000_000),
            &VerificationKeys::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("field #/properties/payer: bad, in body"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("Request-ID 08F78BB5AF0610D302A6E90D2A1D5C8B"),
            "{err}"
        );
        let ReverseError::Api(api) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            api.request_id.as_deref(),
            Some("08F78BB5AF0610D302A6E90D2A1D5C8B")
        );
        assert_eq!(api.code, ApiErrorCode::ParamError);
        let d = api.detail.unwrap();
        assert_eq!(d.field.as_deref(), Some("#/properties/payer"));
        assert_eq!(d.value.as_deref(), Some("1346177081915535577"));
        assert_eq!(d.issue.as_deref(), Some("bad"));
        assert_eq!(d.location.as_deref(), Some("body"));
    }

    #[test]
    fn errors_carry_status_and_request_id() {
        let mut headers = HeaderMap::new();
        headers.insert("request-id", HeaderValue::from_static("08F4A2B1-REQ"));
        let err = interpret_reverse_response(
            StatusCode::FORBIDDEN,
            &headers,
            br#"{"code":"REVERSE_EXPIRE","message":"too late"}"#,
            ts(1_700_000_000),
            &VerificationKeys::new(),
        )
        .unwrap_err();
        assert_eq!(err.request_id(), Some("08F4A2B1-REQ"));
        assert_eq!(err.http_status(), Some(403));
        let wrapped = ReverseError::AfterAmbiguousAttempt {
            attempts: 2,
            last: Box::new(err),
        };
        assert_eq!(wrapped.request_id(), Some("08F4A2B1-REQ"));
        let q = crate::query::interpret_query_response(
            StatusCode::NOT_FOUND,
            &headers,
            br#"{"code":"ORDER_NOT_EXIST","message":"no such order"}"#,
            ts(1_700_000_000),
            &VerificationKeys::new(),
        )
        .unwrap_err();
        assert_eq!(
            (q.http_status(), q.request_id()),
            (Some(404), Some("08F4A2B1-REQ"))
        );
        assert!(q.is_order_not_found());
    }

    #[test]
    fn non_json_error_bodies_are_typed() {
        let err = interpret_reverse_response(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            b"<html>denied</html>",
            ts(1_700_000_000),
            &VerificationKeys::new(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            ReverseError::UnexpectedResponse {
                status: 403,
                body_excerpt: "<html>denied</html>".into()
            }
        );
        assert_eq!(err.next_step(), NextStep::QueryOrder);
        let err = interpret_reverse_response(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"",
            ts(1_700_000_000),
            &VerificationKeys::new(),
        )
        .unwrap_err();
        assert_eq!(err.next_step(), NextStep::Retry);
        let err = interpret_reverse_response(
            StatusCode::FOUND,
            &HeaderMap::new(),
            b"",
            ts(1_700_000_000),
            &VerificationKeys::new(),
        )
        .unwrap_err();
        assert_eq!(err.next_step(), NextStep::QueryOrder);
    }

    #[test]
    fn unsigned_204_is_maybe_revoked() {
        let out = interpret_reverse_response(
            StatusCode::NO_CONTENT,
            &HeaderMap::new(),
            b"",
            ts(1_700_000_000),
            &VerificationKeys::new(),
        )
        .unwrap();
        assert_eq!(
            out.verification_error(),
            Some(&VerifyError::MissingHeader {
                name: "Wechatpay-Timestamp"
            })
        );
        assert!(!out.is_revoked());
    }

    proptest! {
        #[test]
        fn interpretation_never_panics(
            status in 100u16..600,
            body in proptest::collection::vec(any::<u8>(), 0..300),
            json_code in proptest::option::of(".{0,40}"),
            headers in proptest::collection::vec(("wechatpay-(timestamp|nonce|signature|serial)", proptest::collection::vec(any::<u8>(), 0..60)), 0..6),
        ) {
            let mut map = HeaderMap::new();
            for (k, v) in &headers {
                if let (Ok(k), Ok(v)) = (http::header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_bytes(v)) {
                    map.append(k, v);
                }
            }
            let status = StatusCode::from_u16(status).unwrap();
            let now = ts(1_700_000_000);
            let keys = VerificationKeys::new();
            let r = interpret_reverse_response(status, &map, &body, now, &keys);
            // With an empty key store nothing can be a verified success.
            prop_assert!(!matches!(r, Ok(ReverseOutcome::Revoked(_))));
            if let Some(code) = json_code {
                let body = serde_json::json!({"code": code, "message": 7, "detail": [1]}).to_string();
                let r = interpret_reverse_response(status, &map, body.as_bytes(), now, &keys);
                prop_assert!(!matches!(r, Ok(ReverseOutcome::Revoked(_))));
                if let Err(e) = r { let _ = (e.next_step(), e.to_string()); }
            }
        }
    }
}
