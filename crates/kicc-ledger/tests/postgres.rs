//! The PostgreSQL backend against a real server.
//!
//! The server is `KICC_TEST_POSTGRES_URL` (`postgres://USER@HOST:PORT/DB`, password from
//! `PGPASSWORD` / `.pgpass`; the role needs CREATEDB) if set, otherwise a throwaway cluster
//! this test binary starts once with the system's `initdb` / `postgres` on a free loopback
//! port, run as `nobody` when the tests run as root (initdb refuses root). A watcher shell
//! stops the server and removes its directory as soon as this process exits, however it
//! exits (it waits for end-of-file on a pipe only this process holds).
//!
//! Without PostgreSQL binaries the tests print that they are skipped and pass, except under
//! CI (`CI` set), where `.ci/run` installs the server and a missing one is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;
mod pg;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use kicc_ledger::{
    AttemptPlan, Channel, LedgerError, OutcomeKind, Password, PgTarget, PostgresBuilder,
    PostgresStore, StateKind, Store, TransitionError,
};
use pg::{database, server};

fn builder(target: &PgTarget, password: Option<&Password>, pool: usize) -> PostgresBuilder {
    let b = PostgresStore::builder(target).pool_size(pool);
    match password {
        Some(p) => b.password(p.clone()),
        None => b,
    }
}

async fn store(target: &PgTarget, password: &Option<Password>) -> PostgresStore {
    builder(target, password.as_ref(), 2)
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_ahead_flow_on_postgres() {
    let Some((t, pw)) = database("flow").await else {
        return;
    };
    let s = store(&t, &pw).await;
    write_ahead_flow(&s).await;
    // A second store (another process's view) reads the same durable records.
    let other = store(&t, &pw).await;
    let i = other.get(&id("flow-1")).await.unwrap().unwrap();
    assert_eq!(i.state.kind(), StateKind::Succeeded);
    assert_eq!(i.attempts[0].request, plan("K1").request);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_with_result_is_all_or_nothing_on_postgres() {
    let Some((t, pw)) = database("fwr").await else {
        return;
    };
    finish_with_result_is_all_or_nothing(&store(&t, &pw).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_all_or_nothing_on_postgres() {
    let Some((t, pw)) = database("import").await else {
        return;
    };
    import_conflicts(&store(&t, &pw).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_pg_cno_order_on_postgres() {
    let Some((t, pw)) = database("order").await else {
        return;
    };
    per_pg_cno_order(&store(&t, &pw).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_lease_the_same_intent() {
    let Some((t, pw)) = database("contention").await else {
        return;
    };
    let a = store(&t, &pw).await;
    let b = store(&t, &pw).await;
    assert_ne!(a.owner(), b.owner());
    contention(a, b, 80).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_importing_one_file_store_each_intent_once() {
    let Some((t, pw)) = database("double_import").await else {
        return;
    };
    let a = store(&t, &pw).await;
    let b = store(&t, &pw).await;
    let specs: Vec<_> = (0..50)
        .map(|i| spec(&format!("i-{i}"), Channel::Generic, "pg-same", Some(100)))
        .collect();
    let (ra, rb) = tokio::join!(a.import(specs.clone()), b.import(specs));
    assert_eq!(ra.unwrap().unwrap().len(), 50);
    assert_eq!(rb.unwrap().unwrap().len(), 50);
    let all = a.list(None).await.unwrap();
    assert_eq!(all.len(), 50);
    // File order kept: one pg_cno, so seq order is the list order.
    let ids: Vec<_> = all.iter().map(|i| i.spec.intent_id().to_string()).collect();
    let want: Vec<_> = (0..50).map(|i| format!("i-{i}")).collect();
    assert_eq!(ids, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_is_taken_over_and_the_old_holder_fenced_on_postgres() {
    let Some((t, pw)) = database("fencing").await else {
        return;
    };
    let a = store(&t, &pw).await;
    let b = store(&t, &pw).await;
    expiry_and_fencing(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_owner_session_is_taken_over_without_waiting_for_expiry() {
    let Some((t, pw)) = database("dead_owner").await else {
        return;
    };
    let a = store(&t, &pw).await;
    let b = store(&t, &pw).await;
    a.plan(spec("d-1", Channel::Generic, "pg-d", None))
        .await
        .unwrap();
    let la = a.lease_next(TTL).await.unwrap().unwrap();
    assert!(matches!(
        b.lease(&id("d-1"), TTL).await,
        Err(LedgerError::Transition(TransitionError::Busy { .. }))
    ));
    assert!(b.recoverable().await.unwrap().is_empty());
    drop(a);
    // The server notices the closed session on its own schedule: wait for that event.
    let taken = loop {
        match b.lease(&id("d-1"), TTL).await {
            Ok(l) => break l,
            Err(LedgerError::Transition(TransitionError::Busy { .. })) => {
                tokio::task::yield_now().await
            }
            Err(e) => panic!("unexpected {e}"),
        }
    };
    assert_eq!(taken.lease.generation, la.lease.generation + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_process_is_taken_over_with_its_attempt_on_postgres() {
    let Some((t, pw)) = database("killed").await else {
        return;
    };
    let b = store(&t, &pw).await;
    b.plan(spec("k-1", Channel::Wechat, "pg-k", Some(500)))
        .await
        .unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_holds_a_postgres_lease",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(
        "KICC_LEDGER_CHILD_PG",
        format!("{} {} {} {}", t.user, t.host, t.port, t.dbname),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if let Some(p) = &pw {
        cmd.env("KICC_LEDGER_CHILD_PGPASSWORD", p.expose());
    }
    let mut child = cmd.spawn().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ready = false;
    for line in lines {
        if line.unwrap().contains("CHILD-HOLDS-LEASE") {
            ready = true;
            break;
        }
    }
    assert!(ready, "child never took its lease");
    assert!(matches!(
        b.lease(&id("k-1"), TTL).await,
        Err(LedgerError::Transition(TransitionError::Busy { .. }))
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    let taken = loop {
        match b.lease(&id("k-1"), TTL).await {
            Ok(l) => break l,
            Err(LedgerError::Transition(TransitionError::Busy { .. })) => {
                tokio::task::yield_now().await
            }
            Err(e) => panic!("unexpected {e}"),
        }
    };
    let a = &taken.intent.attempts;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].request, plan("KC1").request);
    b.record_result(&taken.lease, 1, result(OutcomeKind::Pending))
        .await
        .unwrap();
}

/// Runs only as the child of `killed_process_is_taken_over_with_its_attempt_on_postgres`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_holds_a_postgres_lease() {
    let Ok(spec_text) = std::env::var("KICC_LEDGER_CHILD_PG") else {
        return;
    };
    let parts: Vec<&str> = spec_text.split(' ').collect();
    let target = PgTarget {
        user: parts[0].into(),
        host: parts[1].into(),
        port: parts[2].parse().unwrap(),
        dbname: parts[3].into(),
    };
    let pw = std::env::var("KICC_LEDGER_CHILD_PGPASSWORD")
        .ok()
        .map(Password::new);
    let s = store(&target, &pw).await;
    let l = s.lease(&id("k-1"), TTL).await.unwrap();
    s.record_attempt(&l.lease, plan("KC1")).await.unwrap();
    println!("CHILD-HOLDS-LEASE");
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_without_showing_it() {
    let Some((t, pw)) = database("password").await else {
        return;
    };
    if pw.is_none() {
        return; // an external server without a password: nothing to check
    }
    let wrong = Password::new("not-the-password-x9");
    let err = builder(&t, Some(&wrong), 1).connect().await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, LedgerError::Storage(_)), "{shown}");
    assert!(!shown.contains("not-the-password-x9"), "{shown}");
    assert!(shown.contains(&t.to_string()), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_on_postgres() {
    let Some((t, pw)) = database("schema").await else {
        return;
    };
    drop(store(&t, &pw).await);
    let server = server().unwrap();
    let mut cfg = tokio_postgres::Config::new();
    cfg.user(&t.user)
        .host(&t.host)
        .port(t.port)
        .dbname(&t.dbname);
    if let Some(p) = &server.password {
        cfg.password(p.expose());
    }
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
        .execute("INSERT INTO schema_version (version) VALUES (99)", &[])
        .await
        .unwrap();
    assert!(matches!(
        builder(&t, pw.as_ref(), 1).connect().await,
        Err(LedgerError::SchemaTooNew {
            found: 99,
            supported: 4
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_on_postgres() {
    let Some((t, pw)) = database("notices").await else {
        return;
    };
    notices_flow(&store(&t, &pw).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_next_leases_and_records_in_one_step_on_postgres() {
    let Some((t, pw)) = database("start").await else {
        return;
    };
    start_next_flow(&store(&t, &pw).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_start_the_same_intent() {
    let Some((t, pw)) = database("startcont").await else {
        return;
    };
    let a = store(&t, &pw).await;
    let b = store(&t, &pw).await;
    start_contention(a, b, 80).await;
}

// ---- group commit: what each operation in one group is told ----

/// An admin session on the test database `t`.
async fn admin(t: &PgTarget, pw: &Option<Password>) -> tokio_postgres::Client {
    let mut cfg = tokio_postgres::Config::new();
    cfg.user(&t.user)
        .host(&t.host)
        .port(t.port)
        .dbname(&t.dbname);
    if let Some(p) = pw {
        cfg.password(p.expose());
    }
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Waits until a session of this database waits for a row lock (the event that proves the
/// store's committer is inside a group, blocked on the row `blocker` holds).
async fn until_a_session_waits_for_a_lock(watcher: &tokio_postgres::Client) {
    loop {
        let row = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// One committer, held inside a group: `blocker`'s row is locked by `holder`'s open
/// transaction and a renewal of it is queued and blocked on that lock. Every operation
/// queued from now on goes into the next group, together, once `holder` commits.
async fn one_committer_held(
    t: &PgTarget,
    pw: &Option<Password>,
    ids: &[&str],
) -> (
    PostgresStore,
    Vec<kicc_ledger::Leased>,
    tokio_postgres::Client,
    tokio_postgres::Client,
) {
    let s = builder(t, pw.as_ref(), 2)
        .committers(1)
        .connect()
        .await
        .unwrap();
    let mut specs = vec![spec("blocker", Channel::Alipay, "pg-blocker", None)];
    specs.extend(
        ids.iter()
            .map(|i| spec(i, Channel::Alipay, &format!("pg-{i}"), None)),
    );
    s.import(specs).await.unwrap().unwrap();
    let mut leases = Vec::new();
    for i in std::iter::once("blocker").chain(ids.iter().copied()) {
        leases.push(s.lease(&id(i), TTL).await.unwrap());
    }
    let holder = admin(t, pw).await;
    holder
        .batch_execute("BEGIN; SELECT 1 FROM intents WHERE intent_id = 'blocker' FOR UPDATE")
        .await
        .unwrap();
    (s, leases, holder, admin(t, pw).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_write_in_a_group_fails_alone_and_the_others_commit_together() {
    let Some((t, pw)) = database("group_fenced").await else {
        return;
    };
    let (s, leases, holder, watcher) = one_committer_held(&t, &pw, &["g-a", "g-b", "g-c"]).await;
    let (blocker, a, b, c) = (&leases[0], &leases[1], &leases[2], &leases[3]);
    // g-a's lease is taken over (released and leased again): the old one is fenced.
    s.release(&a.lease).await.unwrap();
    let a2 = s.lease(&id("g-a"), TTL).await.unwrap();
    let held = s.renew(&blocker.lease, Duration::from_secs(60));
    until_a_session_waits_for_a_lock(&watcher).await;
    // Queued while the committer is held: one group.
    let stale = s.record_attempt(&a.lease, plan("GA1"));
    let rb = s.renew(&b.lease, Duration::from_secs(60));
    let rc = s.record_attempt(&c.lease, plan("GC1"));
    holder.batch_execute("COMMIT").await.unwrap();
    let (held, stale, rb, rc) = tokio::join!(held, stale, rb, rc);
    held.unwrap();
    assert!(
        matches!(
            stale,
            Err(LedgerError::Transition(TransitionError::Fenced { .. }))
        ),
        "{stale:?}"
    );
    rb.unwrap();
    assert_eq!(rc.unwrap().key, "GC1");
    // g-b and g-c were written by one transaction; g-a kept its new holder and no attempt.
    let xmins = watcher
        .query(
            "SELECT xmin::text FROM intents WHERE intent_id IN ('g-b', 'g-c')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(xmins.len(), 2);
    assert_eq!(xmins[0].get::<_, String>(0), xmins[1].get::<_, String>(0));
    let ga = s.get(&id("g-a")).await.unwrap().unwrap();
    assert_eq!(ga.generation, a2.lease.generation);
    assert_eq!(ga.state.kind(), StateKind::InFlight);
    assert!(ga.attempts.is_empty());
    let gc = s.get(&id("g-c")).await.unwrap().unwrap();
    assert_eq!(gc.attempts[0].request, plan("GC1").request);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_commit_fails_every_write_in_it_and_keeps_nothing() {
    let Some((t, pw)) = database("group_commit_fails").await else {
        return;
    };
    let (s, leases, holder, watcher) = one_committer_held(&t, &pw, &["poison", "f-b", "f-c"]).await;
    let (blocker, poison, b, c) = (&leases[0], &leases[1], &leases[2], &leases[3]);
    s.plan(spec("f-free", Channel::Alipay, "pg-f-free", None))
        .await
        .unwrap();
    let before_b = s.get(&id("f-b")).await.unwrap().unwrap();
    // The server refuses the COMMIT of any transaction that wrote intent `poison` (a
    // deferred constraint trigger fires at commit): every statement succeeds, the commit
    // fails.
    watcher
        .batch_execute(
            "CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
             CREATE CONSTRAINT TRIGGER refuse_poison AFTER UPDATE ON intents \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
             WHEN (NEW.intent_id = 'poison') EXECUTE FUNCTION refuse_commit();",
        )
        .await
        .unwrap();
    let held = s.renew(&blocker.lease, Duration::from_secs(60));
    until_a_session_waits_for_a_lock(&watcher).await;
    let rp = s.renew(&poison.lease, Duration::from_secs(60));
    let rb = s.renew(&b.lease, Duration::from_secs(60));
    let rc = s.record_attempt(&c.lease, plan("FC1"));
    let claim = s.start_next(TTL, Duration::from_secs(60), |_| Some(plan("FREE1")));
    holder.batch_execute("COMMIT").await.unwrap();
    let (held, rp, rb, rc, claim) = tokio::join!(held, rp, rb, rc, claim);
    held.unwrap();
    for (what, failed) in [
        ("poison", rp.err()),
        ("f-b", rb.err()),
        ("f-c", rc.err()),
        ("claim", claim.err()),
    ] {
        match failed {
            Some(LedgerError::Storage(e)) => assert!(
                e.message().contains("nothing of it was committed"),
                "{what}: {e}"
            ),
            other => panic!("{what}: expected a storage error, got {other:?}"),
        }
    }
    // Nothing of the group is in the ledger: no renewal, no attempt, no claim.
    let after_b = s.get(&id("f-b")).await.unwrap().unwrap();
    assert_eq!(after_b.state, before_b.state);
    assert!(s
        .get(&id("f-c"))
        .await
        .unwrap()
        .unwrap()
        .attempts
        .is_empty());
    let free = s.get(&id("f-free")).await.unwrap().unwrap();
    assert_eq!(free.state.kind(), StateKind::Planned);
    assert!(free.attempts.is_empty());
    // The committer goes on with the next group.
    watcher
        .batch_execute("DROP TRIGGER refuse_poison ON intents")
        .await
        .unwrap();
    s.renew(&b.lease, Duration::from_secs(60)).await.unwrap();
    let started = s
        .start_next(TTL, Duration::from_secs(60), |_| Some(plan("FREE2")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(started.intent.spec.intent_id(), &id("f-free"));
    assert_eq!(started.attempt.unwrap().key, "FREE2");
}

#[cfg(feature = "client")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sends_nothing_whose_claim_was_not_committed() {
    use kicc_ledger::{BatchOptions, Ledger};
    let Some((t, pw)) = database("group_sends_nothing").await else {
        return;
    };
    let sb = kicc_sandbox::Sandbox::start("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .unwrap();
    let merchant = kicc_core::Merchant::new(
        kicc_core::Environment::Custom(kicc_core::BaseUrl::new(sb.base_url()).unwrap()),
        kicc_core::MallId::new("T0000001").unwrap(),
        kicc_core::SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY).unwrap(),
    );
    let s = store(&t, &pw).await;
    let mut specs = Vec::new();
    let mut pg_cnos = Vec::new();
    for i in 0..40 {
        let p = sb
            .create_payment(
                kicc_sandbox::Channel::Alipay,
                5_000,
                kicc_sandbox::Currency::Krw,
            )
            .unwrap()
            .pg_cno;
        let name = if i == 12 {
            "poison".to_owned()
        } else {
            format!("s-{i}")
        };
        specs.push(spec(&name, Channel::Alipay, &p, None));
        pg_cnos.push(p);
    }
    s.import(specs).await.unwrap().unwrap();
    // Every group that claims `poison` fails at COMMIT.
    admin(&t, &pw)
        .await
        .batch_execute(
            "CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
             CREATE CONSTRAINT TRIGGER refuse_poison AFTER UPDATE ON intents \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
             WHEN (NEW.intent_id = 'poison') EXECUTE FUNCTION refuse_commit();",
        )
        .await
        .unwrap();
    let l = Ledger::new(
        s.clone(),
        merchant,
        kicc_transport::HyperTransport::new().unwrap(),
    );
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let ran = l
        .run_batch(BatchOptions::default().with_concurrency(4), rx, &|_| {})
        .await;
    assert!(ran.is_err(), "the failed commits stop the batch");
    let intents = s.list(None).await.unwrap();
    let poison = intents
        .iter()
        .find(|i| i.spec.intent_id().as_str() == "poison")
        .unwrap();
    assert_eq!(poison.state.kind(), StateKind::Planned);
    let mut sent_for_unjournaled = 0;
    for (intent, pg) in intents.iter().zip(&pg_cnos) {
        assert_eq!(intent.spec.pg_cno(), pg);
        let cancels = sb.payment(pg).unwrap().cancels;
        // Every request the sandbox received was journaled first, under its key.
        for c in &cancels {
            assert!(
                intent
                    .attempts
                    .iter()
                    .any(|a| a.key == c.shop_transaction_id),
                "{}: cancel {} was not journaled",
                intent.spec.intent_id(),
                c.shop_transaction_id
            );
        }
        if intent.attempts.is_empty() {
            sent_for_unjournaled += cancels.len();
        }
    }
    assert_eq!(sent_for_unjournaled, 0);
    assert!(
        sb.payment(&pg_cnos[12]).unwrap().cancels.is_empty(),
        "nothing was sent for the intent whose claims never committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writes_to_one_intent_in_one_group_are_applied_one_after_the_other() {
    let Some((t, pw)) = database("group_same_intent").await else {
        return;
    };
    let (s, leases, holder, watcher) = one_committer_held(&t, &pw, &["d-b"]).await;
    let (blocker, b) = (&leases[0], &leases[1]);
    let held = s.renew(&blocker.lease, Duration::from_secs(60));
    until_a_session_waits_for_a_lock(&watcher).await;
    // Both queued while the committer is held: the second waits for the next group and is
    // applied to what the first wrote (neither write is lost).
    let renewed = s.renew(&b.lease, Duration::from_secs(60));
    let recorded = s.record_attempt(&b.lease, plan("DB1"));
    holder.batch_execute("COMMIT").await.unwrap();
    let (held, renewed, recorded) = tokio::join!(held, renewed, recorded);
    held.unwrap();
    let renewed = renewed.unwrap();
    assert_eq!(recorded.unwrap().key, "DB1");
    let db = s.get(&id("d-b")).await.unwrap().unwrap();
    assert_eq!(db.attempts.len(), 1);
    match db.state {
        kicc_ledger::State::InFlight { expires_at, .. } => {
            assert_eq!(expires_at, renewed.expires_at)
        }
        other => panic!("expected in flight, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_intent_comes_with_the_attempts_it_already_has() {
    let Some((t, pw)) = database("group_claim_attempts").await else {
        return;
    };
    let s = store(&t, &pw).await;
    s.plan(spec("c-1", Channel::Alipay, "pg-c1", None))
        .await
        .unwrap();
    // A planned intent has no attempts through the API; written by hand, the claim must
    // still see it (a build that finds an attempt records none).
    admin(&t, &pw)
        .await
        .batch_execute(
            "INSERT INTO attempts (intent_seq, number, shop_transaction_id, korea_date, \
             request, sent_ms) SELECT seq, 1, 'OLD1', '20261202', '\\x00', 1 FROM intents \
             WHERE intent_id = 'c-1'",
        )
        .await
        .unwrap();
    let started = s
        .start_next(TTL, Duration::from_secs(60), |i| {
            i.attempts.is_empty().then(|| plan("NEW1"))
        })
        .await
        .unwrap()
        .unwrap();
    assert!(started.attempt.is_none());
    let keys: Vec<_> = started
        .intent
        .attempts
        .iter()
        .map(|a| a.key.clone())
        .collect();
    assert_eq!(keys, ["OLD1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committer_whose_connection_is_cut_fails_its_group_and_reconnects() {
    let Some((t, pw)) = database("group_cut").await else {
        return;
    };
    let (s, leases, holder, watcher) = one_committer_held(&t, &pw, &["x-b"]).await;
    let (blocker, b) = (&leases[0], &leases[1]);
    let before = s.get(&id("blocker")).await.unwrap().unwrap();
    let held = s.record_attempt(&blocker.lease, plan("XB0"));
    until_a_session_waits_for_a_lock(&watcher).await;
    // Cut the committer's session while its group waits for the lock.
    watcher
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await
        .unwrap();
    match held.await {
        Err(LedgerError::Storage(e)) => {
            assert!(e.message().contains("nothing of it was committed"), "{e}")
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    holder.batch_execute("COMMIT").await.unwrap();
    assert_eq!(s.get(&id("blocker")).await.unwrap().unwrap(), before);
    // The next group runs on a new connection.
    assert_eq!(
        s.record_attempt(&b.lease, plan("XB1")).await.unwrap().key,
        "XB1"
    );
    assert_eq!(
        s.record_attempt(&blocker.lease, plan("XB2"))
            .await
            .unwrap()
            .key,
        "XB2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_message_builder_fails_its_claim_alone() {
    let Some((t, pw)) = database("group_panic").await else {
        return;
    };
    let (s, leases, holder, watcher) = one_committer_held(&t, &pw, &["p-b"]).await;
    let (blocker, b) = (&leases[0], &leases[1]);
    s.plan(spec("p-free", Channel::Alipay, "pg-p-free", None))
        .await
        .unwrap();
    let held = s.renew(&blocker.lease, Duration::from_secs(60));
    until_a_session_waits_for_a_lock(&watcher).await;
    // One group: a claim whose builder panics, and a write that must still commit.
    let claim = s.start_next(TTL, Duration::from_secs(60), |_| -> Option<AttemptPlan> {
        panic!("a builder bug")
    });
    let recorded = s.record_attempt(&b.lease, plan("PB1"));
    holder.batch_execute("COMMIT").await.unwrap();
    let (held, claim, recorded) = tokio::join!(held, claim, recorded);
    held.unwrap();
    assert!(matches!(claim, Err(LedgerError::Storage(_))), "{claim:?}");
    assert_eq!(recorded.unwrap().key, "PB1");
    // Nothing of the claim was written, and the one committer is still there.
    let free = s.get(&id("p-free")).await.unwrap().unwrap();
    assert_eq!(free.state.kind(), StateKind::Planned);
    let started = s
        .start_next(TTL, Duration::from_secs(60), |_| Some(plan("PF1")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(started.intent.spec.intent_id(), &id("p-free"));
}
