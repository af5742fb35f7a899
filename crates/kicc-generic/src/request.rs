//! The generic cancel request: the caller's intent ([`CancelRequest`]) and the exact message
//! sent ([`ReviseRequest`]).

use std::time::SystemTime;

use bytes::Bytes;
use kicc_core::message::{to_json, ReviseHead};
use kicc_core::{
    Amount, CancelText, Channel, ClientId, ClientIp, FieldError, KoreaDate, Merchant, PgCno,
    ProductPgCno, ReviseMessage, ReviseTypeCode, Rule, SellerId, ShopTransactionId,
};

/// The API path, below the environment's base URL.
pub const PATH: &str = "/api/trades/revise";

/// The generic API's limit for `pgCno`, in bytes (the Alipay / WeChat Pay APIs allow 60).
pub const PG_CNO_MAX_BYTES: usize = 20;

/// How the payment was made; it decides the partial-cancel code, so nobody picks 32 or 33
/// by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentMethod {
    /// Credit card, including easy pay: partial code `32`.
    Card,
    /// Bank transfer: partial code `33`.
    BankTransfer,
    /// Mobile phone payment: partial code `33`.
    Mobile,
}

impl PaymentMethod {
    /// The partial-cancel code for this method.
    pub fn partial_code(self) -> ReviseTypeCode {
        match self {
            PaymentMethod::Card => ReviseTypeCode::PartialCard,
            PaymentMethod::BankTransfer | PaymentMethod::Mobile => {
                ReviseTypeCode::PartialTransferOrMobile
            }
        }
    }
}

/// What `remainAmount` means on the wire.
///
/// KICC's English documentation calls it "remaining amount", the Korean one "cancellable
/// amount", and public integrations disagree whether it is the balance before or after this
/// cancel. This SDK's default is [`RemainAmountConvention::BalanceBeforeCancel`] (the
/// Korean reading, and what the sandbox checks); it is an inference, so it can be changed
/// per request. You always give the balance BEFORE the cancel; the convention decides what
/// is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RemainAmountConvention {
    /// Send the cancellable balance before this cancel.
    #[default]
    BalanceBeforeCancel,
    /// Send the balance left after this cancel (before minus amount).
    BalanceAfterCancel,
}

/// Complex-tax information (`taxInfo`): all three amounts, always together.
///
/// Built with [`TaxInfo::new`], which checks each amount; reading one from JSON applies the
/// same check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", try_from = "TaxInfoWire")]
pub struct TaxInfo {
    taxation_amount: u64,
    tax_free_amount: u64,
    vat_amount: u64,
}

impl TaxInfo {
    /// The three amounts, in won. Each must be at most `Amount::MAX`.
    pub fn new(
        taxation_amount: u64,
        tax_free_amount: u64,
        vat_amount: u64,
    ) -> Result<Self, FieldError> {
        for (field, v) in [
            ("taxInfo.taxationAmount", taxation_amount),
            ("taxInfo.taxFreeAmount", tax_free_amount),
            ("taxInfo.vatAmount", vat_amount),
        ] {
            if v > Amount::MAX {
                return Err(FieldError::new(
                    field,
                    Rule::TooLarge {
                        max_minor_units: Amount::MAX,
                    },
                ));
            }
        }
        Ok(TaxInfo {
            taxation_amount,
            tax_free_amount,
            vat_amount,
        })
    }

    /// `taxationAmount`: the cancelled taxable amount, in won.
    pub fn taxation_amount(&self) -> u64 {
        self.taxation_amount
    }

    /// `taxFreeAmount`: the cancelled tax-free amount, in won.
    pub fn tax_free_amount(&self) -> u64 {
        self.tax_free_amount
    }

    /// `vatAmount`: the cancelled VAT, in won.
    pub fn vat_amount(&self) -> u64 {
        self.vat_amount
    }
}

/// `taxInfo` as read, before [`TaxInfo::new`] checks it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaxInfoWire {
    taxation_amount: u64,
    tax_free_amount: u64,
    vat_amount: u64,
}

impl TryFrom<TaxInfoWire> for TaxInfo {
    type Error = FieldError;

    fn try_from(wire: TaxInfoWire) -> Result<Self, FieldError> {
        TaxInfo::new(wire.taxation_amount, wire.tax_free_amount, wire.vat_amount)
    }
}

/// Split-settlement basket information (`basketInfo`); giving it sends `basketUsed = "Y"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BasketInfo {
    /// `productPgCno`: the PG transaction ID of the product.
    pub product_pg_cno: ProductPgCno,
    /// `sellerId`.
    pub seller_id: SellerId,
}

impl BasketInfo {
    /// The product's PG transaction ID and its seller.
    pub fn new(product_pg_cno: ProductPgCno, seller_id: SellerId) -> Self {
        BasketInfo {
            product_pg_cno,
            seller_id,
        }
    }
}

/// What to do to a payment: cancel it fully or partly, capture it, or cancel a cash receipt.
///
/// Holds only values that pass every rule of the generic revise API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pg_cno: PgCno,
    code: ReviseTypeCode,
    amount: Option<Amount>,
    balance_before: Option<Amount>,
    convention: RemainAmountConvention,
    reason: Option<ReviseMessage>,
    client_ip: Option<ClientIp>,
    client_id: Option<ClientId>,
    tax_info: Option<TaxInfo>,
    basket_info: Option<BasketInfo>,
}

fn check_pg_cno(pg_cno: &PgCno) -> Result<(), FieldError> {
    let len = pg_cno.as_str().len();
    if len > PG_CNO_MAX_BYTES {
        return Err(FieldError::new(
            PgCno::FIELD,
            Rule::TooLong {
                max_bytes: PG_CNO_MAX_BYTES,
                actual_bytes: len,
            },
        ));
    }
    Ok(())
}

impl CancelRequest {
    /// A request with an explicit code: checks `pgCno` fits 20 bytes, the code is one of 20,
    /// 32, 33, 40, 51, 52, and an amount is given exactly when the code needs one.
    pub fn with_code(
        pg_cno: PgCno,
        code: ReviseTypeCode,
        amount: Option<Amount>,
    ) -> Result<Self, FieldError> {
        check_pg_cno(&pg_cno)?;
        Channel::Generic.check(code)?;
        code.check_amount("amount", amount.as_ref())?;
        Ok(CancelRequest {
            pg_cno,
            code,
            amount,
            balance_before: None,
            convention: RemainAmountConvention::default(),
            reason: None,
            client_ip: None,
            client_id: None,
            tax_info: None,
            basket_info: None,
        })
    }

    /// Cancels the whole payment (`40`; also cancels an issued virtual account).
    pub fn full(pg_cno: PgCno) -> Result<Self, FieldError> {
        Self::with_code(pg_cno, ReviseTypeCode::Full, None)
    }

    /// Cancels `amount` won of a payment made by `method` (`32` for card, `33` for bank
    /// transfer and mobile).
    pub fn partial(
        pg_cno: PgCno,
        method: PaymentMethod,
        amount: Amount,
    ) -> Result<Self, FieldError> {
        Self::with_code(pg_cno, method.partial_code(), Some(amount))
    }

    /// Captures an authorized payment (`20`), optionally only `amount` of it.
    pub fn capture(pg_cno: PgCno, amount: Option<Amount>) -> Result<Self, FieldError> {
        Self::with_code(pg_cno, ReviseTypeCode::Capture, amount)
    }

    /// Cancels a standalone cash receipt (`51`).
    pub fn cash_receipt(pg_cno: PgCno) -> Result<Self, FieldError> {
        Self::with_code(pg_cno, ReviseTypeCode::CashReceipt, None)
    }

    /// Partially cancels a standalone cash receipt (`52`).
    pub fn cash_receipt_partial(pg_cno: PgCno, amount: Amount) -> Result<Self, FieldError> {
        Self::with_code(pg_cno, ReviseTypeCode::CashReceiptPartial, Some(amount))
    }

    /// Reads a request given as text (e.g. a command line): the code defaults to 40, or 32
    /// when an amount is given; amounts are whole won, and a currency, if given, must be KRW.
    ///
    /// ```
    /// use kicc_core::{CancelText, ReviseTypeCode};
    /// use kicc_generic::CancelRequest;
    ///
    /// let request = CancelRequest::from_text(CancelText::new("PG20261121000001").amount("4000"))?;
    /// assert_eq!(request.code(), ReviseTypeCode::PartialCard);
    /// assert_eq!(request.amount().map(|a| a.minor_units()), Some(4000));
    /// # Ok::<(), kicc_core::FieldError>(())
    /// ```
    pub fn from_text(text: CancelText<'_>) -> Result<Self, FieldError> {
        let pg_cno = text.parse_pg_cno()?;
        let code = text.parse_code(Channel::Generic)?;
        let amount = text.parse_krw()?;
        Self::with_code(pg_cno, code, amount)
    }

    /// Sends `remainAmount` for KICC to check: give the cancellable balance BEFORE this
    /// cancel; only for partial codes, and the amount must not exceed it.
    pub fn remain_amount(mut self, balance_before: Amount) -> Result<Self, FieldError> {
        let amount = match (self.code.is_partial(), self.amount) {
            (true, Some(a)) => a,
            _ => {
                return Err(FieldError::new(
                    "remainAmount",
                    Rule::Other("is only used with a partial cancel"),
                ))
            }
        };
        if amount > balance_before {
            return Err(FieldError::new(
                "amount",
                Rule::ExceedsBalance {
                    balance: balance_before.minor_units(),
                },
            ));
        }
        self.balance_before = Some(balance_before);
        Ok(self)
    }

    /// Chooses what `remainAmount` means on the wire (see [`RemainAmountConvention`]).
    pub fn remain_amount_convention(mut self, convention: RemainAmountConvention) -> Self {
        self.convention = convention;
        self
    }

    /// The reason (`reviseMessage`, at most 100 bytes).
    pub fn reason(mut self, reason: ReviseMessage) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The requestor's IP (`clientIp`).
    pub fn client_ip(mut self, ip: ClientIp) -> Self {
        self.client_ip = Some(ip);
        self
    }

    /// The requestor's admin login ID (`clientId`).
    pub fn client_id(mut self, id: ClientId) -> Self {
        self.client_id = Some(id);
        self
    }

    /// Complex-tax amounts (`taxInfo`).
    pub fn tax_info(mut self, tax: TaxInfo) -> Self {
        self.tax_info = Some(tax);
        self
    }

    /// Split-settlement basket (`basketUsed = "Y"` and `basketInfo`).
    pub fn basket(mut self, basket: BasketInfo) -> Self {
        self.basket_info = Some(basket);
        self
    }

    /// The payment.
    pub fn pg_cno(&self) -> &PgCno {
        &self.pg_cno
    }

    /// The `reviseTypeCode`.
    pub fn code(&self) -> ReviseTypeCode {
        self.code
    }

    /// The amount, if any.
    pub fn amount(&self) -> Option<Amount> {
        self.amount
    }

    /// The first message for this request: keyed `key`, dated the Korea date of `now`.
    pub fn message(
        &self,
        merchant: &Merchant,
        key: ShopTransactionId,
        now: SystemTime,
    ) -> ReviseRequest {
        self.message_with(merchant, key, now, false)
    }

    /// A message, as a refund query (`refundQueryFlag = "Y"`) when `refund_query`. Used for
    /// the documented resend after a timeout or `VTIM` / `VT00`: a NEW key, today's date.
    pub fn message_with(
        &self,
        merchant: &Merchant,
        key: ShopTransactionId,
        now: SystemTime,
        refund_query: bool,
    ) -> ReviseRequest {
        let remain_amount = self.balance_before.map(|b| match self.convention {
            RemainAmountConvention::BalanceBeforeCancel => b.minor_units(),
            RemainAmountConvention::BalanceAfterCancel => b
                .minor_units()
                .saturating_sub(self.amount.map_or(0, Amount::minor_units)),
        });
        ReviseRequest {
            head: ReviseHead::new(
                merchant,
                self.pg_cno.clone(),
                self.code,
                key,
                KoreaDate::of(now),
            ),
            amount: self.amount,
            remain_amount,
            client_ip: self.client_ip.clone(),
            client_id: self.client_id.clone(),
            revise_message: self.reason.clone(),
            refund_query_flag: refund_query.then_some(RefundQueryFlag::Y),
            tax_info: self.tax_info,
            basket_used: self.basket_info.as_ref().map(|_| BasketUsed::Y),
            basket_info: self.basket_info.clone(),
        }
    }
}

/// `refundQueryFlag`: sent only as `"Y"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RefundQueryFlag {
    /// Query the result of an earlier refund whose answer was lost.
    Y,
}

/// `basketUsed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BasketUsed {
    /// Split settlement.
    Y,
    /// No split settlement.
    N,
}

/// The exact generic revise message, as sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", try_from = "Unchecked")]
pub struct ReviseRequest {
    #[serde(flatten)]
    head: ReviseHead,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<Amount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remain_amount: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip: Option<ClientIp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<ClientId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revise_message: Option<ReviseMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_query_flag: Option<RefundQueryFlag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tax_info: Option<TaxInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basket_used: Option<BasketUsed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basket_info: Option<BasketInfo>,
}

/// The message as read, before the cross-field rules are checked.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Unchecked {
    #[serde(flatten)]
    head: ReviseHead,
    amount: Option<Amount>,
    remain_amount: Option<u64>,
    client_ip: Option<ClientIp>,
    client_id: Option<ClientId>,
    revise_message: Option<ReviseMessage>,
    refund_query_flag: Option<RefundQueryFlag>,
    tax_info: Option<TaxInfo>,
    basket_used: Option<BasketUsed>,
    basket_info: Option<BasketInfo>,
}

impl TryFrom<Unchecked> for ReviseRequest {
    type Error = FieldError;
    fn try_from(u: Unchecked) -> Result<Self, FieldError> {
        check_pg_cno(u.head.pg_cno())?;
        u.head.check_channel(Channel::Generic)?;
        u.head
            .revise_type_code()
            .check_amount("amount", u.amount.as_ref())?;
        if (u.basket_used == Some(BasketUsed::Y)) != u.basket_info.is_some() {
            return Err(FieldError::new(
                "basketInfo",
                Rule::Other("is required exactly when basketUsed is \"Y\""),
            ));
        }
        Ok(ReviseRequest {
            head: u.head,
            amount: u.amount,
            remain_amount: u.remain_amount,
            client_ip: u.client_ip,
            client_id: u.client_id,
            revise_message: u.revise_message,
            refund_query_flag: u.refund_query_flag,
            tax_info: u.tax_info,
            basket_used: u.basket_used,
            basket_info: u.basket_info,
        })
    }
}

impl ReviseRequest {
    /// The fields every revise request shares (key, date, `msgAuthValue`, ...).
    pub fn head(&self) -> &ReviseHead {
        &self.head
    }

    /// `amount`.
    pub fn amount(&self) -> Option<Amount> {
        self.amount
    }

    /// `remainAmount`, as sent.
    pub fn remain_amount(&self) -> Option<u64> {
        self.remain_amount
    }

    /// Whether this is a refund query (`refundQueryFlag = "Y"`).
    pub fn is_refund_query(&self) -> bool {
        self.refund_query_flag.is_some()
    }

    /// `taxInfo`.
    pub fn tax_info(&self) -> Option<&TaxInfo> {
        self.tax_info.as_ref()
    }

    /// `basketInfo`.
    pub fn basket_info(&self) -> Option<&BasketInfo> {
        self.basket_info.as_ref()
    }

    /// `reviseMessage`.
    pub fn revise_message(&self) -> Option<&ReviseMessage> {
        self.revise_message.as_ref()
    }

    /// The body, as sent.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }

    /// Reads and checks a message.
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The HTTP request to `merchant`'s environment.
    pub fn to_http(&self, merchant: &Merchant) -> Result<http::Request<Bytes>, FieldError> {
        merchant.post_json(PATH, self.to_json())
    }
}
