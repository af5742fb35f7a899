//! `kicc wechatpay reverse`: revoke an order through WeChat Pay Global API v3, directly.
//!
//! The request is signed by `wechatpay-direct` with the merchant's RSA key (read from the PEM
//! file `--private-key`, never printed). `--dry-run` prints `SignedRequest::dry_run_json`: the
//! contract's object plus `signed_message`, the exact string that was signed; `--timestamp` and
//! `--nonce` fix the signature inputs and are refused without `--dry-run`. A real send needs at
//! least one WeChat Pay verification key, because success is a 204 whose signature verifies.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;
use wechatpay_direct::{
    BaseUrl, KeyKind, MaybeRevokedReason, MerchantConfig, MerchantMode, NextStep, Nonce, OrderRef,
    ReverseCall, ReverseClient, ReverseError, ReverseOutcome, RsaPrivateKey, SecretPem, SerialNo,
    Timestamp, VerificationKeys,
};

use crate::cli::{EnvName, Global, ReverseArgs};
use crate::creds::{self, SANDBOX_URL};
use crate::exit::{Exit, Failure, Report};
use crate::kicc_cmds::progress_wanted;
use crate::observe::Observed;

/// Where the revoke goes: `--base-url`, else the sandbox or WeChat Pay's Hong Kong host.
fn base_url(global: &Global) -> Result<BaseUrl, Failure> {
    if let Some(url) = &global.base_url {
        return Ok(BaseUrl::new(url.as_str())?);
    }
    match global.env {
        EnvName::Sandbox => Ok(BaseUrl::new(SANDBOX_URL)?),
        EnvName::Production => Ok(BaseUrl::hong_kong()),
        EnvName::Test => Err(Failure::invalid(
            "env: WeChat Pay Global has no test environment; use --env sandbox, --env production or --base-url",
        )),
    }
}

fn read_text(flag: &str, path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::invalid(format!("{flag}: cannot read {}: {e}", path.display())))
}

/// The verification keys given on the command line.
fn verification_keys(args: &ReverseArgs) -> Result<VerificationKeys, Failure> {
    let mut keys = VerificationKeys::new();
    for path in &args.platform_cert {
        let pem = read_text("platform-cert", path)?;
        keys.add_certificate_pem(&pem)
            .map_err(|e| Failure::invalid(format!("platform-cert: {}: {e}", path.display())))?;
    }
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
                NextStep::QueryOrder => (
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
    let mode = match &args.sub_mchid {
        None => MerchantMode::common(args.mchid.as_str())?,
        Some(sub) => MerchantMode::institutional(args.mchid.as_str(), sub.as_str())?,
    };
    let serial_no = SerialNo::new(args.serial_no.as_str())?;
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
    let base = base_url(global)?;
    let verification_keys = verification_keys(args)?;
    if !args.dry_run && verification_keys.is_empty() {
        return Err(Failure::invalid(
            "platform-cert: a WeChat Pay platform certificate (--platform-cert) or public key \
             (--wechatpay-public-key with --wechatpay-public-key-id) is required to verify the answer",
        ));
    }
    let pem = SecretPem::new(read_text("private-key", &args.private_key)?);
    let private_key =
        RsaPrivateKey::from_pem(&pem).map_err(|e| Failure::invalid(format!("private-key: {e}")))?;
    drop(pem);

    let transport = Observed::new(creds::transport(global)?, progress_wanted());
    let config = MerchantConfig {
        mode,
        serial_no,
        private_key: Arc::new(private_key),
        verification_keys,
    };
    let mut client = ReverseClient::new(transport, config)
        .with_base_urls(base.clone(), None)
        .with_retry_policy(wechatpay_direct::RetryPolicy {
            max_attempts: args.max_attempts,
            ..wechatpay_direct::RetryPolicy::default()
        });
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
    match client.reverse(&call).await {
        Ok(ReverseOutcome::Revoked(v)) => Ok(Report::ok(pretty(&json!({
            "result": "revoked",
            "order": order_json(&order),
            "verifiedBy": v.serial,
            "verifiedWith": key_kind(&v.kind),
        })))),
        Ok(ReverseOutcome::MaybeRevoked { status, reason }) => Ok(Report::with_note(
            Exit::Unknown,
            pretty(&json!({
                "result": "maybe revoked",
                "order": order_json(&order),
                "httpStatus": status,
                "reason": maybe_reason(&reason),
            })),
            format!(
                "WeChat Pay answered HTTP {status}, which is not a verified revoke: query the order before acting"
            ),
        )),
        Ok(other) => Ok(Report::with_note(
            Exit::Unknown,
            pretty(&json!({ "result": "unknown", "order": order_json(&order) })),
            format!("an answer this version of kicc does not know ({other:?}): query the order before acting"),
        )),
        Err(e) => Err(failure(e)),
    }
}
