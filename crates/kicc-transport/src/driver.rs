//! Executing `kicc-core`'s retry decisions with real timers and real requests.
//!
//! [`drive`] runs one [`Cancellation`] to its outcome: it sends what the state machine asks,
//! sleeps until the instant it names, and reports each attempt's result back. The decisions
//! themselves stay in the core; this loop only does IO and reads the clocks.
//!
//! Tracing: one `kicc.cancel` span per logical cancel (channel, pg_cno, first
//! shop_transaction_id, outcome) and one `kicc.attempt` span per attempt (attempt number,
//! the attempt's shop_transaction_id, HTTP status, resCd). Bodies, the secret key and
//! `msgAuthValue` are never recorded.

use std::time::{Instant, SystemTime};

use kicc_core::retry::{Action, Cancellation, Delivery, Exchange, Now, RetryPolicy, SentAttempt};
use kicc_core::wire::Envelope;
use kicc_core::{Error, Rng};
use tracing::Instrument;

use crate::error::TransportError;
use crate::seam::{HttpRequest, Transport};

/// The current time on both clocks.
pub fn now() -> Now {
    Now::new(Instant::now(), SystemTime::now())
}

/// A generator seeded from the operating system's randomness (for jitter and new keys).
pub fn os_rng() -> Rng {
    Rng::from_seed(os_seed())
}

/// The retry driver's generator: seeded from the OS when it first draws (backoff jitter, a
/// new key after a proven "not processed"), so a cancel whose first attempt succeeds makes
/// no `getrandom` call, while every seed still comes from the OS at the moment it is needed
/// (two processes forked from one parent never share it).
fn driver_rng() -> Rng {
    Rng::seeded_on_first_use(os_seed)
}

/// 32 bytes of OS randomness.
fn os_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if getrandom::getrandom(&mut seed).is_err() {
        // No OS randomness (should not happen on supported platforms): fall back to the
        // time, which still makes keys unique per process start and jitter varied.
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        seed[..16].copy_from_slice(&t.to_le_bytes());
        seed[16..24].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
    }
    seed
}

/// Whether `error` certainly means the request never reached the server (no connection, or
/// refused before sending): [`Delivery::NotDelivered`]; every other failure may have been
/// delivered ([`Delivery::Unknown`]). The one mapping every driver uses.
pub fn never_delivered(error: &TransportError) -> bool {
    matches!(
        error,
        TransportError::Connect(_) | TransportError::Refused(_)
    )
}

/// What the caller knows about a cancel, for the `kicc.cancel` span and the metrics'
/// `channel` label. Build it with [`CancelLabels::new`]; more labels may be added.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CancelLabels<'a> {
    /// `generic`, `alipay`, `wechat`, `wechat-find`, ...
    pub channel: &'static str,
    /// The payment.
    pub pg_cno: &'a str,
}

impl<'a> CancelLabels<'a> {
    /// The labels of a cancel of payment `pg_cno` through `channel`.
    pub fn new(channel: &'static str, pg_cno: &'a str) -> Self {
        CancelLabels { channel, pg_cno }
    }
}

/// Runs `exchange` with retries under `policy` over `transport` until it finishes.
pub async fn execute<T, E>(
    transport: &T,
    exchange: E,
    policy: RetryPolicy,
    labels: CancelLabels<'_>,
) -> Result<E::Output, Error>
where
    T: Transport + ?Sized,
    E: Exchange + Send,
    E::Output: Send,
{
    // The cancellation lives here, once; the futures below borrow it. (Passed by value
    // through each layer, it was stored in every layer's future: a cancel's future was
    // 6 kB, copied whole at each `.await` and `.instrument`.)
    let mut cancellation = Cancellation::new(exchange, policy, driver_rng());
    run(transport, &mut cancellation, labels).await
}

/// Resumes a cancellation whose attempts `sent` may have been processed (see
/// [`Cancellation::resume`]): a generic one looks them up first, a wallet one resends its
/// stored message identically.
pub async fn resume<T, E>(
    transport: &T,
    exchange: E,
    policy: RetryPolicy,
    sent: Vec<SentAttempt>,
    labels: CancelLabels<'_>,
) -> Result<E::Output, Error>
where
    T: Transport + ?Sized,
    E: Exchange + Send,
    E::Output: Send,
{
    let mut cancellation =
        Cancellation::resume(exchange, policy, driver_rng(), sent, SystemTime::now());
    run(transport, &mut cancellation, labels).await
}

/// Runs `cancellation` to its outcome inside a `kicc.cancel` span.
pub async fn execute_cancellation<T, E>(
    transport: &T,
    mut cancellation: Cancellation<E>,
    labels: CancelLabels<'_>,
) -> Result<E::Output, Error>
where
    T: Transport + ?Sized,
    E: Exchange + Send,
    E::Output: Send,
{
    run(transport, &mut cancellation, labels).await
}

/// [`execute_cancellation`] on a borrowed cancellation.
async fn run<T, E>(
    transport: &T,
    cancellation: &mut Cancellation<E>,
    labels: CancelLabels<'_>,
) -> Result<E::Output, Error>
where
    T: Transport + ?Sized,
    E: Exchange + Send,
    E::Output: Send,
{
    let span = tracing::info_span!(
        "kicc.cancel",
        channel = labels.channel,
        pg_cno = labels.pg_cno,
        shop_transaction_id = %cancellation.exchange().shop_transaction_id(),
        outcome = tracing::field::Empty,
        res_cd = tracing::field::Empty,
    );
    let _in_flight = crate::metrics::InFlight::start(labels.channel);
    let metered = crate::metrics::meter(transport, labels.channel);
    // Without a subscriber that wants the span, `instrument` would only move the whole
    // driver future once more.
    let result = if span.is_disabled() {
        drive_borrowed(&metered, cancellation).await
    } else {
        drive_borrowed(&metered, cancellation)
            .instrument(span.clone())
            .await
    };
    crate::metrics::record_cancel(labels.channel, &result);
    match &result {
        Ok(_) => span.record("outcome", "success"),
        Err(e) => {
            if let Some(code) = e.res_cd() {
                span.record("res_cd", code);
            }
            span.record("outcome", outcome_name(e))
        }
    };
    result
}

fn outcome_name(e: &Error) -> &'static str {
    match e {
        Error::Invalid(_) => "invalid",
        Error::Declined(_) => "declined",
        Error::Transport { .. } => "not_processed",
        Error::Ambiguous { .. } => "ambiguous",
        Error::AlreadyCancelled { .. } => "already_cancelled",
        Error::StatusUnknown { .. } => "status_unknown",
        Error::Pending { .. } => "pending",
        _ => "error",
    }
}

/// The error when the retry machine awaits a delivery that `drive` already reported (a
/// broken invariant): unknown, with every attempt sent, since any of them may have been
/// processed.
fn awaiting_nothing<E: Exchange>(cancellation: &Cancellation<E>) -> Error {
    Error::Ambiguous {
        reason: "internal error: the retry machine awaits a delivery, but none is in flight".into(),
        shop_transaction_id: cancellation.exchange().shop_transaction_id().to_string(),
        attempts: cancellation.attempts(),
        last_res_cd: None,
        sent: cancellation.sent().cloned().collect(),
        lookup_after: None,
    }
}

/// A copy of `request` to send as one attempt: the same method, URI, version, headers (in
/// order), extensions and body bytes (shared, not copied), so every resend is identical to
/// the request the retry machine keeps. Unlike `Request::clone`, whose header list has room
/// for exactly the headers it holds, the copy has room for the two that the layers below
/// add to every attempt (`User-Agent` by `HyperTransport`, `Content-Length` by hyper):
/// growing the list reallocated it once per attempt, and a `realloc` always takes the
/// allocator arena's lock, which the runtime's other worker contends for when it frees the
/// request it sent. Every loop that sends a retry machine's kept request (this driver, the
/// ledger's executor) sends this copy.
pub fn attempt_copy(request: &HttpRequest) -> HttpRequest {
    let mut headers = http::HeaderMap::with_capacity(request.headers().len() + 2);
    for (name, value) in request.headers() {
        headers.append(name.clone(), value.clone());
    }
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = headers;
    *copy.extensions_mut() = request.extensions().clone();
    copy
}

/// Runs `cancellation` to its outcome over `transport`.
pub async fn drive<T, E>(
    transport: &T,
    mut cancellation: Cancellation<E>,
) -> Result<E::Output, Error>
where
    T: Transport + ?Sized,
    E: Exchange,
{
    drive_borrowed(transport, &mut cancellation).await
}

/// [`drive`] on a borrowed cancellation.
async fn drive_borrowed<T, E>(
    transport: &T,
    cancellation: &mut Cancellation<E>,
) -> Result<E::Output, Error>
where
    T: Transport + ?Sized,
    E: Exchange,
{
    let mut at = now();
    loop {
        let request = match cancellation.poll(at) {
            Action::Done(outcome) => return outcome,
            Action::WaitUntil(until) => {
                // Boxed: only a retry waits, and an unboxed `Sleep` would make every
                // cancel's future larger.
                Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
                    until,
                )))
                .await;
                at = now();
                continue;
            }
            // `drive` always reports a delivery before polling again, so nothing is in
            // flight and no poll can change that: end instead of spinning (below).
            Action::AwaitDelivery => None,
            Action::Send(request) => Some(attempt_copy(request)),
        };
        let Some(request) = request else {
            return Err(awaiting_nothing(cancellation));
        };
        let attempt = cancellation.attempts();
        let span = tracing::info_span!(
            "kicc.attempt",
            attempt,
            path = request.uri().path(),
            shop_transaction_id = %cancellation.exchange().shop_transaction_id(),
            http_status = tracing::field::Empty,
            res_cd = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        // As above: instrument only a span someone records (it moves the send future).
        let result = if span.is_disabled() {
            transport.send(request).await
        } else {
            transport.send(request).instrument(span.clone()).await
        };
        match &result {
            Ok(response) => {
                span.record("http_status", response.status().as_u16());
                if !span.is_disabled() {
                    if let Some(env) = Envelope::read(response.body()) {
                        span.record("res_cd", env.res_cd.as_str());
                    }
                }
            }
            Err(e) => {
                span.record("error", tracing::field::display(e));
            }
        }
        let reason;
        let delivery = match &result {
            Ok(response) => Delivery::Response {
                status: response.status().as_u16(),
                body: response.body(),
            },
            Err(e) => {
                reason = e.to_string();
                if never_delivered(e) {
                    Delivery::NotDelivered { reason: &reason }
                } else {
                    Delivery::Unknown { reason: &reason }
                }
            }
        };
        span.in_scope(|| tracing::debug!("attempt finished"));
        // The time of the delivery is also the time of the next poll: nothing waits in
        // between, so one clock reading serves both.
        at = now();
        cancellation.on_delivery(delivery, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectError, ConnectErrorKind, IoError, IoErrorKind, RefusedError, RefusedKind};

    /// Every attempt must be the request the retry machine keeps, byte for byte: the copy
    /// keeps the method, URI, version, every header value in order (repeated names too),
    /// the extensions and the very same body bytes.
    #[test]
    fn an_attempt_copy_is_the_kept_request_exactly() {
        #[derive(Clone, Debug, PartialEq)]
        struct Tag(u32);
        let body = bytes::Bytes::from(br#"{"mallId":"T0000001"}"#.to_vec());
        let mut request = http::Request::new(body.clone());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = http::Uri::from_static("https://pg.example/api/trades/revise");
        *request.version_mut() = http::Version::HTTP_2;
        let headers = request.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.append("x-kicc-a", http::HeaderValue::from_static("1"));
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        headers.append("x-kicc-a", http::HeaderValue::from_static("2"));
        request.extensions_mut().insert(Tag(7));

        let mut copy = attempt_copy(&request);
        assert_eq!(copy.method(), request.method());
        assert_eq!(copy.uri(), request.uri());
        assert_eq!(copy.version(), request.version());
        assert_eq!(copy.headers(), request.headers());
        let order = |r: &HttpRequest| -> Vec<(String, Vec<u8>)> {
            r.headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        assert_eq!(order(&copy), order(&request));
        assert_eq!(copy.extensions().get::<Tag>(), Some(&Tag(7)));
        assert_eq!(copy.body(), &body);
        assert_eq!(
            copy.body().as_ptr(),
            body.as_ptr(),
            "the body is shared, not copied"
        );

        // What the layers below add to the copy never reaches the kept request.
        copy.headers_mut().insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static("kicc-rs"),
        );
        copy.headers_mut()
            .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(21u32));
        assert!(!request.headers().contains_key(http::header::USER_AGENT));
        assert_eq!(request.headers().len(), 4);
    }

    /// The one mapping from transport failures to "not delivered" / "unknown" that every
    /// driver (this one, kicc-ledger's, wechatpay-direct's classification) relies on.
    #[test]
    fn only_connect_and_refused_are_never_delivered_whatever_their_kind() {
        let cause = || std::io::Error::other("cause");
        let mut not_delivered = vec![];
        for kind in [
            ConnectErrorKind::Dns,
            ConnectErrorKind::Refused,
            ConnectErrorKind::Timeout,
            ConnectErrorKind::Tls,
            ConnectErrorKind::LocalAddress,
            ConnectErrorKind::ProxyUnreachable,
            ConnectErrorKind::ProxyAuthentication,
            ConnectErrorKind::ProxyRejected,
            ConnectErrorKind::Other,
        ] {
            not_delivered.push(TransportError::Connect(
                ConnectError::new(kind, "x").with_source(cause()),
            ));
        }
        for kind in [
            RefusedKind::PlainHttp,
            RefusedKind::InvalidUri,
            RefusedKind::NoRuntime,
            RefusedKind::InvalidRequest,
            RefusedKind::Other,
        ] {
            not_delivered.push(TransportError::Refused(
                RefusedError::new(kind, "x").with_source(cause()),
            ));
        }
        for e in &not_delivered {
            assert!(never_delivered(e), "{e:?}");
            assert!(!e.may_have_reached_server(), "{e:?}");
            assert!(!e.is_timeout(), "{e:?}");
        }

        let mut unknown = vec![TransportError::Timeout(std::time::Duration::from_secs(30))];
        for kind in [
            IoErrorKind::ConnectionLost,
            IoErrorKind::MalformedResponse,
            IoErrorKind::ResponseTooLarge,
            IoErrorKind::Other,
        ] {
            unknown.push(TransportError::Io(
                IoError::new(kind, "x").with_source(cause()),
            ));
        }
        for e in &unknown {
            assert!(!never_delivered(e), "{e:?}");
            assert!(e.may_have_reached_server(), "{e:?}");
            assert_eq!(
                e.is_timeout(),
                matches!(e, TransportError::Timeout(_)),
                "{e:?}"
            );
        }
    }
}
