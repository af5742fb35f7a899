// What each fuzz target does with one input, in one place: the libFuzzer targets in
// `fuzz_targets/` call these, and `kicc-cli`'s `fuzz_replay` test includes this file
// (`#[path]`) to replay every committed corpus file on stable, so a crash found once stays
// fixed. Each function must not panic on any input; the assertions in them are properties
// the SDK promises (a success is a `0000` about the sent request, a sandbox answer is JSON
// with `resCd`, ...), so a broken promise is a crash too.
//
// No inner attributes here: this file is a module in both places.

use std::net::IpAddr;

use arbitrary::{Arbitrary, Unstructured};

use kicc_core::inbox::{NoticeEvent, SourcePolicy, WebhookInbox};
use kicc_core::message::KiccResponse;
use kicc_core::retry::Interpreted;
use kicc_core::webhook::{Acknowledgement, GenericNotice, WechatCancelNotice};
use kicc_core::{Currency, Money, ShopTransactionId};

/// Every fuzz target's name, as in `fuzz/Cargo.toml` and `fuzz/corpus/<name>/`.
pub const TARGETS: &[&str] = &[
    "generic_revise",
    "alipay_revise",
    "wechat_revise",
    "wechat_find",
    "webhook_generic",
    "webhook_wechat",
    "webhook_inbox",
    "wechatpay_revoke",
    "wechatpay_query",
    "wechatpay_certificates",
    "wechatpay_authorization",
    "pem_keys",
    "money",
    "text",
    "sandbox_request",
    "batch_csv",
];

/// Runs target `name` on `data` (for replaying corpora); `false` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "generic_revise" => generic_revise(data),
        "alipay_revise" => alipay_revise(data),
        "wechat_revise" => wechat_revise(data),
        "wechat_find" => wechat_find(data),
        "webhook_generic" => webhook_generic(data),
        "webhook_wechat" => webhook_wechat(data),
        "webhook_inbox" => webhook_inbox(data),
        "wechatpay_revoke" => wechatpay_revoke(data),
        "wechatpay_query" => wechatpay_query(data),
        "wechatpay_certificates" => wechatpay_certificates(data),
        "wechatpay_authorization" => wechatpay_authorization(data),
        "pem_keys" => pem_keys(data),
        "money" => money(data),
        "text" => text(data),
        "sandbox_request" => sandbox_request(data),
        "batch_csv" => batch_csv(data),
        _ => return false,
    }
    true
}

/// The key every response target pretends to have sent.
pub const SENT_KEY: &str = "K01JD0000000000000000000001";

fn sent_key() -> ShopTransactionId {
    ShopTransactionId::new(SENT_KEY).expect("a valid key")
}

/// A KICC answer read as success must be `0000` and about the sent request; one read as a
/// gateway code must not be `0000`.
fn check_interpreted<T: KiccResponse>(i: &Interpreted<T>) {
    match i {
        Interpreted::Success(r) => {
            assert_eq!(r.res_cd(), "0000");
            assert!(r.echoed_key().is_empty() || r.echoed_key() == SENT_KEY);
        }
        Interpreted::Gateway { res_cd, .. } => assert_ne!(res_cd, "0000"),
        Interpreted::Unreadable(_) => {}
        // `Interpreted` is #[non_exhaustive]: a new kind of reading needs its own check here.
        _ => panic!("an Interpreted variant these checks do not know"),
    }
}

/// The generic (card, transfer, mobile, cash receipt) revise response.
pub fn generic_revise(data: &[u8]) {
    let key = sent_key();
    check_interpreted(&kicc_generic::ReviseResponse::read(200, data, &key));
    let _ = kicc_generic::ReviseRequest::from_json(data);
    let _ = kicc_core::wire::Envelope::read(data);
}

/// The Alipay revise response (and the Alipay request, as read back by tools).
pub fn alipay_revise(data: &[u8]) {
    let key = sent_key();
    let read = kicc_alipay::ReviseResponse::read(200, data, &key);
    check_interpreted(&read);
    if let Interpreted::Success(r) = &read {
        let _ = r.detail();
    }
    let _ = kicc_alipay::ReviseRequest::from_json(data);
}

/// The WeChat Pay (via KICC) revise response (and request).
pub fn wechat_revise(data: &[u8]) {
    let key = sent_key();
    let read = kicc_wechat::ReviseResponse::read(200, data, &key);
    check_interpreted(&read);
    if let Interpreted::Success(r) = &read {
        let _ = r.detail();
    }
    let _ = kicc_wechat::ReviseRequest::from_json(data);
}

/// The WeChat Pay cancel status (find) response.
pub fn wechat_find(data: &[u8]) {
    let key = sent_key();
    let read = kicc_wechat::FindResponse::read(200, data, &key);
    check_interpreted(&read);
    if let Interpreted::Success(r) = &read {
        let _ = r.is_cancelled();
        let _ = kicc_wechat::url_decode(&r.res_detail_msg);
    }
}

/// The generic (card etc.) webhook notice.
pub fn webhook_generic(data: &[u8]) {
    if let Ok(n) = GenericNotice::parse(data) {
        let again = GenericNotice::parse(data).expect("parsing is deterministic");
        assert_eq!(n.dedup_key(), again.dedup_key());
        let _ = n.noti_type.code();
    }
}

/// The WeChat Pay cancel notice.
pub fn webhook_wechat(data: &[u8]) {
    if let Ok(n) = WechatCancelNotice::parse(data) {
        assert!(!n.cancel_pg_cno.is_empty());
        let again = WechatCancelNotice::parse(data).expect("parsing is deterministic");
        assert_eq!(n.dedup_key(), again.dedup_key());
        let _ = n.is_success();
    }
}

// Structured inputs: each type implements `Arbitrary` over a small, documented framing
// (read with `arbitrary::Unstructured`), and has `to_bytes`, its exact inverse, so that the
// seed corpora can hold real, signed examples that reach the deep code paths.

fn take_u16(u: &mut Unstructured<'_>) -> arbitrary::Result<u16> {
    let b = u.bytes(2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn take_u64(u: &mut Unstructured<'_>) -> arbitrary::Result<u64> {
    let b = u.bytes(8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

/// A length (u16, little-endian) and that many bytes.
fn take_chunk<'a>(u: &mut Unstructured<'a>) -> arbitrary::Result<&'a [u8]> {
    let n = usize::from(take_u16(u)?);
    u.bytes(n.min(u.len()))
}

fn put_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    let n = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
    out.extend(n.to_le_bytes());
    out.extend(&chunk[..usize::from(n)]);
}

fn take_peer(u: &mut Unstructured<'_>) -> arbitrary::Result<Option<IpAddr>> {
    Ok(match u8::arbitrary(u)? % 3 {
        0 => None,
        1 => {
            let b = u.bytes(4)?;
            Some(IpAddr::from([b[0], b[1], b[2], b[3]]))
        }
        _ => {
            let mut a = [0u8; 16];
            a.copy_from_slice(u.bytes(16)?);
            Some(IpAddr::from(a))
        }
    })
}

fn put_peer(out: &mut Vec<u8>, peer: Option<IpAddr>) {
    match peer {
        None => out.push(0),
        Some(IpAddr::V4(v4)) => {
            out.push(1);
            out.extend(v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            out.push(2);
            out.extend(v6.octets());
        }
    }
}

/// A sequence of deliveries to a webhook inbox.
///
/// Framing: flags (bit 0: WeChat notices, else generic), policy (`% 3`: any, KICC's
/// documented addresses, only `allowed`), the count of `allowed` and each as a peer, then
/// deliveries until the end: a peer (tag 0 none / 1 IPv4 / 2 IPv6, then its octets) and a
/// u16-length-prefixed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxInput {
    /// WeChat notices (`true`) or generic ones.
    pub wechat: bool,
    /// 0: any source, 1: KICC's documented addresses, 2: only `allowed`.
    pub policy: u8,
    /// The allow-list for policy `Only`.
    pub allowed: Vec<IpAddr>,
    /// (peer, body) per delivery.
    pub deliveries: Vec<(Option<IpAddr>, Vec<u8>)>,
}

impl<'a> Arbitrary<'a> for InboxInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let wechat = u8::arbitrary(u)? & 1 == 1;
        let policy = u8::arbitrary(u)? % 3;
        let mut allowed = Vec::new();
        for _ in 0..(u8::arbitrary(u)? % 4) {
            if let Some(ip) = take_peer(u)? {
                allowed.push(ip);
            }
        }
        let mut deliveries = Vec::new();
        while !u.is_empty() && deliveries.len() < 64 {
            let peer = take_peer(u)?;
            deliveries.push((peer, take_chunk(u)?.to_vec()));
        }
        Ok(InboxInput {
            wechat,
            policy,
            allowed,
            deliveries,
        })
    }
}

impl InboxInput {
    /// The framing [`Arbitrary`] reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![u8::from(self.wechat), self.policy];
        out.push(u8::try_from(self.allowed.len().min(3)).unwrap_or(3));
        for ip in self.allowed.iter().take(3) {
            put_peer(&mut out, Some(*ip));
        }
        for (peer, body) in &self.deliveries {
            put_peer(&mut out, *peer);
            put_chunk(&mut out, body);
        }
        out
    }
}

/// The webhook inbox: source checks, parsing, de-duplication, the reply.
pub fn webhook_inbox(data: &[u8]) {
    let Ok(input) = InboxInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let policy = match input.policy % 3 {
        0 => SourcePolicy::Any,
        1 => SourcePolicy::DocumentedKicc,
        _ => SourcePolicy::Only(input.allowed.clone()),
    };
    if input.wechat {
        drive_inbox::<WechatCancelNotice>(policy, &input.deliveries);
    } else {
        drive_inbox::<GenericNotice>(policy, &input.deliveries);
    }
}

fn drive_inbox<N>(policy: SourcePolicy, deliveries: &[(Option<IpAddr>, Vec<u8>)])
where
    N: kicc_core::inbox::Notice + std::fmt::Debug,
{
    let inbox = WebhookInbox::<N>::new(policy);
    let ack = Acknowledgement::Received.to_body();
    for (peer, body) in deliveries {
        let reply = inbox.handle(*peer, body);
        match &reply.event {
            NoticeEvent::New(n) | NoticeEvent::Duplicate(n) => {
                assert_eq!(reply.status, 200);
                assert_eq!(reply.body, ack);
                assert!(inbox.notice_for(n.subject()).is_some());
                // The same delivery again is a duplicate, never new.
                let again = inbox.handle(*peer, body);
                assert!(matches!(again.event, NoticeEvent::Duplicate(_)));
            }
            NoticeEvent::Rejected(_) => assert!(matches!(reply.status, 400 | 403)),
            // `NoticeEvent` is #[non_exhaustive]: a new event needs its own check here.
            _ => panic!("a NoticeEvent variant these checks do not know"),
        }
    }
}

/// A WeChat Pay answer (revoke, order query or certificates): status, headers and body,
/// verified at `now`.
///
/// Framing: status (u16 LE), now (u64 LE, Unix seconds), the header count, each header as
/// a u16-length-prefixed name and value, then the body (the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeInput {
    /// The HTTP status (invalid ones are skipped).
    pub status: u16,
    /// The verifier's clock, in Unix seconds.
    pub now: u64,
    /// Header (name, value) pairs; invalid names or values are skipped.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl<'a> Arbitrary<'a> for RevokeInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let status = take_u16(u)?;
        let now = take_u64(u)?;
        let mut headers = Vec::new();
        for _ in 0..(u8::arbitrary(u)? % 16) {
            let name = take_chunk(u)?.to_vec();
            headers.push((name, take_chunk(u)?.to_vec()));
        }
        let body = u.bytes(u.len())?.to_vec();
        Ok(RevokeInput {
            status,
            now,
            headers,
            body,
        })
    }
}

impl RevokeInput {
    /// The framing [`Arbitrary`] reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(self.status.to_le_bytes());
        out.extend(self.now.to_le_bytes());
        out.push(u8::try_from(self.headers.len().min(15)).unwrap_or(15));
        for (name, value) in self.headers.iter().take(15) {
            put_chunk(&mut out, name);
            put_chunk(&mut out, value);
        }
        out.extend(&self.body);
        out
    }
}

/// The sandbox platform's certificate and public key, as the revoke target verifies with.
pub fn verification_keys() -> wechatpay_direct::VerificationKeys {
    let mut keys = wechatpay_direct::VerificationKeys::new();
    keys.add_certificate_pem(kicc_sandbox::SANDBOX_PLATFORM_CERTIFICATE_PEM)
        .expect("the sandbox platform certificate loads");
    keys.add_public_key_pem(
        kicc_sandbox::SANDBOX_PLATFORM_PUBLIC_KEY_ID,
        kicc_sandbox::SANDBOX_PLATFORM_PUBLIC_KEY_PEM,
    )
    .expect("the sandbox platform public key loads");
    keys
}

/// wechatpay-direct's reading of a revoke answer: signature headers, verification, error
/// bodies. Only a verified 204 is `Revoked`.
pub fn wechatpay_revoke(data: &[u8]) {
    let Some(a) = Answer::read(data) else {
        return;
    };
    let keys = verification_keys();
    let _ = wechatpay_direct::SignatureHeaders::from_headers(&a.headers);
    let out =
        wechatpay_direct::interpret_reverse_response(a.status, &a.headers, &a.body, a.now, &keys);
    if let Ok(o) = &out {
        assert!(a.status.is_success());
        if o.is_revoked() {
            assert_eq!(a.status, http::StatusCode::NO_CONTENT);
        }
    }
}

/// A [`RevokeInput`] made into what the SDK reads: a valid status, the valid headers (the
/// rest skipped), the body and a valid clock.
pub struct Answer {
    /// The HTTP status.
    pub status: http::StatusCode,
    /// The headers that are valid HTTP.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// The verifier's clock.
    pub now: wechatpay_direct::Timestamp,
}

impl Answer {
    /// Reads the framing of [`RevokeInput`]; `None` when the status or clock is invalid.
    pub fn read(data: &[u8]) -> Option<Answer> {
        let input = RevokeInput::arbitrary_take_rest(Unstructured::new(data)).ok()?;
        let status = http::StatusCode::from_u16(input.status).ok()?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in &input.headers {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name),
                http::HeaderValue::from_bytes(value),
            ) {
                headers.append(n, v);
            }
        }
        let now = wechatpay_direct::Timestamp::from_unix_secs(input.now).ok()?;
        Some(Answer {
            status,
            headers,
            body: input.body,
            now,
        })
    }
}

/// wechatpay-direct's reading of an order-query answer (`interpret_query_response`):
/// signature headers, verification, the order's `trade_state`, error bodies. An order is
/// only ever read from a 200 whose signature verifies with a held key; with no key held,
/// nothing is an order.
pub fn wechatpay_query(data: &[u8]) {
    use wechatpay_direct::{interpret_query_response, QueryError, TradeState, VerificationKeys};
    let Some(a) = Answer::read(data) else {
        return;
    };
    let keys = verification_keys();
    match interpret_query_response(a.status, &a.headers, &a.body, a.now, &keys) {
        Ok(order) => {
            assert_eq!(a.status, http::StatusCode::OK);
            let verified = wechatpay_direct::verify_response(&a.headers, &a.body, a.now, &keys)
                .expect("an order read from an answer whose signature verifies");
            assert_eq!(verified, order.verified);
            assert!(keys.get(&order.verified.serial).is_some());
            assert_eq!(
                order
                    .raw
                    .get("trade_state")
                    .and_then(serde_json::Value::as_str),
                Some(order.trade_state.as_str())
            );
            assert_eq!(
                TradeState::parse(order.trade_state.as_str()),
                order.trade_state
            );
        }
        Err(e) => {
            if e.is_order_not_found() {
                assert!(matches!(e, QueryError::Api(_)));
                assert!(a.status.is_client_error() || a.status.is_server_error());
            }
            if let QueryError::Unverified { status, .. } | QueryError::Malformed { status, .. } = e
            {
                assert_eq!(status, 200);
            }
            let _ = e.to_string();
        }
    }
    let unkeyed = interpret_query_response(
        a.status,
        &a.headers,
        &a.body,
        a.now,
        &VerificationKeys::new(),
    );
    assert!(unkeyed.is_err(), "an order without any key to verify it");
}

/// The sandbox's API v3 key, which the seeds' certificates are encrypted with.
pub fn sandbox_api_v3_key() -> wechatpay_direct::ApiV3Key {
    wechatpay_direct::ApiV3Key::new(kicc_sandbox::SANDBOX_APIV3_KEY.as_bytes())
        .expect("the sandbox API v3 key is 32 bytes")
}

/// wechatpay-direct's reading of the platform certificates answer
/// (`interpret_certificates_response`): the listing, AES-256-GCM decryption with the API v3
/// key, each certificate and its serial and times, and the signature, both on a first
/// download (no key held: verified with the listed certificate) and with the held keys.
/// Every certificate returned is one, under the serial it is listed as, with the times as
/// written; the key that verified the answer is held or listed; a wrong API v3 key yields no
/// certificate.
pub fn wechatpay_certificates(data: &[u8]) {
    use wechatpay_direct::{
        interpret_certificates_response, parse_rfc3339, ApiV3Key, CertError, RsaPublicKey,
        VerificationKeys,
    };
    let Some(a) = Answer::read(data) else {
        return;
    };
    let api_key = sandbox_api_v3_key();
    for known in [VerificationKeys::new(), verification_keys()] {
        match interpret_certificates_response(
            a.status, &a.headers, &a.body, a.now, &api_key, &known,
        ) {
            Ok((certs, verified)) => {
                assert_eq!(a.status, http::StatusCode::OK);
                for c in &certs {
                    let (serial, key) = RsaPublicKey::from_certificate_pem(&c.pem)
                        .expect("a returned certificate reads as one");
                    assert_eq!(serial, c.serial);
                    assert_eq!(key, c.public_key);
                    assert_eq!(
                        parse_rfc3339(&c.effective_time_text),
                        Some(c.effective_time)
                    );
                    assert_eq!(parse_rfc3339(&c.expire_time_text), Some(c.expire_time));
                }
                assert!(
                    known.get(&verified.serial).is_some()
                        || certs
                            .iter()
                            .any(|c| c.serial.as_str().eq_ignore_ascii_case(&verified.serial)),
                    "verified by {} which is neither held nor listed",
                    verified.serial
                );
            }
            Err(e) => {
                if let CertError::Api(_) = e {
                    assert!(a.status.is_client_error() || a.status.is_server_error());
                }
                let _ = e.to_string();
            }
        }
    }
    let wrong = ApiV3Key::new(&[0x5a; 32]).expect("32 bytes");
    if let Ok((certs, _)) = interpret_certificates_response(
        a.status,
        &a.headers,
        &a.body,
        a.now,
        &wrong,
        &verification_keys(),
    ) {
        assert!(certs.is_empty(), "a certificate decrypted with a wrong key");
    }
}

/// A request as a server (the sandbox) receives it.
///
/// Framing: now (u64 LE), then u16-length-prefixed header, method and URL, then the body
/// (the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationInput {
    /// The verifier's clock, in Unix seconds.
    pub now: u64,
    /// The `Authorization` header value.
    pub header: String,
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub url: String,
    /// The body.
    pub body: Vec<u8>,
}

impl<'a> Arbitrary<'a> for AuthorizationInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let now = take_u64(u)?;
        let text = |u: &mut Unstructured<'a>| -> arbitrary::Result<String> {
            Ok(String::from_utf8_lossy(take_chunk(u)?).into_owned())
        };
        let header = text(u)?;
        let method = text(u)?;
        let url = text(u)?;
        let body = u.bytes(u.len())?.to_vec();
        Ok(AuthorizationInput {
            now,
            header,
            method,
            url,
            body,
        })
    }
}

impl AuthorizationInput {
    /// The framing [`Arbitrary`] reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(self.now.to_le_bytes());
        put_chunk(&mut out, self.header.as_bytes());
        put_chunk(&mut out, self.method.as_bytes());
        put_chunk(&mut out, self.url.as_bytes());
        out.extend(&self.body);
        out
    }
}

/// The `Authorization` header parser, and request signature verification with what it
/// parsed.
pub fn wechatpay_authorization(data: &[u8]) {
    // The whole input as a header too: most mutations are of the header text itself.
    let _ = wechatpay_direct::parse_authorization(&String::from_utf8_lossy(data));
    let Ok(input) = AuthorizationInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let Ok(parts) = wechatpay_direct::parse_authorization(&input.header) else {
        return;
    };
    let (Ok(method), Ok(now)) = (
        http::Method::from_bytes(input.method.as_bytes()),
        wechatpay_direct::Timestamp::from_unix_secs(input.now),
    ) else {
        return;
    };
    let key =
        wechatpay_direct::RsaPublicKey::from_pem(kicc_sandbox::SANDBOX_MERCHANT_PUBLIC_KEY_PEM)
            .expect("the sandbox merchant key loads");
    let _ = wechatpay_direct::verify_request_signature(
        &method,
        &input.url,
        &input.body,
        &parts,
        now,
        &key,
    );
}

/// PEM, certificate and key loading, as text and as DER.
pub fn pem_keys(data: &[u8]) {
    use wechatpay_direct::{RsaPrivateKey, RsaPublicKey, VerificationKeys};
    let text = String::from_utf8_lossy(data);
    if let Ok(k) = RsaPrivateKey::from_pem(&text) {
        assert!(k.bits() >= 2048);
        let _ = k.public_key();
    }
    if let Ok(k) = RsaPublicKey::from_pem(&text) {
        let _ = k.to_spki_pem();
    }
    if let Ok((serial, k)) = RsaPublicKey::from_certificate_pem(&text) {
        assert!(!serial.as_str().is_empty());
        let _ = k.bits();
    }
    let mut keys = VerificationKeys::new();
    let _ = keys.add_certificate_pem(&text);
    let _ = keys.add_public_key_pem("PUB_KEY_ID_FUZZ", &text);
    let _ = RsaPrivateKey::from_pkcs8_der(data);
    let _ = RsaPrivateKey::from_pkcs1_der(data);
    let _ = RsaPublicKey::from_spki_der(data);
    let _ = RsaPublicKey::from_pkcs1_der(data);
    let _ = RsaPublicKey::from_certificate_der(data);
}

/// Money from strings: whatever parses shows back as a string that parses to the same.
pub fn money(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (amount, currency) = match text.split_once('\n') {
        Some((a, c)) => (a, Some(c)),
        None => (&*text, None),
    };
    let _ = Currency::parse("currency", amount);
    for c in [Currency::Krw, Currency::Usd] {
        let _ = kicc_core::Amount::parse_major("amount", c, amount);
        if let Ok(m) = Money::parse_major("amount", c, amount) {
            let shown = m.amount.display_major(c);
            let back = Money::parse_major("amount", c, &shown).expect("shown money parses");
            assert_eq!(back, m, "{amount:?} shown as {shown:?}");
        }
    }
    let _ = Money::parse_input("amount", Some(amount), currency);
}

/// Text fields, dates, codes and `resDetailMsg` decoding from strings.
pub fn text(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let s = &*s;
    let _ = kicc_core::check_text("field", s, 100);
    let _ = kicc_core::MallId::new(s);
    let _ = kicc_core::PgCno::new(s);
    let _ = kicc_core::ShopTransactionId::new(s);
    let _ = kicc_core::Memo::new(s);
    let _ = kicc_core::ReviseMessage::new(s);
    let _ = kicc_core::RegId::new(s);
    let _ = kicc_core::ClientIp::new(s);
    let _ = kicc_core::NotifyUrl::new(s);
    let _ = kicc_core::BaseUrl::new(s);
    let _ = kicc_core::KoreaDate::parse("date", s);
    let _ = kicc_core::KoreaDateTime::parse("date", s);
    let _ = kicc_core::ReviseTypeCode::parse(s);
    let _ = kicc_core::TransactionStatus::parse(s);
    let _ = kicc_core::MsgAuthValue::parse(s);
    for channel in [
        kicc_core::Channel::Generic,
        kicc_core::Channel::Alipay,
        kicc_core::Channel::WeChat,
    ] {
        let _ = kicc_core::classify(channel, s);
        let _ = channel.parse_code(s);
    }
    let decoded = kicc_core::wire::decode_form_value(s);
    if !s.contains(['%', '+']) {
        assert_eq!(decoded, s);
    }
    let _ = wechatpay_direct::MchId::new(s);
    let _ = wechatpay_direct::OutTradeNo::new(s);
    let _ = wechatpay_direct::TransactionId::new(s);
    let _ = wechatpay_direct::Nonce::new(s);
    let _ = wechatpay_direct::SerialNo::new(s);
    let _ = wechatpay_direct::BaseUrl::new(s);
}

/// The sandbox's handling of a request body (KICC endpoints and admin bodies): every KICC
/// answer is a JSON object with a string `resCd`.
pub fn sandbox_request(data: &[u8]) {
    if let kicc_sandbox::fuzz::Handled::Api(body) = kicc_sandbox::fuzz::request(data) {
        let v: serde_json::Value = serde_json::from_slice(&body).expect("the sandbox answers JSON");
        assert!(v["resCd"].is_string(), "no resCd in {v}");
    }
}

/// The batch CSV reader (`kicc_ledger::batch::read_batch`): a file gives rows or reasons, never a
/// panic. Rows come with increasing line numbers after the header and unique
/// `intent_id`s; every bad row has a line after the header and a reason. What was read,
/// written back as CSV (every field quoted, amounts in major units, the resolved defaults
/// spelled out), reads back as the same rows.
pub fn batch_csv(data: &[u8]) {
    use kicc_ledger::batch::BatchError;
    match kicc_ledger::batch::read_batch(data) {
        Ok(rows) => {
            let mut last = 1;
            let mut ids = std::collections::HashSet::new();
            for r in &rows {
                assert!(r.line > last, "line {} after line {last}", r.line);
                last = r.line;
                assert!(ids.insert(r.spec.intent_id().as_str().to_owned()));
                assert!(r.spec.amount().is_none_or(|a| a > 0));
            }
            let again = kicc_ledger::batch::read_batch(&batch_csv_text(&rows))
                .expect("the rows read, written back, read again");
            assert_eq!(
                again.iter().map(|r| &r.spec).collect::<Vec<_>>(),
                rows.iter().map(|r| &r.spec).collect::<Vec<_>>()
            );
        }
        Err(BatchError::BadRows(bad)) => {
            assert!(!bad.is_empty());
            for b in &bad {
                assert!(b.line >= 2, "a bad row on line {}", b.line);
                assert!(!b.why.is_empty());
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// `rows` as a batch file with every column, every field quoted.
pub fn batch_csv_text(rows: &[kicc_ledger::batch::BatchRow]) -> Vec<u8> {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from(
        "intent_id,channel,pg_cno,amount,currency,reason,type,remain_amount,notify_url\n",
    );
    for r in rows {
        let s = &r.spec;
        let money = |m: Option<u64>| {
            m.map(|m| {
                s.currency()
                    .unwrap_or(kicc_ledger::Currency::Krw)
                    .display_major(m)
            })
            .unwrap_or_default()
        };
        let fields = [
            s.intent_id().as_str().to_owned(),
            s.channel().as_str().to_owned(),
            s.pg_cno().to_owned(),
            money(s.amount()),
            s.currency()
                .map(|c| c.code().to_owned())
                .unwrap_or_default(),
            s.reason().unwrap_or_default().to_owned(),
            s.revise_type_code().to_owned(),
            money(s.remain_amount()),
            s.notify_url().unwrap_or_default().to_owned(),
        ];
        let line: Vec<String> = fields.iter().map(|f| quote(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out.into_bytes()
}
