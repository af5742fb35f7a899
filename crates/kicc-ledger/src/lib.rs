//! # kicc-ledger
//!
//! Durable cancel **intents** for kicc-rs, so a refund happens exactly once across crashes,
//! restarts, redeploys and many instances. SQLite is the embedded default (one file, one or
//! several processes on a host); PostgreSQL serves many hosts.
//!
//! An intent is keyed by the merchant's own id (`intent_id`, e.g. their refund id) and holds
//! what to cancel ([`IntentSpec`]), where it stands ([`State`]: planned, in flight, succeeded,
//! declined, not processed, unknown, pending) and every [`Attempt`] made for it: the key
//! (`shopTransactionId`), the Korea date (`cancelReqDate`), the exact request bytes, when it
//! was sent and, once known, its result.
//!
#![cfg_attr(
    feature = "client",
    doc = r##"
## Cancelling through the ledger

With the `client` feature (on by default), [`Ledger`] does the whole protocol for you:
[`Ledger::cancel`] stores the intent, journals every attempt before its first byte, and
returns the outcome; [`Ledger::recover`] finishes what a crashed worker left;
[`Ledger::run_batch`] runs a whole imported file. This runs against the embedded sandbox:

```
use kicc_core::{BaseUrl, Environment, MallId, Merchant, SecretKey};
use kicc_ledger::{Channel, Currency, IntentParams, Ledger, SqliteStore, StateKind};

# #[tokio::main(flavor = "current_thread")]
# async fn main() -> Result<(), Box<dyn std::error::Error>> {
# let sandbox = kicc_sandbox::Sandbox::start("127.0.0.1:0".parse()?, Default::default()).await?;
# let payment = sandbox.create_payment(kicc_sandbox::Channel::Alipay, 5_000, kicc_sandbox::Currency::Usd)?;
# let (sandbox_url, pg_cno) = (sandbox.base_url(), payment.pg_cno);
# let dir = tempfile::tempdir()?;
let merchant = Merchant::new(
    Environment::Custom(BaseUrl::new(&sandbox_url)?),
    MallId::new("T0000001")?,
    SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY)?,
);
let store = SqliteStore::open(dir.path().join("kicc-ledger.db")).await?;
let ledger = Ledger::new(store, merchant, kicc_transport::HyperTransport::new()?);

// Refund 12.03 USD once, whatever happens to this process.
let refund = IntentParams {
    amount: Some(1203),
    currency: Some(Currency::Usd),
    ..IntentParams::new("refund-42", Channel::Alipay, pg_cno.as_str())
};
let intent = ledger.cancel(refund.clone()).await?;
assert_eq!(intent.state.kind(), StateKind::Succeeded);
// The same id again returns the first outcome and sends nothing.
assert_eq!(ledger.cancel(refund).await?.attempts.len(), 1);
# assert_eq!(sandbox.payment(&pg_cno).unwrap().cancels.len(), 1);
# Ok(())
# }
```
"##
)]
//!
//! ## The write-ahead protocol
//!
//! An executor drives each intent through a [`Store`] like this:
//!
//! 1. **Plan**: [`Store::import`] (a batch, all or nothing) or [`Store::plan`] stores the
//!    intent before anything is sent. The same id with the same parameters returns the
//!    existing intent and its outcome; with different parameters it is a
//!    [`TransitionError::Conflict`].
//! 2. **Lease**: [`Store::lease_next`] takes the next planned intent (import order; intents
//!    on one `pgCno` one at a time), [`Store::lease`] a given one, including one whose lease
//!    expired or whose owner died. A [`Lease`] has a generation; every later write carries it
//!    and is refused ([`TransitionError::Fenced`]) once someone else has taken the intent.
//! 3. **Renew**: [`Store::renew`] right before each attempt, asking for at least the
//!    attempt's timeout plus a margin. Expiry always comes from the database's clock.
//! 4. **Record the attempt**: build the message now (not at import: a batch may cross Korea
//!    midnight) and [`Store::record_attempt`] its key, date and exact bytes. Only when that
//!    returns `Ok` (committed to disk) may the first byte be sent. An Alipay/WeChat resend
//!    must repeat the first message exactly; a generic resend must use a new key, unless
//!    every earlier attempt with that key was recorded as never delivered.
//!    [`Store::start_next`] does steps 2 to 4 for a planned intent in one transaction (one
//!    commit): the message is built for the intent just leased, inside it.
//! 5. **Record the result**: [`Store::record_result`] before the next step (the last
//!    attempt's result may instead go with the outcome: [`Store::finish_with_result`]).
//! 6. **Finish**: [`Store::finish`] with succeeded, declined, not processed (with proof:
//!    [`NotProcessedProof`]), unknown, or pending (WeChat). Final states never change.
//!
//! Recovery lists [`Store::recoverable`] intents (in flight under an expired lease or a dead
//! owner, and unknown ones), each with every attempt's key, date, bytes and send time, leases
//! them and finishes them by the API's rules: a wallet cancel by resending the stored bytes,
//! a generic one by looking up every key. The ledger refuses to mark an intent that may have
//! been processed as not processed unless every such key was looked up and found absent,
//! and never lets a later refusal make it "declined" (DESIGN.md invariants 8 and 11).
//!
//! WeChat result notices are unsigned: [`Store::record_notice`] stores one durably (acknowledge
//! it only after that returns) and names the intent whose accepted cancel it matches; the
//! intent becomes final only after a status query confirms it. Notices that arrive early are
//! kept and found with [`Store::notices`] once the acceptance is recorded.
//!
//! The rules are pure functions in [`transition`], shared by both backends and tested with a
//! virtual clock; the stores only load, apply and write back, in one transaction.
//!
//! ```
//! use std::time::Duration;
//! use kicc_ledger::{
//!     AttemptPlan, AttemptResult, Channel, Currency, Finish, IntentParams, Leased,
//!     OutcomeKind, SqliteStore, StateKind, Store,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("kicc-ledger.db")).await?;
//! let spec = IntentParams {
//!     amount: Some(1203), // 12.03 USD, in cents
//!     currency: Some(Currency::Usd),
//!     ..IntentParams::new("refund-42", Channel::Alipay, "2026112100001")
//! }
//! .validate()?;
//! store.plan(spec).await?;
//!
//! while let Some(Leased { lease, intent, .. }) = store.lease_next(Duration::from_secs(120)).await? {
//!     let lease = store.renew(&lease, Duration::from_secs(30 + 10)).await?;
//!     // The channel crate builds the message for this attempt (key, Korea date, body).
//!     let body = format!(r#"{{"pgCno":"{}","shopTransactionId":"k-1"}}"#, intent.spec.pg_cno());
//!     let attempt = store
//!         .record_attempt(&lease, AttemptPlan {
//!             key: "k-1".into(),
//!             korea_date: "20261202".into(),
//!             request: body.into_bytes(),
//!         })
//!         .await?;
//!     // Durable: now send `attempt.request`, then record what came back.
//!     store
//!         .record_result(&lease, attempt.number, AttemptResult {
//!             http_status: Some(200),
//!             res_cd: Some("0000".into()),
//!             detail: "approved".into(),
//!             outcome: OutcomeKind::Succeeded,
//!         })
//!         .await?;
//!     store.finish(&lease, Finish::Succeeded { cancel_pg_cno: "C-1".into() }).await?;
//! }
//! assert_eq!(store.summary().await?.succeeded, 1);
//! # let i = store.get(&kicc_ledger::IntentId::new("refund-42")?).await?.unwrap();
//! # assert_eq!(i.state.kind(), StateKind::Succeeded);
//! # Ok(())
//! # }
//! ```
//!
//! ## Backends
//!
//! - [`SqliteStore`] (`sqlite:PATH`): WAL, `synchronous=FULL`, one writer thread per store
//!   that groups concurrent operations into one `BEGIN IMMEDIATE` transaction (each in its
//!   own savepoint) so they share a disk sync; a dead owner is seen at once through a
//!   per-owner lock file.
//! - [`PostgresStore`] (`postgres://USER@HOST:PORT/DB`): unique `intent_id`, leases under
//!   row locks (`FOR UPDATE SKIP LOCKED`), a session advisory lock per owner; concurrent
//!   lease writes and claims are group-committed (one transaction, one WAL flush, each
//!   operation answered alone). The password
//!   comes from `PGPASSWORD` or `.pgpass`, never from the URL ([`UrlError::PasswordInUrl`]).
//!
//! [`AnyStore::open`] picks one from a [`LedgerUrl`]. The [`batch`] module reads the batch
//! CSV and writes the report.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// One path per item (kicc-core's "API design"): the everyday types are re-exported at the
// root from private modules; `transition` (the sans-IO rules, and what a `Store`
// implementation returns), `batch` (the CSV formats) and `metrics` (the gauge's names) are
// namespaces named through their module.
mod any;
pub mod batch;
mod error;
#[cfg(feature = "client")]
mod exec;
mod invalid;
pub mod metrics;
mod model;
mod money;
mod postgres;
mod rows;
mod sqlite;
mod store;
pub mod transition;
mod url;

pub use any::AnyStore;
pub use error::{Conflict, InvalidField, LedgerError, StorageError, TransitionError, UrlError};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use exec::{summarize, BatchOptions, ExecConfig, ExecError, Ledger};
pub use model::*;
pub use money::Currency;
pub use postgres::{PostgresBuilder, PostgresStore};
pub use sqlite::SqliteStore;
pub use store::{ImportConflict, Leased, Store, Summary};
pub use url::{password_from, password_from_env, pgpass_lookup, LedgerUrl, Password, PgTarget};

// The README's example (`no_run`: it needs KICC's test gateway and a secret key),
// compiled with the doc tests so it cannot rot.
#[cfg(all(doctest, feature = "client"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
