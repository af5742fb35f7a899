//! Audit of issue 10's CLI contract for `kicc batch run`, `kicc ledger list|recover` and
//! `kicc cancel ... --intent-id`, item by item, as real processes against `kicc sandbox
//! serve`: the file format (BOM, optional columns, major units, empty amount, repeated ids),
//! the exit codes 1/2/3/4/5, the exact summary line, the report header, `ledger list`'s
//! fields, `ledger recover`, conflicts, passwords in ledger URLs, the default ledger, and the
//! plain progress lines on a non-terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::path::Path;

use common::{kicc, run, temp_dir, Run, Served};
use serde_json::Value;

const SUMMARY_KEYS: [&str; 8] = [
    "total",
    "succeeded",
    "declined",
    "not_processed",
    "unknown",
    "pending",
    "in_flight",
    "planned",
];

const REPORT_HEADER: &str =
    "intent_id,state,channel,pg_cno,amount,currency,shop_transaction_id,cancel_pg_cno,res_cd,detail";

fn sqlite(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("l.db").display())
}

/// `kicc batch run CSV --ledger LEDGER --base-url SANDBOX` with short timings, plus `extra`.
fn batch(sb: &Served, csv: &Path, ledger: &str, extra: &[&str]) -> Run {
    run(kicc()
        .args(["batch", "run", csv.to_str().unwrap(), "--ledger", ledger])
        .args(["--base-url", &sb.base_url, "--timeout", "1"])
        .args(["--processing-bound", "1", "--wait", "20"])
        .args(extra))
}

/// The summary line: the last stdout line, exactly
/// `{"total":..,"succeeded":..,"declined":..,"not_processed":..,"unknown":..,"pending":..,"in_flight":..,"planned":..}`
/// (these keys, this order, integers); returned as JSON.
fn summary(r: &Run) -> Value {
    let last = r.stdout.lines().last().unwrap_or_else(|| panic!("{r:#?}"));
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
    let expected = format!(
        "{{{}}}",
        SUMMARY_KEYS
            .iter()
            .map(|k| format!(
                "\"{k}\":{}",
                v[k].as_u64()
                    .unwrap_or_else(|| panic!("{k} is not a count: {r:#?}"))
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(last, expected, "the summary line's keys and order");
    v
}

/// The report's rows by intent id (columns up to `res_cd`; the detail may hold commas),
/// after checking its exact header.
fn report(path: &Path) -> std::collections::HashMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), REPORT_HEADER);
    lines
        .map(|l| {
            let cols: Vec<String> = l.splitn(10, ',').map(str::to_owned).collect();
            (cols[0].clone(), cols)
        })
        .collect()
}

/// Every cancel the sandbox applied on `pg_cno`: (amount, reviseTypeCode, shopTransactionId).
fn applied(sb: &Served, pg_cno: &str) -> Vec<(u64, String, String)> {
    sb.state(pg_cno)["cancels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "applied")
        .map(|c| {
            (
                c["amount"].as_u64().unwrap(),
                c["reviseTypeCode"].as_str().unwrap().to_owned(),
                c["shopTransactionId"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn cancels_seen(sb: &Served, pg_cno: &str) -> usize {
    sb.state(pg_cno)["cancels"].as_array().unwrap().len()
}

fn list(ledger: &str, state: Option<&str>) -> Vec<Value> {
    let mut args = vec!["ledger", "list", "--ledger", ledger];
    if let Some(s) = state {
        args.extend(["--state", s]);
    }
    let r = run(kicc().args(args));
    assert_eq!(r.code, 0, "{r:#?}");
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A UTF-8 file with a BOM, columns in another order than the contract lists them and the
/// optional ones present, is read: amounts in major units (12.03 USD is 1203 cents), an empty
/// amount a full cancel (code 40), `type` and `remain_amount` (the balance before this cancel,
/// by the sandbox's default convention) reach the gateway. A wrong `remain_amount` is
/// declined by the gateway (so the column is really sent): exit 1. The report has the exact
/// header and one row per intent; `ledger list` objects carry exactly the contract's fields.
#[test]
fn a_bom_file_with_every_column_reaches_the_wire_in_major_units() {
    let sb = Served::quick();
    let dir = temp_dir("contracts-columns");
    let card = sb.payment("card", 10_000, "KRW");
    let full = sb.payment("card", 7_000, "KRW");
    let wrong = sb.payment("card", 5_000, "KRW");
    let ali = sb.payment("alipay", 5_000, "USD");
    let csv = dir.join("b.csv");
    let mut text = vec![0xEF, 0xBB, 0xBF];
    text.extend_from_slice(
        format!(
            "reason,intent_id,pg_cno,channel,currency,amount,remain_amount,type,notify_url\n\
             first part,c-1,{card},generic,KRW,1000,10000,32,\n\
             second part,c-2,{card},generic,KRW,2000,9000,,\n\
             ,c-3,{full},generic,,,,,\n\
             ,c-4,{wrong},generic,KRW,1000,4000,,\n\
             usd,a-1,{ali},alipay,USD,12.03,,,\n"
        )
        .as_bytes(),
    );
    std::fs::write(&csv, text).unwrap();
    let ledger = sqlite(&dir);
    let rep = dir.join("report.csv");
    let r = batch(&sb, &csv, &ledger, &["--report", rep.to_str().unwrap()]);
    assert_eq!(
        r.code, 1,
        "one row declined, none unknown or pending: {r:#?}"
    );
    let s = summary(&r);
    assert_eq!(
        (s["total"].as_u64(), s["succeeded"].as_u64()),
        (Some(5), Some(4))
    );
    assert_eq!(s["declined"], 1, "{r:#?}");

    let card_cancels = applied(&sb, &card);
    assert_eq!(
        card_cancels
            .iter()
            .map(|(a, t, _)| (*a, t.as_str()))
            .collect::<Vec<_>>(),
        vec![(1_000, "32"), (2_000, "32")]
    );
    assert_eq!(
        applied(&sb, &full)[0].0,
        7_000,
        "empty amount = full cancel"
    );
    assert_eq!(applied(&sb, &full)[0].1, "40");
    assert!(
        applied(&sb, &wrong).is_empty(),
        "a wrong remain_amount was not checked"
    );
    assert_eq!(applied(&sb, &ali)[0].0, 1_203, "12.03 USD is 1203 cents");

    let rows = report(&rep);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows["c-4"][1], "declined");
    assert_eq!(rows["c-4"][8], "P004", "{:?}", rows["c-4"]);
    assert_eq!(
        rows["a-1"][1..6],
        ["succeeded", "alipay", &ali, "12.03", "USD"]
    );
    assert_eq!(
        rows["c-1"][6], card_cancels[0].2,
        "the key that was applied"
    );

    let listed = list(&ledger, None);
    assert_eq!(listed.len(), 5);
    let fields: std::collections::BTreeSet<&str> = [
        "intent_id",
        "state",
        "channel",
        "pg_cno",
        "amount",
        "currency",
        "shop_transaction_id",
        "cancel_pg_cno",
        "res_cd",
        "attempts",
    ]
    .into_iter()
    .collect();
    for v in &listed {
        let keys: std::collections::BTreeSet<&str> =
            v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, fields, "{v}");
    }
    let a1 = listed.iter().find(|v| v["intent_id"] == "a-1").unwrap();
    assert_eq!(a1["state"], "succeeded");
    assert_eq!(a1["attempts"], 1);
    assert_eq!(a1["res_cd"], "0000");
    assert_eq!(a1["shop_transaction_id"], rows["a-1"][6].as_str());
    assert_eq!(a1["cancel_pg_cno"], rows["a-1"][7].as_str());
    let declined = list(&ledger, Some("declined"));
    assert_eq!(declined.len(), 1);
    assert_eq!(declined[0]["intent_id"], "c-4");
}

/// The same `intent_id` twice in one file is a bad row (even with identical parameters):
/// exit 2, stderr's first line exactly `error: N invalid rows`, then one line per bad row
/// with its line number; nothing is sent and nothing is stored.
#[test]
fn a_repeated_intent_id_in_one_file_is_a_bad_row_and_nothing_is_sent() {
    let sb = Served::quick();
    let dir = temp_dir("contracts-repeat");
    let card = sb.payment("card", 10_000, "KRW");
    let other = sb.payment("card", 10_000, "KRW");
    let csv = dir.join("b.csv");
    std::fs::write(
        &csv,
        format!(
            "intent_id,channel,pg_cno,amount,currency,reason\n\
             r-1,generic,{card},1000,,\n\
             r-2,generic,{other},1000,,\n\
             r-1,generic,{card},1000,,\n\
             r-3,generic,{other},12.5,KRW,\n"
        ),
    )
    .unwrap();
    let ledger = sqlite(&dir);
    let r = batch(&sb, &csv, &ledger, &[]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert_eq!(r.stdout, "", "{r:#?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{r:#?}");
    assert_eq!(lines[0], "error: 2 invalid rows");
    assert!(
        lines[1].starts_with("line 4: ") && lines[1].contains("r-1"),
        "{r:#?}"
    );
    assert!(lines[2].starts_with("line 5: "), "{r:#?}");
    assert_eq!(cancels_seen(&sb, &card) + cancels_seen(&sb, &other), 0);
    assert!(
        list(&ledger, None).is_empty(),
        "a refused file stored intents"
    );
}

/// A WeChat Pay row still waiting for its final result when `--wait` ends is pending: exit 4
/// and `pending` in the summary and the report. `ledger recover` with no time to wait leaves
/// it pending (exit 4) and never sends the cancel again.
#[test]
fn a_pending_wechat_row_exits_4_and_recover_does_not_resend_it() {
    let sb = Served::start(&["--webhook-delay-ms", "600000"], &[]);
    let dir = temp_dir("contracts-pending");
    let pg = sb.payment("wechat", 3_000, "KRW");
    let csv = dir.join("b.csv");
    std::fs::write(
        &csv,
        format!("intent_id,channel,pg_cno,amount,currency,reason\nw-1,wechat,{pg},,,\n"),
    )
    .unwrap();
    let ledger = sqlite(&dir);
    let rep = dir.join("report.csv");
    let r = run(kicc()
        .args(["batch", "run", csv.to_str().unwrap(), "--ledger", &ledger])
        .args(["--base-url", &sb.base_url, "--wait", "0"])
        .args(["--report", rep.to_str().unwrap()]));
    assert_eq!(r.code, 4, "{r:#?}");
    let s = summary(&r);
    assert_eq!(
        (s["total"].as_u64(), s["pending"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(report(&rep)["w-1"][1], "pending");
    assert_eq!(cancels_seen(&sb, &pg), 1);

    let r = run(kicc()
        .args(["ledger", "recover", "--ledger", &ledger])
        .args(["--base-url", &sb.base_url, "--wait", "0"]));
    assert_eq!(r.code, 4, "{r:#?}");
    assert_eq!(summary(&r)["pending"], 1, "{r:#?}");
    assert_eq!(cancels_seen(&sb, &pg), 1, "a pending cancel was sent again");
    assert_eq!(list(&ledger, Some("pending")).len(), 1);
}

/// An Alipay row whose every attempt was lost is unknown: exit 3. `ledger recover` then
/// resends the journaled message identically (same key), which the gateway applies once:
/// exit 0, one cancel, and `ledger list` shows the attempts and that key.
#[test]
fn an_unknown_row_exits_3_and_recover_finishes_it_with_the_same_key() {
    let sb = Served::quick();
    let dir = temp_dir("contracts-unknown");
    let pg = sb.payment("alipay", 5_000, "USD");
    sb.fault(serde_json::json!({
        "path": "/api/trades/alipay/revise", "kind": "drop", "times": 2
    }));
    let csv = dir.join("b.csv");
    std::fs::write(
        &csv,
        format!("intent_id,channel,pg_cno,amount,currency,reason\nu-1,alipay,{pg},1.00,USD,\n"),
    )
    .unwrap();
    let ledger = sqlite(&dir);
    let r = batch(&sb, &csv, &ledger, &["--max-attempts", "2"]);
    assert_eq!(r.code, 3, "{r:#?}");
    assert_eq!(summary(&r)["unknown"], 1, "{r:#?}");
    let before = list(&ledger, Some("unknown"));
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["attempts"], 2);
    let key = before[0]["shop_transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = run(kicc()
        .args(["ledger", "recover", "--ledger", &ledger])
        .args(["--base-url", &sb.base_url, "--timeout", "1"]));
    assert_eq!(r.code, 0, "{r:#?}");
    let s = summary(&r);
    assert_eq!(
        (s["total"].as_u64(), s["succeeded"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(applied(&sb, &pg), vec![(100, "32".to_owned(), key.clone())]);
    let after = list(&ledger, None);
    assert_eq!(after[0]["state"], "succeeded");
    assert_eq!(after[0]["attempts"], 3);
    assert_eq!(after[0]["shop_transaction_id"], key.as_str());
    // Nothing left to recover: an empty summary, exit 0, nothing sent.
    let r = run(kicc()
        .args(["ledger", "recover", "--ledger", &ledger])
        .args(["--base-url", &sb.base_url]));
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(summary(&r)["total"], 0, "{r:#?}");
    assert_eq!(applied(&sb, &pg).len(), 1);
}

/// A ledger that cannot be opened is a local failure (exit 5, one line) for every ledger
/// command; a password in a PostgreSQL URL is invalid input (exit 2) for every one of them and
/// is never repeated; without `--ledger` the ledger is `sqlite:kicc-ledger.db` in the current
/// directory.
#[test]
fn ledger_urls_local_failures_passwords_and_the_default() {
    let sb = Served::quick();
    let dir = temp_dir("contracts-urls");
    let csv = dir.join("b.csv");
    let pg = sb.payment("card", 1_000, "KRW");
    std::fs::write(
        &csv,
        format!("intent_id,channel,pg_cno,amount,currency,reason\nl-1,generic,{pg},,,\n"),
    )
    .unwrap();
    let csv_s = csv.to_str().unwrap().to_owned();
    let commands = |ledger: &str| -> Vec<Vec<String>> {
        let l = ledger.to_owned();
        vec![
            vec!["batch", "run", &csv_s, "--ledger", &l],
            vec!["ledger", "list", "--ledger", &l],
            vec!["ledger", "recover", "--ledger", &l],
            vec![
                "cancel",
                "generic",
                "--pg-cno",
                &pg,
                "--intent-id",
                "l-2",
                "--ledger",
                &l,
            ],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(str::to_owned).collect())
        .collect()
    };
    let unopenable = format!("sqlite:{}", dir.join("missing").join("l.db").display());
    for args in commands(&unopenable) {
        let r = run(kicc().args(&args).args(["--base-url", &sb.base_url]));
        assert_eq!(r.code, 5, "{args:?}: {r:#?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {r:#?}");
        assert!(r.stderr.starts_with("error: "), "{args:?}: {r:#?}");
    }
    for args in commands("postgres://kicc:hunter2@127.0.0.1:1/ledger") {
        let r = run(kicc().args(&args).args(["--base-url", &sb.base_url]));
        r.assert_invalid(&["password"]);
        assert!(!r.stderr.contains("hunter2"), "{args:?}: {r:#?}");
    }
    assert_eq!(cancels_seen(&sb, &pg), 0);

    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let r =
        run(kicc()
            .current_dir(&cwd)
            .args(["batch", "run", &csv_s, "--base-url", &sb.base_url]));
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(cwd.join("kicc-ledger.db").is_file(), "the default ledger");
    let r = run(kicc().current_dir(&cwd).args(["ledger", "list"]));
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("\"l-1\""), "{r:#?}");
}

/// `kicc cancel ... --intent-id` checks "same id, other parameters" before "already final":
/// a final intent asked again with another amount or remain amount is a typed conflict
/// (exit 2, one line naming the field), nothing is sent; asked again identically it prints
/// the stored outcome (exit 0) and sends nothing.
#[test]
fn a_journaled_cancel_conflicts_before_it_is_already_final() {
    let sb = Served::quick();
    let dir = temp_dir("contracts-conflict");
    let ledger = sqlite(&dir);
    let pg = sb.payment("card", 10_000, "KRW");
    let cancel = |amount: &str, remain: Option<&str>| {
        let mut args = vec![
            "cancel",
            "generic",
            "--pg-cno",
            &pg,
            "--amount",
            amount,
            "--intent-id",
            "k-1",
            "--ledger",
            &ledger,
        ];
        if let Some(r) = remain {
            args.extend(["--remain-amount", r]);
        }
        sb.kicc(&args)
    };
    let first = cancel("1000", Some("10000"));
    assert_eq!(first.code, 0, "{first:#?}");
    assert_eq!(first.json()["state"], "succeeded");
    let r = cancel("1500", Some("10000"));
    r.assert_invalid(&["k-1", "amount"]);
    let r = cancel("1000", None);
    r.assert_invalid(&["k-1", "remain_amount"]);
    let again = cancel("1000", Some("10000"));
    assert_eq!(again.code, 0, "{again:#?}");
    assert_eq!(again.json(), first.json());
    assert_eq!(applied(&sb, &pg).len(), 1);
}

/// On a non-terminal, progress is a plain line every few seconds (rows done / total, rate,
/// ETA, counts by outcome), without terminal control characters; stdout holds only the
/// summary. The run lasts at least 6 s (the sandbox makes the WeChat Pay cancel final then),
/// longer than the few seconds between lines.
#[test]
fn progress_on_a_non_terminal_is_plain_lines() {
    let sb = Served::start(
        &[
            "--webhook-delay-ms",
            "6000",
            "--webhook-retry-interval-ms",
            "100",
        ],
        &[],
    );
    let dir = temp_dir("contracts-progress");
    let pg = sb.payment("wechat", 3_000, "KRW");
    let csv = dir.join("b.csv");
    std::fs::write(
        &csv,
        format!("intent_id,channel,pg_cno,amount,currency,reason\np-1,wechat,{pg},,,\n"),
    )
    .unwrap();
    let r = batch(&sb, &csv, &sqlite(&dir), &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout.lines().count(), 1, "{r:#?}");
    summary(&r);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(!lines.is_empty(), "no progress line in a 6 s run: {r:#?}");
    for l in &lines {
        assert!(!l.contains('\r') && !l.contains('\x1b'), "{l:?}");
        assert!(
            l.starts_with("0/1 rows, ") || l.starts_with("1/1 rows, "),
            "{l:?}"
        );
        for part in [
            "/s, ETA ",
            " succeeded, ",
            " declined, ",
            " not processed, ",
        ] {
            assert!(l.contains(part), "{l:?} lacks {part:?}");
        }
        assert!(l.contains(" unknown, ") && l.ends_with(" pending"), "{l:?}");
    }
}

/// With `--rate`, Ctrl-C (here SIGTERM) must stop taking new rows: once the first cancel
/// reached the sandbox and the signal is sent, at most the few intents already leased may
/// still be sent (at 1 row per second, two at most by then; four allowed). A worker waiting
/// for its `--rate` slot wakes at the stop and leases nothing (it used to lease and send a
/// row after the wait: 18 of 20 rows sent, 15 s after SIGTERM, with --rate 1
/// --concurrency 16).
#[test]
fn a_stop_during_rate_limiting_takes_no_new_rows() {
    let sb = Served::quick();
    let dir = temp_dir("contracts-rate-stop");
    let pgs: Vec<String> = (0..20).map(|_| sb.payment("card", 1_000, "KRW")).collect();
    let csv = dir.join("b.csv");
    let mut text = String::from("intent_id,channel,pg_cno,amount,currency,reason\n");
    for (n, pg) in pgs.iter().enumerate() {
        text.push_str(&format!("s-{n},generic,{pg},,,\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let child = kicc()
        .args([
            "batch",
            "run",
            csv.to_str().unwrap(),
            "--ledger",
            &sqlite(&dir),
        ])
        .args([
            "--base-url",
            &sb.base_url,
            "--rate",
            "1",
            "--concurrency",
            "16",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The event: the first cancel reached the sandbox.
    while pgs.iter().all(|pg| cancels_seen(&sb, pg) == 0) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    let sent: usize = pgs.iter().map(|pg| cancels_seen(&sb, pg)).sum();
    assert!(
        sent <= 4,
        "{sent} rows were sent after a stop at the first one: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A `--report` path that cannot be written is found out before anything is sent (it used
/// to be found after the whole batch ran, losing the summary): exit 5, one line, nothing on
/// stdout, nothing sent or stored.
#[test]
fn an_unwritable_report_is_refused_before_anything_is_sent() {
    let sb = Served::quick();
    let dir = temp_dir("contracts-report");
    let pg = sb.payment("card", 1_000, "KRW");
    let csv = dir.join("b.csv");
    std::fs::write(
        &csv,
        format!("intent_id,channel,pg_cno,amount,currency,reason\nrp-1,generic,{pg},,,\n"),
    )
    .unwrap();
    let ledger = sqlite(&dir);
    let report = dir.join("missing").join("report.csv");
    let r = batch(&sb, &csv, &ledger, &["--report", report.to_str().unwrap()]);
    assert_eq!(r.code, 5, "{r:#?}");
    assert_eq!(r.stdout, "", "{r:#?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
    assert!(
        r.stderr.contains("report.csv") && r.stderr.contains("nothing was sent"),
        "{r:#?}"
    );
    assert_eq!(
        cancels_seen(&sb, &pg),
        0,
        "a row was sent before the report failed"
    );
    assert!(list(&ledger, None).is_empty());
}

/// An Alipay row left unknown before Korea midnight is finished after it by resending the
/// journaled message identically: the same key AND the same `cancelReqDate` (the first
/// attempt's date, not the new day's), applied once.
#[test]
fn recovery_after_korea_midnight_resends_the_first_days_message() {
    let sb = Served::quick();
    let dir = temp_dir("contracts-midnight");
    let pg = sb.payment("alipay", 5_000, "USD");
    sb.fault(serde_json::json!({
        "path": "/api/trades/alipay/revise", "kind": "drop", "times": 2
    }));
    let csv = dir.join("b.csv");
    std::fs::write(
        &csv,
        format!("intent_id,channel,pg_cno,amount,currency,reason\nm-1,alipay,{pg},2.50,USD,\n"),
    )
    .unwrap();
    let ledger = sqlite(&dir);
    let first_day = sb.korea_date();
    let r = batch(&sb, &csv, &ledger, &["--max-attempts", "2"]);
    assert_eq!(r.code, 3, "{r:#?}");
    let key = list(&ledger, None)[0]["shop_transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The next Korea day, by the gateway's clock.
    sb.set_clock(24 * 60 * 60);
    assert_ne!(sb.korea_date(), first_day);
    let r = run(kicc()
        .args(["ledger", "recover", "--ledger", &ledger])
        .args(["--base-url", &sb.base_url, "--timeout", "1"]));
    assert_eq!(r.code, 0, "{r:#?}");
    let cancels = sb.state(&pg)["cancels"].as_array().unwrap().clone();
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    assert_eq!(cancels[0]["outcome"], "applied");
    assert_eq!(cancels[0]["amount"], 250);
    assert_eq!(cancels[0]["shopTransactionId"], key.as_str());
    assert_eq!(cancels[0]["cancelReqDate"], first_day.as_str());
}

/// Two `kicc batch run` processes on one SQLite ledger and one file at the same time (several
/// processes on one host): every row is cancelled exactly once, by one of them, and both end
/// with every row final.
#[test]
fn two_processes_on_one_sqlite_ledger_never_send_the_same_row() {
    let sb = Served::start(&["--latency-ms", "5"], &[]);
    let dir = temp_dir("contracts-two-sqlite");
    let pgs: Vec<String> = (0..40)
        .map(|n| sb.payment("card", 1_000 + n, "KRW"))
        .collect();
    let csv = dir.join("b.csv");
    let mut text = String::from("intent_id,channel,pg_cno,amount,currency,reason\n");
    for (n, pg) in pgs.iter().enumerate() {
        text.push_str(&format!("t-{n},generic,{pg},,,\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let ledger = sqlite(&dir);
    let spawn = || {
        kicc()
            .args(["batch", "run", csv.to_str().unwrap(), "--ledger", &ledger])
            .args(["--base-url", &sb.base_url, "--concurrency", "4"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let r = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        // A process may end while the other still holds rows (in flight, then exit 3).
        assert!([0, 3].contains(&r.code), "{r:#?}");
        assert_eq!(summary(&r)["total"], 40, "{r:#?}");
    }
    for (n, pg) in pgs.iter().enumerate() {
        let cancels = applied(&sb, pg);
        assert_eq!(cancels.len(), 1, "row t-{n}: {cancels:?}");
        assert_eq!(cancels[0].0, 1_000 + n as u64);
    }
    let listed = list(&ledger, None);
    assert_eq!(listed.len(), 40);
    assert!(
        listed.iter().all(|v| v["state"] == "succeeded"),
        "{listed:?}"
    );
}

/// Issue 10's own example, `kicc sandbox serve --latency-ms 20`, starts: without
/// `--timeout-fault-delay-ms` the stall of a `timeout` fault is what the processing bound
/// leaves after the latency (it used to stay 30 s and make the example an invalid setting).
#[test]
fn sandbox_serve_with_latency_alone_starts() {
    let s = Served::start(&["--latency-ms", "20"], &[]);
    let (status, v) = common::http(&s.base_url, "GET", "/sandbox/settings", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["latencyMs"], 20, "{v}");
    assert_eq!(v["processingBoundMs"], 30_000, "{v}");
    assert_eq!(v["timeoutFaultDelayMs"], 29_980, "{v}");
    // An explicit delay is kept, and still checked against the bound.
    let r = run(kicc()
        .args(["sandbox", "serve", "--addr", "127.0.0.1:0"])
        .args(["--latency-ms", "20", "--timeout-fault-delay-ms", "30000"]));
    r.assert_invalid(&["latency", "processing_bound"]);
}

/// `remain_amount` is the balance before the cancel, "sent by the configured convention":
/// `--remain-amount-convention balanceAfter` (batch run, ledger recover, cancel) sends the
/// balance left after the cancel. Against a gateway that checks the balance after, a file
/// run without it is declined (P004) and one run with it succeeds; `kicc cancel` sends the
/// same value, and refuses the option on a wallet channel.
#[test]
fn remain_amount_is_sent_by_the_configured_convention() {
    let sb = Served::start(&["--remain-amount-convention", "balanceAfter"], &[]);
    let dir = temp_dir("contracts-convention");
    let before = sb.payment("card", 10_000, "KRW");
    let after = sb.payment("card", 10_000, "KRW");
    let write = |name: &str, pg: &str| {
        let csv = dir.join(name);
        std::fs::write(
            &csv,
            format!(
                "intent_id,channel,pg_cno,amount,currency,reason,remain_amount\n\
                 {name},generic,{pg},1000,KRW,,10000\n"
            ),
        )
        .unwrap();
        csv
    };
    let r = batch(&sb, &write("b-before", &before), &sqlite(&dir), &[]);
    assert_eq!(r.code, 1, "the default sends the balance before: {r:#?}");
    assert!(applied(&sb, &before).is_empty());
    let r = batch(
        &sb,
        &write("b-after", &after),
        &sqlite(&dir),
        &["--remain-amount-convention", "balanceAfter"],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(applied(&sb, &after).len(), 1);

    let dry = |extra: &[&str]| {
        let mut args = vec![
            "cancel",
            "generic",
            "--pg-cno",
            "P1",
            "--amount",
            "1000",
            "--remain-amount",
            "10000",
            "--dry-run",
        ];
        args.extend_from_slice(extra);
        let body = run(kicc().args(args)).json()["body"]
            .as_str()
            .unwrap()
            .to_owned();
        serde_json::from_str::<Value>(&body).unwrap()["remainAmount"].clone()
    };
    assert_eq!(dry(&[]), 10_000);
    assert_eq!(dry(&["--remain-amount-convention", "balanceAfter"]), 9_000);
    for extra in [
        &[][..],
        &["--intent-id", "w-1", "--ledger", &sqlite(&dir)][..],
    ] {
        let r = run(kicc()
            .args(["cancel", "alipay", "--pg-cno", "P1"])
            .args(["--remain-amount-convention", "balanceAfter"])
            .args(extra));
        r.assert_invalid(&["remain-amount-convention", "generic"]);
    }
}

/// A wallet row whose every connection is refused was certainly not processed: the state is
/// `not_processed` (final: a rerun sends nothing), and the exit code is 1.
#[test]
fn a_refused_wallet_row_is_not_processed_and_final() {
    let dir = temp_dir("contracts-refused");
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let csv = dir.join("b.csv");
    std::fs::write(
        &csv,
        "intent_id,channel,pg_cno,amount,currency,reason\nnp-1,alipay,P1,1.00,USD,\n",
    )
    .unwrap();
    let ledger = sqlite(&dir);
    let rep = dir.join("report.csv");
    for _ in 0..2 {
        let r = run(kicc()
            .args(["batch", "run", csv.to_str().unwrap(), "--ledger", &ledger])
            .args(["--base-url", &base, "--max-attempts", "2"])
            .args(["--report", rep.to_str().unwrap()]));
        assert_eq!(r.code, 1, "{r:#?}");
        assert_eq!(summary(&r)["not_processed"], 1, "{r:#?}");
        let row = &report(&rep)["np-1"];
        assert_eq!(row[1], "not_processed", "{row:?}");
        assert!(row[9].contains("refused"), "{row:?}");
    }
    let listed = list(&ledger, None);
    assert_eq!(
        listed[0]["attempts"], 2,
        "a final row was sent again: {listed:?}"
    );
}

/// A generic row whose every connection is refused: kicc-core resends the undelivered
/// request with the same key (the gateway never saw it) and the ledger journals each
/// attempt; the row ends `not_processed` (final: a rerun sends nothing), exit 1. It used to
/// stop the batch with exit 5, the row left in flight, because the ledger refused the
/// reused key.
#[test]
fn a_refused_generic_row_is_not_processed_and_final() {
    let dir = temp_dir("contracts-refused-generic");
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let csv = dir.join("b.csv");
    std::fs::write(
        &csv,
        "intent_id,channel,pg_cno,amount,currency,reason\nng-1,generic,P1,,,\n",
    )
    .unwrap();
    let ledger = sqlite(&dir);
    let rep = dir.join("report.csv");
    for _ in 0..2 {
        let r = run(kicc()
            .args(["batch", "run", csv.to_str().unwrap(), "--ledger", &ledger])
            .args(["--base-url", &base, "--max-attempts", "2"])
            .args(["--report", rep.to_str().unwrap()]));
        assert_eq!(r.code, 1, "{r:#?}");
        assert_eq!(summary(&r)["not_processed"], 1, "{r:#?}");
        assert_eq!(summary(&r)["in_flight"], 0, "{r:#?}");
        let row = &report(&rep)["ng-1"];
        assert_eq!(row[1], "not_processed", "{row:?}");
        assert!(row[9].contains("refused"), "{row:?}");
    }
    let listed = list(&ledger, None);
    assert_eq!(
        listed[0]["attempts"], 2,
        "a final row was sent again: {listed:?}"
    );
}
