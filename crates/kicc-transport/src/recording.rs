//! A transport wrapper that keeps a copy of every request it sends.

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::error::TransportError;
use crate::seam::{HttpRequest, HttpResponse, Transport};

/// Wraps a transport and records each request (method, URI, headers and exact body) before
/// sending it. For tests and audits: prove that a retry resent the same bytes, or that a
/// resend carried a new key. Clones share the record.
///
/// The record holds request bodies, which contain `msgAuthValue`: keep it out of logs.
#[derive(Debug, Clone)]
pub struct RecordingTransport<T> {
    inner: T,
    sent: Arc<Mutex<Vec<HttpRequest>>>,
}

impl<T> RecordingTransport<T> {
    /// Records what `inner` sends.
    pub fn new(inner: T) -> Self {
        RecordingTransport {
            inner,
            sent: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The requests sent so far, oldest first.
    pub fn sent(&self) -> Vec<HttpRequest> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The bodies sent so far, as text (lossy for non-UTF-8 bytes), oldest first.
    pub fn sent_bodies(&self) -> Vec<String> {
        self.sent()
            .iter()
            .map(|r| String::from_utf8_lossy(r.body()).into_owned())
            .collect()
    }

    /// Forgets the record.
    pub fn clear(&self) {
        if let Ok(mut v) = self.sent.lock() {
            v.clear();
        }
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

impl<T: Transport> Transport for RecordingTransport<T> {
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send {
        if let Ok(mut v) = self.sent.lock() {
            v.push(request.clone());
        }
        self.inner.send(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[derive(Clone)]
    struct Echo;
    impl Transport for Echo {
        async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
            Ok(http::Response::new(request.into_body()))
        }
    }

    #[test]
    fn records_in_order_and_shares_between_clones() {
        let t = RecordingTransport::new(Echo);
        let clone = t.clone();
        let send = |b: &'static str| {
            let r = http::Request::new(Bytes::from_static(b.as_bytes()));
            let fut = clone.send(r);
            // The echo transport completes on first poll.
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            let mut fut = std::pin::pin!(fut);
            match fut.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(r) => r.map(|r| r.into_body()),
                std::task::Poll::Pending => unreachable!("echo is immediate"),
            }
        };
        assert_eq!(send("a").unwrap(), "a");
        assert_eq!(send("b").unwrap(), "b");
        assert_eq!(t.sent_bodies(), ["a", "b"]);
        t.clear();
        assert!(clone.sent().is_empty());
    }
}
