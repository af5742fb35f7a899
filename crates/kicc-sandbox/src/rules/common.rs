//! Layer 3, rules (KICC): what every KICC endpoint shares: the context, the
//! output, error and fault bodies, and the `mallId`, `msgAuthValue` and date
//! checks.
//!
//! Everything under `rules` is synchronous and runs under the state lock, so
//! one request is processed atomically. Nothing here panics on any input.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::clock::KoreaTime;
use crate::codes::{Reject, ResCode};
use crate::config::SecretKey;
use crate::routes::ApiEndpoint;
use crate::validate::{echo, parse_object};
use crate::wechat_final::{form_encode, url_encode};

/// What the server needs besides the state.
pub(crate) struct Ctx<'a> {
    pub(crate) mall_id: &'a str,
    pub(crate) secret: &'a SecretKey,
}

/// A WeChat cancel to apply later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FinalizeJob {
    pub(crate) generation: u64,
    pub(crate) pg_cno: String,
    pub(crate) cancel_pg_cno: String,
}

/// The response body plus work to schedule.
#[derive(Debug)]
pub(crate) struct ApiOutput {
    pub(crate) body: Bytes,
    pub(crate) jobs: Vec<FinalizeJob>,
}

impl ApiOutput {
    pub(crate) fn body(body: Bytes) -> Self {
        Self {
            body,
            jobs: Vec::new(),
        }
    }
}

pub(crate) const GENERIC_CODES: [&str; 6] = ["20", "32", "33", "40", "51", "52"];
pub(crate) const OVERSEAS_CODES: [&str; 2] = ["40", "32"];

/// The body of an injected `resCd` fault: a plausible message and the echoed
/// key; `resDetailMsg` (form-encoded) when the fault has one, and on the
/// WeChat endpoints always (the message's, when the fault has none).
pub(crate) fn fault_body(
    ep: ApiEndpoint,
    code: &str,
    detail: Option<&str>,
    request: &[u8],
) -> Bytes {
    let msg = match code {
        "VTIM" | "VT00" => {
            "Instant refund timed out; resend with a new shopTransactionId and refundQueryFlag Y"
        }
        c if c.starts_with("A21") => {
            "Cancellation is being processed; retry with the same shopTransactionId and cancelReqDate"
        }
        _ => "Simulated gateway error (sandbox fault)",
    };
    let obj = parse_object(request).ok();
    let key = obj.as_ref().and_then(|o| echo(o, "shopTransactionId"));
    let mall = obj.as_ref().and_then(|o| echo(o, "mallId"));
    let mut out = Map::new();
    out.insert("resCd".into(), code.into());
    out.insert("resMsg".into(), msg.into());
    out.insert("shopTransactionId".into(), key.unwrap_or("").into());
    if let Some(m) = mall {
        out.insert("mallId".into(), m.into());
    }
    match detail {
        Some(d) => {
            out.insert("resDetailMsg".into(), form_encode(d).into());
        }
        None if ep.is_wechat() => {
            out.insert("resDetailMsg".into(), url_encode(msg).into());
        }
        None => {}
    }
    Bytes::from(Value::Object(out).to_string())
}

pub(crate) fn error_body(
    ep: ApiEndpoint,
    r: &Reject,
    key: Option<&str>,
    mall: Option<&str>,
) -> Bytes {
    let mut out = Map::new();
    out.insert("resCd".into(), r.code.as_str().into());
    out.insert("resMsg".into(), r.msg.clone().into());
    out.insert("shopTransactionId".into(), key.unwrap_or("").into());
    if let Some(m) = mall {
        out.insert("mallId".into(), m.into());
    }
    if ep.is_wechat() {
        out.insert("resDetailMsg".into(), url_encode(&r.msg).into());
    }
    Bytes::from(Value::Object(out).to_string())
}

pub(crate) fn prefixed(prefix: &str) -> impl Fn(Reject) -> Reject + '_ {
    move |r| Reject::new(r.code, format!("{prefix}.{}", r.msg))
}

pub(crate) fn check_mall(ctx: &Ctx<'_>, mall_id: &str) -> Result<(), Reject> {
    if mall_id == ctx.mall_id {
        Ok(())
    } else {
        Err(Reject::new(
            ResCode::V007,
            format!("mallId {mall_id} is not known to this sandbox"),
        ))
    }
}

/// Checks `msgAuthValue` = lowercase hex HMAC-SHA256(secret, pgCno|shopTransactionId),
/// comparing in constant time.
pub(crate) fn check_mac(ctx: &Ctx<'_>, pg_cno: &str, key: &str, mac: &str) -> Result<(), Reject> {
    let reject = || {
        Reject::new(
            ResCode::V008,
            "msgAuthValue does not match HMAC-SHA256 over pgCno|shopTransactionId (64 lowercase hex characters)",
        )
    };
    let mut hmac = Hmac::<Sha256>::new_from_slice(ctx.secret.as_bytes()).map_err(|_| reject())?;
    hmac.update(pg_cno.as_bytes());
    hmac.update(b"|");
    hmac.update(key.as_bytes());
    let well_formed = mac.len() == 64
        && mac
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(reject());
    }
    let given = hex::decode(mac).map_err(|_| reject())?;
    hmac.verify_slice(&given).map_err(|_| reject())
}

pub(crate) fn require_today(date: &str, date_day: i64, now: KoreaTime) -> Result<(), Reject> {
    if date_day == now.day {
        Ok(())
    } else {
        Err(Reject::new(
            ResCode::V006,
            format!(
                "cancelReqDate {date} is not the current Korea date {}",
                now.date_string()
            ),
        ))
    }
}

pub(crate) fn not_found(pg_cno: &str) -> Reject {
    Reject::new(ResCode::P001, format!("payment {pg_cno} not found"))
}

pub(crate) fn fully_cancelled(pg_cno: &str) -> Reject {
    Reject::new(
        ResCode::P002,
        format!("payment {pg_cno} is already fully cancelled"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_secret() -> SecretKey {
        SecretKey::new("sandbox-secret-key")
    }

    #[test]
    fn mac_vector_from_openssl() {
        // Produced with:
        // printf 'SBP00000000000000001|KEY-1' | openssl dgst -sha256 -hmac 'sandbox-secret-key'
        let good = "c08d52c46ef56b3cfaf8f4988241e07e0ed1c10337ac5189fa924c383df5aad2";
        let secret = ctx_secret();
        let ctx = Ctx {
            mall_id: "T0000001",
            secret: &secret,
        };
        let pg = "SBP00000000000000001";
        assert_eq!(check_mac(&ctx, pg, "KEY-1", good), Ok(()));
        for bad in [
            good.to_uppercase(),
            good.replace('c', "d"),
            good[..63].to_owned(),
            format!("{good}0"),
            "zz".to_owned(),
            String::new(),
        ] {
            assert_eq!(
                check_mac(&ctx, pg, "KEY-1", &bad).unwrap_err().code,
                ResCode::V008
            );
        }
        // Signed over a different key or payment: rejected.
        assert!(check_mac(&ctx, pg, "KEY-2", good).is_err());
        assert!(check_mac(&ctx, "SBP00000000000000002", "KEY-1", good).is_err());
    }
}
