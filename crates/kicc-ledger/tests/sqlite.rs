//! The SQLite backend on real temp files: contention between connections and processes,
//! fencing, and takeover right after an owner dies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use kicc_ledger::{
    Channel, LedgerError, LedgerUrl, OutcomeKind, SqliteStore, StateKind, Store, TransitionError,
};

async fn fresh() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_ahead_flow_on_sqlite() {
    let (_d, path) = fresh().await;
    let s = SqliteStore::open(&path).await.unwrap();
    write_ahead_flow(&s).await;
    // Reopening (a restart) finds everything, through the URL form too.
    drop(s);
    let url = LedgerUrl::parse(&format!("sqlite:{}", path.display())).unwrap();
    let s = kicc_ledger::AnyStore::open(&url).await.unwrap();
    let i = s.get(&id("flow-1")).await.unwrap().unwrap();
    assert_eq!(i.state.kind(), StateKind::Succeeded);
    assert_eq!(i.attempts[0].request, plan("K1").request);
}

/// Several processes opening one new ledger file at the same moment all get it: the loser
/// of the race to switch the file to WAL or to create the schema waits instead of failing
/// with "database is locked" (two `kicc batch run` on one new file used to lose one of them
/// this way, exit 5). Processes, not threads: SQLite's file locks are per process.
#[test]
fn processes_opening_one_new_file_at_once_all_open_it() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let children: Vec<_> = (0..4)
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .args(["child_opens_the_ledger", "--exact", "--nocapture"])
                    .args(["--test-threads=1"])
                    .env("KICC_LEDGER_CHILD_OPEN", &path)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Every child is started and waiting on its stdin: closing them all lets the
        // opens start together.
        let children: Vec<_> = children
            .into_iter()
            .map(|mut c| {
                drop(c.stdin.take());
                c
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("CHILD-OPENED"),
                "round {round}: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Runs only as a child of `processes_opening_one_new_file_at_once_all_open_it`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_opens_the_ledger() {
    let Some(path) = std::env::var_os("KICC_LEDGER_CHILD_OPEN") else {
        return;
    };
    // Wait for the parent to close stdin, so that the siblings open at the same moment.
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest).unwrap();
    match SqliteStore::open(&path).await {
        Ok(_) => println!("CHILD-OPENED"),
        Err(e) => panic!("open failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_with_result_is_all_or_nothing_on_sqlite() {
    let (_d, path) = fresh().await;
    let s = SqliteStore::open(&path).await.unwrap();
    finish_with_result_is_all_or_nothing(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_all_or_nothing_on_sqlite() {
    let (_d, path) = fresh().await;
    import_conflicts(&SqliteStore::open(&path).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_pg_cno_order_on_sqlite() {
    let (_d, path) = fresh().await;
    per_pg_cno_order(&SqliteStore::open(&path).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_contend_without_double_leases() {
    let (_d, path) = fresh().await;
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    assert_ne!(a.owner(), b.owner());
    contention(a, b, 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_is_taken_over_and_the_old_holder_fenced() {
    let (_d, path) = fresh().await;
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    expiry_and_fencing(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_owner_in_process_is_taken_over_at_once() {
    let (_d, path) = fresh().await;
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
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
    // No waiting for the hour-long lease: the owner's lock is gone.
    let rec = b.recoverable().await.unwrap();
    assert_eq!(rec.len(), 1);
    let lb = b.lease(&id("d-1"), TTL).await.unwrap();
    assert_eq!(lb.lease.generation, la.lease.generation + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_process_is_taken_over_at_once_with_its_attempt() {
    let (_d, path) = fresh().await;
    let b = SqliteStore::open(&path).await.unwrap();
    b.plan(spec("k-1", Channel::Alipay, "pg-k", Some(1203)))
        .await
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_holds_a_lease",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KICC_LEDGER_CHILD_DB", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ready = false;
    for line in lines.by_ref() {
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
    let taken = b.lease(&id("k-1"), TTL).await.unwrap();
    assert_eq!(taken.lease.generation, 2);
    let a = &taken.intent.attempts;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].key, "KC1");
    assert_eq!(a[0].request, plan("KC1").request);
    assert!(a[0].result.is_none());
    // Recovery resends the identical stored message after recording the orphan's result.
    b.record_result(&taken.lease, 1, result(OutcomeKind::Ambiguous))
        .await
        .unwrap();
    let again = kicc_ledger::AttemptPlan {
        key: a[0].key.clone(),
        korea_date: a[0].korea_date.clone(),
        request: a[0].request.clone(),
    };
    assert_eq!(
        b.record_attempt(&taken.lease, again).await.unwrap().number,
        2
    );
}

/// Runs only as the child of `killed_process_is_taken_over_at_once_with_its_attempt`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_holds_a_lease() {
    let Some(path) = std::env::var_os("KICC_LEDGER_CHILD_DB") else {
        return;
    };
    let s = SqliteStore::open(&path).await.unwrap();
    let l = s.lease(&id("k-1"), TTL).await.unwrap();
    s.record_attempt(&l.lease, plan("KC1")).await.unwrap();
    println!("CHILD-HOLDS-LEASE");
    // Hold the lease until killed (or until the parent goes away and closes stdin).
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let (_d, path) = fresh().await;
    drop(SqliteStore::open(&path).await.unwrap());
    let conn = rusqlite_conn(&path);
    conn.execute("INSERT INTO schema_version (version) VALUES (99)", [])
        .unwrap();
    drop(conn);
    assert!(matches!(
        SqliteStore::open(&path).await,
        Err(LedgerError::SchemaTooNew {
            found: 99,
            supported: 2
        })
    ));
}

fn rusqlite_conn(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_operations_fail_alone() {
    let (_d, path) = fresh().await;
    let s = SqliteStore::open(&path).await.unwrap();
    s.plan(spec("g-base", Channel::Generic, "pg-g", Some(100)))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                // Conflicts with g-base: rolled back entirely, g-new-i included.
                let out = s
                    .import(vec![
                        spec(&format!("g-new-{i}"), Channel::Generic, "pg-n", None),
                        spec("g-base", Channel::Generic, "pg-g", Some(200)),
                    ])
                    .await
                    .unwrap();
                assert!(out.is_err());
            } else {
                s.plan(spec(&format!("g-ok-{i}"), Channel::Generic, "pg-ok", None))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(s);
    let s = SqliteStore::open(&path).await.unwrap();
    let all = s.list(None).await.unwrap();
    assert_eq!(all.len(), 1 + 30);
    assert!(all
        .iter()
        .all(|i| !i.spec.intent_id().as_str().starts_with("g-new")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_contend_without_double_leases() {
    let (_d, path) = fresh().await;
    let s = SqliteStore::open(&path).await.unwrap();
    let n = 150;
    s.import(
        (0..n)
            .map(|i| {
                spec(
                    &format!("p-{i}"),
                    Channel::Generic,
                    &format!("pg-p-{}", i % 30),
                    None,
                )
            })
            .collect(),
    )
    .await
    .unwrap()
    .unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["child_works_the_queue", "--exact", "--test-threads=1"])
                .env("KICC_LEDGER_CHILD_QUEUE", &path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    work_the_queue(&s).await;
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a child worker failed");
    }
    let all = s.list(None).await.unwrap();
    assert_eq!(all.len(), n);
    for i in &all {
        assert_eq!(i.state.kind(), StateKind::Succeeded, "{i:?}");
        assert_eq!(i.attempts.len(), 1, "{i:?}");
        assert_eq!(i.generation, 1, "leased more than once: {i:?}");
    }
}

async fn work_the_queue(s: &SqliteStore) {
    loop {
        match s.lease_next(TTL).await.unwrap() {
            Some(l) => {
                let key = format!("K-{}", l.intent.spec.intent_id());
                s.record_attempt(&l.lease, plan(&key)).await.unwrap();
                s.record_result(&l.lease, 1, result(OutcomeKind::Succeeded))
                    .await
                    .unwrap();
                s.finish(
                    &l.lease,
                    kicc_ledger::Finish::Succeeded {
                        cancel_pg_cno: s.owner().to_string(),
                    },
                )
                .await
                .unwrap();
            }
            // Nothing leasable now: done when nothing is left in flight or planned
            // (a planned intent may wait behind one in flight on its pg_cno).
            None => {
                let sum = s.summary().await.unwrap();
                if sum.planned == 0 {
                    return;
                }
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Runs only as a child of `processes_contend_without_double_leases`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_works_the_queue() {
    let Some(path) = std::env::var_os("KICC_LEDGER_CHILD_QUEUE") else {
        return;
    };
    let s = SqliteStore::open(&path).await.unwrap();
    work_the_queue(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_on_sqlite() {
    let (_d, path) = fresh().await;
    notices_flow(&SqliteStore::open(&path).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_ledger_is_migrated_in_place() {
    let (_d, path) = fresh().await;
    let s = SqliteStore::open(&path).await.unwrap();
    s.plan(spec("m-1", Channel::Generic, "pg-m", None))
        .await
        .unwrap();
    drop(s);
    // Back to the version 1 schema, as an older release left it.
    let conn = rusqlite_conn(&path);
    conn.execute_batch(
        "DROP TABLE notices; DROP INDEX intents_cancel; DELETE FROM schema_version WHERE version = 2;",
    )
    .unwrap();
    drop(conn);
    let s = SqliteStore::open(&path).await.unwrap();
    assert!(s.get(&id("m-1")).await.unwrap().is_some());
    s.record_notice("pg-m", "C-1", b"n".to_vec()).await.unwrap();
    let conn = rusqlite_conn(&path);
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_next_leases_and_records_in_one_step_on_sqlite() {
    let (_d, path) = fresh().await;
    start_next_flow(&SqliteStore::open(&path).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_start_without_double_leases() {
    let (_d, path) = fresh().await;
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    start_contention(a, b, 60).await;
}
