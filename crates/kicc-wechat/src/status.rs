//! The cancellation status query (`POST /api/trades/wechatpay/find`).

use bytes::Bytes;
use kicc_core::message::{to_json, FixedExchange};
use kicc_core::wire::ResponseAmountInfo;
use kicc_core::{
    Channel, FieldError, MallId, Merchant, PgCno, ShopTransactionId, TransactionStatus,
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
            mall_id: merchant.mall_id.clone(),
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

    /// The exchange that sends this query and reads the answer.
    pub fn exchange(&self, merchant: &Merchant) -> Result<FixedExchange<FindResponse>, FieldError> {
        Ok(FixedExchange::new(
            Channel::WeChat,
            self.to_http(merchant)?,
            self.shop_transaction_id.clone(),
        ))
    }
}

/// The status of one WeChat Pay cancellation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
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

kicc_core::kicc_response!(FindResponse);

impl FindResponse {
    /// Whether the cancellation is final and money went back (TS02, TS06, TS12).
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self.cancel_status,
            Some(
                TransactionStatus::Cancelled
                    | TransactionStatus::PartiallyCancelled
                    | TransactionStatus::NetworkCancelled
            )
        )
    }
}
