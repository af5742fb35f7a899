//! The WeChat Pay cancel request: the caller's intent ([`CancelRequest`]) and the exact message
//! sent ([`ReviseRequest`]).

use std::time::SystemTime;

use bytes::Bytes;
use kicc_core::message::{to_json, FixedExchange, ReviseHead};
use kicc_core::wire::AmountInfo;
use kicc_core::{
    Channel, FieldError, KoreaDate, Memo, Merchant, Money, NotifyUrl, PgCno, RegId, ReviseTypeCode,
    ShopTransactionId,
};

use crate::response::ReviseResponse;

/// The API path, below the environment's base URL.
pub const PATH: &str = "/api/trades/wechatpay/revise";

/// The field the partial amount is reported under.
const AMOUNT_FIELD: &str = "amountInfo.totAmount";

/// What to cancel: a full cancel, or a partial one with its amount and currency.
///
/// Holds only values that pass every rule of the WeChat Pay cancel API: `reviseTypeCode` 40 or
/// 32, an amount exactly when partial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pg_cno: PgCno,
    code: ReviseTypeCode,
    amount: Option<Money>,
    memo: Option<Memo>,
    reg_id: Option<RegId>,
    notify_url: Option<NotifyUrl>,
}

impl CancelRequest {
    /// Cancels the whole payment (`reviseTypeCode` 40).
    pub fn full(pg_cno: PgCno) -> Self {
        CancelRequest {
            pg_cno,
            code: ReviseTypeCode::Full,
            amount: None,
            memo: None,
            reg_id: None,
            notify_url: None,
        }
    }

    /// Cancels `amount` of the payment (`reviseTypeCode` 32). USD amounts are cents:
    /// `Money::parse_major("amount", Currency::Usd, "12.03")` is 1203.
    pub fn partial(pg_cno: PgCno, amount: Money) -> Self {
        CancelRequest {
            pg_cno,
            code: ReviseTypeCode::PartialCard,
            amount: Some(amount),
            memo: None,
            reg_id: None,
            notify_url: None,
        }
    }

    /// A cancel with an explicit code; checks the code is 40 or 32 and that an amount is
    /// given exactly when the code is partial.
    pub fn with_code(
        pg_cno: PgCno,
        code: ReviseTypeCode,
        amount: Option<Money>,
    ) -> Result<Self, FieldError> {
        Channel::WeChat.check(code)?;
        code.check_amount(AMOUNT_FIELD, amount.as_ref())?;
        Ok(CancelRequest {
            pg_cno,
            code,
            amount,
            memo: None,
            reg_id: None,
            notify_url: None,
        })
    }

    /// Reads a request given as text, e.g. from a command line: `code` defaults to 40, or 32
    /// when `amount` (major units, `"12.03"`) is given, which needs `currency` (`KRW`/`USD`).
    pub fn from_text(
        pg_cno: &str,
        code: Option<&str>,
        amount: Option<&str>,
        currency: Option<&str>,
    ) -> Result<Self, FieldError> {
        let pg_cno = PgCno::new(pg_cno)?;
        let code = Channel::WeChat.resolve_code(code, amount.is_some())?;
        let amount = Money::parse_input(AMOUNT_FIELD, amount, currency)?;
        Self::with_code(pg_cno, code, amount)
    }

    /// Adds the reason for the cancel (`memo`, at most 400 bytes).
    pub fn memo(mut self, memo: Memo) -> Self {
        self.memo = Some(memo);
        self
    }

    /// Adds the requestor's ID (`regId`, at most 40 bytes).
    pub fn reg_id(mut self, reg_id: RegId) -> Self {
        self.reg_id = Some(reg_id);
        self
    }

    /// Where KICC posts the result (`notifyUrl`). Without it the result is only learned by
    /// the status query (`find`).
    pub fn notify_url(mut self, url: NotifyUrl) -> Self {
        self.notify_url = Some(url);
        self
    }

    /// The payment to cancel.
    pub fn pg_cno(&self) -> &PgCno {
        &self.pg_cno
    }

    /// The `reviseTypeCode`.
    pub fn code(&self) -> ReviseTypeCode {
        self.code
    }

    /// The partial amount, if any.
    pub fn amount(&self) -> Option<Money> {
        self.amount
    }

    /// The message for this cancel from `merchant`, keyed `key`, made at `now`
    /// (`cancelReqDate` is the Korea date of `now`). Keep the message: a retry must resend
    /// it unchanged, even after midnight. Success only means KICC ACCEPTED the cancel.
    pub fn message(
        &self,
        merchant: &Merchant,
        key: ShopTransactionId,
        now: SystemTime,
    ) -> ReviseRequest {
        ReviseRequest {
            head: ReviseHead::new(
                merchant,
                self.pg_cno.clone(),
                self.code,
                key,
                KoreaDate::of(now),
            ),
            notify_url: self.notify_url.clone(),
            memo: self.memo.clone(),
            reg_id: self.reg_id.clone(),
            amount_info: self.amount.map(|m| AmountInfo {
                currency: m.currency,
                tot_amount: m.amount,
            }),
        }
    }
}

/// The exact WeChat Pay revise message, as sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", try_from = "Unchecked")]
pub struct ReviseRequest {
    #[serde(flatten)]
    head: ReviseHead,
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_url: Option<NotifyUrl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memo: Option<Memo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reg_id: Option<RegId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_info: Option<AmountInfo>,
}

/// The message as read, before the cross-field rules are checked.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Unchecked {
    #[serde(flatten)]
    head: ReviseHead,
    notify_url: Option<NotifyUrl>,
    memo: Option<Memo>,
    reg_id: Option<RegId>,
    amount_info: Option<AmountInfo>,
}

impl TryFrom<Unchecked> for ReviseRequest {
    type Error = FieldError;
    fn try_from(u: Unchecked) -> Result<Self, FieldError> {
        u.head.check_channel(Channel::WeChat)?;
        u.head
            .revise_type_code()
            .check_amount(AMOUNT_FIELD, u.amount_info.as_ref())?;
        Ok(ReviseRequest {
            head: u.head,
            notify_url: u.notify_url,
            memo: u.memo,
            reg_id: u.reg_id,
            amount_info: u.amount_info,
        })
    }
}

impl ReviseRequest {
    /// The fields every revise request shares (key, date, `msgAuthValue`, ...).
    pub fn head(&self) -> &ReviseHead {
        &self.head
    }

    /// `notifyUrl`.
    pub fn notify_url(&self) -> Option<&NotifyUrl> {
        self.notify_url.as_ref()
    }

    /// `memo`.
    pub fn memo(&self) -> Option<&Memo> {
        self.memo.as_ref()
    }

    /// `regId`.
    pub fn reg_id(&self) -> Option<&RegId> {
        self.reg_id.as_ref()
    }

    /// `amountInfo`.
    pub fn amount_info(&self) -> Option<&AmountInfo> {
        self.amount_info.as_ref()
    }

    /// The body, as sent.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }

    /// Reads and checks a message (e.g. a logged one, or in a server).
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The HTTP request to `merchant`'s environment.
    pub fn to_http(&self, merchant: &Merchant) -> Result<http::Request<Bytes>, FieldError> {
        merchant.post_json(PATH, self.to_json())
    }

    /// The exchange that sends this message (identically on every retry: same key, same
    /// `cancelReqDate`) and reads the acceptance.
    pub fn exchange(
        &self,
        merchant: &Merchant,
    ) -> Result<FixedExchange<ReviseResponse>, FieldError> {
        Ok(FixedExchange::new(
            Channel::WeChat,
            self.to_http(merchant)?,
            self.head.shop_transaction_id().clone(),
        ))
    }
}
