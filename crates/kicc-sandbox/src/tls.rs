//! Generated TLS material: a local root and a server certificate it signs.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::SandboxError;

/// What the server needs for HTTPS, and the root clients must trust.
pub(crate) struct TlsMaterial {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) root_pem: String,
}

fn tls_err(what: &str) -> impl Fn(rcgen::Error) -> SandboxError + '_ {
    move |e| SandboxError::Tls(format!("{what}: {e}"))
}

/// A fresh root (kept only in memory) and a server certificate for
/// `localhost`, `127.0.0.1` and `::1`; ALPN offers h2 and http/1.1.
pub(crate) fn generate() -> Result<TlsMaterial, SandboxError> {
    let ca_key = KeyPair::generate().map_err(tls_err("root key"))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err("root"))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kicc-sandbox local root (test only)");
    let ca = ca_params.self_signed(&ca_key).map_err(tls_err("root"))?;

    let leaf_key = KeyPair::generate().map_err(tls_err("server key"))?;
    let mut leaf_params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(tls_err("server certificate"))?;
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "kicc-sandbox");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .map_err(tls_err("server certificate"))?;

    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SandboxError::Tls(format!("protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key_der)
        .map_err(|e| SandboxError::Tls(format!("server certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        root_pem: ca.pem(),
    })
}
