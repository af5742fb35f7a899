//! A real PostgreSQL server for tests: `KICC_TEST_POSTGRES_URL` (`postgres://USER@HOST:PORT/DB`,
//! password from `PGPASSWORD` / `.pgpass`; the role needs CREATEDB) if set, otherwise a
//! throwaway cluster started once per test binary with the system's `initdb` / `postgres` on
//! a free loopback port, run as `nobody` when the tests run as root (initdb refuses root). A
//! watcher shell stops the server and removes its directory as soon as the test process
//! exits, however it exits (it waits for end-of-file on a pipe only that process holds).
//!
//! Without PostgreSQL binaries [`database`] says the tests are skipped and returns `None`,
//! except under CI (`CI` set), where `.ci/run` installs the server and a missing one is a
//! failure. Shared by kicc-ledger's tests and kicc-cli's (`#[path]` include).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use kicc_ledger::password_from_env;
use kicc_ledger::{Password, PgTarget};

pub struct Server {
    /// The server's address and admin role (database `postgres`).
    pub base: PgTarget,
    /// The admin role's password, if it has one.
    pub password: Option<Password>,
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

/// The server, started on first use; `None` when skipping.
pub fn server() -> Option<&'static Server> {
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
pub async fn database(name: &str) -> Option<(PgTarget, Option<Password>)> {
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

/// The admin connection.
pub struct PostgresStoreAdmin;

impl PostgresStoreAdmin {
    /// Connects as the admin role to database `postgres`.
    pub async fn connect(server: &Server) -> tokio_postgres::Client {
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
