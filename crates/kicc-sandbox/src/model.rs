//! Public data types: payments, their state, faults and webhook deliveries.

use std::fmt;

use serde::Serialize;

/// How a simulated payment was made; decides which cancel codes and endpoint apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Channel {
    /// Credit card (`payMethodTypeCode` 11): codes 40, 32 (and 20 when authorized only).
    Card,
    /// Bank transfer (21): codes 40, 33.
    Transfer,
    /// Mobile phone payment (31): codes 40, 33.
    Mobile,
    /// Standalone cash receipt: codes 51, 52.
    CashReceipt,
    /// Alipay, cancelled through the Alipay endpoint (40, 32).
    Alipay,
    /// WeChat Pay, cancelled through the WeChat endpoint (40, 32).
    Wechat,
    /// WeChat Pay Global, paid directly with WeChat Pay (not through KICC):
    /// revoked through `POST /v3/global/micropay/transactions/.../reverse`;
    /// no KICC endpoint applies. Admin name `wechatpay`.
    #[serde(rename = "wechatpay")]
    WechatpayGlobal,
}

impl Channel {
    /// The admin API's name: `card`, `transfer`, `mobile`, `cash_receipt`,
    /// `alipay`, `wechat` (WeChat Pay through KICC), `wechatpay` (WeChat Pay
    /// Global, direct).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Transfer => "transfer",
            Self::Mobile => "mobile",
            Self::CashReceipt => "cash_receipt",
            Self::Alipay => "alipay",
            Self::Wechat => "wechat",
            Self::WechatpayGlobal => "wechatpay",
        }
    }

    /// Parses an admin API channel name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Card,
            Self::Transfer,
            Self::Mobile,
            Self::CashReceipt,
            Self::Alipay,
            Self::Wechat,
            Self::WechatpayGlobal,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }

    /// KICC's `payMethodTypeCode` for this channel (a standalone cash receipt
    /// has no documented code; the sandbox reports 21, bank transfer).
    pub(crate) const fn pay_method_type_code(self) -> &'static str {
        match self {
            Self::Card => "11",
            Self::Transfer | Self::CashReceipt => "21",
            Self::Mobile => "31",
            Self::Alipay | Self::Wechat | Self::WechatpayGlobal => "60",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payment's currency. Amounts are always minor units: whole won for KRW,
/// cents for USD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum Currency {
    /// Korean won (no minor unit: amounts are whole won).
    #[serde(rename = "KRW")]
    Krw,
    /// US dollar (amounts in cents; Alipay, WeChat and WeChat Pay Global only).
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    /// `KRW` or `USD`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Krw => "KRW",
            Self::Usd => "USD",
        }
    }

    /// Parses `KRW` or `USD` (exact, upper case).
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "KRW" => Some(Self::Krw),
            "USD" => Some(Self::Usd),
            _ => None,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payment created in the sandbox (the admin API's answer to `POST /sandbox/payments`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Payment {
    /// The payment's PG transaction ID (20 bytes, deterministic from the seed).
    pub pg_cno: String,
    /// The mall it belongs to.
    pub mall_id: String,
    /// The merchant order number the sandbox assigned (echoed as `shopOrderNo`).
    pub shop_order_no: String,
    /// Paid amount in minor units.
    pub amount: u64,
    /// Currency.
    pub currency: Currency,
    /// Payment method.
    pub channel: Channel,
    /// Card only: authorized but not captured yet (code 20 captures it).
    pub authorized_only: bool,
    /// WeChat Pay Global only: WeChat Pay's order number (`transaction_id`, 28 digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// WeChat Pay Global only: the merchant's order number (`out_trade_no`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    /// WeChat Pay Global only: when it was paid, Unix seconds (sandbox clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
}

/// A payment's current state (`GET /sandbox/payments/{pgCno}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PaymentState {
    /// The payment's PG transaction ID.
    pub pg_cno: String,
    /// The merchant order number.
    pub shop_order_no: String,
    /// Payment method.
    pub channel: Channel,
    /// Currency.
    pub currency: Currency,
    /// Paid (or authorized) amount in minor units.
    pub amount: u64,
    /// What can still be cancelled, in minor units (WeChat cancels count once applied).
    pub remaining_amount: u64,
    /// KICC transaction status: `TS01` approved (or authorized, see
    /// `capture_required`), `TS04` captured, `TS06` partially cancelled,
    /// `TS02` fully cancelled.
    pub status_code: String,
    /// Whether the payment is authorized but not captured yet.
    pub capture_required: bool,
    /// Whether it is an escrow payment (codes 40, 32, 33 answer `P007`).
    pub escrow: bool,
    /// Every revision, oldest first: cancels, and captures (code 20).
    pub cancels: Vec<CancelState>,
    /// Every webhook delivery attempt made for this payment's cancels, oldest first.
    pub webhook_deliveries: Vec<WebhookDelivery>,
    /// WeChat Pay Global only: `transaction_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// WeChat Pay Global only: `out_trade_no`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    /// WeChat Pay Global only: when it was paid, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
    /// WeChat Pay Global only: `SUCCESS` (paid) or `REVOKED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trade_state: Option<String>,
    /// WeChat Pay Global only: when it was revoked, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// WeChat Pay Global only: how many revoke calls were answered 204
    /// (a repeated revoke of a revoked order counts again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverse_calls: Option<u32>,
}

/// One revision of a payment (a cancel, partial cancel or capture).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CancelState {
    /// The revision's PG transaction ID.
    pub cancel_pg_cno: String,
    /// The idempotency key of the request that made it.
    pub shop_transaction_id: String,
    /// `reviseTypeCode` (20, 32, 33, 40, 51, 52).
    pub revise_type_code: String,
    /// Amount cancelled in minor units (captured amount for code 20).
    pub amount: u64,
    /// `TS01` while a WeChat cancel is accepted but not applied yet (and
    /// still `TS01` once it failed); `TS12` for a voided WeChat cancel;
    /// otherwise the payment's status right after it (`TS06`, `TS02`, or
    /// `TS04` for a capture).
    pub status: String,
    /// `pending` (WeChat: accepted, not final yet), `applied` (the amount is
    /// cancelled, or captured for code 20; a voided WeChat cancel too) or
    /// `failed` (WeChat: finished as a failure, nothing cancelled).
    pub outcome: String,
    /// The failure's `resCd`, for a failed WeChat cancel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub res_cd: Option<String>,
    /// The request's `cancelReqDate`.
    pub cancel_req_date: String,
    /// When it was accepted or applied, Korea time `yyyyMMddHHmmss`.
    pub transaction_date: String,
    /// WeChat only: its notices were withheld by a `withholdWebhook` fault.
    pub webhook_withheld: bool,
}

/// One attempt to deliver a WeChat cancel notice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// Original payment.
    pub pg_cno: String,
    /// The cancel the notice is about.
    pub cancel_pg_cno: String,
    /// Where it was (or would have been) sent.
    pub url: String,
    /// 1 for the first delivery; 0 when the notice was not sent at all
    /// (see `error`).
    pub attempt: u32,
    /// Korea time of the attempt, `yyyyMMddHHmmss`.
    pub at: String,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// Whether the receiver acknowledged (HTTP 200 with JSON `resCd` `0000`).
    pub acknowledged: bool,
    /// Why it was not acknowledged, when it was not.
    pub error: Option<String>,
}

/// What a fault does to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultKind {
    /// Stall for `timeout_fault_delay`, then answer normally.
    Timeout,
    /// Answer HTTP 500.
    Http500,
    /// Close the connection (HTTP/1.1) or reset the stream (h2) without an answer.
    Drop,
    /// Answer HTTP 200 with this `resCd` (e.g. `A212`, `VTIM`, `VT00`).
    ResCd(String),
    /// WeChat revise only: the next cancels finalize without any notice.
    WithholdWebhook,
    /// WeChat revise only: the next accepted cancels finish as failures with
    /// this `resCd` (admin default `W001`): the held amount is released, the
    /// notice and `find` carry the code (and the fault's `res_detail_msg`),
    /// `find` answers `cancelStatus` `TS01`.
    WechatFail {
        /// The failure's code: 4 ASCII letters or digits, not `0000`.
        res_cd: String,
    },
    /// WeChat revise only: the next accepted cancels finish as network
    /// cancels (void, `TS12`): the amount is cancelled, the notice carries
    /// `0000`, `find` answers `cancelStatus` `TS12`.
    WechatVoid,
    /// WeChat Pay revoke only: answer as usual, but with a `Wechatpay-Signature`
    /// that does not verify (valid Base64, wrong message).
    BadSignature,
    /// WeChat Pay revoke only: answer as usual, but with a signature probe
    /// `WECHATPAY/SIGNTEST/...` (not Base64) as WeChat Pay sends to test clients.
    SignatureProbe,
    /// WeChat Pay revoke only: answer as usual, correctly signed, but with a
    /// `Wechatpay-Timestamp` 10 minutes old (outside the 5-minute window).
    OldTimestamp,
    /// WeChat Pay revoke only: answer this error `code` (e.g. `SYSTEM_ERROR`,
    /// `TRADE_ERROR`, `INVALID_REQUEST`), signed, with `http_status` or the
    /// code's usual status.
    WechatpayCode {
        /// The code: 1 to 32 characters from `A-Z`, `0-9`, `_`.
        code: String,
        /// The HTTP status (400..=599); `None` takes the code's usual one.
        http_status: Option<u16>,
    },
}

impl FaultKind {
    /// The admin API's name of the kind.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Http500 => "http500",
            Self::Drop => "drop",
            Self::ResCd(_) => "resCd",
            Self::WithholdWebhook => "withholdWebhook",
            Self::WechatFail { .. } => "wechatFail",
            Self::WechatVoid => "wechatVoid",
            Self::BadSignature => "badSignature",
            Self::SignatureProbe => "signatureProbe",
            Self::OldTimestamp => "oldTimestamp",
            Self::WechatpayCode { .. } => "code",
        }
    }

    /// Whether the request is processed before the fault unless told otherwise:
    /// `timeout` and `drop` yes, `http500` no, `resCd` only for `VTIM`/`VT00`
    /// (not for the Alipay retry codes `A210`..`A219` nor others); the
    /// signature faults yes, `code` no; `wechatFail` and `wechatVoid` always
    /// (they change how an accepted cancel ends).
    pub fn default_apply(&self) -> bool {
        match self {
            Self::Timeout
            | Self::Drop
            | Self::BadSignature
            | Self::SignatureProbe
            | Self::OldTimestamp => true,
            Self::WechatFail { .. } | Self::WechatVoid => true,
            Self::Http500 | Self::WithholdWebhook | Self::WechatpayCode { .. } => false,
            Self::ResCd(code) => code == "VTIM" || code == "VT00",
        }
    }
}

/// A fault to inject: the next `times` calls to `path` misbehave as `kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fault {
    /// Exact API path, e.g. [`ALIPAY_REVISE_PATH`](crate::ALIPAY_REVISE_PATH). For WeChat Pay revoke:
    /// a template ([`WECHATPAY_REVERSE_BY_ID_PATH`](crate::WECHATPAY_REVERSE_BY_ID_PATH),
    /// [`WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH`](crate::WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH))
    /// hits every revoke of that form; a concrete path, percent-encoded as
    /// sent, hits that order only (and is tried first).
    pub path: String,
    /// What happens.
    pub kind: FaultKind,
    /// How many calls (at least 1).
    pub times: u32,
    /// Whether the request is processed (state changes) before the fault;
    /// `None` takes [`FaultKind::default_apply`].
    pub apply: Option<bool>,
    /// `resCd` and `wechatFail` only: a detail message, sent as
    /// `resDetailMsg` URL-encoded form style (`a b/c` becomes `a+b%2Fc`);
    /// at most 1024 bytes once encoded.
    pub res_detail_msg: Option<String>,
}

impl Fault {
    /// A fault on the next call to `path`, with the kind's default `apply`.
    pub fn new(path: impl Into<String>, kind: FaultKind) -> Self {
        Self {
            path: path.into(),
            kind,
            times: 1,
            apply: None,
            res_detail_msg: None,
        }
    }

    /// Sets the `resDetailMsg` a `resCd` or `wechatFail` fault sends.
    #[must_use]
    pub fn res_detail_msg(mut self, msg: impl Into<String>) -> Self {
        self.res_detail_msg = Some(msg.into());
        self
    }

    /// Sets how many calls misbehave.
    #[must_use]
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Sets whether the request is processed before the fault.
    #[must_use]
    pub fn apply(mut self, apply: bool) -> Self {
        self.apply = Some(apply);
        self
    }
}
