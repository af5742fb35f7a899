//! The Alipay cancel API: its path, its marker type and the message types named for it.

use kicc_core::wallet::{WalletApi, WalletCancel, WalletRevise, WalletReviseResponse};
use kicc_core::Channel;

/// The API path, below the environment's base URL.
pub const PATH: &str = "/api/trades/alipay/revise";

/// Marks messages for the Alipay cancel API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alipay {}

impl WalletApi for Alipay {
    const CHANNEL: Channel = Channel::Alipay;
    const PATH: &'static str = PATH;
}

/// What to cancel: full (`40`) or partial (`32`, with its amount and currency).
pub type CancelRequest = WalletCancel<Alipay>;
/// The exact Alipay revise message, `msgAuthValue` included.
pub type ReviseRequest = WalletRevise<Alipay>;
/// The answer to an Alipay cancel.
pub type ReviseResponse = WalletReviseResponse;
