//! `POST /api/trades/retrieveTransaction`: looking a revise request up by its
//! own key, and the log of processed revise requests it reads.
//!
//! KICC documents the look-up ("Transaction Status Check": `mallId`,
//! `shopTransactionId`, `transactionDate`; the previous and the current day
//! only) and says that for a cancellation its answer "is the Cancellation
//! Response". The rest is the sandbox's inference, documented in the crate
//! docs: every revise request that passed the `V` checks is logged under its
//! key and the Korea date on which the sandbox processed it, with the exact
//! body that processing produced, and the look-up answers that body.

use std::collections::HashMap;

use bytes::Bytes;

use crate::api::{check_mall, error_body, ApiEndpoint, ApiOutput, Ctx};
use crate::clock::{parse_yyyymmdd, KoreaTime};
use crate::codes::{Reject, ResCode};
use crate::state::State;
use crate::validate::{check_forbidden, req_str, Object};

/// Entries older than this many Korea days are forgotten (only the current
/// and the previous day can be asked for).
const RETENTION_DAYS: i64 = 2;

/// Processed revise requests by (`shopTransactionId`, Korea day processed).
#[derive(Debug, Default)]
pub(crate) struct TxLog {
    entries: HashMap<(String, i64), Bytes>,
    inserts: u64,
}

impl TxLog {
    /// Logs what a processed request answered. The first record of a key on a
    /// day stays: a later same-day request with that key is a duplicate
    /// (`D001`, not logged) or an Alipay/WeChat retry answered the same bytes.
    pub(crate) fn record(&mut self, key: &str, day: i64, body: &Bytes) {
        self.entries
            .entry((key.to_owned(), day))
            .or_insert_with(|| body.clone());
        self.inserts = self.inserts.wrapping_add(1);
        if self.inserts.is_multiple_of(1024) {
            self.entries
                .retain(|(_, d), _| *d >= day.saturating_sub(RETENTION_DAYS));
        }
    }

    fn get(&self, key: &str, day: i64) -> Option<&Bytes> {
        self.entries.get(&(key.to_owned(), day))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_record_of_a_day_stays() {
        let mut log = TxLog::default();
        log.record("k", 10, &Bytes::from_static(b"first"));
        log.record("k", 10, &Bytes::from_static(b"second"));
        log.record("k", 11, &Bytes::from_static(b"next day"));
        assert_eq!(log.get("k", 10).map(|b| &b[..]), Some(&b"first"[..]));
        assert_eq!(log.get("k", 11).map(|b| &b[..]), Some(&b"next day"[..]));
        assert!(log.get("k", 12).is_none());
        assert!(log.get("other", 10).is_none());
    }
}
