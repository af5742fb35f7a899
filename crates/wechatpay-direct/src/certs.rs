//! Platform certificates: the API v3 key, the `GET /v3/global/certificates`
//! request and its answer (verified, each certificate decrypted with
//! AEAD_AES_256_GCM and checked), and a sans-IO [`CertificateManager`] that
//! decides when to refresh and keeps old and new through a rotation.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use http::header::HeaderMap;
use http::uri::PathAndQuery;
use http::{Method, StatusCode};
use ring::aead;
use zeroize::Zeroizing;

use crate::ids::{MerchantMode, Nonce, SerialNo, Timestamp};
use crate::keys::{KeyError, KeyKind, RsaPrivateKey, RsaPublicKey, SignError, VerificationKeys};
use crate::reverse::{excerpt, parse_api_error, ApiError, SignedRequest};
use crate::sign::Signer;
use crate::verify::{SignatureHeaders, Verified, VerifyError};

/// The request target of the certificates download.
pub const CERTIFICATES_PATH: &str = "/v3/global/certificates";

/// The merchant's API v3 key: exactly 32 bytes, set in the merchant platform.
/// A secret: `Debug` is redacted, there is no `Display`, zeroed on drop.
#[derive(Clone)]
pub struct ApiV3Key(Zeroizing<[u8; 32]>);

/// Why an API v3 key was refused (never contains the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("API v3 key: must be exactly 32 bytes, got {len}")]
#[non_exhaustive]
pub struct ApiV3KeyError {
    /// The length given.
    pub len: usize,
}

impl ApiV3Key {
    /// The key from its 32 bytes (WeChat Pay's keys are 32 ASCII characters).
    pub fn new(bytes: &[u8]) -> Result<Self, ApiV3KeyError> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(ApiV3KeyError { len: bytes.len() });
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// Decrypts AEAD_AES_256_GCM `ciphertext` (tag in its last 16 bytes).
    fn open(&self, nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CertError> {
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(
            |_: ring::error::Unspecified| CertError::BadField {
                field: "encrypt_certificate.nonce",
                rule: "must be 12 bytes",
            },
        )?;
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, self.0.as_ref())
            .map(aead::LessSafeKey::new)
            .map_err(|_: ring::error::Unspecified| CertError::Decrypt)?;
        let mut in_out = ciphertext.to_vec();
        let plain = key
            .open_in_place(nonce, aead::Aad::from(aad), &mut in_out)
            .map_err(|_: ring::error::Unspecified| CertError::Decrypt)?;
        Ok(plain.to_vec())
    }

    /// Encrypts like WeChat Pay does (for simulators and tests): ciphertext
    /// with the 16-byte tag appended, Base64.
    pub fn seal_base64(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> String {
        let key = match aead::UnboundKey::new(&aead::AES_256_GCM, self.0.as_ref()) {
            Ok(k) => aead::LessSafeKey::new(k),
            Err(_) => return String::new(),
        };
        let mut in_out = plaintext.to_vec();
        let sealed = key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(*nonce),
            aead::Aad::from(aad),
            &mut in_out,
        );
        match sealed {
            Ok(()) => base64::engine::general_purpose::STANDARD.encode(in_out),
            Err(_) => String::new(),
        }
    }
}

impl fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiV3Key([redacted])")
    }
}

/// Why the certificates answer was refused. Never contains the API v3 key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The request could not be signed; nothing was sent.
    #[error("{0}")]
    Sign(#[from] SignError),
    /// WeChat Pay answered with an error code.
    #[error("WeChat Pay error: {0}")]
    Api(#[source] Box<ApiError>),
    /// An unexpected status or body.
    #[error("unexpected HTTP {status} response: {body_excerpt:?}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// The first 256 characters of the body.
        body_excerpt: String,
    },
    /// The answer is not the documented JSON.
    #[error("certificates answer: {0}")]
    Malformed(String),
    /// A field breaks a rule.
    #[error("certificates answer: {field} {rule}")]
    BadField {
        /// The field.
        field: &'static str,
        /// The rule.
        rule: &'static str,
    },
    /// The algorithm is not AEAD_AES_256_GCM.
    #[error("certificates answer: algorithm {0:?} is not AEAD_AES_256_GCM")]
    Algorithm(String),
    /// AES-256-GCM refused the ciphertext: the API v3 key is wrong, or the
    /// ciphertext, nonce or associated data were altered.
    #[error("cannot decrypt a platform certificate: wrong API v3 key, or tampered ciphertext/nonce/associated_data (AES-256-GCM tag mismatch)")]
    Decrypt,
    /// The decrypted text is not a certificate.
    #[error("decrypted platform certificate {serial_no}: {error}")]
    Certificate {
        /// The `serial_no` it was listed under.
        serial_no: String,
        /// Why it could not be read.
        error: KeyError,
    },
    /// The decrypted certificate's serial is not the `serial_no` it was listed under.
    #[error("decrypted platform certificate has serial {actual}, but is listed as {listed}")]
    SerialMismatch {
        /// The listed `serial_no`.
        listed: String,
        /// The certificate's own serial.
        actual: String,
    },
    /// The answer's signature did not verify (with a held key, or with the
    /// decrypted certificate named by `Wechatpay-Serial`).
    #[error("certificates answer failed verification: {0}")]
    Unverified(#[source] VerifyError),
    /// One attempt produced no response.
    #[cfg(feature = "transport")]
    #[cfg_attr(docsrs, doc(cfg(feature = "transport")))]
    #[error("transport: {0}")]
    Transport(#[source] kicc_transport::TransportError),
    /// An invalid base URL, or a clock outside Unix seconds.
    #[error("{0}")]
    Invalid(#[from] crate::ids::InvalidInput),
    /// [`refresh_certificates`](crate::ReverseClient::refresh_certificates) on a
    /// client without a certificate manager.
    #[error("no certificate manager is configured (ReverseClient::with_certificate_manager)")]
    NoManager,
}

/// One decrypted, checked platform certificate.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlatformCertificate {
    /// Its serial (`serial_no`, uppercase hex): the `Wechatpay-Serial` it signs under.
    pub serial: SerialNo,
    /// `effective_time`, Unix seconds.
    pub effective_time: u64,
    /// `expire_time`, Unix seconds.
    pub expire_time: u64,
    /// `effective_time` as WeChat Pay wrote it (RFC 3339).
    pub effective_time_text: String,
    /// `expire_time` as WeChat Pay wrote it (RFC 3339).
    pub expire_time_text: String,
    /// The decrypted certificate, PEM.
    pub pem: String,
    /// Its public key.
    pub public_key: RsaPublicKey,
}

impl fmt::Debug for PlatformCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformCertificate")
            .field("serial", &self.serial)
            .field("effective_time", &self.effective_time_text)
            .field("expire_time", &self.expire_time_text)
            .finish_non_exhaustive()
    }
}

impl PlatformCertificate {
    /// Whether it is within its validity at `now` (Unix seconds).
    pub fn is_valid_at(&self, now: u64) -> bool {
        self.effective_time <= now && now < self.expire_time
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses RFC 3339 `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b.get(i + 3) == Some(&b':') => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3_600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let unix = days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + s - offset;
    u64::try_from(unix).ok()
}

#[derive(serde::Deserialize)]
struct Listing {
    data: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    serial_no: String,
    effective_time: String,
    expire_time: String,
    encrypt_certificate: Encrypted,
}

#[derive(serde::Deserialize)]
struct Encrypted {
    algorithm: String,
    nonce: String,
    associated_data: String,
    ciphertext: String,
}

/// The signed `GET /v3/global/certificates` (no parameters), as `mode`'s caller.
pub fn certificates_request(
    mode: &MerchantMode,
    serial_no: &SerialNo,
    key: &RsaPrivateKey,
    timestamp: Timestamp,
    nonce: &Nonce,
) -> Result<SignedRequest, SignError> {
    SignedRequest::sign(
        Method::GET,
        None,
        PathAndQuery::from_static(CERTIFICATES_PATH),
        Vec::new(),
        Signer {
            mchid: mode.caller_mchid(),
            serial_no,
            key,
        },
        timestamp,
        nonce,
    )
}

fn decrypt_entry(entry: &Entry, api_key: &ApiV3Key) -> Result<PlatformCertificate, CertError> {
    let enc = &entry.encrypt_certificate;
    if enc.algorithm != "AEAD_AES_256_GCM" {
        return Err(CertError::Algorithm(enc.algorithm.clone()));
    }
    let ciphertext = base64::engine::general_purpose::STANDARD
        .decode(enc.ciphertext.trim())
        .map_err(|_| CertError::BadField {
            field: "encrypt_certificate.ciphertext",
            rule: "must be Base64",
        })?;
    let plain = api_key.open(
        enc.nonce.as_bytes(),
        enc.associated_data.as_bytes(),
        &ciphertext,
    )?;
    let pem = String::from_utf8(plain).map_err(|_| CertError::Certificate {
        serial_no: entry.serial_no.clone(),
        error: KeyError::Certificate,
    })?;
    let (serial, public_key) =
        RsaPublicKey::from_certificate_pem(&pem).map_err(|error| CertError::Certificate {
            serial_no: entry.serial_no.clone(),
            error,
        })?;
    if !serial.as_str().eq_ignore_ascii_case(entry.serial_no.trim()) {
        return Err(CertError::SerialMismatch {
            listed: entry.serial_no.clone(),
            actual: serial.as_str().to_owned(),
        });
    }
    let time = |field, text: &str| {
        parse_rfc3339(text).ok_or(CertError::BadField {
            field,
            rule: "must be an RFC 3339 time",
        })
    };
    Ok(PlatformCertificate {
        serial,
        effective_time: time("effective_time", &entry.effective_time)?,
        expire_time: time("expire_time", &entry.expire_time)?,
        effective_time_text: entry.effective_time.clone(),
        expire_time_text: entry.expire_time.clone(),
        pem,
        public_key,
    })
}

/// Interprets the certificates answer. Never panics.
///
/// Decrypts every `encrypt_certificate` with `api_key` (AES-256-GCM, the
/// given nonce and associated data), checks each certificate's serial against
/// its `serial_no`, then verifies the answer's signature: with `known`'s key
/// for `Wechatpay-Serial` if held, else (the first download) with the
/// decrypted certificate of that serial, whose content the GCM tag under the
/// API v3 key vouches for.
pub fn interpret_certificates_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
    api_key: &ApiV3Key,
    known: &VerificationKeys,
) -> Result<(Vec<PlatformCertificate>, Verified), CertError> {
    let code = status.as_u16();
    if status != StatusCode::OK {
        if status.is_client_error() || status.is_server_error() {
            if let Some(err) = parse_api_error(code, headers, body) {
                return Err(CertError::Api(Box::new(err)));
            }
        }
        return Err(CertError::UnexpectedResponse {
            status: code,
            body_excerpt: excerpt(body),
        });
    }
    let listing: Listing =
        serde_json::from_slice(body).map_err(|e| CertError::Malformed(e.to_string()))?;
    let certs = listing
        .data
        .iter()
        .map(|e| decrypt_entry(e, api_key))
        .collect::<Result<Vec<_>, _>>()?;
    let sig = SignatureHeaders::from_headers(headers).map_err(CertError::Unverified)?;
    let mut keys = known.clone();
    if keys.get(&sig.serial).is_none() {
        if let Some(c) = certs
            .iter()
            .find(|c| c.serial.as_str().eq_ignore_ascii_case(&sig.serial))
        {
            keys.insert(
                c.serial.clone(),
                KeyKind::PlatformCertificate,
                c.public_key.clone(),
            );
        }
    }
    let verified = sig
        .verify(body, now, &keys)
        .map_err(CertError::Unverified)?;
    Ok((certs, verified))
}

/// When to refresh, and how often an unknown serial may trigger one.
///
/// Build it from [`RefreshPolicy::default`] with the `with_*` setters:
///
/// ```
/// use wechatpay_direct::RefreshPolicy;
///
/// let policy = RefreshPolicy::default().with_interval_secs(3 * 3_600);
/// assert_eq!(policy.interval_secs(), 10_800);
/// assert_eq!(policy.retry_after_failure_secs(), 60);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    interval_secs: u64,
    retry_after_failure_secs: u64,
    unknown_serial_min_gap_secs: u64,
}

impl RefreshPolicy {
    /// Scheduled refresh interval in seconds (WeChat Pay: at least every 12 h).
    pub fn interval_secs(&self) -> u64 {
        self.interval_secs
    }

    /// After a failed refresh, retry the schedule after this many seconds.
    pub fn retry_after_failure_secs(&self) -> u64 {
        self.retry_after_failure_secs
    }

    /// At most one refresh per this many seconds because an answer named an
    /// unknown serial.
    pub fn unknown_serial_min_gap_secs(&self) -> u64 {
        self.unknown_serial_min_gap_secs
    }

    /// The same policy with this scheduled refresh interval.
    #[must_use]
    pub fn with_interval_secs(mut self, secs: u64) -> Self {
        self.interval_secs = secs;
        self
    }

    /// The same policy with this wait after a failed refresh.
    #[must_use]
    pub fn with_retry_after_failure_secs(mut self, secs: u64) -> Self {
        self.retry_after_failure_secs = secs;
        self
    }

    /// The same policy with this least gap between unknown-serial refreshes.
    #[must_use]
    pub fn with_unknown_serial_min_gap_secs(mut self, secs: u64) -> Self {
        self.unknown_serial_min_gap_secs = secs;
        self
    }
}

impl Default for RefreshPolicy {
    /// Every 6 hours; 60 s after a failure; at most once a minute for an unknown serial.
    fn default() -> Self {
        Self {
            interval_secs: 6 * 3_600,
            retry_after_failure_secs: 60,
            unknown_serial_min_gap_secs: 60,
        }
    }
}

/// Why the manager wants a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshReason {
    /// Nothing held yet.
    Empty,
    /// The schedule says so.
    Scheduled,
    /// An answer named a serial the manager does not hold.
    UnknownSerial,
}

/// Platform certificates by serial, and the refresh decisions (sans-IO: time
/// is passed in). A small async driver is
/// `ReverseClient::refresh_certificates` (feature `transport`).
///
/// Keeps old and new through a rotation; drops a certificate only once it
/// has expired **and** another valid one remains; a failed refresh changes no
/// certificate.
#[derive(Debug, Clone, Default)]
pub struct CertificateManager {
    certs: BTreeMap<String, PlatformCertificate>,
    policy: RefreshPolicy,
    last_success: Option<u64>,
    last_failure: Option<u64>,
    last_unknown_refresh: Option<u64>,
}

impl CertificateManager {
    /// An empty manager with `policy`.
    pub fn new(policy: RefreshPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// The certificates held, by serial.
    pub fn certificates(&self) -> impl Iterator<Item = &PlatformCertificate> {
        self.certs.values()
    }

    /// Whether `serial` is held.
    pub fn holds(&self, serial: &str) -> bool {
        self.certs.contains_key(&serial.to_ascii_uppercase())
    }

    /// Whether a scheduled refresh is due at `now`.
    pub fn due(&self, now: u64) -> Option<RefreshReason> {
        if self.certs.is_empty() {
            return match self.last_failure {
                Some(f) if now.saturating_sub(f) < self.policy.retry_after_failure_secs => None,
                _ => Some(RefreshReason::Empty),
            };
        }
        let since_success = self
            .last_success
            .map_or(u64::MAX, |s| now.saturating_sub(s));
        if since_success < self.policy.interval_secs {
            return None;
        }
        match self.last_failure {
            Some(f)
                if self.last_success.is_none_or(|s| f > s)
                    && now.saturating_sub(f) < self.policy.retry_after_failure_secs =>
            {
                None
            }
            _ => Some(RefreshReason::Scheduled),
        }
    }

    /// Seconds from `now` until [`CertificateManager::due`] says yes (0 if it does now).
    pub fn seconds_until_due(&self, now: u64) -> u64 {
        if self.due(now).is_some() {
            return 0;
        }
        let after_failure = self
            .last_failure
            .map(|f| f.saturating_add(self.policy.retry_after_failure_secs));
        let scheduled = self
            .last_success
            .map(|s| s.saturating_add(self.policy.interval_secs));
        let at = if self.certs.is_empty() {
            after_failure
        } else {
            match (scheduled, after_failure) {
                (Some(s), Some(f)) if s <= now => Some(f),
                (Some(s), _) => Some(s),
                (None, f) => f,
            }
        };
        at.map_or(0, |t| t.saturating_sub(now).max(1))
    }

    /// Whether an answer naming `serial` should trigger a refresh at `now`:
    /// only if it is not held, and not more often than the policy allows.
    /// Records the decision when it says yes.
    pub fn refresh_for_unknown(&mut self, serial: &str, now: u64) -> bool {
        if self.holds(serial) {
            return false;
        }
        if self
            .last_unknown_refresh
            .is_some_and(|t| now.saturating_sub(t) < self.policy.unknown_serial_min_gap_secs)
        {
            return false;
        }
        self.last_unknown_refresh = Some(now);
        true
    }

    /// Takes a successful download at `now`: adds or replaces every listed
    /// certificate, keeps held ones that are not listed any more while still
    /// valid, and drops expired ones while another valid one remains.
    pub fn apply(&mut self, downloaded: Vec<PlatformCertificate>, now: u64) {
        for c in downloaded {
            self.certs.insert(c.serial.as_str().to_ascii_uppercase(), c);
        }
        let any_valid = self.certs.values().any(|c| c.is_valid_at(now));
        if any_valid {
            self.certs.retain(|_, c| now < c.expire_time);
        }
        self.last_success = Some(now);
    }

    /// Records a failed refresh at `now`; no certificate is dropped.
    pub fn failed(&mut self, now: u64) {
        self.last_failure = Some(now);
    }

    /// The certificates as verification keys, added to `base` (e.g. a
    /// WeChat Pay public key or a fixed certificate).
    pub fn verification_keys(&self, base: &VerificationKeys) -> VerificationKeys {
        let mut keys = base.clone();
        for c in self.certs.values() {
            keys.insert(
                c.serial.clone(),
                KeyKind::PlatformCertificate,
                c.public_key.clone(),
            );
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T08:00:00+08:00"), Some(0));
        assert_eq!(
            parse_rfc3339("2023-11-15T06:13:20+08:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00-01:30"),
            Some(951_787_800)
        );
        for bad in [
            "",
            "2023-11-14 22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20+0800",
            "2023-11-14T22:13:20.Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn api_v3_key_is_32_bytes_and_secret() {
        assert_eq!(
            ApiV3Key::new(b"short").unwrap_err(),
            ApiV3KeyError { len: 5 }
        );
        assert!(ApiV3Key::new(&[b'a'; 33]).is_err());
        let k = ApiV3Key::new(b"0123456789abcdef0123456789abcdef").unwrap();
        assert!(!format!("{k:?}").contains("0123"));
        let nonce = *b"123456789012";
        let sealed = k.seal_base64(&nonce, b"certificate", b"hello");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&sealed)
            .unwrap();
        assert_eq!(k.open(&nonce, b"certificate", &raw).unwrap(), b"hello");
        assert_eq!(k.open(&nonce, b"other", &raw), Err(CertError::Decrypt));
        let wrong = ApiV3Key::new(b"0123456789abcdef0123456789abcdeX").unwrap();
        assert_eq!(
            wrong.open(&nonce, b"certificate", &raw),
            Err(CertError::Decrypt)
        );
        assert!(matches!(
            k.open(b"short", b"certificate", &raw),
            Err(CertError::BadField { .. })
        ));
    }

    fn cert(serial: &str, effective: u64, expire: u64) -> PlatformCertificate {
        let (_, public_key) =
            RsaPublicKey::from_certificate_pem(include_str!("../tests/fixtures/cert-2048.pem"))
                .unwrap();
        PlatformCertificate {
            serial: SerialNo::new(serial).unwrap(),
            effective_time: effective,
            expire_time: expire,
            effective_time_text: String::new(),
            expire_time_text: String::new(),
            pem: String::new(),
            public_key,
        }
    }

    #[test]
    fn manager_schedule_and_rate_limit() {
        let policy = RefreshPolicy {
            interval_secs: 100,
            retry_after_failure_secs: 10,
            unknown_serial_min_gap_secs: 30,
        };
        let mut m = CertificateManager::new(policy);
        assert_eq!(m.due(1_000), Some(RefreshReason::Empty));
        m.failed(1_000);
        assert_eq!(m.due(1_005), None, "back off after a failure");
        assert_eq!(m.due(1_010), Some(RefreshReason::Empty));
        m.apply(vec![cert("AA", 0, 10_000)], 1_010);
        assert_eq!(m.due(1_109), None);
        assert_eq!(m.due(1_110), Some(RefreshReason::Scheduled));
        m.failed(1_110);
        assert_eq!(m.due(1_115), None);
        assert_eq!(m.due(1_120), Some(RefreshReason::Scheduled));
        assert!(m.holds("aa"), "a failed refresh drops nothing");
        // Unknown serials: only when not held, at most once per gap.
        assert!(!m.refresh_for_unknown("AA", 1_200));
        assert!(m.refresh_for_unknown("BB", 1_200));
        assert!(!m.refresh_for_unknown("BB", 1_229));
        assert!(m.refresh_for_unknown("BB", 1_230));
        assert!(policy.interval_secs < 12 * 3_600);
        // The driver's wait: until the next scheduled refresh, or the end of a back-off.
        let mut m = CertificateManager::new(policy);
        assert_eq!(m.seconds_until_due(0), 0);
        m.failed(0);
        assert_eq!(m.seconds_until_due(4), 6);
        m.apply(vec![cert("AA", 0, 10_000)], 10);
        assert_eq!(m.seconds_until_due(10), 100);
        assert_eq!(m.seconds_until_due(60), 50);
        assert_eq!(m.seconds_until_due(110), 0);
        m.failed(110);
        assert_eq!(m.seconds_until_due(113), 7);
        assert!(RefreshPolicy::default().interval_secs < 12 * 3_600);
    }

    #[test]
    fn manager_keeps_old_and_new_and_never_the_last_one_out() {
        let mut m = CertificateManager::new(RefreshPolicy::default());
        m.apply(vec![cert("OLD", 0, 2_000)], 100);
        // Rotation: the new one is listed (24 h ahead in real life) with the old.
        m.apply(vec![cert("OLD", 0, 2_000), cert("NEW", 1_000, 9_000)], 500);
        assert!(m.holds("OLD") && m.holds("NEW"));
        // The listing drops OLD before it expires: still held.
        m.apply(vec![cert("NEW", 1_000, 9_000)], 1_500);
        assert!(m.holds("OLD") && m.holds("NEW"));
        // OLD expired, NEW valid: OLD goes.
        m.apply(vec![cert("NEW", 1_000, 9_000)], 2_500);
        assert!(!m.holds("OLD") && m.holds("NEW"));
        // Everything expired: nothing valid to replace it, keep the last.
        m.apply(vec![], 10_000);
        assert!(m.holds("NEW"));
        let keys = m.verification_keys(&VerificationKeys::new());
        assert!(keys.get("NEW").is_some());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}", body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_rfc3339(&text);
            let key = ApiV3Key::new(&[7u8; 32]).unwrap();
            let r = interpret_certificates_response(StatusCode::OK, &HeaderMap::new(), &body, Timestamp::from_unix_secs(1_700_000_000).unwrap(), &key, &VerificationKeys::new());
            prop_assert!(r.is_err());
        }
    }
}
