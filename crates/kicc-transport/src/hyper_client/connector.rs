//! The connector under the pooled client: TCP + TLS (hyper-rustls), bounded by
//! the connect timeout as a whole, counted, and re-checking the plain-HTTP
//! policy so that no code path can open a clear-text connection to a remote host.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::Scheme;
use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::policy;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connection type the pooled client gets from [`BoundedConnector`].
pub(crate) type Stream = MaybeHttpsStream<TokioIo<TcpStream>>;

/// Connection establishment took longer than the configured connect timeout.
///
/// Covers DNS, TCP and the TLS handshake together; the request was not sent.
#[derive(Debug)]
pub(crate) struct ConnectTimedOut(pub(crate) Duration);

impl std::fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connection (DNS, TCP and TLS handshake) not established within {:?}",
            self.0
        )
    }
}

impl std::error::Error for ConnectTimedOut {}

/// Plain HTTP to a non-loopback host reached the connector (defence in depth;
/// [`HyperTransport`](super::HyperTransport) refuses such requests earlier).
#[derive(Debug)]
struct PlainHttpRefused;

impl std::fmt::Display for PlainHttpRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("plain http:// is allowed only to loopback hosts")
    }
}

impl std::error::Error for PlainHttpRefused {}

/// hyper-rustls' connector with one deadline over the whole connection set-up
/// and a counter of connection attempts shared by every clone.
#[derive(Clone)]
pub(crate) struct BoundedConnector {
    inner: HttpsConnector<HttpConnector>,
    connect_timeout: Duration,
    attempts: Arc<AtomicU64>,
}

impl BoundedConnector {
    pub(crate) fn new(
        inner: HttpsConnector<HttpConnector>,
        connect_timeout: Duration,
        attempts: Arc<AtomicU64>,
    ) -> Self {
        Self {
            inner,
            connect_timeout,
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
            return Box::pin(async { Err(Box::new(PlainHttpRefused) as BoxError) });
        }
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let connecting = self.inner.call(dst);
        let limit = self.connect_timeout;
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(result) => result,
                Err(_elapsed) => Err(Box::new(ConnectTimedOut(limit)) as BoxError),
            }
        })
    }
}
