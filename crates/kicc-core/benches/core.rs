//! Criterion benchmarks of kicc-core: the revise head (validate + sign + serialize), the
//! webhooks, and beside them the floor a hand-written integration cannot go below: HMAC-SHA256
//! of the same input plus serde_json of the same fields as a plain struct of `&str`.
//!
//! `cargo xtask bench` runs these and reports `core_build_vs_floor_ratio` (goal: at most 1.5).
//! Every input is fixed, so runs are comparable; `black_box` keeps the compiler from
//! precomputing anything.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement/demo harness: a failed setup step may panic

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use kicc_core::message::{to_json, ReviseHead};
use kicc_core::webhook::{GenericNotice, WechatCancelNotice};
use kicc_core::{KoreaDate, Merchant, PgCno, ReviseTypeCode, ShopTransactionId};

const PG_CNO: &str = "SBP20261121000000001";
const KEY: &str = "01JD4Q8Z6K3M5N7P9R1T3V5X7Z";
const DATE: &str = "20261122";
/// 2026-11-21T15:00:00Z, already the 22nd in Korea.
const NOW_UNIX: u64 = 1_795_273_200;

const WECHAT_NOTICE: &[u8] = br#"{"resCd":"0000","resMsg":"Success","mallId":"T0000001","shopOrderNo":"SO20261121000000001","pgCno":"SBP20261121000000001","cancelPgCno":"SBC20261121000000001","cancelDate":"20261122000512","amountInfo":{"currency":"KRW","amount":51004}}"#;
const GENERIC_NOTICE: &[u8] = br#"{"notiType":"20","resCd":"0000","resMsg":"Success","mallId":"T0000001","pgCno":"SBP20261121000000001","shopOrderNo":"SO20261121000000001","cancelPgCno":"SBC20261121000000001","amount":"51004","cancelAmount":"51004","remainAmount":"0","statusCode":"TS02","transactionDate":"20261122000512","payMethodTypeCode":"11"}"#;

/// The same six fields as `ReviseHead`, as a hand-written integration would hold them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PlainHead<'a> {
    mall_id: &'a str,
    shop_transaction_id: &'a str,
    pg_cno: &'a str,
    revise_type_code: &'a str,
    cancel_req_date: &'a str,
    msg_auth_value: &'a str,
}

/// The WeChat notice as a plain struct: the floor for parsing it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // fields are read by serde only
struct PlainNotice {
    res_cd: String,
    #[serde(default)]
    res_msg: String,
    #[serde(default)]
    mall_id: String,
    #[serde(default)]
    shop_order_no: String,
    pg_cno: String,
    cancel_pg_cno: String,
    #[serde(default)]
    cancel_date: String,
    #[serde(default)]
    amount_info: Option<PlainAmount>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)] // fields are read by serde only
struct PlainAmount {
    currency: String,
    amount: u64,
}

fn floor() -> Vec<u8> {
    let mut hex = [0u8; 64];
    hmac_hex(
        black_box(SECRET.as_bytes()),
        black_box(PG_CNO),
        black_box(KEY),
        &mut hex,
    );
    plain_json(&PlainHead {
        mall_id: black_box(MALL_ID),
        shop_transaction_id: black_box(KEY),
        pg_cno: black_box(PG_CNO),
        revise_type_code: black_box("40"),
        cancel_req_date: black_box(DATE),
        msg_auth_value: std::str::from_utf8(&hex).expect("hex is ASCII"),
    })
}

fn head(merchant: &Merchant, now: SystemTime) -> ReviseHead {
    let pg = PgCno::new(black_box(PG_CNO)).expect("valid");
    let key = ShopTransactionId::new(black_box(KEY)).expect("valid");
    ReviseHead::new(
        merchant,
        pg,
        ReviseTypeCode::Full,
        key,
        KoreaDate::of(black_box(now)),
    )
}

/// The SDK: validate the text inputs, date from an instant, sign, serialize.
fn build(merchant: &Merchant, now: SystemTime) -> Vec<u8> {
    to_json(&head(merchant, now))
}

/// The same, up to the `http::Request` handed to a transport.
fn build_http(merchant: &Merchant, now: SystemTime) -> http::Request<bytes::Bytes> {
    merchant
        .post_json("/api/trades/alipay/revise", to_json(&head(merchant, now)))
        .expect("valid URI")
}

fn parse_wechat() -> WechatCancelNotice {
    WechatCancelNotice::parse(black_box(WECHAT_NOTICE)).expect("valid notice")
}

fn floor_parse_wechat() -> PlainNotice {
    serde_json::from_slice::<PlainNotice>(black_box(WECHAT_NOTICE)).expect("valid notice")
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_UNIX)
}

fn benches(c: &mut Criterion) {
    let merchant = merchant();
    let now = now();
    let mut g = c.benchmark_group("core");

    // The floor: the two primitives a correct request cannot avoid.
    g.bench_function("floor_hmac", |b| {
        b.iter(|| {
            let mut hex = [0u8; 64];
            hmac_hex(
                black_box(SECRET.as_bytes()),
                black_box(PG_CNO),
                black_box(KEY),
                &mut hex,
            );
            hex
        })
    });
    g.bench_function("floor_serde", |b| {
        let mac = "0".repeat(64);
        b.iter(|| {
            plain_json(&PlainHead {
                mall_id: black_box(MALL_ID),
                shop_transaction_id: black_box(KEY),
                pg_cno: black_box(PG_CNO),
                revise_type_code: black_box("40"),
                cancel_req_date: black_box(DATE),
                msg_auth_value: black_box(&mac),
            })
        })
    });
    g.bench_function("floor", |b| b.iter(floor));
    g.bench_function("build", |b| b.iter(|| build(&merchant, now)));
    g.bench_function("build_http", |b| b.iter(|| build_http(&merchant, now)));
    g.bench_function("date_of_instant", |b| {
        b.iter(|| {
            KoreaDate::of(black_box(
                SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_UNIX),
            ))
        })
    });

    // Webhooks, and the floor for reading the WeChat one.
    g.bench_function("parse_webhook_wechat", |b| b.iter(parse_wechat));
    g.bench_function("floor_parse_webhook_wechat", |b| b.iter(floor_parse_wechat));
    g.bench_function("parse_webhook_generic", |b| {
        b.iter(|| GenericNotice::parse(black_box(GENERIC_NOTICE)).expect("valid notice"))
    });
    g.finish();
}

/// Keeps the harness's generated `pub fn` out of the crate's documented surface.
mod group {
    criterion::criterion_group!(core, super::benches);
}

mod support;

use support::{hmac_hex, merchant, plain_json, MALL_ID, SECRET};

fn main() {
    group::core();
    Criterion::default().configure_from_args().final_summary();
    if !support::wanted() {
        return;
    }
    let merchant = merchant();
    let now = now();
    support::write(
        "core",
        &[
            (
                "build_vs_floor",
                support::paired_ratio(|| build(&merchant, now), floor, 3000),
            ),
            (
                "build_http_vs_floor",
                support::paired_ratio(|| build_http(&merchant, now), floor, 3000),
            ),
            (
                "parse_webhook_wechat_vs_floor",
                support::paired_ratio(parse_wechat, floor_parse_wechat, 3000),
            ),
        ],
    );
}
