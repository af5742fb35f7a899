//! The transport layer of kicc-rs: how a request built by the protocol crates
//! actually travels.
//!
//! # The seam
//!
//! [`Transport`] is one async method: an [`HttpRequest`] (`http::Request<Bytes>`:
//! method, absolute URI, headers, the exact body bytes) in, an [`HttpResponse`]
//! (`http::Response<Bytes>`, the complete body) out. One call is one attempt;
//! the SDK decides about retries elsewhere. A failed attempt is a
//! [`TransportError`], whose one question that matters for money is
//! [`TransportError::may_have_reached_server`]: after `Connect` or `Refused`
//! the cancel certainly did not happen; after `Timeout` or `Io` it may have,
//! so the caller must query before acting. Each variant's payload says which
//! step failed ([`ConnectErrorKind`], [`RefusedKind`], [`IoErrorKind`]) and keeps
//! the underlying io, hyper or rustls error as `source()`.
//!
//! # The default client
//!
//! With the default feature `hyper-client`, [`HyperTransport`] implements the
//! seam with hyper 1, hyper-util's pooled client and hyper-rustls (ring): HTTP/2
//! or HTTP/1.1 by ALPN, TLS 1.2+ with certificates always verified, a 30 s
//! per-attempt timeout, plain `http://` only to loopback hosts (the sandbox),
//! and extra root certificates for test servers. Configure it with
//! [`HyperTransport::builder`] ([`TransportConfig`]).
//!
//! Requests go through the proxies named by `HTTPS_PROXY` / `HTTP_PROXY` /
//! `ALL_PROXY` unless `NO_PROXY` exempts them (curl's rules), or through the one
//! given with [`TransportConfig::proxy`]; `https://` through a `CONNECT` tunnel
//! with TLS to the server verified as always. [`TransportConfig::local_address`]
//! binds connections to a registered egress address. A failed connection is a
//! [`TransportError::Connect`] whose [`ConnectError::kind`] says which step
//! failed (DNS, refused, TLS, the proxy's own failure, ...).
//!
//! # Metrics
//!
//! With the feature `metrics`, the retry driver records cancels, attempts, attempt
//! latency and cancels in flight through the `metrics` facade; see [`metrics`]
//! for the names and labels.
//!
//! Without the feature (`default-features = false`) this crate is the seam
//! alone: no tokio, hyper or rustls, for users who bring their own HTTP stack.
//!
//! # Writing your own transport
//!
//! Any HTTP stack fits in a few lines: send the request once, return the whole
//! response, and report failures honestly (`Connect` or `Refused` only if nothing
//! can have been sent), keeping your stack's error as the cause, e.g.
//! `TransportError::Io(IoError::new(IoErrorKind::ConnectionLost, "reading the answer").with_source(err))`. Wrapping another transport works the same way, for example to
//! add a header to every request:
//!
//! ```
//! use kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};
//!
//! /// Adds a tracing header, then lets the wrapped transport do the work.
//! struct WithRequestId<T> {
//!     inner: T,
//!     request_id: http::HeaderValue,
//! }
//!
//! impl<T: Transport> Transport for WithRequestId<T> {
//!     async fn send(&self, mut request: HttpRequest) -> Result<HttpResponse, TransportError> {
//!         request
//!             .headers_mut()
//!             .insert("x-request-id", self.request_id.clone());
//!         self.inner.send(request).await
//!     }
//! }
//! ```
//!
//! A test double is just as short: answer from memory.
//!
//! ```
//! use bytes::Bytes;
//! use kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};
//!
//! /// Answers every request with `{"resCd":"0000"}`.
//! struct AlwaysOk;
//!
//! impl Transport for AlwaysOk {
//!     async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
//!         Ok(http::Response::new(Bytes::from_static(br#"{"resCd":"0000"}"#)))
//!     }
//! }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod error;
mod recording;
mod seam;

pub use error::{
    error_chain, ConnectError, ConnectErrorKind, IoError, IoErrorKind, RefusedError, RefusedKind,
    TransportError,
};
pub use recording::RecordingTransport;
pub use seam::{HttpRequest, HttpResponse, Transport};

#[cfg(feature = "driver")]
#[cfg_attr(docsrs, doc(cfg(feature = "driver")))]
pub mod driver;

pub mod metrics;

#[cfg(feature = "hyper-client")]
mod hyper_client;

#[cfg(feature = "hyper-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "hyper-client")))]
pub use hyper_client::{
    ConfigError, HyperTransport, ProxySettings, TransportConfig, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RESPONSE_BODY_SIZE, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_POOL_MAX_IDLE_PER_HOST,
    DEFAULT_TIMEOUT, DEFAULT_USER_AGENT,
};

// The README's examples, compiled with the doc tests so they cannot rot.
#[cfg(all(doctest, feature = "hyper-client"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
