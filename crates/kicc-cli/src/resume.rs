//! Finishing an unknown outcome safely: the resume command printed after exit 3, and reading
//! its `--resume-key KEY@YYYYMMDD` / `--lookup-after` options back.

use std::time::{Duration, SystemTime};

use kicc_core::retry::SentAttempt;
use kicc_core::{KoreaDate, KoreaDateTime, ShopTransactionId};

use crate::exit::Failure;

/// Options that describe one request's attempts: replaced, not repeated, in a resume command.
const ATTEMPT_OPTIONS: [&str; 6] = [
    "--resume-key",
    "--resume-refund-query-key",
    "--lookup-after",
    "--shop-transaction-id",
    "--cancel-req-date",
    "--refund-query",
];

/// Options without a value among [`ATTEMPT_OPTIONS`].
const FLAGS: [&str; 1] = ["--refund-query"];

/// Reads `--resume-key KEY@YYYYMMDD` values into attempts; with `lookup_after` (Korea time,
/// the earliest conclusive look-up) their send time is taken as that less `bound`.
pub fn attempts(
    keys: &[String],
    refund_query_keys: &[String],
    lookup_after: Option<&str>,
    bound: Duration,
) -> Result<Vec<SentAttempt>, Failure> {
    let sent_at = lookup_after
        .map(|t| {
            KoreaDateTime::parse("lookupAfter", t)
                .map(|t| t.to_system_time())
                .map(|t| t.checked_sub(bound).unwrap_or(t))
        })
        .transpose()?;
    let tagged = keys
        .iter()
        .map(|k| (k, false))
        .chain(refund_query_keys.iter().map(|k| (k, true)));
    tagged
        .map(|(k, refund_query)| {
            let (key, date) = k.rsplit_once('@').ok_or_else(|| {
                Failure::invalid(format!(
                    "resume-key: {k:?} must be KEY@YYYYMMDD (the key and the Korea date it was sent on)"
                ))
            })?;
            let mut sent = SentAttempt::new(
                ShopTransactionId::new(key)?,
                KoreaDate::parse("resumeKey", date)?,
            );
            sent.sent_at = sent_at;
            sent.refund_query = refund_query;
            Ok(sent)
        })
        .collect()
}

/// Quotes `arg` for a POSIX shell when it needs it.
fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if safe {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The command line of this process without the options that describe earlier attempts.
fn base_command(args: &[String]) -> Vec<String> {
    let mut out = vec!["kicc".to_owned()];
    let mut skip_value = false;
    for a in args.iter().skip(1) {
        if skip_value {
            skip_value = false;
            continue;
        }
        let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
        if ATTEMPT_OPTIONS.contains(&name) {
            skip_value = !a.contains('=') && !FLAGS.contains(&name);
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// The command that resumes a generic cancel: the same command, looking up every key in
/// `sent`, not before `lookup_after`.
pub fn generic_command(
    args: &[String],
    sent: &[SentAttempt],
    lookup_after: Option<SystemTime>,
) -> String {
    let mut cmd = base_command(args);
    for s in sent {
        cmd.push(if s.refund_query {
            "--resume-refund-query-key".into()
        } else {
            "--resume-key".into()
        });
        cmd.push(s.resume_key());
    }
    if let Some(t) = lookup_after {
        cmd.push("--lookup-after".into());
        cmd.push(KoreaDateTime::of(t).to_string());
    }
    join(&cmd)
}

/// The command that resumes an Alipay / WeChat Pay cancel: the identical message again.
pub fn wallet_command(args: &[String], key: &ShopTransactionId, date: KoreaDate) -> String {
    let mut cmd = base_command(args);
    cmd.extend([
        "--shop-transaction-id".into(),
        key.to_string(),
        "--cancel-req-date".into(),
        date.to_string(),
    ]);
    join(&cmd)
}

fn join(cmd: &[String]) -> String {
    cmd.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn the_resume_command_keeps_the_request_and_replaces_the_attempts() {
        let argv = args(&[
            "/x/target/debug/kicc",
            "--base-url",
            "http://127.0.0.1:9",
            "cancel",
            "generic",
            "--pg-cno",
            "PG1",
            "--amount",
            "1000",
            "--reason",
            "it's broken",
            "--resume-key",
            "OLD@20261121",
            "--refund-query",
            "--lookup-after=20261121000000",
            "--shop-transaction-id",
            "MINE",
        ]);
        let sent = attempts(
            &["K1@20261121".into()],
            &["K2@20261122".into()],
            None,
            Duration::from_secs(30),
        )
        .unwrap();
        let t = KoreaDateTime::parse("t", "20261122000030")
            .unwrap()
            .to_system_time();
        assert_eq!(
            generic_command(&argv, &sent, Some(t)),
            "kicc --base-url http://127.0.0.1:9 cancel generic --pg-cno PG1 --amount 1000 --reason 'it'\\''s broken' --resume-key K1@20261121 --resume-refund-query-key K2@20261122 --lookup-after 20261122000030"
        );
        let key = ShopTransactionId::new("K9").unwrap();
        let date = KoreaDate::parse("d", "20261121").unwrap();
        assert_eq!(
            wallet_command(
                &args(&["kicc", "cancel", "alipay", "--pg-cno", "P"]),
                &key,
                date
            ),
            "kicc cancel alipay --pg-cno P --shop-transaction-id K9 --cancel-req-date 20261121"
        );
    }

    #[test]
    fn resume_keys_are_read_strictly() {
        let bound = Duration::from_secs(30);
        let sent = attempts(&["A@B@20261121".into()], &[], Some("20261121120030"), bound).unwrap();
        assert_eq!(sent[0].key.as_str(), "A@B");
        assert_eq!(
            sent[0].sent_at,
            Some(
                KoreaDateTime::parse("t", "20261121120000")
                    .unwrap()
                    .to_system_time()
            )
        );
        for bad in ["nodate", "K@2026112", "K@20261340", "@20261121"] {
            let e = attempts(&[bad.into()], &[], None, bound).unwrap_err();
            assert_eq!(e.exit, crate::exit::Exit::Invalid, "{bad}: {}", e.message);
        }
        assert!(attempts(&["K@20261121".into()], &[], Some("2026"), bound).is_err());
    }
}
