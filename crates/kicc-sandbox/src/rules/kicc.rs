//! Layer 3, rules (KICC): one call to a KICC endpoint, on `&mut State` at the
//! sandbox time `now`; always a JSON body with `resCd`, plus the WeChat
//! cancels to finish later.

use crate::clock::KoreaTime;
use crate::routes::ApiEndpoint;
use crate::rules::common::{error_body, ApiOutput, Ctx};
use crate::rules::generic::generic_revise;
use crate::rules::overseas::{overseas_revise, wechat_find};
use crate::rules::retrieve::retrieve_transaction;
use crate::state::State;
use crate::validate::{echo, parse_object};

/// Handles one call to an API endpoint; always yields a JSON body with `resCd`.
pub(crate) fn handle(
    ep: ApiEndpoint,
    st: &mut State,
    ctx: &Ctx<'_>,
    now: KoreaTime,
    body: &[u8],
) -> ApiOutput {
    let obj = match parse_object(body) {
        Ok(obj) => obj,
        Err(r) => return ApiOutput::body(error_body(ep, &r, None, None)),
    };
    let result = match ep {
        ApiEndpoint::GenericRevise => generic_revise(st, ctx, now, &obj),
        ApiEndpoint::AlipayRevise | ApiEndpoint::WechatRevise => {
            overseas_revise(ep, st, ctx, now, &obj)
        }
        ApiEndpoint::WechatFind => wechat_find(st, ctx, now, &obj),
        ApiEndpoint::RetrieveTransaction => retrieve_transaction(st, ctx, now, &obj),
    };
    result.unwrap_or_else(|r| {
        ApiOutput::body(error_body(
            ep,
            &r,
            echo(&obj, "shopTransactionId"),
            echo(&obj, "mallId"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretKey;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn ctx_secret() -> SecretKey {
        SecretKey::new("sandbox-secret-key")
    }

    proptest! {
        // Nothing parsed from the network may panic, and every answer is a
        // JSON object with a four-character resCd.
        #[test]
        fn any_body_gets_a_json_answer(body in proptest::collection::vec(any::<u8>(), 0..300), ep in 0usize..ApiEndpoint::ALL.len()) {
            let secret = ctx_secret();
            let ctx = Ctx { mall_id: "T0000001", secret: &secret };
            let mut st = State::new(1, 0);
            let now = st.now();
            let ep = ApiEndpoint::ALL[ep];
            let out = handle(ep, &mut st, &ctx, now, &body);
            let v: Value = serde_json::from_slice(&out.body).unwrap();
            prop_assert_eq!(v["resCd"].as_str().map(str::len), Some(4));
        }

        #[test]
        fn any_json_object_gets_a_json_answer(
            fields in proptest::collection::btree_map(
                prop_oneof![
                    Just("mallId".to_owned()), Just("shopTransactionId".to_owned()),
                    Just("pgCno".to_owned()), Just("reviseTypeCode".to_owned()),
                    Just("cancelReqDate".to_owned()), Just("msgAuthValue".to_owned()),
                    Just("amount".to_owned()), Just("amountInfo".to_owned()),
                    Just("taxInfo".to_owned()), Just("basketInfo".to_owned()),
                    Just("basketUsed".to_owned()), Just("refundQueryFlag".to_owned()),
                    Just("cancelPgCno".to_owned()), Just("remainAmount".to_owned()),
                    Just("transactionDate".to_owned()),
                ],
                prop_oneof![
                    Just(Value::Null), any::<bool>().prop_map(Value::from),
                    any::<i64>().prop_map(Value::from), any::<f64>().prop_map(|f| json!(f)),
                    "\\PC{0,70}".prop_map(Value::from),
                    Just(json!({"currency": "KRW", "totAmount": 5})),
                    Just(json!({"taxationAmount": 1})),
                    Just(json!(["x"])),
                ],
                0..10,
            ),
            ep in 0usize..ApiEndpoint::ALL.len(),
        ) {
            let secret = ctx_secret();
            let ctx = Ctx { mall_id: "T0000001", secret: &secret };
            let mut st = State::new(1, 0);
            let now = st.now();
            let body = serde_json::to_vec(&fields).unwrap();
            let out = handle(ApiEndpoint::ALL[ep], &mut st, &ctx, now, &body);
            let v: Value = serde_json::from_slice(&out.body).unwrap();
            prop_assert!(v["resCd"].is_string());
            prop_assert_ne!(v["resCd"].as_str(), Some("0000"));
        }
    }
}
