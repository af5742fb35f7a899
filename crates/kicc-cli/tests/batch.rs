//! `kicc batch run`, `kicc ledger list|recover` and `kicc cancel --intent-id` as real
//! processes against `kicc sandbox serve`, including SIGKILLs at random moments.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;
#[path = "../../kicc-ledger/tests/pg/mod.rs"]
mod pg;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{kicc, run, temp_dir, Run, Served};
use serde_json::Value;

/// A row of a test batch: the intent, its payment and the minor amount that must be
/// cancelled exactly once.
struct Row {
    id: String,
    channel: &'static str,
    pg_cno: String,
    amount_text: String,
    currency: &'static str,
    minor: u64,
}

fn write_csv(path: &Path, rows: &[Row]) {
    let mut text = String::from("intent_id,channel,pg_cno,amount,currency,reason\n");
    for r in rows {
        text.push_str(&format!(
            "{},{},{},{},{},batch test\n",
            r.id, r.channel, r.pg_cno, r.amount_text, r.currency
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn batch_args<'a>(
    sb: &'a Served,
    csv: &'a str,
    ledger: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut a = vec![
        "batch",
        "run",
        csv,
        "--ledger",
        ledger,
        "--base-url",
        &sb.base_url,
        "--timeout",
        "1",
        "--processing-bound",
        "2",
        "--wait",
        "20",
    ];
    a.extend_from_slice(extra);
    a
}

fn applied(sb: &Served, pg_cno: &str) -> Vec<u64> {
    sb.state(pg_cno)["cancels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "applied")
        .map(|c| c["amount"].as_u64().unwrap())
        .collect()
}

fn report(path: &Path) -> HashMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "intent_id,state,channel,pg_cno,amount,currency,shop_transaction_id,cancel_pg_cno,res_cd,detail"
    );
    lines
        .map(|l| {
            let cols: Vec<String> = l.split(',').map(str::to_owned).collect();
            (cols[0].clone(), cols)
        })
        .collect()
}

fn summary(r: &Run) -> Value {
    let last = r.stdout.lines().last().unwrap_or_else(|| panic!("{r:#?}"));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {r:#?}"))
}

/// A cheap random source (no extra crate): the clock's nanoseconds through xorshift.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
        Random(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn a_bad_file_is_refused_whole_and_nothing_is_sent() {
    let sb = Served::quick();
    let dir = temp_dir("batch-bad");
    let card = sb.payment("card", 5_000, "KRW");
    let csv = dir.join("b.csv");
    std::fs::write(
        &csv,
        format!(
            "intent_id,channel,pg_cno,amount,currency,reason\n\
             ok-1,generic,{card},1000,,\n\
             bad-1,bitcoin,{card},,,\n\
             bad-2,alipay,{card},12.345,USD,\n"
        ),
    )
    .unwrap();
    let ledger = format!("sqlite:{}", dir.join("l.db").display());
    let r = run(kicc().args(batch_args(&sb, csv.to_str().unwrap(), &ledger, &[])));
    assert_eq!(r.code, 2, "{r:#?}");
    assert_eq!(r.stdout, "");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines[0], "error: 2 invalid rows", "{r:#?}");
    assert_eq!(lines.len(), 3, "{r:#?}");
    assert!(lines[1].starts_with("line 3"), "{r:#?}");
    assert!(lines[2].starts_with("line 4"), "{r:#?}");
    assert!(applied(&sb, &card).is_empty());

    // A password in the ledger URL is refused, and never repeated.
    let r = run(kicc().args(batch_args(
        &sb,
        csv.to_str().unwrap(),
        "postgres://kicc:hunter2@127.0.0.1:5432/l",
        &[],
    )));
    r.assert_invalid(&["password"]);
    assert!(!r.stderr.contains("hunter2"));
}

#[test]
fn every_channel_once_reruns_send_nothing_and_list_shows_it() {
    let sb = Served::quick();
    let dir = temp_dir("batch-small");
    let rows = vec![
        Row {
            id: "g-1".into(),
            channel: "generic",
            pg_cno: sb.payment("card", 5_000, "KRW"),
            amount_text: "1000".into(),
            currency: "",
            minor: 1_000,
        },
        Row {
            id: "a-1".into(),
            channel: "alipay",
            pg_cno: sb.payment("alipay", 5_000, "USD"),
            amount_text: "12.03".into(),
            currency: "USD",
            minor: 1_203,
        },
        Row {
            id: "w-1".into(),
            channel: "wechat",
            pg_cno: sb.payment("wechat", 3_000, "KRW"),
            amount_text: String::new(),
            currency: "",
            minor: 3_000,
        },
    ];
    let csv = dir.join("b.csv");
    write_csv(&csv, &rows);
    let ledger = format!("sqlite:{}", dir.join("l.db").display());
    let rep = dir.join("report.csv");
    let rep_s = rep.to_str().unwrap().to_owned();
    for _ in 0..2 {
        let r = run(kicc().args(batch_args(
            &sb,
            csv.to_str().unwrap(),
            &ledger,
            &["--report", &rep_s],
        )));
        assert_eq!(r.code, 0, "{r:#?}");
        let s = summary(&r);
        assert_eq!(s["total"], 3, "{r:#?}");
        assert_eq!(s["succeeded"], 3, "{r:#?}");
        let report = report(&rep);
        assert_eq!(report.len(), 3);
        for row in &rows {
            assert_eq!(report[&row.id][1], "succeeded");
            assert_eq!(applied(&sb, &row.pg_cno), vec![row.minor], "{}", row.id);
        }
    }

    let r = run(kicc().args([
        "ledger",
        "list",
        "--ledger",
        &ledger,
        "--state",
        "succeeded",
    ]));
    assert_eq!(r.code, 0, "{r:#?}");
    let listed: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1]["intent_id"], "a-1");
    assert_eq!(listed[1]["amount"], "12.03");
    assert_eq!(listed[1]["attempts"], 1);
    let r = run(kicc().args(["ledger", "list", "--ledger", &ledger, "--state", "unknown"]));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:#?}");
    let r = run(kicc().args(["ledger", "list", "--ledger", &ledger, "--state", "done"]));
    r.assert_invalid(&["state"]);

    // The same id with another amount conflicts with the ledger: a bad row, nothing sent.
    std::fs::write(
        &csv,
        format!(
            "intent_id,channel,pg_cno,amount,currency,reason\ng-1,generic,{},2000,,\n",
            rows[0].pg_cno
        ),
    )
    .unwrap();
    let r = run(kicc().args(batch_args(&sb, csv.to_str().unwrap(), &ledger, &[])));
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.stderr.starts_with("error: 1 invalid rows\nline 2: "),
        "{r:#?}"
    );
    assert_eq!(applied(&sb, &rows[0].pg_cno), vec![1_000]);

    // One journaled cancel from `kicc cancel`; the same id again sends nothing.
    let card = sb.payment("card", 4_000, "KRW");
    for _ in 0..2 {
        let r = sb.kicc(&[
            "cancel",
            "generic",
            "--pg-cno",
            &card,
            "--amount",
            "1500",
            "--intent-id",
            "single-1",
            "--ledger",
            &ledger,
        ]);
        assert_eq!(r.code, 0, "{r:#?}");
        assert_eq!(r.json()["state"], "succeeded", "{r:#?}");
    }
    assert_eq!(applied(&sb, &card), vec![1_500]);
}

/// Spawns a batch run whose output is discarded (it may be killed).
fn spawn_batch(sb: &Served, csv: &str, ledger: &str, extra: &[&str]) -> Child {
    kicc()
        .args(batch_args(sb, csv, ledger, extra))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A few hundred cancels over every channel, with faults, and `payments` per channel.
fn crash_rows(sb: &Served, per_channel: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for n in 0..per_channel {
        // Two partial cancels per card payment: they run one at a time, in file order.
        let card = if n % 2 == 0 {
            sb.payment("card", 10_000, "KRW")
        } else {
            rows.iter()
                .rev()
                .find(|r: &&Row| r.channel == "generic")
                .map(|r| r.pg_cno.clone())
                .unwrap()
        };
        rows.push(Row {
            id: format!("g-{n}"),
            channel: "generic",
            pg_cno: card,
            amount_text: format!("{}", 1_000 + n),
            currency: "",
            minor: 1_000 + n as u64,
        });
        rows.push(Row {
            id: format!("a-{n}"),
            channel: "alipay",
            pg_cno: sb.payment("alipay", 5_000, "USD"),
            amount_text: format!("{}.{:02}", 10 + n / 100, n % 100),
            currency: "USD",
            minor: (10 + n as u64 / 100) * 100 + n as u64 % 100,
        });
        rows.push(Row {
            id: format!("w-{n}"),
            channel: "wechat",
            pg_cno: sb.payment("wechat", 2_000, "KRW"),
            amount_text: String::new(),
            currency: "",
            minor: 2_000,
        });
    }
    rows
}

fn inject_faults(sb: &Served) {
    let faults = [
        ("/api/trades/revise", "timeout", true),
        ("/api/trades/revise", "timeout", false),
        ("/api/trades/revise", "http500", true),
        ("/api/trades/revise", "drop", false),
        ("/api/trades/alipay/revise", "timeout", true),
        ("/api/trades/alipay/revise", "drop", true),
        ("/api/trades/alipay/revise", "http500", false),
        ("/api/trades/wechatpay/revise", "timeout", true),
        ("/api/trades/wechatpay/revise", "drop", false),
    ];
    for (path, kind, apply) in faults {
        sb.fault(serde_json::json!({"path": path, "kind": kind, "times": 3, "apply": apply}));
    }
    sb.fault(serde_json::json!({"path": "/api/trades/alipay/revise", "kind": "resCd", "resCd": "A212", "times": 3}));
    sb.fault(serde_json::json!({"path": "/api/trades/revise", "kind": "resCd", "resCd": "VTIM", "times": 2, "apply": true}));
}

fn check_exactly_once(sb: &Served, rows: &[Row], report_path: &Path) {
    let mut expected: HashMap<&str, Vec<u64>> = HashMap::new();
    for r in rows {
        expected.entry(&r.pg_cno).or_default().push(r.minor);
    }
    for (pg_cno, want) in expected {
        let mut got = applied(sb, pg_cno);
        got.sort_unstable();
        let mut want = want;
        want.sort_unstable();
        assert_eq!(got, want, "payment {pg_cno}: {}", sb.state(pg_cno));
    }
    let report = report(report_path);
    assert_eq!(report.len(), rows.len());
    for r in rows {
        assert_eq!(report[&r.id][1], "succeeded", "{:?}", report[&r.id]);
    }
}

/// Reruns the batch until it ends with every row succeeded (exit 0), at most `limit` times.
fn run_until_done(sb: &Served, csv: &str, ledger: &str, rep: &str, limit: usize) {
    for attempt in 0..limit {
        let r = run(kicc().args(batch_args(
            sb,
            csv,
            ledger,
            &["--report", rep, "--concurrency", "16"],
        )));
        if r.code == 0 {
            return;
        }
        assert!(
            [3, 4].contains(&r.code),
            "run {attempt} ended with {}: {r:#?}",
            r.code
        );
    }
    panic!("the batch did not finish in {limit} runs");
}

#[test]
fn sigkilled_batches_resume_and_cancel_each_intent_exactly_once() {
    let sb = Served::start(
        &[
            "--webhook-delay-ms",
            "100",
            "--webhook-retry-interval-ms",
            "100",
            "--timeout-fault-delay-ms",
            "1500",
            "--processing-bound-ms",
            "1800",
        ],
        &[],
    );
    let dir = temp_dir("batch-crash");
    let rows = crash_rows(&sb, 80);
    let csv = dir.join("b.csv");
    write_csv(&csv, &rows);
    inject_faults(&sb);
    let ledger = format!("sqlite:{}", dir.join("l.db").display());
    let csv_s = csv.to_str().unwrap().to_owned();
    let rep = dir.join("report.csv");
    let rep_s = rep.to_str().unwrap().to_owned();

    let mut random = Random::new();
    let mut killed = 0;
    for _ in 0..4 {
        let mut child = spawn_batch(&sb, &csv_s, &ledger, &["--concurrency", "16"]);
        let started = Instant::now();
        let kill_after = Duration::from_millis(200 + random.below(1_200));
        // Kill it at a random moment (or let it end first).
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if started.elapsed() >= kill_after {
                child.kill().unwrap(); // SIGKILL on unix
                killed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.wait();
    }
    // The runs above were cut short: the first alone cannot finish 240 cancels with
    // second-long faults within its random 0.2 - 1.4 s.
    assert!(killed >= 1, "no run was killed");
    run_until_done(&sb, &csv_s, &ledger, &rep_s, 6);
    check_exactly_once(&sb, &rows, &rep);

    // Nothing left to recover.
    let r = run(kicc().args([
        "ledger",
        "recover",
        "--ledger",
        &ledger,
        "--base-url",
        &sb.base_url,
    ]));
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(summary(&r)["total"], 0, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_ledger_never_send_the_same_intent() {
    let Some((target, password)) = pg::database("cli_two_batches").await else {
        return;
    };
    let ledger = format!(
        "postgres://{}@{}:{}/{}",
        target.user, target.host, target.port, target.dbname
    );
    let pgpassword = password.as_ref().map(|p| p.expose().to_owned());
    tokio::task::spawn_blocking(move || {
        let sb = Served::start(
            &[
                "--webhook-delay-ms",
                "100",
                "--webhook-retry-interval-ms",
                "100",
                "--timeout-fault-delay-ms",
                "1500",
                "--processing-bound-ms",
                "1800",
            ],
            &[],
        );
        let dir = temp_dir("batch-pg");
        let rows = crash_rows(&sb, 40);
        let csv = dir.join("b.csv");
        write_csv(&csv, &rows);
        inject_faults(&sb);
        let csv_s = csv.to_str().unwrap().to_owned();
        let with_password = |mut c: std::process::Command| {
            if let Some(p) = &pgpassword {
                c.env("PGPASSWORD", p);
            }
            c
        };
        let spawn = || {
            with_password(kicc())
                .args(batch_args(&sb, &csv_s, &ledger, &["--concurrency", "8"]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            let code = out.status.code().unwrap_or(-1);
            assert!(
                [0, 3, 4].contains(&code),
                "exit {code}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let rep = dir.join("report.csv");
        let rep_s = rep.to_str().unwrap().to_owned();
        for _ in 0..6 {
            let r = run(with_password(kicc()).args(batch_args(
                &sb,
                &csv_s,
                &ledger,
                &["--report", &rep_s],
            )));
            if r.code == 0 {
                break;
            }
            assert!([3, 4].contains(&r.code), "{r:#?}");
        }
        check_exactly_once(&sb, &rows, &rep);

        // Every request the sandbox saw for a payment carries a key the ledger journaled
        // for one intent on it, and no key was journaled for two intents.
        let r = run(with_password(kicc()).args(["ledger", "list", "--ledger", &ledger]));
        assert_eq!(r.code, 0, "{r:#?}");
        let listed: Vec<Value> = r
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(listed.len(), rows.len());
        for row in rows.iter().filter(|r| r.channel != "generic") {
            let state = sb.state(&row.pg_cno);
            let keys: std::collections::HashSet<&str> = state["cancels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["shopTransactionId"].as_str().unwrap())
                .collect();
            assert_eq!(keys.len(), 1, "one message per wallet intent: {state}");
        }
    })
    .await
    .unwrap();
}

#[test]
fn sigterm_stops_taking_rows_records_the_ones_in_flight_and_a_rerun_finishes() {
    // WeChat Pay cancels become final 2 s after acceptance: a run is still busy when stopped.
    let sb = Served::start(
        &[
            "--webhook-delay-ms",
            "2000",
            "--webhook-retry-interval-ms",
            "100",
        ],
        &[],
    );
    let dir = temp_dir("batch-term");
    let rows: Vec<Row> = (0..24)
        .map(|n| Row {
            id: format!("w-{n}"),
            channel: "wechat",
            pg_cno: sb.payment("wechat", 1_000 + n, "KRW"),
            amount_text: String::new(),
            currency: "",
            minor: 1_000 + n,
        })
        .collect();
    let csv = dir.join("b.csv");
    write_csv(&csv, &rows);
    let ledger = format!("sqlite:{}", dir.join("l.db").display());
    let csv_s = csv.to_str().unwrap().to_owned();
    let child = kicc()
        .args(batch_args(&sb, &csv_s, &ledger, &["--concurrency", "2"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The event: the first cancel reached the sandbox.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows.iter().all(|r| {
        sb.state(&r.pg_cno)["cancels"]
            .as_array()
            .unwrap()
            .is_empty()
    }) {
        assert!(Instant::now() < deadline, "no cancel reached the sandbox");
        std::thread::sleep(Duration::from_millis(20));
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    let s = summary(&r);
    assert_eq!(s["total"], 24, "{r:#?}");
    assert_eq!(
        s["in_flight"], 0,
        "every row in flight was finished or recorded: {r:#?}"
    );
    assert!(
        s["planned"].as_u64().unwrap() > 0,
        "it stopped taking rows: {r:#?}"
    );
    assert!([1, 3, 4].contains(&r.code), "{r:#?}");

    let rep = dir.join("report.csv");
    let rep_s = rep.to_str().unwrap().to_owned();
    run_until_done(&sb, &csv_s, &ledger, &rep_s, 3);
    check_exactly_once(&sb, &rows, &rep);
}
