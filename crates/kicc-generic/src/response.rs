//! The generic cancel response.

use kicc_core::wire::opt_amount;
use kicc_core::TransactionStatus;

/// The answer to a generic revise request. Amounts are accepted as numbers or strings (the
/// documentation shows strings, real responses send numbers); unknown fields are ignored.
///
/// `remain_amount` is the balance AFTER this cancel (a full cancel answers `0`).
///
/// `#[non_exhaustive]`, like the nested answer types: KICC adds fields, and so will this type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
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
    /// `oriPgCno`: the original payment.
    #[serde(default)]
    pub ori_pg_cno: String,
    /// `cancelPgCno`: the cancellation.
    #[serde(default)]
    pub cancel_pg_cno: String,
    /// `cancelAmount`.
    #[serde(default, deserialize_with = "opt_amount")]
    pub cancel_amount: Option<u64>,
    /// `remainAmount`: the balance left (returned if requested).
    #[serde(default, deserialize_with = "opt_amount")]
    pub remain_amount: Option<u64>,
    /// `transactionDate`, `yyyyMMddHHmmss`.
    #[serde(default)]
    pub transaction_date: String,
    /// `statusCode` (TS02 cancelled, TS06 partially cancelled, TS04 captured, ...).
    #[serde(default)]
    pub status_code: Option<TransactionStatus>,
    /// `statusMessage`.
    #[serde(default)]
    pub status_message: String,
    /// `escrowUsed` (`Y`/`N`).
    #[serde(default)]
    pub escrow_used: String,
    /// `multiCardAmount`: Payco card part.
    #[serde(default, deserialize_with = "opt_amount")]
    pub multi_card_amount: Option<u64>,
    /// `multiPntAmount`: Payco points part.
    #[serde(default, deserialize_with = "opt_amount")]
    pub multi_pnt_amount: Option<u64>,
    /// `multiCponAmount`: Payco coupon part.
    #[serde(default, deserialize_with = "opt_amount")]
    pub multi_cpon_amount: Option<u64>,
    /// `reviseInfo`.
    #[serde(default)]
    pub revise_info: Option<ReviseInfo>,
    /// `resDetailMsg`, if the gateway adds one (form-encoded; see [`ReviseResponse::detail`]).
    #[serde(default)]
    pub res_detail_msg: String,
}

impl ReviseResponse {
    /// `resDetailMsg`, form-decoded.
    pub fn detail(&self) -> String {
        kicc_core::wire::decode_form_value(&self.res_detail_msg).into_owned()
    }

    /// The `shopTransactionId` a body echoes, if it is readable JSON with one.
    pub(crate) fn echoed_in(body: &[u8]) -> Option<String> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Echo {
            shop_transaction_id: Option<String>,
        }
        serde_json::from_slice::<Echo>(body)
            .ok()
            .and_then(|e| e.shop_transaction_id)
    }
}

/// `reviseInfo`: details of the cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ReviseInfo {
    /// `payMethodTypeCode`: 11 card, 21 bank transfer, 22 virtual account, 31 mobile, 41
    /// points, 50 prepaid, 60 easy pay, 81 billing key.
    #[serde(default)]
    pub pay_method_type_code: String,
    /// `approvalNo`.
    #[serde(default)]
    pub approval_no: String,
    /// `approvalDate`: the cancellation time, `yyyyMMddHHmmss`.
    #[serde(default)]
    pub approval_date: String,
    /// `cardInfo`.
    #[serde(default)]
    pub card_info: Option<CardInfo>,
    /// `cashReceiptInfo`.
    #[serde(default)]
    pub cash_receipt_info: Option<CashReceiptInfo>,
}

/// `reviseInfo.cardInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CardInfo {
    /// `couponAmount`: the cancelled instant discount.
    #[serde(default, deserialize_with = "opt_amount")]
    pub coupon_amount: Option<u64>,
}

/// `reviseInfo.cashReceiptInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CashReceiptInfo {
    /// `resCd` of the cash receipt cancellation.
    #[serde(default)]
    pub res_cd: String,
    /// `resMsg`.
    #[serde(default)]
    pub res_msg: String,
    /// `approvalNo`.
    #[serde(default)]
    pub approval_no: String,
    /// `cancelDate`, `yyyyMMddHHmmss`.
    #[serde(default)]
    pub cancel_date: String,
}

kicc_core::kicc_response!(
    ReviseResponse,
    detail: |r| &r.res_detail_msg,
    pg_cno: |r| &r.ori_pg_cno,
    amount: |r| r.cancel_amount,
    date: |r| &r.transaction_date,
    cancel: |r| &r.cancel_pg_cno
);
