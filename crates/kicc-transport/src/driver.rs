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

use crate::seam::{Transport, TransportError};

/// The current time on both clocks.
pub fn now() -> Now {
    Now::new(Instant::now(), SystemTime::now())
}

/// A generator seeded from the operating system's randomness (for jitter and new keys).
pub fn os_rng() -> Rng {
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
    Rng::from_seed(seed)
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

/// What the caller knows about a cancel, for the `kicc.cancel` span.
#[derive(Debug, Clone, Copy)]
pub struct CancelLabels<'a> {
    /// `generic`, `alipay`, `wechat`, `wechat-find`, ...
    pub channel: &'static str,
    /// The payment.
    pub pg_cno: &'a str,
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
    execute_cancellation(
        transport,
        Cancellation::new(exchange, policy, os_rng()),
        labels,
    )
    .await
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
    let cancellation = Cancellation::resume(exchange, policy, os_rng(), sent, SystemTime::now());
    execute_cancellation(transport, cancellation, labels).await
}

/// Runs `cancellation` to its outcome inside a `kicc.cancel` span.
pub async fn execute_cancellation<T, E>(
    transport: &T,
    cancellation: Cancellation<E>,
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
    let result = drive(&metered, cancellation).instrument(span.clone()).await;
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

/// Runs `cancellation` to its outcome over `transport`.
pub async fn drive<T, E>(
    transport: &T,
    mut cancellation: Cancellation<E>,
) -> Result<E::Output, Error>
where
    T: Transport + ?Sized,
    E: Exchange,
{
    loop {
        let request = match cancellation.poll(now()) {
            Action::Done(outcome) => return outcome,
            Action::WaitUntil(until) => {
                tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
                continue;
            }
            // `drive` always reports a delivery before polling again, so nothing is in
            // flight and no poll can change that: end instead of spinning (below).
            Action::AwaitDelivery => None,
            Action::Send(request) => Some(request.clone()),
        };
        let Some(request) = request else {
            return Err(awaiting_nothing(&cancellation));
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
        let result = transport.send(request).instrument(span.clone()).await;
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
        cancellation.on_delivery(delivery, now());
    }
}
