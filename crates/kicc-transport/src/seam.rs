//! The `Transport` seam: one async method, a request in, a response out.

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
/// a request that never left (connection refused, DNS, TLS handshake) cannot
/// have cancelled anything; one that timed out or lost its connection after
/// being written may have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No connection could be made (DNS, refused, TLS handshake): nothing was sent.
    #[error("could not connect: {0}")]
    Connect(String),
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
