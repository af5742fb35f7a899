//! The sans-IO core of kicc-rs: everything about KICC EasyPay cancellations that is not
//! sockets, runtimes or clocks.
//!
//! | module | holds |
//! |---|---|
//! | [`text`] | text fields in UTF-8 bytes, forbidden characters, validated newtypes (`PgCno`, `MallId`, ...) |
//! | [`money`] | `Currency`, `Amount` in minor units, reading a person's decimal (`"12.03"` USD is 1203) |
//! | [`date`] | Korea-time dates (`yyyyMMdd`, `yyyyMMddHHmmss`) from an instant passed in |
//! | [`secret`] | the secret key (redacted, zeroed) and `msgAuthValue` |
//! | [`revise`] | `reviseTypeCode`, the codes each channel accepts, and which codes need an amount |
//! | [`codes`] | response-code classification and status codes |
//! | [`idempotency`] | generated `shopTransactionId`s |
//! | [`retry`] | the retry table, the tie rule and the per-cancellation state machine |
//! | [`lookup`] | `retrieveTransaction`: looking a request up by its own key |
//! | [`webhook`] | notices, acknowledgements, de-duplication |
//! | [`inbox`] | a framework-free webhook receiver for any notice kind |
//! | [`message`] | the head every revise request shares, reading responses, fixed-request exchanges |
//! | [`wallet`] | the cancel message Alipay and WeChat Pay share |
//! | [`endpoint`] | environments, base URLs, the merchant |
//! | [`wire`] | lenient JSON reading shared by the channel crates |
//!
//! Time and randomness are arguments; requests leave as `http::Request<Bytes>`; responses
//! come back as status and bytes. The channel crates (`kicc-generic`, `kicc-alipay`,
//! `kicc-wechat`) build their messages from these types, and `kicc-transport` sends them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codes;
pub mod date;
pub mod endpoint;
pub mod error;
mod field;
pub mod idempotency;
pub mod inbox;
pub mod lookup;
pub mod message;
pub mod money;
pub mod random;
pub mod retry;
pub mod revise;
pub mod secret;
pub mod text;
pub mod wallet;
pub mod webhook;
pub mod wire;

pub use codes::{classify, ResponseClass, TransactionStatus};
pub use date::{KoreaDate, KoreaDateTime};
pub use endpoint::{BaseUrl, Environment, Merchant};
pub use error::{Error, GatewayError};
pub use field::{FieldError, Rule};
pub use message::{FixedExchange, KiccResponse, QueryExchange, ReviseHead};
pub use money::{Amount, Currency, Money};
pub use random::Rng;
pub use retry::{
    Action, Cancellation, Delivery, Describes, Exchange, Expected, Interpreted, Now, Resend,
    RetryPolicy, SentAttempt, Tie,
};
pub use revise::{AmountRule, Channel, RetryStyle, ReviseTypeCode};
pub use secret::{MsgAuthValue, SecretKey};
pub use text::{
    ClientId, ClientIp, MallId, Memo, NotifyUrl, PgCno, ProductPgCno, RegId, ReviseMessage,
    SellerId, ShopTransactionId,
};
pub use webhook::{
    Acknowledgement, DedupKey, Deduplicator, GenericNotice, WebhookError, WechatCancelNotice,
};
