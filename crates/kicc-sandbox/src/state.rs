//! The sandbox's mutable state. All of it sits behind one mutex that is never
//! held across an `await`.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;

use crate::api::ApiEndpoint;
use crate::clock::{self, KoreaTime};
use crate::ids::IdGen;
use crate::model::{
    CancelState, Channel, Currency, Fault, FaultKind, Payment, PaymentState, WebhookDelivery,
};
use crate::retrieve::TxLog;
use crate::settings::Settings;
use crate::wechat_final::{self, WechatFinal, WechatFinalQueue};
use crate::wechatpay::{self, NewWechatpayOrder, WxOrderRec, WxState};
use crate::SandboxError;

/// Status: approved (or authorized only).
pub(crate) const TS01: &str = "TS01";
/// Status: fully cancelled.
pub(crate) const TS02: &str = "TS02";
/// Status: captured.
pub(crate) const TS04: &str = "TS04";
/// Status: partially cancelled.
pub(crate) const TS06: &str = "TS06";
/// Status: network cancel (void), WeChat only.
pub(crate) const TS12: &str = "TS12";

/// The largest payment the admin API creates (keeps amounts exact in JSON
/// consumers that use doubles).
pub(crate) const MAX_PAYMENT_AMOUNT: u64 = 999_999_999_999_999;

/// How many webhook deliveries the log keeps (oldest dropped first).
const WEBHOOK_LOG_CAP: usize = 10_000;
/// How many faults may wait at once per path.
const MAX_QUEUED_FAULTS: usize = 64;
/// Idempotency records older than this many days are forgotten.
const KEY_RETENTION_DAYS: i64 = 7;

/// Human-readable status message for a status code.
pub(crate) fn status_message(code: &str) -> &'static str {
    match code {
        TS01 => "Approved",
        TS02 => "Approval Cancelled",
        TS04 => "Captured",
        TS06 => "Partially Cancelled",
        TS12 => "Network Cancelled",
        _ => "Unknown",
    }
}

/// A simulated payment.
#[derive(Clone, Debug)]
pub(crate) struct PaymentRec {
    pub(crate) pg_cno: String,
    pub(crate) shop_order_no: String,
    pub(crate) channel: Channel,
    pub(crate) currency: Currency,
    pub(crate) amount: u64,
    /// Cancellable balance (applied revisions only).
    pub(crate) remaining: u64,
    /// Amount held by accepted, not yet applied WeChat cancels.
    pub(crate) reserved: u64,
    pub(crate) authorized_only: bool,
    pub(crate) captured: bool,
    pub(crate) cancels: Vec<CancelRec>,
    /// WeChat Pay Global orders only: the WeChat Pay side.
    pub(crate) wechatpay: Option<WxOrderRec>,
}

impl PaymentRec {
    /// What a new cancel may still take.
    pub(crate) fn available(&self) -> u64 {
        self.remaining.saturating_sub(self.reserved)
    }

    /// The status derived from the balances.
    pub(crate) fn status(&self) -> &'static str {
        if self.remaining == 0 {
            TS02
        } else if self.remaining < self.amount {
            TS06
        } else if self.authorized_only && self.captured {
            TS04
        } else {
            TS01
        }
    }
}

/// A revision (cancel or capture) of a payment.
#[derive(Clone, Debug)]
pub(crate) struct CancelRec {
    pub(crate) cancel_pg_cno: String,
    pub(crate) shop_transaction_id: String,
    pub(crate) endpoint: ApiEndpoint,
    pub(crate) revise_type_code: String,
    /// The amount the request carried, if any (matched by `refundQueryFlag`).
    pub(crate) requested_amount: Option<u64>,
    /// Amount cancelled (captured amount for code 20).
    pub(crate) amount: u64,
    /// Cancellable balance before this revision.
    pub(crate) balance_before: u64,
    /// Cancellable balance after it.
    pub(crate) remaining_after: u64,
    /// `TS01` while pending (WeChat), else the payment's status right after it.
    pub(crate) status: &'static str,
    pub(crate) cancel_req_date: String,
    pub(crate) transaction_date: String,
    pub(crate) approval_no: String,
    pub(crate) notify_url: Option<String>,
    pub(crate) withheld: bool,
    /// WeChat: how the cancel will finish (decided when it is accepted).
    pub(crate) finish_as: WechatFinal,
    /// WeChat: the failure it finished with (`resCd`, detail), if it failed.
    pub(crate) failure: Option<(String, Option<String>)>,
}

impl CancelRec {
    /// `pending`, `applied` or `failed` (see [`CancelState::outcome`]).
    fn outcome(&self) -> &'static str {
        if self.failure.is_some() {
            "failed"
        } else if self.endpoint == ApiEndpoint::WechatRevise && self.status == TS01 {
            "pending"
        } else {
            "applied"
        }
    }
}

/// What an idempotency key was used for.
#[derive(Clone, Debug)]
pub(crate) struct KeyRecord {
    /// Korea day number of the first use.
    pub(crate) day: i64,
    pub(crate) endpoint: ApiEndpoint,
    pub(crate) pg_cno: String,
    pub(crate) cancel_req_date: String,
    /// The exact response body answered.
    pub(crate) body: Bytes,
}

/// A fault waiting for calls.
#[derive(Clone, Debug)]
struct FaultEntry {
    kind: FaultKind,
    remaining: u32,
    apply: bool,
    res_detail_msg: Option<String>,
}

/// A fault that hit a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ActiveFault {
    pub(crate) kind: FaultKind,
    pub(crate) apply: bool,
    pub(crate) res_detail_msg: Option<String>,
}

/// A fault still waiting, as `GET /sandbox/faults` lists it.
#[derive(Clone, Debug)]
pub(crate) struct PendingFault {
    pub(crate) path: String,
    pub(crate) kind: FaultKind,
    pub(crate) times: u32,
    pub(crate) apply: bool,
    pub(crate) res_detail_msg: Option<String>,
}

/// A notice ready to send.
#[derive(Clone, Debug)]
pub(crate) struct Notice {
    pub(crate) pg_cno: String,
    pub(crate) cancel_pg_cno: String,
    pub(crate) url: String,
    pub(crate) body: Bytes,
}

/// Everything that changes while the sandbox runs.
#[derive(Debug)]
pub(crate) struct State {
    seed: u64,
    pub(crate) ids: IdGen,
    pub(crate) payments: HashMap<String, PaymentRec>,
    /// Every identifier handed out, so none is handed out twice.
    issued: HashSet<String>,
    keys: HashMap<String, KeyRecord>,
    key_inserts: u64,
    faults: HashMap<String, VecDeque<FaultEntry>>,
    withhold_webhooks: u32,
    /// `wechatFail` / `wechatVoid` faults waiting for accepted WeChat cancels.
    wechat_finals: WechatFinalQueue,
    /// `pgCno`s of escrow payments.
    escrow: HashSet<String>,
    /// Run-time settings (`/sandbox/settings`); kept across `reset`.
    pub(crate) settings: Settings,
    /// Processed revise requests, for `retrieveTransaction`.
    pub(crate) tx_log: TxLog,
    clock_offset: i64,
    initial_clock_offset: i64,
    webhook_log: VecDeque<WebhookDelivery>,
    /// Bumped by `reset`; background jobs of an older generation stop.
    pub(crate) generation: u64,
    /// The WeChat Pay Global revoke endpoint's orders index and request log.
    pub(crate) wx: WxState,
}

impl State {
    /// A state with the default settings (unit tests).
    #[cfg(test)]
    pub(crate) fn new(seed: u64, clock_offset: i64) -> Self {
        Self::with_settings(seed, clock_offset, Settings::default())
    }

    pub(crate) fn with_settings(seed: u64, clock_offset: i64, settings: Settings) -> Self {
        Self {
            seed,
            ids: IdGen::new(seed),
            payments: HashMap::new(),
            issued: HashSet::new(),
            keys: HashMap::new(),
            key_inserts: 0,
            faults: HashMap::new(),
            withhold_webhooks: 0,
            wechat_finals: WechatFinalQueue::default(),
            escrow: HashSet::new(),
            settings,
            tx_log: TxLog::default(),
            clock_offset,
            initial_clock_offset: clock_offset,
            webhook_log: VecDeque::new(),
            generation: 0,
            wx: WxState::new(seed),
        }
    }

    /// Forgets every payment, key, fault and delivery; restarts the identifier
    /// sequence and the clock offset; stops pending WeChat jobs.
    pub(crate) fn reset(&mut self) {
        let generation = self.generation.wrapping_add(1);
        *self = Self::with_settings(self.seed, self.initial_clock_offset, self.settings);
        self.generation = generation;
    }

    /// The sandbox's "now" in Korea.
    pub(crate) fn now(&self) -> KoreaTime {
        KoreaTime::now(self.clock_offset)
    }

    pub(crate) fn clock_offset(&self) -> i64 {
        self.clock_offset
    }

    pub(crate) fn set_clock(&mut self, offset_seconds: i64) -> Result<(), SandboxError> {
        if !clock::offset_in_range(offset_seconds) {
            return Err(SandboxError::InvalidConfig {
                field: "offsetSeconds",
                rule: clock::OFFSET_RULE.to_owned(),
            });
        }
        self.clock_offset = offset_seconds;
        Ok(())
    }

    /// A fresh identifier that no payment or revision uses yet.
    pub(crate) fn fresh_id(&mut self, prefix: &str) -> String {
        loop {
            let id = self.ids.next_id(prefix, 17);
            if self.issued.insert(id.clone()) {
                return id;
            }
        }
    }

    pub(crate) fn create_payment(
        &mut self,
        mall_id: &str,
        channel: Channel,
        amount: u64,
        currency: Currency,
        authorized_only: bool,
        escrow: bool,
    ) -> Result<Payment, SandboxError> {
        let invalid =
            |field: &'static str, rule: String| Err(SandboxError::InvalidPayment { field, rule });
        if escrow && !matches!(channel, Channel::Card | Channel::Transfer | Channel::Mobile) {
            return invalid(
                "escrow",
                format!("applies only to card, transfer and mobile payments, not {channel}"),
            );
        }
        if channel == Channel::WechatpayGlobal && !authorized_only {
            return self.create_wechatpay_order(mall_id, &NewWechatpayOrder::new(amount, currency));
        }
        if amount == 0 || amount > MAX_PAYMENT_AMOUNT {
            return invalid(
                "amount",
                format!("must be a positive integer in minor units, at most {MAX_PAYMENT_AMOUNT}"),
            );
        }
        if currency == Currency::Usd
            && !matches!(
                channel,
                Channel::Alipay | Channel::Wechat | Channel::WechatpayGlobal
            )
        {
            return invalid(
                "currency",
                format!("USD is only available for alipay and wechat, not {channel}"),
            );
        }
        if authorized_only && channel != Channel::Card {
            return invalid(
                "authorizedOnly",
                format!("applies only to card payments, not {channel}"),
            );
        }
        let pg_cno = self.fresh_id("SBP");
        let shop_order_no = self.ids.next_id("ORDER", 15);
        if escrow {
            self.escrow.insert(pg_cno.clone());
        }
        let rec = PaymentRec {
            pg_cno: pg_cno.clone(),
            shop_order_no: shop_order_no.clone(),
            channel,
            currency,
            amount,
            remaining: amount,
            reserved: 0,
            authorized_only,
            captured: false,
            cancels: Vec::new(),
            wechatpay: None,
        };
        self.payments.insert(pg_cno.clone(), rec);
        Ok(Payment {
            pg_cno,
            mall_id: mall_id.to_owned(),
            shop_order_no,
            amount,
            currency,
            channel,
            authorized_only,
            transaction_id: None,
            out_trade_no: None,
            paid_at: None,
        })
    }

    /// Whether `pg_cno` is an escrow payment.
    pub(crate) fn is_escrow(&self, pg_cno: &str) -> bool {
        self.escrow.contains(pg_cno)
    }

    /// A payment's state, by `pgCno` (or, for WeChat Pay Global orders, by
    /// `transaction_id` or `out_trade_no`).
    pub(crate) fn payment_state(&self, pg_cno: &str) -> Option<PaymentState> {
        let p = self.payments.get(pg_cno).or_else(|| {
            self.wechatpay_pg_cno(pg_cno)
                .and_then(|pg| self.payments.get(pg))
        })?;
        let wx = p.wechatpay.as_ref();
        Some(PaymentState {
            pg_cno: p.pg_cno.clone(),
            shop_order_no: p.shop_order_no.clone(),
            channel: p.channel,
            currency: p.currency,
            amount: p.amount,
            remaining_amount: p.remaining,
            status_code: p.status().to_owned(),
            capture_required: p.authorized_only && !p.captured,
            escrow: self.escrow.contains(&p.pg_cno),
            cancels: p
                .cancels
                .iter()
                .map(|c| CancelState {
                    cancel_pg_cno: c.cancel_pg_cno.clone(),
                    shop_transaction_id: c.shop_transaction_id.clone(),
                    revise_type_code: c.revise_type_code.clone(),
                    amount: c.amount,
                    status: c.status.to_owned(),
                    outcome: c.outcome().to_owned(),
                    res_cd: c.failure.as_ref().map(|(code, _)| code.clone()),
                    cancel_req_date: c.cancel_req_date.clone(),
                    transaction_date: c.transaction_date.clone(),
                    webhook_withheld: c.withheld,
                })
                .collect(),
            webhook_deliveries: self
                .webhook_log
                .iter()
                .filter(|d| d.pg_cno == p.pg_cno)
                .cloned()
                .collect(),
            transaction_id: wx.map(|w| w.transaction_id.clone()),
            out_trade_no: wx.map(|w| w.out_trade_no.clone()),
            paid_at: wx.map(|w| w.paid_at),
            trade_state: wx.map(|w| w.trade_state().to_owned()),
            revoked_at: wx.and_then(|w| w.revoked_at),
            reverse_calls: wx.map(|w| w.reverse_calls),
        })
    }

    /// The record of an idempotency key, if it was used.
    pub(crate) fn key(&self, key: &str) -> Option<&KeyRecord> {
        self.keys.get(key)
    }

    /// Remembers what a key answered; now and then forgets old keys.
    pub(crate) fn record_key(&mut self, key: &str, rec: KeyRecord) {
        let today = rec.day;
        self.keys.insert(key.to_owned(), rec);
        self.key_inserts = self.key_inserts.wrapping_add(1);
        if self.key_inserts.is_multiple_of(4096) {
            self.keys
                .retain(|_, r| r.day >= today.saturating_sub(KEY_RETENTION_DAYS));
        }
    }

    pub(crate) fn inject_fault(&mut self, fault: Fault) -> Result<(), SandboxError> {
        let invalid =
            |field: &'static str, rule: String| Err(SandboxError::InvalidFault { field, rule });
        let on_wechatpay = wechatpay::is_fault_path(&fault.path);
        if ApiEndpoint::from_path(&fault.path).is_none() && !on_wechatpay {
            return invalid(
                "path",
                format!(
                    "must be one of the API paths ({}, {}, {}, or a concrete revoke path), got {:?}",
                    ApiEndpoint::ALL
                        .iter()
                        .map(|e| e.path())
                        .collect::<Vec<_>>()
                        .join(", "),
                    wechatpay::WECHATPAY_REVERSE_BY_ID_PATH,
                    wechatpay::WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH,
                    fault.path
                ),
            );
        }
        wechatpay::check_fault_kind(&fault.kind, on_wechatpay)
            .map_err(|(field, rule)| SandboxError::InvalidFault { field, rule })?;
        if fault.times == 0 || fault.times > 1000 {
            return invalid("times", "must be 1 to 1000".to_owned());
        }
        if let Some(detail) = &fault.res_detail_msg {
            if !matches!(
                fault.kind,
                FaultKind::ResCd(_) | FaultKind::WechatFail { .. }
            ) {
                return invalid(
                    "resDetailMsg",
                    "applies only to the resCd and wechatFail kinds".to_owned(),
                );
            }
            if wechat_final::form_encode(detail).len() > 1024 {
                return invalid(
                    "resDetailMsg",
                    "must be at most 1024 bytes once URL-encoded".to_owned(),
                );
            }
        }
        match &fault.kind {
            FaultKind::ResCd(code) | FaultKind::WechatFail { res_cd: code } => {
                if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return invalid("resCd", "must be 4 ASCII letters or digits".to_owned());
                }
                if code == "0000" {
                    return invalid(
                        "resCd",
                        "must not be 0000 (a success that did nothing would mislead)".to_owned(),
                    );
                }
                if let FaultKind::WechatFail { res_cd } = &fault.kind {
                    self.queue_wechat_final(
                        &fault,
                        WechatFinal::Fail {
                            res_cd: res_cd.clone(),
                            res_detail_msg: fault.res_detail_msg.clone(),
                        },
                    )?;
                    return Ok(());
                }
            }
            FaultKind::WechatVoid => {
                self.queue_wechat_final(&fault, WechatFinal::Void)?;
                return Ok(());
            }
            FaultKind::WithholdWebhook => {
                if fault.path != ApiEndpoint::WechatRevise.path() {
                    return invalid(
                        "kind",
                        format!(
                            "withholdWebhook applies only to {}",
                            ApiEndpoint::WechatRevise.path()
                        ),
                    );
                }
                if fault.apply == Some(false) {
                    return invalid(
                        "apply",
                        "withholdWebhook always lets the cancel through".to_owned(),
                    );
                }
                self.withhold_webhooks = self.withhold_webhooks.saturating_add(fault.times);
                return Ok(());
            }
            FaultKind::Timeout
            | FaultKind::Http500
            | FaultKind::Drop
            | FaultKind::BadSignature
            | FaultKind::SignatureProbe
            | FaultKind::OldTimestamp
            | FaultKind::WechatpayCode { .. } => {}
        }
        let queue = self.faults.entry(fault.path.clone()).or_default();
        if queue.len() >= MAX_QUEUED_FAULTS {
            return invalid(
                "path",
                format!("already has {MAX_QUEUED_FAULTS} faults waiting"),
            );
        }
        let apply = fault.apply.unwrap_or_else(|| fault.kind.default_apply());
        queue.push_back(FaultEntry {
            kind: fault.kind,
            remaining: fault.times,
            apply,
            res_detail_msg: fault.res_detail_msg,
        });
        Ok(())
    }

    /// Queues a `wechatFail` / `wechatVoid` fault for accepted WeChat cancels.
    fn queue_wechat_final(
        &mut self,
        fault: &Fault,
        final_as: WechatFinal,
    ) -> Result<(), SandboxError> {
        let invalid =
            |field: &'static str, rule: String| Err(SandboxError::InvalidFault { field, rule });
        let wechat = ApiEndpoint::WechatRevise.path();
        if fault.path != wechat {
            return invalid(
                "kind",
                format!("{} applies only to {wechat}", fault.kind.name()),
            );
        }
        if fault.apply == Some(false) {
            return invalid(
                "apply",
                format!(
                    "{} changes how an accepted cancel ends; the cancel always goes through",
                    fault.kind.name()
                ),
            );
        }
        if self.wechat_finals.len() >= MAX_QUEUED_FAULTS {
            return invalid(
                "path",
                format!("already has {MAX_QUEUED_FAULTS} wechatFail/wechatVoid faults waiting"),
            );
        }
        self.wechat_finals.push(final_as, fault.times);
        Ok(())
    }

    /// How the next accepted WeChat cancel finishes (consumes one fault).
    pub(crate) fn take_wechat_final(&mut self) -> WechatFinal {
        self.wechat_finals.take()
    }

    /// Consumes one call's worth of the first fault waiting on `path`.
    pub(crate) fn take_fault(&mut self, path: &str) -> Option<ActiveFault> {
        let queue = self.faults.get_mut(path)?;
        let front = queue.front_mut()?;
        let hit = ActiveFault {
            kind: front.kind.clone(),
            apply: front.apply,
            res_detail_msg: front.res_detail_msg.clone(),
        };
        front.remaining = front.remaining.saturating_sub(1);
        if front.remaining == 0 {
            queue.pop_front();
        }
        Some(hit)
    }

    /// The faults still waiting: (path, kind, calls left, apply, detail).
    pub(crate) fn pending_faults(&self) -> Vec<PendingFault> {
        let mut out: Vec<_> = self
            .faults
            .iter()
            .flat_map(|(path, q)| {
                q.iter().map(move |f| PendingFault {
                    path: path.clone(),
                    kind: f.kind.clone(),
                    times: f.remaining,
                    apply: f.apply,
                    res_detail_msg: f.res_detail_msg.clone(),
                })
            })
            .collect();
        let wechat = ApiEndpoint::WechatRevise.path();
        if self.withhold_webhooks > 0 {
            out.push(PendingFault {
                path: wechat.to_owned(),
                kind: FaultKind::WithholdWebhook,
                times: self.withhold_webhooks,
                apply: true,
                res_detail_msg: None,
            });
        }
        for (kind, times, res_detail_msg) in self.wechat_finals.pending() {
            out.push(PendingFault {
                path: wechat.to_owned(),
                kind,
                times,
                apply: true,
                res_detail_msg,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Whether the next accepted WeChat cancel's notices are withheld (consumes one).
    pub(crate) fn take_withhold(&mut self) -> bool {
        if self.withhold_webhooks > 0 {
            self.withhold_webhooks -= 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn log_delivery(&mut self, delivery: WebhookDelivery) {
        if self.webhook_log.len() >= WEBHOOK_LOG_CAP {
            self.webhook_log.pop_front();
        }
        self.webhook_log.push_back(delivery);
    }

    pub(crate) fn webhook_log(&self) -> Vec<WebhookDelivery> {
        self.webhook_log.iter().cloned().collect()
    }

    /// Finishes an accepted WeChat cancel as it was set to (applied, voided
    /// or failed); returns the notice to send, if any.
    pub(crate) fn finalize_wechat(
        &mut self,
        generation: u64,
        pg_cno: &str,
        cancel_pg_cno: &str,
        mall_id: &str,
    ) -> Option<Notice> {
        if generation != self.generation {
            return None;
        }
        let now = self.now();
        let p = self.payments.get_mut(pg_cno)?;
        let idx = p.cancels.iter().position(|c| {
            c.cancel_pg_cno == cancel_pg_cno && c.status == TS01 && c.failure.is_none()
        })?;
        let cancel = p.cancels.get(idx)?;
        let amount = cancel.amount;
        let finish_as = cancel.finish_as.clone();
        p.reserved = p.reserved.saturating_sub(amount);
        // A failure only releases the held amount; nothing is cancelled.
        if matches!(finish_as, WechatFinal::Apply | WechatFinal::Void) {
            p.remaining = p.remaining.saturating_sub(amount);
        }
        let status = p.status();
        let remaining = p.remaining;
        let currency = p.currency;
        let shop_order_no = p.shop_order_no.clone();
        let c = p.cancels.get_mut(idx)?;
        match finish_as {
            WechatFinal::Apply => c.status = status,
            WechatFinal::Void => c.status = TS12,
            WechatFinal::Fail {
                res_cd,
                res_detail_msg,
            } => c.failure = Some((res_cd, res_detail_msg)),
        }
        c.remaining_after = remaining;
        c.transaction_date = now.datetime_string();
        let url = match (&c.notify_url, c.withheld) {
            (Some(url), false) => url.clone(),
            _ => return None,
        };
        let body = wechat_final::notice_body(
            &wechat_final::NoticeFields {
                mall_id,
                shop_order_no: &shop_order_no,
                pg_cno,
                cancel_pg_cno,
                cancel_date: &c.transaction_date,
                currency,
                amount,
            },
            c.failure.as_ref(),
        );
        Some(Notice {
            pg_cno: pg_cno.to_owned(),
            cancel_pg_cno: cancel_pg_cno.to_owned(),
            url,
            body: Bytes::from(body.to_string()),
        })
    }
}
