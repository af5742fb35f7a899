//! The stored shape of intents and attempts, shared by both backends: plain columns, and the
//! conversions that re-validate everything read back (a damaged row is
//! [`LedgerError::Corrupt`], never a panic).

use crate::error::LedgerError;
use crate::model::{
    Attempt, AttemptResult, Channel, Intent, IntentParams, OutcomeKind, OwnerId, State, StateKind,
    Timestamp,
};
use crate::money::Currency;

/// The intent columns, in the order [`IntentRow`] reads them.
pub(crate) const INTENT_COLUMNS: &str = "seq, intent_id, channel, pg_cno, amount, currency, \
     revise_type_code, remain_amount, reason, notify_url, state, lease_owner, lease_expires_ms, \
     generation, cancel_pg_cno, res_cd, detail";

/// The attempt columns, in the order [`AttemptRow`] reads them.
pub(crate) const ATTEMPT_COLUMNS: &str = "intent_seq, number, shop_transaction_id, korea_date, \
     request, sent_ms, http_status, res_cd, detail, outcome";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IntentRow {
    pub seq: i64,
    pub intent_id: String,
    pub channel: String,
    pub pg_cno: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub revise_type_code: String,
    pub remain_amount: Option<i64>,
    pub reason: Option<String>,
    pub notify_url: Option<String>,
    pub state: String,
    pub lease_owner: Option<String>,
    pub lease_expires_ms: Option<i64>,
    pub generation: i64,
    pub cancel_pg_cno: Option<String>,
    pub res_cd: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AttemptRow {
    pub intent_seq: i64,
    pub number: i64,
    pub key: String,
    pub korea_date: String,
    pub request: Vec<u8>,
    pub sent_ms: i64,
    pub http_status: Option<i64>,
    pub res_cd: Option<String>,
    pub detail: Option<String>,
    pub outcome: Option<String>,
}

fn corrupt(what: impl Into<String>) -> LedgerError {
    LedgerError::Corrupt(what.into())
}

fn to_u64(v: Option<i64>, field: &str) -> Result<Option<u64>, LedgerError> {
    v.map(|v| u64::try_from(v).map_err(|_| corrupt(format!("negative {field}"))))
        .transpose()
}

fn to_i64(v: u64) -> i64 {
    // Amounts are at most 999_999_999_999 and generations count leases: both fit.
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl IntentRow {
    pub fn from_intent(i: &Intent) -> IntentRow {
        let (owner, expires) = match &i.state {
            State::InFlight {
                owner, expires_at, ..
            } => (Some(owner.0.clone()), Some(expires_at.0)),
            _ => (None, None),
        };
        let res_cd = match &i.state {
            State::Declined { res_cd } => Some(res_cd.clone()),
            _ => i.res_cd.clone(),
        };
        IntentRow {
            seq: i.seq,
            intent_id: i.spec.intent_id().as_str().to_owned(),
            channel: i.spec.channel().as_str().to_owned(),
            pg_cno: i.spec.pg_cno().to_owned(),
            amount: i.spec.amount().map(to_i64),
            currency: i.spec.currency().map(|c| c.code().to_owned()),
            revise_type_code: i.spec.revise_type_code().to_owned(),
            remain_amount: i.spec.remain_amount().map(to_i64),
            reason: i.spec.reason().map(str::to_owned),
            notify_url: i.spec.notify_url().map(str::to_owned),
            state: i.state.kind().as_str().to_owned(),
            lease_owner: owner,
            lease_expires_ms: expires,
            generation: to_i64(i.generation),
            cancel_pg_cno: i.cancel_pg_cno.clone(),
            res_cd,
            detail: i.detail.clone(),
        }
    }

    pub fn into_intent(self, attempts: Vec<AttemptRow>) -> Result<Intent, LedgerError> {
        let channel = Channel::parse(&self.channel)
            .ok_or_else(|| corrupt(format!("unknown channel {:?}", self.channel)))?;
        let currency = self
            .currency
            .as_deref()
            .map(|c| Currency::parse(c).ok_or_else(|| corrupt(format!("unknown currency {c:?}"))))
            .transpose()?;
        let params = IntentParams {
            intent_id: self.intent_id,
            channel,
            pg_cno: self.pg_cno,
            amount: to_u64(self.amount, "amount")?,
            currency,
            revise_type_code: Some(self.revise_type_code),
            remain_amount: to_u64(self.remain_amount, "remain_amount")?,
            reason: self.reason,
            notify_url: self.notify_url,
        };
        let spec = params
            .validate()
            .map_err(|e| corrupt(format!("stored intent is invalid: {e}")))?;
        let generation =
            u64::try_from(self.generation).map_err(|_| corrupt("negative generation"))?;
        let kind = StateKind::parse(&self.state)
            .ok_or_else(|| corrupt(format!("unknown state {:?}", self.state)))?;
        let need = |v: Option<String>, what: &str| {
            v.ok_or_else(|| corrupt(format!("{} intent without {what}", kind.as_str())))
        };
        let state = match kind {
            StateKind::Planned => State::Planned,
            StateKind::InFlight => State::InFlight {
                owner: OwnerId(need(self.lease_owner, "lease owner")?),
                generation,
                expires_at: Timestamp(
                    self.lease_expires_ms
                        .ok_or_else(|| corrupt("in_flight intent without lease expiry"))?,
                ),
            },
            StateKind::Succeeded => State::Succeeded {
                cancel_pg_cno: need(self.cancel_pg_cno.clone(), "cancel_pg_cno")?,
            },
            StateKind::Declined => State::Declined {
                res_cd: need(self.res_cd.clone(), "res_cd")?,
            },
            StateKind::NotProcessed => State::NotProcessed,
            StateKind::Unknown => State::Unknown,
            StateKind::Pending => State::Pending {
                cancel_pg_cno: need(self.cancel_pg_cno.clone(), "cancel_pg_cno")?,
            },
        };
        let mut list = Vec::with_capacity(attempts.len());
        for a in attempts {
            list.push(a.into_attempt()?);
        }
        list.sort_by_key(|a| a.number);
        Ok(Intent {
            seq: self.seq,
            spec,
            state,
            generation,
            cancel_pg_cno: self.cancel_pg_cno,
            res_cd: self.res_cd,
            detail: self.detail,
            attempts: list,
        })
    }
}

impl AttemptRow {
    pub fn from_attempt(intent_seq: i64, a: &Attempt) -> AttemptRow {
        let r = a.result.as_ref();
        AttemptRow {
            intent_seq,
            number: i64::from(a.number),
            key: a.key.clone(),
            korea_date: a.korea_date.clone(),
            request: a.request.clone(),
            sent_ms: a.sent_at.0,
            http_status: r.and_then(|r| r.http_status).map(i64::from),
            res_cd: r.and_then(|r| r.res_cd.clone()),
            detail: r.map(|r| r.detail.clone()),
            outcome: r.map(|r| r.outcome.as_str().to_owned()),
        }
    }

    fn into_attempt(self) -> Result<Attempt, LedgerError> {
        let result = match self.outcome {
            None => None,
            Some(o) => Some(AttemptResult {
                http_status: self
                    .http_status
                    .map(|s| u16::try_from(s).map_err(|_| corrupt("bad http status")))
                    .transpose()?,
                res_cd: self.res_cd,
                detail: self.detail.unwrap_or_default(),
                outcome: OutcomeKind::parse(&o)
                    .ok_or_else(|| corrupt(format!("unknown outcome {o:?}")))?,
            }),
        };
        Ok(Attempt {
            number: u32::try_from(self.number).map_err(|_| corrupt("bad attempt number"))?,
            key: self.key,
            korea_date: self.korea_date,
            request: self.request,
            sent_at: Timestamp(self.sent_ms),
            result,
        })
    }
}

/// What changed in the attempts between `old` and `new` (the pure functions only append
/// attempts and fill in results): (attempts to insert, attempts whose result to write).
pub(crate) fn attempt_changes<'a>(
    old: &Intent,
    new: &'a Intent,
) -> (Vec<&'a Attempt>, Vec<&'a Attempt>) {
    let mut inserts = Vec::new();
    let mut results = Vec::new();
    for a in &new.attempts {
        match old.attempts.iter().find(|o| o.number == a.number) {
            None => inserts.push(a),
            Some(o) if o.result != a.result => results.push(a),
            Some(_) => {}
        }
    }
    (inserts, results)
}

/// Groups attempt rows by intent seq, for loading many intents at once.
pub(crate) fn group_attempts(
    rows: Vec<AttemptRow>,
) -> std::collections::HashMap<i64, Vec<AttemptRow>> {
    let mut map: std::collections::HashMap<i64, Vec<AttemptRow>> = std::collections::HashMap::new();
    for r in rows {
        map.entry(r.intent_seq).or_default().push(r);
    }
    map
}
