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

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use kicc_core::wire::Envelope;
use kicc_core::{
    Channel, Exchange, FieldError, Interpreted, Resend, RetryPolicy, ShopTransactionId,
};
use kicc_transport::driver::{execute, CancelLabels};
use kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};
use metrics_exporter_prometheus::PrometheusBuilder;

/// A minimal exchange: one fixed request, resent as is, read by its `resCd`.
struct Demo {
    request: HttpRequest,
    key: ShopTransactionId,
}

impl Exchange for Demo {
    type Output = String;
    fn channel(&self) -> Channel {
        Channel::Alipay
    }
    fn request(&self) -> &HttpRequest {
        &self.request
    }
    fn shop_transaction_id(&self) -> &ShopTransactionId {
        &self.key
    }
    fn interpret(&self, body: &[u8]) -> Interpreted<String> {
        match Envelope::read(body) {
            Some(e) if e.res_cd == "0000" => Interpreted::Success(e.res_msg),
            Some(e) => Interpreted::Gateway {
                res_cd: e.res_cd,
                res_msg: e.res_msg,
            },
            None => Interpreted::Unreadable("not JSON".into()),
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

fn answer(res_cd: &str) -> Result<HttpResponse, TransportError> {
    let body = format!(r#"{{"resCd":"{res_cd}","resMsg":"demo"}}"#);
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
        vec![answer("0000")],
        vec![answer("R102")],
        vec![timeout(), timeout()],
    ];
    let policy = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(10),
        deadline: Duration::from_secs(5),
    };
    for (n, script) in scripts.into_iter().enumerate() {
        let exchange = Demo {
            request: http::Request::post("https://gateway.invalid/api/trades/alipay/revise")
                .body(Bytes::from_static(b"{}"))?,
            key: ShopTransactionId::new(format!("DEMO{n}"))?,
        };
        let transport = Scripted(Mutex::new(script.into()));
        let labels = CancelLabels {
            channel: "alipay",
            pg_cno: "demo",
        };
        let outcome = execute(&transport, exchange, policy, labels).await;
        eprintln!("cancel {n}: {outcome:?}");
    }

    print!("{}", handle.render());
    Ok(())
}
