//! Criterion benchmarks of kicc-generic: building + validating + signing + serializing a
//! cancel request, reading the response, and the floor beside each (HMAC-SHA256 plus
//! serde_json of the same fields as a plain struct; serde_json into a plain struct).
//!
//! Run by `cargo xtask bench`, which reports the ratios (see BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement/demo harness: a failed setup step may panic

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use kicc_core::retry::Interpreted;
use kicc_core::{Amount, Merchant, PgCno, ReviseMessage, ShopTransactionId};
use kicc_generic::{CancelRequest, PaymentMethod, ReviseResponse};

const PG_CNO: &str = "SBP20261121000000001";
const KEY: &str = "01JD4Q8Z6K3M5N7P9R1T3V5X7Z";
const DATE: &str = "20261122";
const REASON: &str = "customer request";
/// 2026-11-21T15:00:00Z, already the 22nd in Korea.
const NOW_UNIX: u64 = 1_795_273_200;

/// The documentation's example response, in shape: amounts as strings, nested objects.
const RESPONSE: &[u8] = br#"{"resCd":"0000","resMsg":"Cancellation Successful","mallId":"T0000001","shopTransactionId":"01JD4Q8Z6K3M5N7P9R1T3V5X7Z","oriPgCno":"SBP20261121000000001","cancelPgCno":"SBC20261121000000001","shopOrderNo":"SO20261121000000001","cancelAmount":"51004","remainAmount":"0","transactionDate":"20261122000512","statusCode":"TS02","statusMessage":"Approval Cancelled","reviseInfo":{"payMethodTypeCode":"11","approvalNo":"00017177","approvalDate":"20261122000512","cardInfo":{"couponAmount":0}}}"#;

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
    amount: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remain_amount: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revise_message: Option<&'a str>,
}

/// The response as a plain struct: the floor for reading it (amounts kept as strings, as
/// a hand-written client that does not check them would).
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
    ori_pg_cno: String,
    #[serde(default)]
    cancel_pg_cno: String,
    #[serde(default)]
    cancel_amount: String,
    #[serde(default)]
    remain_amount: String,
    #[serde(default)]
    transaction_date: String,
    #[serde(default)]
    status_code: String,
    #[serde(default)]
    status_message: String,
    #[serde(default)]
    revise_info: Option<PlainReviseInfo>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // fields are read by serde only
struct PlainReviseInfo {
    #[serde(default)]
    pay_method_type_code: String,
    #[serde(default)]
    approval_no: String,
    #[serde(default)]
    approval_date: String,
    #[serde(default)]
    card_info: Option<PlainCardInfo>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // fields are read by serde only
struct PlainCardInfo {
    #[serde(default)]
    coupon_amount: u64,
}

fn floor(code: &str, amount: Option<u64>, remain: Option<u64>, reason: Option<&str>) -> Vec<u8> {
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
        amount: black_box(amount),
        remain_amount: black_box(remain),
        revise_message: black_box(reason),
    })
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_UNIX)
}

fn build(merchant: &Merchant, now: SystemTime) -> Vec<u8> {
    let request =
        CancelRequest::full(PgCno::new(black_box(PG_CNO)).expect("valid")).expect("valid");
    let key = ShopTransactionId::new(black_box(KEY)).expect("valid");
    request.message(merchant, key, black_box(now)).to_json()
}

fn build_partial(merchant: &Merchant, now: SystemTime) -> Vec<u8> {
    let amount = Amount::new("amount", black_box(1_000)).expect("valid");
    let balance = Amount::new("remainAmount", black_box(51_004)).expect("valid");
    let request = CancelRequest::partial(
        PgCno::new(black_box(PG_CNO)).expect("valid"),
        PaymentMethod::Card,
        amount,
    )
    .expect("valid")
    .remain_amount(balance)
    .expect("valid")
    .reason(ReviseMessage::new(black_box(REASON)).expect("valid"));
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
    let mut g = c.benchmark_group("generic");

    g.bench_function("floor", |b| b.iter(|| floor("40", None, None, None)));
    g.bench_function("build", |b| b.iter(|| build(&merchant, now)));
    g.bench_function("floor_partial", |b| {
        b.iter(|| floor("32", Some(1_000), Some(51_004), Some(REASON)))
    });
    g.bench_function("build_partial", |b| {
        b.iter(|| build_partial(&merchant, now))
    });
    g.bench_function("build_http", |b| {
        b.iter(|| {
            let request =
                CancelRequest::full(PgCno::new(black_box(PG_CNO)).expect("valid")).expect("valid");
            let key = ShopTransactionId::new(black_box(KEY)).expect("valid");
            request
                .message(&merchant, key, black_box(now))
                .to_http(&merchant)
                .expect("valid URI")
        })
    });

    g.bench_function("parse_response", |b| b.iter(|| parse(&key)));
    g.bench_function("floor_parse_response", |b| b.iter(floor_parse));
    g.finish();
}

/// Keeps the harness's generated `pub fn` out of the crate's documented surface.
mod group {
    criterion::criterion_group!(generic, super::benches);
}

#[path = "../../kicc-core/benches/support/mod.rs"]
mod support;

use support::{hmac_hex, merchant, plain_json, MALL_ID, SECRET};

fn main() {
    group::generic();
    Criterion::default().configure_from_args().final_summary();
    if !support::wanted() {
        return;
    }
    let merchant = merchant();
    let now = now();
    let key = ShopTransactionId::new(KEY).expect("valid");
    support::write(
        "generic",
        &[
            (
                "build_vs_floor",
                support::paired_ratio(
                    || build(&merchant, now),
                    || floor("40", None, None, None),
                    3000,
                ),
            ),
            (
                "build_partial_vs_floor_partial",
                support::paired_ratio(
                    || build_partial(&merchant, now),
                    || floor("32", Some(1_000), Some(51_004), Some(REASON)),
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
