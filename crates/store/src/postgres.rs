//! The PostgreSQL backend: for operators who already run PostgreSQL, and
//! for several node processes sharing one database. Each kind of row of a
//! pack is written with one statement per stream (`unnest` of arrays).

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row};

use crate::db::{
    Cell, ChunkRow, ChunkVisitor, ChunkWrite, Db, Dialect, HoursVisitor, Migration, Param,
    STREAM_COLUMNS, StreamHead, StreamHoursVisitor, pending_migrations, reencode_blobs,
    stream_from_row, token_from_row,
};
use crate::error::Result;
use crate::model::{Metadata, StreamInfo, Token, ValueKind};
use crate::rollup::Partial;

/// Schema 1, this backend's own.
const STORE_SCHEMA: &str = r#"
CREATE TABLE streams (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    unit TEXT,
    kind BIGINT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    owner TEXT,
    open BOOLEAN NOT NULL DEFAULT FALSE,
    created BIGINT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0,
    first_time BIGINT,
    last_time BIGINT
);
CREATE TABLE chunks (
    stream BIGINT NOT NULL,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (stream, day)
);
CREATE TABLE hours (
    stream BIGINT NOT NULL,
    day BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (stream, day)
);
CREATE TABLE days (
    stream BIGINT NOT NULL,
    start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    sum DOUBLE PRECISION NOT NULL,
    min DOUBLE PRECISION NOT NULL,
    max DOUBLE PRECISION NOT NULL,
    first_time BIGINT NOT NULL,
    first_value DOUBLE PRECISION NOT NULL,
    last_time BIGINT NOT NULL,
    last_value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (stream, start)
);
CREATE TABLE tokens (
    name TEXT PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    streams TEXT NOT NULL,
    created BIGINT NOT NULL
);
"#;

/// Chunks keyed by part as well as by day: a day holds several chunks of
/// bounded size. A day's one chunk so far becomes its first part, whose key
/// is the day itself.
const CHUNK_PARTS: &str = r#"
ALTER TABLE chunks ADD COLUMN part BIGINT;
UPDATE chunks SET part = day;
ALTER TABLE chunks ALTER COLUMN part SET NOT NULL;
ALTER TABLE chunks DROP CONSTRAINT chunks_pkey;
ALTER TABLE chunks ADD PRIMARY KEY (stream, day, part);
"#;

/// Schema versions, in order.
fn migrations() -> Vec<Migration> {
    vec![
        Migration::Sql(STORE_SCHEMA.to_owned()),
        Migration::Sql(crate::federation::schema(
            "BIGSERIAL PRIMARY KEY",
            "BIGINT",
            "BYTEA",
        )),
        Migration::Sql(crate::coordination::schema(
            "BIGSERIAL PRIMARY KEY",
            "BIGINT",
        )),
        Migration::Sql(CHUNK_PARTS.to_owned()),
        Migration::Sql(crate::accounts::schema("BIGINT", "BYTEA")),
        Migration::Sql(crate::projects::schema(crate::db::Dialect::Postgres)),
        // Chunks and hours rows in the codec's version 2, rewritten in
        // place.
        Migration::Code(reencode_blobs),
    ]
}

/// Connects.
pub(crate) fn connect(url: &str) -> Result<Client> {
    Ok(Client::connect(url, NoTls)?)
}

/// Brings the schema up to date; several processes may start at once.
pub(crate) fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7365420211);
         CREATE TABLE IF NOT EXISTS fedwatt_schema (version INT NOT NULL);",
    )?;
    let done: i64 = tx
        .query_one("SELECT count(*) FROM fedwatt_schema", &[])?
        .get(0);
    for (version, step) in pending_migrations(done as usize, &migrations())? {
        match step {
            Migration::Sql(sql) => tx.batch_execute(sql)?,
            Migration::Code(run) => run(&mut Pg(&mut tx))?,
        }
        tx.execute(
            "INSERT INTO fedwatt_schema VALUES ($1)",
            &[&(version as i32)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Whether an error only means "try again": a deadlock victim or a
/// serialization failure.
pub(crate) fn is_transient(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// A client or transaction seen as a [`Db`].
pub(crate) struct Pg<'c, C: GenericClient>(pub &'c mut C);

fn info(row: &Row) -> Result<(i64, StreamInfo)> {
    Ok((
        row.get(0),
        stream_from_row(
            row.get(1),
            row.get(2),
            row.get(3),
            row.get::<_, &str>(4),
            row.get(5),
            row.get(6),
            row.get(7),
            row.get(8),
            row.get(9),
            row.get(10),
            row.get(11),
        )?,
    ))
}

fn pg_param<'a>(p: &'a Param<'a>) -> &'a (dyn ToSql + Sync) {
    match p {
        Param::Int(v) => v,
        Param::Real(v) => v,
        Param::Text(v) => v,
        Param::Blob(v) => v,
    }
}

fn pg_cells(row: &Row) -> Result<Vec<Cell>> {
    use postgres::types::Type;
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let t = column.type_();
        let cell = if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|v| Cell::Int(v.into()))
        } else if *t == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i)?.map(Cell::Real)
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?
                .map(|v| Cell::Int(v.into()))
        } else if *t == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)?.map(Cell::Blob)
        } else {
            row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
        };
        cells.push(cell.unwrap_or(Cell::Null));
    }
    Ok(cells)
}

fn partial(row: &Row, at: usize) -> Partial {
    Partial {
        count: row.get::<_, i64>(at) as u64,
        sum: row.get(at + 1),
        min: row.get(at + 2),
        max: row.get(at + 3),
        first: (row.get(at + 4), row.get(at + 5)),
        last: (row.get(at + 6), row.get(at + 7)),
    }
}

/// Rollup rows as the columns of an `unnest`.
struct Columns {
    start: Vec<i64>,
    count: Vec<i64>,
    sum: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    first_time: Vec<i64>,
    first_value: Vec<f64>,
    last_time: Vec<i64>,
    last_value: Vec<f64>,
}

impl Columns {
    fn of<'a>(rows: impl Iterator<Item = (i64, &'a Partial)>) -> Columns {
        let mut c = Columns {
            start: vec![],
            count: vec![],
            sum: vec![],
            min: vec![],
            max: vec![],
            first_time: vec![],
            first_value: vec![],
            last_time: vec![],
            last_value: vec![],
        };
        for (start, p) in rows {
            c.start.push(start);
            c.count.push(p.count as i64);
            c.sum.push(p.sum);
            c.min.push(p.min);
            c.max.push(p.max);
            c.first_time.push(p.first.0);
            c.first_value.push(p.first.1);
            c.last_time.push(p.last.0);
            c.last_value.push(p.last.1);
        }
        c
    }

    fn params<'a>(&'a self, stream: &'a i64) -> [&'a (dyn ToSql + Sync); 10] {
        [
            stream,
            &self.start,
            &self.count,
            &self.sum,
            &self.min,
            &self.max,
            &self.first_time,
            &self.first_value,
            &self.last_time,
            &self.last_value,
        ]
    }
}

const UNNEST: &str = "SELECT $1::BIGINT, * FROM unnest($2::BIGINT[], $3::BIGINT[], $4::FLOAT8[], $5::FLOAT8[], $6::FLOAT8[], $7::BIGINT[], $8::FLOAT8[], $9::BIGINT[], $10::FLOAT8[])";

impl<C: GenericClient> Db for Pg<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(pg_param).collect();
        Ok(self.0.execute(sql, &params)?)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(pg_param).collect();
        self.0.query(sql, &params)?.iter().map(pg_cells).collect()
    }

    fn find_stream(&mut self, name: &str) -> Result<Option<StreamHead>> {
        let row = self.0.query_opt(
            "SELECT id, unit, kind, origin FROM streams WHERE name = $1",
            &[&name],
        )?;
        row.map(|r| {
            Ok(StreamHead {
                id: r.get(0),
                unit: r.get(1),
                kind: ValueKind::from_code(r.get(2))?,
                origin: r.get(3),
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
        let code = i64::from(kind.code());
        // A concurrent pack may create it first: then this waits for its
        // commit, inserts nothing, and reads the stream it created.
        self.0.execute(
            "INSERT INTO streams (name, unit, kind, owner, created) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO NOTHING",
            &[&name, &unit, &code, &owner, &now],
        )?;
        self.find_stream(name)?.ok_or_else(|| {
            crate::Error::Internal(format!("stream {name} vanished while it was created"))
        })
    }

    fn lock_stream(&mut self, stream: i64) -> Result<()> {
        self.0
            .execute("SELECT 1 FROM streams WHERE id = $1 FOR UPDATE", &[&stream])?;
        Ok(())
    }

    fn add_stream_stats(&mut self, stream: i64, added: u64, first: i64, last: i64) -> Result<()> {
        self.0.execute(
            "UPDATE streams SET count = count + $2,
                first_time = LEAST(coalesce(first_time, $3), $3),
                last_time = GREATEST(coalesce(last_time, $4), $4)
             WHERE id = $1",
            &[&stream, &(added as i64), &first, &last],
        )?;
        Ok(())
    }

    fn set_stream_stats(
        &mut self,
        stream: i64,
        count: u64,
        first: Option<i64>,
        last: Option<i64>,
    ) -> Result<()> {
        self.0.execute(
            "UPDATE streams SET count = $2, first_time = $3, last_time = $4 WHERE id = $1",
            &[&stream, &(count as i64), &first, &last],
        )?;
        Ok(())
    }

    fn streams(&mut self, prefix: Option<&str>) -> Result<Vec<(i64, StreamInfo)>> {
        let prefix = prefix.unwrap_or("");
        self.0
            .query(
                &format!("SELECT {STREAM_COLUMNS} FROM streams WHERE left(name, length($1)) = $1 ORDER BY name COLLATE \"C\""),
                &[&prefix],
            )?
            .iter()
            .map(info)
            .collect()
    }

    fn stream(&mut self, name: &str) -> Result<Option<(i64, StreamInfo)>> {
        self.0
            .query_opt(
                &format!("SELECT {STREAM_COLUMNS} FROM streams WHERE name = $1"),
                &[&name],
            )?
            .as_ref()
            .map(info)
            .transpose()
    }

    fn set_stream(&mut self, stream: i64, metadata: &Metadata, open: bool) -> Result<()> {
        let json = serde_json::to_string(metadata).expect("metadata serialises to JSON");
        self.0.execute(
            "UPDATE streams SET metadata = $2, open = $3 WHERE id = $1",
            &[&stream, &json, &open],
        )?;
        Ok(())
    }

    fn chunks(
        &mut self,
        stream: i64,
        from_day: i64,
        to_day: i64,
        visit: &mut ChunkVisitor<'_>,
    ) -> Result<()> {
        let params: [&(dyn ToSql + Sync); 3] = [&stream, &from_day, &to_day];
        let mut rows = self.0.query_raw(
            "SELECT day, data FROM chunks WHERE stream = $1 AND day >= $2 AND day <= $3
             ORDER BY day, part",
            params,
        )?;
        while let Some(row) = rows.next()? {
            if !visit(row.get(0), row.get(1))? {
                break;
            }
        }
        Ok(())
    }

    fn chunks_from(&mut self, stream: i64, starts: &[(i64, i64)]) -> Result<Vec<(i64, ChunkRow)>> {
        if let [(day, time)] = starts {
            // One day, as live data comes: only the chunks asked for.
            let rows = self.0.query(
                "SELECT part, data FROM chunks WHERE stream = $1 AND day = $2 AND part >= coalesce(
                     (SELECT max(part) FROM chunks WHERE stream = $1 AND day = $2 AND part <= $3), $2)
                 ORDER BY part",
                &[&stream, day, time],
            )?;
            return Ok(rows.iter().map(|r| (*day, (r.get(0), r.get(1)))).collect());
        }
        // Several days, as a backfill comes: one plain range read, cheaper
        // for the server than a query per day, then the chunks asked for.
        let (Some(from), Some(to)) = (
            starts.iter().map(|s| s.0).min(),
            starts.iter().map(|s| s.0).max(),
        ) else {
            return Ok(Vec::new());
        };
        let rows = self.0.query(
            "SELECT day, part, data FROM chunks WHERE stream = $1 AND day >= $2 AND day <= $3
             ORDER BY day, part",
            &[&stream, &from, &to],
        )?;
        // Both in day order: each day's rows are the next run of `rows`.
        let mut read = rows
            .iter()
            .map(|r| (r.get::<_, i64>(0), (r.get(1), r.get(2))))
            .peekable();
        let mut chunks: Vec<(i64, ChunkRow)> = Vec::new();
        for &(day, time) in starts {
            while read.next_if(|(d, _)| *d < day).is_some() {}
            let mut of_day: Vec<ChunkRow> = Vec::new();
            while let Some((_, chunk)) = read.next_if(|(d, _)| *d == day) {
                of_day.push(chunk);
            }
            let first = of_day.iter().rposition(|c| c.0 <= time).unwrap_or(0);
            chunks.extend(of_day.drain(first..).map(|chunk| (day, chunk)));
        }
        Ok(chunks)
    }

    fn put_chunks(&mut self, stream: i64, rows: &[ChunkWrite]) -> Result<()> {
        let (gone, kept): (Vec<&ChunkWrite>, Vec<&ChunkWrite>) =
            rows.iter().partition(|r| r.2 == 0);
        if !gone.is_empty() {
            let days: Vec<i64> = gone.iter().map(|r| r.0).collect();
            let parts: Vec<i64> = gone.iter().map(|r| r.1).collect();
            self.0.execute(
                "DELETE FROM chunks WHERE stream = $1
                 AND (day, part) IN (SELECT * FROM unnest($2::BIGINT[], $3::BIGINT[]))",
                &[&stream, &days, &parts],
            )?;
        }
        if kept.is_empty() {
            return Ok(());
        }
        let days: Vec<i64> = kept.iter().map(|r| r.0).collect();
        let parts: Vec<i64> = kept.iter().map(|r| r.1).collect();
        let counts: Vec<i64> = kept.iter().map(|r| r.2 as i64).collect();
        let data: Vec<&[u8]> = kept.iter().map(|r| r.3.as_slice()).collect();
        self.0.execute(
            "INSERT INTO chunks (stream, day, part, count, data)
             SELECT $1, * FROM unnest($2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BYTEA[])
             ON CONFLICT (stream, day, part) DO UPDATE SET count = excluded.count, data = excluded.data",
            &[&stream, &days, &parts, &counts, &data],
        )?;
        Ok(())
    }

    fn delete_days_before(&mut self, stream: i64, day: i64) -> Result<u64> {
        let deleted: i64 = self
            .0
            .query_one(
                "SELECT coalesce(sum(count), 0)::BIGINT FROM chunks WHERE stream = $1 AND day < $2",
                &[&stream, &day],
            )?
            .get(0);
        self.0.execute(
            "DELETE FROM chunks WHERE stream = $1 AND day < $2",
            &[&stream, &day],
        )?;
        self.0.execute(
            "DELETE FROM hours WHERE stream = $1 AND day < $2",
            &[&stream, &day],
        )?;
        Ok(deleted as u64)
    }

    fn chunk_summary(&mut self, stream: i64) -> Result<(u64, Option<i64>, Option<i64>)> {
        let row = self.0.query_one(
            "SELECT coalesce(sum(count), 0)::BIGINT, min(day), max(day) FROM chunks WHERE stream = $1",
            &[&stream],
        )?;
        Ok((row.get::<_, i64>(0) as u64, row.get(1), row.get(2)))
    }

    fn hours(
        &mut self,
        stream: i64,
        from_day: i64,
        to_day: i64,
        visit: &mut HoursVisitor<'_>,
    ) -> Result<()> {
        let params: [&(dyn ToSql + Sync); 3] = [&stream, &from_day, &to_day];
        let mut rows = self.0.query_raw(
            "SELECT day, data FROM hours WHERE stream = $1 AND day >= $2 AND day <= $3 ORDER BY day",
            params,
        )?;
        while let Some(row) = rows.next()? {
            visit(row.get(0), row.get(1))?;
        }
        Ok(())
    }

    fn hours_of_streams(
        &mut self,
        streams: &[i64],
        from_day: i64,
        to_day: i64,
        visit: &mut StreamHoursVisitor<'_>,
    ) -> Result<()> {
        let params: [&(dyn ToSql + Sync); 3] = [&streams, &from_day, &to_day];
        let mut rows = self.0.query_raw(
            "SELECT stream, day, data FROM hours WHERE stream = ANY($1) AND day >= $2 AND day <= $3
             ORDER BY stream, day",
            params,
        )?;
        while let Some(row) = rows.next()? {
            let stream: i64 = row.get(0);
            for (i, _) in streams.iter().enumerate().filter(|(_, s)| **s == stream) {
                visit(i, row.get(1), row.get(2))?;
            }
        }
        Ok(())
    }

    fn put_hours(&mut self, stream: i64, rows: &[(i64, Option<Vec<u8>>)]) -> Result<()> {
        let gone: Vec<i64> = rows.iter().filter(|r| r.1.is_none()).map(|r| r.0).collect();
        if !gone.is_empty() {
            self.0.execute(
                "DELETE FROM hours WHERE stream = $1 AND day = ANY($2)",
                &[&stream, &gone],
            )?;
        }
        let days: Vec<i64> = rows.iter().filter(|r| r.1.is_some()).map(|r| r.0).collect();
        let data: Vec<&[u8]> = rows.iter().filter_map(|r| r.1.as_deref()).collect();
        if days.is_empty() {
            return Ok(());
        }
        self.0.execute(
            "INSERT INTO hours SELECT $1, * FROM unnest($2::BIGINT[], $3::BYTEA[])
             ON CONFLICT (stream, day) DO UPDATE SET data = excluded.data",
            &[&stream, &days, &data],
        )?;
        Ok(())
    }

    fn days(&mut self, stream: i64, from: i64, to: i64) -> Result<Vec<(i64, Partial)>> {
        Ok(self
            .0
            .query(
                "SELECT start, count, sum, min, max, first_time, first_value, last_time, last_value FROM days
                 WHERE stream = $1 AND start >= $2 AND start < $3 ORDER BY start",
                &[&stream, &from, &to],
            )?
            .iter()
            .map(|r| (r.get(0), partial(r, 1)))
            .collect())
    }

    fn put_days(&mut self, stream: i64, rows: &[(i64, Option<Partial>)]) -> Result<()> {
        let gone: Vec<i64> = rows
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(s, _)| *s)
            .collect();
        if !gone.is_empty() {
            self.0.execute(
                "DELETE FROM days WHERE stream = $1 AND start = ANY($2)",
                &[&stream, &gone],
            )?;
        }
        let columns = Columns::of(rows.iter().filter_map(|(s, p)| p.as_ref().map(|p| (*s, p))));
        if columns.start.is_empty() {
            return Ok(());
        }
        self.0.execute(
            &format!(
                "INSERT INTO days {UNNEST}
                 ON CONFLICT (stream, start) DO UPDATE SET count = excluded.count, sum = excluded.sum,
                    min = excluded.min, max = excluded.max, first_time = excluded.first_time,
                    first_value = excluded.first_value, last_time = excluded.last_time, last_value = excluded.last_value"
            ),
            &columns.params(&stream),
        )?;
        Ok(())
    }

    fn delete_days_rollups_before(&mut self, stream: i64, before: i64) -> Result<()> {
        self.0.execute(
            "DELETE FROM days WHERE stream = $1 AND start < $2",
            &[&stream, &before],
        )?;
        Ok(())
    }

    fn insert_token(&mut self, token: &Token, hash: &[u8]) -> Result<()> {
        self.0.execute(
            "INSERT INTO tokens (name, hash, scope, streams, created) VALUES ($1, $2, $3, $4, $5)",
            &[
                &token.name,
                &hash,
                &token.scope.to_string(),
                &token.streams.as_str(),
                &token.created,
            ],
        )?;
        Ok(())
    }

    fn token_by_hash(&mut self, hash: &[u8]) -> Result<Option<Token>> {
        self.0
            .query_opt(
                "SELECT name, scope, streams, created FROM tokens WHERE hash = $1",
                &[&hash],
            )?
            .map(|r| token_from_row(r.get(0), r.get::<_, &str>(1), r.get::<_, &str>(2), r.get(3)))
            .transpose()
    }

    fn tokens(&mut self) -> Result<Vec<Token>> {
        self.0
            .query(
                "SELECT name, scope, streams, created FROM tokens ORDER BY name",
                &[],
            )?
            .iter()
            .map(|r| token_from_row(r.get(0), r.get::<_, &str>(1), r.get::<_, &str>(2), r.get(3)))
            .collect()
    }

    fn delete_token(&mut self, name: &str) -> Result<bool> {
        Ok(self
            .0
            .execute("DELETE FROM tokens WHERE name = $1", &[&name])?
            > 0)
    }
}
