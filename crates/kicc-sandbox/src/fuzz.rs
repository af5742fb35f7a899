//! Entry points for fuzzing the sandbox's request handling without sockets, and for
//! replaying the committed fuzz corpora as ordinary tests. Not a stable API: hidden from the
//! documentation, and may change with the fuzz targets.
//!
//! An input's first byte picks what reads the rest (see [`request`]); the KICC endpoints run
//! against a fresh in-memory state that holds one card, one Alipay and one WeChat payment,
//! so a well-formed, correctly signed request (as in [`seed_inputs`]) reaches the business
//! rules and not only the validation.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::KoreaTime;
use crate::config::{SecretKey, DEFAULT_MALL_ID, DEFAULT_SECRET_KEY, DEFAULT_SEED};
use crate::model::{Channel, Currency};
use crate::routes::ApiEndpoint;
use crate::rules::common::Ctx;
use crate::state::State;

/// What one fuzz input was read as, and what the sandbox made of it.
#[derive(Debug)]
pub enum Handled {
    /// A KICC endpoint's answer body (always meant to be a JSON object with `resCd`).
    Api(Vec<u8>),
    /// An admin body (`/sandbox/payments`, `/sandbox/faults`, `/sandbox/clock`) was read:
    /// whether it was accepted.
    Admin(bool),
}

const ROUTES: u8 = 7;

/// Handles one fuzz input: `input[0] % 7` picks the generic, Alipay or WeChat revise
/// endpoint, the WeChat find endpoint, or the admin payment, fault or clock body reader;
/// the rest of the input is the request body. Never panics (that is what is fuzzed).
pub fn request(input: &[u8]) -> Handled {
    let (route, body) = match input.split_first() {
        Some((r, body)) => (r % ROUTES, body),
        None => (0, input),
    };
    let ep = match route {
        0 => ApiEndpoint::GenericRevise,
        1 => ApiEndpoint::AlipayRevise,
        2 => ApiEndpoint::WechatRevise,
        3 => ApiEndpoint::WechatFind,
        4 => return Handled::Admin(crate::admin::parse_payment(body).is_ok()),
        5 => return Handled::Admin(crate::admin::parse_fault(body).is_ok()),
        _ => return Handled::Admin(crate::admin::parse_clock(body).is_ok()),
    };
    let (mut st, _) = fuzz_state();
    let secret = SecretKey::new(DEFAULT_SECRET_KEY);
    let ctx = Ctx {
        mall_id: DEFAULT_MALL_ID,
        secret: &secret,
    };
    let now = KoreaTime::now(0);
    Handled::Api(
        crate::rules::kicc::handle(ep, &mut st, &ctx, now, body)
            .body
            .to_vec(),
    )
}

/// The payments every fuzz state holds: (channel, pgCno).
fn fuzz_state() -> (State, Vec<(Channel, String)>) {
    let mut st = State::with_settings(DEFAULT_SEED, 0, crate::settings::Settings::default());
    let mut made = Vec::new();
    for (channel, amount, currency) in [
        (Channel::Card, 50_000, Currency::Krw),
        (Channel::Alipay, 5_000, Currency::Usd),
        (Channel::Wechat, 10_000, Currency::Krw),
    ] {
        if let Ok(p) = st.create_payment(DEFAULT_MALL_ID, channel, amount, currency, false, false) {
            made.push((channel, p.pg_cno));
        }
    }
    (st, made)
}

fn mac(pg_cno: &str, key: &str) -> String {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(DEFAULT_SECRET_KEY.as_bytes()) else {
        return String::new();
    };
    m.update(pg_cno.as_bytes());
    m.update(b"|");
    m.update(key.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Well-formed inputs for [`request`], for seeding a corpus: signed cancels of the fuzz
/// state's payments dated today (sandbox time), a status query, and admin bodies.
pub fn seed_inputs() -> Vec<Vec<u8>> {
    let (st, made) = fuzz_state();
    let today = st.now().date_string();
    let pg = |c: Channel| {
        made.iter()
            .find(|(ch, _)| *ch == c)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    let (card, alipay, wechat) = (pg(Channel::Card), pg(Channel::Alipay), pg(Channel::Wechat));
    let revise = |pg: &str, key: &str, code: &str, extra: serde_json::Value| {
        let mut v = serde_json::json!({
            "mallId": DEFAULT_MALL_ID,
            "shopTransactionId": key,
            "pgCno": pg,
            "reviseTypeCode": code,
            "cancelReqDate": today,
            "msgAuthValue": mac(pg, key),
        });
        if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        v.to_string().into_bytes()
    };
    let with = |route: u8, body: Vec<u8>| {
        let mut v = vec![route];
        v.extend(body);
        v
    };
    vec![
        with(0, revise(&card, "FUZZ-0001", "40", serde_json::json!({}))),
        with(
            0,
            revise(
                &card,
                "FUZZ-0002",
                "32",
                serde_json::json!({"amount": 1000, "reviseMessage": "고객 변심"}),
            ),
        ),
        with(1, revise(&alipay, "FUZZ-0003", "40", serde_json::json!({"memo": "Customer Request"}))),
        with(
            2,
            revise(
                &wechat,
                "FUZZ-0004",
                "32",
                serde_json::json!({"amountInfo": {"currency": "KRW", "totAmount": 500}}),
            ),
        ),
        with(
            3,
            serde_json::json!({
                "mallId": DEFAULT_MALL_ID,
                "shopTransactionId": "FUZZ-0005",
                "pgCno": wechat,
                "cancelPgCno": "26112100000000000001",
            })
            .to_string()
            .into_bytes(),
        ),
        with(4, br#"{"channel":"card","amount":1000,"authorizedOnly":true}"#.to_vec()),
        with(4, br#"{"channel":"alipay","amount":1203,"currency":"USD"}"#.to_vec()),
        with(5, br#"{"path":"/api/trades/revise","kind":"resCd","resCd":"E999","apply":true,"times":2}"#.to_vec()),
        with(6, br#"{"offsetSeconds":-86400}"#.to_vec()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res_cd(h: Handled) -> String {
        match h {
            Handled::Api(body) => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                v["resCd"].as_str().unwrap().to_owned()
            }
            Handled::Admin(ok) => panic!("not an API route (admin accepted: {ok})"),
        }
    }

    #[test]
    fn seeds_reach_the_business_rules() {
        let seeds = seed_inputs();
        // The signed cancels are accepted (they run against a fresh state each).
        for s in &seeds[..4] {
            assert_eq!(res_cd(request(s)), "0000", "{}", String::from_utf8_lossy(s));
        }
        for s in &seeds[5..] {
            assert!(
                matches!(request(s), Handled::Admin(true)),
                "{}",
                String::from_utf8_lossy(s)
            );
        }
    }

    #[test]
    fn garbage_gets_a_json_rejection() {
        for input in [&b""[..], b"\x00", b"\x01{", b"\x02[]", b"\x03{\"pgCno\":1}"] {
            assert_ne!(res_cd(request(input)), "0000");
        }
        assert!(matches!(request(b"\x04{"), Handled::Admin(false)));
    }
}
