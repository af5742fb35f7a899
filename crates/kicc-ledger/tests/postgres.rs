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

use common::*;
use kicc_ledger::{
    Channel, LedgerError, OutcomeKind, Password, PgTarget, PostgresBuilder, PostgresStore,
    StateKind, Store, TransitionError,
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
            supported: 3
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
