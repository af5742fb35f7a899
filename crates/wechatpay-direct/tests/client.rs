//! The client over an in-memory fake of WeChat Pay: it verifies each request's
//! signature with the merchant's public key and answers from a per-attempt
//! script, signing its answers with a platform key.
#![cfg(feature = "transport")]

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use http::{Method, StatusCode};
use wechatpay_direct::kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};
use wechatpay_direct::{
    parse_authorization, sign_response, verify_request_signature, ApiErrorCode, BaseUrl,
    MaybeRevokedReason, MerchantConfig, MerchantMode, NextStep, Nonce, OrderRef, RetryPolicy,
    ReverseCall, ReverseClient, ReverseError, ReverseOutcome, RsaPublicKey, SerialNo, SignError,
    TimingChecks, TimingViolation, VerifyError, USER_AGENT,
};

const NOW: u64 = 1_700_000_000;
const MERCHANT_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD00000000";
const NONCE: &str = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";

/// One scripted answer.
#[derive(Clone, Debug)]
enum Step {
    /// 204, correctly signed by the platform certificate's key.
    Revoked,
    /// 204 signed with a `WECHATPAY/SIGNTEST/` probe.
    Probe,
    /// 204 whose signed timestamp is `offset` seconds off.
    SkewedTimestamp(i64),
    /// 204 with no signature headers.
    Unsigned,
    /// A JSON error `{code, message}` with this status.
    Error(u16, &'static str),
    /// Any status and raw body, unsigned.
    Raw(u16, &'static str),
    /// No response: this transport error.
    Fail(TransportError),
}

struct FakeWechat {
    merchant_key: RsaPublicKey,
    script: Mutex<VecDeque<Step>>,
    received: Mutex<Vec<HttpRequest>>,
}

impl FakeWechat {
    fn new(script: impl IntoIterator<Item = Step>) -> Arc<Self> {
        Arc::new(Self {
            merchant_key: key(KEY_3072).public_key(),
            script: Mutex::new(script.into_iter().collect()),
            received: Mutex::new(Vec::new()),
        })
    }

    fn received(&self) -> Vec<HttpRequest> {
        self.received.lock().unwrap().clone()
    }

    fn answer(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        // The real service refuses requests whose signature does not verify.
        let auth = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let signed_ok = parse_authorization(auth)
            .ok()
            .filter(|p| p.mchid == "1900000109" && p.serial_no == MERCHANT_SERIAL)
            .map(|p| {
                verify_request_signature(
                    request.method(),
                    request
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or(""),
                    request.body(),
                    &p,
                    ts(NOW),
                    &self.merchant_key,
                )
            });
        let headers_ok = request.method() == Method::POST
            && request.headers()["accept"] == "application/json"
            && request.headers()["content-type"] == "application/json"
            && request.headers()["user-agent"] == USER_AGENT;
        if signed_ok != Some(Ok(())) || !headers_ok {
            return Ok(json(
                401,
                r#"{"code":"SIGN_ERROR","message":"signature verification failed","detail":{"sign_information":{}}}"#,
            ));
        }
        let step = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .expect("the script ran out of steps");
        match step {
            Step::Revoked => Ok(signed_204(NOW as i64, None)),
            Step::Probe => Ok(signed_204(
                NOW as i64,
                Some("WECHATPAY/SIGNTEST/c2lnbmF0dXJlIHRlc3Q="),
            )),
            Step::SkewedTimestamp(offset) => Ok(signed_204(NOW as i64 + offset, None)),
            Step::Unsigned => Ok(raw(204, "")),
            Step::Error(status, code) => Ok(json(
                status,
                &format!(r#"{{"code":"{code}","message":"scripted {code}"}}"#),
            )),
            Step::Raw(status, body) => Ok(raw(status, body)),
            Step::Fail(e) => Err(e),
        }
    }
}

impl Transport for FakeWechat {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.received.lock().unwrap().push(request.clone());
        self.answer(&request)
    }
}

fn raw(status: u16, body: &str) -> HttpResponse {
    let mut r = http::Response::new(Bytes::from(body.to_owned()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

fn json(status: u16, body: &str) -> HttpResponse {
    let mut r = raw(status, body);
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

/// A 204 signed with the platform certificate's key (2048-bit fixture).
fn signed_204(at: i64, signature_override: Option<&str>) -> HttpResponse {
    let headers = sign_response(
        b"",
        ts(at as u64),
        &Nonce::new("593BEC0C930BF1AFEB40B4A08C8FB242").unwrap(),
        &cert_2048_serial(),
        &key(KEY_2048),
    )
    .unwrap();
    let mut r = raw(204, "");
    headers.write_to(r.headers_mut());
    if let Some(sig) = signature_override {
        r.headers_mut()
            .insert("wechatpay-signature", sig.parse().unwrap());
    }
    r
}

fn config(mode: MerchantMode) -> MerchantConfig {
    MerchantConfig {
        mode,
        serial_no: SerialNo::new(MERCHANT_SERIAL).unwrap(),
        private_key: Arc::new(key(KEY_3072)),
        verification_keys: key_store(),
    }
}

fn client(fake: &Arc<FakeWechat>) -> ReverseClient<Arc<FakeWechat>> {
    client_with(fake, MerchantMode::common("1900000109").unwrap())
}

fn client_with(fake: &Arc<FakeWechat>, mode: MerchantMode) -> ReverseClient<Arc<FakeWechat>> {
    ReverseClient::new(Arc::clone(fake), config(mode))
        .with_retry_policy(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        })
        .with_clock(|| UNIX_EPOCH + Duration::from_secs(NOW))
        .with_nonce_source(|| Some(Nonce::new(NONCE).unwrap()))
}

fn call() -> ReverseCall {
    // Paid a minute before NOW: inside both timing rules.
    ReverseCall::new(
        OrderRef::out_trade_no("ORDER-20240101-0001").unwrap(),
        ts(NOW - 60),
    )
}

#[tokio::test]
async fn revoke_success() {
    let fake = FakeWechat::new([Step::Revoked]);
    let out = client(&fake).reverse(&call()).await.unwrap();
    let ReverseOutcome::Revoked(v) = out else {
        panic!("{out:?}")
    };
    assert_eq!(v.serial, CERT_2048_SERIAL.trim());
    let sent = fake.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].uri(),
        "https://apihk.mch.weixin.qq.com/v3/global/micropay/transactions/out-trade-no/ORDER-20240101-0001/reverse"
    );
    assert_eq!(sent[0].body().as_ref(), br#"{"mchid":"1900000109"}"#);
}

#[tokio::test]
async fn institutional_mode_and_transaction_id() {
    let fake = FakeWechat::new([Step::Revoked]);
    let c = client_with(
        &fake,
        MerchantMode::institutional("1900000109", "1900000100").unwrap(),
    );
    let call = ReverseCall::new(
        OrderRef::transaction_id("4200001234202401010000000001").unwrap(),
        ts(NOW - 60),
    );
    assert!(c.reverse(&call).await.unwrap().is_revoked());
    let sent = fake.received();
    assert_eq!(
        sent[0].uri().path(),
        "/v3/global/micropay/transactions/id/4200001234202401010000000001/reverse"
    );
    assert_eq!(
        sent[0].body().as_ref(),
        br#"{"sp_mchid":"1900000109","sub_mchid":"1900000100"}"#
    );
}

#[tokio::test]
async fn each_error_code_is_typed_with_what_to_do_next() {
    let cases = [
        (
            400,
            "SYSTEM_ERROR",
            ApiErrorCode::SystemError,
            NextStep::QueryOrder,
        ),
        (
            400,
            "INVALID_TRANSACTIONID",
            ApiErrorCode::InvalidTransactionId,
            NextStep::NotRevoked,
        ),
        (
            400,
            "PARAM_ERROR",
            ApiErrorCode::ParamError,
            NextStep::NotRevoked,
        ),
        (
            403,
            "REVERSE_EXPIRE",
            ApiErrorCode::ReverseExpire,
            NextStep::NotRevoked,
        ),
        (
            403,
            "INVALID_REQUEST",
            ApiErrorCode::InvalidRequest,
            NextStep::NotRevoked,
        ),
        (
            403,
            "TRADE_ERROR",
            ApiErrorCode::TradeError,
            NextStep::NotRevoked,
        ),
        (
            404,
            "ORDER_NOT_EXIST",
            ApiErrorCode::Other("ORDER_NOT_EXIST".into()),
            NextStep::QueryOrder,
        ),
    ];
    for (status, code, expected, step) in cases {
        let fake = FakeWechat::new([Step::Error(status, code)]);
        let err = client(&fake).reverse(&call()).await.unwrap_err();
        let ReverseError::Api(api) = &err else {
            panic!("{code}: {err:?}")
        };
        assert_eq!(api.status, status);
        assert_eq!(api.code, expected);
        assert_eq!(api.message, format!("scripted {code}"));
        assert_eq!(err.next_step(), step, "{code}");
        // Definite answers are not retried.
        assert_eq!(fake.received().len(), 1, "{code}");
    }
}

#[tokio::test]
async fn sign_error_401_when_the_signature_is_refused() {
    let fake = FakeWechat::new([Step::Revoked]);
    // Sign with a key the fake does not know (the 2048-bit one).
    let mut cfg = config(MerchantMode::common("1900000109").unwrap());
    cfg.private_key = Arc::new(key(KEY_2048));
    let c = ReverseClient::new(Arc::clone(&fake), cfg)
        .with_clock(|| UNIX_EPOCH + Duration::from_secs(NOW))
        .with_retry_policy(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        });
    let err = c.reverse(&call()).await.unwrap_err();
    assert_eq!(err.api_code(), Some(&ApiErrorCode::SignError));
    assert_eq!(err.http_status(), Some(401));
    assert_eq!(err.next_step(), NextStep::NotRevoked);
    let ReverseError::Api(api) = err else {
        unreachable!()
    };
    assert!(api.detail.unwrap().raw.get("sign_information").is_some());
}

#[tokio::test]
async fn server_errors_are_retried_with_identical_bytes_then_succeed() {
    let fake = FakeWechat::new([
        Step::Error(500, "SYSTEM_ERROR"),
        Step::Raw(502, "<html>bad gateway</html>"),
        Step::Revoked,
    ]);
    let out = client(&fake).reverse(&call()).await.unwrap();
    assert!(out.is_revoked());
    let sent = fake.received();
    assert_eq!(sent.len(), 3);
    for r in &sent[1..] {
        assert_eq!(r.method(), sent[0].method());
        assert_eq!(r.uri(), sent[0].uri());
        assert_eq!(
            r.headers(),
            sent[0].headers(),
            "same Authorization: signed once"
        );
        assert_eq!(r.body(), sent[0].body());
    }
}

#[tokio::test]
async fn all_attempts_5xx_is_maybe_revoked_retries_exhausted() {
    let fake = FakeWechat::new([
        Step::Error(500, "SYSTEM_ERROR"),
        Step::Error(503, "SYSTEM_ERROR"),
        Step::Raw(500, ""),
    ]);
    let err = client(&fake).reverse(&call()).await.unwrap_err();
    let ReverseError::RetriesExhausted {
        attempts,
        may_have_reached_server,
        last,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*attempts, 3);
    assert!(*may_have_reached_server);
    assert_eq!(
        **last,
        ReverseError::UnexpectedResponse {
            status: 500,
            body_excerpt: String::new()
        }
    );
    assert_eq!(err.next_step(), NextStep::QueryOrder);
    assert_eq!(fake.received().len(), 3);
}

#[tokio::test]
async fn unverified_2xx_is_maybe_revoked() {
    type Check = fn(&VerifyError) -> bool;
    let cases: [(Step, Check); 3] = [
        (Step::Probe, |e| *e == VerifyError::SignatureProbe),
        (Step::SkewedTimestamp(-301), |e| {
            matches!(e, VerifyError::OutsideWindow { .. })
        }),
        (Step::Unsigned, |e| {
            matches!(e, VerifyError::MissingHeader { .. })
        }),
    ];
    for (step, check) in cases {
        let fake = FakeWechat::new([step.clone()]);
        let out = client(&fake).reverse(&call()).await.unwrap();
        let ReverseOutcome::MaybeRevoked {
            status: 204,
            reason: MaybeRevokedReason::Unverified(e),
        } = &out
        else {
            panic!("{step:?}: {out:?}")
        };
        assert!(check(e), "{step:?}: {e:?}");
        assert_eq!(fake.received().len(), 1, "a 2xx is never retried");
    }
    // A 204 from a key the store does not hold.
    let fake = FakeWechat::new([Step::Revoked]);
    let mut c = client(&fake);
    assert!(c.verification_keys_mut().remove(CERT_2048_SERIAL.trim()));
    let out = c.reverse(&call()).await.unwrap();
    assert!(matches!(
        out.verification_error(),
        Some(VerifyError::UnknownSerial { .. })
    ));
}

#[tokio::test]
async fn backup_host_is_used_after_a_connection_failure() {
    let fake = FakeWechat::new([
        Step::Fail(TransportError::Connect("connection refused".into())),
        Step::Revoked,
    ]);
    let c = client(&fake).with_base_urls(BaseUrl::hong_kong(), Some(BaseUrl::mainland()));
    assert!(c.reverse(&call()).await.unwrap().is_revoked());
    let sent = fake.received();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].uri().host(), Some("apihk.mch.weixin.qq.com"));
    assert_eq!(sent[1].uri().host(), Some("api.mch.weixin.qq.com"));
    assert_eq!(sent[0].uri().path(), sent[1].uri().path());
    assert_eq!(sent[0].headers(), sent[1].headers());
    assert_eq!(sent[0].body(), sent[1].body());
}

#[tokio::test]
async fn timeouts_stay_on_the_primary_and_connect_failures_only_are_retryable() {
    let fake = FakeWechat::new([
        Step::Fail(TransportError::Timeout(Duration::from_secs(30))),
        Step::Fail(TransportError::Timeout(Duration::from_secs(30))),
        Step::Revoked,
    ]);
    let c = client(&fake).with_base_urls(BaseUrl::hong_kong(), Some(BaseUrl::mainland()));
    assert!(c.reverse(&call()).await.unwrap().is_revoked());
    assert!(fake
        .received()
        .iter()
        .all(|r| r.uri().host() == Some("apihk.mch.weixin.qq.com")));

    // Nothing ever connected: nothing can have been revoked; retry later.
    let fake =
        FakeWechat::new((0..3).map(|_| Step::Fail(TransportError::Connect("refused".into()))));
    let err = client(&fake).reverse(&call()).await.unwrap_err();
    assert!(matches!(
        err,
        ReverseError::RetriesExhausted {
            attempts: 3,
            may_have_reached_server: false,
            ..
        }
    ));
    assert_eq!(err.next_step(), NextStep::Retry);

    // A refusal by client policy is not retried.
    let fake = FakeWechat::new([Step::Fail(TransportError::Refused("plain http".into()))]);
    let err = client(&fake).reverse(&call()).await.unwrap_err();
    assert!(matches!(
        err,
        ReverseError::Transport(TransportError::Refused(_))
    ));
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn a_definite_refusal_after_an_ambiguous_attempt_means_query() {
    let fake = FakeWechat::new([
        Step::Fail(TransportError::Io("connection reset".into())),
        Step::Error(403, "REVERSE_EXPIRE"),
    ]);
    let err = client(&fake).reverse(&call()).await.unwrap_err();
    assert!(
        matches!(err, ReverseError::AfterAmbiguousAttempt { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(err.api_code(), Some(&ApiErrorCode::ReverseExpire));
    assert_eq!(err.next_step(), NextStep::QueryOrder);
}

#[tokio::test]
async fn timing_rules_refuse_before_sending() {
    let fake = FakeWechat::new([]);
    let c = client(&fake);
    let order = OrderRef::out_trade_no("ORDER-20240101-0001").unwrap();
    let too_soon = ReverseCall::new(order.clone(), ts(NOW - 5));
    let err = c.reverse(&too_soon).await.unwrap_err();
    assert_eq!(
        err,
        ReverseError::Timing(TimingViolation::TooSoon {
            elapsed_secs: 5,
            min_secs: 15
        })
    );
    assert_eq!(err.next_step(), NextStep::NotRevoked);
    let too_late = ReverseCall::new(order.clone(), ts(NOW - 8 * 86_400));
    assert!(matches!(
        c.reverse(&too_late).await.unwrap_err(),
        ReverseError::Timing(TimingViolation::TooLate { .. })
    ));
    assert!(fake.received().is_empty());

    // Opting out sends it.
    let fake = FakeWechat::new([Step::Revoked]);
    let opted_out = ReverseCall::new(order.clone(), ts(NOW - 5)).with_checks(TimingChecks::none());
    assert!(client(&fake)
        .reverse(&opted_out)
        .await
        .unwrap()
        .is_revoked());
    let fake = FakeWechat::new([Step::Revoked]);
    assert!(client(&fake)
        .reverse(&ReverseCall::without_timing_checks(order))
        .await
        .unwrap()
        .is_revoked());
}

#[tokio::test]
async fn no_nonce_no_request() {
    let fake = FakeWechat::new([]);
    let c = client(&fake).with_nonce_source(|| None);
    assert_eq!(
        c.reverse(&call()).await.unwrap_err(),
        ReverseError::Sign(SignError::Randomness)
    );
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn default_clock_and_nonce_sign_fresh_requests() {
    // With the real clock and SystemRandom, two calls differ in nonce.
    let fake = FakeWechat::new([]);
    let c = ReverseClient::new(
        Arc::clone(&fake),
        config(MerchantMode::common("1900000109").unwrap()),
    );
    let call = ReverseCall::without_timing_checks(OrderRef::out_trade_no("X").unwrap());
    let a = c.sign(&call).unwrap();
    let b = c.sign(&call).unwrap();
    assert_ne!(a.nonce(), b.nonce());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(a.timestamp().unix_secs().abs_diff(now) <= 5);
    assert!(a
        .nonce()
        .as_str()
        .chars()
        .all(|c| c.is_ascii_alphanumeric()));
}

#[test]
fn tracing_names_the_order_and_never_the_signature() {
    use std::io::Write;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let fake = FakeWechat::new([Step::Error(500, "SYSTEM_ERROR"), Step::Revoked]);
    let c = client(&fake);
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        assert!(rt.block_on(c.reverse(&call())).unwrap().is_revoked());
    });
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("ORDER-20240101-0001"), "{logs}");
    assert!(logs.contains("attempt=2"), "{logs}");
    assert!(logs.contains("500"), "{logs}");
    let sent = fake.received();
    let auth = sent[0].headers()["authorization"].to_str().unwrap();
    let signature = parse_authorization(auth).unwrap().signature;
    assert!(!logs.contains(&signature[..24]), "signature leaked: {logs}");
    assert!(!logs.contains("BEGIN"), "key material leaked: {logs}");
}
