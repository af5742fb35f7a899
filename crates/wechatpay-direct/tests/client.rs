//! The client over an in-memory fake of WeChat Pay (see `common/fake.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "transport")]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::fake::*;
use common::*;
use wechatpay_direct::kicc_transport::TransportError;
use wechatpay_direct::{
    ApiErrorCode, BaseUrl, MaybeRevokedReason, MerchantMode, NextStep, OrderRef, RetryPolicy,
    ReverseCall, ReverseClient, ReverseError, ReverseOutcome, SignError, TimingChecks,
    TimingViolation, VerifyError,
};

#[tokio::test]
async fn revoke_success() {
    let fake = FakeWechat::new([Step::Revoked]);
    let out = client(&fake).reverse(&call()).await.unwrap();
    let ReverseOutcome::Revoked(v) = out else {
        panic!("{out:?}")
    };
    assert_eq!(v.serial, CERT_2048_SERIAL.trim());
    let sent = fake.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].uri(),
        "https://apihk.mch.weixin.qq.com/v3/global/micropay/transactions/out-trade-no/ORDER-20240101-0001/reverse"
    );
    assert_eq!(sent[0].body().as_ref(), br#"{"mchid":"1900000109"}"#);
}

#[tokio::test]
async fn institutional_mode_and_transaction_id() {
    let fake = FakeWechat::new([Step::Revoked]);
    let c = client_with(
        &fake,
        MerchantMode::institutional("1900000109", "1900000100").unwrap(),
    );
    let call = ReverseCall::new(
        OrderRef::transaction_id("4200001234202401010000000001").unwrap(),
        ts(NOW - 60),
    );
    assert!(c.reverse(&call).await.unwrap().is_revoked());
    let sent = fake.received();
    assert_eq!(
        sent[0].uri().path(),
        "/v3/global/micropay/transactions/id/4200001234202401010000000001/reverse"
    );
    assert_eq!(
        sent[0].body().as_ref(),
        br#"{"sp_mchid":"1900000109","sub_mchid":"1900000100"}"#
    );
}

#[tokio::test]
async fn each_error_code_is_typed_with_what_to_do_next() {
    let cases = [
        (
            400,
            "SYSTEM_ERROR",
            ApiErrorCode::SystemError,
            NextStep::QueryOrder,
        ),
        (
            400,
            "INVALID_TRANSACTIONID",
            ApiErrorCode::InvalidTransactionId,
            NextStep::NotRevoked,
        ),
        (
            400,
            "PARAM_ERROR",
            ApiErrorCode::ParamError,
            NextStep::NotRevoked,
        ),
        (
            403,
            "REVERSE_EXPIRE",
            ApiErrorCode::ReverseExpire,
            NextStep::NotRevoked,
        ),
        (
            403,
            "INVALID_REQUEST",
            ApiErrorCode::InvalidRequest,
            NextStep::NotRevoked,
        ),
        (
            403,
            "TRADE_ERROR",
            ApiErrorCode::TradeError,
            NextStep::NotRevoked,
        ),
        (
            404,
            "ORDER_NOT_EXIST",
            ApiErrorCode::OrderNotExist,
            NextStep::NotRevoked,
        ),
        (
            400,
            "SOMETHING_NEW",
            ApiErrorCode::Other("SOMETHING_NEW".into()),
            NextStep::QueryOrder,
        ),
        (
            500,
            "SYSTEM_ERROR",
            ApiErrorCode::SystemError,
            NextStep::QueryOrder,
        ),
    ];
    for (status, code, expected, step) in cases {
        let fake = FakeWechat::new([Step::Error(status, code)]);
        let err = client(&fake).reverse(&call()).await.unwrap_err();
        let ReverseError::Api(api) = &err else {
            panic!("{code}: {err:?}")
        };
        assert_eq!(api.status, status);
        assert_eq!(api.code, expected);
        assert_eq!(api.message, format!("scripted {code}"));
        assert_eq!(err.next_step(), step, "{code}");
        // Definite answers, and SYSTEM_ERROR (query at once), are not resent.
        assert_eq!(fake.received().len(), 1, "{code}");
    }
}

#[tokio::test]
async fn sign_error_401_when_the_signature_is_refused() {
    let fake = FakeWechat::new([Step::Revoked]);
    // Sign with a key the fake does not know (the 2048-bit one).
    let cfg = config(MerchantMode::common("1900000109").unwrap());
    let cfg = wechatpay_direct::MerchantConfig::builder()
        .mode(cfg.mode().clone())
        .serial_no(cfg.serial_no().clone())
        .private_key(Arc::new(key(KEY_2048)))
        .verification_keys(cfg.verification_keys().clone())
        .build()
        .unwrap();
    let c = ReverseClient::new(Arc::clone(&fake), cfg)
        .with_clock(|| UNIX_EPOCH + Duration::from_secs(NOW))
        .with_retry_policy(
            RetryPolicy::builder()
                .max_attempts(3)
                .initial_backoff(Duration::ZERO)
                .max_backoff(Duration::ZERO)
                .build()
                .expect("retry policy"),
        );
    let err = c.reverse(&call()).await.unwrap_err();
    assert_eq!(err.api_code(), Some(&ApiErrorCode::SignError));
    assert_eq!(err.http_status(), Some(401));
    assert_eq!(err.next_step(), NextStep::NotRevoked);
    let ReverseError::Api(api) = err else {
        unreachable!()
    };
    assert!(api.detail.unwrap().raw.get("sign_information").is_some());
}

#[tokio::test]
async fn server_errors_are_retried_with_identical_bytes_then_succeed() {
    let fake = FakeWechat::new([
        Step::Error(503, "SERVICE_UNAVAILABLE"),
        Step::Raw(502, "<html>bad gateway</html>"),
        Step::Revoked,
    ]);
    let out = client(&fake).reverse(&call()).await.unwrap();
    assert!(out.is_revoked());
    let sent = fake.received();
    assert_eq!(sent.len(), 3);
    for r in &sent[1..] {
        assert_eq!(r.method(), sent[0].method());
        assert_eq!(r.uri(), sent[0].uri());
        assert_eq!(
            r.headers(),
            sent[0].headers(),
            "same Authorization: signed once"
        );
        assert_eq!(r.body(), sent[0].body());
    }
}

#[tokio::test]
async fn all_attempts_5xx_is_maybe_revoked_retries_exhausted() {
    let fake = FakeWechat::new([
        Step::Error(500, "INTERNAL_ERROR"),
        Step::Error(503, "SERVICE_UNAVAILABLE"),
        Step::Raw(500, ""),
    ]);
    let err = client(&fake).reverse(&call()).await.unwrap_err();
    let ReverseError::RetriesExhausted {
        attempts,
        may_have_reached_server,
        last,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*attempts, 3);
    assert!(*may_have_reached_server);
    assert_eq!(
        **last,
        ReverseError::UnexpectedResponse {
            status: 500,
            body_excerpt: String::new()
        }
    );
    assert_eq!(err.next_step(), NextStep::QueryOrder);
    assert_eq!(fake.received().len(), 3);
}

#[tokio::test]
async fn unverified_2xx_is_maybe_revoked() {
    type Check = fn(&VerifyError) -> bool;
    let cases: [(Step, Check); 3] = [
        (Step::Probe, |e| *e == VerifyError::SignatureProbe),
        (Step::SkewedTimestamp(-301), |e| {
            matches!(e, VerifyError::OutsideWindow { .. })
        }),
        (Step::Unsigned, |e| {
            matches!(e, VerifyError::MissingHeader { .. })
        }),
    ];
    for (step, check) in cases {
        let fake = FakeWechat::new([step.clone()]);
        let out = client(&fake).reverse(&call()).await.unwrap();
        let ReverseOutcome::MaybeRevoked {
            status: 204,
            reason: MaybeRevokedReason::Unverified(e),
        } = &out
        else {
            panic!("{step:?}: {out:?}")
        };
        assert!(check(e), "{step:?}: {e:?}");
        assert_eq!(fake.received().len(), 1, "a 2xx is never retried");
    }
    // A 204 from a key the store does not hold.
    let fake = FakeWechat::new([Step::Revoked]);
    let mut c = client(&fake);
    assert!(c.verification_keys_mut().remove(CERT_2048_SERIAL.trim()));
    let out = c.reverse(&call()).await.unwrap();
    assert!(matches!(
        out.verification_error(),
        Some(VerifyError::UnknownSerial { .. })
    ));
}

#[tokio::test]
async fn backup_host_is_used_after_a_connection_failure() {
    let fake = FakeWechat::new([
        Step::Fail(TransportError::Connect("connection refused".into())),
        Step::Revoked,
    ]);
    let c = client(&fake).with_base_urls(BaseUrl::hong_kong(), Some(BaseUrl::mainland()));
    assert!(c.reverse(&call()).await.unwrap().is_revoked());
    let sent = fake.received();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].uri().host(), Some("apihk.mch.weixin.qq.com"));
    assert_eq!(sent[1].uri().host(), Some("api.mch.weixin.qq.com"));
    assert_eq!(sent[0].uri().path(), sent[1].uri().path());
    assert_eq!(sent[0].headers(), sent[1].headers());
    assert_eq!(sent[0].body(), sent[1].body());
}

#[tokio::test]
async fn timeouts_stay_on_the_primary_and_connect_failures_only_are_retryable() {
    let fake = FakeWechat::new([
        Step::Fail(TransportError::Timeout(Duration::from_secs(30))),
        Step::Fail(TransportError::Timeout(Duration::from_secs(30))),
        Step::Revoked,
    ]);
    let c = client(&fake).with_base_urls(BaseUrl::hong_kong(), Some(BaseUrl::mainland()));
    assert!(c.reverse(&call()).await.unwrap().is_revoked());
    assert!(fake
        .received()
        .iter()
        .all(|r| r.uri().host() == Some("apihk.mch.weixin.qq.com")));

    // Nothing ever connected: nothing can have been revoked; retry later.
    let fake =
        FakeWechat::new((0..3).map(|_| Step::Fail(TransportError::Connect("refused".into()))));
    let err = client(&fake).reverse(&call()).await.unwrap_err();
    assert!(matches!(
        err,
        ReverseError::RetriesExhausted {
            attempts: 3,
            may_have_reached_server: false,
            ..
        }
    ));
    assert_eq!(err.next_step(), NextStep::Retry);

    // A refusal by client policy never reached WeChat Pay either: "not delivered", the
    // same as for KICC (one mapping, kicc-transport's `never_delivered`), so it is resent
    // within the attempts and ends as certainly not revoked.
    let fake = FakeWechat::new((0..3).map(|_| {
        Step::Fail(TransportError::Refused(kicc_transport::RefusedError::new(
            kicc_transport::RefusedKind::PlainHttp,
            "plain http",
        )))
    }));
    let err = client(&fake).reverse(&call()).await.unwrap_err();
    let ReverseError::RetriesExhausted {
        attempts: 3,
        may_have_reached_server: false,
        last,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(matches!(
        **last,
        ReverseError::Transport(TransportError::Refused(_))
    ));
    assert_eq!(fake.received().len(), 3);
}

#[tokio::test]
async fn a_definite_refusal_after_an_ambiguous_attempt_means_query() {
    let fake = FakeWechat::new([
        Step::Fail(TransportError::Io("connection reset".into())),
        Step::Error(403, "REVERSE_EXPIRE"),
    ]);
    let err = client(&fake).reverse(&call()).await.unwrap_err();
    assert!(
        matches!(err, ReverseError::AfterAmbiguousAttempt { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(err.api_code(), Some(&ApiErrorCode::ReverseExpire));
    assert_eq!(err.next_step(), NextStep::QueryOrder);
}

#[tokio::test]
async fn timing_rules_refuse_before_sending() {
    let fake = FakeWechat::new([]);
    let c = client(&fake);
    let order = OrderRef::out_trade_no("ORDER-20240101-0001").unwrap();
    let too_soon = ReverseCall::new(order.clone(), ts(NOW - 5));
    let err = c.reverse(&too_soon).await.unwrap_err();
    assert_eq!(
        err,
        ReverseError::Timing(TimingViolation::TooSoon {
            elapsed_secs: 5,
            min_secs: 15
        })
    );
    assert_eq!(err.next_step(), NextStep::NotRevoked);
    let too_late = ReverseCall::new(order.clone(), ts(NOW - 8 * 86_400));
    assert!(matches!(
        c.reverse(&too_late).await.unwrap_err(),
        ReverseError::Timing(TimingViolation::TooLate { .. })
    ));
    assert!(fake.received().is_empty());

    // Opting out sends it.
    let fake = FakeWechat::new([Step::Revoked]);
    let opted_out = ReverseCall::new(order.clone(), ts(NOW - 5)).with_checks(TimingChecks::none());
    assert!(client(&fake)
        .reverse(&opted_out)
        .await
        .unwrap()
        .is_revoked());
    let fake = FakeWechat::new([Step::Revoked]);
    assert!(client(&fake)
        .reverse(&ReverseCall::without_timing_checks(order))
        .await
        .unwrap()
        .is_revoked());
}

#[tokio::test]
async fn no_nonce_no_request() {
    let fake = FakeWechat::new([]);
    let c = client(&fake).with_nonce_source(|| None);
    assert_eq!(
        c.reverse(&call()).await.unwrap_err(),
        ReverseError::Sign(SignError::Randomness)
    );
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn default_clock_and_nonce_sign_fresh_requests() {
    // With the real clock and SystemRandom, two calls differ in nonce.
    let fake = FakeWechat::new([]);
    let c = ReverseClient::new(
        Arc::clone(&fake),
        config(MerchantMode::common("1900000109").unwrap()),
    );
    let call = ReverseCall::without_timing_checks(OrderRef::out_trade_no("X").unwrap());
    let a = c.sign(&call).unwrap();
    let b = c.sign(&call).unwrap();
    assert_ne!(a.nonce(), b.nonce());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(a.timestamp().unix_secs().abs_diff(now) <= 5);
    assert!(a
        .nonce()
        .as_str()
        .chars()
        .all(|c| c.is_ascii_alphanumeric()));
}

#[tokio::test]
async fn settle_journals_each_attempt_before_it_is_sent() {
    use wechatpay_direct::{Heard, Resolution, Revocation, Rng};
    let fake = FakeWechat::new([Step::Error(503, "SERVICE_UNAVAILABLE"), Step::Revoked]);
    let c = client(&fake);
    let mut seen: Vec<(Vec<Heard>, bool)> = Vec::new();
    let resolution = c
        .settle(
            &call(),
            Revocation::new(c.retry_policy(), Rng::from_seed([2; 32])),
            |r| {
                seen.push((
                    r.records().iter().map(|a| a.heard()).collect(),
                    r.signed_request().is_some(),
                ))
            },
        )
        .await;
    assert!(
        matches!(resolution, Resolution::Revoked(_)),
        "{resolution:?}"
    );
    // Before each send the journal holds the attempt in flight ("nothing heard yet") and
    // the signed bytes; after each answer, what was heard.
    assert_eq!(
        seen,
        [
            (vec![Heard::Nothing], true),
            (vec![Heard::Unknown], true),
            (vec![Heard::Unknown, Heard::Nothing], true),
            (vec![Heard::Unknown, Heard::Done], true),
        ]
    );
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test]
async fn resume_and_settle_resends_the_stored_bytes_when_nothing_was_delivered() {
    use wechatpay_direct::{AttemptRecord, Heard, Resolution};
    let fake = FakeWechat::new([Step::Revoked]);
    let c = client(&fake);
    let stored = c.sign(&call()).unwrap();
    let records = vec![AttemptRecord::new(
        1,
        UNIX_EPOCH + Duration::from_secs(NOW),
        Heard::NotDelivered,
    )];
    let resolution = c
        .resume_and_settle(&call(), Some(stored.clone()), records)
        .await;
    assert!(
        matches!(resolution, Resolution::Revoked(_)),
        "{resolution:?}"
    );
    let sent = fake.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].headers(),
        stored.headers(),
        "the identical signature"
    );
    assert_eq!(sent[0].body(), stored.body());
}

#[tokio::test]
async fn errors_keep_their_cause() {
    use std::error::Error as _;
    let fake = FakeWechat::new((0..3).map(|_| Step::Fail(TransportError::Io("reset".into()))));
    let err = client(&fake).reverse(&call()).await.unwrap_err();
    let last = err.source().expect("the last attempt's error");
    assert_eq!(last.to_string(), "transport: connection lost: reset");
    let transport = last.source().expect("the transport error");
    assert_eq!(transport.to_string(), "connection lost: reset");

    let fake = FakeWechat::new([Step::Error(403, "REVERSE_EXPIRE")]);
    let err = client(&fake).reverse(&call()).await.unwrap_err();
    assert!(err
        .source()
        .expect("the API error")
        .to_string()
        .starts_with("HTTP 403 REVERSE_EXPIRE"));
}

#[tokio::test]
async fn a_stored_request_for_another_order_is_never_sent() {
    use wechatpay_direct::{AttemptRecord, Heard, Resolution};
    let fake = FakeWechat::new([Step::Revoked]);
    let c = client(&fake);
    let other = ReverseCall::new(
        OrderRef::out_trade_no("ANOTHER-ORDER").unwrap(),
        ts(NOW - 60),
    );
    let stored = c.sign(&other).unwrap();
    let records = vec![AttemptRecord::new(
        1,
        UNIX_EPOCH + Duration::from_secs(NOW),
        Heard::NotDelivered,
    )];
    let resolution = c
        .resume_and_settle(&call(), Some(stored.clone()), records)
        .await;
    assert!(
        matches!(resolution, Resolution::Revoked(_)),
        "{resolution:?}"
    );
    let sent = fake.received();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].uri().path().contains("/ORDER-20240101-0001/"),
        "{}",
        sent[0].uri()
    );
    assert_ne!(
        sent[0].headers(),
        stored.headers(),
        "signed anew for this order"
    );
}
