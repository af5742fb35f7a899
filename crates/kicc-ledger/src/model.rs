//! The ledger's data: what to cancel ([`IntentSpec`]), where it stands ([`State`]), what was
//! sent ([`Attempt`]) and who may act on it ([`Lease`]). Plain, validated data: no IO.

use std::fmt;
use std::time::Duration;

use crate::invalid::InvalidField;
use crate::money::{Currency, MAX_MINOR_UNITS};

/// A point in time on the ledger DATABASE's clock, in milliseconds since the Unix epoch.
///
/// Lease expiry is always computed from the database's clock, so hosts with skewed clocks
/// agree on who holds a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// This time plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_ms(d)))
    }

    /// How long from `self` until `later` (zero if `later` is not later).
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The KICC API an intent is cancelled through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Channel {
    /// `POST /api/trades/revise` (card, transfer, mobile, cash receipt). A resend uses a new
    /// key; recovery looks up every key.
    Generic,
    /// `POST /api/trades/alipay/revise`. A resend repeats the identical message.
    Alipay,
    /// `POST /api/trades/wechatpay/revise`. A resend repeats the identical message; an
    /// accepted cancel may be pending until a webhook or a status query settles it.
    Wechat,
}

impl Channel {
    /// `generic`, `alipay` or `wechat`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Generic => "generic",
            Channel::Alipay => "alipay",
            Channel::Wechat => "wechat",
        }
    }

    /// Parses `generic`, `alipay` or `wechat`.
    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "generic" => Some(Channel::Generic),
            "alipay" => Some(Channel::Alipay),
            "wechat" => Some(Channel::Wechat),
            _ => None,
        }
    }

    /// Whether a resend must repeat the first message byte for byte (Alipay, WeChat) rather
    /// than use a new key (generic).
    pub fn resends_identically(self) -> bool {
        !matches!(self, Channel::Generic)
    }

    /// The `reviseTypeCode`s this channel's API accepts.
    pub fn allowed_codes(self) -> &'static [&'static str] {
        match self {
            Channel::Generic => &["20", "32", "33", "40", "51", "52"],
            Channel::Alipay | Channel::Wechat => &["40", "32"],
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Characters KICC refuses in text fields, besides control characters.
const FORBIDDEN: &[char] = &['\'', '"', '<', '>', '\\', ';', '|', '&'];

fn check_text(
    field: &'static str,
    value: &str,
    max_bytes: usize,
    kicc_rules: bool,
) -> Result<(), InvalidField> {
    if value.is_empty() {
        return Err(InvalidField::new(field, "must not be empty"));
    }
    if value.len() > max_bytes {
        return Err(InvalidField::new(
            field,
            format!("is {} bytes long, at most {max_bytes} allowed", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(InvalidField::new(
            field,
            format!("contains the control character U+{:04X}", u32::from(c)),
        ));
    }
    if kicc_rules {
        if let Some(c) = value.chars().find(|c| FORBIDDEN.contains(c)) {
            return Err(InvalidField::new(
                field,
                format!("contains the character {c:?}, which KICC refuses"),
            ));
        }
    }
    Ok(())
}

/// The merchant's own id for a cancel (e.g. their refund id): the ledger's key.
///
/// 1 to 128 bytes of UTF-8 without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntentId(String);

impl IntentId {
    /// Validates an intent id.
    pub fn new(value: impl Into<String>) -> Result<IntentId, InvalidField> {
        let value = value.into();
        check_text("intent_id", &value, 128, false)?;
        Ok(IntentId(value))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The fields of a cancel as given, before validation ([`IntentParams::validate`]).
///
/// Not `#[non_exhaustive]`, so it can be built as
/// `IntentParams { amount: .., ..IntentParams::new(..) }`; a field added later is optional
/// and keeps such code compiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentParams {
    /// The merchant's id for this cancel.
    pub intent_id: String,
    /// The channel.
    pub channel: Channel,
    /// The payment's `pgCno`.
    pub pg_cno: String,
    /// Amount in minor units; `None` cancels the full amount.
    pub amount: Option<u64>,
    /// Currency of the amount. Generic: KRW only, assumed when absent. Alipay/WeChat: required
    /// with an amount.
    pub currency: Option<Currency>,
    /// `reviseTypeCode`; absent means `40` (full) without an amount, `32` (partial) with one.
    pub revise_type_code: Option<String>,
    /// The cancellable balance before this cancel, in minor units (partial cancels only).
    pub remain_amount: Option<u64>,
    /// The cancel reason sent to KICC.
    pub reason: Option<String>,
    /// WeChat: the URL KICC notifies with the final result.
    pub notify_url: Option<String>,
}

impl IntentParams {
    /// A full cancel of `pg_cno` through `channel`, with every optional field absent.
    pub fn new(intent_id: impl Into<String>, channel: Channel, pg_cno: impl Into<String>) -> Self {
        IntentParams {
            intent_id: intent_id.into(),
            channel,
            pg_cno: pg_cno.into(),
            amount: None,
            currency: None,
            revise_type_code: None,
            remain_amount: None,
            reason: None,
            notify_url: None,
        }
    }

    /// Checks every field and the rules between them, resolving the defaults (code, generic
    /// currency).
    pub fn validate(self) -> Result<IntentSpec, InvalidField> {
        let intent_id = IntentId::new(self.intent_id)?;
        check_text("pg_cno", &self.pg_cno, 60, true)?;
        if let Some(a) = self.amount {
            if a == 0 || a > MAX_MINOR_UNITS {
                return Err(InvalidField::new(
                    "amount",
                    "must be between 1 and 999999999999 minor units",
                ));
            }
        }
        let currency = match (self.channel, self.currency, self.amount) {
            (Channel::Generic, Some(c), _) if c != Currency::Krw => {
                return Err(InvalidField::new(
                    "currency",
                    "generic cancels are KRW only",
                ))
            }
            (Channel::Generic, _, Some(_)) => Some(Currency::Krw),
            (_, None, Some(_)) => {
                return Err(InvalidField::new(
                    "currency",
                    "is required with an amount on alipay and wechat",
                ))
            }
            (_, c, _) => c,
        };
        let code = match self.revise_type_code.as_deref() {
            None | Some("") if self.amount.is_some() => "32".to_owned(),
            None | Some("") => "40".to_owned(),
            Some(c) => {
                if !self.channel.allowed_codes().contains(&c) {
                    return Err(InvalidField::new(
                        "type",
                        format!(
                            "{c:?} is not accepted on {}: allowed {}",
                            self.channel,
                            self.channel.allowed_codes().join(", ")
                        ),
                    ));
                }
                c.to_owned()
            }
        };
        if code != "40" && self.amount.is_none() {
            return Err(InvalidField::new(
                "amount",
                format!("is required with the partial code {code}"),
            ));
        }
        if code == "40" && self.amount.is_some() {
            return Err(InvalidField::new(
                "amount",
                "is not allowed with the full-cancel code 40",
            ));
        }
        if let Some(r) = self.remain_amount {
            let amount = self.amount.ok_or_else(|| {
                InvalidField::new("remain_amount", "is only used with a partial cancel")
            })?;
            if r > MAX_MINOR_UNITS {
                return Err(InvalidField::new(
                    "remain_amount",
                    "is larger than 999999999999 minor units",
                ));
            }
            if r < amount {
                return Err(InvalidField::new(
                    "remain_amount",
                    "is smaller than the amount to cancel",
                ));
            }
        }
        let reason = match self.reason {
            Some(r) if r.is_empty() => None,
            Some(r) => {
                check_text("reason", &r, 100, true)?;
                Some(r)
            }
            None => None,
        };
        let notify_url = match self.notify_url {
            Some(u) if u.is_empty() => None,
            Some(u) => {
                check_text("notify_url", &u, 256, false)?;
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    return Err(InvalidField::new(
                        "notify_url",
                        "must be an http:// or https:// URL",
                    ));
                }
                if self.channel != Channel::Wechat {
                    return Err(InvalidField::new("notify_url", "is only used with wechat"));
                }
                Some(u)
            }
            None => None,
        };
        Ok(IntentSpec {
            intent_id,
            channel: self.channel,
            pg_cno: self.pg_cno,
            amount: self.amount,
            currency,
            revise_type_code: code,
            remain_amount: self.remain_amount,
            reason,
            notify_url,
        })
    }
}

/// A validated cancel: what the merchant asked for. Built by [`IntentParams::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentSpec {
    intent_id: IntentId,
    channel: Channel,
    pg_cno: String,
    amount: Option<u64>,
    currency: Option<Currency>,
    revise_type_code: String,
    remain_amount: Option<u64>,
    reason: Option<String>,
    notify_url: Option<String>,
}

impl IntentSpec {
    /// The merchant's id.
    pub fn intent_id(&self) -> &IntentId {
        &self.intent_id
    }
    /// The channel.
    pub fn channel(&self) -> Channel {
        self.channel
    }
    /// The payment's `pgCno`.
    pub fn pg_cno(&self) -> &str {
        &self.pg_cno
    }
    /// Amount in minor units; `None` is a full cancel.
    pub fn amount(&self) -> Option<u64> {
        self.amount
    }
    /// The currency (always `KRW` for a generic partial cancel).
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }
    /// The resolved `reviseTypeCode`.
    pub fn revise_type_code(&self) -> &str {
        &self.revise_type_code
    }
    /// The balance before this cancel, in minor units.
    pub fn remain_amount(&self) -> Option<u64> {
        self.remain_amount
    }
    /// The cancel reason.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
    /// WeChat notification URL.
    pub fn notify_url(&self) -> Option<&str> {
        self.notify_url.as_deref()
    }

    /// The fields that make two intents with the same id the same cancel, in a fixed order:
    /// channel, pg_cno, code, amount, currency, remain amount. The reason and notify URL are
    /// not part of it.
    pub(crate) fn identity(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        vec![
            ("channel", self.channel.as_str().to_owned()),
            ("pg_cno", self.pg_cno.clone()),
            ("type", self.revise_type_code.clone()),
            ("amount", opt(self.amount)),
            (
                "currency",
                self.currency
                    .map(|c| c.code().to_owned())
                    .unwrap_or_default(),
            ),
            ("remain_amount", opt(self.remain_amount)),
        ]
    }
}

/// A result notice (WeChat webhook), stored durably before it is acknowledged.
///
/// Notices are unsigned: one only says "look again". It is matched to its intent by
/// (`pg_cno`, `cancel_pg_cno`), and the intent becomes final only after a status query
/// confirms it. A notice that arrives before the acceptance (`cancel_pg_cno`) is recorded is
/// kept, and found by [`crate::Store::notices`] once it is.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notice {
    /// Storage order.
    pub id: i64,
    /// The payment's `pgCno`.
    pub pg_cno: String,
    /// The cancel's `cancelPgCno`.
    pub cancel_pg_cno: String,
    /// The notice exactly as received.
    pub body: Vec<u8>,
    /// When it was stored, database clock.
    pub received_at: Timestamp,
}

impl fmt::Debug for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notice")
            .field("id", &self.id)
            .field("pg_cno", &self.pg_cno)
            .field("cancel_pg_cno", &self.cancel_pg_cno)
            .field("body_bytes", &self.body.len())
            .field("received_at", &self.received_at)
            .finish()
    }
}

/// The largest notice body stored (bytes).
pub const MAX_NOTICE_BYTES: usize = 64 * 1024;

/// Checks a notice's ids and size before it is stored.
pub(crate) fn check_notice(
    pg_cno: &str,
    cancel_pg_cno: &str,
    body: &[u8],
) -> Result<(), InvalidField> {
    check_text("pg_cno", pg_cno, 60, true)?;
    check_text("cancel_pg_cno", cancel_pg_cno, 60, true)?;
    if body.len() > MAX_NOTICE_BYTES {
        return Err(InvalidField::new(
            "notice",
            format!(
                "is {} bytes, at most {MAX_NOTICE_BYTES} are stored",
                body.len()
            ),
        ));
    }
    Ok(())
}

/// Who holds leases: one per open store (process, worker). Random 32 hex digits for SQLite,
/// the owner's number for PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerId(pub(crate) String);

impl OwnerId {
    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The right to act on one intent until `expires_at` (database clock). Every write carries
/// it; a write whose generation is no longer the intent's is refused ([`crate::TransitionError::Fenced`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The intent.
    pub intent_id: IntentId,
    /// Who holds it.
    pub owner: OwnerId,
    /// Fencing token: increases every time the intent is leased.
    pub generation: u64,
    /// When it expires, by the database's clock.
    pub expires_at: Timestamp,
    /// How long each renewal extends it.
    pub ttl: Duration,
}

/// The stage of an intent, without its data: the states of the batch report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StateKind {
    /// Imported, nothing sent.
    Planned,
    /// Leased by a worker that may be sending.
    InFlight,
    /// Cancelled.
    Succeeded,
    /// The gateway said no; nothing was cancelled.
    Declined,
    /// Certainly not cancelled (never delivered, or every key looked up and found absent).
    NotProcessed,
    /// May or may not have been cancelled: to recover.
    Unknown,
    /// WeChat: accepted, final result to come.
    Pending,
}

impl StateKind {
    /// Every state, in report order.
    pub const ALL: [StateKind; 7] = [
        StateKind::Planned,
        StateKind::InFlight,
        StateKind::Succeeded,
        StateKind::Declined,
        StateKind::NotProcessed,
        StateKind::Unknown,
        StateKind::Pending,
    ];

    /// `planned`, `in_flight`, `succeeded`, `declined`, `not_processed`, `unknown`, `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Planned => "planned",
            StateKind::InFlight => "in_flight",
            StateKind::Succeeded => "succeeded",
            StateKind::Declined => "declined",
            StateKind::NotProcessed => "not_processed",
            StateKind::Unknown => "unknown",
            StateKind::Pending => "pending",
        }
    }

    /// Parses the names of [`StateKind::as_str`].
    pub fn parse(text: &str) -> Option<StateKind> {
        StateKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Final states are never sent again: succeeded, declined, not_processed.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StateKind::Succeeded | StateKind::Declined | StateKind::NotProcessed
        )
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an intent stands, with the data of that state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Imported, nothing sent.
    Planned,
    /// Leased: `owner` may be sending until `expires_at` (database clock).
    InFlight {
        /// The lease holder.
        owner: OwnerId,
        /// The lease's generation.
        generation: u64,
        /// Lease expiry, database clock.
        expires_at: Timestamp,
    },
    /// Cancelled: KICC's id of the cancel.
    Succeeded {
        /// `cancelPgCno`.
        cancel_pg_cno: String,
    },
    /// The gateway refused with this code.
    Declined {
        /// `resCd`.
        res_cd: String,
    },
    /// Certainly not cancelled.
    NotProcessed,
    /// Outcome unknown: recovery must settle it by the API's rules.
    Unknown,
    /// WeChat: accepted as `cancel_pg_cno`, final result to come.
    Pending {
        /// `cancelPgCno` of the accepted cancel.
        cancel_pg_cno: String,
    },
}

impl State {
    /// The state without its data.
    pub fn kind(&self) -> StateKind {
        match self {
            State::Planned => StateKind::Planned,
            State::InFlight { .. } => StateKind::InFlight,
            State::Succeeded { .. } => StateKind::Succeeded,
            State::Declined { .. } => StateKind::Declined,
            State::NotProcessed => StateKind::NotProcessed,
            State::Unknown => StateKind::Unknown,
            State::Pending { .. } => StateKind::Pending,
        }
    }
}

/// What an attempt will send, recorded before its first byte: the key, the Korea date and
/// the exact request bytes.
///
/// Exhaustive on purpose: these three are what the write-ahead protocol records, and an
/// executor builds the value with a literal.
#[derive(Clone, PartialEq, Eq)]
pub struct AttemptPlan {
    /// `shopTransactionId` of this request.
    pub key: String,
    /// `cancelReqDate`: the Korea date (`yyyyMMdd`) the request carries.
    pub korea_date: String,
    /// The exact request body to be sent.
    pub request: Vec<u8>,
}

impl fmt::Debug for AttemptPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptPlan")
            .field("key", &self.key)
            .field("korea_date", &self.korea_date)
            .field("request_bytes", &self.request.len())
            .finish()
    }
}

impl AttemptPlan {
    pub(crate) fn validate(&self) -> Result<(), InvalidField> {
        check_text("shop_transaction_id", &self.key, 60, true)?;
        if !valid_korea_date(&self.korea_date) {
            return Err(InvalidField::new(
                "korea_date",
                format!("{:?} is not a date written yyyyMMdd", self.korea_date),
            ));
        }
        if self.request.is_empty() {
            return Err(InvalidField::new("request", "must not be empty"));
        }
        Ok(())
    }
}

fn valid_korea_date(d: &str) -> bool {
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let n = |r: std::ops::Range<usize>| d[r].parse::<u32>().unwrap_or(0);
    let (y, m, day) = (n(0..4), n(4..6), n(6..8));
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let max = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 2000 && (1..=max).contains(&day)
}

/// How an attempt ended, as far as the sender could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeKind {
    /// Succeeded, tied to this request.
    Succeeded,
    /// The gateway refused: this request was not processed.
    Declined,
    /// Certainly never delivered (e.g. the connection was refused before any byte was sent).
    NotDelivered,
    /// Sent; the outcome is unknown (timeout, broken response, retry code).
    Ambiguous,
    /// WeChat: accepted, final result later.
    Pending,
}

impl OutcomeKind {
    /// `succeeded`, `declined`, `not_delivered`, `ambiguous`, `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Succeeded => "succeeded",
            OutcomeKind::Declined => "declined",
            OutcomeKind::NotDelivered => "not_delivered",
            OutcomeKind::Ambiguous => "ambiguous",
            OutcomeKind::Pending => "pending",
        }
    }

    /// Parses the names of [`OutcomeKind::as_str`].
    pub fn parse(text: &str) -> Option<OutcomeKind> {
        [
            OutcomeKind::Succeeded,
            OutcomeKind::Declined,
            OutcomeKind::NotDelivered,
            OutcomeKind::Ambiguous,
            OutcomeKind::Pending,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// The recorded result of an attempt.
///
/// Exhaustive on purpose: an executor builds it with a literal, and a new field should fail
/// to compile there rather than be left out of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// The HTTP status, if a response arrived.
    pub http_status: Option<u16>,
    /// KICC's `resCd`, if the response carried one.
    pub res_cd: Option<String>,
    /// A short human-readable note (message, error); never a secret.
    pub detail: String,
    /// What the sender concluded.
    pub outcome: OutcomeKind,
}

/// One attempt: what was sent and, once recorded, how it ended.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// 1 for the first attempt of an intent, then 2, 3, ...
    pub number: u32,
    /// `shopTransactionId`.
    pub key: String,
    /// `cancelReqDate` (Korea date, `yyyyMMdd`).
    pub korea_date: String,
    /// The exact request bytes.
    pub request: Vec<u8>,
    /// When it was recorded (just before sending), database clock.
    pub sent_at: Timestamp,
    /// The result, once recorded.
    pub result: Option<AttemptResult>,
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("number", &self.number)
            .field("key", &self.key)
            .field("korea_date", &self.korea_date)
            .field("request_bytes", &self.request.len())
            .field("sent_at", &self.sent_at)
            .field("result", &self.result)
            .finish()
    }
}

impl Attempt {
    /// Whether this attempt certainly never reached the gateway: its recorded result is
    /// [`OutcomeKind::NotDelivered`] (no result recorded, e.g. after a crash, is not that).
    pub fn never_delivered(&self) -> bool {
        self.result.as_ref().map(|r| r.outcome) == Some(OutcomeKind::NotDelivered)
    }

    /// Whether this attempt may have been processed by the gateway: no result recorded, or
    /// a result other than a definite "not delivered" or "declined".
    pub fn may_have_been_processed(&self) -> bool {
        !matches!(
            self.result.as_ref().map(|r| r.outcome),
            Some(OutcomeKind::NotDelivered | OutcomeKind::Declined)
        )
    }
}

/// An intent with everything the ledger knows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Intent {
    /// Import order (file order): intents on one `pg_cno` run in this order.
    pub seq: i64,
    /// What to cancel.
    pub spec: IntentSpec,
    /// Where it stands.
    pub state: State,
    /// The last lease generation issued (0 = never leased).
    pub generation: u64,
    /// `cancelPgCno` once known (succeeded, or a WeChat acceptance), kept across leases.
    pub cancel_pg_cno: Option<String>,
    /// `resCd` of the final or latest definite answer.
    pub res_cd: Option<String>,
    /// Why it is in its state (decline message, why unknown).
    pub detail: Option<String>,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
}

impl Intent {
    /// A freshly imported intent.
    pub fn planned(seq: i64, spec: IntentSpec) -> Intent {
        Intent {
            seq,
            spec,
            state: State::Planned,
            generation: 0,
            cancel_pg_cno: None,
            res_cd: None,
            detail: None,
            attempts: Vec::new(),
        }
    }

    /// The key of the latest attempt (the report's `shop_transaction_id`).
    pub fn last_key(&self) -> Option<&str> {
        self.attempts.last().map(|a| a.key.as_str())
    }

    /// The keys of every attempt that may have been processed, each once, in attempt
    /// order: what recovery must look up before [`NotProcessedProof::KeysAbsent`].
    pub fn maybe_processed_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for a in self.attempts.iter().filter(|a| a.may_have_been_processed()) {
            if !keys.contains(&a.key.as_str()) {
                keys.push(&a.key);
            }
        }
        keys
    }

    /// When the first attempt was recorded (database clock): where the age limit of
    /// identical wallet resends counts from.
    pub fn first_sent_at(&self) -> Option<Timestamp> {
        self.attempts.first().map(|a| a.sent_at)
    }

    /// When the latest attempt was recorded (database clock): look-ups wait until this plus
    /// the gateway's processing bound.
    pub fn last_sent_at(&self) -> Option<Timestamp> {
        self.attempts.last().map(|a| a.sent_at)
    }
}

/// How a leased intent ends (or is parked): the input of [`crate::transition::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finish {
    /// Cancelled, tied to one of this intent's requests.
    Succeeded {
        /// `cancelPgCno`.
        cancel_pg_cno: String,
    },
    /// The gateway refused the latest attempt (or the final result of an accepted WeChat
    /// cancel was a failure). Refused by the ledger when an earlier attempt may have been
    /// processed (invariant 8).
    Declined {
        /// `resCd`.
        res_cd: String,
        /// The gateway's message.
        detail: String,
    },
    /// Certainly not cancelled, with the proof.
    NotProcessed(NotProcessedProof),
    /// Outcome unknown: leave it for recovery.
    Unknown {
        /// Why.
        detail: String,
    },
    /// WeChat: accepted, final result to come.
    Pending {
        /// `cancelPgCno` of the accepted cancel.
        cancel_pg_cno: String,
    },
}

/// Why an intent is certainly not processed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotProcessedProof {
    /// No attempt may have been processed: every attempt's recorded result is "not delivered"
    /// or "declined" (or there was no attempt).
    NothingDelivered,
    /// These keys were each looked up and found absent; they must include the key of every
    /// attempt that may have been processed.
    KeysAbsent {
        /// The keys looked up.
        keys: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(channel: Channel) -> IntentParams {
        IntentParams::new("r-1", channel, "pg-1")
    }

    fn refused(p: IntentParams, field: &str) {
        let err = p.validate().unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }

    #[test]
    fn codes_amounts_and_currencies() {
        let s = params(Channel::Generic).validate().unwrap();
        assert_eq!(
            (s.revise_type_code(), s.amount(), s.currency()),
            ("40", None, None)
        );

        let mut p = params(Channel::Alipay);
        p.revise_type_code = Some("33".into());
        p.amount = Some(5);
        p.currency = Some(Currency::Usd);
        refused(p, "type");

        let mut p = params(Channel::Generic);
        p.revise_type_code = Some("32".into());
        refused(p, "amount");

        let mut p = params(Channel::Generic);
        p.revise_type_code = Some("40".into());
        p.amount = Some(5);
        refused(p, "amount");

        let mut p = params(Channel::Generic);
        p.amount = Some(5);
        p.currency = Some(Currency::Usd);
        refused(p, "currency");

        let mut p = params(Channel::Wechat);
        p.amount = Some(5);
        refused(p, "currency");

        let mut p = params(Channel::Generic);
        p.amount = Some(500);
        p.remain_amount = Some(400);
        refused(p, "remain_amount");

        let mut p = params(Channel::Generic);
        p.remain_amount = Some(400);
        refused(p, "remain_amount");

        let mut p = params(Channel::Alipay);
        p.notify_url = Some("https://m.example/n".into());
        refused(p, "notify_url");

        let mut p = params(Channel::Generic);
        p.reason = Some("a|b".into());
        refused(p, "reason");

        refused(IntentParams::new("", Channel::Generic, "pg"), "intent_id");
        refused(
            IntentParams::new("a\nb", Channel::Generic, "pg"),
            "intent_id",
        );
        refused(
            IntentParams::new("a", Channel::Generic, "x".repeat(61)),
            "pg_cno",
        );
    }
}
