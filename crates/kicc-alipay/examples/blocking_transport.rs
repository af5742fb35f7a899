//! The message layer driven by your own, blocking HTTP code: no tokio, no hyper.
//!
//! A service with its own HTTP stack depends on `kicc-alipay` with `default-features = false`
//! and drives `kicc_core::retry::Cancellation` itself: send what it says, sleep until when it says,
//! report what happened. The retry rules (same key, same date; ambiguity after a timeout) stay
//! in the core.
//!
//! Run: `cargo run -p kicc-alipay --example blocking_transport` (starts a sandbox for itself on a
//! background thread, then cancels a USD payment with a blocking HTTP/1.1 client).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement/demo harness: a failed setup step may panic

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use kicc_alipay::{CancelRequest, ReviseResponse};
use kicc_core::retry::{Action, Cancellation, Delivery, Now, RetryPolicy};
use kicc_core::{BaseUrl, Environment, Error, MallId, Merchant, Rng, SecretKey, ShopTransactionId};

/// One blocking HTTP/1.1 exchange over a fresh connection (plain HTTP: loopback sandbox only;
/// use a TLS-capable client for KICC itself).
fn send_blocking(request: &http::Request<bytes::Bytes>) -> Result<(u16, Vec<u8>), (bool, String)> {
    let uri = request.uri();
    let host = uri.host().unwrap_or("127.0.0.1");
    let port = uri.port_u16().unwrap_or(80);
    // A failed connect means nothing was sent: `false` = cannot have reached the server.
    let mut stream = TcpStream::connect((host, port)).map_err(|e| (false, e.to_string()))?;
    let timeout = Some(Duration::from_secs(30));
    stream
        .set_read_timeout(timeout)
        .map_err(|e| (false, e.to_string()))?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        request.method(),
        uri.path(),
        request.body().len()
    );
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
    }
    head.push_str("\r\n");
    // From here on the request may have reached the server: errors are `true`.
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(request.body()))
        .map_err(|e| (true, e.to_string()))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| (true, e.to_string()))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or((true, "no HTTP header end".to_string()))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or((true, "bad status line".to_string()))?;
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body).ok_or((true, "bad chunked body".to_string()))?;
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Cancels with blocking IO, retrying exactly as the core decides.
fn cancel_blocking(merchant: &Merchant, request: &CancelRequest) -> Result<ReviseResponse, Error> {
    let now = SystemTime::now();
    let mut seed = [0u8; 32];
    // Seed from the clock here for brevity; use OS randomness (e.g. `getrandom`) in production.
    seed[..16].copy_from_slice(
        &now.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    let mut rng = Rng::from_seed(seed);
    let key = ShopTransactionId::generate(now, &mut rng);
    let message = request.message(merchant, key, now);
    let exchange = message.exchange(merchant)?;
    let mut cancellation = Cancellation::new(exchange, RetryPolicy::default(), rng);
    loop {
        let clock = Now::new(Instant::now(), SystemTime::now());
        let result = match cancellation.poll(clock) {
            Action::Done(outcome) => return outcome,
            Action::WaitUntil(until) => {
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
                continue;
            }
            Action::AwaitDelivery => continue,
            Action::Send(req) => send_blocking(req),
        };
        let clock = Now::new(Instant::now(), SystemTime::now());
        match &result {
            Ok((status, body)) => cancellation.on_delivery(
                Delivery::Response {
                    status: *status,
                    body,
                },
                clock,
            ),
            Err((false, why)) => {
                cancellation.on_delivery(Delivery::NotDelivered { reason: why }, clock)
            }
            Err((true, why)) => cancellation.on_delivery(Delivery::Unknown { reason: why }, clock),
        }
    }
}

fn main() {
    // A sandbox on its own thread and runtime, standing in for KICC.
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let sb = kicc_sandbox::Sandbox::start(
                "127.0.0.1:0".parse().expect("address"),
                kicc_sandbox::SandboxConfig::default(),
            )
            .await
            .expect("sandbox");
            let pay = sb
                .create_payment(
                    kicc_sandbox::Channel::Alipay,
                    5_000,
                    kicc_sandbox::Currency::Usd,
                )
                .expect("payment");
            tx.send((sb.base_url(), pay.pg_cno.clone())).expect("send");
            tokio::task::spawn_blocking(move || stop_rx.recv())
                .await
                .ok();
            let state = sb.payment(&pay.pg_cno).expect("state");
            println!(
                "sandbox: {} remaining {} cents",
                state.status_code, state.remaining_amount
            );
            assert_eq!(state.remaining_amount, 5_000 - 1203);
        });
    });
    let (base_url, pg_cno) = rx.recv().expect("sandbox started");

    let merchant = Merchant::new(
        Environment::Custom(BaseUrl::new(&base_url).expect("base url")),
        MallId::new(kicc_sandbox::DEFAULT_MALL_ID).expect("mall id"),
        SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY).expect("secret"),
    );
    let request = CancelRequest::from_text(
        kicc_core::CancelText::new(&pg_cno)
            .amount("12.03")
            .currency("USD"),
    )
    .expect("valid request");
    match cancel_blocking(&merchant, &request) {
        Ok(r) => println!(
            "cancelled {} as {} ({:?})",
            r.pg_cno, r.cancel_pg_cno, r.amount_info
        ),
        Err(e) => panic!("cancel failed: {e}"),
    }
    stop_tx.send(()).expect("stop");
    server.join().expect("sandbox thread");
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_runs() {
        super::main();
    }
}
