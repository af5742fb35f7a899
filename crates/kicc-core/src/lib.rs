//! The sans-IO core of kicc-rs: everything about KICC EasyPay cancellations that is not
//! sockets, runtimes or clocks.
//!
//! Time and randomness are arguments; requests leave as `http::Request<Bytes>`; responses
//! come back as status and bytes. The channel crates (`kicc-generic`, `kicc-alipay`,
//! `kicc-wechat`) build their messages from these types, and `kicc-transport` sends them.
//!
//! # Where things are
//!
//! The everyday vocabulary is at the crate root, one `use kicc_core::...` away:
//!
//! | what | items |
//! |---|---|
//! | errors | [`Error`] (split by what to do next), [`FieldError`] + [`Rule`] (a field that broke a rule), [`GatewayError`] |
//! | text fields (UTF-8 byte limits, forbidden characters) | [`PgCno`], [`MallId`], [`ShopTransactionId`], [`NotifyUrl`], [`Memo`], [`ReviseMessage`], ..., [`check_text`] |
//! | money | [`Currency`], [`Amount`] in minor units, [`Money`] (`"12.03"` USD is 1203) |
//! | Korea-time dates | [`KoreaDate`], [`KoreaDateTime`] from an instant passed in |
//! | secrets | [`SecretKey`] (redacted, zeroed), [`MsgAuthValue`] |
//! | where requests go | [`Merchant`], [`Environment`], [`BaseUrl`] (`https://`, or `http://` to loopback only) |
//! | codes | [`Channel`], [`ReviseTypeCode`], [`AmountRule`], [`RetryStyle`], [`classify`] + [`ResponseClass`], [`TransactionStatus`] |
//! | inputs | [`CancelText`] (a cancel given as text), [`Rng`] (keys, nonces, jitter) |
//!
//! The specialised parts are namespaces, named by path and never re-exported:
//!
//! | module | holds | who uses it |
//! |---|---|---|
//! | [`retry`] | [`RetryPolicy`](retry::RetryPolicy) and the per-cancellation state machine [`Cancellation`](retry::Cancellation), resumable from [`SentAttempt`](retry::SentAttempt)s | everyone who configures retries; drivers, the ledger |
//! | [`webhook`] | notices, acknowledgements, de-duplication | webhook receivers |
//! | [`inbox`] | a framework-free webhook receiver for any notice kind | webhook receivers |
//! | [`lookup`] | `retrieveTransaction`: looking a request up by its own key | the retry machine, the ledger |
//! | [`message`] | the head every revise request shares, reading responses, fixed-request exchanges | channel crates |
//! | [`wallet`] | the cancel message Alipay and WeChat Pay share | channel crates |
//! | [`wire`] | lenient JSON reading shared by the channel crates | channel crates |
//!
//! # API design
//!
//! kicc-core is meant to be published and kept stable, so its public surface follows a few
//! rules, measured against the Rust API Guidelines, aws-sdk-rust and async-stripe.
//!
//! **One path per item.** A module is either private with its items re-exported at the root
//! (the vocabulary above, which every caller names) or a public namespace whose items are
//! named through it (`kicc_core::retry::RetryPolicy`, `kicc_core::webhook::GenericNotice`),
//! never both. A reader meets each type under one name, and the docs list it once.
//!
//! **What is public is what callers use.** The retry table (which observation leads to which
//! retry) and its inputs are crate-private: callers drive
//! [`Cancellation`](retry::Cancellation) and read its [`Action`](retry::Action)s, and the
//! table is covered by table tests inside the crate. What drivers, channel crates and the
//! ledger need stays public: [`Exchange`](retry::Exchange), [`Describes`](retry::Describes),
//! [`Expected`](retry::Expected), [`Interpreted`](retry::Interpreted),
//! [`Delivery`](retry::Delivery), [`Now`](retry::Now), [`Resend`](retry::Resend), the tie
//! rule ([`tie`](retry::tie), [`Tie`](retry::Tie)) and the resume API
//! ([`Cancellation::resume`](retry::Cancellation::resume),
//! [`SentAttempt`](retry::SentAttempt), [`InFlight`](retry::InFlight)). So do the
//! protocol-neutral pieces another provider's client shares (wechatpay-direct):
//! [`AttemptBounds`](retry::AttemptBounds), [`backoff_delay`](retry::backoff_delay) and
//! [`Resender`](retry::Resender), the one retry model, on which
//! [`Cancellation`](retry::Cancellation) itself runs.
//!
//! **Configuration through builders, values through constructors.** Settings that must hang
//! together have private fields, a builder that checks them and getters
//! ([`RetryPolicy`](retry::RetryPolicy), [`AttemptBounds`](retry::AttemptBounds)):
//! `RetryPolicy::builder().max_attempts(2).build()?` refuses 0 attempts, a maximum backoff
//! below the initial one and `0000` as a "not found" code, with a [`FieldError`] naming the
//! setting; [`RetryPolicy::to_builder`](retry::RetryPolicy::to_builder) changes an existing
//! policy. [`Merchant`] has three required parts and no optional ones, so it is built by
//! [`Merchant::new`] from already-validated values and read by getters. Validated values
//! (`PgCno`, `Amount`, `KoreaDate`, ...) are newtypes built by a checking constructor, so an
//! invalid one cannot exist. Inputs given as text have named fields ([`CancelText`]), not a
//! row of positional `Option`s.
//!
//! **`#[non_exhaustive]` where growth is plausible.** Errors, classifications, channel-like
//! enums (a new channel, currency, environment or code) and structs read from the gateway
//! (whose API adds fields) are `#[non_exhaustive]`, so adding a variant or a field is not a
//! breaking change: match them with a wildcard arm, and read their fields rather than
//! building them. Two enums stay exhaustive on purpose: [`Action`](retry::Action) (a driver
//! must do every action) and [`Resend`](retry::Resend) (every channel must rebuild its request
//! for each kind); a new variant there should fail to compile. So does the input struct
//! [`Expected`](retry::Expected), which every channel fills in. Small value types built by a
//! checking constructor need no attribute: they cannot be built literally anyway.
//! Closed sets stay exhaustive too, because there a wildcard arm only hides a mistake and
//! a literal is the natural way to build the value: [`Money`] (an amount and its currency),
//! [`AmountRule`] (required, forbidden or optional), [`Acknowledgement`](webhook::Acknowledgement)
//! (received or not), [`AmountInfo`](wire::AmountInfo) (the two fields the API page defines)
//! and [`Now`](retry::Now) (the two clocks). The channel crates and kicc-ledger follow the
//! same rule (`RefundQueryFlag`, `BasketUsed`, `OrderRef`, `MerchantMode`, `Signer`,
//! `PgTarget`, `IntentParams`, `AttemptPlan`, `AttemptResult`, `Planned`; CHANGELOG.md lists
//! each reason).
//!
//! **Errors say what to do next and keep their cause.** [`Error`] is split by the caller's
//! next step (fix the input, the gateway said no, nothing was processed, query before acting,
//! wait). Its `Display` is one complete line (the CLI prints it as is); an error that wraps
//! another returns it from [`source()`](std::error::Error::source): [`Error::Invalid`] its
//! [`FieldError`], [`Error::Declined`] the [`GatewayError`] (`resCd`, `resMsg`, the request's
//! `shopTransactionId`, `resDetailMsg` and the HTTP status), and
//! [`WebhookError::Malformed`](webhook::WebhookError::Malformed) the JSON reader's error.
//! Errors are `Clone + PartialEq` so tests and ledgers can compare and store them, and no
//! error carries a secret.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cancel_text;
mod codes;
mod date;
mod endpoint;
mod error;
mod field;
mod idempotency;
pub mod inbox;
pub mod lookup;
pub mod message;
mod money;
mod random;
pub mod retry;
mod revise;
mod secret;
mod text;
pub mod wallet;
pub mod webhook;
pub mod wire;

pub use cancel_text::CancelText;
pub use codes::{
    classify, is_card_issuer_decline, ResponseClass, TransactionStatus, CARD_ISSUER_DECLINES,
    SUCCESS,
};
pub use date::{KoreaDate, KoreaDateTime, KST_OFFSET_SECONDS};
pub use endpoint::{
    is_loopback_authority, is_loopback_host, BaseUrl, Environment, Merchant, PRODUCTION_URL,
    TEST_URL,
};
pub use error::{Error, GatewayError};
pub use field::{FieldError, Rule};
pub use money::{Amount, Currency, Money};
pub use random::Rng;
pub use revise::{AmountRule, Channel, RetryStyle, ReviseTypeCode};
pub use secret::{MsgAuthValue, SecretKey};
pub use text::{
    check_text, is_forbidden, ClientId, ClientIp, MallId, Memo, NotifyUrl, PgCno, ProductPgCno,
    RegId, ReviseMessage, SellerId, ShopTransactionId, FORBIDDEN_ASCII,
};

// The README's example, compiled and run with the doc tests so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
