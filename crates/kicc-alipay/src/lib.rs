//! Alipay cancellations through KICC EasyPay (`POST /api/trades/alipay/revise`).
//!
//! - [`CancelRequest`]: what to cancel, full (`40`) or partial (`32`, with `amountInfo`:
//!   KRW in won, USD in cents).
//! - [`ReviseRequest`]: the exact message, `msgAuthValue` included, built by
//!   `CancelRequest::message` from a merchant, an idempotency key and the time.
//! - [`ReviseResponse`]: the answer.
//!
//! The message is the one `kicc-wechat` also uses ([`kicc_core::wallet`]); this crate names it
//! for the Alipay API.
//!
//! Retries follow the API's rule: after a timeout or `A210`..`A219`, the SAME message (same
//! `shopTransactionId`, same `cancelReqDate`, even after midnight) is sent again.
//! `ReviseRequest::exchange` gives `kicc_core::retry::Cancellation` exactly that.
//!
//! # A complete cancel
//!
//! With the default `hyper` feature, [`AlipayClient`] sends, retries and reads. This runs
//! against the embedded sandbox (the hidden lines start it); in production the environment is
//! `Environment::Production` and the secret comes from your secret store.
//!
// The example needs `Client::new` (feature `hyper`); without it the block is not run.
#![cfg_attr(feature = "hyper", doc = "```")]
#![cfg_attr(not(feature = "hyper"), doc = "```ignore")]
//! use kicc_alipay::{AlipayClient, CancelRequest};
//! use kicc_core::{BaseUrl, Environment, Error, MallId, Merchant, SecretKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = kicc_sandbox::Sandbox::start("127.0.0.1:0".parse()?, Default::default()).await?;
//! # let payment = sandbox.create_payment(kicc_sandbox::Channel::Alipay, 5_000, kicc_sandbox::Currency::Usd)?;
//! # let (sandbox_url, pg_cno) = (sandbox.base_url(), payment.pg_cno);
//! # let secret_from_your_vault = kicc_sandbox::DEFAULT_SECRET_KEY;
//! let merchant = Merchant::new(
//!     Environment::Custom(BaseUrl::new(&sandbox_url)?), // Environment::Production for real money
//!     MallId::new("T0000001")?,
//!     SecretKey::new(secret_from_your_vault)?,
//! );
//! let client = AlipayClient::new(merchant)?;
//!
//! // Refund $12.03 of a USD payment: sent as amountInfo.totAmount 1203 (cents).
//! let request = CancelRequest::from_text(kicc_core::CancelText::new(&pg_cno).amount("12.03").currency("USD"))?;
//! match client.cancel(&request).await {
//!     Ok(done) => println!("cancelled as {}", done.cancel_pg_cno),
//!     Err(e @ Error::Ambiguous { .. }) => {
//!         // Sent, outcome unknown: look the payment up before doing anything else.
//!         return Err(e.into());
//!     }
//!     Err(e) => return Err(e.into()), // declined or never processed: nothing moved
//! }
//! # assert_eq!(sandbox.payment(&pg_cno).unwrap().remaining_amount, 5_000 - 1203);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | (none) | | the messages, signing and reading: no IO at all |
//! | `transport` | via `hyper` | [`AlipayClient`] over any `kicc_transport::Transport`, with kicc-transport's retry driver (tokio timers); no hyper, rustls or tokio-rustls |
//! | `hyper` | yes | `transport` plus `kicc_transport::HyperTransport` and `AlipayClient::new` |
//!
//! Bring your own HTTP stack with `default-features = false, features = ["transport"]` and
//! `AlipayClient::with_transport`.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod api;
#[cfg(feature = "transport")]
mod client;

#[cfg(feature = "transport")]
#[cfg_attr(docsrs, doc(cfg(feature = "transport")))]
pub use client::AlipayClient;

pub use api::{Alipay, CancelRequest, ReviseRequest, ReviseResponse, PATH};

#[cfg(test)]
mod tests {
    use super::*;
    use kicc_core::retry::Interpreted;
    use kicc_core::*;
    use proptest::prelude::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn merchant() -> Merchant {
        Merchant::new(
            Environment::Custom(BaseUrl::new("http://127.0.0.1:8780").unwrap()),
            MallId::new("T0000001").unwrap(),
            SecretKey::new("sandbox-secret-key").unwrap(),
        )
    }

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn usd_partial_message_is_exact() {
        let req = CancelRequest::from_text(
            kicc_core::CancelText::new("PG20261121000001")
                .amount("12.03")
                .currency("USD"),
        )
        .unwrap()
        .memo(Memo::new("고객 요청").unwrap());
        assert_eq!(req.code(), ReviseTypeCode::PartialCard);
        let key = ShopTransactionId::new("K01JD0000000000000000000001").unwrap();
        // 2026-11-21T15:00:00Z is already the 22nd in Korea.
        let msg = req.message(&merchant(), key, at(1_795_273_200));
        let json = String::from_utf8(msg.to_json()).unwrap();
        let mac = include_str!("../../kicc-core/tests/vectors/hmac1.txt").trim();
        assert_eq!(
            json,
            format!(
                concat!(
                    r#"{{"mallId":"T0000001","shopTransactionId":"K01JD0000000000000000000001","#,
                    r#""pgCno":"PG20261121000001","reviseTypeCode":"32","cancelReqDate":"20261122","#,
                    r#""msgAuthValue":"{}","memo":"고객 요청","amountInfo":{{"currency":"USD","totAmount":1203}}}}"#
                ),
                mac
            )
        );
        let http = msg.to_http(&merchant()).unwrap();
        assert_eq!(http.uri(), "http://127.0.0.1:8780/api/trades/alipay/revise");
        assert_eq!(http.method(), http::Method::POST);
        assert_eq!(
            http.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        assert_eq!(http.body().as_ref(), json.as_bytes());
    }

    #[test]
    fn channel_rules() {
        let pg = || PgCno::new("P1").unwrap();
        for code in ["20", "33", "51", "52"] {
            let e = CancelRequest::from_text(
                kicc_core::CancelText::new("P1")
                    .code(code)
                    .amount("1")
                    .currency("KRW"),
            )
            .unwrap_err();
            assert_eq!(e.field, "reviseTypeCode", "{code}");
        }
        let e = CancelRequest::with_code(pg(), ReviseTypeCode::PartialCard, None).unwrap_err();
        assert_eq!(
            e,
            FieldError::new("amountInfo.totAmount", Rule::AmountRequired { code: "32" })
        );
        let e = CancelRequest::from_text(
            kicc_core::CancelText::new("P1")
                .code("40")
                .amount("1")
                .currency("KRW"),
        )
        .unwrap_err();
        assert!(matches!(e.rule, Rule::AmountNotAllowed { .. }));
        assert_eq!(
            CancelRequest::from_text(kicc_core::CancelText::new("P1").amount("1"))
                .unwrap_err()
                .field,
            "currency"
        );
        assert_eq!(
            CancelRequest::from_text(
                kicc_core::CancelText::new("P1")
                    .amount("0.105")
                    .currency("USD")
            )
            .unwrap_err()
            .field,
            "amountInfo.totAmount"
        );
        assert!(CancelRequest::from_text(
            kicc_core::CancelText::new("P1")
                .amount("10.5")
                .currency("KRW")
        )
        .is_err());
        assert_eq!(
            CancelRequest::from_text(kicc_core::CancelText::new(&"가".repeat(21)))
                .unwrap_err()
                .field,
            "pgCno"
        );
        assert!(CancelRequest::from_text(kicc_core::CancelText::new(&"가".repeat(20))).is_ok());
    }

    #[test]
    fn deserializing_rechecks_the_cross_field_rules() {
        let msg = CancelRequest::full(PgCno::new("P1").unwrap()).message(
            &merchant(),
            ShopTransactionId::new("K").unwrap(),
            at(0),
        );
        let mut v: serde_json::Value = serde_json::from_slice(&msg.to_json()).unwrap();
        v["reviseTypeCode"] = "32".into();
        assert!(ReviseRequest::from_json(v.to_string().as_bytes()).is_err());
        v["reviseTypeCode"] = "33".into();
        v["amountInfo"] = serde_json::json!({"currency": "KRW", "totAmount": 5});
        assert!(ReviseRequest::from_json(v.to_string().as_bytes()).is_err());
        // notifyUrl belongs to the WeChat Pay API, not this one.
        let mut v: serde_json::Value = serde_json::from_slice(&msg.to_json()).unwrap();
        assert!(ReviseRequest::from_json(v.to_string().as_bytes()).is_ok());
        v["notifyUrl"] = "https://shop.example/n".into();
        let e = ReviseRequest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("notifyUrl"), "{e}");
    }

    #[test]
    fn responses_with_strings_numbers_and_unknown_fields() {
        let key = ShopTransactionId::new("K1").unwrap();
        let body =
            br#"{"resCd":"0000","resMsg":"Success","mallId":"T0000001","shopTransactionId":"K1",
            "pgCno":"P1","cancelPgCno":"C1","transactionDate":"20230312000512",
            "amountInfo":{"currency":"USD","totAmount":"5022"},"somethingNew":[1,2]}"#;
        match ReviseResponse::read(200, body, &key) {
            Interpreted::Success(r) => {
                assert_eq!(r.cancel_pg_cno, "C1");
                assert_eq!(r.amount_info.unwrap().tot_amount, Some(5022));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ReviseResponse::read(500, body, &key),
            Interpreted::Unreadable(_)
        ));
        assert!(matches!(
            ReviseResponse::read(200, br#"{"resCd":"A212","resMsg":"retry"}"#, &key),
            Interpreted::Gateway { .. }
        ));
    }

    fn money() -> impl Strategy<Value = Money> {
        prop_oneof![
            (1u64..=Amount::MAX).prop_map(|n| Money::from_minor("a", Currency::Krw, n).unwrap()),
            (1u64..=Amount::MAX).prop_map(|n| Money::from_minor("a", Currency::Usd, n).unwrap()),
        ]
    }

    proptest! {
        #[test]
        fn accepted_requests_round_trip_and_obey_every_rule(
            pg in "[A-Za-z0-9가-힣]{1,20}",
            partial in proptest::option::of(money()),
            memo in proptest::option::of("[a-z 가-힣]{1,133}"),
            key in "[A-Z0-9]{1,60}",
            secs in 0u64..4_000_000_000,
        ) {
            let Ok(pg) = PgCno::new(pg) else { return Ok(()) };
            let mut req = match partial {
                Some(m) => CancelRequest::partial(pg, m),
                None => CancelRequest::full(pg),
            };
            if let Some(m) = memo.and_then(|m| Memo::new(m).ok()) {
                req = req.memo(m);
            }
            let msg = req.message(&merchant(), ShopTransactionId::new(key).unwrap(), at(secs));
            let json = msg.to_json();
            let back = ReviseRequest::from_json(&json).unwrap();
            prop_assert_eq!(&back, &msg);
            prop_assert!(back.head().is_signed_by(merchant().secret_key()));
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            prop_assert!(v["pgCno"].as_str().unwrap().len() <= 60);
            let date = KoreaDate::of(at(secs));
            prop_assert_eq!(v["cancelReqDate"].as_str().unwrap(), date.as_str());
            let code = v["reviseTypeCode"].as_str().unwrap();
            prop_assert_eq!(code == "32", v.get("amountInfo").is_some());
            prop_assert!(code == "32" || code == "40");
            if let Some(m) = v["memo"].as_str() { prop_assert!(m.len() <= 400); }
        }

        #[test]
        fn rejected_text_names_the_field(
            pg in "[A-Za-z0-9|&;<>가]{0,25}",
            code in proptest::option::of("[0-9]{2}"),
            amount in proptest::option::of("[0-9.]{1,8}"),
            currency in proptest::option::of("(KRW|USD|EUR)"),
        ) {
            match CancelRequest::from_text(kicc_core::CancelText::new(&pg).code(code.as_deref()).amount(amount.as_deref()).currency(currency.as_deref())) {
                Ok(r) => {
                    prop_assert!(PgCno::new(pg.as_str()).is_ok());
                    prop_assert!(r.code() == ReviseTypeCode::Full || r.code() == ReviseTypeCode::PartialCard);
                    prop_assert_eq!(r.amount().is_some(), r.code().is_partial());
                }
                Err(e) => {
                    let fields = ["pgCno", "reviseTypeCode", "amountInfo.totAmount", "currency"];
                    prop_assert!(fields.contains(&e.field), "{}", e);
                }
            }
        }

        #[test]
        fn reading_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), status in 100u16..600) {
            let _ = ReviseResponse::read(status, &bytes, &ShopTransactionId::new("K").unwrap());
            let _ = ReviseRequest::from_json(&bytes);
        }
    }
}

// The README's example, compiled with the doc tests so it cannot rot.
#[cfg(all(doctest, feature = "hyper"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
