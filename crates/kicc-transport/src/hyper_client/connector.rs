//! The connectors under the pooled client.
//!
//! From the inside out:
//! - [`RouteConnector`]: a TCP connection (hyper-util's `HttpConnector`, bound to
//!   the configured local address) either to the destination, to the proxy for a
//!   plain `http://` destination (the request then goes out in absolute form), or
//!   through a `CONNECT` tunnel opened by hyper-util's [`Tunnel`] for `https://`.
//! - hyper-rustls' `HttpsConnector`: TLS to the destination over whatever the
//!   route gave, verified exactly as without a proxy.
//! - [`BoundedConnector`]: one deadline over the whole set-up, a counter of
//!   connection attempts, the plain-HTTP policy checked again, and every failure
//!   turned into a typed [`ConnectError`] that names the host and the proxy.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::Scheme;
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::policy;
use super::proxy::{proxy_label, Routes};
use crate::error::error_chain;
use crate::{ConnectError, ConnectErrorKind};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The error type of hyper-util's tunnel (not exported under its own name).
type TunnelError = <Tunnel<HttpConnector> as tower_service::Service<Uri>>::Error;

/// The connection type the pooled client gets from [`BoundedConnector`].
pub(crate) type Stream = MaybeHttpsStream<RoutedStream>;

/// The address `kicc sandbox serve` listens on by default.
const DEFAULT_SANDBOX_PORT: u16 = 8780;

/// A TCP connection as routed: to the destination, to a proxy that expects
/// absolute-form requests, or through a tunnel.
pub(crate) struct RoutedStream {
    io: TokioIo<TcpStream>,
    /// Connected to a plain-HTTP proxy: requests must use the absolute form.
    absolute_form: bool,
}

impl Connection for RoutedStream {
    fn connected(&self) -> Connected {
        let connected = self.io.connected();
        if self.absolute_form {
            connected.proxy(true)
        } else {
            connected
        }
    }
}

impl Read for RoutedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for RoutedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// Why [`RouteConnector`] could not open its connection.
#[derive(Debug)]
enum RouteError {
    /// Connecting straight to the destination failed.
    Direct(BoxError),
    /// The TCP connection to a plain-HTTP proxy failed.
    ProxyConnect { proxy: String, source: BoxError },
    /// Opening the `CONNECT` tunnel failed.
    Tunnel { proxy: String, error: TunnelError },
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteError::Direct(e) => write!(f, "{e}"),
            RouteError::ProxyConnect { proxy, source } => write!(f, "proxy {proxy}: {source}"),
            RouteError::Tunnel { proxy, error } => write!(f, "proxy {proxy}: {error}"),
        }
    }
}

impl StdError for RouteError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            RouteError::Direct(e) | RouteError::ProxyConnect { source: e, .. } => e.source(),
            RouteError::Tunnel { error, .. } => error.source(),
        }
    }
}

/// TCP to the destination or to its proxy (see the module docs).
#[derive(Clone)]
pub(crate) struct RouteConnector {
    http: HttpConnector,
    routes: Arc<Routes>,
}

impl RouteConnector {
    pub(crate) fn new(http: HttpConnector, routes: Arc<Routes>) -> Self {
        Self { http, routes }
    }
}

impl tower_service::Service<Uri> for RouteConnector {
    type Response = RoutedStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<RoutedStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let Some(intercept) = self.routes.intercept(&dst) else {
            let connecting = self.http.call(dst);
            return Box::pin(async move {
                match connecting.await {
                    Ok(io) => Ok(RoutedStream {
                        io,
                        absolute_form: false,
                    }),
                    Err(e) => Err(Box::new(RouteError::Direct(e.into())) as BoxError),
                }
            });
        };
        let proxy = proxy_label(intercept.uri());
        if dst.scheme() == Some(&Scheme::HTTPS) {
            let mut tunnel = Tunnel::new(intercept.uri().clone(), self.http.clone());
            if let Some(auth) = intercept.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            let tunnelling = tunnel.call(dst);
            Box::pin(async move {
                match tunnelling.await {
                    Ok(io) => Ok(RoutedStream {
                        io,
                        absolute_form: false,
                    }),
                    Err(error) => Err(Box::new(RouteError::Tunnel { proxy, error }) as BoxError),
                }
            })
        } else {
            let connecting = self.http.call(intercept.uri().clone());
            Box::pin(async move {
                match connecting.await {
                    Ok(io) => Ok(RoutedStream {
                        io,
                        absolute_form: true,
                    }),
                    Err(e) => Err(Box::new(RouteError::ProxyConnect {
                        proxy,
                        source: e.into(),
                    }) as BoxError),
                }
            })
        }
    }
}

/// hyper-rustls' connector over the routes, with one deadline over the whole
/// connection set-up, a counter of connection attempts shared by every clone,
/// and typed errors.
#[derive(Clone)]
pub(crate) struct BoundedConnector {
    inner: HttpsConnector<RouteConnector>,
    routes: Arc<Routes>,
    connect_timeout: Duration,
    local_address: Option<IpAddr>,
    attempts: Arc<AtomicU64>,
}

impl BoundedConnector {
    pub(crate) fn new(
        inner: HttpsConnector<RouteConnector>,
        routes: Arc<Routes>,
        connect_timeout: Duration,
        local_address: Option<IpAddr>,
        attempts: Arc<AtomicU64>,
    ) -> Self {
        Self {
            inner,
            routes,
            connect_timeout,
            local_address,
            attempts,
        }
    }
}

impl tower_service::Service<Uri> for BoundedConnector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        if dst.scheme() == Some(&Scheme::HTTP) && !dst.host().is_some_and(policy::is_loopback_host)
        {
            return Box::pin(async {
                Err(Box::new(ConnectError::new(
                    ConnectErrorKind::Other,
                    "plain http:// is allowed only to loopback hosts",
                )) as BoxError)
            });
        }
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let context = Target {
            host: dst.host().unwrap_or_default().to_owned(),
            port: dst
                .port_u16()
                .unwrap_or(if dst.scheme() == Some(&Scheme::HTTPS) {
                    443
                } else {
                    80
                }),
            proxy: self.routes.intercept(&dst).map(|i| proxy_label(i.uri())),
            local_address: self.local_address,
        };
        let connecting = self.inner.call(dst);
        let limit = self.connect_timeout;
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(error)) => Err(Box::new(context.classify(error)) as BoxError),
                Err(_elapsed) => Err(Box::new(context.timed_out(limit)) as BoxError),
            }
        })
    }
}

/// Where a connection was going, to describe its failure.
struct Target {
    host: String,
    port: u16,
    proxy: Option<String>,
    local_address: Option<IpAddr>,
}

impl Target {
    fn host_port(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn via(&self) -> String {
        match &self.proxy {
            Some(proxy) => format!(" through proxy {proxy}"),
            None => String::new(),
        }
    }

    fn timed_out(&self, limit: Duration) -> ConnectError {
        ConnectError::new(
            ConnectErrorKind::Timeout,
            format!(
                "connection to {}{} (DNS, TCP{} and TLS handshake) not established within {limit:?}",
                self.host_port(),
                self.via(),
                if self.proxy.is_some() { ", CONNECT" } else { "" },
            ),
        )
    }

    /// Turns whatever the connector stack returned into a typed error.
    fn classify(&self, error: BoxError) -> ConnectError {
        let error = match error.downcast::<RouteError>() {
            Ok(route) => return self.classify_route(*route),
            Err(error) => error,
        };
        if let Some(tls) = find::<rustls::Error>(&*error) {
            let mut message = format!(
                "TLS handshake with {}{} failed: {tls}",
                self.host_port(),
                self.via()
            );
            if matches!(
                tls,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            ) {
                if policy::is_loopback_host(&self.host) {
                    message.push_str(
                        "; the local server's certificate is signed by a root this client does \
                         not trust: for `kicc sandbox serve --tls`, pass its root certificate \
                         with `--root-cert PEM_FILE` (library: \
                         TransportConfig::add_root_certificates)",
                    );
                } else {
                    message.push_str(
                        "; the certificate is signed by a root this client does not trust \
                         (a TLS-inspecting proxy or private CA needs \
                         TransportConfig::add_root_certificates or native_roots)",
                    );
                }
            }
            return ConnectError::new(ConnectErrorKind::Tls, message).with_source(error);
        }
        ConnectError::new(
            ConnectErrorKind::Other,
            format!(
                "connection to {}{} failed: {}",
                self.host_port(),
                self.via(),
                error_chain(&*error)
            ),
        )
        .with_source(error)
    }

    fn classify_route(&self, error: RouteError) -> ConnectError {
        match error {
            RouteError::Direct(source) => self.classify_tcp(source),
            RouteError::ProxyConnect { proxy, source } => self.proxy_unreachable(&proxy, source),
            RouteError::Tunnel { proxy, error } => match error {
                TunnelError::ConnectFailed(source) => self.proxy_unreachable(&proxy, source),
                TunnelError::ProxyAuthRequired => ConnectError::new(
                    ConnectErrorKind::ProxyAuthentication,
                    format!(
                        "proxy {proxy} demands authentication (407) for the tunnel to {}; \
                         give user:password in the proxy URL, or check them; \
                         nothing was sent to {}",
                        self.host_port(),
                        self.host
                    ),
                ),
                TunnelError::Io(source) => ConnectError::new(
                    ConnectErrorKind::ProxyUnreachable,
                    format!(
                        "proxy {proxy} failed while opening the tunnel to {}: {source}; \
                         nothing was sent to {}",
                        self.host_port(),
                        self.host
                    ),
                )
                .with_source(source),
                other => ConnectError::new(
                    ConnectErrorKind::ProxyRejected,
                    format!(
                        "proxy {proxy} refused to open a tunnel to {} ({}); nothing was sent to {}",
                        self.host_port(),
                        tunnel_reason(&other),
                        self.host
                    ),
                ),
            },
        }
    }

    fn proxy_unreachable(&self, proxy: &str, source: BoxError) -> ConnectError {
        let (what, detail) = tcp_failure(&*source);
        let why = match what {
            TcpFailure::Dns => format!("the proxy's host name did not resolve: {detail}"),
            TcpFailure::Refused => "the proxy refused the connection".to_owned(),
            TcpFailure::Bind => {
                return self.bind_failed(source, detail);
            }
            TcpFailure::Other => detail,
        };
        ConnectError::new(
            ConnectErrorKind::ProxyUnreachable,
            format!(
                "proxy {proxy} unreachable ({why}); nothing was sent to {}",
                self.host_port()
            ),
        )
        .with_source(source)
    }

    fn bind_failed(&self, source: BoxError, detail: String) -> ConnectError {
        let local = self
            .local_address
            .map_or_else(|| "the local address".to_owned(), |ip| ip.to_string());
        ConnectError::new(
            ConnectErrorKind::LocalAddress,
            format!(
                "cannot use local address {local} for the connection to {}{}: {detail} \
                 (is it an address of this machine?)",
                self.host_port(),
                self.via()
            ),
        )
        .with_source(source)
    }

    fn classify_tcp(&self, source: BoxError) -> ConnectError {
        let (what, detail) = tcp_failure(&*source);
        let (kind, message) = match what {
            TcpFailure::Dns => (
                ConnectErrorKind::Dns,
                format!("could not resolve host {}: {detail}", self.host),
            ),
            TcpFailure::Refused => {
                let mut message = format!("connection refused by {}", self.host_port());
                let sandbox_host = self.host == "127.0.0.1" || self.host == "localhost";
                if sandbox_host && self.port == DEFAULT_SANDBOX_PORT {
                    message.push_str(
                        " (the default sandbox address): is `kicc sandbox serve` running?",
                    );
                }
                (ConnectErrorKind::Refused, message)
            }
            TcpFailure::Bind => return self.bind_failed(source, detail),
            TcpFailure::Other => (
                ConnectErrorKind::Other,
                format!("connection to {} failed: {detail}", self.host_port()),
            ),
        };
        ConnectError::new(kind, message).with_source(source)
    }
}

fn tunnel_reason(error: &TunnelError) -> &'static str {
    match error {
        TunnelError::ProxyHeadersTooLong => "its answer's headers are too long",
        TunnelError::TunnelUnexpectedEof => "it closed the connection without an answer",
        TunnelError::MissingHost => "the destination has no host",
        _ => "it answered CONNECT with an error status or not with HTTP",
    }
}

enum TcpFailure {
    Dns,
    Refused,
    Bind,
    Other,
}

/// What hyper-util's `HttpConnector` reported: its message says the step
/// (`dns error`, `tcp connect error`, `tcp bind local error`), its cause the
/// operating system's reason.
fn tcp_failure(error: &(dyn StdError + 'static)) -> (TcpFailure, String) {
    let step = error.to_string();
    let detail = error_chain(error);
    let what = if step == "dns error" {
        TcpFailure::Dns
    } else if step.starts_with("tcp bind") {
        TcpFailure::Bind
    } else if find::<io::Error>(error).is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
    {
        TcpFailure::Refused
    } else {
        TcpFailure::Other
    };
    (what, detail)
}

/// The first `T` in `error`'s chain, looking inside `io::Error`s too (whose
/// `source()` skips the error they wrap).
fn find<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = current
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            if let Some(found) = find::<T>(inner) {
                return Some(found);
            }
        }
        next = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_looks_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = io::Error::other(io::Error::new(io::ErrorKind::InvalidData, tls.clone()));
        assert_eq!(find::<rustls::Error>(&wrapped), Some(&tls));
        assert!(find::<rustls::Error>(&io::Error::other("plain")).is_none());
    }

    fn target(host: &str, port: u16) -> Target {
        Target {
            host: host.to_owned(),
            port,
            proxy: None,
            local_address: None,
        }
    }

    #[test]
    fn unknown_issuer_on_loopback_points_at_root_cert() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let error: BoxError = Box::new(io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            tls,
        )));
        let e = target("127.0.0.1", 8443).classify(error);
        assert_eq!(e.kind(), ConnectErrorKind::Tls);
        assert!(e.message().contains("--root-cert"), "{}", e.message());
        let error: BoxError = Box::new(io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        let remote = target("pgapi.example", 443).classify(error);
        assert!(
            !remote.message().contains("--root-cert"),
            "{}",
            remote.message()
        );
    }

    /// Stands in for hyper-util's `ConnectError`, whose message names the step.
    #[derive(Debug)]
    struct Step(&'static str, io::Error);
    impl std::fmt::Display for Step {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Step {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.1)
        }
    }

    fn direct(step: &'static str, kind: io::ErrorKind) -> BoxError {
        Box::new(RouteError::Direct(Box::new(Step(
            step,
            io::Error::from(kind),
        ))))
    }

    #[test]
    fn refused_at_the_default_sandbox_address_asks_for_the_sandbox() {
        let e = target("127.0.0.1", 8780).classify(direct(
            "tcp connect error",
            io::ErrorKind::ConnectionRefused,
        ));
        assert_eq!(e.kind(), ConnectErrorKind::Refused);
        assert!(
            e.message().ends_with("is `kicc sandbox serve` running?"),
            "{}",
            e.message()
        );
        let other = target("127.0.0.1", 8781).classify(direct(
            "tcp connect error",
            io::ErrorKind::ConnectionRefused,
        ));
        assert_eq!(other.kind(), ConnectErrorKind::Refused);
        assert!(!other.message().contains("sandbox"), "{}", other.message());
    }

    #[test]
    fn dns_failures_name_the_host_and_proxy_failures_the_proxy() {
        let e = target("pgapi.example", 443).classify(direct("dns error", io::ErrorKind::Other));
        assert_eq!(e.kind(), ConnectErrorKind::Dns);
        assert!(
            e.message().contains("could not resolve host pgapi.example"),
            "{}",
            e.message()
        );

        let proxied = Target {
            proxy: Some("proxy.corp:3128".to_owned()),
            ..target("pgapi.example", 443)
        };
        let e = proxied.classify(Box::new(RouteError::ProxyConnect {
            proxy: "proxy.corp:3128".to_owned(),
            source: Box::new(Step("dns error", io::Error::from(io::ErrorKind::Other))),
        }));
        assert_eq!(e.kind(), ConnectErrorKind::ProxyUnreachable);
        assert!(
            e.message().contains("proxy proxy.corp:3128"),
            "{}",
            e.message()
        );
        assert!(e.message().contains("did not resolve"), "{}", e.message());
        assert!(e.message().contains("pgapi.example:443"), "{}", e.message());
    }
}
