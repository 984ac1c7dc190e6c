//! The embedded backend: one SQLite file in WAL mode, written by one
//! connection at a time, read by a small pool.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::db::{
    Cell, ChunkRow, ChunkVisitor, ChunkWrite, Db, Dialect, HoursVisitor, Migration, Param,
    STREAM_COLUMNS, StreamHead, pending_migrations, reencode_blobs, stream_from_row,
    token_from_row,
};
use crate::error::Result;
use crate::model::{Metadata, StreamInfo, Token, ValueKind};
use crate::rollup::Partial;

/// Schema 1, this backend's own.
const STORE_SCHEMA: &str = r#"
CREATE TABLE streams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    unit TEXT,
    kind INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    owner TEXT,
    open INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    count INTEGER NOT NULL DEFAULT 0,
    first_time INTEGER,
    last_time INTEGER
);
CREATE TABLE chunks (
    stream INTEGER NOT NULL,
    day INTEGER NOT NULL,
    count INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (stream, day)
);
CREATE TABLE hours (
    stream INTEGER NOT NULL,
    day INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (stream, day)
);
CREATE TABLE days (
    stream INTEGER NOT NULL,
    start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    sum REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    first_time INTEGER NOT NULL,
    first_value REAL NOT NULL,
    last_time INTEGER NOT NULL,
    last_value REAL NOT NULL,
    PRIMARY KEY (stream, start)
) WITHOUT ROWID;
CREATE TABLE tokens (
    name TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    streams TEXT NOT NULL,
    created INTEGER NOT NULL
);
"#;

/// Chunks keyed by part as well as by day: a day holds several chunks of
/// bounded size. A day's one chunk so far becomes its first part, whose key
/// is the day itself.
const CHUNK_PARTS: &str = r#"
CREATE TABLE chunk_parts (
    stream INTEGER NOT NULL,
    day INTEGER NOT NULL,
    part INTEGER NOT NULL,
    count INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (stream, day, part)
);
INSERT INTO chunk_parts SELECT stream, day, day, count, data FROM chunks;
DROP TABLE chunks;
ALTER TABLE chunk_parts RENAME TO chunks;
"#;

/// Schema versions, in order; `PRAGMA user_version` says how many ran.
fn migrations() -> Vec<Migration> {
    vec![
        Migration::Sql(STORE_SCHEMA.to_owned()),
        Migration::Sql(crate::federation::schema(
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "INTEGER",
            "BLOB",
        )),
        Migration::Sql(crate::coordination::schema(
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "INTEGER",
        )),
        Migration::Sql(CHUNK_PARTS.to_owned()),
        Migration::Sql(crate::accounts::schema("INTEGER", "BLOB")),
        Migration::Sql(crate::projects::schema(crate::db::Dialect::Sqlite)),
        // Chunks and hours rows in the codec's version 2, rewritten in
        // place.
        Migration::Code(reencode_blobs),
    ]
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// Opens a connection with the settings every connection needs.
pub(crate) fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // FULL: a commit is on disk before it returns, so that an acknowledged
    // pack survives a power loss, not only a crash.
    //
    // 8 KB pages (for a new file; an existing one keeps its own): a commit
    // writes every page it changed, and a single record changes about ten,
    // so 16 KB pages wrote twice the bytes for no gain. On the store
    // benchmark, 8 KB and 16 KB load and query alike; 4 KB pages loaded 30%
    // slower and made the file 45% larger.
    conn.execute_batch(
        "PRAGMA busy_timeout = 10000;
         PRAGMA page_size = 8192;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -16384;",
    )?;
    // foreign_keys: SQLite enforces REFERENCES (a project's investments
    // go with it) only when asked, connection by connection.
    //
    // rusqlite keeps 16 prepared statements by default: fewer than one
    // ingest and one push use, so each would be parsed again every time.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Brings the schema up to date.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    // Immediate: two processes starting at once migrate one after the other.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let done: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (version, step) in pending_migrations(done, &migrations())? {
        match step {
            Migration::Sql(sql) => tx.execute_batch(sql)?,
            Migration::Code(run) => run(&mut Lite(&tx))?,
        }
        tx.pragma_update(None, "user_version", version)?;
    }
    tx.commit()?;
    Ok(())
}

/// A connection or transaction seen as a [`Db`].
pub(crate) struct Lite<'c>(pub &'c Connection);

fn partial_from(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Partial> {
    Ok(Partial {
        count: row.get::<_, i64>(at)? as u64,
        sum: row.get(at + 1)?,
        min: row.get(at + 2)?,
        max: row.get(at + 3)?,
        first: (row.get(at + 4)?, row.get(at + 5)?),
        last: (row.get(at + 6)?, row.get(at + 7)?),
    })
}

fn stream_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, StreamColumns)> {
    Ok((
        row.get(0)?,
        (
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
            row.get(10)?,
            row.get(11)?,
        ),
    ))
}

type StreamColumns = (
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    bool,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

fn to_info(c: StreamColumns) -> Result<StreamInfo> {
    stream_from_row(c.0, c.1, c.2, &c.3, c.4, c.5, c.6, c.7, c.8, c.9, c.10)
}

fn sqlite_param<'a>(p: &'a Param<'a>) -> &'a dyn rusqlite::ToSql {
    match p {
        Param::Int(v) => v,
        Param::Real(v) => v,
        Param::Text(v) => v,
        Param::Blob(v) => v,
    }
}

/// `$1` → `?1`: SQLite numbers `$`-parameters by first appearance, not by
/// their digits.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Db for Lite<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let mut stmt = self.0.prepare_cached(&sqlite_sql(sql))?;
        let params: Vec<&dyn rusqlite::ToSql> = params.iter().map(sqlite_param).collect();
        Ok(stmt.execute(params.as_slice())? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>> {
        use rusqlite::types::ValueRef;
        let mut stmt = self.0.prepare_cached(&sqlite_sql(sql))?;
        let width = stmt.column_count();
        let params: Vec<&dyn rusqlite::ToSql> = params.iter().map(sqlite_param).collect();
        let mut rows = stmt.query(params.as_slice())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut cells = Vec::with_capacity(width);
            for i in 0..width {
                cells.push(match row.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                });
            }
            out.push(cells);
        }
        Ok(out)
    }

    fn find_stream(&mut self, name: &str) -> Result<Option<StreamHead>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT id, unit, kind, origin FROM streams WHERE name = ?1")?;
        let row = stmt
            .query_row([name], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()?;
        row.map(|(id, unit, kind, origin)| {
            Ok(StreamHead {
                id,
                unit,
                kind: ValueKind::from_code(kind)?,
                origin,
            })
        })
        .transpose()
    }

    fn create_stream(
        &mut self,
        name: &str,
        unit: Option<&str>,
        kind: ValueKind,
        owner: Option<&str>,
        now: i64,
    ) -> Result<StreamHead> {
        // One writer at a time: nobody else can have created it meanwhile.
        let mut stmt = self
            .0
            .prepare_cached("INSERT INTO streams (name, unit, kind, owner, created) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id")?;
        let id = stmt.query_row(params![name, unit, kind.code(), owner, now], |r| r.get(0))?;
        Ok(StreamHead {
            id,
            unit: unit.map(str::to_owned),
            kind,
            origin: None,
        })
    }

    fn lock_stream(&mut self, _stream: i64) -> Result<()> {
        Ok(()) // one writer at a time already
    }

    fn add_stream_stats(&mut self, stream: i64, added: u64, first: i64, last: i64) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "UPDATE streams SET count = count + ?2,
                first_time = min(coalesce(first_time, ?3), ?3),
                last_time = max(coalesce(last_time, ?4), ?4)
             WHERE id = ?1",
        )?;
        stmt.execute(params![stream, added as i64, first, last])?;
        Ok(())
    }

    fn set_stream_stats(
        &mut self,
        stream: i64,
        count: u64,
        first: Option<i64>,
        last: Option<i64>,
    ) -> Result<()> {
        self.0
            .prepare_cached(
                "UPDATE streams SET count = ?2, first_time = ?3, last_time = ?4 WHERE id = ?1",
            )?
            .execute(params![stream, count as i64, first, last])?;
        Ok(())
    }

    fn streams(&mut self, prefix: Option<&str>) -> Result<Vec<(i64, StreamInfo)>> {
        let prefix = prefix.unwrap_or("");
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name"
        ))?;
        let rows = stmt
            .query_map([prefix], stream_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, c)| Ok((id, to_info(c)?)))
            .collect()
    }

    fn stream(&mut self, name: &str) -> Result<Option<(i64, StreamInfo)>> {
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE name = ?1"
        ))?;
        let row = stmt.query_row([name], stream_row).optional()?;
        row.map(|(id, c)| Ok((id, to_info(c)?))).transpose()
    }

    fn set_stream(&mut self, stream: i64, metadata: &Metadata, open: bool) -> Result<()> {
        let json = serde_json::to_string(metadata).expect("metadata serialises to JSON");
        self.0
            .prepare_cached("UPDATE streams SET metadata = ?2, open = ?3 WHERE id = ?1")?
            .execute(params![stream, json, open])?;
        Ok(())
    }

    fn chunks(
        &mut self,
        stream: i64,
        from_day: i64,
        to_day: i64,
        visit: &mut ChunkVisitor<'_>,
    ) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "SELECT day, data FROM chunks WHERE stream = ?1 AND day >= ?2 AND day <= ?3
             ORDER BY day, part",
        )?;
        let mut rows = stmt.query(params![stream, from_day, to_day])?;
        while let Some(row) = rows.next()? {
            let data = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            if !visit(row.get(0)?, data)? {
                break;
            }
        }
        Ok(())
    }

    fn chunks_from(&mut self, stream: i64, starts: &[(i64, i64)]) -> Result<Vec<(i64, ChunkRow)>> {
        // In process, a query a day costs less than building one for all.
        let mut stmt = self.0.prepare_cached(
            "SELECT part, data FROM chunks WHERE stream = ?1 AND day = ?2 AND part >= coalesce(
                 (SELECT max(part) FROM chunks WHERE stream = ?1 AND day = ?2 AND part <= ?3), ?2)
             ORDER BY part",
        )?;
        let mut chunks = Vec::new();
        for &(day, time) in starts {
            let rows = stmt.query_map(params![stream, day, time], |r| {
                Ok((day, (r.get(0)?, r.get(1)?)))
            })?;
            for row in rows {
                chunks.push(row?);
            }
        }
        Ok(chunks)
    }

    fn put_chunks(&mut self, stream: i64, rows: &[ChunkWrite]) -> Result<()> {
        // An upsert rewrites the row where it is; REPLACE would delete it and
        // insert it anew under a new rowid, touching the old leaf, the
        // table's last leaf and the key's index: three pages, not one.
        let mut put = self.0.prepare_cached(
            "INSERT INTO chunks (stream, day, part, count, data) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (stream, day, part) DO UPDATE SET count = excluded.count, data = excluded.data",
        )?;
        let mut delete = self
            .0
            .prepare_cached("DELETE FROM chunks WHERE stream = ?1 AND day = ?2 AND part = ?3")?;
        for (day, part, count, data) in rows {
            if *count == 0 {
                delete.execute(params![stream, day, part])?;
            } else {
                put.execute(params![stream, day, part, *count as i64, data])?;
            }
        }
        Ok(())
    }

    fn delete_days_before(&mut self, stream: i64, day: i64) -> Result<u64> {
        let deleted: i64 = self
            .0
            .prepare_cached(
                "SELECT coalesce(sum(count), 0) FROM chunks WHERE stream = ?1 AND day < ?2",
            )?
            .query_row(params![stream, day], |r| r.get(0))?;
        self.0
            .prepare_cached("DELETE FROM chunks WHERE stream = ?1 AND day < ?2")?
            .execute(params![stream, day])?;
        self.0
            .prepare_cached("DELETE FROM hours WHERE stream = ?1 AND day < ?2")?
            .execute(params![stream, day])?;
        Ok(deleted as u64)
    }

    fn chunk_summary(&mut self, stream: i64) -> Result<(u64, Option<i64>, Option<i64>)> {
        let row: (i64, Option<i64>, Option<i64>) = self
            .0
            .prepare_cached(
                "SELECT coalesce(sum(count), 0), min(day), max(day) FROM chunks WHERE stream = ?1",
            )?
            .query_row([stream], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok((row.0 as u64, row.1, row.2))
    }

    fn hours(
        &mut self,
        stream: i64,
        from_day: i64,
        to_day: i64,
        visit: &mut HoursVisitor<'_>,
    ) -> Result<()> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT day, data FROM hours WHERE stream = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day")?;
        let mut rows = stmt.query(params![stream, from_day, to_day])?;
        while let Some(row) = rows.next()? {
            let data = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            visit(row.get(0)?, data)?;
        }
        Ok(())
    }

    fn put_hours(&mut self, stream: i64, rows: &[(i64, Option<Vec<u8>>)]) -> Result<()> {
        // An upsert, as for chunks.
        let mut put = self.0.prepare_cached(
            "INSERT INTO hours (stream, day, data) VALUES (?1, ?2, ?3)
             ON CONFLICT (stream, day) DO UPDATE SET data = excluded.data",
        )?;
        let mut delete = self
            .0
            .prepare_cached("DELETE FROM hours WHERE stream = ?1 AND day = ?2")?;
        for (day, data) in rows {
            match data {
                Some(data) => put.execute(params![stream, day, data])?,
                None => delete.execute(params![stream, day])?,
            };
        }
        Ok(())
    }

    fn days(&mut self, stream: i64, from: i64, to: i64) -> Result<Vec<(i64, Partial)>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT start, count, sum, min, max, first_time, first_value, last_time, last_value FROM days
             WHERE stream = ?1 AND start >= ?2 AND start < ?3 ORDER BY start",
        )?;
        let rows = stmt
            .query_map(params![stream, from, to], |r| {
                Ok((r.get(0)?, partial_from(r, 1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn put_days(&mut self, stream: i64, rows: &[(i64, Option<Partial>)]) -> Result<()> {
        let mut put = self.0.prepare_cached(
            "INSERT OR REPLACE INTO days VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let mut delete = self
            .0
            .prepare_cached("DELETE FROM days WHERE stream = ?1 AND start = ?2")?;
        for (start, p) in rows {
            match p {
                Some(p) => put.execute(params![
                    stream,
                    start,
                    p.count as i64,
                    p.sum,
                    p.min,
                    p.max,
                    p.first.0,
                    p.first.1,
                    p.last.0,
                    p.last.1
                ])?,
                None => delete.execute(params![stream, start])?,
            };
        }
        Ok(())
    }

    fn delete_days_rollups_before(&mut self, stream: i64, before: i64) -> Result<()> {
        self.0
            .prepare_cached("DELETE FROM days WHERE stream = ?1 AND start < ?2")?
            .execute(params![stream, before])?;
        Ok(())
    }

    fn insert_token(&mut self, token: &Token, hash: &[u8]) -> Result<()> {
        self.0
            .prepare_cached("INSERT INTO tokens (name, hash, scope, streams, created) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![token.name, hash, token.scope.to_string(), token.streams.as_str(), token.created])?;
        Ok(())
    }

    fn token_by_hash(&mut self, hash: &[u8]) -> Result<Option<Token>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT name, scope, streams, created FROM tokens WHERE hash = ?1")?;
        let row = stmt
            .query_row([hash], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()?;
        row.map(|(n, s, p, c)| token_from_row(n, &s, &p, c))
            .transpose()
    }

    fn tokens(&mut self) -> Result<Vec<Token>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT name, scope, streams, created FROM tokens ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(n, s, p, c)| token_from_row(n, &s, &p, c))
            .collect()
    }

    fn delete_token(&mut self, name: &str) -> Result<bool> {
        Ok(self
            .0
            .prepare_cached("DELETE FROM tokens WHERE name = ?1")?
            .execute([name])?
            > 0)
    }
}
