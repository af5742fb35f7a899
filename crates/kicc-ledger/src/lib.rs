//! kicc-ledger: durable cancel intents (front page written with the stores).
#![forbid(unsafe_code)]

pub mod batch;
pub mod error;
pub mod model;
pub mod money;
pub mod postgres;
mod rows;
pub mod sqlite;
pub mod store;
pub mod transition;
pub mod url;

pub use batch::{read_batch, write_report, BadRow, BatchError, BatchRow};
pub use error::{Conflict, InvalidField, LedgerError, TransitionError, UrlError};
pub use model::*;
pub use money::Currency;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use store::{AnyStore, ImportConflict, Leased, Store, Summary};
pub use transition::Planned;
pub use url::{LedgerUrl, Password, PgTarget};
