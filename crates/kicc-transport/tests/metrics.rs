//! The `metrics` feature: names, labels and counts recorded by `driver::execute`
//! for a success, a decline and an unknown outcome, checked with metrics-util's
//! debugging recorder (installed per test, thread-locally, so tests do not mix).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "metrics")]

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::task::{Context, Waker};
use std::time::Duration;

use bytes::Bytes;
use kicc_core::retry::{Describes, Exchange, Expected, Interpreted, Resend, RetryPolicy};
use kicc_core::{Channel, Error, FieldError, KoreaDate, ShopTransactionId};
use kicc_transport::driver::{execute, CancelLabels};
use kicc_transport::metrics::{
    ATTEMPTS_TOTAL, ATTEMPT_DURATION_SECONDS, CANCELS_IN_FLIGHT, CANCELS_TOTAL,
};
use kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

const PG_CNO: &str = "PG-SECRET-LOOKING-1234";
const KEY: &str = "KEY-0001";

/// An Alipay-style exchange (resent byte for byte) that reads `resCd`.
struct Fake {
    request: HttpRequest,
    key: ShopTransactionId,
}

impl Fake {
    fn new() -> Self {
        Fake {
            request: http::Request::post("https://gateway.invalid/api/trades/alipay/revise")
                .body(Bytes::from_static(b"{}"))
                .expect("request"),
            key: ShopTransactionId::new(KEY).expect("key"),
        }
    }
}

/// What the fake gateway answers: its code and what the answer says it is about.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    res_cd: String,
    #[serde(default)]
    res_msg: String,
    #[serde(default)]
    shop_transaction_id: String,
    #[serde(default)]
    pg_cno: String,
}

impl Describes for Answer {
    fn described_key(&self) -> &str {
        &self.shop_transaction_id
    }
    fn described_pg_cno(&self) -> &str {
        &self.pg_cno
    }
    fn described_amount(&self) -> Option<u64> {
        None
    }
    fn transaction_date(&self) -> &str {
        ""
    }
    fn described_cancel_pg_cno(&self) -> &str {
        ""
    }
}

impl Exchange for Fake {
    type Output = Answer;
    fn channel(&self) -> Channel {
        Channel::Alipay
    }
    fn request(&self) -> &HttpRequest {
        &self.request
    }
    fn shop_transaction_id(&self) -> &ShopTransactionId {
        &self.key
    }
    fn request_date(&self) -> Option<KoreaDate> {
        Some(KoreaDate::of(std::time::SystemTime::now()))
    }
    fn expected(&self) -> Expected<'_> {
        Expected {
            pg_cno: PG_CNO,
            amount: None,
        }
    }
    fn interpret(&self, body: &[u8]) -> Interpreted<Answer> {
        match serde_json::from_slice::<Answer>(body) {
            Ok(a) if a.res_cd == "0000" => Interpreted::Success(a),
            Ok(a) => Interpreted::Gateway {
                res_cd: a.res_cd,
                res_msg: a.res_msg,
                detail: None,
            },
            Err(e) => Interpreted::Unreadable(e.to_string()),
        }
    }
    fn prepare_resend(&mut self, _resend: Resend) -> Result<(), FieldError> {
        Ok(())
    }
}

/// Answers from a script.
struct Scripted(Mutex<VecDeque<Result<HttpResponse, TransportError>>>);

impl Scripted {
    fn new(steps: impl IntoIterator<Item = Result<HttpResponse, TransportError>>) -> Self {
        Scripted(Mutex::new(steps.into_iter().collect()))
    }
}

impl Transport for Scripted {
    async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.0
            .lock()
            .expect("script")
            .pop_front()
            .expect("script too short")
    }
}

fn answer(res_cd: &str) -> Result<HttpResponse, TransportError> {
    let body = format!(
        r#"{{"resCd":"{res_cd}","resMsg":"m","shopTransactionId":"{KEY}","pgCno":"{PG_CNO}"}}"#
    );
    Ok(http::Response::new(Bytes::from(body)))
}

fn policy() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(2)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(2))
        .deadline(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn cancel(transport: &Scripted) -> Result<Answer, Error> {
    let labels = CancelLabels::new("alipay", PG_CNO);
    execute(transport, Fake::new(), policy(), labels).await
}

/// name -> sorted labels -> value, for every series in the snapshot.
type Series = BTreeMap<(MetricKind, String, Vec<(String, String)>), DebugValue>;

fn series(snapshotter: &Snapshotter) -> Series {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _unit, _description, value)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            ((kind, key.name().to_owned(), labels), value)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

fn counter(s: &Series, name: &str, pairs: &[(&str, &str)]) -> Option<u64> {
    match s.get(&(MetricKind::Counter, name.to_owned(), labels(pairs))) {
        Some(DebugValue::Counter(n)) => Some(*n),
        _ => None,
    }
}

#[test]
fn success_decline_and_unknown_are_counted_with_bounded_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let (success, declined, unknown) = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let success = cancel(&Scripted::new([answer("0000")])).await;
            // A decline that is a final answer.
            let declined = cancel(&Scripted::new([answer("R102")])).await;
            // Two attempts that time out: may have been processed.
            let timeout = || Err(TransportError::Timeout(Duration::from_secs(30)));
            let unknown = cancel(&Scripted::new([timeout(), timeout()])).await;
            (success, declined, unknown)
        })
    });
    assert!(success.is_ok(), "{success:?}");
    assert!(matches!(declined, Err(Error::Declined(_))), "{declined:?}");
    assert!(
        matches!(unknown, Err(Error::Ambiguous { .. })),
        "{unknown:?}"
    );

    let s = series(&snapshotter);
    let alipay = [("channel", "alipay")];
    for outcome in ["success", "declined", "unknown"] {
        assert_eq!(
            counter(
                &s,
                CANCELS_TOTAL,
                &[("channel", "alipay"), ("outcome", outcome)]
            ),
            Some(1),
            "{outcome}: {s:?}"
        );
    }
    assert_eq!(
        counter(
            &s,
            ATTEMPTS_TOTAL,
            &[("channel", "alipay"), ("result", "http_2xx")]
        ),
        Some(2)
    );
    assert_eq!(
        counter(
            &s,
            ATTEMPTS_TOTAL,
            &[("channel", "alipay"), ("result", "timeout")]
        ),
        Some(2)
    );
    match s.get(&(
        MetricKind::Histogram,
        ATTEMPT_DURATION_SECONDS.to_owned(),
        labels(&alipay),
    )) {
        Some(DebugValue::Histogram(samples)) => {
            assert_eq!(samples.len(), 4, "one sample per attempt");
            assert!(samples.iter().all(|v| v.into_inner() >= 0.0));
        }
        other => panic!("no attempt histogram: {other:?}"),
    }
    match s.get(&(
        MetricKind::Gauge,
        CANCELS_IN_FLIGHT.to_owned(),
        labels(&alipay),
    )) {
        Some(DebugValue::Gauge(v)) => assert_eq!(v.into_inner(), 0.0, "all finished"),
        other => panic!("no in-flight gauge: {other:?}"),
    }

    // Exactly these series, and no label value that identifies a payment or a request.
    let names: Vec<_> = s.keys().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    for (_, name, pairs) in s.keys() {
        for (key, value) in pairs {
            assert!(
                ["channel", "outcome", "result"].contains(&key.as_str()),
                "{name}: label {key}"
            );
            assert!(
                !value.contains(PG_CNO) && !value.contains(KEY),
                "{name}: {key}={value}"
            );
        }
    }
}

/// Never answers: the cancel stays in flight.
struct Never;

impl Transport for Never {
    async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
        std::future::pending().await
    }
}

fn in_flight_gauge(s: &Series) -> Option<f64> {
    match s.get(&(
        MetricKind::Gauge,
        CANCELS_IN_FLIGHT.to_owned(),
        labels(&[("channel", "generic")]),
    )) {
        Some(DebugValue::Gauge(v)) => Some(v.into_inner()),
        _ => None,
    }
}

/// Polls a cancel over a transport that never answers once, then looks
/// (`look_before_drop`) or drops it first and looks after.
fn in_flight(look_before_drop: bool) -> Series {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let cancel_labels = CancelLabels::new("generic", PG_CNO);
        let mut future = Box::pin(execute(&Never, Fake::new(), policy(), cancel_labels));
        let poll = future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        assert!(poll.is_pending());
        if !look_before_drop {
            drop(future);
        }
        // (A snapshot resets the debugging recorder's values: one look per run.)
        series(&snapshotter)
    })
}

#[test]
fn a_cancel_is_in_flight_until_it_finishes_or_is_dropped() {
    assert_eq!(in_flight_gauge(&in_flight(true)), Some(1.0));
    let rest = in_flight(false);
    assert_eq!(
        in_flight_gauge(&rest),
        Some(0.0),
        "a dropped cancel is no longer in flight"
    );
    assert!(
        rest.keys().all(|(_, name, _)| name != CANCELS_TOTAL),
        "an abandoned cancel has no outcome: {rest:?}"
    );
}
