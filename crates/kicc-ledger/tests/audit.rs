//! Audit of issue 10's lease rules where a batch worker pipelines its intents: the NEXT
//! intent is leased and its first attempt journaled ([`Store::start_next`]) while the
//! CURRENT intent's request is on the wire. That prefetched attempt must still start with at
//! least its timeout plus the margin of lease left (so the lease is renewed when the wait ate
//! into it), and a worker whose prefetched lease was taken over meanwhile must send and
//! record nothing. Then, at the store level, every write of a taken-over holder is fenced.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![cfg(feature = "client")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{id, plan, result, spec};
use kicc_core::retry::RetryPolicy;
use kicc_core::{BaseUrl, Environment, MallId, Merchant, SecretKey};
use kicc_ledger::{
    BatchOptions, Channel, ExecConfig, Finish, IntentParams, Lease, Leased, Ledger, LedgerError,
    OutcomeKind, SqliteStore, State, StateKind, Store, Timestamp, TransitionError,
};
use kicc_sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use kicc_transport::{HttpRequest, HttpResponse, HyperTransport, Transport, TransportError};

/// How long a test waits for an event that must come (a hang guard, not a timing claim).
const EVENT_LIMIT: Duration = Duration::from_secs(60);

async fn sandbox() -> SandboxHandle {
    Sandbox::start("127.0.0.1:0".parse().unwrap(), SandboxConfig::default())
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

/// An executor configuration whose lease TTL is `timeout + margin` plus 550 ms of waits
/// (processing bound 400 ms, backoff up to 50 ms, query interval 100 ms).
fn config(timeout: Duration, margin: Duration) -> ExecConfig {
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
        .with_attempt_timeout(timeout)
        .with_lease_margin(margin)
        .with_query_interval(Duration::from_millis(100))
}

fn alipay_payment(sb: &SandboxHandle) -> String {
    sb.create_payment(
        kicc_sandbox::Channel::Alipay,
        5_000,
        kicc_sandbox::Currency::Usd,
    )
    .unwrap()
    .pg_cno
    .as_str()
    .to_owned()
}

fn cancels(sb: &SandboxHandle, pg_cno: &str) -> usize {
    sb.payment(pg_cno).unwrap().cancels.len()
}

/// The lease `intent_id` is in flight under, as the database has it.
async fn lease_of(store: &SqliteStore, intent_id: &str) -> Option<(u64, Timestamp, usize)> {
    let intent = store.get(&id(intent_id)).await.unwrap()?;
    match intent.state {
        State::InFlight {
            generation,
            expires_at,
            ..
        } => Some((generation, expires_at, intent.attempts.len())),
        _ => None,
    }
}

/// Waits until `intent_id` is in flight with its first attempt journaled (the prefetch).
async fn prefetched(store: &SqliteStore, intent_id: &str) -> (u64, Timestamp) {
    tokio::time::timeout(EVENT_LIMIT, async {
        loop {
            if let Some((generation, expires_at, 1)) = lease_of(store, intent_id).await {
                return (generation, expires_at);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the worker never leased and journaled its next intent while a request was on the wire")
}

/// Waits until the database's clock reaches `at`.
async fn db_clock_reaches(store: &SqliteStore, at: Timestamp) {
    loop {
        let now = store.now().await.unwrap();
        if now >= at {
            return;
        }
        tokio::time::sleep(now.until(at)).await;
    }
}

/// What the gate saw when the second intent's request was about to leave.
#[derive(Debug, Clone, Copy)]
struct AtSend {
    generation: u64,
    lease_left: Duration,
}

/// A transport that holds the FIRST intent's request until the worker has prefetched the
/// second intent and `hold` (given that lease) is done, and notes the second intent's lease
/// when its own request leaves.
struct Gate<H> {
    inner: HyperTransport,
    observer: SqliteStore,
    first_pg: String,
    second_pg: String,
    second_id: &'static str,
    hold: H,
    prefetched_lease: Mutex<Option<(u64, Timestamp)>>,
    second_sent: Mutex<Vec<AtSend>>,
}

impl<H, F> Transport for Gate<H>
where
    H: Fn(SqliteStore, u64, Timestamp) -> F + Send + Sync,
    F: std::future::Future<Output = ()> + Send,
{
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let body = String::from_utf8_lossy(request.body()).into_owned();
        if body.contains(&self.first_pg) {
            let (generation, expires_at) = prefetched(&self.observer, self.second_id).await;
            *self.prefetched_lease.lock().unwrap() = Some((generation, expires_at));
            (self.hold)(self.observer.clone(), generation, expires_at).await;
        } else if body.contains(&self.second_pg) {
            let (generation, expires_at, _) = lease_of(&self.observer, self.second_id)
                .await
                .expect("the second intent is sent while in flight");
            let now = self.observer.now().await.unwrap();
            self.second_sent.lock().unwrap().push(AtSend {
                generation,
                lease_left: now.until(expires_at),
            });
        }
        self.inner.send(request).await
    }
}

/// The prefetched attempt is journaled with a fresh lease, then waits while the worker's
/// current request is on the wire. When that wait leaves less than the attempt's timeout plus
/// the margin, the lease is renewed (same generation, by the database's clock) before the
/// attempt's first byte: it never starts on a lease that could expire under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefetched_attempt_renews_its_lease_when_the_wait_ate_into_it() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let observer = SqliteStore::open(&path).await.unwrap();
    let (first_pg, second_pg) = (alipay_payment(&sb), alipay_payment(&sb));
    let timeout = Duration::from_secs(3);
    let margin = Duration::from_millis(500);
    let needed = timeout + margin;
    let config = config(timeout, margin);
    assert!(config.lease_ttl() > needed, "{config:?}");

    let gate = Gate {
        inner: HyperTransport::new().unwrap(),
        observer: observer.clone(),
        first_pg: first_pg.clone(),
        second_pg: second_pg.clone(),
        second_id: "pre-2",
        // Hold the first request until the prefetched lease has less than the attempt's
        // timeout plus margin left (by the database's clock).
        hold: move |observer: SqliteStore, _generation: u64, expires_at: Timestamp| async move {
            let short =
                Timestamp(expires_at.millis() - i64::try_from(needed.as_millis()).unwrap() + 100);
            db_clock_reaches(&observer, short).await;
        },
        prefetched_lease: Mutex::new(None),
        second_sent: Mutex::new(Vec::new()),
    };
    let gate = Arc::new(gate);
    let ledger = Ledger::new(store, merchant(&sb), Arc::clone(&gate)).with_exec_config(config);
    let specs = ["pre-1", "pre-2"]
        .iter()
        .zip([&first_pg, &second_pg])
        .map(|(i, pg)| {
            IntentParams::new(*i, Channel::Alipay, pg.as_str())
                .validate()
                .unwrap()
        })
        .collect();
    ledger.store().import(specs).await.unwrap().unwrap();

    let (_tx, rx) = tokio::sync::watch::channel(false);
    ledger
        .run_batch(BatchOptions::default().with_concurrency(1), rx, &|_| {})
        .await
        .unwrap();

    let (prefetch_generation, _) = gate
        .prefetched_lease
        .lock()
        .unwrap()
        .expect("the second intent was prefetched while the first was on the wire");
    let sent = gate.second_sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].generation, prefetch_generation,
        "renewed, not leased anew"
    );
    assert!(
        sent[0].lease_left >= needed,
        "the prefetched attempt left with {:?} of lease, less than its timeout plus margin {needed:?}",
        sent[0].lease_left
    );
    for (intent_id, pg) in [("pre-1", &first_pg), ("pre-2", &second_pg)] {
        let i = ledger.store().get(&id(intent_id)).await.unwrap().unwrap();
        assert_eq!(i.state.kind(), StateKind::Succeeded, "{i:?}");
        assert_eq!(i.attempts.len(), 1, "{i:?}");
        assert_eq!(cancels(&sb, pg), 1, "{intent_id}");
    }
}

/// The same pipeline, but the wait outlasts the prefetched lease and another worker takes the
/// intent over meanwhile: the first worker must not send its journaled attempt nor write
/// anything for that intent; the new holder finds the attempt as journaled, unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefetched_intent_taken_over_meanwhile_is_neither_sent_nor_written() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let observer = SqliteStore::open(&path).await.unwrap();
    let taker = SqliteStore::open(&path).await.unwrap();
    let (first_pg, second_pg) = (alipay_payment(&sb), alipay_payment(&sb));
    let config = config(Duration::from_millis(1_000), Duration::from_millis(200));
    let taken: Arc<Mutex<Option<Leased>>> = Arc::default();

    let gate = Gate {
        inner: HyperTransport::new().unwrap(),
        observer: observer.clone(),
        first_pg: first_pg.clone(),
        second_pg: second_pg.clone(),
        second_id: "tk-2",
        hold: {
            let taken = Arc::clone(&taken);
            let taker = taker.clone();
            move |observer: SqliteStore, _generation: u64, expires_at: Timestamp| {
                let taken = Arc::clone(&taken);
                let taker = taker.clone();
                async move {
                    db_clock_reaches(&observer, expires_at).await;
                    let leased = taker
                        .lease(&id("tk-2"), Duration::from_secs(3600))
                        .await
                        .expect("an expired lease is taken over");
                    *taken.lock().unwrap() = Some(leased);
                }
            }
        },
        prefetched_lease: Mutex::new(None),
        second_sent: Mutex::new(Vec::new()),
    };
    let gate = Arc::new(gate);
    let ledger = Ledger::new(store, merchant(&sb), Arc::clone(&gate)).with_exec_config(config);
    let specs = ["tk-1", "tk-2"]
        .iter()
        .zip([&first_pg, &second_pg])
        .map(|(i, pg)| {
            IntentParams::new(*i, Channel::Alipay, pg.as_str())
                .validate()
                .unwrap()
        })
        .collect();
    ledger.store().import(specs).await.unwrap().unwrap();

    let (_tx, rx) = tokio::sync::watch::channel(false);
    let ran = ledger
        .run_batch(BatchOptions::default().with_concurrency(1), rx, &|_| {})
        .await;
    assert!(
        matches!(
            ran,
            Ok(())
                | Err(kicc_ledger::ExecError::Ledger(LedgerError::Transition(
                    TransitionError::Fenced { .. }
                )))
        ),
        "{ran:?}"
    );

    let (prefetch_generation, _) = gate.prefetched_lease.lock().unwrap().unwrap();
    let taken = taken.lock().unwrap().clone().expect("taken over");
    assert_eq!(taken.lease.generation, prefetch_generation + 1);
    assert!(
        gate.second_sent.lock().unwrap().is_empty(),
        "the fenced worker sent its journaled attempt"
    );
    assert_eq!(cancels(&sb, &second_pg), 0);
    let now = ledger.store().get(&id("tk-2")).await.unwrap().unwrap();
    assert_eq!(
        now.state, taken.intent.state,
        "the fenced worker changed the state"
    );
    assert_eq!(now.attempts.len(), 1, "{now:?}");
    assert!(
        now.attempts[0].result.is_none(),
        "the fenced worker wrote a result"
    );
    assert_eq!(now.attempts, taken.intent.attempts);
    // The first intent was not disturbed.
    let first = ledger.store().get(&id("tk-1")).await.unwrap().unwrap();
    assert_eq!(first.state.kind(), StateKind::Succeeded, "{first:?}");
    assert_eq!(cancels(&sb, &first_pg), 1);
    // The new holder goes on from the journal: the unanswered attempt may have been processed.
    assert!(now.attempts[0].may_have_been_processed());
    taker
        .record_result(&taken.lease, 1, result(OutcomeKind::Ambiguous))
        .await
        .unwrap();
}

/// Every write of a holder whose lease (taken with its first attempt by `start_next`, as a
/// batch worker does) was taken over is refused as fenced, and none of them changes the
/// stored intent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_over_holder_can_record_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    a.import(vec![spec("fx-1", Channel::Generic, "pg-fx", Some(1_000))])
        .await
        .unwrap()
        .unwrap();
    let short = Duration::from_millis(300);
    let started = a
        .start_next(short, Duration::from_millis(100), |_| Some(plan("FX-1")))
        .await
        .unwrap()
        .expect("fx-1 is free");
    let old: Lease = started.lease.clone();
    db_clock_reaches(&b, old.expires_at).await;
    let taken = b.lease(&id("fx-1"), common::TTL).await.unwrap();
    assert_eq!(taken.lease.generation, old.generation + 1);
    let before = b.get(&id("fx-1")).await.unwrap().unwrap();

    let fenced = |what: &str, r: Result<(), LedgerError>| {
        assert!(
            matches!(
                r,
                Err(LedgerError::Transition(TransitionError::Fenced { .. }))
            ),
            "{what}: {r:?}"
        );
    };
    fenced("renew", a.renew(&old, Duration::ZERO).await.map(|_| ()));
    fenced(
        "record_attempt",
        a.record_attempt(&old, plan("FX-2")).await.map(|_| ()),
    );
    fenced(
        "record_result",
        a.record_result(&old, 1, result(OutcomeKind::Succeeded))
            .await,
    );
    fenced(
        "finish",
        a.finish(
            &old,
            Finish::Succeeded {
                cancel_pg_cno: "C-late".into(),
            },
        )
        .await
        .map(|_| ()),
    );
    fenced(
        "finish_with_result",
        a.finish_with_result(
            &old,
            1,
            result(OutcomeKind::Succeeded),
            Finish::Succeeded {
                cancel_pg_cno: "C-late".into(),
            },
        )
        .await
        .map(|_| ()),
    );
    fenced("release", a.release(&old).await.map(|_| ()));
    assert_eq!(
        b.get(&id("fx-1")).await.unwrap().unwrap(),
        before,
        "a fenced write changed the intent"
    );
    // The lease taken over is the one that writes now.
    b.record_result(&taken.lease, 1, result(OutcomeKind::Ambiguous))
        .await
        .unwrap();
    let ended = b
        .finish(
            &taken.lease,
            Finish::Unknown {
                detail: "taken over".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(ended.state, State::Unknown);
}

/// Refuses the first connection (nothing is sent), then forwards.
struct RefuseFirst {
    inner: HyperTransport,
    refused: std::sync::atomic::AtomicBool,
}

impl Transport for RefuseFirst {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(TransportError::Connect(kicc_transport::ConnectError::new(
                kicc_transport::ConnectErrorKind::Refused,
                "connection refused (test)",
            )));
        }
        self.inner.send(request).await
    }
}

/// A generic cancel whose first connection is refused (nothing delivered) is retried and
/// succeeds, once, as it does without a ledger.
///
/// kicc-core's retry machine resends an undelivered generic request with the SAME key
/// (`Resend::Undelivered`): the gateway never saw it. The ledger accepts that key again
/// because every earlier attempt with it is recorded `NotDelivered` (an attempt with no
/// recorded result, or any other result, would still refuse it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_on_a_generic_cancel_is_retried() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("l.db")).await.unwrap();
    let card = sb
        .create_payment(
            kicc_sandbox::Channel::Card,
            5_000,
            kicc_sandbox::Currency::Krw,
        )
        .unwrap()
        .pg_cno;
    let transport = RefuseFirst {
        inner: HyperTransport::new().unwrap(),
        refused: std::sync::atomic::AtomicBool::new(false),
    };
    let ledger = Ledger::new(store, merchant(&sb), transport)
        .with_exec_config(config(Duration::from_secs(2), Duration::from_millis(500)));
    let intent = ledger
        .cancel(IntentParams::new("rf-1", Channel::Generic, card.as_str()))
        .await
        .expect("a refused connection is retried, not a ledger error");
    assert_eq!(intent.state.kind(), StateKind::Succeeded, "{intent:?}");
    assert_eq!(intent.attempts.len(), 2, "{intent:?}");
    let (first, second) = (&intent.attempts[0], &intent.attempts[1]);
    assert_eq!(
        first.result.as_ref().map(|r| r.outcome),
        Some(OutcomeKind::NotDelivered)
    );
    assert_eq!(first.key, second.key, "the undelivered key is resent");
    assert_eq!(
        second.result.as_ref().map(|r| r.outcome),
        Some(OutcomeKind::Succeeded)
    );
    assert_eq!(cancels(&sb, card.as_str()), 1);
    // The journal holds both attempts as recorded.
    let stored = ledger.store().get(&id("rf-1")).await.unwrap();
    assert_eq!(stored.map(|i| i.attempts), Some(intent.attempts.clone()));
}
