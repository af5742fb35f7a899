//! WeChat Pay Global API v3: revoke ("reverse") an order, query it, and
//! download and rotate platform certificates, with RSA request signing,
//! response verification and AES-256-GCM decryption done by `ring`.
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
//!   rules ([`TimingChecks`]), the revoke settled by kicc-rs's one retry model
//!   ([`Revocation`], [`RetryPolicy`]; see "Retries" below), and server-side helpers for simulators ([`parse_authorization`],
//!   [`verify_request_signature`], [`sign_response`]). Time and randomness are
//!   inputs here, never read inside.
//!   The order query ([`QueryRequest`], [`interpret_query_response`] →
//!   [`QueriedOrder`] with a typed [`TradeState`]), and platform certificates ([`certificates_request`],
//!   [`interpret_certificates_response`], [`ApiV3Key`], [`CertificateManager`]).
//! - **client** (feature `transport`, on by default through `hyper`): [`ReverseClient`] over
//!   `kicc_transport::Transport`, signing once and retrying 5xx / timeouts /
//!   connection failures with the identical bytes; on `SYSTEM_ERROR` or an
//!   unknown outcome, [`ReverseClient::reverse_and_settle`] queries the order
//!   and decides by its `trade_state`; [`ReverseClient::resume_and_settle`]
//!   continues a revoke from its recorded attempts after a restart.
//!
//! # Retries: one model with KICC
//!
//! This crate has no retry model of its own. It uses kicc-rs's one model in
//! `kicc_core::retry` (this crate depends on `kicc-core` already, so a separate
//! shared crate would only add a crate to publish): the same policy type for
//! attempts, backoff and deadline ([`AttemptBounds`], inside [`RetryPolicy`]),
//! the same backoff function with jitter, the same mapping of an attempt
//! without an answer to "not delivered" or "maybe delivered"
//! (kicc-transport's `driver::never_delivered`: a refused connection is not
//! delivered and is resent, as for KICC), and the same sans-IO sequencing
//! (`kicc_core::retry::Resender`, driven by [`Revocation`]). What is WeChat
//! Pay's own is a parameter of that model, not a second model:
//!
//! - 5xx, timeouts, lost connections: the identical signed bytes again
//!   (WeChat Pay: "retry with the original parameters");
//! - `SYSTEM_ERROR` (and a 2xx that is not a verified 204): query the order,
//!   never resend;
//! - the order's `trade_state` settles the outcome: `REVOKED`/`CLOSED` done,
//!   `SUCCESS`/`USERPAYING`/`NOTPAY` revoke again with a fresh signature (at most
//!   [`RetryPolicy::max_revokes`]), `REFUND` refund instead, anything else unknown.
//!
//! Once an attempt may have been processed, "not revoked" is only reported when
//! an order query proves it (DESIGN.md invariant 8). [`Revocation::resume`]
//! continues from recorded attempts ([`AttemptRecord`]: request number, time
//! sent, what was [`Heard`]) and the stored [`SignedRequest`]
//! ([`SignedRequest::restore`]): a revoke that may have been processed is
//! queried first, one never delivered is sent again.
//!
//! # Platform certificates
//!
//! WeChat Pay signs its answers with a platform certificate it rotates (a new
//! one is listed 24 h before it takes over). Either configure a fixed
//! certificate or public key in [`VerificationKeys`], or let a shared
//! [`CertificateManager`] keep them:
//!
//! - [`ReverseClient::download_certificates`] calls
//!   `GET /v3/global/certificates`, decrypts every `encrypt_certificate` with
//!   the API v3 key ([`ApiV3Key`]: exactly 32 bytes, `Debug` redacted, zeroed
//!   on drop) using AEAD_AES_256_GCM with the given nonce and associated data,
//!   checks each certificate's serial against its `serial_no` (X.509 read by
//!   rustls-webpki), and verifies the answer; the first time, with the
//!   decrypted certificate whose serial is the answer's `Wechatpay-Serial`.
//!   A wrong key or a tampered ciphertext is [`CertError::Decrypt`].
//! - [`CertificateManager`] (sans-IO; time is an input) says when a refresh is
//!   due ([`RefreshPolicy`]: every 6 h by default, under WeChat Pay's 12 h),
//!   allows a rate-limited refresh when an answer names a serial it does not
//!   hold, keeps old and new through a rotation, and never drops the last
//!   valid certificate on a failed refresh or an expiry.
//! - [`ReverseClient::with_certificate_manager`] makes revokes and queries use
//!   it: refreshed before a call when due, and once more (rate-limited) when an
//!   answer names an unknown serial, then verified again.
//!   [`ReverseClient::keep_certificates_fresh`] is a small driver to spawn for
//!   long idle periods: it sleeps until the schedule is due and refreshes.
//!
//! ```no_run
//! # #[cfg(feature = "hyper")]
//! # async fn demo(config: wechatpay_direct::MerchantConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::{Arc, Mutex};
//! use wechatpay_direct::kicc_transport::HyperTransport;
//! use wechatpay_direct::{ApiV3Key, CertificateManager, RefreshPolicy, ReverseClient};
//!
//! let key = std::env::var("WECHATPAY_APIV3_KEY")?;
//! let manager = Arc::new(Mutex::new(CertificateManager::new(RefreshPolicy::default())));
//! let client = ReverseClient::new(HyperTransport::new()?, config)
//!     .with_certificate_manager(Arc::clone(&manager), ApiV3Key::new(key.as_bytes())?);
//! client.refresh_certificates().await?; // or let the first call do it
//! # Ok(())
//! # }
//! ```
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
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | (none) | | everything sans-IO above: signing, verification, decryption, the retry rules |
//! | `transport` | via `hyper` | [`ReverseClient`] over any `kicc_transport::Transport` (tokio timers, tracing); no hyper, rustls or tokio-rustls |
//! | `hyper` | yes | `transport` plus kicc-transport's hyper + rustls `HyperTransport`, re-exported as `wechatpay_direct::kicc_transport::HyperTransport` |
//! | `hyper-client` | | the former name of `hyper` |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod certs;
#[cfg(feature = "transport")]
mod client;
mod der;
mod ids;
mod keys;
mod pem;
mod query;
mod retry;
mod reverse;
mod revocation;
mod settle;
mod sign;
mod verify;

pub use certs::{
    certificates_request, interpret_certificates_response, parse_rfc3339, ApiV3Key, ApiV3KeyError,
    CertError, CertificateManager, PlatformCertificate, RefreshPolicy, RefreshReason,
    CERTIFICATES_PATH,
};
#[cfg(feature = "transport")]
#[cfg_attr(docsrs, doc(cfg(feature = "transport")))]
pub use client::{MerchantConfig, ReverseClient};
pub use der::DerError;
pub use ids::{
    BaseUrl, InvalidInput, MchId, MerchantMode, Nonce, OrderRef, OutTradeNo, SerialNo, Timestamp,
    TransactionId,
};
pub use keys::{
    KeyError, KeyKind, RsaPrivateKey, RsaPublicKey, SecretPem, SignError, VerificationKeys,
};
pub use kicc_core::retry::{AttemptBounds, AttemptBoundsBuilder, AttemptRecord, Heard, Now};
pub use kicc_core::Rng;
#[cfg(feature = "transport")]
#[cfg_attr(docsrs, doc(cfg(feature = "transport")))]
pub use kicc_transport;
pub use pem::PemError;
pub use query::{interpret_query_response, QueriedOrder, QueryError, QueryRequest, TradeState};
pub use retry::{RetryPolicy, RetryPolicyBuilder};
pub use reverse::{
    interpret_reverse_response, ApiError, ApiErrorCode, ErrorDetail, MaybeRevokedReason, NextStep,
    ReverseCall, ReverseError, ReverseOutcome, ReverseRequest, SignedRequest, TimingChecks,
    TimingViolation, USER_AGENT,
};
pub use revocation::{Revocation, RevokeStep, MAX_RESEND_AGE};
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

// The README's example, compiled with the doc tests so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
