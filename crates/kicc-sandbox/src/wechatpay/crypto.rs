//! The sandbox's own WeChat Pay API v3 cryptography, written from the API
//! pages and independent of `wechatpay-direct`: the canonical request and
//! response messages, a strict `Authorization` parser, SHA256withRSA with
//! `ring`, and PEM/X.509 reading with `rustls-pki-types` / `rustls-webpki`.
//!
//! A mistake shared by the SDK and the simulator would hide from every test;
//! written separately, one of the two disagrees.

use std::fmt;

use base64::Engine as _;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use rustls_pki_types::pem::{PemObject as _, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The `Authorization` scheme of API v3.
pub(crate) const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// The message a request signs: `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`, URL
/// being the request target exactly as received (path and query).
pub(crate) fn request_message(
    method: &str,
    target: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(method.len() + target.len() + body.len() + 64);
    for part in [
        method.as_bytes(),
        target.as_bytes(),
        timestamp.as_bytes(),
        nonce.as_bytes(),
        body,
    ] {
        m.extend_from_slice(part);
        m.push(b'\n');
    }
    m
}

/// The message an answer signs: `TIMESTAMP\nNONCE\nBODY\n` (empty body: `TIMESTAMP\nNONCE\n\n`).
pub(crate) fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    for part in [timestamp.as_bytes(), nonce.as_bytes(), body] {
        m.extend_from_slice(part);
        m.push(b'\n');
    }
    m
}

/// The five parameters of `Authorization`, verbatim.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AuthParts {
    pub(crate) mchid: String,
    pub(crate) nonce_str: String,
    pub(crate) timestamp: String,
    pub(crate) serial_no: String,
    pub(crate) signature: String,
}

impl fmt::Debug for AuthParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthParts")
            .field("mchid", &self.mchid)
            .field("nonce_str", &self.nonce_str)
            .field("timestamp", &self.timestamp)
            .field("serial_no", &self.serial_no)
            .finish_non_exhaustive()
    }
}

const PARAMS: [&str; 5] = ["mchid", "nonce_str", "timestamp", "serial_no", "signature"];

/// Parses `Authorization` strictly: the scheme, one space, then exactly the
/// five parameters `name="value"` (any order) separated by `,` with no
/// whitespace, each once, nothing else. The issue text names what is wrong.
pub(crate) fn parse_authorization(value: &str) -> Result<AuthParts, String> {
    let Some(params) = value.strip_prefix(SCHEME).and_then(|r| r.strip_prefix(' ')) else {
        return Err(format!(
            "scheme must be {SCHEME} followed by one space (WECHATPAY2-SHA256-RSA2048 mchid=\"...\",nonce_str=\"...\",timestamp=\"...\",serial_no=\"...\",signature=\"...\")"
        ));
    };
    let mut found: [Option<&str>; 5] = [None; 5];
    let mut rest = params;
    loop {
        let Some((name, after)) = rest.split_once('=') else {
            return Err(format!("parameter {rest:?} is not name=\"value\""));
        };
        let Some(index) = PARAMS.iter().position(|p| *p == name) else {
            return Err(format!(
                "unknown parameter {name:?} (allowed: mchid, nonce_str, timestamp, serial_no, signature; no spaces)"
            ));
        };
        let Some(quoted) = after.strip_prefix('"') else {
            return Err(format!("the value of {name} must be in double quotes"));
        };
        let Some((val, tail)) = quoted.split_once('"') else {
            return Err(format!("the value of {name} has no closing quote"));
        };
        if val.is_empty() || val.chars().any(char::is_control) {
            return Err(format!(
                "the value of {name} must be non-empty, without control characters"
            ));
        }
        match found.get_mut(index) {
            Some(slot @ None) => *slot = Some(val),
            _ => return Err(format!("parameter {name} is given twice")),
        }
        if tail.is_empty() {
            break;
        }
        let Some(next) = tail.strip_prefix(',') else {
            return Err(format!(
                "after the value of {name}: expected ',' or the end, got {tail:?}"
            ));
        };
        rest = next;
    }
    let take = |i: usize| -> Result<String, String> {
        found
            .get(i)
            .copied()
            .flatten()
            .map(str::to_owned)
            .ok_or_else(|| format!("parameter {} is missing", PARAMS.get(i).unwrap_or(&"?")))
    };
    Ok(AuthParts {
        mchid: take(0)?,
        nonce_str: take(1)?,
        timestamp: take(2)?,
        serial_no: take(3)?,
        signature: take(4)?,
    })
}

/// Why a request signature failed; the caller turns it into a `SIGN_ERROR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigCheck {
    /// Not Base64 (a `WECHATPAY/SIGNTEST/` probe included).
    NotBase64,
    /// Does not verify.
    Mismatch,
}

/// Parses a signed timestamp: 1 to 10 ASCII digits.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// An RSA public key as PKCS#1 `RSAPublicKey` DER, the form ring verifies.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    pkcs1: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} bytes)", self.pkcs1.len())
    }
}

/// rsaEncryption, 1.2.840.113549.1.1.1, with its NULL parameters, as DER.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// Reads one DER TLV: (tag, content, rest). Definite lengths only, as DER requires.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

impl PublicKey {
    /// From SubjectPublicKeyInfo DER: `SEQUENCE { rsaEncryption, BIT STRING { RSAPublicKey } }`.
    /// Hand-written (a dozen lines) because neither rustls-pki-types nor
    /// rustls-webpki exposes the key inside an SPKI.
    pub(crate) fn from_spki_der(spki: &[u8]) -> Result<Self, String> {
        let (tag, content, rest) = tlv(spki).ok_or("SPKI is not DER")?;
        if tag != 0x30 || !rest.is_empty() {
            return Err("SPKI must be one SEQUENCE".into());
        }
        let (alg_tag, _, after_alg) = tlv(content).ok_or("SPKI algorithm is not DER")?;
        let alg_len = content.len() - after_alg.len();
        if alg_tag != 0x30 || content.get(..alg_len) != Some(RSA_ALGORITHM) {
            return Err("the key is not an RSA key (rsaEncryption)".into());
        }
        let (bit_tag, bits, end) = tlv(after_alg).ok_or("SPKI key is not DER")?;
        if bit_tag != 0x03 || !end.is_empty() {
            return Err("SPKI key must be a BIT STRING".into());
        }
        match bits.split_first() {
            Some((0, pkcs1)) => Ok(Self {
                pkcs1: pkcs1.to_vec(),
            }),
            _ => Err("SPKI BIT STRING must have no unused bits".into()),
        }
    }

    /// From PEM: `PUBLIC KEY` (SPKI) or `CERTIFICATE` (its SPKI, read by rustls-webpki).
    pub(crate) fn from_pem(pem: &str) -> Result<Self, String> {
        for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
            let (kind, der) = item.map_err(|e| format!("PEM: {e}"))?;
            match kind {
                SectionKind::PublicKey => return Self::from_spki_der(&der),
                SectionKind::Certificate => {
                    return Self::from_certificate_der(&der).map(|(_, key)| key)
                }
                _ => {}
            }
        }
        Err("no PUBLIC KEY or CERTIFICATE block in the PEM text".into())
    }

    /// The serial (uppercase hex) and key of an X.509 certificate (rustls-webpki).
    pub(crate) fn from_certificate_der(der: &[u8]) -> Result<(String, Self), String> {
        let der = CertificateDer::from(der);
        let cert = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let serial = hex::encode_upper(cert.serial());
        let key = Self::from_spki_der(cert.subject_public_key_info().as_ref())?;
        Ok((serial, key))
    }

    /// Checks a Base64 SHA256withRSA (PKCS#1 v1.5) signature over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature_b64: &str) -> Result<(), SigCheck> {
        let sig = base64::engine::general_purpose::STANDARD
            .decode(signature_b64)
            .map_err(|_| SigCheck::NotBase64)?;
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.pkcs1)
            .verify(message, &sig)
            .map_err(|_| SigCheck::Mismatch)
    }

    /// PKCS#1 DER.
    #[cfg(test)]
    pub(crate) fn pkcs1(&self) -> &[u8] {
        &self.pkcs1
    }
}

/// An RSA private key that signs SHA256withRSA. `Debug` is redacted.
pub(crate) struct PrivateKey {
    pair: std::sync::Arc<RsaKeyPair>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl PrivateKey {
    /// From PEM: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1).
    pub(crate) fn from_pem(pem: &str) -> Result<Self, String> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("no usable private key PEM block: {e}"))?;
        let pair = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err("not an RSA key (PKCS#8 or PKCS#1 RSA expected)".into()),
        }
        .map_err(|e| format!("RSA key rejected by ring: {e}"))?;
        Ok(Self {
            pair: std::sync::Arc::new(pair),
        })
    }

    /// Another handle on the same key.
    pub(crate) fn clone_arc(&self) -> Self {
        Self {
            pair: std::sync::Arc::clone(&self.pair),
        }
    }

    /// Base64 SHA256withRSA over `message`.
    pub(crate) fn sign_base64(&self, message: &[u8]) -> Result<String, String> {
        let rng = ring::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
            .map_err(|_| "RSA signing failed".to_owned())?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sig))
    }

    /// The public half (PKCS#1).
    #[cfg(test)]
    pub(crate) fn public_key(&self) -> PublicKey {
        use ring::signature::KeyPair as _;
        PublicKey {
            pkcs1: self.pair.public_key().as_ref().to_vec(),
        }
    }
}

/// AEAD_AES_256_GCM as WeChat Pay encrypts certificates: Base64 of the
/// ciphertext with the 16-byte tag appended.
pub(crate) fn seal_aes_256_gcm(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<String, String> {
    use ring::aead;
    let key = aead::UnboundKey::new(&aead::AES_256_GCM, key)
        .map(aead::LessSafeKey::new)
        .map_err(|_| "AES-256-GCM key rejected".to_owned())?;
    let mut in_out = plaintext.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(*nonce),
        aead::Aad::from(aad),
        &mut in_out,
    )
    .map_err(|_| "AES-256-GCM sealing failed".to_owned())?;
    Ok(base64::engine::general_purpose::STANDARD.encode(in_out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechatpay::keys::{
        SANDBOX_MERCHANT_CERTIFICATE_PEM, SANDBOX_MERCHANT_PRIVATE_KEY_PEM,
        SANDBOX_MERCHANT_PUBLIC_KEY_PEM, SANDBOX_MERCHANT_SERIAL_NO,
    };
    use proptest::prelude::*;

    #[test]
    fn messages() {
        assert_eq!(
            request_message("GET", "/v3/a?b=c", "1700000000", "N", b""),
            b"GET\n/v3/a?b=c\n1700000000\nN\n\n"
        );
        assert_eq!(response_message("1", "N", b"x\n"), b"1\nN\nx\n\n");
    }

    #[test]
    fn strict_authorization() {
        let ok = "WECHATPAY2-SHA256-RSA2048 signature=\"c2ln\",serial_no=\"AB\",timestamp=\"1\",nonce_str=\"N\",mchid=\"19\"";
        let p = parse_authorization(ok).unwrap();
        assert_eq!(
            (p.mchid.as_str(), p.signature.as_str(), p.serial_no.as_str()),
            ("19", "c2ln", "AB")
        );
        assert!(!format!("{p:?}").contains("c2ln"));
        for bad in [
            "Bearer x",
            "WECHATPAY2-SHA256-RSA2048  mchid=\"1\"",
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1\"",
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1\", nonce_str=\"N\",timestamp=\"1\",serial_no=\"A\",signature=\"s\"",
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",nonce_str=\"N\",timestamp=\"1\",serial_no=\"A\",signature=\"s\",extra=\"x\"",
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",mchid=\"1\",nonce_str=\"N\",timestamp=\"1\",serial_no=\"A\",signature=\"s\"",
            "WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str=\"N\",timestamp=\"1\",serial_no=\"A\",signature=\"s\"",
            "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",nonce_str=\"N\",timestamp=\"1\",serial_no=\"A\",signature=\"s\",",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_load_and_agree() {
        let private = PrivateKey::from_pem(SANDBOX_MERCHANT_PRIVATE_KEY_PEM).unwrap();
        let spki = PublicKey::from_pem(SANDBOX_MERCHANT_PUBLIC_KEY_PEM).unwrap();
        let (serial, from_cert) = PublicKey::from_certificate_der(
            &CertificateDer::from_pem_slice(SANDBOX_MERCHANT_CERTIFICATE_PEM.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(serial, SANDBOX_MERCHANT_SERIAL_NO);
        assert_eq!(spki, from_cert);
        assert_eq!(spki.pkcs1(), private.public_key().pkcs1());
        let sig = private.sign_base64(b"m").unwrap();
        assert_eq!(spki.verify(b"m", &sig), Ok(()));
        assert_eq!(spki.verify(b"n", &sig), Err(SigCheck::Mismatch));
        assert_eq!(spki.verify(b"m", "not base64!"), Err(SigCheck::NotBase64));
        assert!(PrivateKey::from_pem(SANDBOX_MERCHANT_PUBLIC_KEY_PEM).is_err());
        assert!(PublicKey::from_pem("nothing").is_err());
    }

    /// Signatures and headers made with openssl (wechatpay-direct's fixtures,
    /// commands in their README) pass the sandbox's own parser and verifier.
    #[test]
    fn openssl_fixtures_verify_with_the_sandboxs_own_code() {
        macro_rules! fixture {
            ($name:literal) => {
                include_str!(concat!("../../../wechatpay-direct/tests/fixtures/", $name))
            };
        }
        let public = PublicKey::from_pem(fixture!("pub-2048.pem")).unwrap();
        for (message, header, target) in [
            (
                fixture!("query-common-message.txt"),
                fixture!("query-common-authorization.txt"),
                "/v3/global/transactions/out-trade-no/ORDER-20240101-0001?mchid=1900000109",
            ),
            (
                fixture!("query-institutional-message.txt"),
                fixture!("query-institutional-authorization.txt"),
                "/v3/global/transactions/id/4200000001202401010000000001?sub_mchid=1900000100&sp_mchid=1900000109",
            ),
        ] {
            let parts = parse_authorization(header).unwrap();
            assert_eq!(parts.mchid, "1900000109");
            assert_eq!(parts.timestamp, "1700000000");
            let rebuilt = request_message("GET", target, &parts.timestamp, &parts.nonce_str, b"");
            assert_eq!(rebuilt, message.as_bytes());
            assert_eq!(public.verify(&rebuilt, &parts.signature), Ok(()));
        }
        let encoded = fixture!("query-encoded-message.txt");
        let sig = fixture!("query-encoded-message.sig-2048.b64");
        assert_eq!(public.verify(encoded.as_bytes(), sig), Ok(()));
        let body_public = PublicKey::from_pem(fixture!("pub-3072.pem")).unwrap();
        let body = fixture!("response-body.json");
        let message = response_message(
            "1700000000",
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            body.as_bytes(),
        );
        assert_eq!(message, fixture!("response-body-message.txt").as_bytes());
        assert_eq!(
            body_public.verify(&message, fixture!("response-body-message.sig-3072.b64")),
            Ok(())
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1700000000"), Some(1_700_000_000));
        for bad in ["", "17000000000", "-1", "1e9", " 1"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}", der in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_authorization(&text);
            let _ = parse_authorization(&format!("{SCHEME} {text}"));
            let _ = PublicKey::from_spki_der(&der);
            let _ = PublicKey::from_certificate_der(&der);
            let _ = parse_timestamp(&text);
        }
    }
}
