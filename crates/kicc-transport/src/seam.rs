//! The `Transport` seam: one async method, a request in, a response out.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::TransportError;

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
