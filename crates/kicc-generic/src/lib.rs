//! Card, bank transfer, mobile and cash receipt cancellations (and capture) through KICC
//! EasyPay's generic revise API (`POST /api/trades/revise`).
//!
//! - [`CancelRequest`]: full (`40`), partial (`32` card / `33` transfer and mobile, chosen from
//!   [`PaymentMethod`]), capture (`20`), cash receipt (`51`, `52`), with tax and basket info.
//! - [`ReviseRequest`]: the exact message, `msgAuthValue` included.
//! - [`ReviseResponse`]: the answer, all documented fields, nested ones included.
//! - [`GenericExchange`]: the retry rule of this API for `kicc_core::retry::Cancellation`: after a
//!   timeout or `VTIM` / `VT00`, resend with `refundQueryFlag = "Y"`, a new key and today's date.
//!
//! # A complete cancel
//!
//! With the default `hyper` feature, [`GenericClient`] sends, retries and reads. This runs
//! against the embedded sandbox (the hidden lines start it); in production the environment is
//! `Environment::Production` and the secret comes from your secret store.
//!
// The example needs `Client::new` (feature `hyper`); without it the block is not run.
#![cfg_attr(feature = "hyper", doc = "```")]
#![cfg_attr(not(feature = "hyper"), doc = "```ignore")]
//! use kicc_core::{Amount, BaseUrl, Environment, MallId, Merchant, PgCno, SecretKey};
//! use kicc_generic::{CancelRequest, GenericClient, PaymentMethod};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = kicc_sandbox::Sandbox::start("127.0.0.1:0".parse()?, Default::default()).await?;
//! # let payment = sandbox.create_payment(kicc_sandbox::Channel::Card, 51_004, kicc_sandbox::Currency::Krw)?;
//! # let (sandbox_url, pg_cno) = (sandbox.base_url(), payment.pg_cno);
//! # let secret_from_your_vault = kicc_sandbox::DEFAULT_SECRET_KEY;
//! let merchant = Merchant::new(
//!     Environment::Custom(BaseUrl::new(&sandbox_url)?), // Environment::Production for real money
//!     MallId::new("T0000001")?,
//!     SecretKey::new(secret_from_your_vault)?,
//! );
//! let client = GenericClient::new(merchant)?;
//!
//! // Refund 1,004 won of a card payment (code 32, chosen from the payment method), then the rest.
//! let pg_cno = PgCno::new(pg_cno)?;
//! let partial = CancelRequest::partial(pg_cno.clone(), PaymentMethod::Card, Amount::new("amount", 1_004)?)?;
//! let first = client.cancel(&partial).await?;
//! assert_eq!(first.remain_amount, Some(50_000));
//! let rest = client.cancel(&CancelRequest::full(pg_cno)?).await?;
//! println!("cancelled as {} ({:?})", rest.cancel_pg_cno, rest.status_code);
//! # assert_eq!(sandbox.payment(rest.ori_pg_cno.as_str()).unwrap().status_code, "TS02");
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | (none) | | the messages, signing and reading: no IO at all |
//! | `transport` | via `hyper` | [`GenericClient`] over any `kicc_transport::Transport`, with kicc-transport's retry driver (tokio timers); no hyper, rustls or tokio-rustls |
//! | `hyper` | yes | `transport` plus `kicc_transport::HyperTransport` and `GenericClient::new` |
//!
//! Bring your own HTTP stack with `default-features = false, features = ["transport"]` and
//! `GenericClient::with_transport`.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(feature = "transport")]
mod client;
mod exchange;
mod request;
mod response;

#[cfg(feature = "transport")]
#[cfg_attr(docsrs, doc(cfg(feature = "transport")))]
pub use client::GenericClient;
pub use exchange::GenericExchange;
pub use request::{
    BasketInfo, BasketUsed, CancelRequest, PaymentMethod, RefundQueryFlag, RemainAmountConvention,
    ReviseRequest, TaxInfo, PATH, PG_CNO_MAX_BYTES,
};
pub use response::{CardInfo, CashReceiptInfo, ReviseInfo, ReviseResponse};

/// Receives the generic notices (`notiType` 10 approval, 20 change/cancel, 30 deposit, ...):
/// parse (amounts as strings or numbers), de-duplicate KICC's re-sends, acknowledge, and keep
/// the latest per `pgCno`. Framework-free: mount [`GenericWebhookInbox::handle`] in any server,
/// and confirm with a status query before moving money on a notice.
pub type GenericWebhookInbox = kicc_core::inbox::WebhookInbox<kicc_core::webhook::GenericNotice>;

#[cfg(test)]
mod tests;

// The README's example, compiled with the doc tests so it cannot rot.
#[cfg(all(doctest, feature = "hyper"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
