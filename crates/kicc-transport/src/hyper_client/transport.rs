//! [`HyperTransport`]: the pooled hyper client behind the [`Transport`] seam.

use std::error::Error as StdError;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{PROXY_AUTHORIZATION, USER_AGENT};
use http::HeaderValue;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;

use super::connector::BoundedConnector;
use super::policy;
use super::proxy::{proxy_label, Routes};
use crate::error::error_chain;
use crate::{
    ConnectError, ConnectErrorKind, HttpRequest, HttpResponse, IoError, IoErrorKind, RefusedError,
    RefusedKind, Transport, TransportError,
};

/// The default [`Transport`]: hyper 1 over hyper-rustls (ring), with a
/// connection pool, HTTP/2 or HTTP/1.1 chosen by ALPN, and timeouts.
///
/// Cloning is cheap and clones share ONE connection pool, so build one
/// transport at start-up and hand clones to every client.
///
/// What it guarantees:
/// - **TLS**: rustls with the ring provider, TLS 1.2 or 1.3, certificates
///   always verified (Mozilla's roots by default; see [`TransportConfig`](crate::TransportConfig) for the
///   OS store and extra roots). There is no switch to disable verification.
/// - **Plain HTTP only to loopback** (`127.0.0.0/8`, `::1`, `localhost`), for the
///   sandbox. Anything else over `http://` is refused with
///   [`TransportError::Refused`] before any DNS lookup or connection.
/// - **One attempt per call**: the whole attempt (connect, send, read the full
///   body) is bounded by [`TransportConfig::timeout`](crate::TransportConfig::timeout) (30 s by default).
/// - **Proxies**: those of the environment by default (`HTTPS_PROXY`,
///   `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, curl's rules), or explicit ones (see
///   [`TransportConfig::proxy`](crate::TransportConfig::proxy) and [`ProxySettings`](crate::ProxySettings)); `https://` through a
///   `CONNECT` tunnel with TLS to the server verified as without a proxy. The
///   plain-HTTP rule above applies to the server, not to the proxy.
/// - **Errors that never lie about money**: [`TransportError::Connect`] only
///   when no connection was established (refused, DNS, connect timeout, TLS
///   handshake failure, the proxy's own failure or its 407), so nothing was
///   sent; its [`ConnectError::kind`] says which step failed; [`TransportError::Timeout`] when
///   the attempt ran out of time; [`TransportError::Io`] for anything after the
///   request may have been written (connection lost, malformed or oversized response).
/// - The response body is collected up to [`TransportConfig::max_response_body_size`](crate::TransportConfig::max_response_body_size)
///   (1 MiB by default) without copying the request body: it stays [`Bytes`].
/// - **No hidden resends**, with one exception that cannot duplicate a cancel:
///   hyper-util's pool resends a request on a fresh connection only when a
///   pooled connection turned out to be closed before a single byte of the
///   request was written.
///
/// Pooling: an HTTP/1.1 connection returns to the pool from a background
/// task once its response is fully read, so on a multi-threaded runtime a
/// request started at that very instant may open a second connection, which
/// then joins the pool (bounded by [`TransportConfig::pool_max_idle_per_host`](crate::TransportConfig::pool_max_idle_per_host)).
/// HTTP/2 connections are shared at once.
///
/// Requires a Tokio runtime with IO and time enabled (`#[tokio::main]` has both).
///
/// ```no_run
/// use kicc_transport::{HyperTransport, Transport};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = HyperTransport::new()?;
/// let request = http::Request::post("https://testpgapi.easypay.co.kr/api/trades/revise")
///     .header("content-type", "application/json")
///     .body(bytes::Bytes::from_static(b"{}"))?;
/// let response = transport.send(request).await?;
/// println!("{} {:?}", response.status(), response.body());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HyperTransport {
    inner: Arc<Inner>,
}

/// What a built transport holds: the pooled client and the settings it was built with.
pub(super) struct Inner {
    pub(super) client: Client<BoundedConnector, Full<Bytes>>,
    pub(super) timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) pool_idle_timeout: Duration,
    pub(super) pool_max_idle_per_host: usize,
    pub(super) max_response_body_size: usize,
    pub(super) user_agent: HeaderValue,
    pub(super) attempts: Arc<AtomicU64>,
    pub(super) routes: Arc<Routes>,
    pub(super) local_address: Option<IpAddr>,
}

impl fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("timeout", &self.inner.timeout)
            .field("max_response_body_size", &self.inner.max_response_body_size)
            .field("user_agent", &self.inner.user_agent)
            .field("connection_attempts", &self.connection_attempts())
            .field("local_address", &self.inner.local_address)
            .finish_non_exhaustive()
    }
}

impl HyperTransport {
    /// The transport around `inner` (what [`TransportConfig::build`](crate::TransportConfig::build) made).
    pub(super) fn from_inner(inner: Inner) -> Self {
        HyperTransport {
            inner: Arc::new(inner),
        }
    }

    /// The per-attempt timeout this transport applies.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The limit for establishing a new connection (DNS, TCP, proxy tunnel and
    /// TLS handshake together).
    pub fn connect_timeout(&self) -> Duration {
        self.inner.connect_timeout
    }

    /// How long an idle pooled connection is kept.
    pub fn pool_idle_timeout(&self) -> Duration {
        self.inner.pool_idle_timeout
    }

    /// How many idle connections are kept per host (`0`: no reuse).
    pub fn pool_max_idle_per_host(&self) -> usize {
        self.inner.pool_max_idle_per_host
    }

    /// The `User-Agent` set on requests that carry none.
    pub fn user_agent(&self) -> &HeaderValue {
        &self.inner.user_agent
    }

    /// The largest response body this transport accepts, in bytes.
    pub fn max_response_body_size(&self) -> usize {
        self.inner.max_response_body_size
    }

    /// The proxy a request to `destination` goes through (its URL without
    /// credentials), or `None` when it connects directly: after the
    /// environment, the explicit settings and `NO_PROXY` have had their say.
    pub fn proxy_for(&self, destination: &http::Uri) -> Option<http::Uri> {
        self.inner
            .routes
            .intercept(destination)
            .map(|i| i.uri().clone())
    }

    /// The local IP address outgoing connections are bound to, if any.
    pub fn local_address(&self) -> Option<IpAddr> {
        self.inner.local_address
    }

    /// How many new connections this transport and its clones have started to
    /// open (each one a DNS lookup, TCP connect and, for HTTPS, a TLS handshake).
    /// Requests served from the pool and requests refused by policy do not count.
    pub fn connection_attempts(&self) -> u64 {
        self.inner.attempts.load(Ordering::Relaxed)
    }
}

impl Transport for HyperTransport {
    async fn send(&self, mut request: HttpRequest) -> Result<HttpResponse, TransportError> {
        policy::check_destination(request.uri())?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TransportError::Refused(RefusedError::new(
                RefusedKind::NoRuntime,
                "HyperTransport must be used inside a Tokio runtime",
            )));
        }
        let inner = &*self.inner;
        if !request.headers().contains_key(USER_AGENT) {
            request
                .headers_mut()
                .insert(USER_AGENT, inner.user_agent.clone());
        }
        // A plain-http:// destination behind a proxy: the request itself goes to the
        // proxy (absolute form), so it carries the proxy's credentials.
        let plain_proxy = match request.uri().scheme() {
            Some(scheme) if *scheme == http::uri::Scheme::HTTP => {
                inner.routes.intercept(request.uri())
            }
            _ => None,
        };
        if let Some(auth) = plain_proxy.as_ref().and_then(|i| i.basic_auth()) {
            request
                .headers_mut()
                .insert(PROXY_AUTHORIZATION, auth.clone());
        }
        let attempt = async {
            let response = inner.attempt(request).await?;
            match &plain_proxy {
                // Only a proxy answers 407: it did not forward the request.
                Some(proxy)
                    if response.status() == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED =>
                {
                    Err(TransportError::Connect(ConnectError::new(
                        ConnectErrorKind::ProxyAuthentication,
                        format!(
                            "proxy {} demands authentication (407); give user:password in \
                             the proxy URL, or check them; the request was not forwarded",
                            proxy_label(proxy.uri())
                        ),
                    )))
                }
                _ => Ok(response),
            }
        };
        let result = match tokio::time::timeout(inner.timeout, attempt).await {
            Ok(result) => result,
            Err(_elapsed) => Err(TransportError::Timeout(inner.timeout)),
        };
        if let Err(error) = &result {
            tracing::debug!(%error, "kicc-transport attempt failed");
        }
        result
    }
}

impl Inner {
    /// One attempt, unbounded in time (the caller applies the timeout).
    async fn attempt(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let response = self
            .client
            .request(request.map(Full::new))
            .await
            .map_err(|e| {
                if e.is_connect() {
                    TransportError::Connect(connect_error(e))
                } else {
                    TransportError::Io(IoError::new(io_kind(&e), error_chain(&e)).with_source(e))
                }
            })?;
        let (parts, body) = response.into_parts();
        let limit = self.max_response_body_size;
        let collected = Limited::new(body, limit).collect().await.map_err(|e| {
            let error = if e.is::<LengthLimitError>() {
                IoError::new(
                    IoErrorKind::ResponseTooLarge,
                    format!("response body exceeds the limit of {limit} bytes"),
                )
            } else {
                IoError::new(
                    io_kind(&*e),
                    format!("reading the response body: {}", error_chain(&*e)),
                )
            };
            TransportError::Io(error.with_source(e))
        })?;
        Ok(http::Response::from_parts(parts, collected.to_bytes()))
    }
}

/// The typed error the connector left in a connect failure's chain, or one
/// made from its description (keeping the error as its source).
fn connect_error(error: hyper_util::client::legacy::Error) -> ConnectError {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<ConnectError>() {
            return found.clone();
        }
        source = cause.source();
    }
    ConnectError::new(ConnectErrorKind::Other, error_chain(&error)).with_source(error)
}

/// What a failure after the request may have been written was, from hyper's and the
/// operating system's errors in its chain.
fn io_kind(error: &(dyn StdError + 'static)) -> IoErrorKind {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(hyper) = current.downcast_ref::<hyper::Error>() {
            if hyper.is_parse() {
                return IoErrorKind::MalformedResponse;
            }
            if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() {
                return IoErrorKind::ConnectionLost;
            }
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) {
                return IoErrorKind::ConnectionLost;
            }
        }
        next = current.source();
    }
    IoErrorKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_is_send_sync_and_clones_share_the_pool() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<HyperTransport>();
        let a = HyperTransport::new().expect("default config builds");
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.inner, &b.inner));
    }
}
