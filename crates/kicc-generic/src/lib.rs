//! Card, bank transfer, mobile and cash receipt cancellations (and capture) through KICC
//! EasyPay's generic revise API (`POST /api/trades/revise`).
//!
//! - [`CancelRequest`]: full (`40`), partial (`32` card / `33` transfer and mobile, chosen from
//!   [`PaymentMethod`]), capture (`20`), cash receipt (`51`, `52`), with tax and basket info.
//! - [`ReviseRequest`]: the exact message, `msgAuthValue` included.
//! - [`ReviseResponse`]: the answer, all documented fields, nested ones included.
//! - [`GenericExchange`]: the retry rule of this API for `kicc_core::Cancellation`: after a
//!   timeout or `VTIM` / `VT00`, resend with `refundQueryFlag = "Y"`, a new key and today's date.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "transport")]
mod client;
mod exchange;
mod request;
mod response;

#[cfg(feature = "transport")]
pub use client::GenericClient;
pub use exchange::GenericExchange;
pub use request::{
    BasketInfo, BasketUsed, CancelRequest, PaymentMethod, RefundQueryFlag, RemainAmountConvention,
    ReviseRequest, TaxInfo, PATH, PG_CNO_MAX_BYTES,
};
pub use response::{CardInfo, CashReceiptInfo, ReviseInfo, ReviseResponse};

#[cfg(test)]
mod tests;
