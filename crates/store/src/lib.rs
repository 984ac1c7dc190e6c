//! fedwatt's storage: streams of points keyed by (stream, time), hourly and
//! daily rollups kept up to date on ingest, tokens — on SQLite (embedded, the
//! default) or PostgreSQL, chosen by the database URL.
//!
//! Data enters through one door, [`Store::ingest`]: a resolved pack is
//! checked whole, then written whole (on SQLite, with the packs posted at
//! the same moment, in one transaction where each has its savepoint), or
//! refused whole with the record and field to blame. A point re-sent at
//! the same time replaces the old one; rollups are corrected.
//!
//! The store is synchronous: each call holds a connection for its
//! duration. An async caller runs it on a blocking thread.
//!
//! What it does not do: decode SenML (the `senml` crate does), check
//! tokens against requests (the API does, with [`Token::allows`]).
//!
//! Layout: a stream's points are kept one row per UTC day (a *chunk*, see
//! `chunk.rs`), so that a year of 10-minute points is 365 rows.
//!
//! Invariants:
//! - a stream holds one kind of value, and every point in the stream's unit;
//! - the `hours` row of a stream's UTC day holds, for each hour with numeric
//!   points, their count, sum, min, max, first and last; a `days` row the
//!   same for a day of the node's time zone; both are rewritten in the
//!   transaction that changes the points;
//! - a stream's count, first and last time match its points.

mod audit;
mod calendar;
mod chunk;
mod coordination;
mod db;
mod error;
mod federation;
mod ingest;
mod model;
mod peers;
mod postgres;
mod query;
mod rollup;
mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use senml::Record;
use sha2::{Digest, Sha256};

pub use audit::{
    AuditEntry, AuditReport, AuditVerifier, new_signing_key, signing_key_from_hex,
    verifying_key_from_hex,
};
pub use calendar::{
    Every, HOUR, MAX_BUCKETS, ProfileBy, buckets, format_time, parse_time, time_zone,
};
pub use coordination::{StoredEquipment, StoredPlan, StoredStimulation};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use error::{Error, RecordError, Result};
pub use federation::{
    Encoding, Grant, NewGrant, PUSH_RECORDS, Push, PushKind, Subscription, check_bare_jid,
    retry_delay,
};
pub use jiff::tz::TimeZone;
pub use model::{
    Business, Device, Measurement, Metadata, Scope, StreamInfo, StreamPattern, Token, ValueKind,
    parse_duration,
};
pub use peers::{PeerPack, Received};
pub use query::{Aggregate, Profile, SlotAggregate};
pub use rollup::{Function, Partial};

use db::Db;

/// Connections to PostgreSQL one node process opens at most.
const POSTGRES_CONNECTIONS: usize = 16;

/// SQLite connections reading at once, at most.
const SQLITE_READERS: usize = 8;

/// At most `max` connections, opened on demand and kept for reuse; a caller
/// beyond `max` waits for one to come back, so that a burst of requests
/// cannot exhaust the database's connections.
struct Pool<C> {
    state: Mutex<PoolState<C>>,
    returned: Condvar,
    max: usize,
    connect: Box<dyn Fn() -> Result<C> + Send + Sync>,
}

struct PoolState<C> {
    idle: Vec<C>,
    /// Connections in use or idle.
    open: usize,
}

impl<C> Pool<C> {
    fn new(max: usize, idle: Vec<C>, connect: Box<dyn Fn() -> Result<C> + Send + Sync>) -> Pool<C> {
        Pool {
            state: Mutex::new(PoolState {
                open: idle.len(),
                idle,
            }),
            returned: Condvar::new(),
            max,
            connect,
        }
    }

    fn take(&self) -> Result<C> {
        let mut state = locked(&self.state);
        loop {
            if let Some(c) = state.idle.pop() {
                return Ok(c);
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return (self.connect)().inspect_err(|_| self.lose());
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Gives a connection back, or forgets it when it is broken.
    fn give(&self, c: C, broken: bool) {
        if broken {
            return self.lose();
        }
        locked(&self.state).idle.push(c);
        self.returned.notify_one();
    }

    fn lose(&self) {
        locked(&self.state).open -= 1;
        self.returned.notify_one();
    }
}

/// A pack waiting for SQLite's writer, then what became of it.
struct WaitingPack {
    /// Taken by the writer.
    batches: Mutex<Option<Vec<ingest::StreamBatch>>>,
    owner: Option<String>,
    /// Set by the writer, in the transaction's order.
    outcome: Mutex<Option<Result<ingest::Applied>>>,
}

/// A mutex's guard. A panic elsewhere while holding it leaves nothing half
/// done (every write is in a transaction, a pool's state is counts and a
/// list), so poisoning is ignored.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a transaction must be on disk when its commit returns.
#[derive(Debug, Clone, Copy)]
enum Durability {
    /// On disk before the commit returns: what it lets the node acknowledge
    /// to anyone (a pack over HTTP, a peer's push) survives a power cut.
    Flushed,
    /// On disk with the next flushed commit: bookkeeping whose loss in a
    /// power cut only means work done again (a push sent again, and dropped
    /// as a duplicate by its receiver). A crash of the process loses
    /// nothing: the commit is in the operating system's hands.
    Deferred,
}

enum Backend {
    Sqlite {
        path: PathBuf,
        /// One writer at a time: SQLite allows no more.
        writer: Mutex<rusqlite::Connection>,
        readers: Pool<rusqlite::Connection>,
        /// Packs waiting for the writer (see [`Store::ingest`]).
        waiting: Mutex<Vec<Arc<WaitingPack>>>,
    },
    Postgres {
        clients: Pool<::postgres::Client>,
    },
}

/// A node's store. Cheap to clone; every clone shares the connections.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    timezone: TimeZone,
    /// Called after a commit that queued pushes.
    outbox_listeners: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What the store answers to a records query: each stream with its records.
pub type StreamRecords = Vec<(StreamInfo, Vec<Record>)>;

impl Store {
    /// Opens the store at `url`, running the schema migrations:
    /// `postgres://…` (or `postgresql://…`) for PostgreSQL, `sqlite:PATH`
    /// for a SQLite file, and no URL for `fedwatt.sqlite` in `data_dir`.
    /// Daily rollups follow `timezone` (an IANA name).
    pub fn open(url: Option<&str>, data_dir: &Path, timezone: &str) -> Result<Store> {
        let timezone = time_zone(timezone).map_err(Error::Config)?;
        let backend = match url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let url = url.to_owned();
                let mut first = postgres::connect(&url)?;
                postgres::migrate(&mut first)?;
                let clients = Pool::new(
                    POSTGRES_CONNECTIONS,
                    vec![first],
                    Box::new(move || postgres::connect(&url)),
                );
                Backend::Postgres { clients }
            }
            Some(url) => {
                let path = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "database url {url:?}: expected postgres://…, sqlite:PATH, or none for SQLite in the data directory"
                        ))
                    })?;
                Self::open_sqlite(PathBuf::from(path))?
            }
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    Error::Config(format!(
                        "cannot create the data directory {}: {e}",
                        data_dir.display()
                    ))
                })?;
                Self::open_sqlite(data_dir.join("fedwatt.sqlite"))?
            }
        };
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                timezone,
                outbox_listeners: Mutex::new(Vec::new()),
            }),
        })
    }

    fn open_sqlite(path: PathBuf) -> Result<Backend> {
        let mut writer = sqlite::connect(&path)
            .map_err(|e| Error::Config(format!("database {}: {e}", path.display())))?;
        sqlite::migrate(&mut writer)?;
        let for_readers = path.clone();
        Ok(Backend::Sqlite {
            path,
            writer: Mutex::new(writer),
            waiting: Mutex::new(Vec::new()),
            readers: Pool::new(
                SQLITE_READERS,
                Vec::new(),
                Box::new(move || sqlite::connect(&for_readers)),
            ),
        })
    }

    /// Which backend, for logs (`SQLite /var/lib/fedwatt/fedwatt.sqlite`).
    pub fn describe(&self) -> String {
        match &self.inner.backend {
            Backend::Sqlite { path, .. } => format!("SQLite {}", path.display()),
            Backend::Postgres { .. } => "PostgreSQL".into(),
        }
    }

    /// The time zone of daily rollups.
    pub fn timezone(&self) -> &TimeZone {
        &self.inner.timezone
    }

    fn read<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
        match &self.inner.backend {
            Backend::Sqlite { readers, .. } => {
                let conn = readers.take()?;
                let out = f(&mut sqlite::Lite(&conn));
                readers.give(conn, false);
                out
            }
            Backend::Postgres { clients } => {
                let mut client = clients.take()?;
                let out = f(&mut postgres::Pg(&mut client));
                let broken = client.is_closed();
                clients.give(client, broken);
                out
            }
        }
    }

    /// Runs `f` in one transaction, committed only if it succeeds and on
    /// disk when this returns. On PostgreSQL a transaction chosen as a
    /// deadlock victim is run again.
    fn write<T>(&self, f: impl FnMut(&mut dyn Db) -> Result<T>) -> Result<T> {
        self.write_with(Durability::Flushed, f)
    }

    /// [`Store::write`], with the durability the transaction needs.
    fn write_with<T>(
        &self,
        durability: Durability,
        mut f: impl FnMut(&mut dyn Db) -> Result<T>,
    ) -> Result<T> {
        let deferred = matches!(durability, Durability::Deferred);
        match &self.inner.backend {
            Backend::Sqlite { writer, .. } => {
                let mut conn = locked(writer);
                if deferred {
                    // In WAL mode, NORMAL skips the flush at commit; the next
                    // FULL commit flushes this one's pages with its own.
                    conn.execute_batch("PRAGMA synchronous = NORMAL")?;
                }
                let out = (|| {
                    // Immediate: take the write lock first, so that another
                    // process writing meanwhile makes this wait, not fail.
                    let tx =
                        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    let out = f(&mut sqlite::Lite(&tx))?;
                    tx.commit()?;
                    Ok(out)
                })();
                if deferred {
                    conn.execute_batch("PRAGMA synchronous = FULL")?;
                }
                out
            }
            Backend::Postgres { clients } => {
                let mut attempt = 0;
                loop {
                    let mut client = clients.take()?;
                    let out = (|| {
                        let mut tx = client.transaction()?;
                        if deferred {
                            tx.batch_execute("SET LOCAL synchronous_commit = off")?;
                        }
                        let out = f(&mut postgres::Pg(&mut tx))?;
                        tx.commit()?;
                        Ok(out)
                    })();
                    let broken = client.is_closed();
                    clients.give(client, broken);
                    attempt += 1;
                    match out {
                        Err(Error::Postgres(e)) if attempt < 5 && postgres::is_transient(&e) => {
                            tracing::warn!("retrying a transaction: {e}");
                        }
                        out => return out,
                    }
                }
            }
        }
    }

    /// Stores the records of one pack (in input order, each with its index
    /// in the pack, as [`senml::resolve_slice_indexed`] gives them) in one
    /// transaction, or refuses them all. New streams are created with
    /// `owner`. Returns the number of points written.
    pub fn ingest(&self, records: &[(usize, Record)], owner: Option<&str>) -> Result<u64> {
        let mut batches = ingest::prepare(records)?;
        let applied = match &self.inner.backend {
            Backend::Sqlite {
                writer, waiting, ..
            } => self.ingest_together(writer, waiting, batches, owner)?,
            Backend::Postgres { .. } => {
                let now = now_micros();
                let tz = self.inner.timezone.clone();
                self.write(|db| ingest::apply(db, &mut batches, owner, None, &tz, now))?
            }
        };
        if applied.queued > 0 {
            self.outbox_changed();
        }
        Ok(applied.written)
    }

    /// SQLite's group commit. A pack waits with the others for the one
    /// writer; whoever gets it writes every pack waiting in one
    /// transaction, each in its own savepoint. Packs posted at once then
    /// share one disk flush instead of queuing for one each, and a refused
    /// pack takes back only itself.
    fn ingest_together(
        &self,
        writer: &Mutex<rusqlite::Connection>,
        waiting: &Mutex<Vec<Arc<WaitingPack>>>,
        batches: Vec<ingest::StreamBatch>,
        owner: Option<&str>,
    ) -> Result<ingest::Applied> {
        let mine = Arc::new(WaitingPack {
            batches: Mutex::new(Some(batches)),
            owner: owner.map(str::to_owned),
            outcome: Mutex::new(None),
        });
        locked(waiting).push(Arc::clone(&mine));
        let mut conn = locked(writer);
        if let Some(outcome) = locked(&mine.outcome).take() {
            // Written, or refused, by the writer before.
            return outcome;
        }
        // Still waiting, so in this group: outcomes are set under `writer`.
        let group = std::mem::take(&mut *locked(waiting));
        let now = now_micros();
        let tz = &self.inner.timezone;
        let outcomes = (|| {
            let mut tx =
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut outcomes = Vec::with_capacity(group.len());
            for pack in &group {
                let Some(mut batches) = locked(&pack.batches).take() else {
                    // Taken by a writer that panicked before it could say
                    // what became of them: not stored, and not to be
                    // reported as stored.
                    outcomes.push(Err(Error::Io(std::io::Error::other(
                        "the pack's writer failed before it was written; send it again",
                    ))));
                    continue;
                };
                let savepoint = tx.savepoint()?;
                let owner = pack.owner.as_deref();
                match ingest::apply(
                    &mut sqlite::Lite(&savepoint),
                    &mut batches,
                    owner,
                    None,
                    tz,
                    now,
                ) {
                    Ok(applied) => {
                        savepoint.commit()?;
                        outcomes.push(Ok(applied));
                    }
                    // Dropping the savepoint takes this pack's writes back.
                    Err(e) if e.is_caller_error() => outcomes.push(Err(e)),
                    Err(e) => return Err(e),
                }
            }
            tx.commit()?;
            Ok(outcomes)
        })();
        match outcomes {
            Ok(outcomes) => {
                let mut own = None;
                for (pack, outcome) in group.iter().zip(outcomes) {
                    if Arc::ptr_eq(pack, &mine) {
                        own = Some(outcome);
                    } else {
                        *locked(&pack.outcome) = Some(outcome);
                    }
                }
                own.unwrap_or_else(|| unreachable!("a pack still waiting is in its group"))
            }
            Err(e) => {
                for pack in group.iter().filter(|p| !Arc::ptr_eq(p, &mine)) {
                    let failed = std::io::Error::other(format!(
                        "the transaction this pack was written in with others failed: {e}"
                    ));
                    *locked(&pack.outcome) = Some(Err(Error::Io(failed)));
                }
                Err(e)
            }
        }
    }

    /// Calls `listener` after every commit that queues pushes (in this
    /// process), so that the sender need not poll.
    pub fn on_outbox(&self, listener: impl Fn() + Send + Sync + 'static) {
        locked(&self.inner.outbox_listeners).push(Box::new(listener));
    }

    fn outbox_changed(&self) {
        for listener in locked(&self.inner.outbox_listeners).iter() {
            listener();
        }
    }

    /// Records a grant, with its audit entry.
    pub fn add_grant(&self, grant: &NewGrant) -> Result<Grant> {
        grant.check()?;
        let now = now_micros();
        self.write(|db| {
            let g = federation::insert_grant(db, grant, now)?;
            let detail = serde_json::to_string(&g).map_err(|e| Error::Config(e.to_string()))?;
            audit::append(db, now, "grant", Some(&g.grantee), &detail)?;
            Ok(g)
        })
    }

    /// Every grant, revoked ones included, by number.
    pub fn grants(&self) -> Result<Vec<Grant>> {
        self.read(federation::grants)
    }

    /// Revokes a grant: its subscriptions end and its queued pushes are
    /// dropped in the same transaction, and a revocation notice is queued
    /// for its grantee.
    pub fn revoke_grant(&self, id: i64) -> Result<Grant> {
        let now = now_micros();
        let grant = self.write(|db| {
            let g = federation::revoke(db, id, now)?;
            let detail = serde_json::json!({"grant": id});
            audit::append(db, now, "revoke", Some(&g.grantee), &detail.to_string())?;
            Ok(g)
        })?;
        self.outbox_changed();
        Ok(grant)
    }

    /// The first grant in force at `now` that lets `peer` receive `stream`;
    /// `None` for a stream received from a peer, which is never passed on.
    pub fn grant_for(&self, peer: &str, stream: &StreamInfo, now: i64) -> Result<Option<Grant>> {
        if stream.origin.is_some() {
            return Ok(None);
        }
        Ok(self
            .read(|db| federation::active_grants(db, peer, now))?
            .into_iter()
            .find(|g| g.streams.matches(&stream.name)))
    }

    /// The grant numbered `id`.
    pub fn grant(&self, id: i64) -> Result<Option<Grant>> {
        self.read(|db| federation::grant(db, id))
    }

    /// The node's own streams that `peer` may receive at `now`, each with
    /// the grant that allows it.
    pub fn granted_streams(&self, peer: &str, now: i64) -> Result<Vec<(StreamInfo, Grant)>> {
        self.read(|db| {
            let grants = federation::active_grants(db, peer, now)?;
            if grants.is_empty() {
                return Ok(Vec::new());
            }
            Ok(db
                .streams(None)?
                .into_iter()
                .filter(|(_, s)| s.origin.is_none())
                .filter_map(|(_, s)| {
                    let g = grants.iter().find(|g| g.streams.matches(&s.name))?.clone();
                    Some((s, g))
                })
                .collect())
        })
    }

    /// Subscribes `peer` to a stream under a grant: the stream's new points
    /// are pushed to it from now on.
    pub fn subscribe(
        &self,
        peer: &str,
        stream: &str,
        grant: i64,
        encoding: Encoding,
    ) -> Result<()> {
        let now = now_micros();
        self.write(|db| {
            let (id, _) = db
                .stream(stream)?
                .ok_or_else(|| Error::NotFound(format!("no stream named {stream:?}")))?;
            federation::subscribe(db, peer, id, grant, encoding, now)
        })
    }

    /// Ends a subscription; `false` if there was none.
    pub fn unsubscribe(&self, peer: &str, stream: &str) -> Result<bool> {
        self.write(|db| match db.stream(stream)? {
            Some((id, _)) => federation::unsubscribe(db, peer, id),
            None => Ok(false),
        })
    }

    /// Every subscription, by peer and stream.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>> {
        self.read(federation::subscriptions)
    }

    /// Claims up to `limit` (at most 256) pushes due at `now` and schedules
    /// their retry (see [`retry_delay`]), in one short transaction: the
    /// caller builds them outside it, then records what became of each with
    /// [`Store::pushes_built`] before sending any.
    pub fn claim_pushes(&self, now: i64, limit: usize) -> Result<Vec<Push>> {
        // Deferred: if a power cut loses this commit, the pushes are due
        // again at once, which is what they were before it.
        self.write_with(Durability::Deferred, |db| {
            federation::claim_due(db, now, limit)
        })
    }

    /// Records what became of pushes claimed with [`Store::claim_pushes`],
    /// in one transaction: an audit entry `push` with its facts for each
    /// one about to be `sent`, and for each one `dropped` (its grant ended,
    /// its points are gone…, with the reason) its deletion, the end of its
    /// subscription, and an audit entry `refused`. Call it before sending:
    /// a push is in the audit trail before it leaves.
    pub fn pushes_built(
        &self,
        sent: &[(&Push, serde_json::Value)],
        dropped: &[(&Push, &str)],
    ) -> Result<()> {
        if sent.is_empty() && dropped.is_empty() {
            return Ok(());
        }
        let now = now_micros();
        // Deferred: commits are lost in order, so if a power cut loses this
        // one, it loses the receipts recorded after it too: the pushes are
        // still in the outbox, due again, and audited when sent again
        // (their receivers drop what they already have).
        self.write_with(Durability::Deferred, |db| {
            for (push, facts) in sent {
                audit::append(db, now, "push", Some(&push.peer), &facts.to_string())?;
            }
            for (push, why) in dropped {
                drop_push(db, push, why, now)?;
            }
            Ok(())
        })
    }

    /// Deletes pushes their peers acknowledged, with an audit entry each,
    /// in one transaction; for each, whether it was still waiting (a receipt
    /// counts only from the peer the push went to).
    ///
    /// A peer that acknowledges is taking in what it was sent, in order: the
    /// pushes sent to it after the last one it acknowledged are still in
    /// its queue, so their retry is put off by a first retry delay from
    /// now. Re-sending them would only lengthen the queue of a peer that is
    /// slow, not gone.
    pub fn pushes_acknowledged(&self, receipts: &[(String, i64)]) -> Result<Vec<bool>> {
        let now = now_micros();
        let mut last_acknowledged: Vec<(&str, i64)> = Vec::new();
        for (peer, seq) in receipts {
            match last_acknowledged.iter_mut().find(|(p, _)| p == peer) {
                Some((_, last)) => *last = (*last).max(*seq),
                None => last_acknowledged.push((peer, *seq)),
            }
        }
        // Deferred: if a power cut loses this commit, the pushes are sent
        // again, acknowledged again, and recorded then.
        self.write_with(Durability::Deferred, |db| {
            let mut known = Vec::with_capacity(receipts.len());
            for (peer, seq) in receipts {
                let was = federation::delete_push(db, peer, *seq)?;
                if was {
                    let detail = serde_json::json!({"seq": seq});
                    audit::append(db, now, "receipt", Some(peer), &detail.to_string())?;
                }
                known.push(was);
            }
            for (peer, last) in &last_acknowledged {
                federation::postpone_retries(db, peer, *last, now + federation::retry_delay(0))?;
            }
            Ok(known)
        })
    }

    /// Which of these pushes (peer, sequence number) were taken in before,
    /// so that a re-sent push need not even be read.
    pub fn received_before(&self, pushes: &[(&str, i64)]) -> Result<Vec<bool>> {
        self.read(|db| {
            pushes
                .iter()
                .map(|(peer, seq)| federation::was_received(db, peer, *seq))
                .collect()
        })
    }

    /// [`Store::pushes_acknowledged`] for one receipt.
    pub fn push_acknowledged(&self, peer: &str, seq: i64) -> Result<bool> {
        Ok(self.pushes_acknowledged(&[(peer.to_owned(), seq)])?[0])
    }

    /// Records that this node subscribed to `stream` at `peer`, so that
    /// its pushes are taken in.
    pub fn add_remote_subscription(&self, peer: &str, stream: &str) -> Result<()> {
        check_bare_jid(peer)?;
        let now = now_micros();
        self.write(|db| federation::add_remote_subscription(db, peer, stream, now))
    }

    /// Forgets a subscription this node made; `false` if there was none.
    pub fn remove_remote_subscription(&self, peer: &str, stream: &str) -> Result<bool> {
        self.write(|db| federation::remove_remote_subscription(db, peer, stream))
    }

    /// The streams this node subscribed to at `peer`.
    pub fn remote_subscriptions(&self, peer: &str) -> Result<Vec<String>> {
        self.read(|db| federation::remote_subscriptions(db, peer))
    }

    /// Pushes waiting for a receipt.
    pub fn outbox_len(&self) -> Result<u64> {
        self.read(federation::outbox_len)
    }

    /// Forgets de-duplication entries older than `before` (µs).
    pub fn prune_inbox(&self, before: i64) -> Result<u64> {
        self.write(|db| federation::prune_inbox(db, before))
    }

    /// Appends entries to the audit trail, in one transaction: each is a
    /// kind, the peer concerned, and the facts as JSON.
    pub fn audit(&self, entries: &[(&str, Option<&str>, serde_json::Value)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = now_micros();
        self.write(|db| {
            for (kind, peer, detail) in entries {
                audit::append(db, now, kind, *peer, &detail.to_string())?;
            }
            Ok(())
        })
    }

    /// Signs the newest audit entry with the node's key, unless it is
    /// signed already; returns its number.
    pub fn audit_checkpoint(&self, key: &SigningKey) -> Result<Option<i64>> {
        self.write(|db| audit::checkpoint(db, key))
    }

    /// Audit entries from number `from`, at most `limit`.
    pub fn audit_entries(&self, from: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|db| audit::entries(db, from, limit))
    }

    /// Re-checks the whole audit chain and its checkpoints against `key`.
    pub fn verify_audit(&self, key: VerifyingKey) -> Result<AuditReport> {
        let mut verifier = AuditVerifier::new(key);
        let mut from = 1;
        loop {
            let page = self.audit_entries(from, 10_000)?;
            let Some(last) = page.last() else { break };
            from = last.seq + 1;
            if !page.iter().all(|e| verifier.check(e)) {
                break;
            }
        }
        Ok(verifier.report)
    }

    /// Streams whose name starts with `prefix`, by name.
    pub fn streams(&self, prefix: Option<&str>) -> Result<Vec<StreamInfo>> {
        self.read(|db| Ok(db.streams(prefix)?.into_iter().map(|(_, s)| s).collect()))
    }

    /// One stream.
    pub fn stream(&self, name: &str) -> Result<Option<StreamInfo>> {
        self.read(|db| Ok(db.stream(name)?.map(|(_, s)| s)))
    }

    /// Replaces a stream's metadata and publication.
    pub fn set_stream(&self, name: &str, metadata: &Metadata, open: bool) -> Result<StreamInfo> {
        metadata.check()?;
        self.write(|db| {
            let (id, _) = db
                .stream(name)?
                .ok_or_else(|| Error::NotFound(format!("no stream named {name:?}")))?;
            db.set_stream(id, metadata, open)?;
            Ok(db
                .stream(name)?
                .expect("the stream was found in this transaction")
                .1)
        })
    }

    /// The records of each named stream in `[from, to)`, oldest first, at
    /// most `limit` per stream, in memory; refused when they would be more
    /// than `max_total` in all. [`Store::scan_records`] streams them instead.
    pub fn records(
        &self,
        names: &[String],
        from: i64,
        to: i64,
        limit: u64,
        max_total: usize,
    ) -> Result<StreamRecords> {
        self.read(|db| {
            let streams = query::resolve_streams(db, names, false)?;
            let records = query::records(db, &streams, from, to, limit, max_total)?;
            Ok(streams.into_iter().map(|(_, s)| s).zip(records).collect())
        })
    }

    /// Visits the records of each named stream in `[from, to)`, stream by
    /// stream, oldest first, at most `limit` per stream, until `visit`
    /// returns false. Memory stays bounded whatever the range. `visit` gets
    /// the index of the record's stream in `names`.
    pub fn scan_records(
        &self,
        names: &[String],
        from: i64,
        to: i64,
        limit: u64,
        visit: &mut dyn FnMut(usize, Record) -> bool,
    ) -> Result<()> {
        self.read(|db| {
            let streams = query::resolve_streams(db, names, false)?;
            query::scan_records(db, &streams, from, to, limit, visit)
        })
    }

    /// Calendar buckets of `every` in `tz` covering `[from, to)`, with each
    /// stream's partial aggregate per bucket. Reads daily rollups, hourly
    /// rollups, or points, whichever is the coarsest that fits the buckets.
    pub fn aggregate(
        &self,
        names: &[String],
        from: i64,
        to: i64,
        every: Every,
        tz: &TimeZone,
    ) -> Result<Aggregate> {
        let node_tz = self.inner.timezone.clone();
        self.read(|db| {
            let streams = query::resolve_streams(db, names, true)?;
            query::aggregate(db, streams, from, to, every, tz, &node_tz)
        })
    }

    /// The typical day or week of each stream over `[from, to)`, in `tz`.
    pub fn profile(
        &self,
        names: &[String],
        from: i64,
        to: i64,
        by: ProfileBy,
        tz: &TimeZone,
    ) -> Result<Profile> {
        self.read(|db| {
            let streams = query::resolve_streams(db, names, true)?;
            query::profile(db, streams, from, to, by, tz)
        })
    }

    /// Creates a token and returns its secret, which is shown once: the
    /// store keeps only its hash.
    pub fn create_token(&self, name: &str, scope: Scope, streams: StreamPattern) -> Result<String> {
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "token name {name:?}: give 1 to 200 printable characters"
            )));
        }
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|e| Error::Config(format!("no randomness from the system: {e}")))?;
        let secret = format!("fw_{}", hex(&random));
        let token = Token {
            name: name.to_owned(),
            scope,
            streams,
            created: now_micros(),
        };
        self.write(|db| {
            if db.tokens()?.iter().any(|t| t.name == name) {
                return Err(Error::Invalid(format!(
                    "a token named {name:?} exists already"
                )));
            }
            db.insert_token(&token, &Sha256::digest(secret.as_bytes()))
        })?;
        Ok(secret)
    }

    /// The token with this secret, if any.
    pub fn authenticate(&self, secret: &str) -> Result<Option<Token>> {
        let hash = Sha256::digest(secret.as_bytes());
        self.read(|db| db.token_by_hash(&hash))
    }

    /// Every token, by name.
    pub fn tokens(&self) -> Result<Vec<Token>> {
        self.read(|db| db.tokens())
    }

    /// Deletes a token; `false` if there was none of that name.
    pub fn revoke_token(&self, name: &str) -> Result<bool> {
        self.write(|db| db.delete_token(name))
    }

    /// Deletes the points older than each stream's retention (metadata
    /// `retention`), with their rollups. Returns the points deleted.
    pub fn purge(&self, now: i64) -> Result<u64> {
        let tz = self.inner.timezone.clone();
        let streams = self.read(|db| db.streams(None))?;
        let mut deleted = 0;
        for (id, info) in streams {
            let Some(retention) = &info.metadata.retention else {
                continue;
            };
            let span = parse_duration(retention).map_err(Error::Config)?;
            let cutoff = jiff::Timestamp::from_microsecond(now)
                .map(|t| t.to_zoned(tz.clone()))
                .and_then(|z| z.checked_sub(span))
                .map(|z| z.timestamp().as_microsecond())
                .map_err(|e| {
                    Error::Config(format!(
                        "retention {retention} of stream {}: {e}",
                        info.name
                    ))
                })?;
            let before = cutoff;
            if info.first.is_none_or(|first| first >= before) {
                continue;
            }
            let kind = info.kind;
            deleted += self.write(|db| purge_stream(db, id, kind, before, &tz))?;
        }
        Ok(deleted)
    }
}

/// Deletes a stream's points before `before`, and their
/// rollups; recounts the stream.
fn purge_stream(
    db: &mut dyn Db,
    id: i64,
    kind: ValueKind,
    before: i64,
    tz: &TimeZone,
) -> Result<u64> {
    // Against a pack being written to this stream at the same time.
    db.lock_stream(id)?;
    let cut_day = chunk::day_of(before);
    let mut deleted = db.delete_days_before(id, cut_day)?;
    // The day cut in two keeps its later points.
    let day = cut_day;
    let loaded = db::day_chunks(db, id, day)?;
    if !loaded.is_empty() {
        let mut kept = ingest::decode_chunks(id, day, &loaded)?;
        let total = kept.len();
        kept.retain(|p| p.time >= before);
        deleted += (total - kept.len()) as u64;
        db.put_chunks(id, &ingest::rewrite_day(day, &loaded, &kept))?;
        if kind.is_aggregated() {
            let hours = chunk::hours_of(&kept);
            db.put_hours(
                id,
                &[(
                    day,
                    (!hours.is_empty()).then(|| chunk::encode_hours(day, &hours)),
                )],
            )?;
        }
    }
    if kind.is_aggregated() {
        let (node_day, _) = calendar::day_around(before, tz).map_err(Error::Config)?;
        db.delete_days_rollups_before(id, node_day)?;
        ingest::update_days(db, id, &[cut_day], tz)?;
    }
    // Recount from what is left.
    let (count, first_day, last_day) = db.chunk_summary(id)?;
    let mut first = None;
    let mut last = None;
    for day in [first_day, last_day].into_iter().flatten() {
        for p in ingest::decode_chunks(id, day, &db::day_chunks(db, id, day)?)? {
            first = Some(first.map_or(p.time, |f: i64| f.min(p.time)));
            last = Some(last.map_or(p.time, |l: i64| l.max(p.time)));
        }
    }
    db.set_stream_stats(id, count, first, last)?;
    Ok(deleted)
}

/// Deletes a push that must not be sent, ends its subscription, and
/// audits why.
fn drop_push(db: &mut dyn Db, push: &Push, why: &str, now: i64) -> Result<()> {
    federation::delete_push(db, &push.peer, push.seq)?;
    if let PushKind::Data { stream, .. } = &push.kind
        && let Some((id, _)) = db.stream(stream)?
    {
        federation::unsubscribe(db, &push.peer, id)?;
    }
    let detail = serde_json::json!({"seq": push.seq, "grant": push.grant, "reason": why});
    audit::append(db, now, "refused", Some(&push.peer), &detail.to_string())
}

/// A stream by its number: its name and description.
pub(crate) fn db_stream_by_id(db: &mut dyn Db, id: i64) -> Result<Option<(String, StreamInfo)>> {
    let name = db
        .query(
            "SELECT name FROM streams WHERE id = $1",
            &[db::Param::Int(Some(id))],
        )?
        .first()
        .map(|r| r[0].text())
        .transpose()?;
    let Some(name) = name else { return Ok(None) };
    Ok(db.stream(&name)?.map(|(_, info)| (name, info)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, in µs since the epoch.
pub fn now_micros() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}
