//! [`AnyStore`]: either backend, picked from a ledger URL at run time.

use std::time::Duration;

use crate::error::LedgerError;
use crate::model::{
    Attempt, AttemptPlan, AttemptResult, Finish, Intent, IntentId, IntentSpec, Lease, Notice,
    OwnerId, StateKind, Timestamp,
};
use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::store::{ImportConflict, Leased, Store, Summary};
use crate::transition::{Planned, Started};
use crate::url::LedgerUrl;

/// Either backend, chosen by a ledger URL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyStore {
    /// `sqlite:PATH`.
    Sqlite(SqliteStore),
    /// `postgres://USER@HOST:PORT/DB`.
    Postgres(PostgresStore),
}

impl AnyStore {
    /// Opens the ledger `url` names (creating or migrating its schema).
    pub async fn open(url: &LedgerUrl) -> Result<AnyStore, LedgerError> {
        match url {
            LedgerUrl::Sqlite(path) => Ok(AnyStore::Sqlite(SqliteStore::open(path).await?)),
            LedgerUrl::Postgres(cfg) => Ok(AnyStore::Postgres(PostgresStore::connect(cfg).await?)),
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

impl Store for AnyStore {
    fn owner(&self) -> &OwnerId {
        dispatch!(self, s => s.owner())
    }
    async fn plan(&self, spec: IntentSpec) -> Result<Planned, LedgerError> {
        dispatch!(self, s => s.plan(spec).await)
    }
    async fn import(
        &self,
        specs: Vec<IntentSpec>,
    ) -> Result<Result<Vec<Planned>, Vec<ImportConflict>>, LedgerError> {
        dispatch!(self, s => s.import(specs).await)
    }
    async fn get(&self, intent_id: &IntentId) -> Result<Option<Intent>, LedgerError> {
        dispatch!(self, s => s.get(intent_id).await)
    }
    async fn list(&self, state: Option<StateKind>) -> Result<Vec<Intent>, LedgerError> {
        dispatch!(self, s => s.list(state).await)
    }
    async fn lease_next(&self, ttl: Duration) -> Result<Option<Leased>, LedgerError> {
        dispatch!(self, s => s.lease_next(ttl).await)
    }
    async fn start_next<B>(
        &self,
        ttl: Duration,
        min_remaining: Duration,
        build: B,
    ) -> Result<Option<Started>, LedgerError>
    where
        B: FnOnce(&Intent) -> Option<AttemptPlan> + Send + 'static,
    {
        dispatch!(self, s => s.start_next(ttl, min_remaining, build).await)
    }
    async fn lease(&self, intent_id: &IntentId, ttl: Duration) -> Result<Leased, LedgerError> {
        dispatch!(self, s => s.lease(intent_id, ttl).await)
    }
    async fn renew(&self, lease: &Lease, min_remaining: Duration) -> Result<Lease, LedgerError> {
        dispatch!(self, s => s.renew(lease, min_remaining).await)
    }
    async fn record_attempt(
        &self,
        lease: &Lease,
        plan: AttemptPlan,
    ) -> Result<Attempt, LedgerError> {
        dispatch!(self, s => s.record_attempt(lease, plan).await)
    }
    async fn record_result(
        &self,
        lease: &Lease,
        number: u32,
        result: AttemptResult,
    ) -> Result<(), LedgerError> {
        dispatch!(self, s => s.record_result(lease, number, result).await)
    }
    async fn finish(&self, lease: &Lease, outcome: Finish) -> Result<Intent, LedgerError> {
        dispatch!(self, s => s.finish(lease, outcome).await)
    }
    async fn finish_with_result(
        &self,
        lease: &Lease,
        number: u32,
        result: AttemptResult,
        outcome: Finish,
    ) -> Result<Intent, LedgerError> {
        dispatch!(self, s => s.finish_with_result(lease, number, result, outcome).await)
    }
    async fn release(&self, lease: &Lease) -> Result<Intent, LedgerError> {
        dispatch!(self, s => s.release(lease).await)
    }
    async fn recoverable(&self) -> Result<Vec<Intent>, LedgerError> {
        dispatch!(self, s => s.recoverable().await)
    }
    async fn summary(&self) -> Result<Summary, LedgerError> {
        dispatch!(self, s => s.summary().await)
    }
    async fn now(&self) -> Result<Timestamp, LedgerError> {
        dispatch!(self, s => s.now().await)
    }
    async fn record_notice(
        &self,
        pg_cno: &str,
        cancel_pg_cno: &str,
        body: Vec<u8>,
    ) -> Result<(Notice, Option<Intent>), LedgerError> {
        dispatch!(self, s => s.record_notice(pg_cno, cancel_pg_cno, body).await)
    }
    async fn notices(&self, pg_cno: &str, cancel_pg_cno: &str) -> Result<Vec<Notice>, LedgerError> {
        dispatch!(self, s => s.notices(pg_cno, cancel_pg_cno).await)
    }
}
