//! [`TransportConfig`]: how a [`HyperTransport`] is built.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::connector::{BoundedConnector, RouteConnector};
use super::error::{ConfigError, NativeLoadErrors};
use super::proxy::{redact, ProxySettings, Routes};
use super::transport::{HyperTransport, Inner};

/// The default per-attempt timeout: 30 s, the figure KICC documents for every call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit for establishing a connection (DNS, TCP and TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time an idle pooled connection is kept before it is closed.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The default number of idle connections kept per host.
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 8;
/// The default limit for a response body: 1 MiB (KICC's responses are a few hundred bytes).
pub const DEFAULT_MAX_RESPONSE_BODY_SIZE: usize = 1024 * 1024;
/// The `User-Agent` sent when a request carries none: `kicc-rs/<crate version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("kicc-rs/", env!("CARGO_PKG_VERSION"));

impl HyperTransport {
    /// A transport with the default [`TransportConfig`] (Mozilla's roots, 30 s
    /// per attempt, 10 s to connect, 1 MiB response limit).
    pub fn new() -> Result<Self, ConfigError> {
        TransportConfig::default().build()
    }

    /// Starts a [`TransportConfig`] with the defaults; finish with
    /// [`TransportConfig::build`].
    pub fn builder() -> TransportConfig {
        TransportConfig::default()
    }
}

/// Which built-in set of roots to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BaseRoots {
    /// Mozilla's roots compiled in (webpki-roots).
    WebPki,
    /// The operating system's store (rustls-native-certs), read at build time.
    Native,
    /// None: only the PEM certificates given.
    Empty,
}

/// Settings for a [`HyperTransport`]; obtain with [`HyperTransport::builder`]
/// or [`TransportConfig::default`], then call [`build`](Self::build).
///
/// Every setter consumes and returns the config, so calls chain. Setters are
/// named after the setting (`timeout`, `proxy`; `add_` for those that accumulate),
/// like `reqwest::ClientBuilder`; the built [`HyperTransport`] reads them back with
/// getters of the same names. Nothing is validated until `build`, which names the
/// offending setting in its error.
///
/// There is deliberately no way to turn certificate verification off: to talk
/// to a test server with a self-signed certificate, trust that certificate's
/// root with [`add_root_certificates`](Self::add_root_certificates)
/// or [`root_certificates_only`](Self::root_certificates_only).
///
/// ```
/// use std::time::Duration;
/// use kicc_transport::HyperTransport;
///
/// let transport = HyperTransport::builder()
///     .timeout(Duration::from_secs(15))
///     .connect_timeout(Duration::from_secs(3))
///     .user_agent("my-shop/2.1 kicc-rs")
///     .build()?;
/// assert_eq!(transport.timeout(), Duration::from_secs(15));
/// # Ok::<(), kicc_transport::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use = "a TransportConfig does nothing until `build` is called"]
pub struct TransportConfig {
    timeout: Duration,
    connect_timeout: Duration,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    user_agent: String,
    max_response_body_size: usize,
    base_roots: BaseRoots,
    extra_roots_pem: Vec<Vec<u8>>,
    proxy: ProxyChoice,
    no_proxy_hosts: Option<String>,
    local_address: Option<IpAddr>,
}

/// Where the proxy settings come from.
#[derive(Clone, PartialEq, Eq)]
enum ProxyChoice {
    /// The environment, read by `build`.
    Env,
    /// Never a proxy.
    Disabled,
    /// This proxy for every destination; `NO_PROXY` from the environment unless
    /// `no_proxy_hosts` is set.
    Url(String),
    /// Exactly these settings.
    Settings(ProxySettings),
}

impl fmt::Debug for ProxyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyChoice::Env => f.write_str("FromEnvironment"),
            ProxyChoice::Disabled => f.write_str("Disabled"),
            ProxyChoice::Url(url) => f.debug_tuple("Url").field(&redact(url)).finish(),
            ProxyChoice::Settings(settings) => settings.fmt(f),
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            max_response_body_size: DEFAULT_MAX_RESPONSE_BODY_SIZE,
            base_roots: BaseRoots::WebPki,
            extra_roots_pem: Vec::new(),
            proxy: ProxyChoice::Env,
            no_proxy_hosts: None,
            local_address: None,
        }
    }
}

impl fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportConfig")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("pool_max_idle_per_host", &self.pool_max_idle_per_host)
            .field("user_agent", &self.user_agent)
            .field("max_response_body_size", &self.max_response_body_size)
            .field("base_roots", &self.base_roots)
            .field("extra_root_pem_count", &self.extra_roots_pem.len())
            .field("proxy", &self.proxy)
            .field("no_proxy_hosts", &self.no_proxy_hosts)
            .field("local_address", &self.local_address)
            .finish()
    }
}

impl TransportConfig {
    /// The defaults: 30 s per attempt, 10 s to connect, Mozilla's roots,
    /// 1 MiB response limit, `User-Agent: kicc-rs/<version>`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The limit for one whole attempt: connecting, sending, and reading the
    /// complete response body. Default [`DEFAULT_TIMEOUT`] (30 s).
    ///
    /// When it expires the attempt fails with
    /// [`TransportError::Timeout`](crate::TransportError::Timeout): the request may
    /// have arrived. Keep it longer than the connect timeout, or connection
    /// failures will be reported as timeouts (safe, but less informative).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The limit for establishing a new connection: DNS, TCP and the TLS
    /// handshake together. Default [`DEFAULT_CONNECT_TIMEOUT`] (10 s).
    ///
    /// When it expires the attempt fails with
    /// [`TransportError::Connect`](crate::TransportError::Connect): nothing was sent.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept. Default
    /// [`DEFAULT_POOL_IDLE_TIMEOUT`] (30 s), below common server keep-alive
    /// limits so that a pooled connection is rarely closed under a request.
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How many idle connections are kept per host. Default
    /// [`DEFAULT_POOL_MAX_IDLE_PER_HOST`]; `0` disables connection reuse.
    pub fn pool_max_idle_per_host(mut self, max_idle: usize) -> Self {
        self.pool_max_idle_per_host = max_idle;
        self
    }

    /// The `User-Agent` set on requests that do not carry one. Default
    /// [`DEFAULT_USER_AGENT`] (`kicc-rs/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The largest response body accepted, in bytes. Default
    /// [`DEFAULT_MAX_RESPONSE_BODY_SIZE`] (1 MiB). A larger body fails the
    /// attempt with [`TransportError::Io`](crate::TransportError::Io) (the
    /// request did reach the server).
    pub fn max_response_body_size(mut self, bytes: usize) -> Self {
        self.max_response_body_size = bytes;
        self
    }

    /// Trust Mozilla's root certificates, compiled in (the default).
    /// Certificates added with
    /// [`add_root_certificates`](Self::add_root_certificates) are kept.
    pub fn webpki_roots(mut self) -> Self {
        self.base_roots = BaseRoots::WebPki;
        self
    }

    /// Trust the operating system's certificate store instead of the compiled-in
    /// roots. The store is read by [`build`](Self::build) (blocking file reads:
    /// build the transport once at start-up, not inside a request handler).
    /// Certificates added with
    /// [`add_root_certificates`](Self::add_root_certificates) are kept.
    pub fn native_roots(mut self) -> Self {
        self.base_roots = BaseRoots::Native;
        self
    }

    /// Also trust the certificates in `pem` (one or more `CERTIFICATE` blocks),
    /// on top of the built-in roots: for the sandbox's self-signed root or a
    /// private CA. May be called several times; other PEM blocks (keys) are ignored.
    pub fn add_root_certificates(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.extra_roots_pem.push(pem.as_ref().to_vec());
        self
    }

    /// Trust ONLY the certificates in `pem` (and any added later with
    /// [`add_root_certificates`](Self::add_root_certificates)):
    /// no built-in roots. For tests against a server with its own root, so that
    /// nothing else can be trusted by accident.
    pub fn root_certificates_only(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.base_roots = BaseRoots::Empty;
        self.extra_roots_pem.clear();
        self.extra_roots_pem.push(pem.as_ref().to_vec());
        self
    }

    /// Sends every request through the HTTP proxy at `url`
    /// (`http://[user:password@]host:port`) instead of the proxies named by the
    /// environment. `NO_PROXY` from the environment still exempts its
    /// destinations, unless [`no_proxy_hosts`](Self::no_proxy_hosts) replaces it.
    ///
    /// `https://` destinations go through a `CONNECT` tunnel, with TLS to the
    /// destination verified exactly as without a proxy; `http://` destinations
    /// (loopback only) are sent to the proxy in absolute form. `user:password`
    /// (percent-encoded) is sent as HTTP Basic `Proxy-Authorization` and never
    /// appears in `Debug`, logs or errors.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxyChoice::Url(url.into());
        self
    }

    /// Never use a proxy, whatever the environment says.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyChoice::Disabled;
        self
    }

    /// Read the proxies from the environment when [`build`](Self::build) runs
    /// (the default): `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`,
    /// upper case first, with curl's rules (see [`ProxySettings`]).
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy = ProxyChoice::Env;
        self
    }

    /// Exactly these proxy settings; nothing is read from the environment.
    pub fn proxy_settings(mut self, settings: ProxySettings) -> Self {
        self.proxy = ProxyChoice::Settings(settings);
        self
    }

    /// The destinations that bypass the proxy, in `NO_PROXY` syntax (see
    /// [`ProxySettings::no_proxy`]), replacing whatever the environment or the
    /// proxy settings say.
    pub fn no_proxy_hosts(mut self, hosts: impl Into<String>) -> Self {
        self.no_proxy_hosts = Some(hosts.into());
        self
    }

    /// Binds every outgoing connection (to the server or to the proxy) to this
    /// local IP address, for an egress address registered with the gateway.
    /// Only connections of the same IP family are bound. Default: none, the
    /// operating system chooses. An address this machine does not have fails
    /// each attempt with [`ConnectErrorKind::LocalAddress`](crate::ConnectErrorKind::LocalAddress).
    pub fn local_address(mut self, address: impl Into<Option<IpAddr>>) -> Self {
        self.local_address = address.into();
        self
    }

    /// The proxy settings this config stands for, reading the environment where
    /// it says so.
    fn resolve_proxy_settings(&self) -> Option<ProxySettings> {
        let env = |name: &str| std::env::var(name).ok();
        let mut settings = match &self.proxy {
            ProxyChoice::Disabled => return None,
            ProxyChoice::Env => ProxySettings::from_env(),
            ProxyChoice::Url(url) => {
                let settings = ProxySettings::all(url.clone());
                match ProxySettings::no_proxy_from_vars(env) {
                    Some(list) => settings.no_proxy(list),
                    None => settings,
                }
            }
            ProxyChoice::Settings(settings) => settings.clone(),
        };
        if let Some(list) = &self.no_proxy_hosts {
            settings = settings.no_proxy(list.clone());
        }
        Some(settings)
    }

    /// Validates the settings and builds the transport with its connection pool.
    ///
    /// Needs no runtime; the transport itself must be used inside a Tokio
    /// runtime with IO and time enabled.
    pub fn build(&self) -> Result<HyperTransport, ConfigError> {
        for (field, value) in [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
            ("pool_idle_timeout", self.pool_idle_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.max_response_body_size == 0 {
            return Err(ConfigError::Zero {
                field: "max_response_body_size",
            });
        }
        let user_agent = HeaderValue::from_str(&self.user_agent)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::InvalidUserAgent)?;

        let routes = Arc::new(match self.resolve_proxy_settings() {
            Some(settings) => Routes::new(&settings)?,
            None => Routes::direct(),
        });

        let tls = self.tls_config()?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.set_local_address(self.local_address);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(RouteConnector::new(http, Arc::clone(&routes)));
        let attempts = Arc::new(AtomicU64::new(0));
        let connector = BoundedConnector::new(
            https,
            Arc::clone(&routes),
            self.connect_timeout,
            self.local_address,
            Arc::clone(&attempts),
        );
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);

        Ok(HyperTransport::from_inner(Inner {
            client,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            pool_idle_timeout: self.pool_idle_timeout,
            pool_max_idle_per_host: self.pool_max_idle_per_host,
            max_response_body_size: self.max_response_body_size,
            user_agent,
            attempts,
            routes,
            local_address: self.local_address,
        }))
    }

    /// rustls with the ring provider, TLS 1.3 and 1.2 only, the chosen roots.
    /// ALPN (`h2`, `http/1.1`) is filled in by hyper-rustls' builder.
    fn tls_config(&self) -> Result<ClientConfig, ConfigError> {
        let roots = self.root_store()?;
        client_config(rustls::crypto::ring::default_provider(), roots)
    }

    fn root_store(&self) -> Result<RootCertStore, ConfigError> {
        let mut store = RootCertStore::empty();
        match self.base_roots {
            BaseRoots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            BaseRoots::Native => {
                let loaded = rustls_native_certs::load_native_certs();
                let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
                if added == 0 {
                    return Err(native_roots_error(loaded.errors));
                }
            }
            BaseRoots::Empty => {}
        }
        let mut cert_index = 0usize;
        for (pem_index, pem) in self.extra_roots_pem.iter().enumerate() {
            let mut found = false;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| ConfigError::InvalidPem {
                    index: pem_index,
                    source: Box::new(e),
                })?;
                store.add(cert).map_err(|e| ConfigError::BadCertificate {
                    index: cert_index,
                    source: Box::new(e),
                })?;
                cert_index += 1;
                found = true;
            }
            if !found {
                return Err(ConfigError::NoCertificateInPem { index: pem_index });
            }
        }
        // Never empty here: every base set is non-empty or failed above, and
        // every PEM argument contributed at least one certificate.
        Ok(store)
    }
}

/// rustls with `provider`, TLS 1.3 and 1.2 only, trusting `roots`.
fn client_config(
    provider: rustls::crypto::CryptoProvider,
    roots: RootCertStore,
) -> Result<ClientConfig, ConfigError> {
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError::Tls {
            source: Box::new(e),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The system store gave no usable certificate; `errors` are what loading it reported.
fn native_roots_error(mut errors: Vec<rustls_native_certs::Error>) -> ConfigError {
    let (summary, source): (String, Option<Box<dyn std::error::Error + Send + Sync>>) =
        match errors.len() {
            0 => (
                "the system store holds no usable certificate".to_owned(),
                None,
            ),
            1 => (
                "reading the system store failed".to_owned(),
                errors.pop().map(|e| Box::new(e) as _),
            ),
            n => (
                format!("reading the system store failed {n} times"),
                Some(Box::new(NativeLoadErrors(errors))),
            ),
        };
    ConfigError::NativeRoots { summary, source }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::path::PathBuf;

    use super::*;
    use crate::error::error_chain;

    #[test]
    fn a_provider_rustls_refuses_is_a_tls_error_with_its_cause() {
        // No cipher suite for TLS 1.3 or 1.2: rustls refuses the versions.
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: Vec::new(),
            ..rustls::crypto::ring::default_provider()
        };
        let err = client_config(provider, RootCertStore::empty()).expect_err("no cipher suites");
        assert!(matches!(err, ConfigError::Tls { .. }), "{err:?}");
        assert_eq!(err.to_string(), "TLS configuration rejected by rustls");
        let cause = err.source().expect("Tls keeps rustls' error");
        assert!(cause.downcast_ref::<rustls::Error>().is_some(), "{cause:?}");
        assert_eq!(
            error_chain(&err),
            "TLS configuration rejected by rustls: unexpected error: no usable cipher suites configured"
        );
    }

    fn unreadable(path: &str) -> rustls_native_certs::Error {
        rustls_native_certs::Error {
            context: "failed to read PEM from file",
            kind: rustls_native_certs::ErrorKind::Io {
                inner: std::io::Error::from(std::io::ErrorKind::NotFound),
                path: PathBuf::from(path),
            },
        }
    }

    #[test]
    fn one_native_load_error_is_kept_as_the_cause() {
        let err = native_roots_error(vec![unreadable("/nowhere/ca.pem")]);
        assert_eq!(
            err.to_string(),
            "native root certificates could not be loaded: reading the system store failed"
        );
        let cause = err.source().expect("NativeRoots keeps the load error");
        let cause = cause
            .downcast_ref::<rustls_native_certs::Error>()
            .expect("the rustls-native-certs error itself");
        assert!(cause.to_string().contains("/nowhere/ca.pem"), "{cause}");
        // The io::Error below it stays reachable too.
        assert!(cause.source().is_some());
    }

    #[test]
    fn several_native_load_errors_are_all_reported() {
        let err = native_roots_error(vec![unreadable("/a.pem"), unreadable("/b.pem")]);
        assert_eq!(
            err.to_string(),
            "native root certificates could not be loaded: reading the system store failed 2 times"
        );
        let cause = err
            .source()
            .expect("NativeRoots keeps the load errors")
            .to_string();
        assert!(
            cause.contains("/a.pem") && cause.contains("; ") && cause.contains("/b.pem"),
            "{cause}"
        );
    }

    #[test]
    fn an_empty_native_store_has_no_cause_to_keep() {
        let err = native_roots_error(Vec::new());
        assert_eq!(
            err.to_string(),
            "native root certificates could not be loaded: the system store holds no usable certificate"
        );
        assert!(err.source().is_none());
    }
}
