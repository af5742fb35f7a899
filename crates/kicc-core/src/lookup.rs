//! Looking a request up by its own key: KICC's "Transaction Status Check",
//! `POST /api/trades/retrieveTransaction`.
//!
//! KICC documents the request (`mallId`, `shopTransactionId`, `transactionDate` = the original
//! request's date, `yyyyMMdd`), that only yesterday's and today's requests can be looked up,
//! and that the answer for a cancellation "is the Cancellation Response" (so it is read with
//! the channel's own response type). It does **not** document the code for "no such
//! transaction": that is [`RetryPolicy::lookup_not_found_codes`](crate::retry::RetryPolicy),
//! empty by default (every look-up then leaves the outcome unknown rather than guess), and
//! `R001` in `kicc-sandbox` (the sandbox's own code). Any other answer is treated as
//! "unknown" by the retry machine. This module is the one place that knows the message.

use bytes::Bytes;

use crate::date::KoreaDate;
use crate::endpoint::Merchant;
use crate::field::FieldError;
use crate::message::to_json;
use crate::text::{MallId, ShopTransactionId};

/// The look-up's path below the base URL.
pub const RETRIEVE_TRANSACTION_PATH: &str = "/api/trades/retrieveTransaction";

/// The code `kicc-sandbox` answers for "no such transaction" (the sandbox's own, not KICC's).
pub const SANDBOX_NOT_FOUND_CODE: &str = "R001";

/// The look-up message, as sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetrieveTransaction<'a> {
    mall_id: &'a MallId,
    shop_transaction_id: &'a ShopTransactionId,
    transaction_date: KoreaDate,
}

impl<'a> RetrieveTransaction<'a> {
    /// The look-up of the request keyed `key`, sent on Korea date `date`, by `merchant`.
    pub fn new(merchant: &'a Merchant, key: &'a ShopTransactionId, date: KoreaDate) -> Self {
        RetrieveTransaction {
            mall_id: merchant.mall_id(),
            shop_transaction_id: key,
            transaction_date: date,
        }
    }

    /// The body, as sent.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// The HTTP request that looks up `key` under `date` in `merchant`'s environment.
pub fn retrieve_request(
    merchant: &Merchant,
    key: &ShopTransactionId,
    date: KoreaDate,
) -> Result<http::Request<Bytes>, FieldError> {
    merchant.post_json(
        RETRIEVE_TRANSACTION_PATH,
        RetrieveTransaction::new(merchant, key, date).to_json(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{BaseUrl, Environment};
    use crate::secret::SecretKey;

    #[test]
    fn the_documented_three_fields_and_nothing_else() {
        let m = Merchant::new(
            Environment::Custom(BaseUrl::new("http://127.0.0.1:1").unwrap()),
            MallId::new("T0000001").unwrap(),
            SecretKey::new("s").unwrap(),
        );
        let key = ShopTransactionId::new("K1").unwrap();
        let date = KoreaDate::parse("d", "20261121").unwrap();
        let r = retrieve_request(&m, &key, date).unwrap();
        assert_eq!(r.uri(), "http://127.0.0.1:1/api/trades/retrieveTransaction");
        assert_eq!(
            std::str::from_utf8(r.body()).unwrap(),
            r#"{"mallId":"T0000001","shopTransactionId":"K1","transactionDate":"20261121"}"#
        );
    }
}
