//! The refund-query and `remainAmount` paths under every setting the sandbox offers for what
//! KICC's pages leave open: whatever the gateway's rule, no false success and no second cancel.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

use std::time::Duration;

use kicc_core::retry::{RetryPolicy, SentAttempt};
use kicc_core::*;
use kicc_generic::{CancelRequest, GenericClient, PaymentMethod, RemainAmountConvention};
use kicc_sandbox::{
    Channel as SbChannel, Currency as SbCurrency, Fault, FaultKind, RefundQueryMatch, Sandbox,
    SandboxConfig, SandboxHandle, GENERIC_REVISE_PATH,
};
use kicc_transport::HyperTransport;

const MATCHES: [RefundQueryMatch; 3] = [
    RefundQueryMatch::PgCnoAmount,
    RefundQueryMatch::PgCnoAmountRemain,
    RefundQueryMatch::Never,
];

async fn sandbox(config: SandboxConfig) -> SandboxHandle {
    let config = config.with_timeout_fault_delay(Duration::from_millis(700));
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn client(sb: &SandboxHandle, clock_skew: Duration) -> GenericClient<HyperTransport> {
    let merchant = Merchant::new(
        Environment::Custom(BaseUrl::new(sb.base_url()).unwrap()),
        MallId::new(sb.mall_id()).unwrap(),
        SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY).unwrap(),
    );
    let transport = HyperTransport::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    GenericClient::with_transport(merchant, transport).with_retry_policy(
        RetryPolicy::builder()
            .initial_backoff(Duration::from_millis(10))
            .max_backoff(Duration::from_millis(20))
            .processing_bound(Duration::from_millis(800))
            .clock_skew(clock_skew)
            .lookup_not_found_code("R001")
            .build()
            .unwrap(),
    )
}

fn partial(pg: &str, won: u64) -> CancelRequest {
    CancelRequest::partial(
        PgCno::new(pg).unwrap(),
        PaymentMethod::Card,
        Amount::new("amount", won).unwrap(),
    )
    .unwrap()
}

fn applied(sb: &SandboxHandle, pg: &str) -> usize {
    sb.payment(pg).unwrap().cancels.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_partial_refunds_after_unknown_outcomes_under_every_matching_rule() {
    for rule in MATCHES {
        let sb = sandbox(SandboxConfig::default().with_refund_query_match(rule)).await;
        let c = client(&sb, Duration::from_secs(120));
        let card = sb
            .create_payment(SbChannel::Card, 50_000, SbCurrency::Krw)
            .unwrap();
        c.cancel(&partial(&card.pg_cno, 1_000)).await.unwrap();
        // Lost before processing, and lost after processing: each ends with exactly one new
        // refund of 1,000, reported as this request's.
        for (kind, apply) in [(FaultKind::Http500, false), (FaultKind::Timeout, true)] {
            let before = applied(&sb, &card.pg_cno);
            sb.inject_fault(Fault::new(GENERIC_REVISE_PATH, kind).apply(apply))
                .unwrap();
            let r = c.cancel(&partial(&card.pg_cno, 1_000)).await;
            let r = r.unwrap_or_else(|e| panic!("{rule:?}: {e}"));
            assert_eq!(r.cancel_amount, Some(1_000), "{rule:?}");
            assert_eq!(applied(&sb, &card.pg_cno), before + 1, "{rule:?}");
        }
        assert_eq!(
            sb.payment(&card.pg_cno).unwrap().remaining_amount,
            47_000,
            "{rule:?}"
        );
        sb.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_refund_query_is_never_a_false_success_under_any_matching_rule() {
    for rule in MATCHES {
        let sb = sandbox(SandboxConfig::default().with_refund_query_match(rule)).await;
        let card = sb
            .create_payment(SbChannel::Card, 50_000, SbCurrency::Krw)
            .unwrap();
        // An equal refund made ten minutes ago by the gateway's clock.
        sb.set_clock(-600).unwrap();
        client(&sb, Duration::from_secs(900))
            .cancel(&partial(&card.pg_cno, 1_000))
            .await
            .unwrap();
        sb.set_clock(0).unwrap();
        let earlier = sb.payment(&card.pg_cno).unwrap().cancels[0]
            .cancel_pg_cno
            .clone();
        // Resume a request whose only key never reached the gateway, with a refund query.
        let mut never_sent = SentAttempt::new(
            ShopTransactionId::new(format!("NEVER{rule:?}")).unwrap(),
            KoreaDate::parse("d", &sb.korea_date()).unwrap(),
        );
        never_sent.sent_at = Some(std::time::SystemTime::now() - Duration::from_secs(60));
        let key = ShopTransactionId::new(format!("RQ{rule:?}")).unwrap();
        let out = client(&sb, Duration::from_secs(120))
            .resume_with_refund_query(&partial(&card.pg_cno, 1_000), vec![never_sent], key)
            .await;
        let after = applied(&sb, &card.pg_cno);
        match rule {
            // The query is answered with the earlier refund: proven earlier, nothing made.
            RefundQueryMatch::PgCnoAmount | RefundQueryMatch::PgCnoAmountRemain => {
                assert_eq!(
                    out.unwrap_err(),
                    Error::AlreadyCancelled {
                        cancel_pg_cno: earlier,
                        shop_transaction_id: format!("RQ{rule:?}"),
                    }
                );
                assert_eq!(after, 1);
            }
            // The query cancels anew; its answer cannot prove it is this request's.
            RefundQueryMatch::Never => {
                let err = out.unwrap_err();
                assert!(err.is_ambiguous(), "{err:?}");
                assert_eq!(after, 2);
            }
            _ => unreachable!(),
        }
        sb.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remain_amount_under_both_conventions() {
    use kicc_sandbox::RemainAmountConvention as Sb;
    for (sandbox_rule, sdk_rule) in [
        (
            Sb::BalanceBefore,
            RemainAmountConvention::BalanceBeforeCancel,
        ),
        (Sb::BalanceAfter, RemainAmountConvention::BalanceAfterCancel),
    ] {
        let sb =
            sandbox(SandboxConfig::default().with_remain_amount_convention(sandbox_rule)).await;
        let c = client(&sb, Duration::from_secs(120));
        let card = sb
            .create_payment(SbChannel::Card, 10_000, SbCurrency::Krw)
            .unwrap();
        let balance = |won| Amount::new("remainAmount", won).unwrap();
        // The matching convention: accepted, and a lost answer is still found by look-up.
        let agreed = partial(&card.pg_cno, 1_000)
            .remain_amount(balance(10_000))
            .unwrap()
            .remain_amount_convention(sdk_rule);
        sb.inject_fault(Fault::new(GENERIC_REVISE_PATH, FaultKind::Timeout))
            .unwrap();
        c.cancel(&agreed).await.unwrap();
        assert_eq!(applied(&sb, &card.pg_cno), 1, "{sandbox_rule:?}");
        // The other convention: refused (the sandbox's P004), certainly not processed.
        let other = match sdk_rule {
            RemainAmountConvention::BalanceBeforeCancel => {
                RemainAmountConvention::BalanceAfterCancel
            }
            _ => RemainAmountConvention::BalanceBeforeCancel,
        };
        let disagreed = partial(&card.pg_cno, 1_000)
            .remain_amount(balance(9_000))
            .unwrap()
            .remain_amount_convention(other);
        match c.cancel(&disagreed).await {
            Err(Error::Declined(g)) => assert_eq!(g.res_cd, "P004", "{sandbox_rule:?}"),
            other => panic!("{sandbox_rule:?}: {other:?}"),
        }
        assert_eq!(applied(&sb, &card.pg_cno), 1, "{sandbox_rule:?}");
        sb.shutdown().await;
    }
}
