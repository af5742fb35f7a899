//! The SQLite backend: one file in WAL mode, shared by any number of processes on one host.
//!
//! Every operation runs on one writer thread per store, inside a `BEGIN IMMEDIATE`
//! transaction, so writers (of this and other processes) are serialized by SQLite's own lock
//! and the pure [`crate::transition`] functions see a consistent row. `synchronous=FULL`: a
//! commit is on disk before the call returns, which is what "durable before the first byte"
//! needs.
//!
//! Group commit: operations that arrive while the writer is busy are run together in one
//! transaction, each inside its own savepoint (an operation that fails is rolled back alone),
//! and no caller gets its answer before the one commit that covers it has returned. Many
//! concurrent workers thus share each disk sync instead of waiting for one each.
//!
//! Time comes from SQLite (`julianday('now')`), never from a caller.
//!
//! Dead owners: each open store holds an exclusive SQLite lock on its own side file
//! `PATH.owners/OWNER.lock` for as long as it lives. The operating system drops that lock
//! when the process dies, so another process that probes the file (and gets the lock, or
//! finds no file) knows at once that the owner is gone and may take its leases over without
//! waiting for them to expire.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use crate::error::LedgerError;
use crate::model::{
    check_notice, Attempt, AttemptPlan, AttemptResult, Finish, Intent, IntentId, IntentSpec, Lease,
    Notice, OwnerId, State, StateKind, Timestamp,
};
use crate::rows::{
    attempt_changes, group_attempts, AttemptRow, IntentRow, ATTEMPT_COLUMNS, INTENT_COLUMNS,
};
use crate::store::{ImportConflict, Leased, Store, Summary};
use crate::transition::{self, Planned, Started};

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = 2;

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE intents (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        intent_id TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        pg_cno TEXT NOT NULL,
        amount INTEGER,
        currency TEXT,
        revise_type_code TEXT NOT NULL,
        remain_amount INTEGER,
        reason TEXT,
        notify_url TEXT,
        state TEXT NOT NULL,
        lease_owner TEXT,
        lease_expires_ms INTEGER,
        generation INTEGER NOT NULL DEFAULT 0,
        cancel_pg_cno TEXT,
        res_cd TEXT,
        detail TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX intents_pg_cno ON intents (pg_cno, seq);
    CREATE INDEX intents_state ON intents (state, seq);
    CREATE TABLE attempts (
        intent_seq INTEGER NOT NULL REFERENCES intents (seq),
        number INTEGER NOT NULL,
        shop_transaction_id TEXT NOT NULL,
        korea_date TEXT NOT NULL,
        request BLOB NOT NULL,
        sent_ms INTEGER NOT NULL,
        http_status INTEGER,
        res_cd TEXT,
        detail TEXT,
        outcome TEXT,
        result_ms INTEGER,
        PRIMARY KEY (intent_seq, number)
    );",
    ),
    (
        2,
        "CREATE TABLE notices (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        pg_cno TEXT NOT NULL,
        cancel_pg_cno TEXT NOT NULL,
        body BLOB NOT NULL,
        received_ms INTEGER NOT NULL
    );
    CREATE INDEX notices_cancel ON notices (pg_cno, cancel_pg_cno, id);
    CREATE INDEX intents_cancel ON intents (pg_cno, cancel_pg_cno);",
    ),
];

const NOW_MS: &str = "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

/// An exclusive lock on this owner's side file, held for the store's lifetime.
struct OwnerLock {
    conn: Option<Connection>,
    path: PathBuf,
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        // Close (releasing the lock) before removing, so a prober never sees a locked file
        // that is about to vanish as proof of life.
        drop(self.conn.take());
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What operations see besides the transaction: who this store is.
struct Ctx {
    owner: OwnerId,
    owners_dir: PathBuf,
}

/// An operation's result, held until the transaction that covers it has committed.
struct Pending {
    /// Whether the operation's writes are to be kept (else its savepoint is rolled back).
    keep: bool,
    /// Hands the result (or the commit's failure) to the caller.
    deliver: Box<dyn FnOnce(Option<String>) + Send>,
}

/// An operation for the writer thread: given the open transaction (or why there is none).
type Job =
    Box<dyn for<'a> FnOnce(Result<(&'a Transaction<'a>, &'a Ctx), String>) -> Pending + Send>;

/// The most operations one transaction groups.
const MAX_GROUP: usize = 256;

struct Inner {
    jobs: std::sync::mpsc::Sender<Job>,
    ctx: Arc<Ctx>,
    _lock: Mutex<OwnerLock>,
}

/// A ledger in one SQLite file. Cheap to clone (clones share one writer thread and owner).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("owner", &self.inner.ctx.owner)
            .finish()
    }
}

/// The writer thread: runs queued operations in groups, one transaction per group.
fn writer(mut conn: Connection, ctx: Arc<Ctx>, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let why = format!("sqlite: {e}");
                for job in group {
                    (job(Err(why.clone())).deliver)(None);
                }
                continue;
            }
        };
        let mut done = Vec::with_capacity(group.len());
        let mut broken: Option<String> = None;
        for job in group {
            if broken.is_some() {
                done.push(job(Err("sqlite: transaction aborted".into())));
                continue;
            }
            if let Err(e) = tx.execute_batch("SAVEPOINT op") {
                broken = Some(format!("sqlite: {e}"));
                done.push(job(Err(format!("sqlite: {e}"))));
                continue;
            }
            let p = job(Ok((&tx, &ctx)));
            let end = if p.keep {
                "RELEASE op"
            } else {
                "ROLLBACK TO op; RELEASE op"
            };
            if let Err(e) = tx.execute_batch(end) {
                broken = Some(format!("sqlite: {e}"));
            }
            done.push(p);
        }
        let failure = match broken {
            Some(why) => {
                drop(tx);
                Some(why)
            }
            None => tx
                .commit()
                .err()
                .map(|e| format!("sqlite: commit failed: {e}")),
        };
        for p in done {
            (p.deliver)(failure.clone());
        }
    }
}

fn random_owner() -> Result<OwnerId, LedgerError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| LedgerError::storage(format!("no randomness for an owner id: {e}")))?;
    Ok(OwnerId(hex::encode(b)))
}

fn owners_dir(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".owners");
    PathBuf::from(s)
}

fn io(what: &str, e: std::io::Error) -> LedgerError {
    LedgerError::storage_from(format!("{what}: {e}"), e)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn take_owner_lock(dir: &Path, owner: &OwnerId) -> Result<OwnerLock, LedgerError> {
    std::fs::create_dir_all(dir).map_err(|e| io("creating the owners directory", e))?;
    let path = dir.join(format!("{owner}.lock"));
    let conn = Connection::open(&path)?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS owner (id TEXT); BEGIN EXCLUSIVE;")?;
    Ok(OwnerLock {
        conn: Some(conn),
        path,
    })
}

/// Whether `owner` (not this store) still holds its lock file.
fn probe_owner(dir: &Path, owner: &OwnerId) -> bool {
    // Owner ids this backend writes are 32 hex digits; anything else came from elsewhere:
    // assume alive and let the lease expire.
    if owner.0.len() != 32 || !owner.0.bytes().all(|b| b.is_ascii_hexdigit()) {
        return true;
    }
    let path = dir.join(format!("{}.lock", owner.0));
    if !path.exists() {
        return false;
    }
    let conn = match Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE) {
        Ok(c) => c,
        Err(_) => return path.exists(),
    };
    if conn.busy_timeout(Duration::ZERO).is_err() {
        return true;
    }
    match conn.execute_batch("BEGIN EXCLUSIVE") {
        Ok(()) => {
            let _ = conn.execute_batch("ROLLBACK");
            false
        }
        Err(e) if is_busy(&e) => true,
        // Anything else: cannot tell, so the lease must expire first.
        Err(_) => true,
    }
}

/// How long opening a ledger file waits for other processes opening or writing it.
const OPEN_BUSY_WAIT: Duration = Duration::from_secs(30);

/// Opens the file in WAL mode with FULL sync and migrates it, waiting while another process
/// holds a lock SQLite does not wait for by itself.
///
/// Two processes opening a new ledger file at the same moment (two `kicc batch run` on one
/// file) race to switch it to WAL and to create the schema; SQLite answers the loser with
/// "database is locked" at once in some of these steps instead of calling the busy handler.
/// Every step here is idempotent (the migration runs in one `BEGIN IMMEDIATE` and reads the
/// version again), so the whole sequence is simply run again after a short pause.
fn open_file(path: &Path) -> Result<Connection, LedgerError> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match try_open_file(path) {
            Err(e) if busy_source(&e) && started.elapsed() < OPEN_BUSY_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            opened => return opened,
        }
    }
}

fn try_open_file(path: &Path) -> Result<Connection, LedgerError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(OPEN_BUSY_WAIT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(LedgerError::storage(format!(
            "sqlite: cannot use WAL mode on this file (got {mode})"
        )));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn)?;
    Ok(conn)
}

/// Whether a ledger error came from SQLite's "database is busy / locked".
fn busy_source(e: &LedgerError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(sql) = c.downcast_ref::<rusqlite::Error>() {
            return is_busy(sql);
        }
        cause = c.source();
    }
    false
}

fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    if current > SCHEMA_VERSION {
        return Err(LedgerError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS {
        if *version > current {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                params![version],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn intent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IntentRow> {
    Ok(IntentRow {
        seq: r.get(0)?,
        intent_id: r.get(1)?,
        channel: r.get(2)?,
        pg_cno: r.get(3)?,
        amount: r.get(4)?,
        currency: r.get(5)?,
        revise_type_code: r.get(6)?,
        remain_amount: r.get(7)?,
        reason: r.get(8)?,
        notify_url: r.get(9)?,
        state: r.get(10)?,
        lease_owner: r.get(11)?,
        lease_expires_ms: r.get(12)?,
        generation: r.get(13)?,
        cancel_pg_cno: r.get(14)?,
        res_cd: r.get(15)?,
        detail: r.get(16)?,
    })
}

fn attempt_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptRow> {
    Ok(AttemptRow {
        intent_seq: r.get(0)?,
        number: r.get(1)?,
        key: r.get(2)?,
        korea_date: r.get(3)?,
        request: r.get(4)?,
        sent_ms: r.get(5)?,
        http_status: r.get(6)?,
        res_cd: r.get(7)?,
        detail: r.get(8)?,
        outcome: r.get(9)?,
    })
}

fn now(tx: &Transaction<'_>) -> Result<Timestamp, LedgerError> {
    Ok(Timestamp(
        tx.prepare_cached(NOW_MS)?.query_row([], |r| r.get(0))?,
    ))
}

fn attempts_of(tx: &Transaction<'_>, seq: i64) -> Result<Vec<AttemptRow>, LedgerError> {
    let mut st = tx.prepare_cached(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE intent_seq = ?1 ORDER BY number"
    ))?;
    let rows = st.query_map(params![seq], attempt_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn load_where(
    tx: &Transaction<'_>,
    condition: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Option<Intent>, LedgerError> {
    let row = tx
        .prepare_cached(&format!(
            "SELECT {INTENT_COLUMNS} FROM intents WHERE {condition}"
        ))?
        .query_row([param], intent_row)
        .optional()?;
    match row {
        None => Ok(None),
        Some(row) => {
            let attempts = attempts_of(tx, row.seq)?;
            Ok(Some(row.into_intent(attempts)?))
        }
    }
}

fn load(tx: &Transaction<'_>, id: &IntentId) -> Result<Option<Intent>, LedgerError> {
    load_where(tx, "intent_id = ?1", &id.as_str())
}

fn load_many(
    tx: &Transaction<'_>,
    condition: &str,
    param: Option<&str>,
) -> Result<Vec<Intent>, LedgerError> {
    let sql = format!("SELECT {INTENT_COLUMNS} FROM intents WHERE {condition} ORDER BY seq");
    let mut st = tx.prepare_cached(&sql)?;
    let rows: Vec<IntentRow> = match param {
        Some(p) => st
            .query_map(params![p], intent_row)?
            .collect::<Result<_, _>>()?,
        None => st.query_map([], intent_row)?.collect::<Result<_, _>>()?,
    };
    let attempt_sql = format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE intent_seq IN \
         (SELECT seq FROM intents WHERE {condition}) ORDER BY intent_seq, number"
    );
    let mut st = tx.prepare_cached(&attempt_sql)?;
    let attempts: Vec<AttemptRow> = match param {
        Some(p) => st
            .query_map(params![p], attempt_row)?
            .collect::<Result<_, _>>()?,
        None => st.query_map([], attempt_row)?.collect::<Result<_, _>>()?,
    };
    let mut by_seq = group_attempts(attempts);
    rows.into_iter()
        .map(|r| {
            let a = by_seq.remove(&r.seq).unwrap_or_default();
            r.into_intent(a)
        })
        .collect()
}

/// The earliest non-final intent on `pg_cno` imported before `seq`.
fn earlier_open(
    tx: &Transaction<'_>,
    pg_cno: &str,
    seq: i64,
) -> Result<Option<Intent>, LedgerError> {
    let found: Option<i64> = tx
        .prepare_cached(
            "SELECT seq FROM intents WHERE pg_cno = ?1 AND seq < ?2 \
             AND state NOT IN ('succeeded', 'declined', 'not_processed') ORDER BY seq LIMIT 1",
        )?
        .query_row(params![pg_cno, seq], |r| r.get(0))
        .optional()?;
    match found {
        None => Ok(None),
        Some(s) => load_where(tx, "seq = ?1", &s),
    }
}

/// The first planned intent (import order) that no earlier non-final intent on its
/// `pg_cno` holds back.
fn next_free(tx: &Transaction<'_>) -> Result<Option<i64>, LedgerError> {
    Ok(tx
        .prepare_cached(
            "SELECT i.seq FROM intents i WHERE i.state = 'planned' AND NOT EXISTS \
             (SELECT 1 FROM intents e WHERE e.pg_cno = i.pg_cno AND e.seq < i.seq \
              AND e.state NOT IN ('succeeded', 'declined', 'not_processed')) \
             ORDER BY i.seq LIMIT 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// The next free intent ([`next_free`]), loaded in the same transaction.
fn load_next_free(tx: &Transaction<'_>) -> Result<Option<Intent>, LedgerError> {
    let Some(seq) = next_free(tx)? else {
        return Ok(None);
    };
    load_where(tx, "seq = ?1", &seq)?
        .ok_or_else(|| LedgerError::storage("leased row vanished"))
        .map(Some)
}

fn insert(tx: &Transaction<'_>, i: &Intent, now: Timestamp) -> Result<i64, LedgerError> {
    let r = IntentRow::from_intent(i);
    tx.prepare_cached(
        "INSERT INTO intents (intent_id, channel, pg_cno, amount, currency, revise_type_code, \
         remain_amount, reason, notify_url, state, generation, created_ms, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
    )?
    .execute(params![
        r.intent_id,
        r.channel,
        r.pg_cno,
        r.amount,
        r.currency,
        r.revise_type_code,
        r.remain_amount,
        r.reason,
        r.notify_url,
        r.state,
        r.generation,
        now.0
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Writes `new` over `old` (same intent), guarded by `old`'s generation.
fn write_back(
    tx: &Transaction<'_>,
    old: &Intent,
    new: &Intent,
    now: Timestamp,
) -> Result<(), LedgerError> {
    let r = IntentRow::from_intent(new);
    let changed = tx.prepare_cached(
        "UPDATE intents SET state = ?1, lease_owner = ?2, lease_expires_ms = ?3, generation = ?4, \
         cancel_pg_cno = ?5, res_cd = ?6, detail = ?7, updated_ms = ?8 \
         WHERE seq = ?9 AND generation = ?10"
    )?
    .execute(params![
            r.state,
            r.lease_owner,
            r.lease_expires_ms,
            r.generation,
            r.cancel_pg_cno,
            r.res_cd,
            r.detail,
            now.0,
            new.seq,
            i64::try_from(old.generation).unwrap_or(i64::MAX)
        ],
    )?;
    if changed != 1 {
        return Err(LedgerError::storage(format!(
            "intent {} changed under a write transaction",
            new.spec.intent_id()
        )));
    }
    let (inserts, results) = attempt_changes(old, new);
    for a in inserts {
        let a = AttemptRow::from_attempt(new.seq, a);
        tx.prepare_cached(
            "INSERT INTO attempts (intent_seq, number, shop_transaction_id, korea_date, request, \
             sent_ms, http_status, res_cd, detail, outcome) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            a.intent_seq,
            a.number,
            a.key,
            a.korea_date,
            a.request,
            a.sent_ms,
            a.http_status,
            a.res_cd,
            a.detail,
            a.outcome
        ])?;
    }
    for a in results {
        let a = AttemptRow::from_attempt(new.seq, a);
        tx.prepare_cached(
            "UPDATE attempts SET http_status = ?1, res_cd = ?2, detail = ?3, outcome = ?4, \
             result_ms = ?5 WHERE intent_seq = ?6 AND number = ?7",
        )?
        .execute(params![
            a.http_status,
            a.res_cd,
            a.detail,
            a.outcome,
            now.0,
            a.intent_seq,
            a.number
        ])?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the ledger file at `path`, applies pending schema
    /// migrations, and takes a fresh owner id with its liveness lock.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, LedgerError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(|e| LedgerError::storage(format!("ledger thread failed: {e}")))?
    }

    fn open_blocking(path: &Path) -> Result<SqliteStore, LedgerError> {
        let conn = open_file(path)?;
        let owner = random_owner()?;
        let dir = owners_dir(path);
        let lock = take_owner_lock(&dir, &owner)?;
        let ctx = Arc::new(Ctx {
            owner,
            owners_dir: dir,
        });
        let (send, recv) = std::sync::mpsc::channel::<Job>();
        let thread_ctx = Arc::clone(&ctx);
        std::thread::Builder::new()
            .name("kicc-ledger-sqlite".into())
            .spawn(move || writer(conn, thread_ctx, recv))
            .map_err(|e| io("starting the ledger writer thread", e))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                jobs: send,
                ctx,
                _lock: Mutex::new(lock),
            }),
        })
    }

    /// Runs `f` on the writer thread inside the current group's transaction; its writes
    /// are kept when it returns `(_, true)`. The answer comes after the commit.
    async fn run_keep<T, F>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &Ctx) -> (Result<T, LedgerError>, bool) + Send + 'static,
    {
        let (answer, wait) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |env| {
            let (result, keep) = match env {
                Ok((tx, ctx)) => f(tx, ctx),
                Err(why) => (Err(LedgerError::storage(why)), false),
            };
            let keep = keep && result.is_ok();
            Pending {
                keep,
                deliver: Box::new(move |failure| {
                    let out = match (result, failure) {
                        (Ok(_), Some(why)) => Err(LedgerError::storage(why)),
                        (r, _) => r,
                    };
                    let _ = answer.send(out);
                }),
            }
        });
        self.inner
            .jobs
            .send(job)
            .map_err(|_| LedgerError::storage("ledger writer thread stopped"))?;
        wait.await
            .map_err(|_| LedgerError::storage("ledger writer thread stopped"))?
    }

    /// Runs `f` on the writer thread; its writes are kept when it returns `Ok`.
    async fn run<T, F>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &Ctx) -> Result<T, LedgerError> + Send + 'static,
    {
        self.run_keep(move |tx, ctx| (f(tx, ctx), true)).await
    }

    fn holder_alive(ctx: &Ctx, intent: &Intent) -> bool {
        match &intent.state {
            State::InFlight { owner, .. } => {
                *owner == ctx.owner || probe_owner(&ctx.owners_dir, owner)
            }
            _ => true,
        }
    }

    /// Loads the leased intent and applies `step` to it under the lease.
    async fn under_lease<T, F>(&self, lease: &Lease, step: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&Intent, Timestamp) -> Result<(Intent, T), LedgerError> + Send + 'static,
    {
        let id = lease.intent_id.clone();
        self.run(move |tx, _| {
            let now = now(tx)?;
            let old = load(tx, &id)?.ok_or_else(|| LedgerError::NotFound(id.clone()))?;
            let (new, out) = step(&old, now)?;
            write_back(tx, &old, &new, now)?;
            Ok(out)
        })
        .await
    }
}

impl Store for SqliteStore {
    fn owner(&self) -> &OwnerId {
        &self.inner.ctx.owner
    }

    async fn plan(&self, spec: IntentSpec) -> Result<Planned, LedgerError> {
        self.run(move |tx, _| {
            let now = now(tx)?;
            let existing = load(tx, spec.intent_id())?;
            match transition::plan(existing.as_ref(), spec, 0)? {
                Planned::Created(mut i) => {
                    i.seq = insert(tx, &i, now)?;
                    Ok(Planned::Created(i))
                }
                e @ Planned::Existing(_) => Ok(e),
            }
        })
        .await
    }

    async fn import(
        &self,
        specs: Vec<IntentSpec>,
    ) -> Result<Result<Vec<Planned>, Vec<ImportConflict>>, LedgerError> {
        self.run_keep(move |tx, _| {
            let mut out = Vec::with_capacity(specs.len());
            let mut conflicts = Vec::new();
            let step = (|| {
                let now = now(tx)?;
                for (index, spec) in specs.into_iter().enumerate() {
                    let existing = load(tx, spec.intent_id())?;
                    match transition::plan(existing.as_ref(), spec, 0) {
                        Ok(Planned::Created(mut i)) => {
                            i.seq = insert(tx, &i, now)?;
                            out.push(Planned::Created(i));
                        }
                        Ok(e) => out.push(e),
                        Err(crate::TransitionError::Conflict(conflict)) => {
                            conflicts.push(ImportConflict { index, conflict })
                        }
                        Err(e) => return Err(LedgerError::from(e)),
                    }
                }
                Ok(())
            })();
            match step {
                Err(e) => (Err(e), false),
                Ok(()) if conflicts.is_empty() => (Ok(Ok(out)), true),
                // Rolled back: all or nothing.
                Ok(()) => (Ok(Err(conflicts)), false),
            }
        })
        .await
    }

    async fn get(&self, intent_id: &IntentId) -> Result<Option<Intent>, LedgerError> {
        let id = intent_id.clone();
        self.run(move |tx, _| load(tx, &id)).await
    }

    async fn list(&self, state: Option<StateKind>) -> Result<Vec<Intent>, LedgerError> {
        self.run(move |tx, _| match state {
            Some(k) => load_many(tx, "state = ?1", Some(k.as_str())),
            None => load_many(tx, "1 = 1", None),
        })
        .await
    }

    async fn lease_next(&self, ttl: Duration) -> Result<Option<Leased>, LedgerError> {
        self.run(move |tx, ctx| {
            let now = now(tx)?;
            let Some(old) = load_next_free(tx)? else {
                return Ok(None);
            };
            let (new, lease) = transition::acquire(&old, &ctx.owner, now, ttl, None, true)?;
            write_back(tx, &old, &new, now)?;
            Ok(Some(Leased { lease, intent: new }))
        })
        .await
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
        self.run(move |tx, ctx| {
            let now = now(tx)?;
            let Some(old) = load_next_free(tx)? else {
                return Ok(None);
            };
            let started =
                transition::start(&old, &ctx.owner, now, ttl, min_remaining, None, true, build)?;
            write_back(tx, &old, &started.intent, now)?;
            Ok(Some(started))
        })
        .await
    }

    async fn lease(&self, intent_id: &IntentId, ttl: Duration) -> Result<Leased, LedgerError> {
        let id = intent_id.clone();
        self.run(move |tx, ctx| {
            let now = now(tx)?;
            let old = load(tx, &id)?.ok_or_else(|| LedgerError::NotFound(id.clone()))?;
            let earlier = earlier_open(tx, old.spec.pg_cno(), old.seq)?;
            let alive = Self::holder_alive(ctx, &old);
            let (new, lease) =
                transition::acquire(&old, &ctx.owner, now, ttl, earlier.as_ref(), alive)?;
            write_back(tx, &old, &new, now)?;
            Ok(Leased { lease, intent: new })
        })
        .await
    }

    async fn renew(&self, lease: &Lease, min_remaining: Duration) -> Result<Lease, LedgerError> {
        let l = lease.clone();
        self.under_lease(lease, move |old, now| {
            Ok(transition::renew(old, &l, now, min_remaining)?)
        })
        .await
    }

    async fn record_attempt(
        &self,
        lease: &Lease,
        plan: AttemptPlan,
    ) -> Result<Attempt, LedgerError> {
        let l = lease.clone();
        self.under_lease(lease, move |old, now| {
            Ok(transition::record_attempt(old, &l, now, plan)?)
        })
        .await
    }

    async fn record_result(
        &self,
        lease: &Lease,
        number: u32,
        result: AttemptResult,
    ) -> Result<(), LedgerError> {
        let l = lease.clone();
        self.under_lease(lease, move |old, now| {
            Ok((transition::record_result(old, &l, now, number, result)?, ()))
        })
        .await
    }

    async fn finish(&self, lease: &Lease, outcome: Finish) -> Result<Intent, LedgerError> {
        let l = lease.clone();
        self.under_lease(lease, move |old, now| {
            let new = transition::finish(old, &l, now, outcome)?;
            Ok((new.clone(), new))
        })
        .await
    }

    async fn finish_with_result(
        &self,
        lease: &Lease,
        number: u32,
        result: AttemptResult,
        outcome: Finish,
    ) -> Result<Intent, LedgerError> {
        let l = lease.clone();
        self.under_lease(lease, move |old, now| {
            let mid = transition::record_result(old, &l, now, number, result)?;
            let new = transition::finish(&mid, &l, now, outcome)?;
            Ok((new.clone(), new))
        })
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<Intent, LedgerError> {
        let l = lease.clone();
        self.under_lease(lease, move |old, now| {
            let new = transition::release(old, &l, now)?;
            Ok((new.clone(), new))
        })
        .await
    }

    async fn recoverable(&self) -> Result<Vec<Intent>, LedgerError> {
        self.run(|tx, ctx| {
            let now = now(tx)?;
            let candidates = load_many(tx, "state IN ('in_flight', 'unknown')", None)?;
            // Probe each owner once per call.
            let mut alive: std::collections::HashMap<OwnerId, bool> = Default::default();
            Ok(candidates
                .into_iter()
                .filter(|i| {
                    let a = match &i.state {
                        State::InFlight { owner, .. } => *alive
                            .entry(owner.clone())
                            .or_insert_with(|| Self::holder_alive(ctx, i)),
                        _ => true,
                    };
                    transition::is_recoverable(i, now, a)
                })
                .collect())
        })
        .await
    }

    async fn summary(&self) -> Result<Summary, LedgerError> {
        self.run(|tx, _| {
            let mut st = tx.prepare("SELECT state, COUNT(*) FROM intents GROUP BY state")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut s = Summary::default();
            for row in rows {
                let (state, n) = row?;
                let kind = StateKind::parse(&state)
                    .ok_or_else(|| LedgerError::Corrupt(format!("unknown state {state:?}")))?;
                s.add_count(kind, u64::try_from(n).unwrap_or(0));
            }
            Ok(s)
        })
        .await
    }

    async fn now(&self) -> Result<Timestamp, LedgerError> {
        self.run(|tx, _| now(tx)).await
    }

    async fn record_notice(
        &self,
        pg_cno: &str,
        cancel_pg_cno: &str,
        body: Vec<u8>,
    ) -> Result<(Notice, Option<Intent>), LedgerError> {
        check_notice(pg_cno, cancel_pg_cno, &body).map_err(crate::TransitionError::from)?;
        let (pg_cno, cancel_pg_cno) = (pg_cno.to_owned(), cancel_pg_cno.to_owned());
        self.run(move |tx, _| {
            let now = now(tx)?;
            tx.prepare_cached(
                "INSERT INTO notices (pg_cno, cancel_pg_cno, body, received_ms) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![pg_cno, cancel_pg_cno, body, now.0])?;
            let notice = Notice {
                id: tx.last_insert_rowid(),
                pg_cno,
                cancel_pg_cno,
                body,
                received_at: now,
            };
            let seq: Option<i64> = tx
                .prepare_cached(
                    "SELECT seq FROM intents WHERE pg_cno = ?1 AND cancel_pg_cno = ?2 \
                     ORDER BY seq LIMIT 1",
                )?
                .query_row(params![notice.pg_cno, notice.cancel_pg_cno], |r| r.get(0))
                .optional()?;
            let intent = match seq {
                Some(seq) => load_where(tx, "seq = ?1", &seq)?,
                None => None,
            };
            Ok((notice, intent))
        })
        .await
    }

    async fn notices(&self, pg_cno: &str, cancel_pg_cno: &str) -> Result<Vec<Notice>, LedgerError> {
        let (pg_cno, cancel_pg_cno) = (pg_cno.to_owned(), cancel_pg_cno.to_owned());
        self.run(move |tx, _| {
            let mut st = tx.prepare_cached(
                "SELECT id, pg_cno, cancel_pg_cno, body, received_ms FROM notices \
                 WHERE pg_cno = ?1 AND cancel_pg_cno = ?2 ORDER BY id",
            )?;
            let rows = st.query_map(params![pg_cno, cancel_pg_cno], |r| {
                Ok(Notice {
                    id: r.get(0)?,
                    pg_cno: r.get(1)?,
                    cancel_pg_cno: r.get(2)?,
                    body: r.get(3)?,
                    received_at: Timestamp(r.get(4)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
