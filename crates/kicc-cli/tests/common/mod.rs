//! Shared test helpers: running `kicc`, a `kicc sandbox serve` child that is killed on drop,
//! and a tiny blocking HTTP/1.1 client for the sandbox's admin API (loopback only).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The variables a test must never inherit from the developer's shell.
const CREDENTIAL_VARS: [&str; 3] = ["KICC_MALL_ID", "KICC_SECRET_KEY", "WECHATPAY_APIV3_KEY"];

/// Proxy variables: `kicc` honours them, so a test sets the ones it wants itself.
const PROXY_VARS: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// `kicc` with a clean credential and proxy environment.
pub fn kicc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kicc"));
    for v in CREDENTIAL_VARS.into_iter().chain(PROXY_VARS) {
        c.env_remove(v);
    }
    c.stdin(Stdio::null());
    c
}

/// What a finished `kicc` printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as JSON (panics with the whole output if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// Asserts the invalid-input contract: exit 2, nothing on stdout, one stderr line that
    /// contains every one of `needles`.
    pub fn assert_invalid(&self, needles: &[&str]) {
        assert_eq!(self.code, 2, "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
        assert_eq!(self.stderr.lines().count(), 1, "{self:#?}");
        assert!(self.stderr.ends_with('\n'), "{self:#?}");
        for n in needles {
            assert!(self.stderr.contains(n), "missing {n:?}: {self:#?}");
        }
    }
}

/// Runs `cmd` to completion.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("kicc runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `kicc ARGS`.
pub fn kicc_run(args: &[&str]) -> Run {
    run(kicc().args(args))
}

/// A `kicc sandbox serve` child on a free loopback port; killed when dropped.
pub struct Served {
    child: Child,
    pub base_url: String,
    /// The second stdout line with `--tls`.
    pub root_cert_line: Option<String>,
    _stdout: BufReader<ChildStdout>,
}

impl Served {
    /// Starts `kicc sandbox serve --addr 127.0.0.1:0 EXTRA` with `env` set.
    pub fn start(extra: &[&str], env: &[(&str, &str)]) -> Served {
        let mut cmd = kicc();
        cmd.args(["sandbox", "serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("the sandbox starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("the first line");
        let base_url = first
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix("listening on "))
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        let root_cert_line = if extra.contains(&"--tls") {
            let mut second = String::new();
            stdout.read_line(&mut second).expect("the second line");
            Some(second.trim_end().to_owned())
        } else {
            None
        };
        Served {
            child,
            base_url,
            root_cert_line,
            _stdout: stdout,
        }
    }

    /// Starts a plain sandbox with short webhook delays.
    pub fn quick() -> Served {
        Served::start(
            &[
                "--webhook-delay-ms",
                "100",
                "--webhook-retry-interval-ms",
                "100",
            ],
            &[],
        )
    }

    /// The child's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child to exit by itself (at most `limit`), returning its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `kicc --base-url THIS ARGS`.
    pub fn kicc(&self, args: &[&str]) -> Run {
        run(kicc().args(args).args(["--base-url", &self.base_url]))
    }

    /// Creates a payment through the admin API; returns its `pgCno`.
    pub fn payment(&self, channel: &str, amount: u64, currency: &str) -> String {
        let (status, v) = http(
            &self.base_url,
            "POST",
            "/sandbox/payments",
            Some(&serde_json::json!({"channel": channel, "amount": amount, "currency": currency})),
        );
        assert_eq!(status, 200, "{v}");
        v["pgCno"].as_str().expect("pgCno").to_owned()
    }

    /// A payment's state from the admin API.
    pub fn state(&self, pg_cno: &str) -> Value {
        let (status, v) = http(
            &self.base_url,
            "GET",
            &format!("/sandbox/payments/{pg_cno}"),
            None,
        );
        assert_eq!(status, 200, "{v}");
        v
    }

    /// The sandbox's Korea date (`yyyyMMdd`), by its own clock.
    pub fn korea_date(&self) -> String {
        let (status, v) = http(&self.base_url, "GET", "/sandbox/clock", None);
        assert_eq!(status, 200, "{v}");
        v["koreaDate"].as_str().expect("koreaDate").to_owned()
    }

    /// Sets the sandbox's clock to real time plus `offset_seconds`.
    pub fn set_clock(&self, offset_seconds: i64) {
        let body = serde_json::json!({ "offsetSeconds": offset_seconds });
        let (status, v) = http(&self.base_url, "POST", "/sandbox/clock", Some(&body));
        assert_eq!(status, 200, "{v}");
    }

    /// Injects a fault through the admin API.
    pub fn fault(&self, fault: Value) {
        let (status, v) = http(&self.base_url, "POST", "/sandbox/faults", Some(&fault));
        assert_eq!(status, 200, "{v}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to a loopback `base_url` (`http://127.0.0.1:PORT`).
pub fn http(base_url: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let authority = base_url
        .strip_prefix("http://")
        .expect("a plain-http loopback URL");
    let mut tcp = TcpStream::connect(authority).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        tcp,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).expect("response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A path under this crate's test fixtures.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kicc-cli-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
