//! The storage seam: the [`Store`] trait, implemented by [`crate::SqliteStore`] and
//! [`crate::PostgresStore`] ([`crate::AnyStore`] picks one from a ledger URL at run time).

use std::future::Future;
use std::time::Duration;

use crate::error::{Conflict, LedgerError};
use crate::model::{
    Attempt, AttemptPlan, AttemptResult, Finish, Intent, IntentId, IntentSpec, Lease, Notice,
    OwnerId, StateKind, Timestamp,
};
use crate::transition::{Planned, Started};

/// A lease just taken, with the intent as it stood when taken (spec, attempts so far).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leased {
    /// The lease: pass it to every write.
    pub lease: Lease,
    /// The intent, in flight under this lease.
    pub intent: Intent,
}

/// How many intents are in each state: the batch's JSON summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// All intents.
    pub total: u64,
    /// Cancelled.
    pub succeeded: u64,
    /// Refused by the gateway.
    pub declined: u64,
    /// Certainly not cancelled.
    pub not_processed: u64,
    /// Outcome unknown.
    pub unknown: u64,
    /// WeChat: accepted, final result to come.
    pub pending: u64,
    /// Leased.
    pub in_flight: u64,
    /// Nothing sent yet.
    pub planned: u64,
}

impl Summary {
    /// Adds one intent in state `kind`.
    pub fn add(&mut self, kind: StateKind) {
        self.add_count(kind, 1);
    }

    /// Adds `n` intents in state `kind`.
    pub fn add_count(&mut self, kind: StateKind, n: u64) {
        self.total += n;
        *match kind {
            StateKind::Planned => &mut self.planned,
            StateKind::InFlight => &mut self.in_flight,
            StateKind::Succeeded => &mut self.succeeded,
            StateKind::Declined => &mut self.declined,
            StateKind::NotProcessed => &mut self.not_processed,
            StateKind::Unknown => &mut self.unknown,
            StateKind::Pending => &mut self.pending,
        } += n;
    }

    /// The one-line JSON form:
    /// `{"total":..,"succeeded":..,"declined":..,"not_processed":..,"unknown":..,"pending":..,"in_flight":..,"planned":..}`.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// A conflict found while importing: the position of the spec in the imported list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportConflict {
    /// Index into the list given to [`Store::import`].
    pub index: usize,
    /// What differs.
    pub conflict: Conflict,
}

/// Durable storage of intents. Every method is one transaction; every write under a lease
/// checks the lease's generation in that transaction (fencing). A backend may commit the
/// operations of several callers in one transaction (SQLite and PostgreSQL group commit),
/// each still applied or refused alone, and answered only once that commit is known.
///
/// A method's `Ok` means committed. Dropping its future before it completes does not undo
/// it: the operation may or may not have been committed (an attempt recorded that way has
/// no result, so recovery treats it as possibly sent, which is safe).
///
/// The write-ahead protocol an executor follows:
/// [`import`](Store::import) or [`plan`](Store::plan) → [`lease_next`](Store::lease_next) →
/// ([`renew`](Store::renew) → [`record_attempt`](Store::record_attempt) → send →
/// [`record_result`](Store::record_result))+ → [`finish`](Store::finish).
pub trait Store: Send + Sync {
    /// The owner id leases taken through this store carry.
    fn owner(&self) -> &OwnerId;

    /// Stores one intent, or returns the existing one with the same id and parameters
    /// ([`Planned::Existing`], whatever its state); a different one with the same id is a
    /// [`crate::TransitionError::Conflict`].
    fn plan(&self, spec: IntentSpec) -> impl Future<Output = Result<Planned, LedgerError>> + Send;

    /// Stores many intents in list order (that order is the per-`pg_cno` run order), all or
    /// nothing: when any conflicts with a stored intent (or an earlier one in the list),
    /// nothing is stored and every conflict is returned (`Ok(Err(..))`).
    fn import(
        &self,
        specs: Vec<IntentSpec>,
    ) -> impl Future<Output = Result<Result<Vec<Planned>, Vec<ImportConflict>>, LedgerError>> + Send;

    /// One intent with all its attempts.
    fn get(
        &self,
        intent_id: &IntentId,
    ) -> impl Future<Output = Result<Option<Intent>, LedgerError>> + Send;

    /// Every intent (in import order), or those in `state`, with their attempts.
    fn list(
        &self,
        state: Option<StateKind>,
    ) -> impl Future<Output = Result<Vec<Intent>, LedgerError>> + Send;

    /// Leases the first planned intent (import order) that no earlier non-final intent on
    /// its `pg_cno` holds back and no other worker is taking; `None` when there is none now.
    fn lease_next(
        &self,
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<Leased>, LedgerError>> + Send;

    /// [`Store::lease_next`] and, in the same transaction, [`Store::record_attempt`] of the
    /// first attempt `build` makes for the intent just leased ([`crate::transition::start`]): one
    /// commit instead of two, with every write-ahead rule kept (the message is built when
    /// its attempt is leased; its key, Korea date and exact bytes are durable, with the
    /// intent in flight, before its first byte). Refused ([`crate::TransitionError::LeaseTooShort`])
    /// when `ttl` is below `min_remaining` (the attempt's timeout plus a margin). `None`
    /// when nothing is free now.
    fn start_next<B>(
        &self,
        ttl: Duration,
        min_remaining: Duration,
        build: B,
    ) -> impl Future<Output = Result<Option<Started>, LedgerError>> + Send
    where
        B: FnOnce(&Intent) -> Option<AttemptPlan> + Send + 'static;

    /// Leases one intent: planned, unknown, pending, or in flight under an expired lease or a
    /// dead owner (taken over at once). Refused when final, busy or held back.
    fn lease(
        &self,
        intent_id: &IntentId,
        ttl: Duration,
    ) -> impl Future<Output = Result<Leased, LedgerError>> + Send;

    /// Extends the lease to the database's now plus its TTL; refused when taken over, or when
    /// the TTL is below `min_remaining` (the next attempt's timeout plus a margin).
    fn renew(
        &self,
        lease: &Lease,
        min_remaining: Duration,
    ) -> impl Future<Output = Result<Lease, LedgerError>> + Send;

    /// Makes an attempt durable (key, Korea date, exact bytes, sent-at by the database's
    /// clock) BEFORE its first byte is sent. Refused when the lease is not held or expired.
    fn record_attempt(
        &self,
        lease: &Lease,
        plan: AttemptPlan,
    ) -> impl Future<Output = Result<Attempt, LedgerError>> + Send;

    /// Makes attempt `number`'s result durable, before the next step.
    fn record_result(
        &self,
        lease: &Lease,
        number: u32,
        result: AttemptResult,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// Ends the intent (or parks it as unknown / pending) and frees the lease.
    fn finish(
        &self,
        lease: &Lease,
        outcome: Finish,
    ) -> impl Future<Output = Result<Intent, LedgerError>> + Send;

    /// [`Store::record_result`] of attempt `number` and then [`Store::finish`], in one
    /// transaction: both or neither (one commit instead of two for the last attempt).
    fn finish_with_result(
        &self,
        lease: &Lease,
        number: u32,
        result: AttemptResult,
        outcome: Finish,
    ) -> impl Future<Output = Result<Intent, LedgerError>> + Send;

    /// Frees the lease without an outcome: back to planned if nothing was recorded, else
    /// pending (accepted WeChat cancel) or unknown.
    fn release(&self, lease: &Lease) -> impl Future<Output = Result<Intent, LedgerError>> + Send;

    /// Intents to recover, in import order: in flight with an expired lease or a dead owner,
    /// and unknown ones, each with every attempt (key, date, bytes, sent-at).
    fn recoverable(&self) -> impl Future<Output = Result<Vec<Intent>, LedgerError>> + Send;

    /// Counts by state.
    fn summary(&self) -> impl Future<Output = Result<Summary, LedgerError>> + Send;

    /// The database's clock now: the clock of leases and of every `sent_at`, for rules
    /// such as "look up no sooner than the last send plus the processing bound" or "stop
    /// identical resends a day after the first".
    fn now(&self) -> impl Future<Output = Result<Timestamp, LedgerError>> + Send;

    /// Stores a result notice; returns once it is committed (only then acknowledge it to the
    /// sender), with the intent whose accepted cancel it names (`pg_cno` and
    /// `cancel_pg_cno`), if that acceptance is recorded yet. Changes no intent.
    fn record_notice(
        &self,
        pg_cno: &str,
        cancel_pg_cno: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(Notice, Option<Intent>), LedgerError>> + Send;

    /// Every stored notice for (`pg_cno`, `cancel_pg_cno`), oldest first, including those
    /// that arrived before the acceptance was recorded.
    fn notices(
        &self,
        pg_cno: &str,
        cancel_pg_cno: &str,
    ) -> impl Future<Output = Result<Vec<Notice>, LedgerError>> + Send;
}
