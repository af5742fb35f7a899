//! `kicc wechatpay reverse`: revoke an order through WeChat Pay Global API v3, directly.
//!
//! The request is signed by `wechatpay-direct` with the merchant's RSA key (read from the PEM
//! file `--private-key`, never printed). `--dry-run` prints `SignedRequest::dry_run_json`: the
//! contract's object plus `signed_message`, the exact string that was signed; `--timestamp` and
//! `--nonce` fix the signature inputs and are refused without `--dry-run`. Success is a 204
//! whose signature verifies: with the keys given, or else with platform certificates downloaded
//! first (never by `--dry-run`). An open outcome is settled by querying the order
//! (`ReverseClient::reverse_and_settle`) unless `--no-query`.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;
use wechatpay_direct::{
    KeyKind, MaybeRevokedReason, NextStep, Nonce, OrderRef, QueriedOrder, Resolution, ReverseCall,
    ReverseError, ReverseOutcome, Timestamp, VerificationKeys,
};

use crate::cli::{Global, ReverseArgs};
use crate::exit::{Exit, Failure, Report};
use crate::wechatpay_cmds::{self, read_text};

/// The verification keys given on the command line.
fn verification_keys(args: &ReverseArgs) -> Result<VerificationKeys, Failure> {
    let mut keys = VerificationKeys::new();
    wechatpay_cmds::platform_certs(&args.platform_cert, &mut keys)?;
    if let (Some(path), Some(id)) = (&args.wechatpay_public_key, &args.wechatpay_public_key_id) {
        let pem = read_text("wechatpay-public-key", path)?;
        keys.add_public_key_pem(id, &pem)
            .map_err(|e| Failure::invalid(format!("wechatpay-public-key: {e}")))?;
    }
    Ok(keys)
}

/// The exit code and message for a failed revoke.
fn failure(e: ReverseError) -> Failure {
    match &e {
        ReverseError::Invalid(_) | ReverseError::Timing(_) => Failure::invalid(e.to_string()),
        ReverseError::Sign(_) => Failure::local(e.to_string()),
        other => {
            let (exit, advice) = match other.next_step() {
                NextStep::NotRevoked => (Exit::NotDone, "the order was not revoked"),
                NextStep::Retry => (
                    Exit::NotDone,
                    "the order was not revoked; the same request may be sent again",
                ),
                // Any other (newer) step: never claim more than "unknown".
                _ => (
                    Exit::Unknown,
                    "outcome unknown: query the order before acting",
                ),
            };
            Failure {
                exit,
                message: format!("{advice}: {e}"),
            }
        }
    }
}

fn order_json(order: &OrderRef) -> serde_json::Value {
    match order {
        OrderRef::OutTradeNo(no) => json!({ "out_trade_no": no.as_str() }),
        OrderRef::TransactionId(id) => json!({ "transaction_id": id.as_str() }),
    }
}

/// What kind of key verified an answer, in words.
fn key_kind(kind: &KeyKind) -> String {
    match kind {
        KeyKind::PlatformCertificate => "platform certificate".into(),
        KeyKind::WechatpayPublicKey => "WeChat Pay public key".into(),
        other => format!("{other:?}"),
    }
}

/// Why a 2xx is not a verified revoke, in words.
fn maybe_reason(reason: &MaybeRevokedReason) -> String {
    match reason {
        MaybeRevokedReason::Unverified(e) => format!("the signature did not verify: {e}"),
        MaybeRevokedReason::UnexpectedStatus => "a 2xx other than the documented 204".into(),
        other => format!("{other:?}"),
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// `kicc wechatpay reverse ...`.
pub async fn reverse(global: &Global, args: &ReverseArgs) -> Result<Report, Failure> {
    if !args.dry_run {
        if args.timestamp.is_some() {
            return Err(Failure::invalid(
                "timestamp: is only accepted with --dry-run (a request that is sent is signed with the current time)",
            ));
        }
        if args.nonce.is_some() {
            return Err(Failure::invalid(
                "nonce_str: is only accepted with --dry-run (a request that is sent is signed with a fresh random nonce)",
            ));
        }
    }
    let order = match (&args.out_trade_no, &args.transaction_id) {
        (Some(no), None) => OrderRef::out_trade_no(no.as_str())?,
        (None, Some(id)) => OrderRef::transaction_id(id.as_str())?,
        _ => {
            return Err(Failure::invalid(
                "out_trade_no: give exactly one of --out-trade-no and --transaction-id",
            ))
        }
    };
    let mode = wechatpay_cmds::mode(&args.mchid, args.sub_mchid.as_deref())?;
    let timestamp = args
        .timestamp
        .as_deref()
        .map(|t| Timestamp::parse("timestamp", t))
        .transpose()?;
    let nonce = args.nonce.as_deref().map(Nonce::new).transpose()?;
    let paid_at = args
        .paid_at
        .as_deref()
        .map(|t| Timestamp::parse("paid_at", t))
        .transpose()?;
    let verification_keys = verification_keys(args)?;
    let download = verification_keys.is_empty();
    let private_key = wechatpay_cmds::private_key(&args.private_key)?;
    let (mut client, base) = wechatpay_cmds::client(
        global,
        mode,
        &args.serial_no,
        private_key,
        verification_keys,
        args.max_attempts,
    )?;
    if let Some(t) = timestamp {
        client = client.with_clock(move || UNIX_EPOCH + Duration::from_secs(t.unix_secs()));
    }
    if let Some(n) = nonce {
        client = client.with_nonce_source(move || Some(n.clone()));
    }
    let call = match paid_at {
        Some(p) => ReverseCall::new(order.clone(), p),
        None => ReverseCall::without_timing_checks(order.clone()),
    };

    if args.dry_run {
        let signed = client.sign(&call).map_err(failure)?;
        return Ok(Report::ok(pretty(&signed.dry_run_json(&base))));
    }
    if download {
        // Nothing is revoked before the answer can be verified.
        client = wechatpay_cmds::with_downloaded_certificates(global, client)
            .await
            .map_err(|f| match f.exit {
                Exit::Unknown => Failure {
                    exit: Exit::NotDone,
                    message: format!("{}; nothing was sent, the order was not revoked", f.message),
                },
                _ => f,
            })?;
    }
    if args.no_query {
        return match client.reverse(&call).await {
            Ok(outcome) => Ok(outcome_report(&order, outcome)),
            Err(e) => Err(failure(e)),
        };
    }
    let resolution = client.reverse_and_settle(&call).await;
    resolution_report(&order, resolution)
}

/// The report of one revoke answer, without a query (`--no-query`).
fn outcome_report(order: &OrderRef, outcome: ReverseOutcome) -> Report {
    match outcome {
        ReverseOutcome::Revoked(v) => Report::ok(pretty(&json!({
            "result": "revoked",
            "order": order_json(order),
            "verifiedBy": v.serial,
            "verifiedWith": key_kind(&v.kind),
        }))),
        ReverseOutcome::MaybeRevoked { status, reason } => Report::with_note(
            Exit::Unknown,
            pretty(&json!({
                "result": "maybe revoked",
                "order": order_json(order),
                "httpStatus": status,
                "reason": maybe_reason(&reason),
            })),
            format!(
                "WeChat Pay answered HTTP {status}, which is not a verified revoke: query the order before acting"
            ),
        ),
        other => Report::with_note(
            Exit::Unknown,
            pretty(&json!({ "result": "unknown", "order": order_json(order) })),
            format!("an answer this version of kicc does not know ({other:?}): query the order before acting"),
        ),
    }
}

/// `{"result", "order", "confirmedBy": "order query", "trade_state", "verifiedBy"}`.
fn queried_json(result: &str, order: &OrderRef, o: &QueriedOrder) -> serde_json::Value {
    json!({
        "result": result,
        "order": order_json(order),
        "confirmedBy": "order query",
        "trade_state": o.trade_state.as_str(),
        "trade_state_desc": o.trade_state_desc,
        "verifiedBy": o.verified.serial,
    })
}

/// The report of a settled revoke (the table: exit 0, 1 or 3).
fn resolution_report(order: &OrderRef, resolution: Resolution) -> Result<Report, Failure> {
    let line = resolution.describe();
    Ok(match resolution {
        Resolution::Revoked(v) => Report::ok(pretty(&json!({
            "result": "revoked",
            "order": order_json(order),
            "verifiedBy": v.serial,
            "verifiedWith": key_kind(&v.kind),
        }))),
        Resolution::RevokedPerQuery(o) => Report::with_note(
            Exit::Ok,
            pretty(&queried_json("revoked", order, &o)),
            line,
        ),
        Resolution::Closed(o) => Report::with_note(
            Exit::Ok,
            pretty(&queried_json("closed", order, &o)),
            line,
        ),
        Resolution::NotRevoked(e) => return Err(failure(e)),
        Resolution::StillNotRevoked(o) => Report::with_note(
            Exit::NotDone,
            pretty(&queried_json("not revoked", order, &o)),
            line,
        ),
        Resolution::RefundInstead(o) => Report::with_note(
            Exit::NotDone,
            pretty(&queried_json("not revocable", order, &o)),
            line,
        ),
        Resolution::UnknownState(o) => Report::with_note(
            Exit::Unknown,
            pretty(&queried_json("unknown", order, &o)),
            line,
        ),
        Resolution::QueryFailed { last_revoke, query } => {
            let revoke = match *last_revoke {
                Ok(ReverseOutcome::MaybeRevoked { status, reason }) => {
                    format!("HTTP {status}: {}", maybe_reason(&reason))
                }
                Ok(other) => format!("{other:?}"),
                Err(e) => e.to_string(),
            };
            Report::with_note(
                Exit::Unknown,
                pretty(&json!({
                    "result": "unknown",
                    "order": order_json(order),
                    "revoke": revoke,
                    "queryError": query.to_string(),
                })),
                line,
            )
        }
        other => Report::with_note(
            Exit::Unknown,
            pretty(&json!({ "result": "unknown", "order": order_json(order) })),
            format!("an outcome this version of kicc does not know ({other:?}): query the order before acting"),
        ),
    })
}
