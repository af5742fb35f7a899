//! The cancel message Alipay and WeChat Pay share through KICC.
//!
//! Both APIs take the same fields (`reviseTypeCode` 40 or 32, `amountInfo {currency,
//! totAmount}` exactly when partial, `memo`, `regId`); WeChat Pay adds `notifyUrl`. The rules
//! live here once; `kicc-alipay` and `kicc-wechat` name them for their API with a marker type
//! ([`WalletApi`]) and re-export them as `CancelRequest`, `ReviseRequest` and `ReviseResponse`.

use std::fmt;
use std::marker::PhantomData;
use std::time::SystemTime;

use bytes::Bytes;

use crate::cancel_text::CancelText;
use crate::date::KoreaDate;
use crate::endpoint::Merchant;
use crate::field::{FieldError, Rule};
use crate::message::{to_json, FixedExchange, ReviseHead};
use crate::money::Money;
use crate::revise::{Channel, ReviseTypeCode};
use crate::text::{Memo, NotifyUrl, PgCno, RegId, ShopTransactionId};
use crate::wire::{AmountInfo, ResponseAmountInfo};

/// One of the wallet APIs (a marker type defined by its channel crate).
pub trait WalletApi: fmt::Debug + Clone + Copy + Eq + Send + Sync + 'static {
    /// The channel, for its code set and retry rule.
    const CHANNEL: Channel;
    /// The API path below the base URL.
    const PATH: &'static str;
    /// Whether the API takes `notifyUrl`.
    const TAKES_NOTIFY_URL: bool = false;
}

/// A wallet API whose result is posted to `notifyUrl` (WeChat Pay).
pub trait TakesNotifyUrl: WalletApi {}

/// The field partial amounts are reported under.
const AMOUNT_FIELD: &str = "amountInfo.totAmount";

/// What to cancel on wallet API `C`: a full cancel, or a partial one with its amount and
/// currency. Holds only values that pass every rule of the API: `reviseTypeCode` 40 or 32,
/// an amount exactly when partial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletCancel<C: WalletApi> {
    pg_cno: PgCno,
    code: ReviseTypeCode,
    amount: Option<Money>,
    memo: Option<Memo>,
    reg_id: Option<RegId>,
    notify_url: Option<NotifyUrl>,
    api: PhantomData<C>,
}

impl<C: WalletApi> WalletCancel<C> {
    fn of(pg_cno: PgCno, code: ReviseTypeCode, amount: Option<Money>) -> Self {
        WalletCancel {
            pg_cno,
            code,
            amount,
            memo: None,
            reg_id: None,
            notify_url: None,
            api: PhantomData,
        }
    }

    /// Cancels the whole payment (`reviseTypeCode` 40).
    pub fn full(pg_cno: PgCno) -> Self {
        Self::of(pg_cno, ReviseTypeCode::Full, None)
    }

    /// Cancels `amount` of the payment (`reviseTypeCode` 32). USD amounts are cents:
    /// `Money::parse_major("amount", Currency::Usd, "12.03")` is 1203.
    pub fn partial(pg_cno: PgCno, amount: Money) -> Self {
        Self::of(pg_cno, ReviseTypeCode::PartialCard, Some(amount))
    }

    /// A cancel with an explicit code; checks the code is 40 or 32 and that an amount is
    /// given exactly when the code is partial.
    pub fn with_code(
        pg_cno: PgCno,
        code: ReviseTypeCode,
        amount: Option<Money>,
    ) -> Result<Self, FieldError> {
        C::CHANNEL.check(code)?;
        code.check_amount(AMOUNT_FIELD, amount.as_ref())?;
        Ok(Self::of(pg_cno, code, amount))
    }

    /// Reads a request given as text, e.g. from a command line: the code defaults to 40, or
    /// 32 when an amount (major units, `"12.03"`) is given, which needs a currency
    /// (`KRW`/`USD`).
    ///
    /// ```
    /// use kicc_core::wallet::{WalletApi, WalletCancel};
    /// use kicc_core::{CancelText, Channel, ReviseTypeCode};
    ///
    /// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    /// struct Wallet;
    /// impl WalletApi for Wallet {
    ///     const CHANNEL: Channel = Channel::Alipay;
    ///     const PATH: &'static str = "/api/trades/alipay/revise";
    /// }
    ///
    /// let text = CancelText::new("PG20261121000001").amount("12.03").currency("USD");
    /// let cancel = WalletCancel::<Wallet>::from_text(text)?;
    /// assert_eq!(cancel.code(), ReviseTypeCode::PartialCard);
    /// assert_eq!(cancel.amount().map(|m| m.amount.minor_units()), Some(1203));
    /// # Ok::<(), kicc_core::FieldError>(())
    /// ```
    pub fn from_text(text: CancelText<'_>) -> Result<Self, FieldError> {
        let pg_cno = text.parse_pg_cno()?;
        let code = text.parse_code(C::CHANNEL)?;
        let amount = text.money_as(AMOUNT_FIELD)?;
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
    /// (`cancelReqDate` is the Korea date of `now`). Keep the message: a retry must resend it
    /// unchanged, even after midnight.
    pub fn message(
        &self,
        merchant: &Merchant,
        key: ShopTransactionId,
        now: SystemTime,
    ) -> WalletRevise<C> {
        WalletRevise {
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
            api: PhantomData,
        }
    }
}

impl<C: TakesNotifyUrl> WalletCancel<C> {
    /// Where KICC posts the result (`notifyUrl`). Without it the result is only learned by
    /// the status query.
    pub fn notify_url(mut self, url: NotifyUrl) -> Self {
        self.notify_url = Some(url);
        self
    }
}

/// The exact wallet revise message for API `C`, as sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(
    rename_all = "camelCase",
    try_from = "UncheckedWallet",
    bound(serialize = "", deserialize = "")
)]
pub struct WalletRevise<C: WalletApi> {
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
    #[serde(skip)]
    api: PhantomData<C>,
}

/// The message as read, before the cross-field rules are checked.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UncheckedWallet {
    #[serde(flatten)]
    head: ReviseHead,
    notify_url: Option<NotifyUrl>,
    memo: Option<Memo>,
    reg_id: Option<RegId>,
    amount_info: Option<AmountInfo>,
}

impl<C: WalletApi> TryFrom<UncheckedWallet> for WalletRevise<C> {
    type Error = FieldError;
    fn try_from(u: UncheckedWallet) -> Result<Self, FieldError> {
        u.head.check_channel(C::CHANNEL)?;
        u.head
            .revise_type_code()
            .check_amount(AMOUNT_FIELD, u.amount_info.as_ref())?;
        if u.notify_url.is_some() && !C::TAKES_NOTIFY_URL {
            return Err(FieldError::new(
                NotifyUrl::FIELD,
                Rule::Other("is not part of this API"),
            ));
        }
        Ok(WalletRevise {
            head: u.head,
            notify_url: u.notify_url,
            memo: u.memo,
            reg_id: u.reg_id,
            amount_info: u.amount_info,
            api: PhantomData,
        })
    }
}

impl<C: WalletApi> WalletRevise<C> {
    /// The fields every revise request shares (key, date, `msgAuthValue`, ...).
    pub fn head(&self) -> &ReviseHead {
        &self.head
    }

    /// `notifyUrl` (WeChat Pay only).
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

    /// Reads and checks a message (e.g. a stored one, or in a server).
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The HTTP request to `merchant`'s environment.
    pub fn to_http(&self, merchant: &Merchant) -> Result<http::Request<Bytes>, FieldError> {
        merchant.post_json(C::PATH, self.to_json())
    }

    /// The exchange that sends this message (identically on every retry: same key, same
    /// `cancelReqDate`) and reads the answer.
    pub fn exchange(
        &self,
        merchant: &Merchant,
    ) -> Result<FixedExchange<WalletReviseResponse>, FieldError> {
        let amount = self.amount_info.map(|a| a.tot_amount.minor_units());
        Ok(FixedExchange::new(
            C::CHANNEL,
            self.to_http(merchant)?,
            &self.head,
            amount,
        ))
    }

    /// [`WalletRevise::exchange`] for a message that is not kept (e.g. a cancel sent at once):
    /// its key and `pgCno` move into the exchange instead of being copied.
    pub fn into_exchange(
        self,
        merchant: &Merchant,
    ) -> Result<FixedExchange<WalletReviseResponse>, FieldError> {
        let amount = self.amount_info.map(|a| a.tot_amount.minor_units());
        let request = self.to_http(merchant)?;
        Ok(FixedExchange::from_head(
            C::CHANNEL,
            request,
            self.head,
            amount,
        ))
    }
}

/// The answer to a wallet cancel. Unknown fields are ignored; amounts may be numbers or
/// strings. For WeChat Pay, `resCd` 0000 means ACCEPTED: the result comes later.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WalletReviseResponse {
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
    /// `resDetailMsg` (WeChat Pay): the wallet's own detail, URL-encoded (see
    /// [`WalletReviseResponse::detail`]).
    #[serde(default)]
    pub res_detail_msg: String,
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

crate::kicc_response!(
    WalletReviseResponse,
    detail: |r| &r.res_detail_msg,
    pg_cno: |r| &r.pg_cno,
    amount: |r| r.amount_info.as_ref().and_then(|a| a.tot_amount),
    date: |r| &r.transaction_date,
    cancel: |r| &r.cancel_pg_cno
);

impl WalletReviseResponse {
    /// `resDetailMsg`, URL-decoded (see [`crate::wire::decode_form_value`]).
    pub fn detail(&self) -> String {
        crate::wire::decode_form_value(&self.res_detail_msg).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{BaseUrl, Environment};
    use crate::money::Currency;
    use crate::retry::Exchange;
    use crate::secret::SecretKey;
    use crate::text::MallId;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Wallet;
    impl WalletApi for Wallet {
        const CHANNEL: Channel = Channel::Alipay;
        const PATH: &'static str = "/api/trades/alipay/revise";
    }

    #[test]
    fn an_exchange_taken_from_the_message_is_the_exchange_of_a_kept_one() {
        let merchant = Merchant::new(
            Environment::Custom(BaseUrl::new("http://127.0.0.1:8780").unwrap()),
            MallId::new("T0000001").unwrap(),
            SecretKey::new("k").unwrap(),
        );
        let pg_cno = PgCno::new("PG20261121000001").unwrap();
        let amount = Money::parse_major("amount", Currency::Usd, "12.03").unwrap();
        for cancel in [
            WalletCancel::<Wallet>::full(pg_cno.clone()),
            WalletCancel::<Wallet>::partial(pg_cno.clone(), amount),
        ] {
            let key = ShopTransactionId::new("K01JD0000000000000000000001").unwrap();
            let message = cancel.message(&merchant, key, SystemTime::now());
            let kept = message.exchange(&merchant).unwrap();
            let taken = message.clone().into_exchange(&merchant).unwrap();
            let (a, b) = (kept.request(), taken.request());
            assert_eq!(
                (a.method(), a.uri(), a.headers(), a.body()),
                (b.method(), b.uri(), b.headers(), b.body())
            );
            assert_eq!(a.body().as_ref(), message.to_json().as_slice());
            assert_eq!(
                taken.shop_transaction_id(),
                message.head().shop_transaction_id()
            );
            assert_eq!(taken.request_date(), Some(message.head().cancel_req_date()));
            assert_eq!(taken.expected(), kept.expected());
            assert_eq!(
                taken.expected().amount,
                cancel.amount().map(|m| m.amount.minor_units())
            );
            assert_eq!(taken.channel(), Channel::Alipay);
        }
    }
}
