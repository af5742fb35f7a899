//! Layer 3, rules (KICC): `POST /api/trades/retrieveTransaction`, looking a
//! revise request up by its own key in the log of processed revise requests
//! (`state::TxLog`).
//!
//! KICC documents the look-up ("Transaction Status Check": `mallId`,
//! `shopTransactionId`, `transactionDate`; the previous and the current day
//! only) and says that for a cancellation its answer "is the Cancellation
//! Response". The rest is the sandbox's inference, documented in the crate
//! docs: every revise request that passed the `V` checks is logged under its
//! key and the Korea date on which the sandbox processed it, with the exact
//! body that processing produced, and the look-up answers that body.

use crate::clock::{parse_yyyymmdd, KoreaTime};
use crate::codes::{Reject, ResCode};
use crate::routes::ApiEndpoint;
use crate::rules::common::{check_mall, error_body, ApiOutput, Ctx};
use crate::state::State;
use crate::validate::{check_forbidden, req_str, Object};

/// Handles one look-up. Changes nothing and uses up no key.
pub(crate) fn retrieve_transaction(
    st: &State,
    ctx: &Ctx<'_>,
    now: KoreaTime,
    obj: &Object,
) -> Result<ApiOutput, Reject> {
    let mall_id = req_str(obj, "mallId", 8)?;
    let key = req_str(obj, "shopTransactionId", 60)?;
    let date = req_str(obj, "transactionDate", 8)?;
    check_forbidden(obj)?;
    let day = parse_yyyymmdd(date).ok_or_else(|| {
        Reject::new(
            ResCode::V006,
            "transactionDate must be a real date written yyyyMMdd",
        )
    })?;
    check_mall(ctx, mall_id)?;
    if day != now.day && day != now.day.saturating_sub(1) {
        return Err(Reject::new(
            ResCode::R002,
            format!(
                "transactionDate {date} is outside the query window: only the current Korea date {} and the day before can be queried",
                now.date_string()
            ),
        ));
    }
    match st.tx_log.get(key, day) {
        Some(body) => Ok(ApiOutput::body(body.clone())),
        None => Ok(ApiOutput::body(error_body(
            ApiEndpoint::RetrieveTransaction,
            &Reject::new(
                ResCode::R001,
                format!("transaction not found: no request with shopTransactionId {key} was processed on {date}"),
            ),
            Some(key),
            Some(mall_id),
        ))),
    }
}
