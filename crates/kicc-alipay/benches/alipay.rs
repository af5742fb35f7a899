//! Criterion benchmarks of kicc-alipay: building + validating + signing + serializing a
//! cancel request, reading the response, and the floor beside each (HMAC-SHA256 plus
//! serde_json of the same fields as a plain struct; serde_json into a plain struct).
//!
//! Run by `cargo xtask bench`, which reports the ratios (see BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement/demo harness: a failed setup step may panic

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use kicc_alipay::{CancelRequest, ReviseResponse};
use kicc_core::retry::Interpreted;
use kicc_core::{Currency, Memo, Merchant, Money, PgCno, ShopTransactionId};

const PG_CNO: &str = "SBP20261121000000001";
const KEY: &str = "01JD4Q8Z6K3M5N7P9R1T3V5X7Z";
const DATE: &str = "20261122";
const MEMO: &str = "customer request";
/// 2026-11-21T15:00:00Z, already the 22nd in Korea.
const NOW_UNIX: u64 = 1_795_273_200;

const RESPONSE: &[u8] = br#"{"resCd":"0000","resMsg":"Success","mallId":"T0000001","shopTransactionId":"01JD4Q8Z6K3M5N7P9R1T3V5X7Z","pgCno":"SBP20261121000000001","cancelPgCno":"SBC20261121000000001","transactionDate":"20261122000512","amountInfo":{"currency":"USD","totAmount":1203}}"#;

/// The partial-cancel message's fields, as a hand-written integration would hold them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PlainRequest<'a> {
    mall_id: &'a str,
    shop_transaction_id: &'a str,
    pg_cno: &'a str,
    revise_type_code: &'a str,
    cancel_req_date: &'a str,
    msg_auth_value: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    memo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_info: Option<PlainAmount<'a>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainAmount<'a> {
    currency: &'a str,
    tot_amount: u64,
}

/// The response as a plain struct: the floor for reading it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // fields are read by serde only
struct PlainResponse {
    res_cd: String,
    #[serde(default)]
    res_msg: String,
    #[serde(default)]
    shop_transaction_id: String,
    #[serde(default)]
    mall_id: String,
    #[serde(default)]
    pg_cno: String,
    #[serde(default)]
    cancel_pg_cno: String,
    #[serde(default)]
    transaction_date: String,
    #[serde(default)]
    amount_info: Option<PlainResponseAmount>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // fields are read by serde only
struct PlainResponseAmount {
    currency: String,
    tot_amount: u64,
}

fn floor(code: &str, memo: Option<&str>, amount: Option<u64>) -> Vec<u8> {
    let mut hex = [0u8; 64];
    hmac_hex(
        black_box(SECRET.as_bytes()),
        black_box(PG_CNO),
        black_box(KEY),
        &mut hex,
    );
    plain_json(&PlainRequest {
        mall_id: black_box(MALL_ID),
        shop_transaction_id: black_box(KEY),
        pg_cno: black_box(PG_CNO),
        revise_type_code: black_box(code),
        cancel_req_date: black_box(DATE),
        msg_auth_value: std::str::from_utf8(&hex).expect("hex is ASCII"),
        memo: black_box(memo),
        amount_info: amount.map(|a| PlainAmount {
            currency: "USD",
            tot_amount: black_box(a),
        }),
    })
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_UNIX)
}

fn build(merchant: &Merchant, now: SystemTime) -> Vec<u8> {
    let request = CancelRequest::full(PgCno::new(black_box(PG_CNO)).expect("valid"));
    let key = ShopTransactionId::new(black_box(KEY)).expect("valid");
    request.message(merchant, key, black_box(now)).to_json()
}

fn build_partial(merchant: &Merchant, now: SystemTime) -> Vec<u8> {
    let amount =
        Money::from_minor("amountInfo.totAmount", Currency::Usd, black_box(1203)).expect("valid");
    let request = CancelRequest::partial(PgCno::new(black_box(PG_CNO)).expect("valid"), amount)
        .memo(Memo::new(black_box(MEMO)).expect("valid"));
    let key = ShopTransactionId::new(black_box(KEY)).expect("valid");
    request.message(merchant, key, black_box(now)).to_json()
}

fn parse(key: &ShopTransactionId) -> ReviseResponse {
    match ReviseResponse::read(200, black_box(RESPONSE), key) {
        Interpreted::Success(r) => r,
        other => panic!("fixture must read as success: {other:?}"),
    }
}

fn floor_parse() -> PlainResponse {
    serde_json::from_slice::<PlainResponse>(black_box(RESPONSE)).expect("valid")
}

/// The whole client path with no network: `AlipayClient::cancel_with_key` (build, validate,
/// sign, serialize, the retry driver, read the answer) over a transport that answers at
/// once from memory. Compared with `build_http` + `parse_response`, it shows what the
/// driver adds.
#[cfg(feature = "hyper")]
mod in_memory {
    use super::*;
    use criterion::measurement::WallTime;
    use criterion::BenchmarkGroup;
    use kicc_alipay::AlipayClient;
    use kicc_transport::{HttpRequest, HttpResponse, Transport, TransportError};
    use std::future::Future as _;

    /// Answers every request with the same success body.
    pub struct Canned(bytes::Bytes);

    impl Transport for Canned {
        async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
            Ok(http::Response::new(self.0.clone()))
        }
    }

    /// A client over [`Canned`], answering with [`RESPONSE`] dated now: the client rightly
    /// refuses an answer dated before its request (an earlier cancel), so a fixed date
    /// would turn every cancel into an error.
    pub fn client(merchant: &Merchant) -> AlipayClient<Canned> {
        let now = kicc_core::KoreaDateTime::of(SystemTime::now());
        let body = String::from_utf8_lossy(RESPONSE).replace("20261122000512", now.as_str());
        AlipayClient::with_transport(merchant.clone(), Canned(bytes::Bytes::from(body)))
    }

    /// One whole cancel, polled once without a runtime: [`Canned`] answers at once and a
    /// first attempt that succeeds sets no timer, so the future is ready on its first poll.
    pub fn once(client: &AlipayClient<Canned>) -> ReviseResponse {
        let request = CancelRequest::full(PgCno::new(black_box(PG_CNO)).expect("valid"));
        let key = ShopTransactionId::new(black_box(KEY)).expect("valid");
        let future = std::pin::pin!(client.cancel_with_key(&request, key));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.poll(&mut cx) {
            std::task::Poll::Ready(response) => response.expect("canned success"),
            std::task::Poll::Pending => panic!("an in-memory cancel must not wait"),
        }
    }

    pub fn bench(g: &mut BenchmarkGroup<'_, WallTime>, merchant: &Merchant) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = client(merchant);
        g.bench_function("client_in_memory", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let t0 = std::time::Instant::now();
                    for _ in 0..iters {
                        let request =
                            CancelRequest::full(PgCno::new(black_box(PG_CNO)).expect("valid"));
                        let key = ShopTransactionId::new(black_box(KEY)).expect("valid");
                        let response = client
                            .cancel_with_key(&request, key)
                            .await
                            .expect("canned success");
                        black_box(response);
                    }
                    t0.elapsed()
                })
            })
        });
    }
}

fn benches(c: &mut Criterion) {
    let merchant = merchant();
    let now = now();
    let key = ShopTransactionId::new(KEY).expect("valid");
    let mut g = c.benchmark_group("alipay");

    g.bench_function("floor", |b| b.iter(|| floor("40", None, None)));
    g.bench_function("build", |b| b.iter(|| build(&merchant, now)));
    g.bench_function("floor_partial", |b| {
        b.iter(|| floor("32", Some(MEMO), Some(1203)))
    });
    g.bench_function("build_partial", |b| {
        b.iter(|| build_partial(&merchant, now))
    });
    g.bench_function("build_http", |b| {
        b.iter(|| {
            let request = CancelRequest::full(PgCno::new(black_box(PG_CNO)).expect("valid"));
            let key = ShopTransactionId::new(black_box(KEY)).expect("valid");
            request
                .message(&merchant, key, black_box(now))
                .exchange(&merchant)
                .expect("valid URI")
        })
    });

    #[cfg(feature = "hyper")]
    in_memory::bench(&mut g, &merchant);
    g.bench_function("parse_response", |b| b.iter(|| parse(&key)));
    g.bench_function("floor_parse_response", |b| b.iter(floor_parse));
    g.finish();
}

/// Keeps the harness's generated `pub fn` out of the crate's documented surface.
mod group {
    criterion::criterion_group!(alipay, super::benches);
}

#[path = "../../kicc-core/benches/support/mod.rs"]
mod support;

use support::{hmac_hex, merchant, plain_json, MALL_ID, SECRET};

fn main() {
    group::alipay();
    Criterion::default().configure_from_args().final_summary();
    if !support::wanted() {
        return;
    }
    let merchant = merchant();
    let now = now();
    let key = ShopTransactionId::new(KEY).expect("valid");
    #[cfg(feature = "hyper")]
    let client = in_memory::client(&merchant);
    // The whole in-memory client against what it cannot skip: the same request built up to
    // the `http::Request` it hands the transport, and the same answer read.
    #[cfg(feature = "hyper")]
    let client_ratio = support::paired_ratio(
        || in_memory::once(&client),
        || {
            let request = CancelRequest::full(PgCno::new(black_box(PG_CNO)).expect("valid"));
            let key = ShopTransactionId::new(black_box(KEY)).expect("valid");
            let exchange = request
                .message(&merchant, key.clone(), SystemTime::now())
                .exchange(&merchant)
                .expect("valid URI");
            (exchange, parse(&key))
        },
        3000,
    );
    support::write(
        "alipay",
        &[
            #[cfg(feature = "hyper")]
            ("client_in_memory_vs_build_http_and_parse", client_ratio),
            (
                "build_vs_floor",
                support::paired_ratio(|| build(&merchant, now), || floor("40", None, None), 3000),
            ),
            (
                "build_partial_vs_floor_partial",
                support::paired_ratio(
                    || build_partial(&merchant, now),
                    || floor("32", Some(MEMO), Some(1203)),
                    3000,
                ),
            ),
            (
                "parse_response_vs_floor",
                support::paired_ratio(|| parse(&key), floor_parse, 3000),
            ),
        ],
    );
}
