//! Criterion benchmarks of kicc-wechat: building + validating + signing + serializing a
//! cancel request (with `notifyUrl`), reading the acceptance and the status answer, and the
//! floor beside each (HMAC-SHA256 plus serde_json of the same fields as a plain struct;
//! serde_json into a plain struct).
//!
//! Run by `cargo xtask bench`, which reports the ratios (see BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement/demo harness: a failed setup step may panic

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use kicc_core::retry::Interpreted;
use kicc_core::{Merchant, NotifyUrl, PgCno, ShopTransactionId};
use kicc_wechat::{CancelRequest, FindResponse, ReviseResponse};

const PG_CNO: &str = "SBP20261121000000001";
const KEY: &str = "01JD4Q8Z6K3M5N7P9R1T3V5X7Z";
const DATE: &str = "20261122";
const NOTIFY_URL: &str = "https://shop.example.com/kicc/wechat/notify";
/// 2026-11-21T15:00:00Z, already the 22nd in Korea.
const NOW_UNIX: u64 = 1_795_273_200;

const RESPONSE: &[u8] = br#"{"resCd":"0000","resMsg":"Success","shopTransactionId":"01JD4Q8Z6K3M5N7P9R1T3V5X7Z","mallId":"T0000001","resDetailMsg":"","pgCno":"SBP20261121000000001","cancelPgCno":"SBC20261121000000001","transactionDate":"20261122000512","amountInfo":{"currency":"KRW","totAmount":51004}}"#;
const FIND_RESPONSE: &[u8] = br#"{"resCd":"0000","resMsg":"Success","shopTransactionId":"01JD4Q8Z6K3M5N7P9R1T3V5X7Z","mallId":"T0000001","pgCno":"SBP20261121000000001","cancelPgCno":"SBC20261121000000001","transactionDate":"20261122000512","cancelStatus":"TS02","resDetailMsg":"","amountInfo":{"currency":"KRW","totAmount":51004}}"#;

/// The cancel message's fields, as a hand-written integration would hold them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PlainRequest<'a> {
    mall_id: &'a str,
    shop_transaction_id: &'a str,
    pg_cno: &'a str,
    revise_type_code: &'a str,
    cancel_req_date: &'a str,
    msg_auth_value: &'a str,
    notify_url: &'a str,
}

/// The acceptance as a plain struct: the floor for reading it.
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
    res_detail_msg: String,
    #[serde(default)]
    pg_cno: String,
    #[serde(default)]
    cancel_pg_cno: String,
    #[serde(default)]
    transaction_date: String,
    #[serde(default)]
    amount_info: Option<PlainAmount>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // fields are read by serde only
struct PlainAmount {
    currency: String,
    tot_amount: u64,
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_UNIX)
}

fn floor() -> Vec<u8> {
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
        revise_type_code: black_box("40"),
        cancel_req_date: black_box(DATE),
        msg_auth_value: std::str::from_utf8(&hex).expect("hex is ASCII"),
        notify_url: black_box(NOTIFY_URL),
    })
}

fn build(merchant: &Merchant, now: SystemTime) -> Vec<u8> {
    let request = CancelRequest::full(PgCno::new(black_box(PG_CNO)).expect("valid"))
        .notify_url(NotifyUrl::new(black_box(NOTIFY_URL)).expect("valid"));
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

fn benches(c: &mut Criterion) {
    let merchant = merchant();
    let now = now();
    let key = ShopTransactionId::new(KEY).expect("valid");
    let mut g = c.benchmark_group("wechat");

    g.bench_function("floor", |b| b.iter(floor));
    g.bench_function("build", |b| b.iter(|| build(&merchant, now)));
    g.bench_function("build_http", |b| {
        b.iter(|| {
            let request = CancelRequest::full(PgCno::new(black_box(PG_CNO)).expect("valid"))
                .notify_url(NotifyUrl::new(black_box(NOTIFY_URL)).expect("valid"));
            let key = ShopTransactionId::new(black_box(KEY)).expect("valid");
            request
                .message(&merchant, key, black_box(now))
                .exchange(&merchant)
                .expect("valid URI")
        })
    });

    g.bench_function("parse_response", |b| b.iter(|| parse(&key)));
    g.bench_function("floor_parse_response", |b| b.iter(floor_parse));
    g.bench_function("parse_find_response", |b| {
        b.iter(
            || match FindResponse::read(200, black_box(FIND_RESPONSE), &key) {
                Interpreted::Success(r) => r,
                other => panic!("fixture must read as success: {other:?}"),
            },
        )
    });
    g.finish();
}

/// Keeps the harness's generated `pub fn` out of the crate's documented surface.
mod group {
    criterion::criterion_group!(wechat, super::benches);
}

#[path = "../../kicc-core/benches/support/mod.rs"]
mod support;

use support::{hmac_hex, merchant, plain_json, MALL_ID, SECRET};

fn main() {
    group::wechat();
    Criterion::default().configure_from_args().final_summary();
    if !support::wanted() {
        return;
    }
    let merchant = merchant();
    let now = now();
    let key = ShopTransactionId::new(KEY).expect("valid");
    support::write(
        "wechat",
        &[
            (
                "build_vs_floor",
                support::paired_ratio(|| build(&merchant, now), floor, 3000),
            ),
            (
                "parse_response_vs_floor",
                support::paired_ratio(|| parse(&key), floor_parse, 3000),
            ),
        ],
    );
}
