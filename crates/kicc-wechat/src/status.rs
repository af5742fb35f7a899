//! The cancellation status query (`POST /api/trades/wechatpay/find`).

use bytes::Bytes;
use kicc_core::message::to_json;
use kicc_core::retry::{Exchange, Expected, Interpreted, Resend};
use kicc_core::wire::ResponseAmountInfo;
use kicc_core::RetryStyle;
use kicc_core::{
    Channel, FieldError, KoreaDate, MallId, Merchant, PgCno, ShopTransactionId, TransactionStatus,
};

/// The API path, below the environment's base URL.
pub const FIND_PATH: &str = "/api/trades/wechatpay/find";

/// Which cancellation to ask about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusQuery {
    pg_cno: PgCno,
    cancel_pg_cno: PgCno,
}

impl StatusQuery {
    /// Asks about cancellation `cancel_pg_cno` of payment `pg_cno`.
    pub fn new(pg_cno: PgCno, cancel_pg_cno: PgCno) -> Self {
        StatusQuery {
            pg_cno,
            cancel_pg_cno,
        }
    }

    /// Reads the two IDs given as text.
    pub fn from_text(pg_cno: &str, cancel_pg_cno: &str) -> Result<Self, FieldError> {
        Ok(StatusQuery::new(
            PgCno::new(pg_cno)?,
            PgCno::for_field("cancelPgCno", cancel_pg_cno)?,
        ))
    }

    /// The message from `merchant`, keyed `key` (the query has its own idempotency key).
    pub fn message(&self, merchant: &Merchant, key: ShopTransactionId) -> FindRequest {
        FindRequest {
            mall_id: merchant.mall_id().clone(),
            shop_transaction_id: key,
            pg_cno: self.pg_cno.clone(),
            cancel_pg_cno: self.cancel_pg_cno.clone(),
        }
    }
}

/// The exact status query message. The API defines no `msgAuthValue` for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindRequest {
    mall_id: MallId,
    shop_transaction_id: ShopTransactionId,
    pg_cno: PgCno,
    #[serde(deserialize_with = "cancel_pg_cno")]
    cancel_pg_cno: PgCno,
}

fn cancel_pg_cno<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PgCno, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    PgCno::for_field("cancelPgCno", s).map_err(serde::de::Error::custom)
}

impl FindRequest {
    /// `shopTransactionId`.
    pub fn shop_transaction_id(&self) -> &ShopTransactionId {
        &self.shop_transaction_id
    }

    /// `pgCno`.
    pub fn pg_cno(&self) -> &PgCno {
        &self.pg_cno
    }

    /// `cancelPgCno`.
    pub fn cancel_pg_cno(&self) -> &PgCno {
        &self.cancel_pg_cno
    }

    /// The body, as sent.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }

    /// The HTTP request to `merchant`'s environment.
    pub fn to_http(&self, merchant: &Merchant) -> Result<http::Request<Bytes>, FieldError> {
        merchant.post_json(FIND_PATH, self.to_json())
    }

    /// The exchange that sends this query and reads the answer; every resend is a new query
    /// with a new key (a query changes nothing, and a reused key would be a duplicate).
    pub fn exchange<'m>(&self, merchant: &'m Merchant) -> Result<FindExchange<'m>, FieldError> {
        Ok(FindExchange {
            request: self.to_http(merchant)?,
            merchant,
            message: self.clone(),
        })
    }
}

/// The status query's exchange ([`RetryStyle::Query`]).
///
/// An answer that names this cancellation is the query's result, whatever its `resCd`: a
/// non-`0000` one says the CANCEL failed (the sandbox and, as far as the page says, KICC
/// answer the cancel's failure this way). A non-`0000` answer that does not name it is the
/// query's own failure, reported by the retry machine as [`kicc_core::Error::Declined`] and
/// turned into "status unknown" by the client.
pub struct FindExchange<'m> {
    merchant: &'m Merchant,
    message: FindRequest,
    request: http::Request<Bytes>,
}

impl Exchange for FindExchange<'_> {
    type Output = FindResponse;

    fn channel(&self) -> Channel {
        Channel::WeChat
    }

    fn retry_style(&self) -> RetryStyle {
        RetryStyle::Query
    }

    fn request(&self) -> &http::Request<Bytes> {
        &self.request
    }

    fn shop_transaction_id(&self) -> &ShopTransactionId {
        &self.message.shop_transaction_id
    }

    fn request_date(&self) -> Option<KoreaDate> {
        None
    }

    fn expected(&self) -> Expected<'_> {
        Expected {
            pg_cno: self.message.pg_cno.as_str(),
            amount: None,
        }
    }

    fn interpret(&self, body: &[u8]) -> Interpreted<FindResponse> {
        match serde_json::from_slice::<FindResponse>(body) {
            Ok(found) if found.cancel_pg_cno == self.message.cancel_pg_cno.as_str() => {
                Interpreted::Success(found)
            }
            Ok(other) if other.res_cd != kicc_core::SUCCESS => Interpreted::Gateway {
                detail: Some(other.detail()).filter(|d| !d.is_empty()),
                res_cd: other.res_cd,
                res_msg: other.res_msg,
            },
            Ok(other) => Interpreted::Unreadable(format!(
                "a 0000 answer about cancelPgCno {:?}, not {}",
                other.cancel_pg_cno, self.message.cancel_pg_cno
            )),
            Err(e) => Interpreted::Unreadable(format!("response body not understood: {e}")),
        }
    }

    fn prepare_resend(&mut self, resend: Resend) -> Result<(), FieldError> {
        match resend {
            Resend::Undelivered { .. } => Ok(()),
            Resend::Fresh { new_key, .. } => {
                let mut message = self.message.clone();
                message.shop_transaction_id = new_key;
                self.request = message.to_http(self.merchant)?;
                self.message = message;
                Ok(())
            }
        }
    }
}

/// The status of one WeChat Pay cancellation. `#[non_exhaustive]`: KICC adds fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FindResponse {
    /// `resCd`.
    pub res_cd: String,
    /// `resMsg`.
    #[serde(default)]
    pub res_msg: String,
    /// `shopTransactionId`, echoed.
    #[serde(default)]
    pub shop_transaction_id: String,
    /// `mallId`.
    #[serde(default)]
    pub mall_id: String,
    /// `pgCno`.
    #[serde(default)]
    pub pg_cno: String,
    /// `cancelPgCno`.
    #[serde(default)]
    pub cancel_pg_cno: String,
    /// `transactionDate`.
    #[serde(default)]
    pub transaction_date: String,
    /// `cancelStatus`: TS01 approved (not cancelled yet), TS02 cancelled, TS06 partially
    /// cancelled, TS12 network cancel (void).
    #[serde(default)]
    pub cancel_status: Option<TransactionStatus>,
    /// `resDetailMsg`, URL-encoded.
    #[serde(default)]
    pub res_detail_msg: String,
    /// `amountInfo { currency, totAmount }`.
    #[serde(default)]
    pub amount_info: Option<ResponseAmountInfo>,
}

kicc_core::kicc_response!(
    FindResponse,
    detail: |r| &r.res_detail_msg,
    pg_cno: |r| &r.pg_cno,
    amount: |r| r.amount_info.as_ref().and_then(|a| a.tot_amount),
    date: |r| &r.transaction_date,
    cancel: |r| &r.cancel_pg_cno
);

impl FindResponse {
    /// `resDetailMsg`, form-decoded.
    pub fn detail(&self) -> String {
        kicc_core::wire::decode_form_value(&self.res_detail_msg).into_owned()
    }

    /// Whether the answer says the cancel FAILED (a `resCd` other than `0000`).
    pub fn cancel_failed(&self) -> bool {
        self.res_cd != kicc_core::SUCCESS
    }

    /// Whether the cancellation is final and money went back (TS02, TS06, TS12).
    pub fn is_cancelled(&self) -> bool {
        !self.cancel_failed()
            && matches!(
                self.cancel_status,
                Some(
                    TransactionStatus::Cancelled
                        | TransactionStatus::PartiallyCancelled
                        | TransactionStatus::NetworkCancelled
                )
            )
    }
}
