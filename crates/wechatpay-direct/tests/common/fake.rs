//! An in-memory fake of WeChat Pay for client tests: it verifies each
//! request's signature with the merchant's public key (answering 401
//! SIGN_ERROR otherwise, like the real service) and answers from a per-attempt
//! script, signing its answers with a platform key.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, StatusCode};
use wechatpay_direct::kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};
use wechatpay_direct::{
    parse_authorization, sign_response, verify_request_signature, MerchantConfig, MerchantMode,
    Nonce, OrderRef, RetryPolicy, ReverseCall, ReverseClient, RsaPublicKey, SerialNo, USER_AGENT,
};

use super::*;

pub const NOW: u64 = 1_700_000_000;
pub const MERCHANT_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD00000000";

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Step {
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

pub struct FakeWechat {
    pub merchant_key: RsaPublicKey,
    pub script: Mutex<VecDeque<Step>>,
    pub received: Mutex<Vec<HttpRequest>>,
}

impl FakeWechat {
    pub fn new(script: impl IntoIterator<Item = Step>) -> Arc<Self> {
        Arc::new(Self {
            merchant_key: key(KEY_3072).public_key(),
            script: Mutex::new(script.into_iter().collect()),
            received: Mutex::new(Vec::new()),
        })
    }

    pub fn received(&self) -> Vec<HttpRequest> {
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

pub fn raw(status: u16, body: &str) -> HttpResponse {
    let mut r = http::Response::new(Bytes::from(body.to_owned()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

pub fn json(status: u16, body: &str) -> HttpResponse {
    let mut r = raw(status, body);
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

/// A 204 signed with the platform certificate's key (2048-bit fixture).
pub fn signed_204(at: i64, signature_override: Option<&str>) -> HttpResponse {
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

pub fn config(mode: MerchantMode) -> MerchantConfig {
    MerchantConfig::builder()
        .mode(mode)
        .serial_no(SerialNo::new(MERCHANT_SERIAL).unwrap())
        .private_key(Arc::new(key(KEY_3072)))
        .verification_keys(key_store())
        .build()
        .expect("merchant config")
}

pub fn client(fake: &Arc<FakeWechat>) -> ReverseClient<Arc<FakeWechat>> {
    client_with(fake, MerchantMode::common("1900000109").unwrap())
}

pub fn client_with(fake: &Arc<FakeWechat>, mode: MerchantMode) -> ReverseClient<Arc<FakeWechat>> {
    let ticks = AtomicU64::new(0);
    let nonces = AtomicU64::new(0);
    ReverseClient::new(Arc::clone(fake), config(mode))
        .with_retry_policy(
            RetryPolicy::builder()
                .max_attempts(3)
                .initial_backoff(Duration::ZERO)
                .max_backoff(Duration::ZERO)
                .build()
                .expect("retry policy"),
        )
        // The clock ticks one second per reading and every nonce is new, so a
        // client that re-signed a retry would send different bytes.
        .with_clock(move || {
            UNIX_EPOCH + Duration::from_secs(NOW + ticks.fetch_add(1, Ordering::SeqCst))
        })
        .with_nonce_source(move || {
            Nonce::new(format!("{:032}", nonces.fetch_add(1, Ordering::SeqCst))).ok()
        })
}

pub fn call() -> ReverseCall {
    // Paid a minute before NOW: inside both timing rules.
    ReverseCall::new(
        OrderRef::out_trade_no("ORDER-20240101-0001").unwrap(),
        ts(NOW - 60),
    )
}
