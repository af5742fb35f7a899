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

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use common::*;
use kicc_ledger::url::password_from_env;
use kicc_ledger::{
    Channel, LedgerError, OutcomeKind, Password, PgTarget, PostgresStore, StateKind, Store,
    TransitionError,
};

struct Server {
    base: PgTarget,
    password: Option<Password>,
    /// The watcher: its stdin is the pipe whose end-of-file stops the server.
    _watcher: Option<Mutex<Child>>,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

fn say(text: &str) {
    // Not captured by the test harness, so a skip is visible in every run.
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    bin.join("initdb").is_file().then_some(bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn as_server_user(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start_cluster(bin: &Path) -> Server {
    let root = is_root();
    let tmp = tempfile::Builder::new()
        .prefix("kicc-ledger-pg-")
        .tempdir()
        .unwrap()
        .keep();
    let data = tmp.join("data");
    let sock = tmp.join("sock");
    std::fs::create_dir(&sock).unwrap();
    let password = {
        let mut b = [0u8; 16];
        getrandom::getrandom(&mut b).unwrap();
        hex::encode(b)
    };
    let pwfile = tmp.join("pw");
    std::fs::write(&pwfile, &password).unwrap();
    if root {
        let ok = Command::new("chown")
            .args(["-R", "nobody:"])
            .arg(&tmp)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown of the cluster directory failed");
    }
    let init = as_server_user(root, &bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "kicc", "-E", "UTF8", "--no-sync", "--no-instructions"])
        .args(["--auth-host=scram-sha-256", "--auth-local=trust"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .current_dir(&tmp)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    std::fs::remove_file(&pwfile).unwrap();
    let port = free_port();
    let run_as = if root { "runuser -u nobody --" } else { "" };
    // Positional parameters only: no path is spliced into the script.
    let script = r#"
        $1 "$2/postgres" -D "$3" -k "$4" -h 127.0.0.1 -p "$5" -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
            >"$6/server.log" 2>&1 &
        cat >/dev/null
        $1 "$2/pg_ctl" -D "$3" -m immediate -w stop >/dev/null 2>&1
        wait
        rm -rf "$6"
    "#;
    let watcher = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(run_as)
        .arg(bin)
        .arg(&data)
        .arg(&sock)
        .arg(port.to_string())
        .arg(&tmp)
        .current_dir(&tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the server to accept connections (the event), with a generous bound for
    // reporting a server that never comes up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "kicc",
                "-d",
                "postgres",
                "-p",
            ])
            .arg(port.to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ready {
            break;
        }
        if std::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(tmp.join("server.log")).unwrap_or_default();
            panic!("PostgreSQL did not start on port {port}:\n{log}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Server {
        base: PgTarget {
            user: "kicc".into(),
            host: "127.0.0.1".into(),
            port,
            dbname: "postgres".into(),
        },
        password: Some(Password::new(password)),
        _watcher: Some(Mutex::new(watcher)),
    }
}

fn server() -> Option<&'static Server> {
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("KICC_TEST_POSTGRES_URL") {
                let kicc_ledger::LedgerUrl::Postgres(base) =
                    kicc_ledger::LedgerUrl::parse(&url).expect("KICC_TEST_POSTGRES_URL")
                else {
                    panic!("KICC_TEST_POSTGRES_URL must be a postgres:// URL");
                };
                let password = password_from_env(&base);
                return Some(Server {
                    base,
                    password,
                    _watcher: None,
                });
            }
            match bin_dir() {
                Some(bin) => Some(start_cluster(&bin)),
                None if std::env::var_os("CI").is_some() => panic!(
                    "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin or \
                     pg_config --bindir; .ci/run installs them, so CI must not skip these tests"
                ),
                None => {
                    say(
                        "kicc-ledger postgres tests SKIPPED: no PostgreSQL server binaries \
                         (initdb) found and KICC_TEST_POSTGRES_URL is not set",
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// A fresh database `kicc_test_NAME` on the server, or `None` when skipping.
async fn database(name: &str) -> Option<(PgTarget, Option<Password>)> {
    let server = server()?;
    let admin = PostgresStoreAdmin::connect(server).await;
    let db = format!("kicc_test_{name}");
    assert!(db.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE \"{db}\""))
        .await
        .unwrap();
    let mut target = server.base.clone();
    target.dbname = db;
    Some((target, server.password.clone()))
}

struct PostgresStoreAdmin;

impl PostgresStoreAdmin {
    async fn connect(server: &Server) -> tokio_postgres::Client {
        let mut cfg = tokio_postgres::Config::new();
        cfg.user(&server.base.user)
            .host(&server.base.host)
            .port(server.base.port)
            .dbname(&server.base.dbname);
        if let Some(p) = &server.password {
            cfg.password(p.expose());
        }
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }
}

async fn store(target: &PgTarget, password: &Option<Password>) -> PostgresStore {
    PostgresStore::connect_with(target, password.as_ref(), 2)
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
    let err = PostgresStore::connect_with(&t, Some(&wrong), 1)
        .await
        .unwrap_err();
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
        PostgresStore::connect_with(&t, pw.as_ref(), 1).await,
        Err(LedgerError::SchemaTooNew {
            found: 99,
            supported: 2
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
