//! Layer 2, state: everything that changes while the sandbox runs. All of it
//! sits behind one mutex that is never held across an `await`; the rule
//! modules take it as `&mut State`.
//!
//! [`records`] holds the data it is made of; [`faults`] and [`payments`] add
//! the methods that queue faults and create or finish payments.

mod faults;
mod payments;
mod records;

use std::collections::{HashMap, HashSet, VecDeque};

use crate::clock::{self, KoreaTime};
use crate::ids::IdGen;
use crate::model::{CancelState, PaymentState, WebhookDelivery};
use crate::settings::Settings;
use crate::wechat_final::WechatFinalQueue;
use crate::wechatpay::WxState;
use crate::SandboxError;

use records::FaultEntry;
pub(crate) use records::{
    status_message, ActiveFault, CancelRec, KeyRecord, Notice, PaymentRec, TxLog, TS01, TS04, TS06,
};

/// How many webhook deliveries the log keeps (oldest dropped first).
const WEBHOOK_LOG_CAP: usize = 10_000;
/// Idempotency records older than this many days are forgotten.
const KEY_RETENTION_DAYS: i64 = 7;

/// Everything that changes while the sandbox runs.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) seed: u64,
    pub(crate) ids: IdGen,
    pub(crate) payments: HashMap<String, PaymentRec>,
    /// Every identifier handed out, so none is handed out twice.
    pub(crate) issued: HashSet<String>,
    pub(crate) keys: HashMap<String, KeyRecord>,
    pub(crate) key_inserts: u64,
    pub(crate) faults: HashMap<String, VecDeque<FaultEntry>>,
    pub(crate) withhold_webhooks: u32,
    /// `wechatFail` / `wechatVoid` faults waiting for accepted WeChat cancels.
    pub(crate) wechat_finals: WechatFinalQueue,
    /// `pgCno`s of escrow payments.
    pub(crate) escrow: HashSet<String>,
    /// Run-time settings (`/sandbox/settings`); kept across `reset`.
    pub(crate) settings: Settings,
    /// Processed revise requests, for `retrieveTransaction`.
    pub(crate) tx_log: TxLog,
    pub(crate) clock_offset: i64,
    pub(crate) initial_clock_offset: i64,
    pub(crate) webhook_log: VecDeque<WebhookDelivery>,
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

    /// The sandbox's "now" as Unix seconds.
    pub(crate) fn unix_now(&self) -> i64 {
        clock::unix_now(self.clock_offset)
    }

    /// The pgCno of a WeChat Pay order, by `transaction_id` or `out_trade_no`.
    pub(crate) fn wechatpay_pg_cno(&self, id: &str) -> Option<&str> {
        self.wx
            .by_transaction_id
            .get(id)
            .or_else(|| self.wx.by_out_trade_no.get(id))
            .map(String::as_str)
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

    pub(crate) fn log_delivery(&mut self, delivery: WebhookDelivery) {
        if self.webhook_log.len() >= WEBHOOK_LOG_CAP {
            self.webhook_log.pop_front();
        }
        self.webhook_log.push_back(delivery);
    }

    pub(crate) fn webhook_log(&self) -> Vec<WebhookDelivery> {
        self.webhook_log.iter().cloned().collect()
    }
}
