//! What both the store and its group committer need from a PostgreSQL session: connecting,
//! the database clock, and reading intent and attempt rows. A module of its own so the
//! committer ([`super::group`]) and the store ([`super::PostgresStore`]) import it, not
//! each other.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::error::LedgerError;
use crate::rows::{AttemptRow, IntentRow};
use crate::url::{Password, PgTarget};

/// The database clock, in milliseconds since the epoch: leases are computed from it, never
/// from a host's clock.
pub(super) const NOW_MS: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Opens one session to `target` (the password from the builder or the environment, never
/// from the URL), its connection driven by a task of its own.
pub(super) async fn connect_one(
    target: &PgTarget,
    password: Option<&Password>,
) -> Result<Client, LedgerError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.user(&target.user)
        .host(&target.host)
        .port(target.port)
        .dbname(&target.dbname)
        .application_name("kicc-ledger")
        .connect_timeout(Duration::from_secs(10));
    if let Some(p) = password {
        cfg.password(p.expose());
    }
    let (client, connection) = cfg.connect(NoTls).await.map_err(|e| {
        LedgerError::storage_from(format!("postgres: connecting to {target}: {e}"), e)
    })?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; errors then surface on
        // the client's next call.
        let _ = connection.await;
    });
    Ok(client)
}

/// Column `idx` of `row`, a type mismatch reported as a corrupt ledger.
pub(super) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    idx: usize,
) -> Result<T, LedgerError> {
    row.try_get(idx)
        .map_err(|e| LedgerError::Corrupt(format!("column {idx}: {e}")))
}

/// An intent row in the column order of `INTENT_COLUMNS`.
pub(super) fn intent_row(r: &tokio_postgres::Row) -> Result<IntentRow, LedgerError> {
    Ok(IntentRow {
        seq: get(r, 0)?,
        intent_id: get(r, 1)?,
        channel: get(r, 2)?,
        pg_cno: get(r, 3)?,
        amount: get(r, 4)?,
        currency: get(r, 5)?,
        revise_type_code: get(r, 6)?,
        remain_amount: get(r, 7)?,
        reason: get(r, 8)?,
        notify_url: get(r, 9)?,
        state: get(r, 10)?,
        lease_owner: get(r, 11)?,
        lease_expires_ms: get(r, 12)?,
        generation: get(r, 13)?,
        cancel_pg_cno: get(r, 14)?,
        res_cd: get(r, 15)?,
        detail: get(r, 16)?,
    })
}

/// An attempt row in the column order of `ATTEMPT_COLUMNS`.
pub(super) fn attempt_row(r: &tokio_postgres::Row) -> Result<AttemptRow, LedgerError> {
    Ok(AttemptRow {
        intent_seq: get(r, 0)?,
        number: get(r, 1)?,
        key: get(r, 2)?,
        korea_date: get(r, 3)?,
        request: get(r, 4)?,
        sent_ms: get(r, 5)?,
        http_status: get(r, 6)?,
        res_cd: get(r, 7)?,
        detail: get(r, 8)?,
        outcome: get(r, 9)?,
    })
}
