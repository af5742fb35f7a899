//! RSA keys: the merchant's private key (signing), WeChat Pay's platform
//! certificates and public keys (verification), and the key store that picks
//! one by `Wechatpay-Serial`.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use ring::signature::{self, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use crate::der::{self, DerError};
use crate::ids::{InvalidInput, SerialNo};
use crate::pem::{self, PemError};

/// Why a key or certificate could not be loaded. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM text could not be read.
    #[error("{0}")]
    Pem(#[from] PemError),
    /// The DER structure is malformed or unexpected.
    #[error("{0}")]
    Der(#[from] DerError),
    /// The key is not an RSA key.
    #[error("not an RSA key (only RSA is supported)")]
    NotRsa,
    /// The modulus size is outside what is accepted.
    #[error("RSA key of {bits} bits; accepted: {min}..={max} bits")]
    SizeOutOfRange {
        /// The key's modulus size.
        bits: usize,
        /// Smallest accepted size.
        min: usize,
        /// Largest accepted size.
        max: usize,
    },
    /// `ring` rejected the private key (after the size check; never key material).
    #[error("RSA private key rejected: {reason}")]
    Rejected {
        /// ring's description of the failed check.
        reason: &'static str,
    },
    /// A key ID or serial is not acceptable.
    #[error("{0}")]
    InvalidId(#[from] InvalidInput),
    /// The bytes are not an X.509 certificate rustls-webpki can read.
    #[error("not a readable X.509 certificate")]
    Certificate,
}

/// Signature creation failed (ring reported an internal failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// `ring` could not produce a signature.
    #[error("RSA signing failed")]
    Crypto,
    /// No random bytes could be drawn for the nonce.
    #[error("could not draw random bytes for the nonce")]
    Randomness,
    /// The request to sign could not be built exactly as asked (its path or its body);
    /// nothing is signed rather than a different request.
    #[error("the request could not be built: {0}")]
    Request(&'static str),
}

/// An RSA private key (2048 to 4096 bits) for SHA256withRSA (PKCS#1 v1.5).
///
/// Used as the merchant's API key, or by a simulator as a platform key.
/// `Debug` shows only the size; PEM and DER buffers are zeroed after loading.
/// (ring keeps its own copy of the key material, which it does not promise to zero.)
pub struct RsaPrivateKey {
    pair: RsaKeyPair,
}

impl RsaPrivateKey {
    /// Loads a PEM key: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(pem_text: &str) -> Result<Self, KeyError> {
        let block = pem::first_block(
            pem_text,
            &["PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"],
            "PRIVATE KEY or RSA PRIVATE KEY",
        )?;
        if block.label == "RSA PRIVATE KEY" {
            Self::from_pkcs1_der(&block.der)
        } else {
            Self::from_pkcs8_der(&block.der)
        }
    }

    /// Loads PKCS#8 `PrivateKeyInfo` DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        if !der::pkcs8_is_rsa(der)? {
            return Err(KeyError::NotRsa);
        }
        check_private_size(der::pkcs8_private_key(der)?)?;
        RsaKeyPair::from_pkcs8(der)
            .map(|pair| Self { pair })
            .map_err(rejected)
    }

    /// Loads PKCS#1 `RSAPrivateKey` DER.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        check_private_size(der)?;
        RsaKeyPair::from_der(der)
            .map(|pair| Self { pair })
            .map_err(rejected)
    }

    /// Smallest accepted modulus.
    pub const MIN_BITS: usize = 2048;
    /// Largest accepted modulus (ring's limit for private keys).
    pub const MAX_BITS: usize = 4096;

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.pair.public().modulus_len() * 8
    }

    /// The matching public key.
    pub fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey {
            pkcs1: self.pair.public_key().as_ref().to_vec(),
            bits: self.bits(),
        }
    }

    /// SHA256withRSA (RSASSA-PKCS1-v1_5) over `message`; returns the raw signature.
    ///
    /// PKCS#1 v1.5 is deterministic: the same key and message always give the
    /// same signature. (ring takes a random source for blinding; it does not
    /// affect the output.)
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = ring::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
            .map_err(|_| SignError::Crypto)?;
        Ok(sig)
    }

    /// [`RsaPrivateKey::sign`], Base64 (standard alphabet, padded) as WeChat Pay sends it.
    pub fn sign_base64(&self, message: &[u8]) -> Result<String, SignError> {
        Ok(base64::engine::general_purpose::STANDARD.encode(self.sign(message)?))
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RsaPrivateKey {{ bits: {}, key: \"[redacted]\" }}",
            self.bits()
        )
    }
}

/// An RSA public key (2048 to 8192 bits) that verifies SHA256withRSA signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// PKCS#1 `RSAPublicKey` DER, the form ring verifies with.
    pkcs1: Vec<u8>,
    bits: usize,
}

impl RsaPublicKey {
    /// Smallest accepted modulus.
    pub const MIN_BITS: usize = 2048;
    /// Largest accepted modulus.
    pub const MAX_BITS: usize = 8192;

    /// Loads a PEM public key: SPKI (`BEGIN PUBLIC KEY`, what WeChat Pay's
    /// "public key" download is) or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
    pub fn from_pem(pem_text: &str) -> Result<Self, KeyError> {
        let block = pem::first_block(
            pem_text,
            &["PUBLIC KEY", "RSA PUBLIC KEY"],
            "PUBLIC KEY or RSA PUBLIC KEY",
        )?;
        if block.label == "RSA PUBLIC KEY" {
            Self::from_pkcs1_der(&block.der)
        } else {
            Self::from_spki_der(&block.der)
        }
    }

    /// Loads SubjectPublicKeyInfo DER (unwrapped to PKCS#1 for ring).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let pkcs1 = der::spki_to_rsa_public_key(der).map_err(not_rsa)?;
        Self::from_pkcs1_der(pkcs1)
    }

    /// Loads PKCS#1 `RSAPublicKey` DER.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = der::parse_rsa_public_key(der)?;
        if !(Self::MIN_BITS..=Self::MAX_BITS).contains(&info.modulus_bits) {
            return Err(KeyError::SizeOutOfRange {
                bits: info.modulus_bits,
                min: Self::MIN_BITS,
                max: Self::MAX_BITS,
            });
        }
        Ok(Self {
            pkcs1: der.to_vec(),
            bits: info.modulus_bits,
        })
    }

    /// Loads the public key of an X.509 certificate (PEM `BEGIN CERTIFICATE`);
    /// also returns the certificate's serial number as uppercase hex.
    ///
    /// Validity dates and the issuer chain are not checked: platform
    /// certificates are trusted because they come from WeChat Pay's
    /// authenticated certificate download.
    pub fn from_certificate_pem(pem_text: &str) -> Result<(SerialNo, Self), KeyError> {
        let block = pem::first_block(pem_text, &["CERTIFICATE"], "CERTIFICATE")?;
        Self::from_certificate_der(&block.der)
    }

    /// [`RsaPublicKey::from_certificate_pem`] for DER input. The certificate
    /// is read by rustls-webpki (serial, SubjectPublicKeyInfo).
    pub fn from_certificate_der(der: &[u8]) -> Result<(SerialNo, Self), KeyError> {
        let der = rustls_pki_types::CertificateDer::from(der);
        let cert = webpki::EndEntityCert::try_from(&der).map_err(|_| KeyError::Certificate)?;
        let serial = SerialNo::new_for_field("certificate serial", serial_hex(cert.serial()))?;
        let key = Self::from_spki_der(cert.subject_public_key_info().as_ref())?;
        Ok((serial, key))
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The key as PKCS#1 `RSAPublicKey` DER.
    pub fn pkcs1_der(&self) -> &[u8] {
        &self.pkcs1
    }

    /// The key as SPKI PEM (`BEGIN PUBLIC KEY`).
    pub fn to_spki_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD
            .encode(der::rsa_public_key_to_spki(&self.pkcs1));
        let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END PUBLIC KEY-----\n");
        out
    }

    /// Verifies a raw SHA256withRSA (PKCS#1 v1.5) signature over `message`.
    pub fn verify(&self, message: &[u8], signature_bytes: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.pkcs1)
            .verify(message, signature_bytes)
            .is_ok()
    }
}

/// Checks the modulus size of PKCS#1 `RSAPrivateKey` DER before ring sees it,
/// so a size problem is reported as such without reading ring's error text.
fn check_private_size(pkcs1: &[u8]) -> Result<(), KeyError> {
    let bits = der::rsa_private_key_modulus_bits(pkcs1)?;
    if !(RsaPrivateKey::MIN_BITS..=RsaPrivateKey::MAX_BITS).contains(&bits) {
        return Err(KeyError::SizeOutOfRange {
            bits,
            min: RsaPrivateKey::MIN_BITS,
            max: RsaPrivateKey::MAX_BITS,
        });
    }
    Ok(())
}

/// ring's `KeyRejected` by type: its reasons are not a public enum (only
/// text), so every rejection after the size check maps to one variant.
fn rejected(_: ring::error::KeyRejected) -> KeyError {
    KeyError::Rejected {
        reason: "inconsistent or invalid RSA key components",
    }
}

/// A certificate serial as uppercase hex, without sign-padding zeros (as
/// WeChat Pay writes `serial_no`).
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let mut serial = raw;
    while let [0, rest @ ..] = serial {
        if rest.is_empty() {
            break;
        }
        serial = rest;
    }
    serial.iter().map(|b| format!("{b:02X}")).collect()
}

fn not_rsa(e: DerError) -> KeyError {
    match e {
        DerError::Structure("public key algorithm is not rsaEncryption") => KeyError::NotRsa,
        other => KeyError::Der(other),
    }
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey {{ bits: {} }}", self.bits)
    }
}

/// Where a verification key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// A platform certificate (serial = the certificate's serial number).
    PlatformCertificate,
    /// A "WeChat Pay public key" (ID `PUB_KEY_ID_...`).
    WechatpayPublicKey,
}

/// WeChat Pay's verification keys, looked up by `Wechatpay-Serial`.
///
/// Holds platform certificates and "WeChat Pay public keys" side by side, so a
/// merchant switching from one mode to the other (or rotating certificates)
/// accepts both. Lookups ignore ASCII case. A serial not in the store is an
/// error at verification, never a silent pass.
#[derive(Clone, Default)]
pub struct VerificationKeys {
    keys: BTreeMap<String, (KeyKind, RsaPublicKey)>,
}

impl VerificationKeys {
    /// The prefix of WeChat Pay public key IDs.
    pub const PUBLIC_KEY_ID_PREFIX: &'static str = "PUB_KEY_ID_";

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a platform certificate (PEM); its serial number (uppercase hex) is
    /// the `Wechatpay-Serial` it answers to. Returns that serial.
    pub fn add_certificate_pem(&mut self, pem_text: &str) -> Result<SerialNo, KeyError> {
        let (serial, key) = RsaPublicKey::from_certificate_pem(pem_text)?;
        self.insert(serial.clone(), KeyKind::PlatformCertificate, key);
        Ok(serial)
    }

    /// Adds a platform certificate (PEM) under an explicitly given serial.
    pub fn add_certificate_pem_with_serial(
        &mut self,
        serial: SerialNo,
        pem_text: &str,
    ) -> Result<(), KeyError> {
        let (_, key) = RsaPublicKey::from_certificate_pem(pem_text)?;
        self.insert(serial, KeyKind::PlatformCertificate, key);
        Ok(())
    }

    /// Adds a WeChat Pay public key (SPKI `BEGIN PUBLIC KEY` PEM) under its ID,
    /// which must start with `PUB_KEY_ID_`.
    pub fn add_public_key_pem(&mut self, key_id: &str, pem_text: &str) -> Result<(), KeyError> {
        let id = SerialNo::new_for_field("public key id", key_id)?;
        if !id.as_str().starts_with(Self::PUBLIC_KEY_ID_PREFIX) {
            return Err(KeyError::InvalidId(InvalidInput::Rule {
                field: "public key id",
                rule: "a WeChat Pay public key ID starts with PUB_KEY_ID_",
            }));
        }
        let key = RsaPublicKey::from_pem(pem_text)?;
        self.insert(id, KeyKind::WechatpayPublicKey, key);
        Ok(())
    }

    /// Adds an already loaded key. A key under the same serial is replaced.
    pub fn insert(&mut self, serial: SerialNo, kind: KeyKind, key: RsaPublicKey) {
        self.keys
            .insert(serial.as_str().to_ascii_uppercase(), (kind, key));
    }

    /// Removes a key (e.g. an expired certificate); returns whether it was there.
    pub fn remove(&mut self, serial: &str) -> bool {
        self.keys.remove(&serial.to_ascii_uppercase()).is_some()
    }

    /// The key for `serial`, if held.
    pub fn get(&self, serial: &str) -> Option<(KeyKind, &RsaPublicKey)> {
        self.keys
            .get(&serial.to_ascii_uppercase())
            .map(|(k, key)| (*k, key))
    }

    /// The serials held (uppercase), in order.
    pub fn serials(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl fmt::Debug for VerificationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.keys.iter().map(|(s, (k, key))| (s, (k, key.bits()))))
            .finish()
    }
}

/// Keeps the bytes of a PEM file you read zeroed on drop; pass `&*pem` to
/// [`RsaPrivateKey::from_pem`].
pub type SecretPem = Zeroizing<String>;
