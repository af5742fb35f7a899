//! The `Transport` seam: one async method, a request in, a response out.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

/// A request as plain data: method, absolute URI, headers and the exact body bytes.
pub type HttpRequest = http::Request<Bytes>;
/// A complete response: status, headers and the whole body.
pub type HttpResponse = http::Response<Bytes>;

/// Sends one HTTP request and returns the complete response.
///
/// Implement this to use your own HTTP stack. The SDK never retries inside
/// `send`: one call is one attempt, and the retry decisions belong to
/// `kicc-core`. The future must be `Send` so clients work on multi-threaded
/// runtimes; nothing here ties you to a particular runtime.
///
/// ```
/// use kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};
///
/// /// A transport that answers every request with the same canned response.
/// struct Canned(&'static str);
///
/// impl Transport for Canned {
///     async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
///         Ok(http::Response::new(bytes::Bytes::from_static(self.0.as_bytes())))
///     }
/// }
/// ```
pub trait Transport: Send + Sync {
    /// Sends `request` once and returns the response, or says how it failed.
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send;
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send {
        (**self).send(request)
    }
}

impl<T: Transport + ?Sized> Transport for &T {
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send {
        (**self).send(request)
    }
}

/// Why one attempt produced no response.
///
/// The split that matters for money is [`TransportError::may_have_reached_server`]:
/// a request that never left (connection refused, DNS, TLS handshake, a proxy that
/// would not forward it) cannot have cancelled anything; one that timed out or lost
/// its connection after being written may have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No connection to the server could be made (DNS, refused, TLS handshake, the
    /// proxy's own failure): nothing was sent to the server. [`ConnectError::kind`]
    /// says which step failed.
    #[error(transparent)]
    Connect(ConnectError),
    /// The request was refused before sending, by policy (e.g. plain HTTP to a non-loopback host).
    #[error("request refused by the client: {0}")]
    Refused(String),
    /// No complete response within the per-attempt timeout; the request may have arrived.
    #[error("no response within {0:?}")]
    Timeout(std::time::Duration),
    /// The connection failed after the request may have been written.
    #[error("connection lost: {0}")]
    Io(String),
}

impl TransportError {
    /// `false` only when the request certainly never reached the server.
    pub fn may_have_reached_server(&self) -> bool {
        matches!(self, TransportError::Timeout(_) | TransportError::Io(_))
    }
}

/// Which step of opening a connection failed, for [`ConnectError`].
///
/// Every kind means the same thing for money: the request was not sent to the
/// server. The kinds say what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// The server's host name could not be resolved.
    Dns,
    /// The server refused the TCP connection (nothing listens on that port).
    Refused,
    /// The connection (DNS, TCP, proxy tunnel and TLS handshake together) was not
    /// established within the connect timeout.
    Timeout,
    /// The TLS handshake failed: untrusted or wrong certificate, no common protocol.
    Tls,
    /// The configured local (source) address could not be used.
    LocalAddress,
    /// The proxy itself could not be reached: its host name did not resolve, it
    /// refused the connection, or it closed it.
    ProxyUnreachable,
    /// The proxy demands authentication (HTTP 407): no credentials were given, or
    /// it rejected the ones given.
    ProxyAuthentication,
    /// The proxy refused to forward the request or open the tunnel (a `CONNECT`
    /// answer other than 200, or one that is not HTTP).
    ProxyRejected,
    /// Anything else that kept the connection from being established.
    Other,
}

impl ConnectErrorKind {
    /// `true` for the kinds that are the proxy's own failure.
    pub fn is_proxy(self) -> bool {
        matches!(
            self,
            ConnectErrorKind::ProxyUnreachable
                | ConnectErrorKind::ProxyAuthentication
                | ConnectErrorKind::ProxyRejected
        )
    }
}

/// A connection that could not be established: a [`ConnectErrorKind`] and a
/// one-line message that names the host (and the proxy, without its
/// credentials) and, where it helps, what to do.
///
/// `source()` returns the underlying error (an `std::io::Error`, a rustls
/// error, ...) when there is one. Two `ConnectError`s are equal when their kind
/// and message are.
#[derive(Clone)]
pub struct ConnectError {
    kind: ConnectErrorKind,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ConnectError {
    /// A connect error of `kind`, described by `message`.
    pub fn new(kind: ConnectErrorKind, message: impl Into<String>) -> Self {
        ConnectError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error, with the underlying cause that `source()` returns.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// Which step failed.
    pub fn kind(&self) -> ConnectErrorKind {
        self.kind
    }

    /// The message, without the `could not connect: ` prefix that `Display` adds.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<String> for ConnectError {
    /// A [`ConnectErrorKind::Other`] error with this message.
    fn from(message: String) -> Self {
        ConnectError::new(ConnectErrorKind::Other, message)
    }
}

impl From<&str> for ConnectError {
    /// A [`ConnectErrorKind::Other`] error with this message.
    fn from(message: &str) -> Self {
        ConnectError::new(ConnectErrorKind::Other, message)
    }
}

impl PartialEq for ConnectError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for ConnectError {}

impl fmt::Debug for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source.as_deref().map(chain))
            .finish()
    }
}

/// An error and its causes on one line: `a: b: c`.
fn chain(error: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not connect: {}", self.message)
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn connect_error_displays_as_before_and_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = TransportError::Connect(
            ConnectError::new(ConnectErrorKind::Refused, "connection refused by h:1")
                .with_source(io),
        );
        assert_eq!(
            e.to_string(),
            "could not connect: connection refused by h:1"
        );
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("refused")
        );
        assert!(!e.may_have_reached_server());
        let plain = TransportError::Connect("refused".into());
        assert_eq!(plain.to_string(), "could not connect: refused");
        assert!(matches!(plain, TransportError::Connect(c) if c.kind() == ConnectErrorKind::Other));
    }
}
