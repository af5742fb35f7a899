//! The PostgreSQL backend: many workers on many hosts share one database.
//!
//! - `intent_id` has a unique constraint; imports insert with `ON CONFLICT DO NOTHING`, so two
//!   processes importing the same file at once end up with one row per intent.
//! - Leases are taken under row locks: `lease_next` picks with `FOR UPDATE SKIP LOCKED`, so
//!   two workers never take the same intent, and every write re-reads its row `FOR UPDATE`
//!   and checks the lease generation (fencing) in the same transaction.
//! - Group commit: every write under a lease and every claim of the next intent is queued to
//!   the store's committers (`PostgresBuilder::committers`, each its own connection), which
//!   write all that is queued in one transaction of set-based statements, one WAL flush for
//!   many workers; each operation is still answered alone (a fenced write fails only itself,
//!   a failed commit fails every operation in it). See the `group` module's source for the
//!   statements. Plans, imports, reads and `lease` use the pool.
//! - Time is the server's `clock_timestamp()`, never a host's clock.
//! - Dead owners: each store holds a session advisory lock (`pg_try_advisory_lock`) on its own
//!   owner number for as long as its session lives. The server drops it when the session
//!   ends (process killed, host gone, connection cut), so `pg_locks` tells at once which
//!   owners are alive.
//!
//! Connections are plain TCP (`NoTls`): use a loopback or private network to the server.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement, Transaction};

use crate::error::LedgerError;
use crate::model::{
    check_notice, Attempt, AttemptPlan, AttemptResult, Finish, Intent, IntentId, IntentSpec, Lease,
    Notice, OwnerId, State, StateKind, Timestamp,
};
use crate::rows::{group_attempts, AttemptRow, IntentRow, ATTEMPT_COLUMNS, INTENT_COLUMNS};
use crate::store::{ImportConflict, Leased, Store, Summary};
use crate::transition::{self, Planned, Started};
use crate::url::{password_from_env, Password, PgTarget};

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = 4;

/// The first key of every advisory lock this library takes (`KICC` in ASCII).
const LOCK_NAMESPACE: i32 = 0x4B49_4343;

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE intents (
        seq BIGSERIAL PRIMARY KEY,
        intent_id TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        pg_cno TEXT NOT NULL,
        amount BIGINT,
        currency TEXT,
        revise_type_code TEXT NOT NULL,
        remain_amount BIGINT,
        reason TEXT,
        notify_url TEXT,
        state TEXT NOT NULL,
        lease_owner TEXT,
        lease_expires_ms BIGINT,
        generation BIGINT NOT NULL DEFAULT 0,
        cancel_pg_cno TEXT,
        res_cd TEXT,
        detail TEXT,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL
    );
    CREATE INDEX intents_pg_cno ON intents (pg_cno, seq);
    CREATE INDEX intents_state ON intents (state, seq);
    CREATE TABLE attempts (
        intent_seq BIGINT NOT NULL REFERENCES intents (seq),
        number BIGINT NOT NULL,
        shop_transaction_id TEXT NOT NULL,
        korea_date TEXT NOT NULL,
        request BYTEA NOT NULL,
        sent_ms BIGINT NOT NULL,
        http_status BIGINT,
        res_cd TEXT,
        detail TEXT,
        outcome TEXT,
        result_ms BIGINT,
        PRIMARY KEY (intent_seq, number)
    );
    CREATE SEQUENCE kicc_owner_seq;",
    ),
    (
        2,
        "CREATE TABLE notices (
        id BIGSERIAL PRIMARY KEY,
        pg_cno TEXT NOT NULL,
        cancel_pg_cno TEXT NOT NULL,
        body BYTEA NOT NULL,
        received_ms BIGINT NOT NULL
    );
    CREATE INDEX notices_cancel ON notices (pg_cno, cancel_pg_cno, id);
    CREATE INDEX intents_cancel ON intents (pg_cno, cancel_pg_cno);",
    ),
    (
        3,
        // The next planned intent in import order, without walking every finished one: the
        // planner otherwise scans the primary key from the start, filtering on state, which
        // makes each lease cost O(intents done) and a batch O(n^2).
        "CREATE INDEX intents_planned ON intents (seq) WHERE state = 'planned';",
    ),
    (
        4,
        // Fewer index entries per write: every lease and outcome rewrites the row (a state
        // change is never a HOT update), and each index costs an entry per new row version.
        // Only unfinished intents are looked up by state (the next planned one, in flight
        // and unknown ones to recover), so one partial index over them replaces the
        // by-state index of every intent and the planned one; a notice's intent is found
        // through `intents_pg_cno` (few intents per payment), so `intents_cancel` goes.
        "CREATE INDEX intents_open ON intents (state, seq) \
         WHERE state IN ('planned', 'in_flight', 'unknown', 'pending');
         DROP INDEX intents_state;
         DROP INDEX intents_planned;
         DROP INDEX intents_cancel;",
    ),
];

mod group;
mod wire;

use wire::{attempt_row, connect_one, get, intent_row, NOW_MS};

/// A pooled connection and the statements prepared on it (prepared once, then each use is
/// one round trip instead of two).
struct Conn {
    client: Client,
    stmts: std::sync::Mutex<HashMap<String, Statement>>,
}

impl Conn {
    fn new(client: Client) -> Conn {
        Conn {
            client,
            stmts: std::sync::Mutex::new(HashMap::new()),
        }
    }

    async fn begin(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        let Conn { client, stmts } = self;
        Ok(Tx {
            tx: client.transaction().await?,
            stmts,
        })
    }

    /// A read-only transaction on one snapshot, so an intent and its attempts are read
    /// consistently.
    async fn begin_snapshot(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        let Conn { client, stmts } = self;
        Ok(Tx {
            tx: client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?,
            stmts,
        })
    }
}

/// A transaction that prepares each distinct statement once per connection.
struct Tx<'a> {
    tx: Transaction<'a>,
    stmts: &'a std::sync::Mutex<HashMap<String, Statement>>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Tx<'_> {
    async fn prepared(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        let cached = self.stmts.lock().ok().and_then(|m| m.get(sql).cloned());
        if let Some(st) = cached {
            return Ok(st);
        }
        let st = self.tx.prepare(sql).await?;
        if let Ok(mut m) = self.stmts.lock() {
            m.insert(sql.to_owned(), st.clone());
        }
        Ok(st)
    }

    async fn query(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let st = self.prepared(sql).await?;
        self.tx.query(&st, params).await
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let st = self.prepared(sql).await?;
        self.tx.query_opt(&st, params).await
    }

    async fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row, tokio_postgres::Error> {
        let st = self.prepared(sql).await?;
        self.tx.query_one(&st, params).await
    }

    async fn commit(self) -> Result<(), tokio_postgres::Error> {
        self.tx.commit().await
    }

    async fn rollback(self) -> Result<(), tokio_postgres::Error> {
        self.tx.rollback().await
    }
}

/// The [`group::Apply`] of a queued operation: applies `step` to the row found and answers
/// through `answer` (at once when refused or when nothing was found: `missing`; else once
/// the commit is known).
fn queued<T: Send + 'static>(
    answer: oneshot::Sender<Result<T, LedgerError>>,
    step: impl FnOnce(&Intent, Timestamp) -> Result<(Intent, T), LedgerError> + Send + 'static,
    missing: impl FnOnce() -> Result<T, LedgerError> + Send + 'static,
) -> group::Apply {
    Box::new(move |loaded| {
        let refused = match loaded {
            group::Loaded::Row(old, now) => match step(old, now) {
                Ok((new, out)) => {
                    let deliver: group::Deliver = Box::new(move |committed| {
                        let _ = answer.send(committed.map(|()| out));
                    });
                    return Some((new, deliver));
                }
                Err(e) => Err(e),
            },
            group::Loaded::Missing => missing(),
            group::Loaded::Failed(e) => Err(e),
        };
        let _ = answer.send(refused);
        None
    })
}

/// The answer of a queued operation.
async fn receive<T>(answered: oneshot::Receiver<Result<T, LedgerError>>) -> Result<T, LedgerError> {
    answered.await.unwrap_or_else(|_| {
        Err(LedgerError::storage(
            "postgres: the write was not answered (its committer stopped, or its own closure \
             panicked); it may or may not be committed",
        ))
    })
}

struct Inner {
    owner: OwnerId,
    /// The group committer of every write under a lease and every claim.
    group: group::Group,
    /// Holds the owner's advisory lock for as long as it is open.
    lock_client: Client,
    pool: Vec<Mutex<Conn>>,
    next: AtomicUsize,
    target: PgTarget,
}

/// A ledger in a PostgreSQL database. Cheap to clone (clones share connections and owner).
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target.to_string())
            .field("owner", &self.inner.owner)
            .finish()
    }
}

fn owner_number(owner: &OwnerId) -> Option<i64> {
    let n: i64 = owner.0.parse().ok()?;
    (n > 0).then(|| ((n - 1) % i64::from(i32::MAX)) + 1)
}

async fn now(tx: &Tx<'_>) -> Result<Timestamp, LedgerError> {
    let row = tx.query_one(NOW_MS, &[]).await?;
    Ok(Timestamp(get(&row, 0)?))
}

/// Owner numbers whose advisory lock is held right now in this database.
async fn live_owners(tx: &Tx<'_>) -> Result<HashSet<i64>, LedgerError> {
    let ns = LOCK_NAMESPACE.unsigned_abs();
    let rows = tx
        .query(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND objsubid = 2 AND classid = $1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&ns],
        )
        .await?;
    rows.iter().map(|r| get::<i64>(r, 0)).collect()
}

fn alive_in(live: &HashSet<i64>, intent: &Intent) -> bool {
    match &intent.state {
        // An owner id this backend did not write: cannot probe, so wait for expiry.
        State::InFlight { owner, .. } => owner_number(owner).is_none_or(|n| live.contains(&n)),
        _ => true,
    }
}

async fn attempts_for(tx: &Tx<'_>, seqs: &[i64]) -> Result<Vec<AttemptRow>, LedgerError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE intent_seq = ANY($1) \
                 ORDER BY intent_seq, number"
            ),
            &[&seqs],
        )
        .await?;
    rows.iter().map(attempt_row).collect()
}

async fn with_attempts(tx: &Tx<'_>, rows: Vec<IntentRow>) -> Result<Vec<Intent>, LedgerError> {
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let mut by_seq = group_attempts(attempts_for(tx, &seqs).await?);
    rows.into_iter()
        .map(|r| {
            let a = by_seq.remove(&r.seq).unwrap_or_default();
            r.into_intent(a)
        })
        .collect()
}

/// Loads one intent by id, locking its row (`FOR UPDATE`) for the rest of the transaction.
async fn load_locked(tx: &Tx<'_>, id: &IntentId) -> Result<Option<Intent>, LedgerError> {
    let row = tx
        .query_opt(
            &format!("SELECT {INTENT_COLUMNS} FROM intents WHERE intent_id = $1 FOR UPDATE"),
            &[&id.as_str()],
        )
        .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(with_attempts(tx, vec![intent_row(&r)?]).await?.pop()),
    }
}

/// Loads one intent by id without locking it (its parameters never change; planning only
/// compares them, so a rerun importing a file does not stall the workers).
async fn load_unlocked(tx: &Tx<'_>, id: &IntentId) -> Result<Option<Intent>, LedgerError> {
    let row = tx
        .query_opt(
            &format!("SELECT {INTENT_COLUMNS} FROM intents WHERE intent_id = $1"),
            &[&id.as_str()],
        )
        .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(with_attempts(tx, vec![intent_row(&r)?]).await?.pop()),
    }
}

async fn load_seq(tx: &Tx<'_>, seq: i64) -> Result<Option<Intent>, LedgerError> {
    let row = tx
        .query_opt(
            &format!("SELECT {INTENT_COLUMNS} FROM intents WHERE seq = $1"),
            &[&seq],
        )
        .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(with_attempts(tx, vec![intent_row(&r)?]).await?.pop()),
    }
}

async fn earlier_open(tx: &Tx<'_>, pg_cno: &str, seq: i64) -> Result<Option<Intent>, LedgerError> {
    let row = tx
        .query_opt(
            "SELECT seq FROM intents WHERE pg_cno = $1 AND seq < $2 \
             AND state NOT IN ('succeeded', 'declined', 'not_processed') ORDER BY seq LIMIT 1",
            &[&pg_cno, &seq],
        )
        .await?;
    match row {
        None => Ok(None),
        Some(r) => load_seq(tx, get(&r, 0)?).await,
    }
}

/// Inserts a new intent unless one with its id exists; returns its seq, or `None` when
/// another transaction (or an earlier import) already stored that id.
async fn insert(tx: &Tx<'_>, i: &Intent, now: Timestamp) -> Result<Option<i64>, LedgerError> {
    let r = IntentRow::from_intent(i);
    let row = tx
        .query_opt(
            "INSERT INTO intents (intent_id, channel, pg_cno, amount, currency, revise_type_code, \
             remain_amount, reason, notify_url, state, generation, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
             ON CONFLICT (intent_id) DO NOTHING RETURNING seq",
            &[
                &r.intent_id,
                &r.channel,
                &r.pg_cno,
                &r.amount,
                &r.currency,
                &r.revise_type_code,
                &r.remain_amount,
                &r.reason,
                &r.notify_url,
                &r.state,
                &r.generation,
                &now.0,
            ],
        )
        .await?;
    row.map(|r| get(&r, 0)).transpose()
}

/// Inserts new intents in list order (their `seq`, the run order per `pg_cno`, follows the
/// list) unless one with the same id exists, in one statement; returns each one's seq, or
/// `None` where another transaction (or an earlier import) already stored that id.
async fn insert_many(
    tx: &Tx<'_>,
    intents: &[&Intent],
    now: Timestamp,
) -> Result<Vec<Option<i64>>, LedgerError> {
    let rows: Vec<IntentRow> = intents.iter().map(|i| IntentRow::from_intent(i)).collect();
    let col = |f: fn(&IntentRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&IntentRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let num = |f: fn(&IntentRow) -> Option<i64>| rows.iter().map(f).collect::<Vec<_>>();
    let ids = col(|r| r.intent_id.clone());
    let channels = col(|r| r.channel.clone());
    let pg_cnos = col(|r| r.pg_cno.clone());
    let amounts = num(|r| r.amount);
    let currencies = opt(|r| r.currency.clone());
    let codes = col(|r| r.revise_type_code.clone());
    let remains = num(|r| r.remain_amount);
    let reasons = opt(|r| r.reason.clone());
    let notify_urls = opt(|r| r.notify_url.clone());
    let states = col(|r| r.state.clone());
    let generations: Vec<i64> = rows.iter().map(|r| r.generation).collect();
    let ords: Vec<i64> = (0..rows.len()).map(|k| k as i64).collect();
    let returned = tx
        .query(
            "INSERT INTO intents (intent_id, channel, pg_cno, amount, currency, revise_type_code, \
             remain_amount, reason, notify_url, state, generation, created_ms, updated_ms) \
             SELECT u.intent_id, u.channel, u.pg_cno, u.amount, u.currency, u.code, u.remain, \
             u.reason, u.notify_url, u.state, u.generation, $12, $12 \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], \
             $7::int8[], $8::text[], $9::text[], $10::text[], $11::int8[], $13::int8[]) \
             AS u(intent_id, channel, pg_cno, amount, currency, code, remain, reason, notify_url, \
             state, generation, ord) ORDER BY u.ord \
             ON CONFLICT (intent_id) DO NOTHING RETURNING seq, intent_id",
            &[
                &ids,
                &channels,
                &pg_cnos,
                &amounts,
                &currencies,
                &codes,
                &remains,
                &reasons,
                &notify_urls,
                &states,
                &generations,
                &now.0,
                &ords,
            ],
        )
        .await?;
    let mut seq_of: HashMap<String, i64> = HashMap::with_capacity(returned.len());
    let mut last = i64::MIN;
    for r in &returned {
        let seq: i64 = get(r, 0)?;
        let id: String = get(r, 1)?;
        // Rows come back in the order they were inserted: their seqs must follow the list.
        if seq <= last {
            return Err(LedgerError::storage(
                "postgres: imported intents did not get their sequence numbers in file order",
            ));
        }
        last = seq;
        seq_of.insert(id, seq);
    }
    Ok(ids.iter().map(|id| seq_of.get(id).copied()).collect())
}

async fn migrate(client: &mut Client) -> Result<(), LedgerError> {
    let tx = client.transaction().await?;
    // Serialize migrations between processes, the version table's creation included: two
    // processes creating tables at once on an empty database race in the catalog.
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_NAMESPACE])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .await?;
    let row = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await?;
    let current: i64 = get(&row, 0)?;
    if current > SCHEMA_VERSION {
        return Err(LedgerError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS {
        if *version > current {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[version],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// How to connect a [`PostgresStore`]: from [`PostgresStore::builder`], then
/// [`PostgresBuilder::connect`].
///
/// ```no_run
/// # async fn f() -> Result<(), kicc_ledger::LedgerError> {
/// use kicc_ledger::{LedgerUrl, PostgresStore};
/// let LedgerUrl::Postgres(target) = LedgerUrl::parse("postgres://kicc@127.0.0.1:5432/ledger")?
/// else { unreachable!() };
/// // Writes go through two committers (group commit); reads and imports use the pool.
/// let store = PostgresStore::builder(&target).committers(2).pool_size(4).connect().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresBuilder {
    target: PgTarget,
    password: Option<Password>,
    pool_size: usize,
    committers: usize,
}

impl PostgresBuilder {
    /// The password (default: from `PGPASSWORD` or `.pgpass`, if any; never from a URL).
    pub fn password(mut self, password: Password) -> Self {
        self.password = Some(password);
        self
    }

    /// How many pooled connections run the operations that are not group-committed
    /// (default 4, at least 1): plan, import, reads, recovery's `lease`, notices. Each holds
    /// one connection for its transaction.
    pub fn pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size.max(1);
        self
    }

    /// How many committers (each with its own connection) group-commit the writes under a
    /// lease and the claims of the next intent (default 2, at least 1). A committer takes
    /// every operation queued while the previous group was committing and writes them in
    /// one transaction (one WAL flush); with two, one group is collected while the other
    /// commits.
    pub fn committers(mut self, committers: usize) -> Self {
        self.committers = committers.max(1);
        self
    }

    /// Connects, applies pending migrations and takes a new owner number.
    pub async fn connect(self) -> Result<PostgresStore, LedgerError> {
        let password = match self.password {
            Some(p) => Some(p),
            None => password_from_env(&self.target),
        };
        PostgresStore::connect_with(
            &self.target,
            password.as_ref(),
            self.pool_size,
            self.committers,
        )
        .await
    }
}

impl PostgresStore {
    /// Connects to `target` with the password from `PGPASSWORD` or `.pgpass` (if any), with
    /// four pooled connections. [`PostgresStore::builder`] sets more.
    pub async fn connect(target: &PgTarget) -> Result<PostgresStore, LedgerError> {
        Self::builder(target).connect().await
    }

    /// A builder to connect to `target` with a given password or pool size.
    pub fn builder(target: &PgTarget) -> PostgresBuilder {
        PostgresBuilder {
            target: target.clone(),
            password: None,
            pool_size: 4,
            committers: 2,
        }
    }

    /// Connects with an explicit password and `pool_size` connections (at least 1) besides
    /// the one holding the owner lock; applies pending migrations; takes a new owner number.
    async fn connect_with(
        target: &PgTarget,
        password: Option<&Password>,
        pool_size: usize,
        committers: usize,
    ) -> Result<PostgresStore, LedgerError> {
        let mut first = connect_one(target, password).await?;
        migrate(&mut first).await?;
        let lock_client = connect_one(target, password).await?;
        let owner = loop {
            let row = lock_client
                .query_one("SELECT nextval('kicc_owner_seq')", &[])
                .await?;
            let owner = OwnerId(get::<i64>(&row, 0)?.to_string());
            let no = owner_number(&owner)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| LedgerError::Corrupt("owner sequence out of range".into()))?;
            let row = lock_client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, $2)",
                    &[&LOCK_NAMESPACE, &no],
                )
                .await?;
            // false only if the number wrapped around onto a live owner: take the next one.
            if get::<bool>(&row, 0)? {
                break owner;
            }
        };
        let mut pool = vec![Mutex::new(Conn::new(first))];
        for _ in 1..pool_size.max(1) {
            pool.push(Mutex::new(Conn::new(connect_one(target, password).await?)));
        }
        let group = group::Group::start(target, password, committers).await?;
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                owner,
                group,
                lock_client,
                pool,
                next: AtomicUsize::new(0),
                target: target.clone(),
            }),
        })
    }

    /// Whether this store's owner lock session is still open (if it is not, other workers
    /// may take its leases over; its writes will then be fenced off).
    pub fn owner_session_open(&self) -> bool {
        !self.inner.lock_client.is_closed()
    }

    /// A pooled connection: the first free one (from a rotating start), else a wait for
    /// one in turn.
    async fn client(&self) -> tokio::sync::MutexGuard<'_, Conn> {
        let pool = &self.inner.pool;
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..pool.len() {
            if let Ok(conn) = pool[(start + k) % pool.len()].try_lock() {
                return conn;
            }
        }
        pool[start % pool.len()].lock().await
    }

    /// Queues a write under `lease` to the group committer ([`group`]): `step` applies the
    /// transition to the intent as locked in the group's transaction (with the database's
    /// clock); the future answers once the commit holding it is known. Queued at once.
    fn under_lease<T: Send + 'static>(
        &self,
        lease: &Lease,
        step: impl FnOnce(&Intent, Timestamp) -> Result<(Intent, T), LedgerError> + Send + 'static,
    ) -> impl Future<Output = Result<T, LedgerError>> + Send + 'static {
        let id = lease.intent_id.clone();
        let (answer, answered) = oneshot::channel();
        self.inner.group.submit(group::Op {
            target: group::Target::Intent(id.clone()),
            apply: queued(answer, step, move || Err(LedgerError::NotFound(id))),
        });
        receive(answered)
    }

    /// Queues a claim of the next free planned intent to the group committer: `step` applies
    /// the transition to it (`Ok(None)` when none is free). Queued at once.
    fn claim<T: Send + 'static>(
        &self,
        step: impl FnOnce(&Intent, Timestamp) -> Result<(Intent, T), LedgerError> + Send + 'static,
    ) -> impl Future<Output = Result<Option<T>, LedgerError>> + Send + 'static {
        let (answer, answered) = oneshot::channel();
        let step = move |old: &Intent, now| step(old, now).map(|(new, out)| (new, Some(out)));
        self.inner.group.submit(group::Op {
            target: group::Target::NextFree,
            apply: queued(answer, step, || Ok(None)),
        });
        receive(answered)
    }

    /// [`Store::lease`] inside `tx` (not committed).
    async fn lease_in(
        &self,
        tx: &Tx<'_>,
        intent_id: &IntentId,
        ttl: Duration,
    ) -> Result<Leased, LedgerError> {
        let now = now(tx).await?;
        let old = load_locked(tx, intent_id)
            .await?
            .ok_or_else(|| LedgerError::NotFound(intent_id.clone()))?;
        let earlier = earlier_open(tx, old.spec.pg_cno(), old.seq).await?;
        let live = live_owners(tx).await?;
        let alive = alive_in(&live, &old);
        let (new, lease) =
            transition::acquire(&old, &self.inner.owner, now, ttl, earlier.as_ref(), alive)?;
        let mut set = group::WriteSet::new(now);
        set.push(&old, &new);
        let rows = tx.query(group::WRITE_SQL, &set.params()).await?;
        if !group::written(&rows)?.contains(&new.seq) {
            return Err(LedgerError::storage(format!(
                "intent {intent_id} changed under a write transaction"
            )));
        }
        Ok(Leased { lease, intent: new })
    }

    async fn plan_in(
        tx: &Tx<'_>,
        spec: IntentSpec,
        now: Timestamp,
    ) -> Result<Planned, LedgerError> {
        let existing = load_unlocked(tx, spec.intent_id()).await?;
        match transition::plan(existing.as_ref(), spec.clone(), 0)? {
            Planned::Created(mut i) => match insert(tx, &i, now).await? {
                Some(seq) => {
                    i.seq = seq;
                    Ok(Planned::Created(i))
                }
                None => {
                    // Inserted concurrently by another transaction (now committed).
                    let existing = load_unlocked(tx, spec.intent_id()).await?;
                    Ok(transition::plan(existing.as_ref(), spec, 0)?)
                }
            },
            e @ Planned::Existing(_) => Ok(e),
        }
    }
}

impl Store for PostgresStore {
    fn owner(&self) -> &OwnerId {
        &self.inner.owner
    }

    async fn plan(&self, spec: IntentSpec) -> Result<Planned, LedgerError> {
        let mut conn = self.client().await;
        let tx = conn.begin().await?;
        let now = now(&tx).await?;
        let out = Self::plan_in(&tx, spec, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn import(
        &self,
        specs: Vec<IntentSpec>,
    ) -> Result<Result<Vec<Planned>, Vec<ImportConflict>>, LedgerError> {
        let mut conn = self.client().await;
        let tx = conn.begin().await?;
        let now = now(&tx).await?;
        // Every stored intent with one of these ids, in one query (not one per row).
        let ids: Vec<&str> = specs.iter().map(|s| s.intent_id().as_str()).collect();
        let rows = tx
            .query(
                &format!("SELECT {INTENT_COLUMNS} FROM intents WHERE intent_id = ANY($1)"),
                &[&ids],
            )
            .await?;
        let rows = rows.iter().map(intent_row).collect::<Result<Vec<_>, _>>()?;
        let mut known: HashMap<String, Intent> = with_attempts(&tx, rows)
            .await?
            .into_iter()
            .map(|i| (i.spec.intent_id().as_str().to_owned(), i))
            .collect();
        let mut out = Vec::with_capacity(specs.len());
        let mut conflicts = Vec::new();
        let mut created = Vec::new();
        for (index, spec) in specs.into_iter().enumerate() {
            let id = spec.intent_id().as_str().to_owned();
            match transition::plan(known.get(&id), spec, 0) {
                Ok(Planned::Created(i)) => {
                    known.insert(id, i.clone());
                    created.push(out.len());
                    out.push(Planned::Created(i));
                }
                Ok(p) => out.push(p),
                Err(crate::TransitionError::Conflict(conflict)) => {
                    conflicts.push(ImportConflict { index, conflict })
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !conflicts.is_empty() {
            tx.rollback().await?;
            return Ok(Err(conflicts));
        }
        for chunk in created.chunks(1000) {
            let new: Vec<&Intent> = chunk
                .iter()
                .filter_map(|&k| match &out[k] {
                    Planned::Created(i) => Some(i),
                    Planned::Existing(_) => None,
                })
                .collect();
            let seqs = insert_many(&tx, &new, now).await?;
            for (&k, seq) in chunk.iter().zip(seqs) {
                let Planned::Created(i) = &mut out[k] else {
                    continue;
                };
                match seq {
                    Some(seq) => i.seq = seq,
                    None => {
                        // Stored meanwhile by another transaction (now committed).
                        let spec = i.spec.clone();
                        let existing = load_unlocked(&tx, spec.intent_id()).await?;
                        match transition::plan(existing.as_ref(), spec, 0) {
                            Ok(p) => out[k] = p,
                            Err(crate::TransitionError::Conflict(conflict)) => {
                                conflicts.push(ImportConflict { index: k, conflict })
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        if !conflicts.is_empty() {
            tx.rollback().await?;
            return Ok(Err(conflicts));
        }
        // An id given twice in the list is the first one: give it the stored seq.
        let seq_of: HashMap<String, i64> = out
            .iter()
            .filter_map(|p| match p {
                Planned::Created(i) => Some((i.spec.intent_id().as_str().to_owned(), i.seq)),
                Planned::Existing(_) => None,
            })
            .collect();
        for p in &mut out {
            if let Planned::Existing(i) = p {
                if i.seq == 0 {
                    if let Some(&seq) = seq_of.get(i.spec.intent_id().as_str()) {
                        i.seq = seq;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(Ok(out))
    }

    async fn get(&self, intent_id: &IntentId) -> Result<Option<Intent>, LedgerError> {
        let mut conn = self.client().await;
        let tx = conn.begin_snapshot().await?;
        let out = load_unlocked(&tx, intent_id).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn list(&self, state: Option<StateKind>) -> Result<Vec<Intent>, LedgerError> {
        let mut conn = self.client().await;
        let tx = conn.begin_snapshot().await?;
        let rows = match state {
            Some(k) => {
                tx.query(
                    &format!("SELECT {INTENT_COLUMNS} FROM intents WHERE state = $1 ORDER BY seq"),
                    &[&k.as_str()],
                )
                .await?
            }
            None => {
                tx.query(
                    &format!("SELECT {INTENT_COLUMNS} FROM intents ORDER BY seq"),
                    &[],
                )
                .await?
            }
        };
        let rows = rows.iter().map(intent_row).collect::<Result<Vec<_>, _>>()?;
        let out = with_attempts(&tx, rows).await?;
        tx.commit().await?;
        Ok(out)
    }

    fn lease_next(
        &self,
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<Leased>, LedgerError>> + Send {
        let owner = self.inner.owner.clone();
        self.claim(move |old, now| {
            let (new, lease) = transition::acquire(old, &owner, now, ttl, None, true)?;
            Ok((new.clone(), Leased { lease, intent: new }))
        })
    }

    fn start_next<B>(
        &self,
        ttl: Duration,
        min_remaining: Duration,
        build: B,
    ) -> impl Future<Output = Result<Option<Started>, LedgerError>> + Send
    where
        B: FnOnce(&Intent) -> Option<AttemptPlan> + Send + 'static,
    {
        let owner = self.inner.owner.clone();
        self.claim(move |old, now| {
            let started =
                transition::start(old, &owner, now, ttl, min_remaining, None, true, build)?;
            Ok((started.intent.clone(), started))
        })
    }

    async fn lease(&self, intent_id: &IntentId, ttl: Duration) -> Result<Leased, LedgerError> {
        let mut conn = self.client().await;
        let tx = conn.begin().await?;
        match self.lease_in(&tx, intent_id, ttl).await {
            Ok(leased) => {
                tx.commit().await?;
                Ok(leased)
            }
            Err(e) => {
                // Roll back before answering, so the row lock is gone once the caller hears
                // of the refusal (a dropped transaction's rollback is only queued).
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    fn renew(
        &self,
        lease: &Lease,
        min_remaining: Duration,
    ) -> impl Future<Output = Result<Lease, LedgerError>> + Send {
        let held = lease.clone();
        self.under_lease(lease, move |old, now| {
            Ok(transition::renew(old, &held, now, min_remaining)?)
        })
    }

    fn record_attempt(
        &self,
        lease: &Lease,
        plan: AttemptPlan,
    ) -> impl Future<Output = Result<Attempt, LedgerError>> + Send {
        let held = lease.clone();
        self.under_lease(lease, move |old, now| {
            Ok(transition::record_attempt(old, &held, now, plan)?)
        })
    }

    fn record_result(
        &self,
        lease: &Lease,
        number: u32,
        result: AttemptResult,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send {
        let held = lease.clone();
        self.under_lease(lease, move |old, now| {
            Ok((
                transition::record_result(old, &held, now, number, result)?,
                (),
            ))
        })
    }

    fn finish(
        &self,
        lease: &Lease,
        outcome: Finish,
    ) -> impl Future<Output = Result<Intent, LedgerError>> + Send {
        let held = lease.clone();
        self.under_lease(lease, move |old, now| {
            let new = transition::finish(old, &held, now, outcome)?;
            Ok((new.clone(), new))
        })
    }

    fn finish_with_result(
        &self,
        lease: &Lease,
        number: u32,
        result: AttemptResult,
        outcome: Finish,
    ) -> impl Future<Output = Result<Intent, LedgerError>> + Send {
        let held = lease.clone();
        self.under_lease(lease, move |old, now| {
            let mid = transition::record_result(old, &held, now, number, result)?;
            let new = transition::finish(&mid, &held, now, outcome)?;
            Ok((new.clone(), new))
        })
    }

    fn release(&self, lease: &Lease) -> impl Future<Output = Result<Intent, LedgerError>> + Send {
        let held = lease.clone();
        self.under_lease(lease, move |old, now| {
            let new = transition::release(old, &held, now)?;
            Ok((new.clone(), new))
        })
    }

    async fn recoverable(&self) -> Result<Vec<Intent>, LedgerError> {
        let mut conn = self.client().await;
        let tx = conn.begin_snapshot().await?;
        let now = now(&tx).await?;
        let live = live_owners(&tx).await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {INTENT_COLUMNS} FROM intents \
                     WHERE state IN ('in_flight', 'unknown') ORDER BY seq"
                ),
                &[],
            )
            .await?;
        let rows = rows.iter().map(intent_row).collect::<Result<Vec<_>, _>>()?;
        let all = with_attempts(&tx, rows).await?;
        tx.commit().await?;
        Ok(all
            .into_iter()
            .filter(|i| transition::is_recoverable(i, now, alive_in(&live, i)))
            .collect())
    }

    async fn summary(&self) -> Result<Summary, LedgerError> {
        let conn = self.client().await;
        let rows = conn
            .client
            .query("SELECT state, COUNT(*) FROM intents GROUP BY state", &[])
            .await?;
        let mut s = Summary::default();
        for r in &rows {
            let state: String = get(r, 0)?;
            let n: i64 = get(r, 1)?;
            let kind = StateKind::parse(&state)
                .ok_or_else(|| LedgerError::Corrupt(format!("unknown state {state:?}")))?;
            s.add_count(kind, u64::try_from(n).unwrap_or(0));
        }
        Ok(s)
    }

    async fn now(&self) -> Result<Timestamp, LedgerError> {
        let mut conn = self.client().await;
        let tx = conn.begin_snapshot().await?;
        let t = now(&tx).await?;
        tx.commit().await?;
        Ok(t)
    }

    async fn record_notice(
        &self,
        pg_cno: &str,
        cancel_pg_cno: &str,
        body: Vec<u8>,
    ) -> Result<(Notice, Option<Intent>), LedgerError> {
        check_notice(pg_cno, cancel_pg_cno, &body).map_err(crate::TransitionError::from)?;
        let mut conn = self.client().await;
        let tx = conn.begin().await?;
        let now = now(&tx).await?;
        let row = tx
            .query_one(
                "INSERT INTO notices (pg_cno, cancel_pg_cno, body, received_ms) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&pg_cno, &cancel_pg_cno, &body, &now.0],
            )
            .await?;
        let notice = Notice {
            id: get(&row, 0)?,
            pg_cno: pg_cno.to_owned(),
            cancel_pg_cno: cancel_pg_cno.to_owned(),
            body,
            received_at: now,
        };
        let seq = tx
            .query_opt(
                "SELECT seq FROM intents WHERE pg_cno = $1 AND cancel_pg_cno = $2 \
                 ORDER BY seq LIMIT 1",
                &[&pg_cno, &cancel_pg_cno],
            )
            .await?;
        let intent = match seq {
            Some(r) => load_seq(&tx, get(&r, 0)?).await?,
            None => None,
        };
        tx.commit().await?;
        Ok((notice, intent))
    }

    async fn notices(&self, pg_cno: &str, cancel_pg_cno: &str) -> Result<Vec<Notice>, LedgerError> {
        let mut conn = self.client().await;
        let tx = conn.begin_snapshot().await?;
        let rows = tx
            .query(
                "SELECT id, pg_cno, cancel_pg_cno, body, received_ms FROM notices \
                 WHERE pg_cno = $1 AND cancel_pg_cno = $2 ORDER BY id",
                &[&pg_cno, &cancel_pg_cno],
            )
            .await?;
        let out = rows
            .iter()
            .map(|r| {
                Ok(Notice {
                    id: get(r, 0)?,
                    pg_cno: get(r, 1)?,
                    cancel_pg_cno: get(r, 2)?,
                    body: get(r, 3)?,
                    received_at: Timestamp(get(r, 4)?),
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        tx.commit().await?;
        Ok(out)
    }
}
