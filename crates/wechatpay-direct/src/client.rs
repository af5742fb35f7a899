//! The revoke client over [`kicc_transport::Transport`] (feature `transport`).

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use kicc_core::retry::{Heard, Now, ResendStep, Resender, Verdict};
use kicc_transport::driver::{never_delivered, os_rng};
use kicc_transport::{HttpResponse, RefusedError, RefusedKind, Transport, TransportError};
use ring::rand::SecureRandom as _;
use tracing::field::Empty;
use tracing::Instrument as _;

use crate::certs::{
    certificates_request, interpret_certificates_response, ApiV3Key, CertError, CertificateManager,
    PlatformCertificate,
};
use crate::ids::{BaseUrl, InvalidInput, MerchantMode, Nonce, OrderRef, SerialNo, Timestamp};
use crate::keys::{RsaPrivateKey, SignError, VerificationKeys};
use crate::query::{interpret_query_response, QueriedOrder, QueryError, QueryRequest};
use crate::retry::{heard_of_answer, heard_of_revoke, switches_host, RetryPolicy};
use crate::reverse::{
    interpret_reverse_response, ApiErrorCode, MaybeRevokedReason, ReverseCall, ReverseError,
    ReverseOutcome, ReverseRequest, SignedRequest,
};
use crate::revocation::{Revocation, RevokeStep};
use crate::settle::Resolution;
use crate::verify::VerifyError;
use kicc_core::retry::AttemptRecord;

/// The merchant's side of the conversation: who calls, with which key, and
/// which WeChat Pay keys to trust. Build it with [`MerchantConfig::builder`].
#[derive(Debug, Clone)]
pub struct MerchantConfig {
    mode: MerchantMode,
    serial_no: SerialNo,
    private_key: Arc<RsaPrivateKey>,
    verification_keys: VerificationKeys,
}

impl MerchantConfig {
    /// A builder; every field is required.
    pub fn builder() -> MerchantConfigBuilder {
        MerchantConfigBuilder::default()
    }

    /// Common mode (`mchid`) or institutional mode (`sp_mchid` + `sub_mchid`).
    pub fn mode(&self) -> &MerchantMode {
        &self.mode
    }

    /// Serial number of the merchant API certificate.
    pub fn serial_no(&self) -> &SerialNo {
        &self.serial_no
    }

    /// The merchant API private key (`Debug` is redacted).
    pub fn private_key(&self) -> &Arc<RsaPrivateKey> {
        &self.private_key
    }

    /// Platform certificates and/or WeChat Pay public keys.
    pub fn verification_keys(&self) -> &VerificationKeys {
        &self.verification_keys
    }

    /// The key store, to add a rotated certificate or a public key.
    pub fn verification_keys_mut(&mut self) -> &mut VerificationKeys {
        &mut self.verification_keys
    }
}

/// Builds a [`MerchantConfig`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct MerchantConfigBuilder {
    mode: Option<MerchantMode>,
    serial_no: Option<SerialNo>,
    private_key: Option<Arc<RsaPrivateKey>>,
    verification_keys: Option<VerificationKeys>,
}

impl MerchantConfigBuilder {
    /// Common mode (`mchid`) or institutional mode (`sp_mchid` + `sub_mchid`).
    pub fn mode(mut self, mode: MerchantMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Serial number of the merchant API certificate.
    pub fn serial_no(mut self, serial_no: SerialNo) -> Self {
        self.serial_no = Some(serial_no);
        self
    }

    /// The merchant API private key.
    pub fn private_key(mut self, key: impl Into<Arc<RsaPrivateKey>>) -> Self {
        self.private_key = Some(key.into());
        self
    }

    /// Platform certificates and/or WeChat Pay public keys to verify answers with.
    pub fn verification_keys(mut self, keys: VerificationKeys) -> Self {
        self.verification_keys = Some(keys);
        self
    }

    /// The configuration, or which field is missing.
    pub fn build(self) -> Result<MerchantConfig, InvalidInput> {
        let missing = |field| InvalidInput::Rule {
            field,
            rule: "is required",
        };
        Ok(MerchantConfig {
            mode: self.mode.ok_or(missing("mode"))?,
            serial_no: self.serial_no.ok_or(missing("serial_no"))?,
            private_key: self.private_key.ok_or(missing("private_key"))?,
            verification_keys: self.verification_keys.ok_or(missing("verification_keys"))?,
        })
    }
}

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;
type NonceSource = Arc<dyn Fn() -> Option<Nonce> + Send + Sync>;

/// Draws a nonce from `ring::rand::SystemRandom`.
fn system_nonce() -> Option<Nonce> {
    let rng = ring::rand::SystemRandom::new();
    for _ in 0..4 {
        let mut bytes = [0u8; 64];
        rng.fill(&mut bytes).ok()?;
        if let Some(n) = Nonce::from_random_bytes(&bytes) {
            return Some(n);
        }
    }
    None
}

/// Revokes WeChat Pay orders over a [`Transport`].
///
/// Each call signs once (timestamp from the clock, nonce from
/// `SystemRandom`; both injectable), then makes up to the policy's
/// [`max_attempts`](crate::AttemptBounds::max_attempts) attempts on 5xx,
/// timeouts and connection failures, re-sending the identical signed bytes,
/// switching to the backup host (if any) after a connection failure or a 5xx;
/// [`ReverseClient::reverse_and_settle`] runs a whole [`Revocation`] (order
/// query and fresh revokes included). Emits a `tracing` span
/// per call and per attempt (order id, attempt, host, HTTP status, code);
/// never the key or the signature.
pub struct ReverseClient<T> {
    transport: T,
    config: MerchantConfig,
    primary: BaseUrl,
    backup: Option<BaseUrl>,
    retry: RetryPolicy,
    clock: Clock,
    nonce_source: NonceSource,
    certificates: Option<CertificateSource>,
}

/// A shared certificate manager and the API v3 key that decrypts downloads.
#[derive(Clone)]
struct CertificateSource {
    manager: Arc<Mutex<CertificateManager>>,
    api_key: ApiV3Key,
}

impl<T> fmt::Debug for ReverseClient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReverseClient")
            .field("config", &self.config)
            .field("primary", &self.primary)
            .field("backup", &self.backup)
            .field("retry", &self.retry)
            .field("certificate_manager", &self.certificates.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Transport> ReverseClient<T> {
    /// A client for `config` over `transport`, with primary
    /// `https://apihk.mch.weixin.qq.com`, no backup, and the default retry policy.
    pub fn new(transport: T, config: MerchantConfig) -> Self {
        Self {
            transport,
            config,
            primary: BaseUrl::hong_kong(),
            backup: None,
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemTime::now),
            nonce_source: Arc::new(system_nonce),
            certificates: None,
        }
    }

    /// Verifies with the platform certificates of `manager` (shared, so one
    /// place refreshes them for every client) besides the fixed
    /// [`MerchantConfig::verification_keys`]. Before each call the client
    /// refreshes when [`CertificateManager::due`] says so; when an answer
    /// names a serial it does not hold, it refreshes (rate-limited by
    /// [`CertificateManager::refresh_for_unknown`]) and verifies again.
    pub fn with_certificate_manager(
        mut self,
        manager: Arc<Mutex<CertificateManager>>,
        api_key: ApiV3Key,
    ) -> Self {
        self.certificates = Some(CertificateSource { manager, api_key });
        self
    }

    /// Sets the primary base URL and an optional backup (e.g.
    /// [`BaseUrl::mainland`]); the host is not signed, so retries may move.
    pub fn with_base_urls(mut self, primary: BaseUrl, backup: Option<BaseUrl>) -> Self {
        self.primary = primary;
        self.backup = backup;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Replaces the wall clock (for tests).
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Replaces the nonce source (for tests); `None` fails the call.
    pub fn with_nonce_source(
        mut self,
        source: impl Fn() -> Option<Nonce> + Send + Sync + 'static,
    ) -> Self {
        self.nonce_source = Arc::new(source);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &MerchantConfig {
        &self.config
    }

    /// The verification key store, to add a rotated certificate or a public key.
    pub fn verification_keys_mut(&mut self) -> &mut VerificationKeys {
        self.config.verification_keys_mut()
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    fn now(&self) -> Result<Timestamp, ReverseError> {
        Ok(Timestamp::from_system_time((self.clock)())?)
    }

    /// Both clocks, for the retry model: the monotonic one for waits, the
    /// (injectable) wall clock for records.
    fn now_pair(&self) -> Now {
        Now::new(std::time::Instant::now(), (self.clock)())
    }

    async fn wait_until(until: std::time::Instant) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
    }

    /// The base URL of the next attempt.
    fn base(&self, on_backup: bool) -> &BaseUrl {
        match (&self.backup, on_backup) {
            (Some(b), true) => b,
            _ => &self.primary,
        }
    }

    /// Sends `signed` once to the primary or backup host; says whether the
    /// next attempt moves to the backup.
    async fn send_once(
        &self,
        signed: &SignedRequest,
        on_backup: bool,
    ) -> (Result<HttpResponse, TransportError>, bool) {
        let result = match signed.to_http_request(self.base(on_backup)) {
            Ok(request) => self.transport.send(request).await,
            Err(e) => Err(TransportError::Refused(RefusedError::new(
                RefusedKind::InvalidRequest,
                e.to_string(),
            ))),
        };
        let switch = match &result {
            Ok(r) => switches_host(Some(r.status().as_u16()), false),
            Err(e) => switches_host(None, matches!(e, TransportError::Timeout(_))),
        };
        (result, on_backup || (switch && self.backup.is_some()))
    }

    /// Checks the timing rules and signs the revoke once (no I/O).
    pub fn sign(&self, call: &ReverseCall) -> Result<SignedRequest, ReverseError> {
        let now = self.now()?;
        call.checks().check(call.paid_at(), now)?;
        let nonce = (self.nonce_source)().ok_or(SignError::Randomness)?;
        let request = ReverseRequest::new(call.order().clone(), self.config.mode.clone());
        Ok(request.sign(
            &self.config.serial_no,
            &self.config.private_key,
            now,
            &nonce,
        )?)
    }

    /// Revokes an order: [`ReverseClient::sign`] then [`ReverseClient::send`].
    pub async fn reverse(&self, call: &ReverseCall) -> Result<ReverseOutcome, ReverseError> {
        let span = call_span(call.order());
        async {
            self.ensure_certificates().await;
            let result = match self.sign(call) {
                Ok(signed) => self.send_attempts(&signed).await,
                Err(e) => Err(e),
            };
            record_result(&result);
            result
        }
        .instrument(span)
        .await
    }

    /// Sends an already signed revoke with retries (identical bytes each time).
    ///
    /// The signature's timestamp must still be within WeChat Pay's 5-minute
    /// window when it arrives.
    pub async fn send(&self, signed: &SignedRequest) -> Result<ReverseOutcome, ReverseError> {
        let span = match signed.order() {
            Some(order) => call_span(order),
            None => tracing::info_span!("wechatpay_direct.reverse"),
        };
        async {
            let result = self.send_attempts(signed).await;
            record_result(&result);
            result
        }
        .instrument(span)
        .await
    }

    /// One revoke attempt: send, interpret (refreshing certificates once for
    /// an unknown serial), trace. Also says whether the next attempt moves to
    /// the backup host.
    async fn revoke_attempt(
        &self,
        signed: &SignedRequest,
        attempt: u32,
        on_backup: bool,
    ) -> (Result<ReverseOutcome, ReverseError>, bool) {
        let span = tracing::debug_span!(
            "wechatpay_direct.reverse.attempt",
            attempt,
            host = self.base(on_backup).as_str(),
            http.status = Empty,
            code = Empty
        );
        async {
            let (sent, on_backup) = self.send_once(signed, on_backup).await;
            let response = match sent {
                Ok(response) => response,
                Err(e) => {
                    tracing::debug!(error = %e, "no response");
                    return (Err(ReverseError::Transport(e)), on_backup);
                }
            };
            let status = response.status();
            tracing::Span::current().record("http.status", status.as_u16());
            // The clock worked when signing a moment ago; if it fails now,
            // the signing time is the best stand-in for the window check.
            let now = self.now().unwrap_or(signed.timestamp());
            let interpret = |keys: &VerificationKeys| {
                interpret_reverse_response(status, response.headers(), response.body(), now, keys)
            };
            let mut outcome = interpret(&self.keys());
            if let Some(VerifyError::UnknownSerial { serial }) = outcome
                .as_ref()
                .ok()
                .and_then(ReverseOutcome::verification_error)
            {
                if self.refresh_for_unknown(serial).await {
                    outcome = interpret(&self.keys());
                }
            }
            let code = outcome.as_ref().err().and_then(ReverseError::api_code);
            if let Some(code) = code {
                tracing::Span::current().record("code", code.as_str());
            }
            tracing::debug!(
                status = status.as_u16(),
                code = code.map(ApiErrorCode::as_str),
                "response received"
            );
            (outcome, on_backup)
        }
        .instrument(span)
        .await
    }

    /// One signed revoke, resent identically per the policy, without an
    /// order query: kicc-rs's retry model without its query step.
    async fn send_attempts(&self, signed: &SignedRequest) -> Result<ReverseOutcome, ReverseError> {
        let mut machine = Resender::new(*self.retry.bounds(), os_rng());
        let mut on_backup = false;
        let mut last: Option<(Heard, Result<ReverseOutcome, ReverseError>)> = None;
        loop {
            match machine.poll(self.now_pair()) {
                ResendStep::Send { attempt, .. } => {
                    if let Some((heard, _)) = &last {
                        tracing::warn!(attempt, ?heard, "retrying with the same signed request");
                    }
                    let (result, next_backup) =
                        self.revoke_attempt(signed, attempt, on_backup).await;
                    on_backup = next_backup;
                    let heard = heard_of_revoke(&result);
                    machine.on_attempt(heard, self.now_pair());
                    last = Some((heard, result));
                }
                ResendStep::WaitUntil(until) => Self::wait_until(until).await,
                ResendStep::Finished(verdict) => {
                    return single_revoke_result(verdict, &machine, last);
                }
                // No query step in this machine; anything else ends it as unknown.
                _ => return single_revoke_result(Verdict::Unknown, &machine, last),
            }
        }
    }
}

/// The result of one signed revoke's attempts, in the terms callers had
/// before the one retry model: the last answer, or why the attempts ended.
fn single_revoke_result(
    verdict: Verdict,
    machine: &Resender,
    last: Option<(Heard, Result<ReverseOutcome, ReverseError>)>,
) -> Result<ReverseOutcome, ReverseError> {
    let Some((heard, result)) = last else {
        return Err(ReverseError::Recorded {
            attempts: 0,
            heard: Heard::NotDelivered,
        });
    };
    let attempts = machine.attempts();
    match (verdict, heard, result) {
        (_, Heard::Done | Heard::QueryFirst, result) => result,
        (_, Heard::Refused, Err(last)) if machine.may_have_been_processed() => {
            Err(ReverseError::AfterAmbiguousAttempt {
                attempts,
                last: Box::new(last),
            })
        }
        (_, Heard::Refused, result) => result,
        (_, _, Ok(outcome)) => Ok(outcome),
        (_, _, Err(last)) => Err(ReverseError::RetriesExhausted {
            attempts,
            may_have_reached_server: machine.may_have_been_processed(),
            last: Box::new(last),
        }),
    }
}

impl<T: Transport> ReverseClient<T> {
    /// Revokes an order and, when the answer leaves the outcome open, decides
    /// by querying it (the revoke page's advice for `SYSTEM_ERROR`): a
    /// [`Revocation`] driven to its end (see there for the rules).
    ///
    /// - a verified 204 → [`Resolution::Revoked`]; a definite refusal →
    ///   [`Resolution::NotRevoked`];
    /// - `SYSTEM_ERROR` → query at once; other 5xx / timeouts → the same
    ///   signed bytes again (per the retry policy), then query;
    /// - `REVOKED`/`CLOSED` → done; `SUCCESS`/`USERPAYING`/`NOTPAY` → revoke
    ///   once more with a fresh signature, then decide again (at most
    ///   [`RetryPolicy::max_revokes`] revokes); `REFUND` → refund instead;
    ///   `PAYERROR`/unknown → unknown; the query failed → unknown.
    pub async fn reverse_and_settle(&self, call: &ReverseCall) -> Resolution {
        self.settle(call, Revocation::new(&self.retry, os_rng()), |_| {})
            .await
    }

    /// Continues a revoke after a restart from its recorded attempts and the
    /// stored signed request ([`Revocation::resume`]): one that may have been
    /// processed is queried first, one never delivered is sent again. A stored
    /// request that is not this call's revoke (another order or merchant) is
    /// ignored, never sent.
    pub async fn resume_and_settle(
        &self,
        call: &ReverseCall,
        signed: Option<SignedRequest>,
        records: Vec<AttemptRecord>,
    ) -> Resolution {
        // Bytes stored for another order are never sent for this one.
        let expected = ReverseRequest::new(call.order().clone(), self.config.mode.clone()).path();
        let signed = signed.filter(|s| {
            let same =
                expected.as_ref().is_ok_and(|p| p == s.path()) && s.method() == http::Method::POST;
            if !same {
                tracing::warn!(
                    path = s.path().as_str(),
                    "the stored request is not this call's revoke: not resent"
                );
            }
            same
        });
        let revocation = Revocation::resume(&self.retry, os_rng(), signed, records);
        self.settle(call, revocation, |_| {}).await
    }

    /// Drives `revocation` for `call` to its [`Resolution`]. `journal` sees
    /// the revocation before each revoke attempt is sent (store
    /// [`Revocation::signed_request`] and [`Revocation::records`] durably
    /// there: the attempt in flight is recorded as [`Heard::Nothing`]) and
    /// after each answer, so a restart can [`Revocation::resume`].
    pub async fn settle(
        &self,
        call: &ReverseCall,
        mut revocation: Revocation,
        mut journal: impl FnMut(&Revocation),
    ) -> Resolution {
        let span = call_span(call.order());
        async {
            let mut on_backup = false;
            loop {
                let now = self.now_pair();
                let signed = match revocation.poll(now) {
                    RevokeStep::Done(resolution) => {
                        tracing::info!(outcome = %resolution.describe(), "revoke settled");
                        return resolution;
                    }
                    RevokeStep::WaitUntil(until) => {
                        Self::wait_until(until).await;
                        continue;
                    }
                    RevokeStep::Sign => {
                        self.ensure_certificates().await;
                        match self.sign(call) {
                            Ok(signed) => revocation.signed(signed),
                            Err(e) => revocation.signing_failed(e, self.now_pair()),
                        }
                        continue;
                    }
                    RevokeStep::Query => {
                        let query = self.query(call.order()).await;
                        tracing::info!(
                            trade_state = query.as_ref().ok().map(|o| o.trade_state.as_str()),
                            "decided by the order query"
                        );
                        revocation.on_query(query);
                        journal(&revocation);
                        continue;
                    }
                    RevokeStep::Send(signed) => signed.clone(),
                };
                journal(&revocation);
                let attempt = revocation.attempts();
                let (result, next_backup) = self.revoke_attempt(&signed, attempt, on_backup).await;
                on_backup = next_backup;
                record_result(&result);
                revocation.on_revoke(result, self.now_pair());
                journal(&revocation);
            }
        }
        .instrument(span)
        .await
    }

    /// Signs an order query once (no I/O).
    pub fn sign_query(&self, order: &OrderRef) -> Result<SignedRequest, QueryError> {
        let now = self.now().map_err(|_| {
            QueryError::Invalid(crate::ids::InvalidInput::Rule {
                field: "clock",
                rule: "the system clock must be within Unix seconds of at most 10 digits",
            })
        })?;
        let nonce = (self.nonce_source)().ok_or(SignError::Randomness)?;
        Ok(
            QueryRequest::new(order.clone(), self.config.mode.clone()).sign(
                &self.config.serial_no,
                &self.config.private_key,
                now,
                &nonce,
            )?,
        )
    }

    /// Queries an order (`GET /v3/global/transactions/...`): signs once, then
    /// retries 5xx, timeouts and connection failures with the identical bytes
    /// (a query changes nothing). Only a verified `200` is an answer; every
    /// failure is "status unknown", never a revoke outcome.
    pub async fn query(&self, order: &OrderRef) -> Result<QueriedOrder, QueryError> {
        let span = tracing::info_span!("wechatpay_direct.query", trade_state = Empty);
        async {
            self.ensure_certificates().await;
            let signed = self.sign_query(order)?;
            let result = self.send_query(&signed).await;
            match &result {
                Ok(o) => {
                    tracing::Span::current().record("trade_state", o.trade_state.as_str());
                }
                Err(e) => tracing::info!(error = %e, "order query failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Sends an already signed query with retries (identical bytes each time).
    pub async fn send_query(&self, signed: &SignedRequest) -> Result<QueriedOrder, QueryError> {
        let (heard, attempts, result) = self.send_idempotent(signed).await;
        let retried = matches!(heard, Heard::Unknown | Heard::NotDelivered);
        let response = match result {
            Ok(r) => r,
            Err(e) if retried && attempts > 1 => {
                return Err(QueryError::RetriesExhausted {
                    attempts,
                    last: Box::new(QueryError::Transport(e)),
                })
            }
            Err(e) => return Err(QueryError::Transport(e)),
        };
        let now = self.now().unwrap_or(signed.timestamp());
        let interpret = |keys: &VerificationKeys| {
            interpret_query_response(
                response.status(),
                response.headers(),
                response.body(),
                now,
                keys,
            )
        };
        let mut outcome = interpret(&self.keys());
        if let Err(QueryError::Unverified {
            error: VerifyError::UnknownSerial { serial },
            ..
        }) = &outcome
        {
            if self.refresh_for_unknown(serial).await {
                outcome = interpret(&self.keys());
            }
        }
        match outcome {
            Err(last) if retried => Err(QueryError::RetriesExhausted {
                attempts,
                last: Box::new(last),
            }),
            other => other,
        }
    }

    /// Sends `signed`, a request that changes nothing, with the one retry
    /// model (identical bytes, no query step) until an answer is final or the
    /// policy's attempts are used up; returns what the last attempt heard,
    /// the number of attempts, and its response or transport error.
    async fn send_idempotent(
        &self,
        signed: &SignedRequest,
    ) -> (Heard, u32, Result<HttpResponse, TransportError>) {
        let mut machine = Resender::new(*self.retry.bounds(), os_rng());
        let mut on_backup = false;
        let mut last = None;
        loop {
            match machine.poll(self.now_pair()) {
                ResendStep::Send { attempt, .. } => {
                    if attempt > 1 {
                        tracing::warn!(attempt, "retrying with the same signed request");
                    }
                    let (result, next_backup) = self.send_once(signed, on_backup).await;
                    on_backup = next_backup;
                    let heard = match &result {
                        Ok(response) => heard_of_answer(response.status().as_u16()),
                        Err(e) => Heard::without_answer(never_delivered(e)),
                    };
                    machine.on_attempt(heard, self.now_pair());
                    last = Some((heard, result));
                }
                ResendStep::WaitUntil(until) => Self::wait_until(until).await,
                _ => {
                    let attempts = machine.attempts();
                    return match last {
                        Some((heard, result)) => (heard, attempts, result),
                        None => (
                            Heard::NotDelivered,
                            attempts,
                            Err(TransportError::Refused(RefusedError::new(
                                RefusedKind::Other,
                                "no attempt was made",
                            ))),
                        ),
                    };
                }
            }
        }
    }

    /// The keys answers are verified with: the fixed ones, plus the
    /// manager's platform certificates.
    fn keys(&self) -> Cow<'_, VerificationKeys> {
        match &self.certificates {
            None => Cow::Borrowed(&self.config.verification_keys),
            Some(src) => Cow::Owned(
                src.manager
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .verification_keys(&self.config.verification_keys),
            ),
        }
    }

    fn unix_now(&self) -> u64 {
        self.now().map_or(0, Timestamp::unix_secs)
    }

    /// Downloads, verifies and decrypts the platform certificates
    /// (`GET /v3/global/certificates`) with `api_key`, retrying 5xx and
    /// timeouts with the same signed bytes. Changes nothing held.
    pub async fn download_certificates(
        &self,
        api_key: &ApiV3Key,
    ) -> Result<Vec<PlatformCertificate>, CertError> {
        let signed = self.sign_certificates()?;
        let (_, _, result) = self.send_idempotent(&signed).await;
        let response = result.map_err(CertError::Transport)?;
        let now = self.now().unwrap_or(signed.timestamp());
        interpret_certificates_response(
            response.status(),
            response.headers(),
            response.body(),
            now,
            api_key,
            &self.keys(),
        )
        .map(|(certs, verified)| {
            tracing::info!(count = certs.len(), verified_by = %verified.serial, "platform certificates downloaded");
            certs
        })
    }

    /// Signs `GET /v3/global/certificates` once (no I/O).
    pub fn sign_certificates(&self) -> Result<SignedRequest, CertError> {
        let now = Timestamp::from_system_time((self.clock)())?;
        let nonce = (self.nonce_source)().ok_or(SignError::Randomness)?;
        Ok(certificates_request(
            &self.config.mode,
            &self.config.serial_no,
            &self.config.private_key,
            now,
            &nonce,
        )?)
    }

    /// Refreshes the manager now (see [`ReverseClient::with_certificate_manager`]):
    /// on success the download is applied, on failure nothing is dropped.
    /// Returns how many certificates are held afterwards.
    pub async fn refresh_certificates(&self) -> Result<usize, CertError> {
        let Some(src) = &self.certificates else {
            return Err(CertError::NoManager);
        };
        let result = self.download_certificates(&src.api_key).await;
        let now = self.unix_now();
        let mut manager = src.manager.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(certs) => {
                manager.apply(certs, now);
                Ok(manager.certificates().count())
            }
            Err(e) => {
                manager.failed(now);
                tracing::warn!(error = %e, "platform certificate refresh failed; keeping the held ones");
                Err(e)
            }
        }
    }

    /// A small driver that keeps the manager's certificates fresh on its own:
    /// sleeps until [`CertificateManager::seconds_until_due`] is 0, refreshes
    /// (a failure keeps what is held and backs off), and repeats. Spawn it once
    /// per manager; it returns only [`CertError::NoManager`] when the client has
    /// none. Calls refresh on demand anyway, so this is for long idle periods.
    pub async fn keep_certificates_fresh(&self) -> CertError {
        let Some(src) = &self.certificates else {
            return CertError::NoManager;
        };
        loop {
            let wait = src
                .manager
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .seconds_until_due(self.unix_now());
            if wait > 0 {
                tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                continue;
            }
            let _ = self.refresh_certificates().await;
        }
    }

    /// Refreshes when the manager's schedule says so (errors are logged; the
    /// held certificates stay).
    async fn ensure_certificates(&self) {
        let Some(src) = &self.certificates else {
            return;
        };
        let due = src
            .manager
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .due(self.unix_now());
        if let Some(reason) = due {
            tracing::debug!(?reason, "refreshing platform certificates");
            let _ = self.refresh_certificates().await;
        }
    }

    /// After an answer named `serial`, which is not held: refresh if the
    /// rate limit allows. Whether a refresh succeeded.
    async fn refresh_for_unknown(&self, serial: &str) -> bool {
        let Some(src) = &self.certificates else {
            return false;
        };
        let allowed = src
            .manager
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refresh_for_unknown(serial, self.unix_now());
        allowed && self.refresh_certificates().await.is_ok()
    }
}

fn call_span(order: &OrderRef) -> tracing::Span {
    let span = tracing::info_span!(
        "wechatpay_direct.reverse",
        out_trade_no = Empty,
        transaction_id = Empty,
        outcome = Empty,
        next_step = Empty
    );
    match order {
        OrderRef::OutTradeNo(no) => span.record("out_trade_no", no.as_str()),
        OrderRef::TransactionId(id) => span.record("transaction_id", id.as_str()),
    };
    span
}

fn record_result(result: &Result<ReverseOutcome, ReverseError>) {
    let span = tracing::Span::current();
    match result {
        Ok(ReverseOutcome::Revoked(v)) => {
            span.record("outcome", "revoked");
            tracing::info!(verified_by = %v.serial, "revoked");
        }
        Ok(ReverseOutcome::MaybeRevoked { status, reason }) => {
            span.record("outcome", "maybe_revoked");
            match reason {
                MaybeRevokedReason::Unverified(e) => {
                    tracing::warn!(status, error = %e, "2xx without a valid signature: query the order")
                }
                _ => tracing::warn!(status, "unexpected 2xx status: query the order"),
            }
        }
        Err(e) => {
            span.record("outcome", "error");
            span.record("next_step", format!("{:?}", e.next_step()).as_str());
            tracing::info!(error = %e, "revoke failed");
        }
    }
}
