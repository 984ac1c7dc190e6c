//! fedwatt's storage: streams of points keyed by (stream, time), hourly and
//! daily rollups kept up to date on ingest, tokens, accounts and sessions — on SQLite (embedded, the
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
//! `chunk.rs`), so that a year of 10-minute points is 365 rows. The
//! methods of [`Store`] are in `facade/`, one file per concern; they take
//! instants as [`Time`].
//!
//! Pure modules beside the store serve its callers without I/O:
//! `calendar.rs` (buckets in a time zone), `energy.rs` (kWh per interval
//! from a power or energy stream's aggregates) and `selfconsumption.rs`
//! (self-consumption, self-sufficiency, the collective split keys).
//!
//! Invariants:
//! - a stream holds one kind of value, and every point in the stream's unit;
//! - the `hours` row of a stream's UTC day holds, for each hour with numeric
//!   points, their count, sum, min, max, first and last; a `days` row the
//!   same for a day of the node's time zone; both are rewritten in the
//!   transaction that changes the points;
//! - a stream's count, first and last time match its points.

mod accounts;
mod audit;
mod calendar;
mod chunk;
pub mod codec;
mod coordination;
mod db;
mod energy;
mod error;
mod facade;
mod federation;
mod grants;
mod ingest;
mod model;
mod peers;
mod pool;
mod postgres;
mod projects;
mod query;
mod rollup;
mod selfconsumption;
mod sqlite;
mod time;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use audit::{
    AuditEntry, AuditReport, AuditVerifier, new_signing_key, signing_key_from_hex,
    verifying_key_from_hex,
};
pub use calendar::{
    Every, HOUR, MAX_BUCKETS, ProfileBy, buckets, format_time, parse_time, time_zone,
};
pub use coordination::{StoredEquipment, StoredPlan, StoredStimulation};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use energy::{Quantity, regroup};
pub use error::{Error, RecordError, Result};
pub use facade::{MIN_PASSWORD, SESSION_IDLE, SESSION_LIFETIME, StreamRecords, check_account_name};
pub use federation::{Encoding, PUSH_RECORDS, Push, PushKind, Subscription, retry_delay};
pub use grants::{Grant, NewGrant, check_bare_jid};
pub use jiff::tz::TimeZone;
pub use model::{
    Account, AccountChange, Business, Device, Measurement, Metadata, NewAccount, Role, Scope,
    Session, StreamInfo, StreamPattern, Token, ValueKind, parse_duration,
};
pub use peers::{PeerPack, Received};
pub use projects::{Investment, Project, check_account, check_project_id};
pub use query::{Aggregate, Profile, SlotAggregate};
pub use rollup::{Function, Partial};
pub use selfconsumption::{Flows, Key, allocate, rate};
pub use time::Time;

use db::Db;
use pool::{Pool, locked};

/// Connections to PostgreSQL one node process opens at most.
const POSTGRES_CONNECTIONS: usize = 16;

/// SQLite connections reading at once, at most.
const SQLITE_READERS: usize = 8;

/// A pack waiting for SQLite's writer, then what became of it.
struct WaitingPack {
    /// Taken by the writer.
    batches: Mutex<Option<Vec<ingest::StreamBatch>>>,
    owner: Option<String>,
    /// Set by the writer, in the transaction's order.
    outcome: Mutex<Option<Result<ingest::Applied>>>,
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
        let now = Time::now().as_micros();
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
}
