//! WeChat Pay Global API v3: revoke ("reverse") an order, with RSA request
//! signing and response verification done by `ring`.
//!
//! Two layers, like the rest of kicc-rs:
//!
//! - **sans-IO** (always compiled): validated inputs ([`OrderRef`],
//!   [`MerchantMode`], [`Timestamp`], [`Nonce`]...), the signed request
//!   ([`ReverseRequest::sign`] → [`SignedRequest`], whose
//!   [`signed_message`](SignedRequest::signed_message) is the exact string
//!   signed), response verification ([`verify_response`], [`VerificationKeys`]
//!   holding platform certificates and WeChat Pay public keys), the
//!   interpretation of the answer ([`interpret_reverse_response`] →
//!   [`ReverseOutcome`] or [`ReverseError`] with its [`NextStep`]), the timing
//!   rules ([`TimingChecks`]), the retry decision ([`retry::decide`]), and
//!   server-side helpers for simulators ([`parse_authorization`],
//!   [`verify_request_signature`], [`sign_response`]). Time and randomness are
//!   inputs here, never read inside.
//! - **client** (feature `transport`, on by default): [`ReverseClient`] over
//!   `kicc_transport::Transport`, signing once and retrying 5xx / timeouts /
//!   connection failures with the identical bytes.
//!
//! # Example: build and sign a revoke request (no network)
//!
//! ```
//! use wechatpay_direct::{
//!     BaseUrl, MerchantMode, Nonce, OrderRef, ReverseRequest, RsaPrivateKey, SerialNo, Timestamp,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let pem = include_str!("../tests/fixtures/key-2048.pem");
//! let key = RsaPrivateKey::from_pem(pem)?; // PKCS#8 or PKCS#1 PEM
//! let serial = SerialNo::new("5B2FA0C1D2E3F40516273849ABCDEF0123456789")?;
//! let request = ReverseRequest::new(
//!     OrderRef::out_trade_no("ORDER-20240101-0001")?,
//!     MerchantMode::common("1900000109")?,
//! );
//! let signed = request.sign(
//!     &serial,
//!     &key,
//!     Timestamp::from_unix_secs(1_700_000_000)?,
//!     &Nonce::new("5K8264ILTKCH16CQ2502SI8ZNMTM67VS")?,
//! )?;
//!
//! assert_eq!(
//!     signed.signed_message(),
//!     "POST\n/v3/global/micropay/transactions/out-trade-no/ORDER-20240101-0001/reverse\n\
//!      1700000000\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\n{\"mchid\":\"1900000109\"}\n"
//! );
//! let http_request = signed.to_http_request(&BaseUrl::hong_kong())?;
//! let auth = http_request.headers()["authorization"].to_str()?;
//! assert!(auth.starts_with(
//!     "WECHATPAY2-SHA256-RSA2048 mchid=\"1900000109\",nonce_str=\"5K8264ILTKCH16CQ2502SI8ZNMTM67VS\",\
//!      timestamp=\"1700000000\",serial_no=\"5B2FA0C1D2E3F40516273849ABCDEF0123456789\",signature=\""
//! ));
//! assert_eq!(
//!     http_request.uri(),
//!     "https://apihk.mch.weixin.qq.com/v3/global/micropay/transactions/out-trade-no/ORDER-20240101-0001/reverse"
//! );
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "transport")]
mod client;
mod der;
mod ids;
mod keys;
mod pem;
mod query;
pub mod retry;
mod reverse;
mod settle;
mod sign;
mod verify;

#[cfg(feature = "transport")]
pub use client::{MerchantConfig, ReverseClient};
pub use der::DerError;
pub use ids::{
    BaseUrl, InvalidInput, MchId, MerchantMode, Nonce, OrderRef, OutTradeNo, SerialNo, Timestamp,
    TransactionId,
};
pub use keys::{
    KeyError, KeyKind, RsaPrivateKey, RsaPublicKey, SecretPem, SignError, VerificationKeys,
};
#[cfg(feature = "transport")]
pub use kicc_transport;
pub use pem::PemError;
pub use query::{interpret_query_response, QueriedOrder, QueryError, QueryRequest, TradeState};
pub use retry::{AfterRevoke, AttemptResult, QueryVerdict, RetryDecision, RetryPolicy};
pub use reverse::{
    interpret_reverse_response, ApiError, ApiErrorCode, ErrorDetail, MaybeRevokedReason, NextStep,
    ReverseCall, ReverseError, ReverseOutcome, ReverseRequest, SignedRequest, TimingChecks,
    TimingViolation, USER_AGENT,
};
pub use settle::{Resolution, Settled};
pub use sign::{
    parse_authorization, request_message, sign_request, verify_request_signature,
    AuthorizationError, AuthorizationParts, RequestSignature, Signer, AUTH_SCHEME,
};
pub use verify::{
    response_message, sign_response, verify_response, SignatureHeaders, Verified, VerifyError,
    HEADER_NONCE, HEADER_SERIAL, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_CLOCK_SKEW_SECS,
    PROBE_PREFIX,
};
