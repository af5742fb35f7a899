//! Layer 1, types: what the WeChat Pay Global endpoints are made of: their
//! configuration and committed sandbox keys, the sandbox's own crypto
//! ([`crypto`]: message builders, a strict `Authorization` parser, `ring`;
//! written from the API pages independently of `wechatpay-direct`), the
//! platform certificates, and the orders' records. The checks and rules are
//! in `rules::wechatpay`, the IO in the server layer.

mod config;
pub(crate) mod crypto;
mod keys;
mod orders;
mod platform;

pub(crate) use config::Settings as WechatpaySettings;
pub use config::{ApiV3KeyText, PrivateKeyPem, SecondRevoke, WechatpayConfig, WechatpayMerchant};
pub use keys::{
    DEFAULT_WECHATPAY_MCHID, DEFAULT_WECHATPAY_SUB_MCHID, SANDBOX_APIV3_KEY,
    SANDBOX_MERCHANT_CERTIFICATE_PEM, SANDBOX_MERCHANT_PRIVATE_KEY_PEM,
    SANDBOX_MERCHANT_PUBLIC_KEY_PEM, SANDBOX_MERCHANT_SERIAL_NO, SANDBOX_PLATFORM_CERTIFICATE_PEM,
    SANDBOX_PLATFORM_CERTIFICATE_SERIAL, SANDBOX_PLATFORM_PRIVATE_KEY_PEM,
    SANDBOX_PLATFORM_PUBLIC_KEY_ID, SANDBOX_PLATFORM_PUBLIC_KEY_PEM,
    SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM,
};
pub use orders::{NewWechatpayOrder, PaidAt, WechatpayRequestRecord};
pub(crate) use orders::{WxOrderRec, WxState, MAX_UNIX_SECS, REVOKE_WINDOW_SECS};
pub(crate) use platform::{PlatformSet, Rotated};
