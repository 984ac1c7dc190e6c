//! The PostgreSQL backend: for operators who already run PostgreSQL, and
//! for several node processes sharing one database. Points arrive by binary
//! `COPY`; rollups are merged with one statement per stream and pack.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient, NoTls, Row};

use crate::db::{
    Db, PointView, ProfileSource, Rollup, SlotRow, StreamHead, stream_from_row, token_from_row,
};
use crate::error::Result;
use crate::ingest::PointRow;
use crate::model::{Metadata, StreamInfo, Token, ValueKind};
use crate::rollup::Partial;

const MIGRATIONS: &[&str] = &[r#"
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
CREATE TABLE points (
    stream BIGINT NOT NULL,
    time BIGINT NOT NULL,
    value DOUBLE PRECISION,
    payload BYTEA,
    sum DOUBLE PRECISION,
    update_time DOUBLE PRECISION,
    PRIMARY KEY (stream, time)
);
CREATE TABLE rollup_hour (
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
CREATE TABLE rollup_day (LIKE rollup_hour INCLUDING ALL);
CREATE TABLE tokens (
    name TEXT PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    streams TEXT NOT NULL,
    created BIGINT NOT NULL
);
"#];

/// Connects, and prepares the session's scratch table for `COPY`.
pub(crate) fn connect(url: &str) -> Result<Client> {
    let mut client = Client::connect(url, NoTls)?;
    client.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS incoming (
            stream BIGINT, time BIGINT, value DOUBLE PRECISION, payload BYTEA,
            sum DOUBLE PRECISION, update_time DOUBLE PRECISION)",
    )?;
    Ok(client)
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
    let done = done as usize;
    if done > MIGRATIONS.len() {
        return Err(crate::Error::Config(format!(
            "the database has schema version {done}, newer than this fedwatt knows ({}): upgrade fedwatt",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        tx.batch_execute(sql)?;
        tx.execute("INSERT INTO fedwatt_schema VALUES ($1)", &[&(i as i32 + 1)])?;
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

const STREAM_COLUMNS: &str =
    "id, name, unit, kind, metadata, owner, open, created, count, first_time, last_time";

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
        )?,
    ))
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
    fn find_stream(&mut self, name: &str) -> Result<Option<StreamHead>> {
        let row = self.0.query_opt(
            "SELECT id, unit, kind FROM streams WHERE name = $1",
            &[&name],
        )?;
        row.map(|r| {
            Ok(StreamHead {
                id: r.get(0),
                unit: r.get(1),
                kind: ValueKind::from_code(r.get(2))?,
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
            crate::Error::Config(format!("stream {name} vanished while it was created"))
        })
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

    fn write_points(&mut self, stream: i64, points: &[PointRow]) -> Result<Vec<i64>> {
        self.0.batch_execute("TRUNCATE incoming")?;
        let sink = self.0.copy_in(
            "COPY incoming (stream, time, value, payload, sum, update_time) FROM STDIN BINARY",
        )?;
        let types = [
            Type::INT8,
            Type::INT8,
            Type::FLOAT8,
            Type::BYTEA,
            Type::FLOAT8,
            Type::FLOAT8,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for p in points {
            let payload = p.payload.as_deref();
            writer.write(&[&stream, &p.time, &p.value, &payload, &p.sum, &p.update_time])?;
        }
        writer.finish()?;
        let replaced = self
            .0
            .query("SELECT i.time FROM incoming i JOIN points p ON p.stream = i.stream AND p.time = i.time ORDER BY i.time", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        self.0.batch_execute(
            "INSERT INTO points SELECT * FROM incoming
             ON CONFLICT (stream, time) DO UPDATE SET value = excluded.value, payload = excluded.payload,
                sum = excluded.sum, update_time = excluded.update_time",
        )?;
        Ok(replaced)
    }

    fn read_points(
        &mut self,
        stream: i64,
        from: i64,
        to: i64,
        limit: u64,
        visit: &mut dyn FnMut(PointView<'_>),
    ) -> Result<()> {
        let limit = limit.min(i64::MAX as u64) as i64;
        for row in self.0.query(
            "SELECT time, value, payload, sum, update_time FROM points
             WHERE stream = $1 AND time >= $2 AND time < $3 ORDER BY time LIMIT $4",
            &[&stream, &from, &to, &limit],
        )? {
            visit(PointView {
                time: row.get(0),
                value: row.get(1),
                payload: row.get(2),
                sum: row.get(3),
                update_time: row.get(4),
            });
        }
        Ok(())
    }

    fn point_partial(&mut self, stream: i64, from: i64, to: i64) -> Result<Option<Partial>> {
        let mut partial: Option<Partial> = None;
        for row in self.0.query(
            "SELECT time, value FROM points
             WHERE stream = $1 AND time >= $2 AND time < $3 AND value IS NOT NULL ORDER BY time",
            &[&stream, &from, &to],
        )? {
            Partial::merge_into(&mut partial, &Partial::of(row.get(0), row.get(1)));
        }
        Ok(partial)
    }

    fn delete_before(&mut self, stream: i64, before: i64, day_before: i64) -> Result<u64> {
        let deleted = self.0.execute(
            "DELETE FROM points WHERE stream = $1 AND time < $2",
            &[&stream, &before],
        )?;
        self.0.execute(
            "DELETE FROM rollup_hour WHERE stream = $1 AND start < $2",
            &[&stream, &before],
        )?;
        self.0.execute(
            "DELETE FROM rollup_day WHERE stream = $1 AND start < $2",
            &[&stream, &day_before],
        )?;
        Ok(deleted)
    }

    fn recount(&mut self, stream: i64) -> Result<()> {
        self.0.execute(
            "UPDATE streams SET (count, first_time, last_time) =
               (SELECT count(*), min(time), max(time) FROM points WHERE stream = $1)
             WHERE id = $1",
            &[&stream],
        )?;
        Ok(())
    }

    fn merge_rollups(&mut self, table: Rollup, stream: i64, rows: &[(i64, Partial)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let columns = Columns::of(rows.iter().map(|(s, p)| (*s, p)));
        let t = table.table();
        self.0.execute(
            &format!(
                "INSERT INTO {t} {UNNEST}
                 ON CONFLICT (stream, start) DO UPDATE SET
                    count = {t}.count + excluded.count,
                    sum = {t}.sum + excluded.sum,
                    min = LEAST({t}.min, excluded.min),
                    max = GREATEST({t}.max, excluded.max),
                    first_time = CASE WHEN excluded.first_time < {t}.first_time THEN excluded.first_time ELSE {t}.first_time END,
                    first_value = CASE WHEN excluded.first_time < {t}.first_time THEN excluded.first_value ELSE {t}.first_value END,
                    last_time = CASE WHEN excluded.last_time >= {t}.last_time THEN excluded.last_time ELSE {t}.last_time END,
                    last_value = CASE WHEN excluded.last_time >= {t}.last_time THEN excluded.last_value ELSE {t}.last_value END"
            ),
            &columns.params(&stream),
        )?;
        Ok(())
    }

    fn put_rollups(
        &mut self,
        table: Rollup,
        stream: i64,
        rows: &[(i64, Option<Partial>)],
    ) -> Result<()> {
        let t = table.table();
        let gone: Vec<i64> = rows
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(s, _)| *s)
            .collect();
        if !gone.is_empty() {
            self.0.execute(
                &format!("DELETE FROM {t} WHERE stream = $1 AND start = ANY($2)"),
                &[&stream, &gone],
            )?;
        }
        let columns = Columns::of(rows.iter().filter_map(|(s, p)| p.as_ref().map(|p| (*s, p))));
        if columns.start.is_empty() {
            return Ok(());
        }
        self.0.execute(
            &format!(
                "INSERT INTO {t} {UNNEST}
                 ON CONFLICT (stream, start) DO UPDATE SET count = excluded.count, sum = excluded.sum,
                    min = excluded.min, max = excluded.max, first_time = excluded.first_time,
                    first_value = excluded.first_value, last_time = excluded.last_time, last_value = excluded.last_value"
            ),
            &columns.params(&stream),
        )?;
        Ok(())
    }

    fn rollups(
        &mut self,
        table: Rollup,
        stream: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Partial)>> {
        Ok(self
            .0
            .query(
                &format!(
                    "SELECT start, count, sum, min, max, first_time, first_value, last_time, last_value FROM {}
                     WHERE stream = $1 AND start >= $2 AND start < $3 ORDER BY start",
                    table.table()
                ),
                &[&stream, &from, &to],
            )?
            .iter()
            .map(|r| (r.get(0), partial(r, 1)))
            .collect())
    }

    fn profile_rows(
        &mut self,
        source: ProfileSource,
        streams: &[i64],
        from: i64,
        to: i64,
        slot_sql: &str,
    ) -> Result<Vec<SlotRow>> {
        let sql = match source {
            ProfileSource::Hours => format!(
                "SELECT stream, {slot_sql} AS slot, sum(count)::BIGINT, sum(sum), min(min), max(max) FROM rollup_hour
                 WHERE stream = ANY($1) AND start >= $2 AND start < $3 GROUP BY stream, slot"
            ),
            ProfileSource::Points => format!(
                "SELECT stream, {slot_sql} AS slot, count(value), sum(value), min(value), max(value) FROM points
                 WHERE stream = ANY($1) AND time >= $2 AND time < $3 AND value IS NOT NULL GROUP BY stream, slot"
            ),
        };
        let ids = streams.to_vec();
        Ok(self
            .0
            .query(&sql, &[&ids, &from, &to])?
            .iter()
            .map(|r| SlotRow {
                stream: r.get(0),
                slot: r.get::<_, i64>(1) as usize,
                count: r.get::<_, i64>(2) as u64,
                sum: r.get(3),
                min: r.get(4),
                max: r.get(5),
            })
            .collect())
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
