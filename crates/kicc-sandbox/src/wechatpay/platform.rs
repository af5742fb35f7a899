//! The sandbox's platform certificates: the one it starts with, the ones a
//! rotation adds (made with rcgen), which key signs answers when, and the
//! encrypted listing of `GET /v3/global/certificates`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::config::Settings;
use super::crypto::{seal_aes_256_gcm, PrivateKey};
use super::keys::SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM;
use crate::clock::rfc3339_china;

/// How long a listed certificate is valid (5 years), as the listing says.
const VALIDITY_SECS: i64 = 5 * 365 * 86_400;
/// The first 36 hex digits of every rotated certificate's serial; the last
/// four count the rotations from `0101`.
const ROTATED_SERIAL_PREFIX: &str = "5A4DB0C5A4DB0C5A4DB0C5A4DB0C5A4DB0C5";

/// One platform certificate and its key.
#[derive(Debug)]
pub(crate) struct PlatformEntry {
    /// The certificate's serial (uppercase hex): its `serial_no` in the listing.
    pub(crate) serial: String,
    /// The `Wechatpay-Serial` answers signed with this key carry (the
    /// configured one for the initial key, e.g. a `PUB_KEY_ID_...`).
    pub(crate) sign_serial: String,
    pub(crate) key: Arc<PrivateKey>,
    pub(crate) pem: String,
    pub(crate) effective: i64,
    pub(crate) expire: i64,
    /// When it leaves the listing (set when a newer one takes over).
    pub(crate) delist_at: Option<i64>,
}

/// The certificates, oldest first; the newest signs from `switch_at`, the one
/// before it until then.
#[derive(Debug)]
pub(crate) struct PlatformSet {
    entries: Vec<PlatformEntry>,
    switch_at: i64,
    rotations: u32,
}

/// What a rotation did (the admin call's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rotated {
    pub(crate) serial: String,
    pub(crate) previous: String,
    pub(crate) switch_at: i64,
    pub(crate) previous_delisted_at: i64,
}

impl PlatformSet {
    /// The configured platform key and certificate, effective a day before `now`.
    pub(crate) fn new(settings: &Settings, now: i64) -> Self {
        let effective = now.saturating_sub(86_400);
        Self {
            entries: vec![PlatformEntry {
                serial: settings.platform_certificate_serial.clone(),
                sign_serial: settings.platform_serial.clone(),
                key: Arc::clone(&settings.platform_key),
                pem: settings.platform_certificate_pem.clone(),
                effective,
                expire: effective.saturating_add(VALIDITY_SECS),
                delist_at: None,
            }],
            switch_at: i64::MIN,
            rotations: 0,
        }
    }

    /// The `Wechatpay-Serial` and key that sign answers at `now`.
    pub(crate) fn signer(&self, now: i64) -> Option<(&str, &PrivateKey)> {
        let n = self.entries.len();
        let index = if now >= self.switch_at {
            n.checked_sub(1)?
        } else {
            n.checked_sub(2)?
        };
        self.entries
            .get(index)
            .map(|e| (e.sign_serial.as_str(), e.key.as_ref()))
    }

    /// Adds a certificate made with rcgen for the next rotation key (the
    /// committed rotation key and the configured platform key, alternately),
    /// listed at once, signing from `now + switch_after`; the one it replaces
    /// stays listed until `keep_old` seconds after the switch.
    pub(crate) fn rotate(
        &mut self,
        settings: &Settings,
        now: i64,
        switch_after: i64,
        keep_old: i64,
    ) -> Result<Rotated, String> {
        let next = self.rotations.saturating_add(1);
        let (key_pem, key) = if next % 2 == 1 {
            (
                SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM,
                Arc::clone(&settings.rotation_key),
            )
        } else {
            (
                settings.platform_key_pem.as_str(),
                Arc::clone(&settings.platform_key),
            )
        };
        let serial = format!("{ROTATED_SERIAL_PREFIX}{:04X}", 0x0100_u32 + next);
        let pem = make_certificate(key_pem, &serial)?;
        let switch_at = now.saturating_add(switch_after);
        let previous_delisted_at = switch_at.saturating_add(keep_old);
        let previous = match self.signer(now.max(self.switch_at)) {
            Some((s, _)) => s.to_owned(),
            None => String::new(),
        };
        // Every older certificate leaves the listing once the new one has
        // taken over for `keep_old` seconds (or earlier, if already set).
        for e in &mut self.entries {
            let at = e
                .delist_at
                .map_or(previous_delisted_at, |d| d.min(previous_delisted_at));
            e.delist_at = Some(at);
        }
        self.entries.push(PlatformEntry {
            serial: serial.clone(),
            sign_serial: serial.clone(),
            key,
            pem,
            effective: switch_at,
            expire: switch_at.saturating_add(VALIDITY_SECS),
            delist_at: None,
        });
        // The previous signer keeps signing until the switch.
        self.switch_at = switch_at;
        self.rotations = next;
        Ok(Rotated {
            serial,
            previous,
            switch_at,
            previous_delisted_at,
        })
    }

    /// The `{"data": [...]}` listing at `now`, each certificate encrypted
    /// with the API v3 key; `nonce` draws a 12-character nonce per entry.
    pub(crate) fn listing(
        &self,
        api_key: &[u8; 32],
        now: i64,
        mut nonce: impl FnMut() -> String,
    ) -> Result<Value, String> {
        let mut data = Vec::new();
        for e in &self.entries {
            if e.delist_at.is_some_and(|d| now >= d) {
                continue;
            }
            let n = nonce();
            let nonce_bytes: [u8; 12] = n
                .as_bytes()
                .try_into()
                .map_err(|_| "nonce must be 12 bytes".to_owned())?;
            let ciphertext =
                seal_aes_256_gcm(api_key, &nonce_bytes, b"certificate", e.pem.as_bytes())?;
            data.push(json!({
                "serial_no": e.serial,
                "effective_time": rfc3339_china(e.effective),
                "expire_time": rfc3339_china(e.expire),
                "encrypt_certificate": {
                    "algorithm": "AEAD_AES_256_GCM",
                    "nonce": n,
                    "associated_data": "certificate",
                    "ciphertext": ciphertext,
                },
            }));
        }
        Ok(json!({ "data": data }))
    }
}

/// A self-signed certificate for the RSA key `key_pem` with `serial` (hex), by rcgen.
fn make_certificate(key_pem: &str, serial: &str) -> Result<String, String> {
    let key = rcgen::KeyPair::from_pem_and_sign_algo(key_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| format!("rotation key: {e}"))?;
    let serial_bytes = hex::decode(serial).map_err(|e| format!("serial: {e}"))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| format!("certificate parameters: {e}"))?;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial_bytes));
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "kicc-sandbox WeChat Pay platform certificate (rotated, SANDBOX ONLY)",
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "kicc-sandbox");
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
        .self_signed(&key)
        .map(|c| c.pem())
        .map_err(|e| format!("certificate: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechatpay::crypto::PublicKey;
    use crate::wechatpay::WechatpayConfig;
    use rustls_pki_types::pem::PemObject as _;

    #[test]
    fn rotation_lists_both_then_switches_then_delists() {
        let settings = WechatpayConfig::default().load().unwrap();
        let mut set = PlatformSet::new(&settings, 1_000);
        assert_eq!(set.signer(1_000).unwrap().0, settings.platform_serial);
        let r = set.rotate(&settings, 1_000, 10, 100).unwrap();
        assert_eq!(r.previous, settings.platform_serial);
        assert_eq!(r.serial, format!("{ROTATED_SERIAL_PREFIX}0101"));
        assert_eq!(set.signer(1_009).unwrap().0, settings.platform_serial);
        assert_eq!(set.signer(1_010).unwrap().0, r.serial);
        let key = [7u8; 32];
        let mut n = 0;
        let mut nonce = || {
            n += 1;
            format!("{n:012}")
        };
        let listed = |v: Value| -> Vec<String> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["serial_no"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            listed(set.listing(&key, 1_050, &mut nonce).unwrap()).len(),
            2
        );
        assert_eq!(
            listed(set.listing(&key, 1_110, &mut nonce).unwrap()),
            vec![r.serial.clone()]
        );
        // The rotated certificate is a real one for the rotation key, with its serial.
        let der = rustls_pki_types::CertificateDer::from_pem_slice(set.entries[1].pem.as_bytes())
            .unwrap();
        let (serial, public) = PublicKey::from_certificate_der(&der).unwrap();
        assert_eq!(serial, r.serial);
        assert_eq!(public, settings.rotation_key.public_key());
        // A second rotation goes back to the configured key, with a new serial.
        let r2 = set.rotate(&settings, 1_200, 0, 100).unwrap();
        assert_eq!(r2.serial, format!("{ROTATED_SERIAL_PREFIX}0102"));
        assert_eq!(r2.previous, r.serial);
        assert_eq!(set.signer(1_200).unwrap().0, r2.serial);
    }
}
