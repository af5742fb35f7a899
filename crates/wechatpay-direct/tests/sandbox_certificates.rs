//! Platform certificates against kicc-sandbox over real HTTP: download and
//! decrypt, a rotation in the middle of a run of revokes, and refusals of a
//! wrong API v3 key or a tampered ciphertext.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "hyper")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kicc_sandbox::{
    Currency, NewWechatpayOrder, Sandbox, SandboxConfig, SandboxHandle, WechatpayConfig,
    DEFAULT_WECHATPAY_MCHID, SANDBOX_APIV3_KEY, SANDBOX_MERCHANT_PRIVATE_KEY_PEM,
    SANDBOX_MERCHANT_SERIAL_NO, SANDBOX_PLATFORM_CERTIFICATE_PEM,
    SANDBOX_PLATFORM_CERTIFICATE_SERIAL,
};
use wechatpay_direct::kicc_transport::{HyperTransport, Transport};
use wechatpay_direct::{
    certificates_request, interpret_certificates_response, ApiV3Key, BaseUrl, CertError,
    CertificateManager, MerchantConfig, MerchantMode, Nonce, OrderRef, RefreshPolicy, RetryPolicy,
    ReverseCall, ReverseClient, ReverseOutcome, RsaPrivateKey, RsaPublicKey, SerialNo, Timestamp,
    TradeState, VerificationKeys,
};

async fn sandbox() -> SandboxHandle {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    Sandbox::start(
        addr,
        SandboxConfig::default().with_wechatpay(WechatpayConfig::default()),
    )
    .await
    .expect("sandbox starts")
}

fn config(keys: VerificationKeys) -> MerchantConfig {
    MerchantConfig::builder()
        .mode(MerchantMode::common(DEFAULT_WECHATPAY_MCHID).unwrap())
        .serial_no(SerialNo::new(SANDBOX_MERCHANT_SERIAL_NO).unwrap())
        .private_key(Arc::new(
            RsaPrivateKey::from_pem(SANDBOX_MERCHANT_PRIVATE_KEY_PEM).unwrap(),
        ))
        .verification_keys(keys)
        .build()
        .expect("merchant config")
}

fn client(sb: &SandboxHandle, keys: VerificationKeys) -> ReverseClient<HyperTransport> {
    ReverseClient::new(HyperTransport::new().unwrap(), config(keys))
        .with_base_urls(BaseUrl::new(sb.base_url()).unwrap(), None)
        .with_retry_policy(
            RetryPolicy::builder()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(10))
                .build()
                .expect("retry policy"),
        )
}

fn api_key() -> ApiV3Key {
    ApiV3Key::new(SANDBOX_APIV3_KEY.as_bytes()).unwrap()
}

fn now() -> u64 {
    Timestamp::from_system_time(SystemTime::now())
        .unwrap()
        .unix_secs()
}

#[tokio::test]
async fn first_download_is_verified_with_the_certificate_it_carries() {
    let sb = sandbox().await;
    // Nothing held yet: the answer is verified with the decrypted certificate
    // whose serial is its Wechatpay-Serial.
    let certs = client(&sb, VerificationKeys::new())
        .download_certificates(&api_key())
        .await
        .expect("downloaded");
    assert_eq!(certs.len(), 1);
    let c = &certs[0];
    assert_eq!(c.serial.as_str(), SANDBOX_PLATFORM_CERTIFICATE_SERIAL);
    assert_eq!(c.pem.trim(), SANDBOX_PLATFORM_CERTIFICATE_PEM.trim());
    let (_, expected) =
        RsaPublicKey::from_certificate_pem(SANDBOX_PLATFORM_CERTIFICATE_PEM).unwrap();
    assert_eq!(c.public_key, expected);
    assert!(c.is_valid_at(now()), "{c:?}");
    assert!(c.effective_time_text.ends_with("+08:00"));
    assert!(!format!("{:?}", api_key()).contains("kicc-sandbox"));
}

#[tokio::test]
async fn a_wrong_api_v3_key_is_refused_clearly() {
    let sb = sandbox().await;
    let wrong = ApiV3Key::new(b"0123456789abcdef0123456789abcdef").unwrap();
    let err = client(&sb, VerificationKeys::new())
        .download_certificates(&wrong)
        .await
        .unwrap_err();
    assert_eq!(err, CertError::Decrypt);
    assert!(err.to_string().contains("wrong API v3 key"), "{err}");
}

#[tokio::test]
async fn a_tampered_ciphertext_is_refused() {
    let sb = sandbox().await;
    let key = RsaPrivateKey::from_pem(SANDBOX_MERCHANT_PRIVATE_KEY_PEM).unwrap();
    let now_ts = Timestamp::from_unix_secs(u64::try_from(sb.unix_time()).unwrap()).unwrap();
    let signed = certificates_request(
        &MerchantMode::common(DEFAULT_WECHATPAY_MCHID).unwrap(),
        &SerialNo::new(SANDBOX_MERCHANT_SERIAL_NO).unwrap(),
        &key,
        now_ts,
        &Nonce::new("TAMPERTAMPERTAMPERTAMPERTAMPER01").unwrap(),
    )
    .unwrap();
    let response = HyperTransport::new()
        .unwrap()
        .send(
            signed
                .to_http_request(&BaseUrl::new(sb.base_url()).unwrap())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut listing: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    let untouched = interpret_certificates_response(
        response.status(),
        response.headers(),
        response.body(),
        now_ts,
        &api_key(),
        &VerificationKeys::new(),
    );
    assert!(untouched.is_ok(), "{untouched:?}");
    // Flip one character of the ciphertext (still valid Base64).
    let ct = listing["data"][0]["encrypt_certificate"]["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let flipped = if ct.starts_with('A') { "B" } else { "A" };
    listing["data"][0]["encrypt_certificate"]["ciphertext"] =
        format!("{flipped}{}", &ct[1..]).into();
    let body = serde_json::to_vec(&listing).unwrap();
    let err = interpret_certificates_response(
        response.status(),
        response.headers(),
        &body,
        now_ts,
        &api_key(),
        &VerificationKeys::new(),
    )
    .unwrap_err();
    assert_eq!(err, CertError::Decrypt, "{err}");
    // Altered associated data is refused the same way.
    listing["data"][0]["encrypt_certificate"]["ciphertext"] = ct.into();
    listing["data"][0]["encrypt_certificate"]["associated_data"] = "other".into();
    let body = serde_json::to_vec(&listing).unwrap();
    let err = interpret_certificates_response(
        response.status(),
        response.headers(),
        &body,
        now_ts,
        &api_key(),
        &VerificationKeys::new(),
    )
    .unwrap_err();
    assert_eq!(err, CertError::Decrypt);
}

#[tokio::test]
async fn a_rotation_in_the_middle_of_revokes_fails_no_verification() {
    let sb = sandbox().await;
    let manager = Arc::new(Mutex::new(
        CertificateManager::new(RefreshPolicy::default()),
    ));
    // No fixed key at all: everything comes from the manager.
    let c = client(&sb, VerificationKeys::new())
        .with_certificate_manager(Arc::clone(&manager), api_key());
    let mut rotated = None;
    for i in 0..6 {
        if i == 3 {
            // The new certificate signs at once; the old one stays listed an hour.
            rotated = Some(sb.rotate_wechatpay_platform(0, 3_600).unwrap());
        }
        let p = sb
            .create_wechatpay_order(NewWechatpayOrder::new(100, Currency::Usd).paid_seconds_ago(60))
            .unwrap();
        let call = ReverseCall::without_timing_checks(
            OrderRef::out_trade_no(p.out_trade_no.unwrap()).unwrap(),
        );
        let out = c.reverse(&call).await.expect("answered");
        let ReverseOutcome::Revoked(v) = out else {
            panic!("revoke {i}: {out:?}")
        };
        let expected = if i < 3 {
            SANDBOX_PLATFORM_CERTIFICATE_SERIAL.to_owned()
        } else {
            rotated.clone().unwrap()
        };
        assert_eq!(v.serial, expected, "revoke {i}");
    }
    let m = manager.lock().unwrap().clone();
    let held: Vec<&str> = m.certificates().map(|c| c.serial.as_str()).collect();
    assert!(
        held.contains(&SANDBOX_PLATFORM_CERTIFICATE_SERIAL),
        "{held:?}"
    );
    assert!(held.contains(&rotated.as_deref().unwrap()), "{held:?}");
    // The query client uses the same manager.
    let p = sb
        .create_wechatpay_order(NewWechatpayOrder::new(100, Currency::Usd))
        .unwrap();
    let o = c
        .query(&OrderRef::transaction_id(p.transaction_id.unwrap()).unwrap())
        .await
        .unwrap();
    assert_eq!(o.trade_state, TradeState::Success);
    assert_eq!(o.verified.serial, rotated.unwrap());
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_certificates_held() {
    let sb = sandbox().await;
    let manager = Arc::new(Mutex::new(
        CertificateManager::new(RefreshPolicy::default()),
    ));
    let good = client(&sb, VerificationKeys::new())
        .with_certificate_manager(Arc::clone(&manager), api_key());
    assert_eq!(good.refresh_certificates().await.unwrap(), 1);
    let wrong = ApiV3Key::new(&[b'x'; 32]).unwrap();
    let bad =
        client(&sb, VerificationKeys::new()).with_certificate_manager(Arc::clone(&manager), wrong);
    assert_eq!(
        bad.refresh_certificates().await.unwrap_err(),
        CertError::Decrypt
    );
    assert!(manager
        .lock()
        .unwrap()
        .holds(SANDBOX_PLATFORM_CERTIFICATE_SERIAL));
}

async fn revoke(c: &ReverseClient<HyperTransport>, sb: &SandboxHandle) -> ReverseOutcome {
    let p = sb
        .create_wechatpay_order(NewWechatpayOrder::new(100, Currency::Usd))
        .unwrap();
    let call = ReverseCall::without_timing_checks(
        OrderRef::out_trade_no(p.out_trade_no.unwrap()).unwrap(),
    );
    c.reverse(&call).await.expect("answered")
}

#[tokio::test]
async fn certificates_are_refreshed_when_the_schedule_says_so() {
    let sb = sandbox().await;
    let downloads = |sb: &SandboxHandle| {
        sb.wechatpay_requests()
            .iter()
            .filter(|r| r.path == kicc_sandbox::WECHATPAY_CERTIFICATES_PATH)
            .count()
    };
    // Default policy: one download serves many calls.
    let manager = Arc::new(Mutex::new(
        CertificateManager::new(RefreshPolicy::default()),
    ));
    let c = client(&sb, VerificationKeys::new()).with_certificate_manager(manager, api_key());
    for _ in 0..3 {
        assert!(revoke(&c, &sb).await.is_revoked());
    }
    assert_eq!(downloads(&sb), 1);
    // A schedule that is always due: one download before every call.
    let always = RefreshPolicy::default().with_interval_secs(0);
    let manager = Arc::new(Mutex::new(CertificateManager::new(always)));
    let c = client(&sb, VerificationKeys::new()).with_certificate_manager(manager, api_key());
    for _ in 0..3 {
        assert!(revoke(&c, &sb).await.is_revoked());
    }
    assert_eq!(downloads(&sb), 4);
}

#[tokio::test]
async fn the_driver_refreshes_on_its_own_schedule() {
    let sb = sandbox().await;
    let policy = RefreshPolicy::default().with_interval_secs(1);
    let manager = Arc::new(Mutex::new(CertificateManager::new(policy)));
    let c = Arc::new(
        client(&sb, VerificationKeys::new())
            .with_certificate_manager(Arc::clone(&manager), api_key()),
    );
    let driver = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.keep_certificates_fresh().await })
    };
    // Wait for the event that proves it: three downloads, with no call made.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the driver did not refresh three times"
        );
        let n = sb
            .wechatpay_requests()
            .iter()
            .filter(|r| r.path == kicc_sandbox::WECHATPAY_CERTIFICATES_PATH)
            .count();
        if n >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    driver.abort();
    assert!(manager
        .lock()
        .unwrap()
        .holds(SANDBOX_PLATFORM_CERTIFICATE_SERIAL));
    // Without a manager the driver says so at once.
    let none = client(&sb, VerificationKeys::new());
    assert_eq!(none.keep_certificates_fresh().await, CertError::NoManager);
}

#[tokio::test]
async fn a_certificate_listed_before_it_signs_is_already_held_at_the_switch() {
    let sb = sandbox().await;
    let manager = Arc::new(Mutex::new(
        CertificateManager::new(RefreshPolicy::default()),
    ));
    // The client's clock follows the sandbox's (which the test moves forward).
    let offset = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let clock_offset = Arc::clone(&offset);
    let c = client(&sb, VerificationKeys::new())
        .with_certificate_manager(Arc::clone(&manager), api_key())
        .with_clock(move || {
            SystemTime::now()
                + Duration::from_secs(clock_offset.load(std::sync::atomic::Ordering::SeqCst))
        });
    // Like WeChat Pay: the new certificate is listed ahead of the switch.
    let new_serial = sb.rotate_wechatpay_platform(600, 3_600).unwrap();
    assert_eq!(
        verified_by(revoke(&c, &sb).await),
        SANDBOX_PLATFORM_CERTIFICATE_SERIAL,
        "the old key still signs"
    );
    {
        let m = manager.lock().unwrap();
        assert!(m.holds(SANDBOX_PLATFORM_CERTIFICATE_SERIAL) && m.holds(&new_serial));
    }
    // Ten minutes later the new key signs; it is already held: no new download.
    sb.set_clock(601).unwrap();
    offset.store(601, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(verified_by(revoke(&c, &sb).await), new_serial);
    let downloads = sb
        .wechatpay_requests()
        .iter()
        .filter(|r| r.path == kicc_sandbox::WECHATPAY_CERTIFICATES_PATH)
        .count();
    assert_eq!(downloads, 1);
}

/// The serial that verified a revoke (panics unless it is a verified 204).
fn verified_by(outcome: ReverseOutcome) -> String {
    match outcome {
        ReverseOutcome::Revoked(v) => v.serial,
        other => panic!("not a verified revoke: {other:?}"),
    }
}
