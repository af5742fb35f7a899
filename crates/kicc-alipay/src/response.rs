//! The Alipay cancel response.

use kicc_core::message::{interpret_http, KiccResponse};
use kicc_core::retry::Interpreted;
use kicc_core::wire::ResponseAmountInfo;
use kicc_core::ShopTransactionId;

/// The answer to an Alipay cancel. Unknown fields are ignored; amounts may be numbers or strings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviseResponse {
    /// `resCd`: `0000` on success.
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
    /// `pgCno`: the original payment.
    #[serde(default)]
    pub pg_cno: String,
    /// `cancelPgCno`: the cancellation.
    #[serde(default)]
    pub cancel_pg_cno: String,
    /// `transactionDate`, `yyyyMMddHHmmss`.
    #[serde(default)]
    pub transaction_date: String,
    /// `amountInfo { currency, totAmount }`: the cancelled amount (USD in cents).
    #[serde(default)]
    pub amount_info: Option<ResponseAmountInfo>,
}

impl KiccResponse for ReviseResponse {
    fn res_cd(&self) -> &str {
        &self.res_cd
    }
    fn res_msg(&self) -> &str {
        &self.res_msg
    }
    fn echoed_key(&self) -> &str {
        &self.shop_transaction_id
    }
}

impl ReviseResponse {
    /// Reads an HTTP response to a request keyed `sent_key`: success, the gateway's code, or
    /// unreadable (which includes any status other than 200: `resCd` means something only on 200).
    pub fn read(status: u16, body: &[u8], sent_key: &ShopTransactionId) -> Interpreted<Self> {
        interpret_http(status, body, sent_key)
    }
}
