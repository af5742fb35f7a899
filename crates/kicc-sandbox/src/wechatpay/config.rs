//! Configuration of the WeChat Pay Global revoke endpoint: whose requests it
//! accepts and how it signs its answers.

use std::fmt;

use zeroize::Zeroizing;

use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;

use super::crypto::{PrivateKey, PublicKey};

use super::keys::{
    DEFAULT_WECHATPAY_MCHID, DEFAULT_WECHATPAY_SUB_MCHID, SANDBOX_APIV3_KEY,
    SANDBOX_MERCHANT_PUBLIC_KEY_PEM, SANDBOX_MERCHANT_SERIAL_NO, SANDBOX_PLATFORM_CERTIFICATE_PEM,
    SANDBOX_PLATFORM_CERTIFICATE_SERIAL, SANDBOX_PLATFORM_PRIVATE_KEY_PEM,
    SANDBOX_PLATFORM_PUBLIC_KEY_ID, SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM,
};
use crate::SandboxError;

/// The merchant the revoke endpoint serves, and in which mode it calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WechatpayMerchant {
    /// Common mode: requests carry `{"mchid": ...}` and sign as `mchid`.
    Common {
        /// The merchant ID.
        mchid: String,
    },
    /// Institutional mode: requests carry `{"sp_mchid": ..., "sub_mchid": ...}`
    /// and sign as `sp_mchid`.
    Institutional {
        /// The institution's merchant ID (the caller, who signs).
        sp_mchid: String,
        /// The sub-merchant whose orders are revoked.
        sub_mchid: String,
    },
}

impl WechatpayMerchant {
    /// Common mode with `mchid`.
    pub fn common(mchid: impl Into<String>) -> Self {
        Self::Common {
            mchid: mchid.into(),
        }
    }

    /// Institutional mode with `sp_mchid` and `sub_mchid`.
    pub fn institutional(sp_mchid: impl Into<String>, sub_mchid: impl Into<String>) -> Self {
        Self::Institutional {
            sp_mchid: sp_mchid.into(),
            sub_mchid: sub_mchid.into(),
        }
    }

    /// Institutional mode with the sandbox's IDs: `sp_mchid`
    /// [`DEFAULT_WECHATPAY_MCHID`], `sub_mchid` [`DEFAULT_WECHATPAY_SUB_MCHID`].
    pub fn sandbox_institutional() -> Self {
        Self::institutional(DEFAULT_WECHATPAY_MCHID, DEFAULT_WECHATPAY_SUB_MCHID)
    }

    /// The merchant that signs (`Authorization`'s `mchid`): `mchid`, or `sp_mchid`.
    pub fn caller_mchid(&self) -> &str {
        match self {
            Self::Common { mchid } => mchid,
            Self::Institutional { sp_mchid, .. } => sp_mchid,
        }
    }

    /// `"common"` or `"institutional"`.
    pub fn mode_name(&self) -> &'static str {
        match self {
            Self::Common { .. } => "common",
            Self::Institutional { .. } => "institutional",
        }
    }
}

impl Default for WechatpayMerchant {
    /// Common mode, `mchid` [`DEFAULT_WECHATPAY_MCHID`].
    fn default() -> Self {
        Self::common(DEFAULT_WECHATPAY_MCHID)
    }
}

/// A PEM private key held as a secret: `Debug` is redacted, there is no
/// `Display`, and the text is zeroed when dropped.
#[derive(Clone)]
pub struct PrivateKeyPem(Zeroizing<String>);

impl PrivateKeyPem {
    /// Wraps PEM text (`BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE KEY`).
    pub fn new(pem: impl Into<String>) -> Self {
        Self(Zeroizing::new(pem.into()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for PrivateKeyPem {
    fn from(pem: &str) -> Self {
        Self::new(pem)
    }
}

impl From<String> for PrivateKeyPem {
    fn from(pem: String) -> Self {
        Self::new(pem)
    }
}

/// The API v3 key (32 bytes) held as a secret: `Debug` is redacted, there is
/// no `Display`, and it is zeroed when dropped.
#[derive(Clone)]
pub struct ApiV3KeyText(Zeroizing<String>);

impl ApiV3KeyText {
    /// Wraps the key text (must be exactly 32 bytes; checked when the sandbox starts).
    pub fn new(key: impl Into<String>) -> Self {
        Self(Zeroizing::new(key.into()))
    }
}

impl From<&str> for ApiV3KeyText {
    fn from(key: &str) -> Self {
        Self::new(key)
    }
}

impl fmt::Debug for ApiV3KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiV3KeyText(<redacted>)")
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// How the WeChat Pay Global revoke endpoint behaves: which merchant and key
/// it accepts, and which platform key and serial it signs answers with.
///
/// The default uses the committed, **publicly known, sandbox-only** keys
/// ([`SANDBOX_MERCHANT_PRIVATE_KEY_PEM`](crate::SANDBOX_MERCHANT_PRIVATE_KEY_PEM)
/// signs, the sandbox verifies with its public half; answers are signed with
/// [`SANDBOX_PLATFORM_PRIVATE_KEY_PEM`] under
/// [`SANDBOX_PLATFORM_CERTIFICATE_SERIAL`]), common mode with `mchid`
/// [`DEFAULT_WECHATPAY_MCHID`].
///
/// ```
/// use kicc_sandbox::{SandboxConfig, WechatpayConfig, WechatpayMerchant, SANDBOX_PLATFORM_PUBLIC_KEY_ID};
///
/// let config = SandboxConfig::default().with_wechatpay(
///     WechatpayConfig::default()
///         .with_merchant(WechatpayMerchant::sandbox_institutional())
///         .public_key_mode(),
/// );
/// assert_eq!(config.wechatpay.platform_serial, SANDBOX_PLATFORM_PUBLIC_KEY_ID);
/// assert!(!format!("{config:?}").contains("PRIVATE KEY"));
/// ```
#[derive(Clone, Debug)]
pub struct WechatpayConfig {
    /// The only merchant (and mode) whose revokes are accepted.
    pub merchant: WechatpayMerchant,
    /// The merchant's public key the `Authorization` signature is checked with:
    /// SPKI (`BEGIN PUBLIC KEY`), PKCS#1 (`BEGIN RSA PUBLIC KEY`) or a
    /// certificate (`BEGIN CERTIFICATE`) PEM.
    pub merchant_public_key_pem: String,
    /// The merchant certificate serial `Authorization`'s `serial_no` must name.
    pub merchant_serial_no: String,
    /// The platform private key every revoke answer is signed with.
    pub platform_private_key: PrivateKeyPem,
    /// The `Wechatpay-Serial` sent with every answer: a platform certificate
    /// serial, or a `PUB_KEY_ID_...` for public-key mode.
    pub platform_serial: String,
    /// The certificate of [`platform_private_key`](Self::platform_private_key)
    /// that `GET /v3/global/certificates` lists (PEM). Set it together with the key.
    pub platform_certificate_pem: String,
    /// The API v3 key the certificates listing is encrypted with (exactly 32
    /// bytes). Default [`SANDBOX_APIV3_KEY`].
    pub apiv3_key: ApiV3KeyText,
    /// **Inferred** (the revoke page does not say): how a revoke of an order
    /// that is already revoked is answered. Default [`SecondRevoke::Succeed`].
    pub second_revoke: SecondRevoke,
    /// **Inferred** (the pages do not say whether WeChat Pay refuses a
    /// `nonce_str` it has seen): when `true`, a signed request whose
    /// `(mchid, nonce_str)` was already accepted within the 5-minute window is
    /// refused with `401 SIGN_ERROR`, identical retries included. Default `false`,
    /// which lets a client resend the identical signed bytes after a 5xx, as
    /// the revoke page advises.
    pub reject_replayed_nonce: bool,
}

/// How the sandbox answers a revoke of an order that is already revoked.
/// **Inferred**: the revoke page documents no answer for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecondRevoke {
    /// HTTP 204 again, changing nothing (idempotent; the default).
    #[default]
    Succeed,
    /// `400 INVALID_REQUEST` "the order has already been revoked".
    Error,
}

impl Default for WechatpayConfig {
    fn default() -> Self {
        Self {
            merchant: WechatpayMerchant::default(),
            merchant_public_key_pem: SANDBOX_MERCHANT_PUBLIC_KEY_PEM.to_owned(),
            merchant_serial_no: SANDBOX_MERCHANT_SERIAL_NO.to_owned(),
            platform_private_key: PrivateKeyPem::new(SANDBOX_PLATFORM_PRIVATE_KEY_PEM),
            platform_serial: SANDBOX_PLATFORM_CERTIFICATE_SERIAL.to_owned(),
            platform_certificate_pem: SANDBOX_PLATFORM_CERTIFICATE_PEM.to_owned(),
            apiv3_key: ApiV3KeyText::new(SANDBOX_APIV3_KEY),
            second_revoke: SecondRevoke::default(),
            reject_replayed_nonce: false,
        }
    }
}

impl WechatpayConfig {
    /// Sets [`merchant`](Self::merchant).
    #[must_use]
    pub fn with_merchant(mut self, merchant: WechatpayMerchant) -> Self {
        self.merchant = merchant;
        self
    }

    /// Sets [`merchant_public_key_pem`](Self::merchant_public_key_pem).
    #[must_use]
    pub fn with_merchant_public_key_pem(mut self, pem: impl Into<String>) -> Self {
        self.merchant_public_key_pem = pem.into();
        self
    }

    /// Sets [`merchant_serial_no`](Self::merchant_serial_no).
    #[must_use]
    pub fn with_merchant_serial_no(mut self, serial: impl Into<String>) -> Self {
        self.merchant_serial_no = serial.into();
        self
    }

    /// Sets [`platform_private_key`](Self::platform_private_key).
    #[must_use]
    pub fn with_platform_private_key_pem(mut self, pem: impl Into<PrivateKeyPem>) -> Self {
        self.platform_private_key = pem.into();
        self
    }

    /// Sets [`platform_serial`](Self::platform_serial).
    #[must_use]
    pub fn with_platform_serial(mut self, serial: impl Into<String>) -> Self {
        self.platform_serial = serial.into();
        self
    }

    /// Sets [`apiv3_key`](Self::apiv3_key).
    #[must_use]
    pub fn with_apiv3_key(mut self, key: impl Into<ApiV3KeyText>) -> Self {
        self.apiv3_key = key.into();
        self
    }

    /// Sets [`platform_certificate_pem`](Self::platform_certificate_pem).
    #[must_use]
    pub fn with_platform_certificate_pem(mut self, pem: impl Into<String>) -> Self {
        self.platform_certificate_pem = pem.into();
        self
    }

    /// Sets [`second_revoke`](Self::second_revoke) (an inferred behaviour).
    #[must_use]
    pub fn with_second_revoke(mut self, answer: SecondRevoke) -> Self {
        self.second_revoke = answer;
        self
    }

    /// Sets [`reject_replayed_nonce`](Self::reject_replayed_nonce) (an inferred behaviour).
    #[must_use]
    pub fn with_reject_replayed_nonce(mut self, reject: bool) -> Self {
        self.reject_replayed_nonce = reject;
        self
    }

    /// Announces the platform key as a WeChat Pay public key: `Wechatpay-Serial`
    /// becomes [`SANDBOX_PLATFORM_PUBLIC_KEY_ID`] (clients verify with
    /// [`SANDBOX_PLATFORM_PUBLIC_KEY_PEM`](crate::SANDBOX_PLATFORM_PUBLIC_KEY_PEM)).
    #[must_use]
    pub fn public_key_mode(self) -> Self {
        self.with_platform_serial(SANDBOX_PLATFORM_PUBLIC_KEY_ID)
    }

    /// Checks every field and loads the keys; errors name the field and the rule.
    pub(crate) fn load(&self) -> Result<Settings, SandboxError> {
        let invalid =
            |field: &'static str, rule: String| SandboxError::InvalidConfig { field, rule };
        let id = |field: &'static str, value: &str| {
            check_mchid(value).map_err(|rule| invalid(field, format!("breaks a rule: {rule}")))
        };
        match &self.merchant {
            WechatpayMerchant::Common { mchid } => id("wechatpay.merchant.mchid", mchid)?,
            WechatpayMerchant::Institutional {
                sp_mchid,
                sub_mchid,
            } => {
                id("wechatpay.merchant.sp_mchid", sp_mchid)?;
                id("wechatpay.merchant.sub_mchid", sub_mchid)?;
            }
        }
        let merchant_key = PublicKey::from_pem(&self.merchant_public_key_pem).map_err(|e| {
            invalid(
                "wechatpay.merchant_public_key_pem",
                format!("must be an RSA public key or certificate PEM: {e}"),
            )
        })?;
        check_serial(&self.merchant_serial_no).map_err(|rule| {
            invalid(
                "wechatpay.merchant_serial_no",
                format!("breaks a rule: {rule}"),
            )
        })?;
        let platform_key =
            PrivateKey::from_pem(self.platform_private_key.as_str()).map_err(|e| {
                invalid(
                    "wechatpay.platform_private_key",
                    format!("must be an RSA private key PEM (2048 to 4096 bits): {e}"),
                )
            })?;
        check_serial(&self.platform_serial).map_err(|rule| {
            invalid(
                "wechatpay.platform_serial",
                format!("breaks a rule: {rule}"),
            )
        })?;
        let cert_der = rustls_pki_types::CertificateDer::from_pem_slice(
            self.platform_certificate_pem.as_bytes(),
        )
        .map_err(|e| {
            invalid(
                "wechatpay.platform_certificate_pem",
                format!("must be a CERTIFICATE PEM: {e}"),
            )
        })?;
        let (platform_certificate_serial, _) = PublicKey::from_certificate_der(&cert_der)
            .map_err(|e| invalid("wechatpay.platform_certificate_pem", e))?;
        let key_bytes = self.apiv3_key.0.as_bytes();
        if key_bytes.len() != 32 {
            return Err(invalid(
                "wechatpay.apiv3_key",
                format!("must be exactly 32 bytes, got {}", key_bytes.len()),
            ));
        }
        let mut apiv3_key = Zeroizing::new([0u8; 32]);
        apiv3_key.copy_from_slice(key_bytes);
        let rotation_key = PrivateKey::from_pem(SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM)
            .map_err(|e| invalid("wechatpay.rotation_key", e))?;
        Ok(Settings {
            merchant: self.merchant.clone(),
            merchant_key,
            merchant_serial: self.merchant_serial_no.clone(),
            platform_key: Arc::new(platform_key),
            platform_key_pem: self.platform_private_key.clone(),
            platform_certificate_pem: self.platform_certificate_pem.clone(),
            platform_certificate_serial,
            apiv3_key: ApiKeyBytes(apiv3_key),
            rotation_key: Arc::new(rotation_key),
            platform_serial: self.platform_serial.clone(),
            second_revoke: self.second_revoke,
            reject_replayed_nonce: self.reject_replayed_nonce,
        })
    }
}

/// A merchant ID: 1 to 32 characters, no control characters.
fn check_mchid(value: &str) -> Result<(), String> {
    let count = value.chars().count();
    if !(1..=32).contains(&count) {
        return Err(format!("must be 1 to 32 characters, got {count}"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// A certificate serial or public key ID: 1 to 64 of `[0-9A-Za-z_-]`.
fn check_serial(value: &str) -> Result<(), String> {
    let count = value.chars().count();
    if !(1..=64).contains(&count) {
        return Err(format!("must be 1 to 64 characters, got {count}"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("only ASCII letters, digits, '_' and '-' are allowed".into());
    }
    Ok(())
}

/// The loaded API v3 key: 32 bytes, `Debug` redacted, zeroed on drop.
pub(crate) struct ApiKeyBytes(Zeroizing<[u8; 32]>);

impl ApiKeyBytes {
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ApiKeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyBytes(<redacted>)")
    }
}

/// The loaded configuration the endpoint runs with.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) merchant: WechatpayMerchant,
    pub(crate) merchant_key: PublicKey,
    pub(crate) merchant_serial: String,
    pub(crate) platform_key: Arc<PrivateKey>,
    pub(crate) platform_key_pem: PrivateKeyPem,
    pub(crate) platform_certificate_pem: String,
    pub(crate) platform_certificate_serial: String,
    pub(crate) apiv3_key: ApiKeyBytes,
    pub(crate) rotation_key: Arc<PrivateKey>,
    pub(crate) platform_serial: String,
    pub(crate) second_revoke: SecondRevoke,
    pub(crate) reject_replayed_nonce: bool,
}
