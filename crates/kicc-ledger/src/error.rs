//! Typed errors, split by what the caller must do next.

use std::fmt;

pub use crate::invalid::InvalidField;
use crate::model::{IntentId, StateKind};

/// The same intent id was given again with different parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Conflict {
    /// The intent id.
    pub intent_id: IntentId,
    /// Every differing field: (name, stored value, given value).
    pub differences: Vec<(&'static str, String, String)>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "intent {:?} already exists with different parameters:",
            self.intent_id.as_str()
        )?;
        for (i, (field, stored, given)) in self.differences.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{field} is {stored:?}, given {given:?}")?;
        }
        Ok(())
    }
}

/// A transition the ledger's rules refuse. Produced by the pure [`crate::transition`]
/// functions and returned unchanged by every store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// A field is invalid.
    #[error("invalid {0}")]
    Invalid(#[from] InvalidField),
    /// Same id, different parameters (checked before "already final").
    #[error("{0}")]
    Conflict(Conflict),
    /// The intent is final (succeeded, declined, not processed) and is never sent again.
    #[error("intent {intent_id} is already final ({state})")]
    AlreadyFinal {
        /// The intent.
        intent_id: IntentId,
        /// Its final state.
        state: StateKind,
    },
    /// Another live owner holds the lease.
    #[error("intent {intent_id} is leased by a live owner {owner} until its lease expires")]
    Busy {
        /// The intent.
        intent_id: IntentId,
        /// The holder.
        owner: String,
    },
    /// An earlier intent on the same `pg_cno` is not final yet: intents on one payment run
    /// one at a time, in file order.
    #[error("intent {intent_id} waits for the earlier intent {earlier} on the same pg_cno")]
    Blocked {
        /// The intent.
        intent_id: IntentId,
        /// The earliest non-final intent on its `pg_cno`.
        earlier: IntentId,
    },
    /// The lease was taken over (or released): this worker must not write anything more.
    #[error(
        "lease on {intent_id} is no longer held (generation {generation}, intent now at {current})"
    )]
    Fenced {
        /// The intent.
        intent_id: IntentId,
        /// The lease's generation.
        generation: u64,
        /// The intent's generation.
        current: u64,
    },
    /// The lease expired (by the database's clock) before this write.
    #[error("lease on {intent_id} expired")]
    LeaseExpired {
        /// The intent.
        intent_id: IntentId,
    },
    /// A renewed lease would still leave less than the time the attempt needs.
    #[error("lease on {intent_id} would leave {remaining_ms} ms, the attempt needs {needed_ms} ms: raise the lease TTL")]
    LeaseTooShort {
        /// The intent.
        intent_id: IntentId,
        /// What a renewal gives.
        remaining_ms: u64,
        /// What was asked.
        needed_ms: u64,
    },
    /// A rule of the write-ahead protocol or of the final states was broken.
    #[error("intent {intent_id}: {rule}")]
    Rule {
        /// The intent.
        intent_id: IntentId,
        /// What is wrong.
        rule: String,
    },
}

/// A ledger URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Neither `sqlite:PATH` nor `postgres://USER@HOST:PORT/DB`.
    #[error("ledger URL must be sqlite:PATH or postgres://USER@HOST:PORT/DB: {0}")]
    Malformed(String),
    /// The URL carries a password. It never goes in a URL (shell history, process list):
    /// use `PGPASSWORD` or a `.pgpass` file.
    #[error("ledger URL must not contain a password: set PGPASSWORD or use a .pgpass file")]
    PasswordInUrl,
}

/// Everything a ledger operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A rule refused the operation; nothing was written.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// No intent with that id.
    #[error("no intent {0}")]
    NotFound(IntentId),
    /// The ledger URL cannot be used.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The database's schema is newer than this library knows.
    #[error("ledger schema version {found} is newer than this library's {supported}: upgrade kicc-ledger")]
    SchemaTooNew {
        /// In the database.
        found: i64,
        /// Known here.
        supported: i64,
    },
    /// A stored row does not parse (a damaged or foreign database).
    #[error("ledger row is corrupt: {0}")]
    Corrupt(String),
    /// The storage engine failed (IO, connection, SQL). The message names no password; the
    /// engine's own error, when there is one, is the error's `source()`.
    #[error(transparent)]
    Storage(StorageError),
}

impl LedgerError {
    /// A storage failure described by `message` alone.
    pub(crate) fn storage(message: impl Into<String>) -> Self {
        LedgerError::Storage(StorageError {
            message: message.into(),
            source: None,
        })
    }

    /// A storage failure described by `message`, caused by the engine's error `source`.
    pub(crate) fn storage_from(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        LedgerError::Storage(StorageError {
            message: message.into(),
            source: Some(Box::new(source)),
        })
    }
}

/// A failure of the storage engine ([`LedgerError::Storage`]): what failed, and the engine's
/// error as [`std::error::Error::source`] when there is one (a failure shared by a whole
/// SQLite group commit carries only its message).
#[derive(Debug)]
pub struct StorageError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StorageError {
    /// What failed, naming no password.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ledger storage error: {}", self.message)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        LedgerError::storage_from(format!("sqlite: {e}"), e)
    }
}

impl From<tokio_postgres::Error> for LedgerError {
    fn from(e: tokio_postgres::Error) -> Self {
        // tokio-postgres errors never carry the password (it is only sent in the
        // authentication exchange). Its Display of a server error is only "db error": add the
        // server's code and message, which name what failed.
        let message = match e.as_db_error() {
            Some(db) => format!(
                "postgres: {} ({}): {}",
                db.message(),
                db.code().code(),
                db.detail().unwrap_or("")
            ),
            None => format!("postgres: {e}"),
        };
        LedgerError::storage_from(message, e)
    }
}
