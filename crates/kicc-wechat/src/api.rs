//! The WeChat Pay cancel API through KICC: its path, its marker type, the message types named
//! for it, and the webhook inbox types for its notices.

use kicc_core::wallet::{
    TakesNotifyUrl, WalletApi, WalletCancel, WalletRevise, WalletReviseResponse,
};
use kicc_core::Channel;

/// The API path of the cancel, below the environment's base URL.
pub const PATH: &str = "/api/trades/wechatpay/revise";

/// Marks messages for the WeChat Pay cancel API (which takes `notifyUrl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeChat {}

impl WalletApi for WeChat {
    const CHANNEL: Channel = Channel::WeChat;
    const PATH: &'static str = PATH;
    const TAKES_NOTIFY_URL: bool = true;
}

impl TakesNotifyUrl for WeChat {}

/// What to cancel: full (`40`) or partial (`32`, with its amount and currency), and where the
/// result goes (`notify_url`).
pub type CancelRequest = WalletCancel<WeChat>;
/// The exact WeChat Pay revise message, `msgAuthValue` included.
pub type ReviseRequest = WalletRevise<WeChat>;
/// KICC's answer to a WeChat Pay cancel: `resCd` 0000 means ACCEPTED, not done.
pub type ReviseResponse = WalletReviseResponse;

/// Receives WeChat Pay cancel notices (see `kicc_core::inbox`): parse, de-duplicate,
/// acknowledge, and keep the latest per `cancelPgCno` for [`ResultWaiter`](crate::ResultWaiter) and
/// `WechatClient::wait_for_result`.
pub type WebhookInbox = kicc_core::inbox::WebhookInbox<kicc_core::webhook::WechatCancelNotice>;
/// What a received WeChat Pay notice turned out to be.
pub type NoticeEvent = kicc_core::inbox::NoticeEvent<kicc_core::webhook::WechatCancelNotice>;
/// The answer to a WeChat Pay notice.
pub type WebhookReply = kicc_core::inbox::WebhookReply<kicc_core::webhook::WechatCancelNotice>;
