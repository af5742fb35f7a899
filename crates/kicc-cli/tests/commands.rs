//! Invalid input (exit 2, one stderr line, nothing on stdout), `sandbox serve`'s lifecycle, the
//! help text's exit codes, and `kicc demo`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::process::Command;
use std::time::Duration;

use common::{kicc_run, Served};

#[test]
fn invalid_input_is_one_line_naming_the_field_and_the_rule() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "cancel",
                "alipay",
                "--pg-cno",
                "P1",
                "--amount",
                "12.034",
                "--currency",
                "USD",
            ],
            &["amountInfo.totAmount", "2 decimal places"],
        ),
        (
            &["cancel", "generic", "--pg-cno", "P1", "--amount", "10.5"],
            &["amount", "whole won"],
        ),
        (
            &[
                "cancel",
                "generic",
                "--pg-cno",
                "P1",
                "--amount",
                "10",
                "--currency",
                "USD",
            ],
            &["currency", "KRW"],
        ),
        (
            &["cancel", "alipay", "--pg-cno", "P1", "--amount", "1"],
            &["currency", "required"],
        ),
        (
            &["cancel", "alipay", "--pg-cno", "P1", "--type", "33"],
            &["reviseTypeCode", "33"],
        ),
        (
            &["cancel", "wechat", "--pg-cno", "P1", "--type", "32"],
            &["32", "partial"],
        ),
        (
            &[
                "cancel",
                "generic",
                "--pg-cno",
                "P1",
                "--reason",
                "it's broken",
            ],
            &["reviseMessage", "forbidden character"],
        ),
        (
            &["cancel", "generic", "--pg-cno", "123456789012345678901"],
            &["pgCno", "20 bytes"],
        ),
        (
            &[
                "cancel",
                "alipay",
                "--pg-cno",
                "P1",
                "--notify-url",
                "https://a.example/n",
            ],
            &["notifyUrl", "wechat"],
        ),
        (
            &[
                "cancel",
                "wechat",
                "--pg-cno",
                "P1",
                "--notify-url",
                "ftp://x",
            ],
            &["notifyUrl"],
        ),
        (
            &["cancel", "generic", "--pg-cno", "P1", "--wait", "5"],
            &["wait", "WeChat"],
        ),
        (
            &[
                "cancel",
                "wechat",
                "--pg-cno",
                "P1",
                "--wait",
                "5",
                "--dry-run",
            ],
            &["wait", "dry-run"],
        ),
        (
            &[
                "cancel",
                "generic",
                "--pg-cno",
                "P1",
                "--base-url",
                "http://10.1.2.3",
            ],
            &["baseUrl", "loopback"],
        ),
        (
            &["status", "wechat", "--pg-cno", "P1", "--cancel-pg-cno", ""],
            &["cancelPgCno", "empty"],
        ),
        // Usage errors follow the same rule.
        (&["cancel", "generic"], &["--pg-cno"]),
        (&["cancel", "paypal", "--pg-cno", "P1"], &["paypal"]),
        (
            &["cancel", "wechat", "--pg-cno", "P1", "--wait", "soon"],
            &["--wait"],
        ),
        (
            &["cancel", "generic", "--pg-cno", "P1", "--env", "staging"],
            &["staging"],
        ),
        (
            &["sandbox", "serve", "--addr", "not-an-address"],
            &["--addr"],
        ),
        (
            &[
                "sandbox",
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--timeout-fault-delay-ms",
                "40000",
            ],
            &["timeout_fault_delay", "processing_bound"],
        ),
        (
            &[
                "sandbox",
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--processing-bound-ms",
                "1000",
                "--timeout-fault-delay-ms",
                "900",
                "--latency-ms",
                "200",
            ],
            &["latency", "processing_bound"],
        ),
        (
            &["sandbox", "serve", "--refund-query-match", "sometimes"],
            &["--refund-query-match"],
        ),
    ];
    for (args, needles) in cases {
        let r = kicc_run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:#?}");
        assert_eq!(r.stdout, "", "{args:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {r:#?}");
        for n in *needles {
            assert!(
                r.stderr.contains(n),
                "{args:?}: missing {n:?} in {:?}",
                r.stderr
            );
        }
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let r = kicc_run(&["--help"]);
    assert_eq!(r.code, 0);
    for needle in [
        "Exit codes",
        "3  outcome unknown",
        "4  still pending",
        "KICC_SECRET_KEY",
    ] {
        assert!(r.stdout.contains(needle), "{needle}: {}", r.stdout);
    }
    let r = kicc_run(&["cancel", "--help"]);
    assert!(r.stdout.contains("--wait <SECONDS>") && r.stdout.contains("Exit codes"));
    let r = kicc_run(&["sandbox", "serve", "--help"]);
    assert!(r.stdout.contains("sandbox-secret-key") && r.stdout.contains("--root-cert-out"));
}

#[test]
fn serve_stops_on_sigterm_and_port_conflicts_are_local_failures() {
    let mut s = Served::start(&[], &[]);
    assert!(
        s.base_url.starts_with("http://127.0.0.1:"),
        "{}",
        s.base_url
    );
    let port = s.base_url.rsplit(':').next().unwrap().to_owned();
    // The port is taken: a second sandbox cannot listen there (exit 5).
    let r = kicc_run(&["sandbox", "serve", "--addr", &format!("127.0.0.1:{port}")]);
    assert_eq!(r.code, 5, "{r:#?}");
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("cannot listen"), "{r:#?}");

    let killed = Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn serve_flags_set_the_sandbox_settings() {
    let s = Served::start(
        &[
            "--processing-bound-ms",
            "2000",
            "--timeout-fault-delay-ms",
            "1500",
            "--latency-ms",
            "5",
            "--remain-amount-convention",
            "balanceAfter",
            "--refund-query-match",
            "never",
        ],
        &[],
    );
    let (status, v) = common::http(&s.base_url, "GET", "/sandbox/settings", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        serde_json::json!({
            "remainAmountConvention": "balanceAfter",
            "refundQueryMatch": "never",
            "latencyMs": 5,
            "processingBoundMs": 2000,
            "timeoutFaultDelayMs": 1500,
        })
    );
}

#[test]
fn serve_with_tls_and_no_output_file_uses_a_temporary_one() {
    let mut s = Served::start(&["--tls"], &[]);
    let line = s.root_cert_line.clone().expect("a second line");
    let path = line
        .strip_prefix("root certificate: ")
        .expect("the path")
        .to_owned();
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .expect("kill runs");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        !std::path::Path::new(&path).exists(),
        "the temporary root is removed"
    );
}

#[test]
fn demo_walks_every_channel_and_passes() {
    let r = kicc_run(&["demo"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stderr, "");
    for needle in [
        "card: full cancel",
        "card: partial cancel",
        "declined",
        "Alipay: USD partial",
        "1203",
        "same key",
        "WeChat Pay",
        "webhook",
        "find TS02",
        "WeChat Pay Global revoke",
        "signature verified",
        "Error::Invalid",
        "All 8 steps behaved as expected",
    ] {
        assert!(
            r.stdout.contains(needle),
            "missing {needle:?}:\n{}",
            r.stdout
        );
    }
    assert!(!r.stdout.contains("FAILED"));
}
