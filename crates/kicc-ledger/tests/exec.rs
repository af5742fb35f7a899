//! The executor against the embedded sandbox: journaled cancels on every channel, the same
//! id twice, conflicts, faults, and recovery of attempts a "crashed" worker left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "client")]

use std::time::{Duration, SystemTime};

use kicc_core::retry::RetryPolicy;
use kicc_core::{BaseUrl, Environment, MallId, Merchant, PgCno, SecretKey, ShopTransactionId};
use kicc_ledger::{
    AttemptPlan, BatchOptions, Channel, Currency, ExecConfig, IntentParams, Ledger, LedgerError,
    SqliteStore, StateKind, Store, TransitionError,
};
use kicc_sandbox::{Fault, FaultKind, Sandbox, SandboxConfig, SandboxHandle};
use kicc_transport::{HyperTransport, Transport};

async fn sandbox() -> SandboxHandle {
    let config = SandboxConfig {
        timeout_fault_delay: Duration::from_millis(300),
        processing_bound: Duration::from_millis(300),
        webhook_delay: Duration::from_millis(50),
        ..SandboxConfig::default()
    };
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn merchant(sb: &SandboxHandle) -> Merchant {
    Merchant::new(
        Environment::Custom(BaseUrl::new(sb.base_url()).unwrap()),
        MallId::new("T0000001").unwrap(),
        SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY).unwrap(),
    )
}

fn config() -> ExecConfig {
    ExecConfig::default()
        .with_retry_policy(
            RetryPolicy::builder()
                .processing_bound(Duration::from_millis(400))
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_millis(50))
                .lookup_not_found_code("R001")
                .build()
                .unwrap(),
        )
        .with_attempt_timeout(Duration::from_millis(150))
        .with_lease_margin(Duration::from_millis(500))
        .with_wait(Duration::from_secs(20))
        .with_query_interval(Duration::from_millis(100))
}

async fn ledger(
    sb: &SandboxHandle,
    dir: &tempfile::TempDir,
) -> Ledger<SqliteStore, HyperTransport> {
    let store = SqliteStore::open(dir.path().join("l.db")).await.unwrap();
    Ledger::new(store, merchant(sb), HyperTransport::new().unwrap()).with_exec_config(config())
}

fn applied(sb: &SandboxHandle, pg_cno: &str) -> Vec<u64> {
    sb.payment(pg_cno)
        .unwrap()
        .cancels
        .iter()
        .filter(|c| c.outcome == "applied")
        .map(|c| c.amount)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_channel_once_and_the_same_id_sends_nothing_new() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&sb, &dir).await;

    let card = sb
        .create_payment(
            kicc_sandbox::Channel::Card,
            50_000,
            kicc_sandbox::Currency::Krw,
        )
        .unwrap()
        .pg_cno;
    let generic = IntentParams {
        amount: Some(1_004),
        revise_type_code: Some("32".into()),
        ..IntentParams::new("g-1", Channel::Generic, card.as_str())
    };
    let i = l.cancel(generic.clone()).await.unwrap();
    assert_eq!(i.state.kind(), StateKind::Succeeded, "{i:?}");
    let again = l.cancel(generic.clone()).await.unwrap();
    assert_eq!(again, i);
    assert_eq!(applied(&sb, &card), vec![1_004]);

    // Same id, another amount: a typed conflict, nothing sent.
    let other = IntentParams {
        amount: Some(1_005),
        ..generic
    };
    match l.cancel(other).await {
        Err(kicc_ledger::ExecError::Ledger(LedgerError::Transition(
            TransitionError::Conflict(c),
        ))) => assert_eq!(c.intent_id.as_str(), "g-1"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(applied(&sb, &card), vec![1_004]);

    let ali = sb
        .create_payment(
            kicc_sandbox::Channel::Alipay,
            5_000,
            kicc_sandbox::Currency::Usd,
        )
        .unwrap()
        .pg_cno;
    let i = l
        .cancel(IntentParams {
            amount: Some(1203),
            currency: Some(Currency::Usd),
            ..IntentParams::new("a-1", Channel::Alipay, ali.as_str())
        })
        .await
        .unwrap();
    assert_eq!(i.state.kind(), StateKind::Succeeded, "{i:?}");
    assert_eq!(applied(&sb, &ali), vec![1203]);

    let wx = sb
        .create_payment(
            kicc_sandbox::Channel::Wechat,
            3_000,
            kicc_sandbox::Currency::Krw,
        )
        .unwrap()
        .pg_cno;
    let i = l
        .cancel(IntentParams::new("w-1", Channel::Wechat, wx.as_str()))
        .await
        .unwrap();
    assert_eq!(i.state.kind(), StateKind::Succeeded, "{i:?}");
    assert!(i.cancel_pg_cno.is_some());
    assert_eq!(applied(&sb, &wx), vec![3_000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_that_was_applied_is_looked_up_not_resent() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&sb, &dir).await;
    let card = sb
        .create_payment(
            kicc_sandbox::Channel::Card,
            9_000,
            kicc_sandbox::Currency::Krw,
        )
        .unwrap()
        .pg_cno;
    let mut fault = Fault::new(kicc_sandbox::GENERIC_REVISE_PATH, FaultKind::Timeout);
    fault.apply = Some(true);
    sb.inject_fault(fault).unwrap();
    let i = l
        .cancel(IntentParams::new("g-t", Channel::Generic, card.as_str()))
        .await
        .unwrap();
    assert_eq!(i.state.kind(), StateKind::Succeeded, "{i:?}");
    assert_eq!(i.attempts.len(), 1, "no second cancel was sent: {i:?}");
    assert_eq!(applied(&sb, &card), vec![9_000]);
}

/// A worker records an attempt, sends it, and dies before recording the result.
async fn crash_after_sending(
    store: &SqliteStore,
    transport: &HyperTransport,
    id: &str,
    request: http::Request<bytes::Bytes>,
    key: &str,
    date: &str,
) {
    let leased = store
        .lease(
            &kicc_ledger::IntentId::new(id).unwrap(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    store
        .record_attempt(
            &leased.lease,
            AttemptPlan {
                key: key.into(),
                korea_date: date.into(),
                request: request.body().to_vec(),
            },
        )
        .await
        .unwrap();
    let response = transport.send(request).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_after_a_crash_never_cancels_twice() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let m = merchant(&sb);
    let transport = HyperTransport::new().unwrap();
    let card = sb
        .create_payment(
            kicc_sandbox::Channel::Card,
            7_000,
            kicc_sandbox::Currency::Krw,
        )
        .unwrap()
        .pg_cno;
    let ali = sb
        .create_payment(
            kicc_sandbox::Channel::Alipay,
            800,
            kicc_sandbox::Currency::Usd,
        )
        .unwrap()
        .pg_cno;
    {
        let crashed = SqliteStore::open(dir.path().join("l.db")).await.unwrap();
        crashed
            .plan(
                IntentParams::new("g-c", Channel::Generic, card.as_str())
                    .validate()
                    .unwrap(),
            )
            .await
            .unwrap();
        crashed
            .plan(
                IntentParams::new("a-c", Channel::Alipay, ali.as_str())
                    .validate()
                    .unwrap(),
            )
            .await
            .unwrap();
        let now = SystemTime::now();
        let key = ShopTransactionId::generate(now, &mut kicc_transport::driver::os_rng());
        let msg = kicc_generic::CancelRequest::full(PgCno::new(card.as_str()).unwrap())
            .unwrap()
            .message(&m, key.clone(), now);
        let date = msg.head().cancel_req_date().to_string();
        let req = msg.to_http(&m).unwrap();
        crash_after_sending(&crashed, &transport, "g-c", req, key.as_str(), &date).await;

        let key = ShopTransactionId::generate(now, &mut kicc_transport::driver::os_rng());
        let msg = kicc_alipay::CancelRequest::full(PgCno::new(ali.as_str()).unwrap()).message(
            &m,
            key.clone(),
            now,
        );
        let date = msg.head().cancel_req_date().to_string();
        let req = msg.to_http(&m).unwrap();
        crash_after_sending(&crashed, &transport, "a-c", req, key.as_str(), &date).await;
        // The store (and with it its owner lock) goes away: the owner is dead.
    }
    let l = ledger(&sb, &dir).await;
    let recovered = l.recover(4).await.unwrap();
    assert_eq!(recovered.len(), 2, "{recovered:?}");
    for i in &recovered {
        assert_eq!(i.state.kind(), StateKind::Succeeded, "{i:?}");
    }
    let g = l
        .store()
        .get(&kicc_ledger::IntentId::new("g-c").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.attempts.len(), 1, "looked up, never resent: {g:?}");
    let a = l
        .store()
        .get(&kicc_ledger::IntentId::new("a-c").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.attempts.len(), 2, "resent identically: {a:?}");
    assert_eq!(a.attempts[0].request, a.attempts[1].request);
    assert_eq!(applied(&sb, &card), vec![7_000]);
    assert_eq!(applied(&sb, &ali), vec![800]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_every_planned_intent_in_order_per_payment() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&sb, &dir).await;
    let card = sb
        .create_payment(
            kicc_sandbox::Channel::Card,
            10_000,
            kicc_sandbox::Currency::Krw,
        )
        .unwrap()
        .pg_cno;
    let mut specs = Vec::new();
    for n in 0..10 {
        specs.push(
            IntentParams {
                amount: Some(1_000),
                revise_type_code: Some("32".into()),
                ..IntentParams::new(format!("p-{n}"), Channel::Generic, card.as_str())
            }
            .validate()
            .unwrap(),
        );
    }
    l.store().import(specs).await.unwrap().unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let done = std::sync::atomic::AtomicUsize::new(0);
    l.run_batch(BatchOptions::default().with_concurrency(4), rx, &|_| {
        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })
    .await
    .unwrap();
    assert_eq!(done.into_inner(), 10);
    assert_eq!(l.store().summary().await.unwrap().succeeded, 10);
    assert_eq!(applied(&sb, &card), vec![1_000; 10]);
    assert_eq!(sb.payment(&card).unwrap().remaining_amount, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_wallet_resends_stop_after_the_age_limit_and_leave_it_unknown() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let m = merchant(&sb);
    let transport = HyperTransport::new().unwrap();
    let ali = sb
        .create_payment(
            kicc_sandbox::Channel::Alipay,
            900,
            kicc_sandbox::Currency::Usd,
        )
        .unwrap()
        .pg_cno;
    {
        let crashed = SqliteStore::open(dir.path().join("l.db")).await.unwrap();
        crashed
            .plan(
                IntentParams::new("a-old", Channel::Alipay, ali.as_str())
                    .validate()
                    .unwrap(),
            )
            .await
            .unwrap();
        let now = SystemTime::now();
        let key = ShopTransactionId::generate(now, &mut kicc_transport::driver::os_rng());
        let msg = kicc_alipay::CancelRequest::full(PgCno::new(ali.as_str()).unwrap()).message(
            &m,
            key.clone(),
            now,
        );
        let date = msg.head().cancel_req_date().to_string();
        let req = msg.to_http(&m).unwrap();
        crash_after_sending(&crashed, &transport, "a-old", req, key.as_str(), &date).await;
    }
    let store = SqliteStore::open(dir.path().join("l.db")).await.unwrap();
    let l = Ledger::new(store, m, HyperTransport::new().unwrap())
        .with_exec_config(config().with_wallet_resend_max_age(Duration::ZERO));
    // The first send must be older than the (zero) limit by the database's clock.
    let first = l
        .store()
        .get(&kicc_ledger::IntentId::new("a-old").unwrap())
        .await
        .unwrap()
        .unwrap()
        .attempts[0]
        .sent_at;
    while l.store().now().await.unwrap().millis() <= first.millis() {
        tokio::task::yield_now().await;
    }
    let recovered = l.recover(1).await.unwrap();
    assert_eq!(recovered.len(), 1);
    let i = &recovered[0];
    assert_eq!(i.state.kind(), StateKind::Unknown, "{i:?}");
    assert_eq!(i.attempts.len(), 1, "nothing resent: {i:?}");
    assert!(i
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("identical resends stopped"));
    // The one send that did go out is the only cancel.
    assert_eq!(applied(&sb, &ali), vec![900]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wechat_notice_alone_never_makes_the_intent_final() {
    // Accepted cancels are applied (and confirmed by `find`) only after 30 s here.
    let slow = SandboxConfig {
        webhook_delay: Duration::from_secs(30),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start("127.0.0.1:0".parse().unwrap(), slow)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("l.db")).await.unwrap();
    let l = Ledger::new(store, merchant(&sb), HyperTransport::new().unwrap())
        .with_exec_config(config().with_wait(Duration::from_millis(300)));
    let wx = sb
        .create_payment(
            kicc_sandbox::Channel::Wechat,
            2_500,
            kicc_sandbox::Currency::Krw,
        )
        .unwrap()
        .pg_cno;
    let i = l
        .cancel(IntentParams::new("w-n", Channel::Wechat, wx.as_str()))
        .await
        .unwrap();
    assert_eq!(i.state.kind(), StateKind::Pending, "{i:?}");
    let cancel_pg_cno = i.cancel_pg_cno.clone().unwrap();

    // An unsigned "success" notice arrives (anyone could send it) ...
    let body = serde_json::json!({
        "resCd": "0000", "resMsg": "OK", "pgCno": wx, "cancelPgCno": cancel_pg_cno,
    })
    .to_string()
    .into_bytes();
    let (_, named) = l
        .store()
        .record_notice(&wx, &cancel_pg_cno, body)
        .await
        .unwrap();
    assert_eq!(
        named
            .map(|n| n.spec.intent_id().as_str().to_owned())
            .as_deref(),
        Some("w-n")
    );
    // ... but `find` does not confirm it yet: the intent stays pending, never "succeeded".
    let recovered = l.recover(1).await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        recovered[0].state.kind(),
        StateKind::Pending,
        "{:?}",
        recovered[0]
    );
    assert_eq!(
        recovered[0].attempts.len(),
        1,
        "the cancel is never sent again"
    );
}

/// A batch leases each intent and records its first attempt in one commit, and commits an
/// outcome together with the next lease: each intent still gets exactly one cancel, sent
/// with the key, date and bytes journaled for it (the sandbox applied that key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sends_exactly_the_journaled_first_attempt_of_each_intent() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&sb, &dir).await;
    let mut specs = Vec::new();
    for n in 0..24 {
        let (sandbox_channel, channel) = if n % 2 == 0 {
            (kicc_sandbox::Channel::Card, Channel::Generic)
        } else {
            (kicc_sandbox::Channel::Alipay, Channel::Alipay)
        };
        let pg = sb
            .create_payment(sandbox_channel, 5_000, kicc_sandbox::Currency::Krw)
            .unwrap()
            .pg_cno;
        specs.push(
            IntentParams::new(format!("j-{n}"), channel, pg.as_str())
                .validate()
                .unwrap(),
        );
    }
    l.store().import(specs).await.unwrap().unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    l.run_batch(BatchOptions::default().with_concurrency(6), rx, &|_| {})
        .await
        .unwrap();
    let all = l.store().list(None).await.unwrap();
    assert_eq!(all.len(), 24);
    for intent in all {
        assert_eq!(intent.state.kind(), StateKind::Succeeded, "{intent:?}");
        assert_eq!(intent.attempts.len(), 1, "{intent:?}");
        let a = &intent.attempts[0];
        assert!(a.result.is_some());
        let body = String::from_utf8(a.request.clone()).unwrap();
        assert!(
            body.contains(&a.key) && body.contains(&a.korea_date),
            "{body}"
        );
        let cancels = sb.payment(intent.spec.pg_cno()).unwrap().cancels;
        assert_eq!(cancels.len(), 1, "{cancels:?}");
        assert_eq!(cancels[0].shop_transaction_id, a.key);
        assert_eq!(
            intent.cancel_pg_cno.as_deref(),
            Some(cancels[0].cancel_pg_cno.as_str())
        );
    }
}

/// With `--rate`, a finished intent's outcome is recorded as soon as it ends, not after the
/// worker's next rate slot, and a stop while a worker waits for its slot takes no new row.
/// The rate here is one row a fortnight: the second slot is never due during the test, so
/// the first row is seen final (in the store, before `on_done`'s report of it) only because
/// its result is saved before the wait, and the batch ends only because the stop cuts the
/// wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_batch_saves_each_result_at_once_and_stops_while_waiting() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&sb, &dir).await;
    let mut pgs = Vec::new();
    let mut specs = Vec::new();
    for n in 0..3 {
        let pg = sb
            .create_payment(
                kicc_sandbox::Channel::Card,
                1_000,
                kicc_sandbox::Currency::Krw,
            )
            .unwrap()
            .pg_cno;
        specs.push(
            IntentParams::new(format!("r-{n}"), Channel::Generic, pg.as_str())
                .validate()
                .unwrap(),
        );
        pgs.push(pg);
    }
    l.store().import(specs).await.unwrap().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let one_per_fortnight = 1.0 / (14.0 * 86_400.0);
    let options = BatchOptions::default()
        .with_concurrency(1)
        .with_rate(Some(one_per_fortnight));
    let on_done = |i: &kicc_ledger::Intent| {
        let _ = done_tx.send(i.clone());
    };
    let batch = l.run_batch(options, rx, &on_done);
    let drive = async {
        // The event: the first row ended.
        let first = done_rx.recv().await.unwrap();
        assert_eq!(first.spec.intent_id().as_str(), "r-0");
        assert_eq!(first.state.kind(), StateKind::Succeeded, "{first:?}");
        let stored = l
            .store()
            .get(first.spec.intent_id())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.state.kind(), StateKind::Succeeded, "{stored:?}");
        // Ctrl-C while the worker waits for its next slot.
        tx.send(true).unwrap();
    };
    let (ran, ()) = tokio::join!(batch, drive);
    ran.unwrap();
    let summary = l.store().summary().await.unwrap();
    assert_eq!((summary.succeeded, summary.planned), (1, 2), "{summary:?}");
    assert_eq!(summary.in_flight, 0, "{summary:?}");
    assert_eq!(applied(&sb, &pgs[0]), vec![1_000]);
    for pg in &pgs[1..] {
        assert!(sb.payment(pg).unwrap().cancels.is_empty(), "{pg} was sent");
    }
    assert!(done_rx.try_recv().is_err(), "more than one row ended");
}

/// Recovery of generic intents whose connections were refused, after a crash:
/// - every attempt recorded "not delivered": provably not processed, so a new cancel is
///   sent (the gateway never saw the key);
/// - the undelivered key resent (same key, as kicc-core does) and delivered, then the
///   crash before its result: that key may have been processed, so it is looked up, never
///   sent again, and the cancel it made is the intent's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_after_refused_connections_sends_anew_only_what_was_never_delivered() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let m = merchant(&sb);
    let transport = HyperTransport::new().unwrap();
    let mut pgs = Vec::new();
    for _ in 0..2 {
        pgs.push(
            sb.create_payment(
                kicc_sandbox::Channel::Card,
                4_000,
                kicc_sandbox::Currency::Krw,
            )
            .unwrap()
            .pg_cno,
        );
    }
    let refused = kicc_ledger::AttemptResult {
        http_status: None,
        res_cd: None,
        detail: "connection refused (test)".into(),
        outcome: kicc_ledger::OutcomeKind::NotDelivered,
    };
    let mut keys = Vec::new();
    {
        let crashed = SqliteStore::open(dir.path().join("l.db")).await.unwrap();
        for (n, pg) in pgs.iter().enumerate() {
            crashed
                .plan(
                    IntentParams::new(format!("nd-{n}"), Channel::Generic, pg.as_str())
                        .validate()
                        .unwrap(),
                )
                .await
                .unwrap();
            let now = SystemTime::now();
            let key = ShopTransactionId::generate(now, &mut kicc_transport::driver::os_rng());
            let msg = kicc_generic::CancelRequest::full(PgCno::new(pg.as_str()).unwrap())
                .unwrap()
                .message(&m, key.clone(), now);
            let date = msg.head().cancel_req_date().to_string();
            let req = msg.to_http(&m).unwrap();
            let leased = crashed
                .lease(
                    &kicc_ledger::IntentId::new(format!("nd-{n}")).unwrap(),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
            let plan = AttemptPlan {
                key: key.to_string(),
                korea_date: date.clone(),
                request: req.body().to_vec(),
            };
            let first = crashed
                .record_attempt(&leased.lease, plan.clone())
                .await
                .unwrap();
            crashed
                .record_result(&leased.lease, first.number, refused.clone())
                .await
                .unwrap();
            if n == 1 {
                // The same key again, journaled, delivered and applied; then the crash.
                crashed.record_attempt(&leased.lease, plan).await.unwrap();
                let response = transport.send(req).await.unwrap();
                assert_eq!(response.status(), 200);
            }
            keys.push(key.to_string());
        }
        // The store (and with it its owner lock) goes away: the owner is dead.
    }
    let l = ledger(&sb, &dir).await;
    let recovered = l.recover(2).await.unwrap();
    assert_eq!(recovered.len(), 2, "{recovered:?}");
    for i in &recovered {
        assert_eq!(i.state.kind(), StateKind::Succeeded, "{i:?}");
    }
    for (n, pg) in pgs.iter().enumerate() {
        let i = l
            .store()
            .get(&kicc_ledger::IntentId::new(format!("nd-{n}")).unwrap())
            .await
            .unwrap()
            .unwrap();
        let cancels = sb.payment(pg).unwrap().cancels;
        assert_eq!(applied(&sb, pg), vec![4_000], "{cancels:?}");
        assert_eq!(cancels.len(), 1, "{cancels:?}");
        if n == 0 {
            // Never delivered: sent anew under a new key.
            assert_eq!(i.attempts.len(), 2, "{i:?}");
            assert_ne!(cancels[0].shop_transaction_id, keys[0]);
            assert_eq!(cancels[0].shop_transaction_id, i.attempts[1].key);
        } else {
            // Maybe processed: looked up, not resent; the applied cancel is that key's.
            assert_eq!(i.attempts.len(), 2, "looked up, never resent: {i:?}");
            assert_eq!(cancels[0].shop_transaction_id, keys[1]);
            assert_eq!(i.attempts[1].key, keys[1]);
            assert_eq!(
                i.cancel_pg_cno.as_deref(),
                Some(cancels[0].cancel_pg_cno.as_str())
            );
        }
    }
}
