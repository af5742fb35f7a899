//! Exporting kicc-transport's metrics to Prometheus.
//!
//! ```text
//! cargo run -p kicc-transport --example prometheus --features metrics
//! ```
//!
//! The library records through the `metrics` facade and installs nothing; the application
//! chooses the exporter. Here: metrics-exporter-prometheus's recorder, three cancels driven
//! over an in-memory transport that plays the gateway (a success, a decline, and two timeouts
//! that leave the outcome unknown), then the text a Prometheus scrape would get. In a service,
//! use `PrometheusBuilder::new().install()` (its `http-listener` feature) or serve
//! `handle.render()` from your own `/metrics` route.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement/demo harness: a failed setup step may panic

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use kicc_core::retry::{Describes, Exchange, Expected, Interpreted, Resend, RetryPolicy};
use kicc_core::{Channel, FieldError, KoreaDate, ShopTransactionId};
use kicc_transport::driver::{execute, CancelLabels};
use kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};
use metrics_exporter_prometheus::PrometheusBuilder;

/// A minimal exchange: one fixed request, resent as is, read by its `resCd`.
struct Demo {
    request: HttpRequest,
    key: ShopTransactionId,
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

impl Exchange for Demo {
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
            pg_cno: "demo",
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

/// Plays the gateway from a script.
struct Scripted(Mutex<VecDeque<Result<HttpResponse, TransportError>>>);

impl Transport for Scripted {
    async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let next = self.0.lock().ok().and_then(|mut q| q.pop_front());
        next.unwrap_or(Err(TransportError::Io("script ended".into())))
    }
}

fn answer(res_cd: &str, key: &str) -> Result<HttpResponse, TransportError> {
    let body = format!(
        r#"{{"resCd":"{res_cd}","resMsg":"demo","shopTransactionId":"{key}","pgCno":"demo"}}"#
    );
    Ok(http::Response::new(Bytes::from(body)))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Buckets make the attempt latency a Prometheus histogram (a summary otherwise); the
    // largest is KICC's 30 s per-attempt limit.
    let handle = PrometheusBuilder::new()
        .set_buckets(&[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])?
        .install_recorder()?;
    kicc_transport::metrics::describe();

    let timeout = || Err(TransportError::Timeout(Duration::from_secs(30)));
    let scripts = [
        vec![answer("0000", "DEMO0")],
        vec![answer("R102", "DEMO1")],
        vec![timeout(), timeout()],
    ];
    let policy = RetryPolicy::builder()
        .max_attempts(2)
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(10))
        .deadline(Duration::from_secs(5))
        .build()?;
    for (n, script) in scripts.into_iter().enumerate() {
        let exchange = Demo {
            request: http::Request::post("https://gateway.invalid/api/trades/alipay/revise")
                .body(Bytes::from_static(b"{}"))?,
            key: ShopTransactionId::new(format!("DEMO{n}"))?,
        };
        let transport = Scripted(Mutex::new(script.into()));
        let labels = CancelLabels::new("alipay", "demo");
        let outcome = execute(&transport, exchange, policy.clone(), labels).await;
        eprintln!("cancel {n}: {outcome:?}");
    }

    print!("{}", handle.render());
    Ok(())
}
