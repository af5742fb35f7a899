//! The committed sandbox keys agree with the constants that name them, and a
//! bad key configuration is refused at start, naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod wechatpay_support;

use kicc_sandbox::{
    PrivateKeyPem, SandboxConfig, SandboxError, WechatpayConfig, WechatpayMerchant,
    SANDBOX_APIV3_KEY, SANDBOX_MERCHANT_CERTIFICATE_PEM, SANDBOX_MERCHANT_PRIVATE_KEY_PEM,
    SANDBOX_MERCHANT_PUBLIC_KEY_PEM, SANDBOX_MERCHANT_SERIAL_NO, SANDBOX_PLATFORM_CERTIFICATE_PEM,
    SANDBOX_PLATFORM_CERTIFICATE_SERIAL, SANDBOX_PLATFORM_PRIVATE_KEY_PEM,
    SANDBOX_PLATFORM_PUBLIC_KEY_ID, SANDBOX_PLATFORM_PUBLIC_KEY_PEM,
    SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM,
};
use serde_json::json;
use wechatpay_direct::{RsaPrivateKey, RsaPublicKey, VerificationKeys};
use wechatpay_support::*;

#[test]
fn constants_match_the_committed_key_files() {
    let merchant = RsaPrivateKey::from_pem(SANDBOX_MERCHANT_PRIVATE_KEY_PEM).unwrap();
    let platform = RsaPrivateKey::from_pem(SANDBOX_PLATFORM_PRIVATE_KEY_PEM).unwrap();
    assert_eq!((merchant.bits(), platform.bits()), (2048, 2048));
    assert_ne!(merchant.public_key(), platform.public_key());

    let msg = b"kicc-sandbox";
    let pairs = [
        (
            &merchant,
            RsaPublicKey::from_pem(SANDBOX_MERCHANT_PUBLIC_KEY_PEM).unwrap(),
        ),
        (
            &platform,
            RsaPublicKey::from_pem(SANDBOX_PLATFORM_PUBLIC_KEY_PEM).unwrap(),
        ),
    ];
    for (private, public) in pairs {
        assert!(public.verify(msg, &private.sign(msg).unwrap()));
    }

    let (serial, key) =
        RsaPublicKey::from_certificate_pem(SANDBOX_MERCHANT_CERTIFICATE_PEM).unwrap();
    assert_eq!(serial.as_str(), SANDBOX_MERCHANT_SERIAL_NO);
    assert_eq!(key, merchant.public_key());
    let (serial, key) =
        RsaPublicKey::from_certificate_pem(SANDBOX_PLATFORM_CERTIFICATE_PEM).unwrap();
    assert_eq!(serial.as_str(), SANDBOX_PLATFORM_CERTIFICATE_SERIAL);
    assert_eq!(key, platform.public_key());

    let mut keys = VerificationKeys::new();
    keys.add_public_key_pem(
        SANDBOX_PLATFORM_PUBLIC_KEY_ID,
        SANDBOX_PLATFORM_PUBLIC_KEY_PEM,
    )
    .expect("a PUB_KEY_ID_ id");

    let readme = include_str!("../keys/README.md");
    for needle in [
        "publicly known, sandbox-only keys",
        "never use them anywhere else",
        SANDBOX_MERCHANT_SERIAL_NO,
        SANDBOX_PLATFORM_CERTIFICATE_SERIAL,
        SANDBOX_PLATFORM_PUBLIC_KEY_ID,
        SANDBOX_APIV3_KEY,
        "platform-rotation-private-key.pem",
    ] {
        assert!(
            readme.to_lowercase().contains(&needle.to_lowercase()),
            "{needle}"
        );
    }
    // The API v3 key is exactly 32 bytes; the rotation key is another RSA 2048 key.
    assert_eq!(SANDBOX_APIV3_KEY.len(), 32);
    let rotation = RsaPrivateKey::from_pem(SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM).unwrap();
    assert_eq!(rotation.bits(), 2048);
    assert_ne!(rotation.public_key(), platform.public_key());
}

#[test]
fn config_debug_never_shows_the_api_v3_key() {
    let config = SandboxConfig::default().with_wechatpay(
        WechatpayConfig::default().with_apiv3_key("abcdefghijklmnopqrstuvwxyz012345"),
    );
    let text = format!("{config:?}");
    assert!(!text.contains("abcdefghij"), "{text}");
    assert!(!text.contains(SANDBOX_APIV3_KEY), "{text}");
}

#[tokio::test]
async fn a_bad_api_v3_key_is_refused_at_start() {
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let err = kicc_sandbox::Sandbox::start(
        addr,
        SandboxConfig::default().with_wechatpay(WechatpayConfig::default().with_apiv3_key("short")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, SandboxError::InvalidConfig { field: "wechatpay.apiv3_key", rule } if rule.contains("32 bytes")),
        "{err:?}"
    );
}

#[test]
fn config_debug_never_shows_the_platform_key() {
    let config = SandboxConfig::default();
    let text = format!("{config:?}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(text.contains("PrivateKeyPem(<redacted>)"), "{text}");
    assert_eq!(
        format!("{:?}", PrivateKeyPem::new("secret")),
        "PrivateKeyPem(<redacted>)"
    );
}

#[tokio::test]
async fn bad_wechatpay_config_is_refused_naming_the_field() {
    let cases = [
        (
            WechatpayConfig::default().with_merchant_public_key_pem("not a key"),
            "wechatpay.merchant_public_key_pem",
        ),
        (
            WechatpayConfig::default()
                .with_platform_private_key_pem(SANDBOX_PLATFORM_PUBLIC_KEY_PEM),
            "wechatpay.platform_private_key",
        ),
        (
            WechatpayConfig::default().with_platform_serial("has space"),
            "wechatpay.platform_serial",
        ),
        (
            WechatpayConfig::default().with_merchant_serial_no(""),
            "wechatpay.merchant_serial_no",
        ),
        (
            WechatpayConfig::default().with_merchant(WechatpayMerchant::common("")),
            "wechatpay.merchant.mchid",
        ),
        (
            WechatpayConfig::default()
                .with_merchant(WechatpayMerchant::institutional("1", "x".repeat(33))),
            "wechatpay.merchant.sub_mchid",
        ),
    ];
    for (wechatpay, field) in cases {
        let addr = "127.0.0.1:0".parse().unwrap();
        let err = kicc_sandbox::Sandbox::start(addr, fast_config().with_wechatpay(wechatpay))
            .await
            .expect_err(field);
        match err {
            SandboxError::InvalidConfig { field: f, .. } => assert_eq!(f, field),
            other => panic!("{field}: {other}"),
        }
    }
}

#[tokio::test]
async fn own_keys_replace_the_sandbox_keys() {
    // The merchant's key given as a certificate; answers signed with the
    // merchant key posing as a platform key under a serial of our choosing.
    let sb = start_wechatpay(
        WechatpayConfig::default()
            .with_merchant_public_key_pem(SANDBOX_MERCHANT_CERTIFICATE_PEM)
            .with_platform_private_key_pem(SANDBOX_MERCHANT_PRIVATE_KEY_PEM)
            .with_platform_serial("MY_OWN_SERIAL"),
    )
    .await;
    assert_eq!(sb.wechatpay_platform_serial(), "MY_OWN_SERIAL");
    let wx = Wx::new(&sb);
    let order = wx.order(json!({})).await;
    let r = wx
        .revoke_out(&sb, order["outTradeNo"].as_str().unwrap())
        .await;
    assert_eq!(r.status, http::StatusCode::NO_CONTENT);
    let mut keys = VerificationKeys::new();
    keys.add_certificate_pem_with_serial(
        wechatpay_direct::SerialNo::new("MY_OWN_SERIAL").unwrap(),
        SANDBOX_MERCHANT_CERTIFICATE_PEM,
    )
    .unwrap();
    wechatpay_direct::verify_response(&r.headers, &r.body, ts(sb.unix_time()), &keys)
        .expect("signed with the configured platform key");
    assert!(
        r.verify_at(sb.unix_time()).is_err(),
        "not with the sandbox's"
    );
}
