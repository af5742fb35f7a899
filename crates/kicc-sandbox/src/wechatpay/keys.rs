//! The sandbox's WeChat Pay keys and identifiers: **publicly known,
//! sandbox-only** (see `keys/README.md`). Never use them anywhere else.

/// The sandbox merchant's API private key (PKCS#8 PEM, RSA 2048).
///
/// **Publicly known, sandbox-only: never use it anywhere else.** Clients sign
/// revoke requests to the sandbox with it (`serial_no`
/// [`SANDBOX_MERCHANT_SERIAL_NO`]).
pub const SANDBOX_MERCHANT_PRIVATE_KEY_PEM: &str =
    include_str!("../../keys/merchant-private-key.pem");

/// The public half of [`SANDBOX_MERCHANT_PRIVATE_KEY_PEM`] (SPKI PEM): what the
/// sandbox verifies `Authorization` signatures with by default.
pub const SANDBOX_MERCHANT_PUBLIC_KEY_PEM: &str =
    include_str!("../../keys/merchant-public-key.pem");

/// A self-signed merchant API certificate for [`SANDBOX_MERCHANT_PRIVATE_KEY_PEM`]
/// (PEM); its serial is [`SANDBOX_MERCHANT_SERIAL_NO`].
pub const SANDBOX_MERCHANT_CERTIFICATE_PEM: &str =
    include_str!("../../keys/merchant-certificate.pem");

/// The serial number of [`SANDBOX_MERCHANT_CERTIFICATE_PEM`] (uppercase hex): the
/// `serial_no` a client puts in `Authorization`.
pub const SANDBOX_MERCHANT_SERIAL_NO: &str = "3A4DB0C5A4DB0C5A4DB0C5A4DB0C5A4DB0C50002";

/// The sandbox's "WeChat Pay platform" private key (PKCS#8 PEM, RSA 2048): the
/// sandbox signs every revoke response with it.
///
/// **Publicly known, sandbox-only: never trust it anywhere else.**
pub const SANDBOX_PLATFORM_PRIVATE_KEY_PEM: &str =
    include_str!("../../keys/platform-private-key.pem");

/// The key the sandbox's first platform-certificate rotation switches to
/// (PKCS#8 PEM, RSA 2048; `POST /sandbox/wechatpay/rotate`). Rotations
/// alternate between it and the configured platform key, each time with a new
/// certificate and serial made by rcgen.
///
/// **Publicly known, sandbox-only: never trust it anywhere else.**
pub const SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM: &str =
    include_str!("../../keys/platform-rotation-private-key.pem");

/// The sandbox's API v3 key (32 ASCII bytes): what it encrypts the platform
/// certificates of `GET /v3/global/certificates` with, unless configured
/// otherwise (`kicc sandbox serve` takes `WECHATPAY_APIV3_KEY`), and what the
/// CLI falls back to with `--env sandbox`.
///
/// **Publicly known, sandbox-only: never use it anywhere else.**
pub const SANDBOX_APIV3_KEY: &str = "kicc-sandbox-apiv3-key-PUBLIC-01";

/// A self-signed platform certificate for [`SANDBOX_PLATFORM_PRIVATE_KEY_PEM`]
/// (certificate mode); its serial is [`SANDBOX_PLATFORM_CERTIFICATE_SERIAL`].
pub const SANDBOX_PLATFORM_CERTIFICATE_PEM: &str =
    include_str!("../../keys/platform-certificate.pem");

/// The serial number of [`SANDBOX_PLATFORM_CERTIFICATE_PEM`] (uppercase hex): the
/// `Wechatpay-Serial` the sandbox sends by default.
pub const SANDBOX_PLATFORM_CERTIFICATE_SERIAL: &str = "5A4DB0C5A4DB0C5A4DB0C5A4DB0C5A4DB0C50001";

/// The platform key's public half as a "WeChat Pay public key" (SPKI PEM), for
/// clients in public-key mode (ID [`SANDBOX_PLATFORM_PUBLIC_KEY_ID`]).
pub const SANDBOX_PLATFORM_PUBLIC_KEY_PEM: &str =
    include_str!("../../keys/platform-public-key.pem");

/// The ID of [`SANDBOX_PLATFORM_PUBLIC_KEY_PEM`] in public-key mode: the
/// `Wechatpay-Serial` the sandbox sends when configured with
/// [`WechatpayConfig::public_key_mode`](crate::WechatpayConfig::public_key_mode).
pub const SANDBOX_PLATFORM_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000001092025SANDBOX000001";

/// The merchant ID the sandbox serves by default (common mode `mchid`; the
/// revoke page's example).
pub const DEFAULT_WECHATPAY_MCHID: &str = "1900000109";

/// The sub-merchant ID used by [`WechatpayMerchant::sandbox_institutional`](crate::WechatpayMerchant::sandbox_institutional)
/// (institutional mode `sub_mchid`; the revoke page's example).
pub const DEFAULT_WECHATPAY_SUB_MCHID: &str = "1900000100";
