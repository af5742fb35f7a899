use super::*;
use kicc_core::retry::{Action, Cancellation, Delivery, Interpreted, Now, RetryPolicy};
use kicc_core::*;
use proptest::prelude::*;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

fn pg(s: &str) -> PgCno {
    PgCno::new(s).unwrap()
}

fn amount(n: u64) -> Amount {
    Amount::new("amount", n).unwrap()
}

#[test]
fn full_cancel_message_is_exact() {
    let req = CancelRequest::full(pg("PG20261121000001"))
        .unwrap()
        .reason(ReviseMessage::new("Customer Changed Mind").unwrap());
    let msg = req.message(
        &merchant(),
        ShopTransactionId::new("K01JD0000000000000000000001").unwrap(),
        at(1_795_273_199),
    );
    let mac = include_str!("../../kicc-core/tests/vectors/hmac1.txt").trim();
    assert_eq!(
        String::from_utf8(msg.to_json()).unwrap(),
        format!(
            concat!(
                r#"{{"mallId":"T0000001","shopTransactionId":"K01JD0000000000000000000001","#,
                r#""pgCno":"PG20261121000001","reviseTypeCode":"40","cancelReqDate":"20261121","#,
                r#""msgAuthValue":"{}","reviseMessage":"Customer Changed Mind"}}"#
            ),
            mac
        )
    );
    assert_eq!(
        msg.to_http(&merchant()).unwrap().uri(),
        "http://127.0.0.1:8780/api/trades/revise"
    );
}

#[test]
fn partial_code_follows_the_payment_method() {
    let card = CancelRequest::partial(pg("P"), PaymentMethod::Card, amount(1000)).unwrap();
    let bank = CancelRequest::partial(pg("P"), PaymentMethod::BankTransfer, amount(1000)).unwrap();
    let mobile = CancelRequest::partial(pg("P"), PaymentMethod::Mobile, amount(1000)).unwrap();
    assert_eq!(card.code().as_str(), "32");
    assert_eq!(bank.code().as_str(), "33");
    assert_eq!(mobile.code().as_str(), "33");
}

#[test]
fn every_code_and_the_amount_rule() {
    for (code, amt, ok) in [
        ("20", None, true),
        ("20", Some("500"), true),
        ("32", Some("500"), true),
        ("32", None, false),
        ("33", Some("500"), true),
        ("33", None, false),
        ("40", None, true),
        ("40", Some("500"), false),
        ("51", None, true),
        ("51", Some("1"), false),
        ("52", Some("1"), true),
        ("52", None, false),
        ("41", None, false),
    ] {
        let r = CancelRequest::from_text(kicc_core::CancelText::new("P1").code(code).amount(amt));
        assert_eq!(r.is_ok(), ok, "{code} {amt:?}: {r:?}");
        if let Err(e) = r {
            assert!(e.field == "amount" || e.field == "reviseTypeCode");
        }
    }
}

#[test]
fn generic_limits_and_currency() {
    assert!(CancelRequest::full(pg(&"1".repeat(20))).is_ok());
    let e = CancelRequest::full(pg(&"1".repeat(21))).unwrap_err();
    assert_eq!(
        e,
        FieldError::new(
            "pgCno",
            Rule::TooLong {
                max_bytes: 20,
                actual_bytes: 21
            }
        )
    );
    // Hangul: 6 syllables = 18 bytes fit, 7 = 21 do not.
    assert!(CancelRequest::from_text(kicc_core::CancelText::new(&"가".repeat(6))).is_ok());
    assert_eq!(
        CancelRequest::from_text(kicc_core::CancelText::new(&"가".repeat(7)))
            .unwrap_err()
            .field,
        "pgCno"
    );
    assert_eq!(
        CancelRequest::from_text(kicc_core::CancelText::new("P").amount("1").currency("USD"))
            .unwrap_err()
            .field,
        "currency"
    );
    assert!(CancelRequest::from_text(kicc_core::CancelText::new("P").amount("10.5")).is_err());
    assert!(CancelRequest::from_text(
        kicc_core::CancelText::new("P")
            .amount("1000")
            .currency("KRW")
    )
    .is_ok());
}

#[test]
fn remain_amount_conventions() {
    let base = CancelRequest::partial(pg("P"), PaymentMethod::Card, amount(300)).unwrap();
    let key = || ShopTransactionId::new("K").unwrap();
    let before = base.clone().remain_amount(amount(1000)).unwrap();
    assert_eq!(
        before.message(&merchant(), key(), at(0)).remain_amount(),
        Some(1000)
    );
    let after = before
        .clone()
        .remain_amount_convention(RemainAmountConvention::BalanceAfterCancel);
    assert_eq!(
        after.message(&merchant(), key(), at(0)).remain_amount(),
        Some(700)
    );
    assert!(matches!(
        base.clone().remain_amount(amount(299)).unwrap_err().rule,
        Rule::ExceedsBalance { balance: 299 }
    ));
    assert_eq!(
        CancelRequest::full(pg("P"))
            .unwrap()
            .remain_amount(amount(5))
            .unwrap_err()
            .field,
        "remainAmount"
    );
}

#[test]
fn tax_and_basket_are_all_or_nothing() {
    let req = CancelRequest::partial(pg("P"), PaymentMethod::Card, amount(1100))
        .unwrap()
        .tax_info(TaxInfo::new(1000, 0, 100).unwrap())
        .basket(BasketInfo::new(
            ProductPgCno::new("PP1").unwrap(),
            SellerId::new("seller-1").unwrap(),
        ));
    let msg = req.message(&merchant(), ShopTransactionId::new("K").unwrap(), at(0));
    let v: serde_json::Value = serde_json::from_slice(&msg.to_json()).unwrap();
    assert_eq!(
        v["taxInfo"],
        serde_json::json!({"taxationAmount": 1000, "taxFreeAmount": 0, "vatAmount": 100})
    );
    assert_eq!(v["basketUsed"], "Y");
    assert_eq!(
        v["basketInfo"],
        serde_json::json!({"productPgCno": "PP1", "sellerId": "seller-1"})
    );
    assert_eq!(ReviseRequest::from_json(&msg.to_json()).unwrap(), msg);
    // A message with only two of the three tax amounts, or a basket flag without the basket,
    // is refused.
    let mut partial_tax = v.clone();
    partial_tax["taxInfo"] = serde_json::json!({"taxationAmount": 1000, "vatAmount": 100});
    assert!(ReviseRequest::from_json(partial_tax.to_string().as_bytes()).is_err());
    let mut no_basket = v.clone();
    no_basket.as_object_mut().unwrap().remove("basketInfo");
    assert!(ReviseRequest::from_json(no_basket.to_string().as_bytes()).is_err());
    assert!(TaxInfo::new(Amount::MAX + 1, 0, 0).is_err());
    // Reading a message applies TaxInfo::new's check too: an amount over Amount::MAX is
    // refused, naming the field.
    let mut huge_tax = v.clone();
    huge_tax["taxInfo"]["vatAmount"] = serde_json::json!(Amount::MAX + 1);
    let e = ReviseRequest::from_json(huge_tax.to_string().as_bytes()).unwrap_err();
    assert!(e.to_string().contains("taxInfo.vatAmount"), "{e}");
}

#[test]
fn response_with_nested_objects_strings_and_unknown_fields() {
    // The documentation's example, verbatim in shape (amounts as strings, shopOrderNo extra).
    let body = br#"{"resCd":"0000","resMsg":"Cancellation Successful","mallId":"T0000001",
        "shopTransactionId":"K1","oriPgCno":"P1","cancelPgCno":"C1","shopOrderNo":"O1",
        "cancelAmount":"51004","remainAmount":"0","transactionDate":"20210326090200",
        "statusCode":"TS02","statusMessage":"Approval Cancelled",
        "reviseInfo":{"payMethodTypeCode":"11","approvalNo":"00017177","approvalDate":"20210326090200",
        "cardInfo":{"couponAmount":0},
        "cashReceiptInfo":{"resCd":"0000","resMsg":"ok","approvalNo":"A1","cancelDate":"20210326090200"}}}"#;
    let key = ShopTransactionId::new("K1").unwrap();
    match ReviseResponse::read(200, body, &key) {
        Interpreted::Success(r) => {
            assert_eq!(r.cancel_amount, Some(51004));
            assert_eq!(r.remain_amount, Some(0));
            assert_eq!(r.status_code, Some(TransactionStatus::Cancelled));
            let info = r.revise_info.unwrap();
            assert_eq!(info.card_info.unwrap().coupon_amount, Some(0));
            assert_eq!(info.cash_receipt_info.unwrap().approval_no, "A1");
        }
        other => panic!("{other:?}"),
    }
    // Numbers instead of strings read the same.
    let numeric = String::from_utf8_lossy(body)
        .replace("\"51004\"", "51004")
        .replace("\"0\"", "0");
    assert!(matches!(
        ReviseResponse::read(200, numeric.as_bytes(), &key),
        Interpreted::Success(r) if r.cancel_amount == Some(51004)
    ));
}

/// Drives the generic cancellation through a timeout and a VTIM on a virtual clock: each
/// unknown outcome is looked up (retrieveTransaction, the key's own date, the next day too
/// near midnight) before a new key is sent.
#[test]
fn timeout_then_vtim_are_looked_up_before_new_keys_are_sent() {
    let m = merchant();
    let wall = UNIX_EPOCH + Duration::from_millis(1_795_273_199_500); // 23:59:59.5 KST
    let intent = CancelRequest::partial(pg("P1"), PaymentMethod::Card, amount(500)).unwrap();
    let ex =
        GenericExchange::new(&m, intent, ShopTransactionId::new("FIRST").unwrap(), wall).unwrap();
    let policy = RetryPolicy::builder()
        .lookup_not_found_code("R001")
        .build()
        .unwrap();
    let mut c = Cancellation::new(ex, policy, kicc_core::Rng::from_seed([5; 32]));
    let mut now = Now::new(Instant::now(), wall);
    let mut sent: Vec<ReviseRequest> = vec![];
    let mut lookups: Vec<serde_json::Value> = vec![];
    let vtim = br#"{"resCd":"VTIM","resMsg":"instant refund timed out"}"#;
    let not_found = br#"{"resCd":"R001","resMsg":"transaction not found"}"#;
    let outcome = loop {
        match c.poll(now) {
            Action::Send(req) if req.uri().path() == "/api/trades/retrieveTransaction" => {
                lookups.push(serde_json::from_slice(req.body()).unwrap());
                c.on_delivery(
                    Delivery::Response {
                        status: 200,
                        body: not_found,
                    },
                    now,
                );
            }
            Action::Send(req) => {
                let msg = ReviseRequest::from_json(req.body()).unwrap();
                assert!(msg.head().is_signed_by(m.secret_key()));
                let key = msg.head().shop_transaction_id().to_string();
                sent.push(msg);
                let ok = format!(
                    r#"{{"resCd":"0000","shopTransactionId":"{key}","oriPgCno":"P1","cancelPgCno":"C1","cancelAmount":500}}"#
                );
                let d = match sent.len() {
                    1 => Delivery::Unknown { reason: "timeout" },
                    2 => Delivery::Response {
                        status: 200,
                        body: vtim,
                    },
                    _ => Delivery::Response {
                        status: 200,
                        body: ok.as_bytes(),
                    },
                };
                c.on_delivery(d, now);
            }
            Action::WaitUntil(t) => now = now.plus(t - now.instant),
            Action::AwaitDelivery => unreachable!(),
            Action::Done(r) => break r,
        }
    };
    assert_eq!(outcome.unwrap().cancel_pg_cno, "C1");
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|m| !m.is_refund_query()));
    let keys: std::collections::HashSet<_> = sent
        .iter()
        .map(|m| m.head().shop_transaction_id().clone())
        .collect();
    assert_eq!(keys.len(), 3, "every attempt needs its own key");
    assert_eq!(sent[0].head().cancel_req_date().as_str(), "20261121");
    assert_eq!(sent[2].head().cancel_req_date().as_str(), "20261122");
    assert_eq!(sent[2].amount(), Some(amount(500)));
    // FIRST under the 21st and the 22nd (sent seconds before Korea midnight), then the second
    // key under the 22nd.
    let asked: Vec<(String, String)> = lookups
        .iter()
        .map(|v| {
            (
                v["shopTransactionId"].as_str().unwrap().to_owned(),
                v["transactionDate"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let second = sent[1].head().shop_transaction_id().to_string();
    assert_eq!(
        asked,
        [
            ("FIRST".to_owned(), "20261121".to_owned()),
            ("FIRST".to_owned(), "20261122".to_owned()),
            (second, "20261122".to_owned()),
        ]
    );
    assert!(lookups.iter().all(|v| v["mallId"] == "T0000001"));
}

proptest! {
    #[test]
    fn accepted_requests_round_trip_and_obey_every_rule(
        pg_s in "[A-Z0-9]{1,20}",
        code in prop_oneof![Just("20"), Just("32"), Just("33"), Just("40"), Just("51"), Just("52")],
        amt in 1u64..=Amount::MAX,
        give_amount in any::<bool>(),
        reason in proptest::option::of("[a-z 가-힣]{1,33}"),
        refund_query in any::<bool>(),
        secs in 0u64..4_000_000_000,
    ) {
        let code = ReviseTypeCode::parse(code).unwrap();
        let a = (give_amount || code.is_partial()) && code.amount_rule() != AmountRule::Forbidden;
        let mut req = CancelRequest::with_code(pg(&pg_s), code, a.then(|| amount(amt))).unwrap();
        if let Some(r) = reason { req = req.reason(ReviseMessage::new(r).unwrap()); }
        let msg = req.message_with(&merchant(), ShopTransactionId::new("K").unwrap(), at(secs), refund_query);
        let json = msg.to_json();
        let back = ReviseRequest::from_json(&json).unwrap();
        prop_assert_eq!(&back, &msg);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        prop_assert!(v["pgCno"].as_str().unwrap().len() <= 20);
        prop_assert_eq!(v.get("refundQueryFlag").is_some(), refund_query);
        if code.is_partial() { prop_assert!(v["amount"].as_u64().unwrap() > 0); }
        if let Some(r) = v.get("reviseMessage") { prop_assert!(r.as_str().unwrap().len() <= 100); }
    }

    #[test]
    fn rejected_text_names_the_field(
        pg_s in "[A-Za-z0-9|'가]{0,24}",
        code in proptest::option::of("[0-9]{1,3}"),
        amt in proptest::option::of("[0-9.,-]{1,8}"),
    ) {
        match CancelRequest::from_text(kicc_core::CancelText::new(&pg_s).code(code.as_deref()).amount(amt.as_deref())) {
            Ok(r) => {
                prop_assert!(r.pg_cno().as_str().len() <= 20);
                prop_assert_eq!(r.amount().is_some(), r.code().is_partial() || (r.code() == ReviseTypeCode::Capture && amt.is_some()));
            }
            Err(e) => prop_assert!(["pgCno", "reviseTypeCode", "amount"].contains(&e.field), "{}", e),
        }
    }

    #[test]
    fn reading_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = ReviseResponse::read(200, &bytes, &ShopTransactionId::new("K").unwrap());
        let _ = ReviseRequest::from_json(&bytes);
    }
}
