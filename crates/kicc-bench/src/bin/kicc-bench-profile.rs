//! `kicc-bench-profile`: the in-memory Alipay client path, N times, for an instruction-count
//! profiler (valgrind's callgrind), which is stable on a loaded machine where wall-clock
//! timing is not.
//!
//! ```text
//! kicc-bench-profile [client|cancel|floor] [N]
//! ```
//!
//! - `client` (default): `AlipayClient::cancel_with_key` over a transport that answers from
//!   memory (build, validate, sign, serialize, the retry driver, read the answer), as the
//!   `alipay/client_in_memory` criterion benchmark.
//! - `cancel`: `AlipayClient::cancel`, which also generates the key (OS-seeded).
//! - `floor`: what the client cannot skip: the same request built up to the
//!   `http::Request` (`ReviseRequest::exchange`) and the same answer read
//!   (`ReviseResponse::read`), with no driver.
//!
//! Each mode's loop runs inside the `#[inline(never)]` `poll` of [`Measured`], so callgrind
//! can count only it (not the runtime's start or the process's):
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*Measured*poll*' \
//!     target/release/kicc-bench-profile client 10000
//! ```
//!
//! The instructions per cancel are the total divided by N. Prints `name value unit` lines
//! (N and the mode) so that a run is self-describing.
#![forbid(unsafe_code)]

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use kicc_alipay::{AlipayClient, CancelRequest, ReviseResponse};
use kicc_core::retry::Interpreted;
use kicc_core::{
    BaseUrl, Environment, KoreaDateTime, MallId, Merchant, PgCno, SecretKey, ShopTransactionId,
};
use kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};

const USAGE: &str = "usage: kicc-bench-profile [client|cancel|floor] [N]";

const PG_CNO: &str = "SBP20261121000000001";
const KEY: &str = "01JD4Q8Z6K3M5N7P9R1T3V5X7Z";
/// The answer the sandbox gives a full Alipay cancel of `PG_CNO` keyed `KEY` (the
/// `alipay/client_in_memory` benchmark's fixture).
const RESPONSE: &[u8] = br#"{"resCd":"0000","resMsg":"Success","mallId":"T0000001","shopTransactionId":"01JD4Q8Z6K3M5N7P9R1T3V5X7Z","pgCno":"SBP20261121000000001","cancelPgCno":"SBC20261121000000001","transactionDate":"20261122000512","amountInfo":{"currency":"USD","totAmount":1203}}"#;

/// The fixture's `transactionDate`, which the client checks is not before its request.
const FIXTURE_DATE: &str = "20261122000512";

/// [`RESPONSE`] dated now (Korea time): an answer dated before the request describes an
/// earlier cancel, and the client rightly refuses to take it as this one's.
fn response_dated_now() -> Vec<u8> {
    let now = KoreaDateTime::of(SystemTime::now());
    String::from_utf8_lossy(RESPONSE)
        .replace(FIXTURE_DATE, now.as_str())
        .into_bytes()
}

/// Answers every request with the same body; for `cancel` (a new key per request) it
/// echoes the request's `shopTransactionId` so that the answer ties.
struct Canned {
    body: Bytes,
    echo_key: bool,
}

impl Transport for Canned {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if !self.echo_key {
            return Ok(http::Response::new(self.body.clone()));
        }
        // The key is the 26 characters after `"shopTransactionId":"` (a generated ULID).
        const FIELD: &[u8] = br#""shopTransactionId":""#;
        let body = request.body();
        let key = body
            .windows(FIELD.len())
            .position(|w| w == FIELD)
            .and_then(|at| body.get(at + FIELD.len()..at + FIELD.len() + KEY.len()))
            .ok_or_else(|| TransportError::Io("no shopTransactionId in the request".into()))?;
        let mut answer = self.body.to_vec();
        let at = answer
            .windows(KEY.len())
            .position(|w| w == KEY.as_bytes())
            .ok_or_else(|| TransportError::Io("fixture without its key".into()))?;
        answer[at..at + KEY.len()].copy_from_slice(key);
        Ok(http::Response::new(Bytes::from(answer)))
    }
}

fn merchant() -> Result<Merchant, String> {
    Ok(Merchant::new(
        Environment::Custom(BaseUrl::new("http://127.0.0.1:8780").map_err(|e| e.to_string())?),
        MallId::new("T0000001").map_err(|e| e.to_string())?,
        SecretKey::new("sandbox-secret-key").map_err(|e| e.to_string())?,
    ))
}

fn request() -> Result<CancelRequest, String> {
    Ok(CancelRequest::full(
        PgCno::new(black_box(PG_CNO)).map_err(|e| e.to_string())?,
    ))
}

fn key() -> Result<ShopTransactionId, String> {
    ShopTransactionId::new(black_box(KEY)).map_err(|e| e.to_string())
}

/// A future whose `poll` is never inlined: the symbol callgrind's `--toggle-collect` names.
struct Measured<F>(Pin<Box<F>>);

impl<F: Future> Future for Measured<F> {
    type Output = F::Output;

    #[inline(never)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.0.as_mut().poll(cx)
    }
}

async fn profile_client(client: &AlipayClient<Canned>, n: usize) -> Result<(), String> {
    for _ in 0..n {
        let response = client
            .cancel_with_key(&request()?, key()?)
            .await
            .map_err(|e| e.to_string())?;
        black_box(response);
    }
    Ok(())
}

async fn profile_cancel(client: &AlipayClient<Canned>, n: usize) -> Result<(), String> {
    for _ in 0..n {
        let response = client
            .cancel(&request()?)
            .await
            .map_err(|e| e.to_string())?;
        black_box(response);
    }
    Ok(())
}

fn profile_floor(merchant: &Merchant, body: &[u8], n: usize) -> Result<(), String> {
    // The same wall-clock read the client makes for `cancelReqDate`.
    for _ in 0..n {
        let key = key()?;
        let message = request()?.message(merchant, key.clone(), SystemTime::now());
        let exchange = message.exchange(merchant).map_err(|e| e.to_string())?;
        black_box(exchange);
        match ReviseResponse::read(200, black_box(body), &key) {
            Interpreted::Success(r) => {
                black_box(r);
            }
            other => return Err(format!("fixture must read as success: {other:?}")),
        }
    }
    Ok(())
}

fn run(mode: &str, n: usize) -> Result<(), String> {
    let merchant = merchant()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let body = Bytes::from(response_dated_now());
    let client = |echo_key| {
        let body = body.clone();
        AlipayClient::with_transport(merchant.clone(), Canned { body, echo_key })
    };
    {
        // The size of one cancel's future: every move of it is a memcpy of this many bytes.
        let c = client(false);
        let (request, key) = (request()?, key()?);
        let future = c.cancel_with_key(&request, key);
        println!(
            "profile_cancel_future_size {} bytes",
            std::mem::size_of_val(&future)
        );
    }
    match mode {
        "client" => runtime.block_on(Measured(Box::pin(profile_client(&client(false), n))))?,
        "cancel" => runtime.block_on(Measured(Box::pin(profile_cancel(&client(true), n))))?,
        "floor" => runtime.block_on(Measured(Box::pin(async {
            profile_floor(&merchant, &body, n)
        })))?,
        other => return Err(format!("unknown mode {other:?}\n{USAGE}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("client");
    let n = match args.get(1).map(|s| s.parse::<usize>()) {
        None => 10_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("N must be a positive number\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(mode, n) {
        Ok(()) => {
            println!("profile_mode_{mode} {n} cancels");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kicc-bench-profile: {e}");
            ExitCode::FAILURE
        }
    }
}
