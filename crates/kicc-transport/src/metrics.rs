//! Metrics of cancels and attempts, through the [`metrics`](https://docs.rs/metrics)
//! facade.
//!
//! With the cargo feature `metrics`, `driver::execute`
//! records the series below into whatever recorder the application installed
//! (for example `metrics-exporter-prometheus`); this crate installs no exporter.
//! Without the feature every function here does nothing and the `metrics` crate
//! is not compiled.
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `kicc_cancels_total` | counter | `channel`, `outcome` | logical cancels finished, by outcome |
//! | `kicc_attempts_total` | counter | `channel`, `result` | HTTP attempts (a cancel's retries each count), by result |
//! | `kicc_attempt_duration_seconds` | histogram | `channel` | time from sending an attempt to its complete response or failure |
//! | `kicc_cancels_in_flight` | gauge | `channel` | cancels started and not yet finished |
//!
//! Label values, all from fixed sets:
//! - `channel`: the label the client passes to `execute`: `generic`, `alipay`,
//!   `wechat`, and `wechat-find` for the WeChat Pay status query (which runs
//!   through the same driver and is counted apart from cancels).
//! - `outcome`: `success`; `declined` (the gateway said no); `not_processed`
//!   (the cancel certainly did not happen: nothing reached the gateway's
//!   processing, or the request was invalid and never sent); `unknown` (it may
//!   have happened: query before acting); `pending` (WeChat Pay accepted it, the
//!   final result comes later).
//! - `result`: `http_2xx`, `http_3xx`, `http_4xx`, `http_5xx`, `http_other` (a
//!   complete response, by status class); `connect_error` (no connection: DNS,
//!   refused, TLS, the proxy's own failure; nothing was sent); `refused` (the
//!   client's policy refused to send); `timeout`; `connection_lost` (after the
//!   request may have been written).
//!
//! No label carries a `pgCno`, a `shopTransactionId`, an amount, a merchant ID, a
//! key or any other value that grows with traffic or must stay secret.

/// Name of the counter of finished cancels, labelled `channel` and `outcome`.
pub const CANCELS_TOTAL: &str = "kicc_cancels_total";
/// Name of the counter of attempts, labelled `channel` and `result`.
pub const ATTEMPTS_TOTAL: &str = "kicc_attempts_total";
/// Name of the histogram of attempt durations in seconds, labelled `channel`.
pub const ATTEMPT_DURATION_SECONDS: &str = "kicc_attempt_duration_seconds";
/// Name of the gauge of cancels in flight, labelled `channel`.
pub const CANCELS_IN_FLIGHT: &str = "kicc_cancels_in_flight";

#[cfg(feature = "driver")]
use kicc_core::Error;

#[cfg(feature = "driver")]
use crate::error::TransportError;
#[cfg(all(feature = "driver", feature = "metrics"))]
use crate::seam::HttpRequest;
#[cfg(feature = "driver")]
use crate::seam::{HttpResponse, Transport};

/// The `outcome` label of a finished cancel.
#[cfg(feature = "driver")]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn outcome_label<T>(result: &Result<T, Error>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(Error::Declined(_)) => "declined",
        Err(Error::Transport { .. } | Error::Invalid(_) | Error::AlreadyCancelled { .. }) => {
            "not_processed"
        }
        Err(Error::Pending { .. }) => "pending",
        // Ambiguous, and anything a later version adds: the cautious answer.
        Err(_) => "unknown",
    }
}

/// The `result` label of one attempt.
#[cfg(feature = "driver")]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn result_label(result: &Result<HttpResponse, TransportError>) -> &'static str {
    match result {
        Ok(response) => match response.status().as_u16() {
            200..=299 => "http_2xx",
            300..=399 => "http_3xx",
            400..=499 => "http_4xx",
            500..=599 => "http_5xx",
            _ => "http_other",
        },
        Err(TransportError::Connect(_)) => "connect_error",
        Err(TransportError::Refused(_)) => "refused",
        Err(TransportError::Timeout(_)) => "timeout",
        Err(TransportError::Io(_)) => "connection_lost",
    }
}

/// Registers the descriptions and units of the series above with the
/// installed recorder, for exporters that show them (Prometheus' `# HELP`).
/// Optional; call it once after installing the recorder.
pub fn describe() {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_counter!(
            CANCELS_TOTAL,
            Unit::Count,
            "Cancels finished, by channel and outcome (success, declined, not_processed, unknown, pending)."
        );
        describe_counter!(
            ATTEMPTS_TOTAL,
            Unit::Count,
            "HTTP attempts, by channel and result."
        );
        describe_histogram!(
            ATTEMPT_DURATION_SECONDS,
            Unit::Seconds,
            "Duration of one HTTP attempt, from sending to the complete response or failure."
        );
        describe_gauge!(
            CANCELS_IN_FLIGHT,
            Unit::Count,
            "Cancels started and not yet finished."
        );
    }
}

/// Counts a cancel in flight from creation until drop (also when the caller
/// drops the cancel's future half-way).
#[cfg(feature = "driver")]
#[must_use]
pub(crate) struct InFlight {
    #[cfg(feature = "metrics")]
    channel: &'static str,
}

#[cfg(feature = "driver")]
impl InFlight {
    pub(crate) fn start(channel: &'static str) -> Self {
        #[cfg(feature = "metrics")]
        {
            ::metrics::gauge!(CANCELS_IN_FLIGHT, "channel" => channel).increment(1.0);
            InFlight { channel }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = channel;
            InFlight {}
        }
    }
}

#[cfg(feature = "driver")]
impl Drop for InFlight {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        ::metrics::gauge!(CANCELS_IN_FLIGHT, "channel" => self.channel).decrement(1.0);
    }
}

/// Counts one finished cancel.
#[cfg(feature = "driver")]
pub(crate) fn record_cancel<T>(channel: &'static str, result: &Result<T, Error>) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(CANCELS_TOTAL, "channel" => channel, "outcome" => outcome_label(result))
        .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (channel, result);
}

/// Wraps `transport` so that each attempt through it is counted and timed
/// (the transport itself when the feature is off).
#[cfg(all(feature = "driver", feature = "metrics"))]
pub(crate) fn meter<'a, T: Transport + ?Sized>(
    transport: &'a T,
    channel: &'static str,
) -> impl Transport + 'a {
    Metered { transport, channel }
}

/// Wraps `transport` so that each attempt through it is counted and timed
/// (the transport itself when the feature is off).
#[cfg(all(feature = "driver", not(feature = "metrics")))]
pub(crate) fn meter<'a, T: Transport + ?Sized>(transport: &'a T, channel: &'static str) -> &'a T {
    let _ = channel;
    transport
}

#[cfg(all(feature = "driver", feature = "metrics"))]
struct Metered<'a, T: ?Sized> {
    transport: &'a T,
    channel: &'static str,
}

#[cfg(all(feature = "driver", feature = "metrics"))]
impl<T: Transport + ?Sized> Transport for Metered<'_, T> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let started = std::time::Instant::now();
        let result = self.transport.send(request).await;
        ::metrics::histogram!(ATTEMPT_DURATION_SECONDS, "channel" => self.channel)
            .record(started.elapsed().as_secs_f64());
        ::metrics::counter!(ATTEMPTS_TOTAL, "channel" => self.channel, "result" => result_label(&result))
            .increment(1);
        result
    }
}

#[cfg(all(test, feature = "driver"))]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    #[allow(clippy::expect_used)] // a test helper with literal status codes
    fn status(code: u16) -> Result<HttpResponse, TransportError> {
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = http::StatusCode::from_u16(code).expect("status");
        Ok(response)
    }

    #[test]
    fn result_labels_cover_every_kind_of_attempt() {
        assert_eq!(result_label(&status(200)), "http_2xx");
        assert_eq!(result_label(&status(302)), "http_3xx");
        assert_eq!(result_label(&status(404)), "http_4xx");
        assert_eq!(result_label(&status(503)), "http_5xx");
        assert_eq!(result_label(&status(101)), "http_other");
        assert_eq!(
            result_label(&Err(TransportError::Connect("x".into()))),
            "connect_error"
        );
        assert_eq!(
            result_label(&Err(TransportError::Refused("x".into()))),
            "refused"
        );
        assert_eq!(
            result_label(&Err(TransportError::Timeout(Duration::from_secs(1)))),
            "timeout"
        );
        assert_eq!(
            result_label(&Err(TransportError::Io("x".into()))),
            "connection_lost"
        );
    }

    #[test]
    fn outcome_labels_follow_what_the_caller_must_do() {
        let ok: Result<(), Error> = Ok(());
        assert_eq!(outcome_label(&ok), "success");
        let not: Result<(), Error> = Err(Error::Transport {
            reason: "refused".into(),
            shop_transaction_id: "K".into(),
        });
        assert_eq!(outcome_label(&not), "not_processed");
        let unknown: Result<(), Error> = Err(Error::Ambiguous {
            reason: "timeout".into(),
            shop_transaction_id: "K".into(),
            attempts: 2,
            last_res_cd: None,
            sent: vec![],
            lookup_after: None,
        });
        assert_eq!(outcome_label(&unknown), "unknown");
        let pending: Result<(), Error> = Err(Error::Pending {
            cancel_pg_cno: "C".into(),
            shop_transaction_id: "K".into(),
        });
        assert_eq!(outcome_label(&pending), "pending");
    }
}
