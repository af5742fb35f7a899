//! kicc-ledger: durable cancel intents (front page written with the stores).
#![forbid(unsafe_code)]

pub mod error;
pub mod model;
pub mod money;
pub mod transition;

pub use error::{Conflict, InvalidField, LedgerError, TransitionError, UrlError};
pub use model::*;
pub use money::Currency;
