//! Receiving KICC's notices, without any web framework.
//!
//! [`WebhookInbox::handle`] takes the request body (and, if you check it, the peer address)
//! and returns what to answer: the status and the acknowledgement bytes. It de-duplicates
//! KICC's re-sends and keeps the latest notice per subject (the WeChat Pay `cancelPgCno`, the
//! generic `pgCno`) for whoever waits for it ([`WebhookInbox::notice_for`],
//! [`WebhookInbox::changed`]). It never blocks and does no IO, so it answers well within
//! KICC's 10 s limit; mount it in any server (see `kicc-wechat`'s `webhook_server` example).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::webhook::{
    is_documented_source_ip, Acknowledgement, DedupKey, Deduplicator, GenericNotice, WebhookError,
    WechatCancelNotice,
};

/// A kind of notice an inbox can receive.
pub trait Notice: Clone {
    /// Parses a notice body; never panics.
    fn parse(body: &[u8]) -> Result<Self, WebhookError>;
    /// The same for every re-send of this notice.
    fn dedup_key(&self) -> DedupKey;
    /// What waiters look the notice up by.
    fn subject(&self) -> &str;
}

impl Notice for WechatCancelNotice {
    fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        WechatCancelNotice::parse(body)
    }
    fn dedup_key(&self) -> DedupKey {
        WechatCancelNotice::dedup_key(self)
    }
    /// The cancellation (`cancelPgCno`).
    fn subject(&self) -> &str {
        &self.cancel_pg_cno
    }
}

impl Notice for GenericNotice {
    fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        GenericNotice::parse(body)
    }
    fn dedup_key(&self) -> DedupKey {
        GenericNotice::dedup_key(self)
    }
    /// The payment (`pgCno`).
    fn subject(&self) -> &str {
        &self.pg_cno
    }
}

/// What a received notice turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoticeEvent<N> {
    /// A notice seen for the first time.
    New(N),
    /// A re-send of a notice already handled (acknowledged again, not processed again).
    Duplicate(N),
    /// Not a usable notice (malformed, or from a source not allowed).
    Rejected(String),
}

/// The answer to send back, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookReply<N> {
    /// The HTTP status: 200 for notices (new or duplicate), 400 for malformed ones, 403 for
    /// forbidden sources.
    pub status: u16,
    /// The JSON body (`{"resCd":"0000","resMsg":"OK"}` when received).
    pub body: Vec<u8>,
    /// What the notice was.
    pub event: NoticeEvent<N>,
}

/// Which peers may post notices.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourcePolicy {
    /// Any peer (the default; allow-list at your edge, or when behind a proxy).
    Any,
    /// Only KICC's documented notice addresses (production and development).
    DocumentedKicc,
    /// Only these addresses.
    Only(Vec<IpAddr>),
}

struct Inner<N> {
    dedup: Deduplicator,
    latest: HashMap<String, N>,
    latest_order: VecDeque<String>,
    generation: u64,
    wakers: Vec<Waker>,
}

impl<N> Default for Inner<N> {
    fn default() -> Self {
        Inner {
            dedup: Deduplicator::default(),
            latest: HashMap::new(),
            latest_order: VecDeque::new(),
            generation: 0,
            wakers: Vec::new(),
        }
    }
}

/// Receives notices of kind `N`; see the module docs. Share it (`Arc`) between your HTTP
/// handler and the code that waits for results.
pub struct WebhookInbox<N> {
    inner: Mutex<Inner<N>>,
    sources: SourcePolicy,
    capacity: usize,
}

impl<N: Notice> Default for WebhookInbox<N> {
    fn default() -> Self {
        WebhookInbox::new(SourcePolicy::Any)
    }
}

impl<N> std::fmt::Debug for WebhookInbox<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookInbox")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl<N: Notice> WebhookInbox<N> {
    /// An inbox accepting notices from `sources`.
    pub fn new(sources: SourcePolicy) -> Self {
        WebhookInbox {
            inner: Mutex::new(Inner::default()),
            sources,
            capacity: 10_000,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<N>> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles one notice body from `peer` (pass `None` if you check sources elsewhere).
    pub fn handle(&self, peer: Option<IpAddr>, body: &[u8]) -> WebhookReply<N> {
        if let Some(ip) = peer {
            let allowed = match &self.sources {
                SourcePolicy::Any => true,
                SourcePolicy::DocumentedKicc => is_documented_source_ip(ip),
                SourcePolicy::Only(list) => list.contains(&ip.to_canonical()),
            };
            if !allowed {
                let why = format!("source {ip} is not allowed");
                return WebhookReply {
                    status: 403,
                    body: Acknowledgement::Rejected(why.clone()).to_body(),
                    event: NoticeEvent::Rejected(why),
                };
            }
        }
        let notice = match N::parse(body) {
            Ok(n) => n,
            Err(e) => return rejected(&e),
        };
        let mut inner = self.lock();
        let first = inner.dedup.first_time(&notice.dedup_key());
        if first {
            let key = notice.subject().to_owned();
            if inner.latest.insert(key.clone(), notice.clone()).is_none() {
                inner.latest_order.push_back(key);
                if inner.latest_order.len() > self.capacity {
                    if let Some(old) = inner.latest_order.pop_front() {
                        inner.latest.remove(&old);
                    }
                }
            }
            inner.generation += 1;
            for w in inner.wakers.drain(..) {
                w.wake();
            }
        }
        drop(inner);
        WebhookReply {
            status: 200,
            body: Acknowledgement::Received.to_body(),
            event: if first {
                NoticeEvent::New(notice)
            } else {
                NoticeEvent::Duplicate(notice)
            },
        }
    }

    /// The latest notice received about `subject` (see [`Notice::subject`]), if any.
    pub fn notice_for(&self, subject: &str) -> Option<N> {
        self.lock().latest.get(subject).cloned()
    }

    /// Resolves when a new notice arrives after this call (works on any async runtime).
    pub fn changed(&self) -> Changed<'_, N> {
        Changed {
            inbox: self,
            seen: self.lock().generation,
        }
    }
}

fn rejected<N>(e: &WebhookError) -> WebhookReply<N> {
    WebhookReply {
        status: 400,
        body: Acknowledgement::Rejected(e.to_string()).to_body(),
        event: NoticeEvent::Rejected(e.to_string()),
    }
}

/// The future of [`WebhookInbox::changed`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Changed<'a, N> {
    inbox: &'a WebhookInbox<N>,
    seen: u64,
}

impl<N: Notice> Future for Changed<'_, N> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.inbox.lock();
        if inner.generation != self.seen {
            return Poll::Ready(());
        }
        if !inner.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            inner.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTICE: &[u8] = br#"{"resCd":"0000","resMsg":"OK","pgCno":"P1","cancelPgCno":"C1","amountInfo":{"currency":"KRW","amount":"1000"}}"#;

    type WechatInbox = WebhookInbox<WechatCancelNotice>;

    #[test]
    fn new_then_duplicate_then_malformed() {
        let inbox = WechatInbox::default();
        let r = inbox.handle(None, NOTICE);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, br#"{"resCd":"0000","resMsg":"OK"}"#);
        assert!(matches!(r.event, NoticeEvent::New(_)));
        let r = inbox.handle(None, NOTICE);
        assert_eq!(r.status, 200);
        assert!(matches!(r.event, NoticeEvent::Duplicate(_)));
        assert_eq!(inbox.notice_for("C1").unwrap().pg_cno, "P1");
        assert!(inbox.notice_for("C2").is_none());
        let r = inbox.handle(None, b"{not json");
        assert_eq!(r.status, 400);
        assert!(matches!(r.event, NoticeEvent::Rejected(_)));
    }

    #[test]
    fn source_policies() {
        let kicc = WechatInbox::new(SourcePolicy::DocumentedKicc);
        assert_eq!(
            kicc.handle(Some("127.0.0.1".parse().unwrap()), NOTICE)
                .status,
            403
        );
        assert_eq!(
            kicc.handle(Some("203.233.72.66".parse().unwrap()), NOTICE)
                .status,
            200
        );
        let only = WechatInbox::new(SourcePolicy::Only(vec!["10.1.2.3".parse().unwrap()]));
        assert_eq!(
            only.handle(Some("::ffff:10.1.2.3".parse().unwrap()), NOTICE)
                .status,
            200
        );
    }

    #[test]
    fn changed_wakes_on_new_notices_only() {
        use std::sync::Arc;
        use std::task::Wake;
        struct Flag(std::sync::atomic::AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let inbox = WechatInbox::default();
        let flag = Arc::new(Flag(false.into()));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = Box::pin(inbox.changed());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        inbox.handle(None, b"garbage");
        assert!(!flag.0.load(std::sync::atomic::Ordering::SeqCst));
        inbox.handle(None, NOTICE);
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(fut.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn generic_notices_by_payment() {
        let inbox = WebhookInbox::<GenericNotice>::default();
        let body = br#"{"notiType":"20","resCd":"0000","pgCno":"P7","cancelPgCno":"C7","cancelAmount":"100"}"#;
        assert!(matches!(
            inbox.handle(None, body).event,
            NoticeEvent::New(_)
        ));
        assert!(matches!(
            inbox.handle(None, body).event,
            NoticeEvent::Duplicate(_)
        ));
        assert_eq!(inbox.notice_for("P7").unwrap().cancel_amount, Some(100));
        assert_eq!(inbox.handle(None, br#"{"notiType":"20"}"#).status, 400);
    }
}
