//! WeChat Pay cancellations through KICC EasyPay: asynchronous, the result comes later.
//!
//! 1. [`CancelRequest`] → [`ReviseRequest`] (`POST /api/trades/wechatpay/revise`, the message
//!    shape shared with Alipay, [`kicc_core::wallet`], plus `notifyUrl`): KICC answers at once
//!    with a `cancelPgCno`; that means ACCEPTED, not done.
//! 2. The result arrives at `notifyUrl` as a [`kicc_core::webhook::WechatCancelNotice`], or is asked
//!    for with [`StatusQuery`] (`POST /api/trades/wechatpay/find`, `cancelStatus` TS01 / TS02 /
//!    TS06 / TS12).
//! 3. [`ResultWaiter`] decides when to query and when to give up ([`kicc_core::Error::Pending`]).
//!
//! Retries of the cancel itself resend the SAME message (same `shopTransactionId`, same
//! `cancelReqDate`), as the API requires.
//!
//! # A complete cancel
//!
//! With the default `hyper` feature, [`WechatClient`] submits the cancel and waits for its
//! result. Mount a [`WebhookInbox`] in your HTTP server at `notifyUrl` (see the
//! `webhook_server` example); without notices the status query settles it. This runs against
//! the embedded sandbox (the hidden lines start it).
//!
// The example needs `Client::new` (feature `hyper`); without it the block is not run.
#![cfg_attr(feature = "hyper", doc = "```")]
#![cfg_attr(not(feature = "hyper"), doc = "```ignore")]
//! use std::time::Duration;
//! use kicc_core::{BaseUrl, Environment, MallId, Merchant, PgCno, SecretKey};
//! use kicc_wechat::{CancelRequest, WaitPolicy, WebhookInbox, WechatClient};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = kicc_sandbox::Sandbox::start("127.0.0.1:0".parse()?, Default::default()).await?;
//! # let payment = sandbox.create_payment(kicc_sandbox::Channel::Wechat, 20_000, kicc_sandbox::Currency::Krw)?;
//! # let (sandbox_url, pg_cno) = (sandbox.base_url(), payment.pg_cno);
//! # let secret_from_your_vault = kicc_sandbox::DEFAULT_SECRET_KEY;
//! let merchant = Merchant::new(
//!     Environment::Custom(BaseUrl::new(&sandbox_url)?), // Environment::Production for real money
//!     MallId::new("T0000001")?,
//!     SecretKey::new(secret_from_your_vault)?,
//! );
//! let client = WechatClient::new(merchant)?;
//! let inbox = WebhookInbox::default(); // shared with your webhook handler
//!
//! let accepted = client.cancel(&CancelRequest::full(PgCno::new(pg_cno)?)).await?;
//! println!("accepted as {}; waiting for the result", accepted.cancel_pg_cno);
//! let policy = WaitPolicy::default().with_first_query_after(Duration::from_secs(1));
//! let result = client.wait_for_result(&accepted, &inbox, policy).await?;
//! println!("{:?} via {:?}", result.status, result.source);
//! # assert_eq!(result.status, kicc_core::TransactionStatus::Cancelled);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | (none) | | the messages, signing and reading: no IO at all |
//! | `transport` | via `hyper` | [`WechatClient`] over any `kicc_transport::Transport`, with kicc-transport's retry driver (tokio timers); no hyper, rustls or tokio-rustls |
//! | `hyper` | yes | `transport` plus `kicc_transport::HyperTransport` and `WechatClient::new` |
//!
//! Bring your own HTTP stack with `default-features = false, features = ["transport"]` and
//! `WechatClient::with_transport`.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod api;
#[cfg(feature = "transport")]
mod client;
mod status;
mod wait;

#[cfg(feature = "transport")]
#[cfg_attr(docsrs, doc(cfg(feature = "transport")))]
pub use client::{Accepted, WechatClient};
pub use kicc_core::inbox::SourcePolicy;
/// `resDetailMsg` decoding under its earlier name: [`kicc_core::wire::decode_form_value`].
pub use kicc_core::wire::decode_form_value as url_decode;

pub use api::{
    CancelRequest, NoticeEvent, ReviseRequest, ReviseResponse, WeChat, WebhookInbox, WebhookReply,
    PATH,
};
pub use status::{FindExchange, FindRequest, FindResponse, StatusQuery, FIND_PATH};
pub use wait::{CancelResult, ResultSource, ResultWaiter, WaitAction, WaitPolicy};

#[cfg(test)]
mod tests {
    use super::*;
    use kicc_core::retry::Interpreted;
    use kicc_core::*;
    use proptest::prelude::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn merchant() -> Merchant {
        Merchant::new(
            Environment::Test,
            MallId::new("T5102001").unwrap(),
            SecretKey::new("sandbox-secret-key").unwrap(),
        )
    }

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn cancel_message_with_notify_url() {
        let req =
            CancelRequest::from_text(kicc_core::CancelText::new("PG20261121000001").code("40"))
                .unwrap()
                .notify_url(NotifyUrl::new("https://shop.example/kicc/wechat").unwrap());
        let msg = req.message(
            &merchant(),
            ShopTransactionId::new("K01JD0000000000000000000001").unwrap(),
            at(1_795_273_199),
        );
        let v: serde_json::Value = serde_json::from_slice(&msg.to_json()).unwrap();
        assert_eq!(v["notifyUrl"], "https://shop.example/kicc/wechat");
        assert_eq!(v["reviseTypeCode"], "40");
        assert_eq!(v["cancelReqDate"], "20261121");
        assert_eq!(v["mallId"], "T5102001");
        assert_eq!(
            v["msgAuthValue"],
            include_str!("../../kicc-core/tests/vectors/hmac1.txt").trim()
        );
        assert!(v.get("amountInfo").is_none());
        let http = msg.to_http(&merchant()).unwrap();
        assert_eq!(
            http.uri(),
            "https://testpgapi.easypay.co.kr/api/trades/wechatpay/revise"
        );
        assert_eq!(ReviseRequest::from_json(&msg.to_json()).unwrap(), msg);
    }

    #[test]
    fn channel_rules() {
        for code in ["20", "33", "51", "52", "99"] {
            assert_eq!(
                CancelRequest::from_text(
                    kicc_core::CancelText::new("P")
                        .code(code)
                        .amount("1")
                        .currency("KRW")
                )
                .unwrap_err()
                .field,
                "reviseTypeCode"
            );
        }
        assert!(matches!(
            CancelRequest::from_text(kicc_core::CancelText::new("P").code("32"))
                .unwrap_err()
                .rule,
            Rule::AmountRequired { .. }
        ));
        let r = CancelRequest::from_text(
            kicc_core::CancelText::new("P")
                .amount("12.03")
                .currency("USD"),
        )
        .unwrap();
        assert_eq!(r.amount().unwrap().amount.minor_units(), 1203);
        assert!(NotifyUrl::new("javascript:alert(1)").is_err());
    }

    #[test]
    fn find_message_and_response() {
        let q = StatusQuery::from_text("P1", "C1").unwrap();
        let msg = q.message(&merchant(), ShopTransactionId::new("Q1").unwrap());
        assert_eq!(
            String::from_utf8(msg.to_json()).unwrap(),
            r#"{"mallId":"T5102001","shopTransactionId":"Q1","pgCno":"P1","cancelPgCno":"C1"}"#
        );
        assert_eq!(
            StatusQuery::from_text("P1", "").unwrap_err().field,
            "cancelPgCno"
        );
        let body = br#"{"resCd":"0000","resMsg":"Success","shopTransactionId":"Q1","mallId":"T5102001",
            "pgCno":"P1","cancelPgCno":"C1","transactionDate":"20230312000512","cancelStatus":"TS02",
            "resDetailMsg":"OK%20done","amountInfo":{"currency":"KRW","totAmount":"1000"}}"#;
        match FindResponse::read(200, body, msg.shop_transaction_id()) {
            Interpreted::Success(r) => {
                assert!(r.is_cancelled());
                assert_eq!(r.cancel_status, Some(TransactionStatus::Cancelled));
                assert_eq!(url_decode(&r.res_detail_msg), "OK done");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn acceptance_response() {
        let key = ShopTransactionId::new("K").unwrap();
        let body = br#"{"resCd":"0000","resMsg":"Success","shopTransactionId":"K","pgCno":"P1","cancelPgCno":"C9","resDetailMsg":"%EC%A0%91%EC%88%98"}"#;
        match ReviseResponse::read(200, body, &key) {
            Interpreted::Success(r) => {
                assert_eq!(r.cancel_pg_cno, "C9");
                assert_eq!(r.detail(), "접수");
            }
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn accepted_requests_round_trip(
            pg in "[A-Za-z0-9]{1,60}",
            cents in proptest::option::of(1u64..=Amount::MAX),
            url in proptest::option::of("https://[a-z]{1,20}\\.example/[a-z0-9/]{0,50}"),
            secs in 0u64..4_000_000_000,
        ) {
            let pg = PgCno::new(pg).unwrap();
            let mut req = match cents {
                Some(c) => CancelRequest::partial(pg, Money::from_minor("a", Currency::Usd, c).unwrap()),
                None => CancelRequest::full(pg),
            };
            if let Some(u) = url { req = req.notify_url(NotifyUrl::new(u).unwrap()); }
            let msg = req.message(&merchant(), ShopTransactionId::new("K").unwrap(), at(secs));
            let back = ReviseRequest::from_json(&msg.to_json()).unwrap();
            prop_assert_eq!(&back, &msg);
            prop_assert!(back.head().is_signed_by(merchant().secret_key()));
            prop_assert_eq!(back.amount_info().is_some(), back.head().revise_type_code().is_partial());
        }

        #[test]
        fn reading_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let key = ShopTransactionId::new("K").unwrap();
            let _ = ReviseResponse::read(200, &bytes, &key);
            let _ = FindResponse::read(200, &bytes, &key);
            let _ = ReviseRequest::from_json(&bytes);
        }
    }
}

// The README's example, compiled with the doc tests so it cannot rot.
#[cfg(all(doctest, feature = "hyper"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
