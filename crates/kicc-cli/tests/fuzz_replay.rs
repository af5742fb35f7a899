//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) through the same
//! code the libFuzzer targets run (`fuzz/src/checks.rs`, included here), on stable and in
//! CI, so that an input that once crashed a parser stays fixed. This crate is the one that
//! already depends on every crate the targets reach.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

#[path = "../../../fuzz/src/checks.rs"]
// The checks assert with `expect` on purpose: a broken promise must be a crash.
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod checks;

use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus for {target} at {}: {e}", dir.display()));
    let mut files: Vec<_> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("a readable corpus file");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_corpus_file_replays_without_a_crash() {
    let mut total = 0;
    for target in checks::TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "the corpus of {target} is empty");
        for (path, bytes) in &files {
            // Printed before running, so a failure names the file that broke.
            eprintln!("{target}: {}", path.display());
            assert!(checks::run(target, bytes), "unknown target {target}");
        }
        total += files.len();
    }
    eprintln!("replayed {total} corpus files");
}

#[test]
fn every_target_has_a_libfuzzer_binary_and_a_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in checks::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target} is not a [[bin]] in fuzz/Cargo.toml"
        );
        let source = std::fs::read_to_string(fuzz.join(format!("fuzz_targets/{target}.rs")))
            .unwrap_or_else(|e| panic!("fuzz_targets/{target}.rs: {e}"));
        assert!(
            source.contains(&format!("checks::{target}(")),
            "{target}.rs runs another check"
        );
    }
    assert!(!checks::run("no_such_target", b""));
}

/// The seeds are real: the signed WeChat Pay answer in the corpus verifies (so fuzzing
/// starts past the signature check), and the structured framings read back what was
/// written.
#[test]
fn the_corpora_reach_past_the_first_checks() {
    let keys_now_revoked = corpus("wechatpay_revoke").iter().any(|(_, bytes)| {
        let Ok(input) = checks::RevokeInput::arbitrary_take_rest(Unstructured::new(bytes)) else {
            return false;
        };
        let mut headers = http::HeaderMap::new();
        for (name, value) in &input.headers {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name),
                http::HeaderValue::from_bytes(value),
            ) {
                headers.append(n, v);
            }
        }
        let keys = checks::verification_keys();
        let (Ok(status), Ok(now)) = (
            http::StatusCode::from_u16(input.status),
            wechatpay_direct::Timestamp::from_unix_secs(input.now),
        ) else {
            return false;
        };
        matches!(
            wechatpay_direct::interpret_reverse_response(status, &headers, &input.body, now, &keys),
            Ok(o) if o.is_revoked()
        )
    });
    assert!(
        keys_now_revoked,
        "no corpus file is a verifiable revoke answer"
    );

    // An order query answer that reads as a verified order, a certificates answer whose
    // certificate decrypts and verifies it on a first download (no key held), and a batch
    // file with rows: fuzzing these starts past signature, decryption and header checks.
    let keys = checks::verification_keys();
    let an_order = corpus("wechatpay_query").iter().any(|(_, bytes)| {
        checks::Answer::read(bytes).is_some_and(|a| {
            wechatpay_direct::interpret_query_response(a.status, &a.headers, &a.body, a.now, &keys)
                .is_ok()
        })
    });
    assert!(
        an_order,
        "no corpus file is a verifiable order-query answer"
    );
    let certificates = corpus("wechatpay_certificates")
        .iter()
        .filter_map(|(_, bytes)| {
            let a = checks::Answer::read(bytes)?;
            wechatpay_direct::interpret_certificates_response(
                a.status,
                &a.headers,
                &a.body,
                a.now,
                &checks::sandbox_api_v3_key(),
                &wechatpay_direct::VerificationKeys::new(),
            )
            .ok()
        })
        .map(|(certs, _)| certs.len())
        .max();
    assert!(
        certificates.is_some_and(|n| n >= 2),
        "no corpus file is a verifiable certificates answer listing a rotation: {certificates:?}"
    );
    let rows = corpus("batch_csv")
        .iter()
        .filter_map(|(_, bytes)| kicc_ledger::batch::read_batch(bytes).ok())
        .map(|rows| rows.len())
        .max();
    assert!(
        rows.is_some_and(|n| n >= 3),
        "no batch_csv corpus file has rows: {rows:?}"
    );

    let inbox = checks::InboxInput {
        wechat: true,
        policy: 2,
        allowed: vec![[127, 0, 0, 1].into(), "::1".parse().expect("an address")],
        deliveries: vec![
            (None, b"{}".to_vec()),
            (Some([10, 1, 2, 3].into()), vec![0xff; 300]),
        ],
    };
    assert_eq!(
        checks::InboxInput::arbitrary_take_rest(Unstructured::new(&inbox.to_bytes())).ok(),
        Some(inbox)
    );
    let revoke = checks::RevokeInput {
        status: 204,
        now: 1_795_273_200,
        headers: vec![(b"wechatpay-serial".to_vec(), b"5A4D".to_vec())],
        body: b"{}".to_vec(),
    };
    assert_eq!(
        checks::RevokeInput::arbitrary_take_rest(Unstructured::new(&revoke.to_bytes())).ok(),
        Some(revoke)
    );
    let auth = checks::AuthorizationInput {
        now: 7,
        header: "WECHATPAY2-SHA256-RSA2048 mchid=\"1\"".to_owned(),
        method: "POST".to_owned(),
        url: "/v3/x".to_owned(),
        body: b"{}".to_vec(),
    };
    assert_eq!(
        checks::AuthorizationInput::arbitrary_take_rest(Unstructured::new(&auth.to_bytes())).ok(),
        Some(auth)
    );
}
