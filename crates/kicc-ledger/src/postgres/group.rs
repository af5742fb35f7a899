//! Group commit for [`super::PostgresStore`]: the writes of many workers in one transaction.
//!
//! Every write under a lease (renew, attempt, result, outcome, release) and every claim of
//! the next free intent ([`crate::Store::start_next`], [`crate::Store::lease_next`]) is queued
//! to a few committer tasks, each with its own connection. A committer takes everything
//! queued (up to [`MAX_GROUP`] operations) and runs it as ONE transaction of set-based
//! statements, pipelined on its connection:
//!
//! 1. `BEGIN`; lock the rows of the lease writes (`FOR UPDATE`, in `seq` order, so two groups
//!    never wait on each other in a cycle) and read their attempts; claim as many free
//!    planned intents as there are claims (import order, none held back by an earlier
//!    non-final intent on its `pg_cno`, `FOR UPDATE SKIP LOCKED LIMIT n`); read the
//!    database's clock after every lock was granted. One round trip.
//! 2. Apply each operation's pure transition ([`crate::transition`]) to its row, in Rust; a
//!    claim builds its intent's first attempt there (the message is built when its attempt
//!    is leased). One statement writes every row that passed (`UPDATE .. FROM unnest(..)`
//!    guarded by the generation read, with the attempt inserts and result updates of
//!    exactly the rows that guard let through, via `RETURNING`), then `COMMIT`. One round
//!    trip.
//!
//! So a group costs two round trips and one WAL flush, however many workers it serves. An
//! intent held back behind one whose outcome is in the same group is claimed by a later
//! group (claims see the ledger as it was before the group).
//!
//! Each operation gets its own answer: a transition that refuses (fenced: the lease was
//! taken over; expired; a rule) fails that operation alone, before the commit, and writes
//! nothing of it; the rows written are answered only once `COMMIT` has returned; when
//! anything in the group fails (the connection, a statement, the commit itself) the
//! transaction is rolled back and every operation in it is answered with an error, so no
//! caller sends a request whose attempt is not durable.
//!
//! A commit whose answer is lost (the connection cut after `COMMIT` was sent) is reported
//! as failed although it may have committed, as for any database call
//! ([`crate::Store`]): an attempt recorded that way is never sent, and recovery treats it as
//! possibly sent, which is safe.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::wire::{attempt_row, connect_one, get, intent_row, NOW_MS};
use crate::error::LedgerError;
use crate::model::{Intent, IntentId, Timestamp};
use crate::rows::{
    attempt_changes, group_attempts, AttemptRow, IntentRow, ATTEMPT_COLUMNS, INTENT_COLUMNS,
};
use crate::url::{Password, PgTarget};

/// The most operations one transaction carries.
pub(super) const MAX_GROUP: usize = 256;

/// What an operation finds in the group's transaction.
pub(super) enum Loaded<'a> {
    /// Its row, locked for the rest of the transaction, and the database's clock read after
    /// the lock was granted.
    Row(&'a Intent, Timestamp),
    /// No intent with that id (a lease write), or no free planned intent (a claim).
    Missing,
    /// The group failed before this operation was applied: nothing of it is written.
    Failed(LedgerError),
}

/// Answers an operation's caller once the commit that holds its write is known.
pub(super) type Deliver = Box<dyn FnOnce(Result<(), LedgerError>) + Send>;

/// Applies an operation to what it found: the intent to write back and how to answer once
/// the commit is known, or `None` when nothing is to be written (the caller has then been
/// answered already).
pub(super) type Apply = Box<dyn for<'a> FnOnce(Loaded<'a>) -> Option<(Intent, Deliver)> + Send>;

/// Which row an operation works on.
pub(super) enum Target {
    /// The intent a lease write is for.
    Intent(IntentId),
    /// The next free planned intent (import order; one at a time per `pg_cno`).
    NextFree,
}

/// One queued operation.
pub(super) struct Op {
    pub target: Target,
    pub apply: Apply,
}

/// The queue to the committers. Dropping it stops them once they have run what is queued.
pub(super) struct Group {
    queue: mpsc::UnboundedSender<Op>,
}

impl Group {
    /// Connects `committers` connections (at least one) and starts a committer on each.
    pub(super) async fn start(
        target: &PgTarget,
        password: Option<&Password>,
        committers: usize,
    ) -> Result<Group, LedgerError> {
        let (queue, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        let mut links = Vec::new();
        for _ in 0..committers.max(1) {
            links.push(Link::connect(target, password).await?);
        }
        for link in links {
            let committer = Committer {
                link: Some(link),
                target: target.clone(),
                password: password.cloned(),
                queue: rx.clone(),
                carry: Vec::new(),
            };
            tokio::spawn(committer.run());
        }
        Ok(Group { queue })
    }

    /// Queues `op` (at once: its place in the queue is taken when this returns).
    pub(super) fn submit(&self, op: Op) {
        if let Err(mpsc::error::SendError(op)) = self.queue.send(op) {
            answer_failed(
                op.apply,
                LedgerError::storage("postgres: the store's committers have stopped"),
            );
        }
    }
}

fn answer_failed(apply: Apply, e: LedgerError) {
    let why = e.to_string();
    if let Some((_, deliver)) = apply(Loaded::Failed(e)) {
        deliver(Err(LedgerError::storage(why)));
    }
}

/// The set-based statements, prepared once per connection.
struct Stmts {
    lock: Statement,
    attempts_by_id: Statement,
    attempts_by_seq: Statement,
    now: Statement,
    claim: Statement,
    write: Statement,
}

/// A committer's connection.
struct Link {
    client: Client,
    st: Stmts,
}

impl Link {
    async fn connect(target: &PgTarget, password: Option<&Password>) -> Result<Link, LedgerError> {
        let client = connect_one(target, password).await?;
        // Every statement here reaches its rows by key (or through the planned index), a
        // few hundred at most: index lookups in nested loops. A ledger that just imported a
        // file has stale statistics (autovacuum analyzes it later), and a plan chosen on
        // them hashed or scanned the whole table once per group (1.2 ms per write at
        // 10,000 intents). So the committer's sessions plan lookups only, and never JIT-
        // compile (a plan with a path turned off costs more than `jit_above_cost`, and
        // compiling takes ~150 ms, longer than a whole group).
        client
            .batch_execute(
                "SET enable_seqscan = off; SET enable_hashjoin = off; \
                 SET enable_mergejoin = off; SET jit = off",
            )
            .await?;
        let lock = format!(
            "SELECT {INTENT_COLUMNS} FROM intents WHERE intent_id = ANY($1) ORDER BY seq FOR UPDATE"
        );
        let attempts_by_id = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE intent_seq IN \
             (SELECT seq FROM intents WHERE intent_id = ANY($1)) ORDER BY intent_seq, number"
        );
        let attempts_by_seq = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE intent_seq = ANY($1) \
             ORDER BY intent_seq, number"
        );
        let claim = claim_sql();
        let (lock, attempts_by_id, attempts_by_seq, now, claim, write) = tokio::try_join!(
            client.prepare(&lock),
            client.prepare(&attempts_by_id),
            client.prepare(&attempts_by_seq),
            client.prepare(NOW_MS),
            client.prepare(&claim),
            client.prepare(WRITE_SQL),
        )?;
        Ok(Link {
            client,
            st: Stmts {
                lock,
                attempts_by_id,
                attempts_by_seq,
                now,
                claim,
                write,
            },
        })
    }
}

/// Claims up to `$1` free planned intents: import order, none held back by an earlier
/// non-final intent on its `pg_cno`, none another transaction has locked. The last column
/// counts the intent's attempts (a planned intent has none; one that has is loaded whole).
pub(super) fn claim_sql() -> String {
    format!(
        "SELECT {INTENT_COLUMNS}, (SELECT count(*) FROM attempts a WHERE a.intent_seq = i.seq) \
         FROM intents i WHERE i.state = 'planned' AND NOT EXISTS \
         (SELECT 1 FROM intents e WHERE e.pg_cno = i.pg_cno AND e.seq < i.seq \
          AND e.state NOT IN ('succeeded', 'declined', 'not_processed')) \
         ORDER BY i.seq LIMIT $1 FOR UPDATE OF i SKIP LOCKED"
    )
}

/// Writes many intents over their old versions, each guarded by the generation it was read
/// with, with their new attempts and new results; returns the `seq` of every intent written
/// (an intent the guard refused gets none of its attempt writes either).
pub(super) const WRITE_SQL: &str = "WITH v AS ( \
     SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::int8[], \
     $6::int8[], $7::text[], $8::text[], $9::text[]) \
     AS v(seq, old_generation, state, lease_owner, lease_expires_ms, generation, \
     cancel_pg_cno, res_cd, detail)), \
     u AS (UPDATE intents AS i SET state = v.state, lease_owner = v.lease_owner, \
     lease_expires_ms = v.lease_expires_ms, generation = v.generation, \
     cancel_pg_cno = v.cancel_pg_cno, res_cd = v.res_cd, detail = v.detail, updated_ms = $10 \
     FROM v WHERE i.seq = v.seq AND i.generation = v.old_generation RETURNING i.seq), \
     ins AS (INSERT INTO attempts (intent_seq, number, shop_transaction_id, korea_date, \
     request, sent_ms, http_status, res_cd, detail, outcome, result_ms) \
     SELECT a.intent_seq, a.number, a.key, a.korea_date, a.request, a.sent_ms, \
     a.http_status, a.res_cd, a.detail, a.outcome, \
     CASE WHEN a.outcome IS NULL THEN NULL ELSE $10 END \
     FROM unnest($11::int8[], $12::int8[], $13::text[], $14::text[], $15::bytea[], \
     $16::int8[], $17::int8[], $18::text[], $19::text[], $20::text[]) \
     AS a(intent_seq, number, key, korea_date, request, sent_ms, http_status, res_cd, \
     detail, outcome) WHERE a.intent_seq = ANY(ARRAY(SELECT seq FROM u))), \
     res AS (UPDATE attempts AS t SET http_status = r.http_status, res_cd = r.res_cd, \
     detail = r.detail, outcome = r.outcome, result_ms = $10 \
     FROM unnest($21::int8[], $22::int8[], $23::int8[], $24::text[], $25::text[], \
     $26::text[]) AS r(intent_seq, number, http_status, res_cd, detail, outcome) \
     WHERE t.intent_seq = r.intent_seq AND t.number = r.number \
     AND r.intent_seq = ANY(ARRAY(SELECT seq FROM u))) \
     SELECT seq FROM u";

/// The parameters of [`WRITE_SQL`]: one array per column.
#[derive(Default)]
pub(super) struct WriteSet {
    now: i64,
    seq: Vec<i64>,
    old_generation: Vec<i64>,
    state: Vec<String>,
    lease_owner: Vec<Option<String>>,
    lease_expires_ms: Vec<Option<i64>>,
    generation: Vec<i64>,
    cancel_pg_cno: Vec<Option<String>>,
    res_cd: Vec<Option<String>>,
    detail: Vec<Option<String>>,
    a_seq: Vec<i64>,
    a_number: Vec<i64>,
    a_key: Vec<String>,
    a_date: Vec<String>,
    a_request: Vec<Vec<u8>>,
    a_sent: Vec<i64>,
    a_status: Vec<Option<i64>>,
    a_res_cd: Vec<Option<String>>,
    a_detail: Vec<Option<String>>,
    a_outcome: Vec<Option<String>>,
    r_seq: Vec<i64>,
    r_number: Vec<i64>,
    r_status: Vec<Option<i64>>,
    r_res_cd: Vec<Option<String>>,
    r_detail: Vec<Option<String>>,
    r_outcome: Vec<Option<String>>,
}

impl WriteSet {
    pub(super) fn new(now: Timestamp) -> WriteSet {
        WriteSet {
            now: now.0,
            ..WriteSet::default()
        }
    }

    /// Whether nothing is to be written.
    pub(super) fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    /// Adds `new`, written over `old` (the same intent, as read under its row lock).
    pub(super) fn push(&mut self, old: &Intent, new: &Intent) {
        let r = IntentRow::from_intent(new);
        self.seq.push(new.seq);
        self.old_generation
            .push(i64::try_from(old.generation).unwrap_or(i64::MAX));
        self.state.push(r.state);
        self.lease_owner.push(r.lease_owner);
        self.lease_expires_ms.push(r.lease_expires_ms);
        self.generation.push(r.generation);
        self.cancel_pg_cno.push(r.cancel_pg_cno);
        self.res_cd.push(r.res_cd);
        self.detail.push(r.detail);
        let (inserts, results) = attempt_changes(old, new);
        for a in inserts {
            let a = AttemptRow::from_attempt(new.seq, a);
            self.a_seq.push(a.intent_seq);
            self.a_number.push(a.number);
            self.a_key.push(a.key);
            self.a_date.push(a.korea_date);
            self.a_request.push(a.request);
            self.a_sent.push(a.sent_ms);
            self.a_status.push(a.http_status);
            self.a_res_cd.push(a.res_cd);
            self.a_detail.push(a.detail);
            self.a_outcome.push(a.outcome);
        }
        for a in results {
            let a = AttemptRow::from_attempt(new.seq, a);
            self.r_seq.push(a.intent_seq);
            self.r_number.push(a.number);
            self.r_status.push(a.http_status);
            self.r_res_cd.push(a.res_cd);
            self.r_detail.push(a.detail);
            self.r_outcome.push(a.outcome);
        }
    }

    /// The statement's parameters, `$1` to `$26`.
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 26] {
        [
            &self.seq,
            &self.old_generation,
            &self.state,
            &self.lease_owner,
            &self.lease_expires_ms,
            &self.generation,
            &self.cancel_pg_cno,
            &self.res_cd,
            &self.detail,
            &self.now,
            &self.a_seq,
            &self.a_number,
            &self.a_key,
            &self.a_date,
            &self.a_request,
            &self.a_sent,
            &self.a_status,
            &self.a_res_cd,
            &self.a_detail,
            &self.a_outcome,
            &self.r_seq,
            &self.r_number,
            &self.r_status,
            &self.r_res_cd,
            &self.r_detail,
            &self.r_outcome,
        ]
    }
}

/// The `seq`s [`WRITE_SQL`] returned: the intents it wrote.
pub(super) fn written(rows: &[Row]) -> Result<HashSet<i64>, LedgerError> {
    rows.iter().map(|r| get::<i64>(r, 0)).collect()
}

/// A row written in the group, answered once the commit is known.
struct Staged {
    old: Intent,
    new: Intent,
    deliver: Deliver,
}

/// One group's operations, as they move from queued to applied to answered.
struct Batch {
    writes: Vec<(IntentId, Apply)>,
    claims: Vec<Apply>,
    /// Applied, to be written: answered once the commit is known.
    staged: Vec<Staged>,
}

fn not_committed(why: &str) -> LedgerError {
    LedgerError::storage(format!(
        "postgres: the group commit holding this write failed, nothing of it was committed: {why}"
    ))
}

impl Batch {
    fn new(ops: Vec<Op>) -> Batch {
        let mut writes = Vec::new();
        let mut claims = Vec::new();
        for op in ops {
            match op.target {
                Target::Intent(id) => writes.push((id, op.apply)),
                Target::NextFree => claims.push(op.apply),
            }
        }
        Batch {
            writes,
            claims,
            staged: Vec::new(),
        }
    }

    /// Applies each operation to its row (or says it found none).
    ///
    /// An operation's closure runs the caller's code (a claim's message builder): one that
    /// panics fails that operation alone (its answer is dropped, which its caller hears as
    /// an error) and writes nothing of it, instead of taking the committer and the rest of
    /// the group down with it.
    fn apply(&mut self, ops: Vec<(Apply, Option<Intent>)>, now: Timestamp) {
        for (apply, row) in ops {
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &row {
                Some(old) => apply(Loaded::Row(old, now)),
                None => apply(Loaded::Missing),
            }));
            match (applied, row) {
                (Ok(Some((new, deliver))), Some(old)) => {
                    self.staged.push(Staged { old, new, deliver })
                }
                (Ok(Some((_, deliver))), None) => {
                    deliver(Err(LedgerError::storage("postgres: no row to write")))
                }
                (Ok(None), _) | (Err(_), _) => {}
            }
        }
    }

    fn write_set(&self, now: Timestamp) -> WriteSet {
        let mut set = WriteSet::new(now);
        for s in &self.staged {
            set.push(&s.old, &s.new);
        }
        set
    }

    /// The commit returned: every staged row answered, `written` (the `seq`s the write
    /// returned) with success, any other (refused by the write's generation guard) with
    /// an error.
    fn committed(self, written: &HashSet<i64>) {
        for s in self.staged {
            let result = if written.contains(&s.new.seq) {
                Ok(())
            } else {
                Err(LedgerError::storage(format!(
                    "postgres: intent {} changed under the write; nothing of this write was kept",
                    s.new.spec.intent_id()
                )))
            };
            (s.deliver)(result);
        }
    }

    /// The group failed (and was rolled back): every operation answered with an error.
    fn failed(self, why: &str) {
        for (_, apply) in self.writes {
            answer_failed(apply, not_committed(why));
        }
        for apply in self.claims {
            answer_failed(apply, not_committed(why));
        }
        for s in self.staged {
            (s.deliver)(Err(not_committed(why)));
        }
    }

    /// Runs the group's transaction up to and including `COMMIT` and returns the `seq`s
    /// written: two round trips (one
    /// more only if a claimed intent already has attempts, which a planned one never has).
    async fn execute(&mut self, link: &Link) -> Result<HashSet<i64>, LedgerError> {
        let (c, st) = (&link.client, &link.st);
        let wanted = i64::try_from(self.claims.len()).unwrap_or(i64::MAX);
        let wanted: [&(dyn ToSql + Sync); 1] = [&wanted];
        let ids: Vec<&str> = self.writes.iter().map(|(id, _)| id.as_str()).collect();
        let ids: [&(dyn ToSql + Sync); 1] = [&ids];
        let (writing, claiming) = (!self.writes.is_empty(), !self.claims.is_empty());
        // Sent in this order (`biased`: each is sent when first polled); the clock last, so
        // it is read after every lock was granted.
        let ((), locked, attempts, claimed, clock) = tokio::try_join!(
            biased;
            c.batch_execute("BEGIN"),
            async {
                match writing {
                    true => c.query(&st.lock, &ids).await,
                    false => Ok(Vec::new()),
                }
            },
            async {
                match writing {
                    true => c.query(&st.attempts_by_id, &ids).await,
                    false => Ok(Vec::new()),
                }
            },
            async {
                match claiming {
                    true => c.query(&st.claim, &wanted).await,
                    false => Ok(Vec::new()),
                }
            },
            c.query_one(&st.now, &[]),
        )?;
        let now = Timestamp(get(&clock, 0)?);
        let mut attempts = group_attempts(
            attempts
                .iter()
                .map(attempt_row)
                .collect::<Result<Vec<_>, _>>()?,
        );
        let mut by_id: HashMap<String, Intent> = HashMap::with_capacity(locked.len());
        for r in &locked {
            let row = intent_row(r)?;
            let a = attempts.remove(&row.seq).unwrap_or_default();
            by_id.insert(row.intent_id.clone(), row.into_intent(a)?);
        }
        let mut free = Vec::with_capacity(claimed.len());
        let mut with_attempts = Vec::new();
        for r in &claimed {
            let row = intent_row(r)?;
            if get::<i64>(r, 17)? > 0 {
                with_attempts.push(row.seq);
            }
            // SKIP LOCKED does not skip the rows this transaction locked itself: a row a
            // lease write holds is not free (it is never planned either).
            if !by_id.contains_key(&row.intent_id) {
                free.push(row);
            }
        }
        let mut attempts = if with_attempts.is_empty() {
            HashMap::new()
        } else {
            let found = c.query(&st.attempts_by_seq, &[&with_attempts]).await?;
            group_attempts(
                found
                    .iter()
                    .map(attempt_row)
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        let mut intents = Vec::with_capacity(free.len());
        for row in free {
            let a = attempts.remove(&row.seq).unwrap_or_default();
            intents.push(row.into_intent(a)?);
        }
        let writes: Vec<_> = std::mem::take(&mut self.writes)
            .into_iter()
            .map(|(id, apply)| (apply, by_id.remove(id.as_str())))
            .collect();
        self.apply(writes, now);
        let mut intents = intents.into_iter();
        let claims: Vec<_> = std::mem::take(&mut self.claims)
            .into_iter()
            .map(|apply| (apply, intents.next()))
            .collect();
        self.apply(claims, now);
        let set = self.write_set(now);
        let write = async {
            match set.is_empty() {
                true => Ok(Vec::new()),
                false => c.query(&st.write, &set.params()).await,
            }
        };
        let (rows, ()) = tokio::try_join!(biased; write, c.batch_execute("COMMIT"))?;
        written(&rows)
    }
}

/// One committer: takes what is queued, commits it as one transaction, answers, repeats.
struct Committer {
    /// `None` after the connection broke: reconnected for the next group.
    link: Option<Link>,
    target: PgTarget,
    password: Option<Password>,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Op>>>,
    /// Operations taken from the queue but left for the next group (a second write to an
    /// intent already in this one).
    carry: Vec<Op>,
}

impl Committer {
    async fn run(mut self) {
        loop {
            let mut ops = std::mem::take(&mut self.carry);
            {
                let mut rx = self.queue.lock().await;
                if ops.is_empty() {
                    match rx.recv().await {
                        Some(op) => ops.push(op),
                        None => return,
                    }
                }
                while ops.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(op) => ops.push(op),
                        Err(_) => break,
                    }
                }
            }
            // One write per intent per group: a second one waits for the next group.
            let mut seen = HashSet::new();
            let mut group = Vec::with_capacity(ops.len());
            for op in ops {
                match &op.target {
                    Target::Intent(id) if !seen.insert(id.clone()) => self.carry.push(op),
                    _ => group.push(op),
                }
            }
            self.commit(group).await;
        }
    }

    async fn commit(&mut self, ops: Vec<Op>) {
        let mut batch = Batch::new(ops);
        if self.link.as_ref().is_none_or(|l| l.client.is_closed()) {
            self.link = None;
            match Link::connect(&self.target, self.password.as_ref()).await {
                Ok(link) => self.link = Some(link),
                Err(e) => return batch.failed(&e.to_string()),
            }
        }
        let Some(link) = self.link.as_ref() else {
            return batch.failed("no connection");
        };
        match batch.execute(link).await {
            Ok(written) => batch.committed(&written),
            Err(e) => {
                // Nothing of the group stands: roll back what the server may still hold
                // open (a failed COMMIT has ended the transaction already). A connection
                // that cannot even do that is replaced for the next group.
                let rolled_back = link.client.batch_execute("ROLLBACK").await.is_ok();
                if !rolled_back || link.client.is_closed() {
                    self.link = None;
                }
                batch.failed(&e.to_string());
            }
        }
    }
}
