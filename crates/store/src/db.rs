//! What each backend provides: a few primitive reads and writes, in SQL of
//! its own dialect. Everything built on them (ingest, rollups, aggregates,
//! profiles) is written once, in `ingest` and `query`.

use std::sync::Arc;

use crate::calendar::HOUR;
use crate::error::Result;
use crate::model::{Metadata, StreamInfo, StreamPattern, Token, ValueKind};
use crate::rollup::Partial;

/// A chunk as read within its day: its part (the key of its time range),
/// and its blob.
pub(crate) type ChunkRow = (i64, Vec<u8>);

/// A chunk to write: its day, its part, its number of points (0 deletes
/// the row), its blob.
pub(crate) type ChunkWrite = (i64, i64, u64, Vec<u8>);

/// Every chunk of `day`, oldest first.
pub(crate) fn day_chunks(db: &mut dyn Db, stream: i64, day: i64) -> Result<Vec<ChunkRow>> {
    let chunks = db.chunks_from(stream, &[(day, i64::MIN)])?;
    Ok(chunks.into_iter().map(|(_, chunk)| chunk).collect())
}

/// Called with (day, blob) for each chunk; returns whether to go on.
pub(crate) type ChunkVisitor<'a> = dyn FnMut(i64, &[u8]) -> Result<bool> + 'a;

/// Called with (day, blob) for each hours row.
pub(crate) type HoursVisitor<'a> = dyn FnMut(i64, &[u8]) -> Result<()> + 'a;

/// Called with (index of the stream, day, blob) for each hours row.
pub(crate) type StreamHoursVisitor<'a> = dyn FnMut(usize, i64, &[u8]) -> Result<()> + 'a;

/// What ingest needs to know of an existing stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamHead {
    pub id: i64,
    pub unit: Option<String>,
    pub kind: ValueKind,
    /// The peer (a bare JID) the stream is received from; `None` for a
    /// stream of this node.
    pub origin: Option<String>,
}

/// A parameter of a portable statement (see [`Db::execute`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<&'a str>),
    Blob(Option<&'a [u8]>),
}

/// A column read by a portable statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    fn unexpected(&self, wanted: &str) -> crate::Error {
        crate::error::corrupt(
            "a column in the database",
            format!("it holds {self:?} where {wanted} was expected"),
        )
    }

    pub fn int(&self) -> Result<i64> {
        self.opt_int()?.ok_or_else(|| self.unexpected("an integer"))
    }

    pub fn opt_int(&self) -> Result<Option<i64>> {
        match self {
            Cell::Null => Ok(None),
            Cell::Int(i) => Ok(Some(*i)),
            // SQLite gives a REAL for some aggregates of integers.
            Cell::Real(r) => Ok(Some(*r as i64)),
            _ => Err(self.unexpected("an integer")),
        }
    }

    pub fn real(&self) -> Result<f64> {
        match self {
            Cell::Real(r) => Ok(*r),
            Cell::Int(i) => Ok(*i as f64),
            _ => Err(self.unexpected("a number")),
        }
    }

    pub fn text(&self) -> Result<String> {
        self.opt_text()?.ok_or_else(|| self.unexpected("a text"))
    }

    pub fn opt_text(&self) -> Result<Option<String>> {
        match self {
            Cell::Null => Ok(None),
            Cell::Text(t) => Ok(Some(t.clone())),
            _ => Err(self.unexpected("a text")),
        }
    }

    pub fn blob(&self) -> Result<Vec<u8>> {
        match self {
            Cell::Blob(b) => Ok(b.clone()),
            _ => Err(self.unexpected("bytes")),
        }
    }
}

/// Which SQL a backend speaks, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection or transaction of one backend.
pub(crate) trait Db {
    // Streams.
    fn find_stream(&mut self, name: &str) -> Result<Option<StreamHead>>;
    /// Creates a stream, unless a concurrent transaction just did: returns
    /// the stream as it is then.
    fn create_stream(
        &mut self,
        name: &str,
        unit: Option<&str>,
        kind: ValueKind,
        owner: Option<&str>,
        now: i64,
    ) -> Result<StreamHead>;
    /// Holds the stream against concurrent writers until the transaction
    /// ends (a no-op where there is only one writer).
    fn lock_stream(&mut self, stream: i64) -> Result<()>;
    fn add_stream_stats(&mut self, stream: i64, added: u64, first: i64, last: i64) -> Result<()>;
    fn set_stream_stats(
        &mut self,
        stream: i64,
        count: u64,
        first: Option<i64>,
        last: Option<i64>,
    ) -> Result<()>;
    fn streams(&mut self, prefix: Option<&str>) -> Result<Vec<(i64, StreamInfo)>>;
    fn stream(&mut self, name: &str) -> Result<Option<(i64, StreamInfo)>>;
    fn set_stream(&mut self, stream: i64, metadata: &Metadata, open: bool) -> Result<()>;

    // Points: chunks of at most `chunk::CHUNK_POINTS` points, by stream and
    // UTC day, then by part (see `chunk`).
    /// Visits the chunks of days in `[from_day, to_day]`, oldest first, as
    /// the database returns them, until `visit` returns false: a range of
    /// any length is read in bounded memory.
    fn chunks(
        &mut self,
        stream: i64,
        from_day: i64,
        to_day: i64,
        visit: &mut ChunkVisitor<'_>,
    ) -> Result<()>;
    /// For each (day, time) of `starts`: the chunks of that day from the
    /// one whose range holds `time` (the day's first if none does) to the
    /// day's last, as (day, chunk), oldest first. One query for all of them
    /// where a round trip costs.
    fn chunks_from(&mut self, stream: i64, starts: &[(i64, i64)]) -> Result<Vec<(i64, ChunkRow)>>;
    /// Writes chunks, replacing those of the same day and part.
    fn put_chunks(&mut self, stream: i64, rows: &[ChunkWrite]) -> Result<()>;
    /// Deletes the chunks and hours of days before `day`; returns the points deleted.
    fn delete_days_before(&mut self, stream: i64, day: i64) -> Result<u64>;
    /// Number of points, first and last chunk day.
    fn chunk_summary(&mut self, stream: i64) -> Result<(u64, Option<i64>, Option<i64>)>;

    // Hourly partials: one row per stream and UTC day.
    /// Visits the hours rows of a stream for days in `[from_day, to_day]`,
    /// oldest first.
    fn hours(
        &mut self,
        stream: i64,
        from_day: i64,
        to_day: i64,
        visit: &mut HoursVisitor<'_>,
    ) -> Result<()>;
    /// [`Db::hours`] of several streams: each stream's rows oldest first,
    /// `visit` given the index of the row's stream in `streams` (a stream
    /// named twice, once for each).
    fn hours_of_streams(
        &mut self,
        streams: &[i64],
        from_day: i64,
        to_day: i64,
        visit: &mut StreamHoursVisitor<'_>,
    ) -> Result<()> {
        for (i, &stream) in streams.iter().enumerate() {
            self.hours(stream, from_day, to_day, &mut |day, data| {
                visit(i, day, data)
            })?;
        }
        Ok(())
    }
    /// Writes hours rows; `None` deletes the day's row.
    fn put_hours(&mut self, stream: i64, rows: &[(i64, Option<Vec<u8>>)]) -> Result<()>;

    // Daily partials, for the days of the node's time zone.
    /// Rows whose day starts in `[from, to)`, oldest first.
    fn days(&mut self, stream: i64, from: i64, to: i64) -> Result<Vec<(i64, Partial)>>;
    /// Overwrites the rows of these days; `None` deletes the row.
    fn put_days(&mut self, stream: i64, rows: &[(i64, Option<Partial>)]) -> Result<()>;
    /// Deletes the rows of days starting before `before`.
    fn delete_days_rollups_before(&mut self, stream: i64, before: i64) -> Result<()>;

    // Tokens.
    fn insert_token(&mut self, token: &Token, hash: &[u8]) -> Result<()>;
    fn token_by_hash(&mut self, hash: &[u8]) -> Result<Option<Token>>;
    fn tokens(&mut self) -> Result<Vec<Token>>;
    fn delete_token(&mut self, name: &str) -> Result<bool>;

    // Portable statements, for the tables whose SQL both backends share
    // (grants, subscriptions, outbox, inbox, audit).
    fn dialect(&self) -> Dialect;
    /// Runs a statement written with `$1`, `$2`… placeholders, numbered in
    /// the order they first appear; returns the number of rows changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64>;
    /// Runs a query written like [`Db::execute`]'s statements; returns its rows.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>>;
}

/// The columns of `streams` that [`stream_from_row`] reads, in its order
/// (after the id).
pub(crate) const STREAM_COLUMNS: &str =
    "id, name, unit, kind, metadata, owner, open, created, count, first_time, last_time, origin";

/// A step of a backend's schema.
pub(crate) enum Migration {
    /// Statements in the backend's dialect.
    Sql(String),
    /// Code, run in the migration's transaction on the tables the steps
    /// before it left.
    Code(fn(&mut dyn Db) -> Result<()>),
}

/// The migrations still to run on a database at schema version `done`, each
/// with the version it brings the schema to; an error if the database is
/// newer than this program.
pub(crate) fn pending_migrations<M>(
    done: usize,
    migrations: &[M],
) -> Result<impl Iterator<Item = (usize, &M)>> {
    if done > migrations.len() {
        return Err(crate::Error::SchemaTooNew {
            found: done,
            known: migrations.len(),
        });
    }
    Ok(migrations
        .iter()
        .enumerate()
        .skip(done)
        .map(|(i, sql)| (i + 1, sql)))
}

/// Rows a step of [`reencode_blobs`] reads at once.
const REENCODE_BATCH: i64 = 512;

/// Rewrites every chunk and hours row not in the codec's current version
/// in it, in place (same day, part and count): the migration to chunk
/// version 2. Reads and writes a bounded batch at a time.
pub(crate) fn reencode_blobs(db: &mut dyn Db) -> Result<()> {
    use crate::chunk::CHUNK_POINTS;
    use crate::codec::{self, MAX_POINTS};
    use crate::ingest::corrupt;
    let streams = db.query("SELECT DISTINCT stream FROM chunks ORDER BY stream", &[])?;
    for stream in streams {
        let stream = stream[0].int()?;
        let mut after = (i64::MIN, i64::MIN);
        loop {
            let rows = db.query(
                "SELECT day, part, data FROM chunks WHERE stream = $1 AND (day > $2 OR (day = $2 AND part > $3))
                 ORDER BY day, part LIMIT $4",
                &[
                    Param::Int(Some(stream)),
                    Param::Int(Some(after.0)),
                    Param::Int(Some(after.1)),
                    Param::Int(Some(REENCODE_BATCH)),
                ],
            )?;
            let Some(last) = rows.last() else { break };
            after = (last[0].int()?, last[1].int()?);
            let mut writes: Vec<ChunkWrite> = Vec::with_capacity(rows.len());
            for row in &rows {
                let (day, part, data) = (row[0].int()?, row[1].int()?, row[2].blob()?);
                if codec::is_current(&data) {
                    continue;
                }
                let mut points = Vec::with_capacity(CHUNK_POINTS);
                codec::decode_points(&data, |p| points.push(p))
                    .map_err(|e| corrupt(stream, day, e))?;
                if points.len() as u64 > MAX_POINTS {
                    return Err(corrupt(
                        stream,
                        day,
                        format!(
                            "{} points in one chunk, more than {MAX_POINTS}",
                            points.len()
                        ),
                    ));
                }
                if points.windows(2).any(|w| w[0].time >= w[1].time) {
                    return Err(corrupt(stream, day, "points out of time order"));
                }
                writes.push((
                    day,
                    part,
                    points.len() as u64,
                    codec::encode_points(&points),
                ));
            }
            db.put_chunks(stream, &writes)?;
        }
    }
    let streams = db.query("SELECT DISTINCT stream FROM hours ORDER BY stream", &[])?;
    for stream in streams {
        let stream = stream[0].int()?;
        let mut after = i64::MIN;
        loop {
            let rows = db.query(
                "SELECT day, data FROM hours WHERE stream = $1 AND day > $2 ORDER BY day LIMIT $3",
                &[
                    Param::Int(Some(stream)),
                    Param::Int(Some(after)),
                    Param::Int(Some(REENCODE_BATCH)),
                ],
            )?;
            let Some(last) = rows.last() else { break };
            after = last[0].int()?;
            let mut writes = Vec::with_capacity(rows.len());
            for row in &rows {
                let (day, data) = (row[0].int()?, row[1].blob()?);
                if codec::is_current(&data) {
                    continue;
                }
                let mut hours = Vec::with_capacity(24);
                codec::decode_hours(day, &data, |hour, p| hours.push((hour, p)))
                    .map_err(|e| corrupt(stream, day, e))?;
                let mut next = day;
                for (hour, _) in &hours {
                    if *hour < next || *hour >= day + crate::chunk::DAY || (hour - day) % HOUR != 0
                    {
                        return Err(corrupt(
                            stream,
                            day,
                            format!("an hour at {hour} out of place"),
                        ));
                    }
                    next = hour + HOUR;
                }
                writes.push((day, Some(codec::encode_hours(day, &hours))));
            }
            db.put_hours(stream, &writes)?;
        }
    }
    Ok(())
}

/// Reads a token row's columns into a [`Token`].
pub(crate) fn token_from_row(
    name: String,
    scope: &str,
    streams: &str,
    created: i64,
) -> Result<Token> {
    let bad = |what: String| crate::error::corrupt(format!("token {name:?} in the database"), what);
    Ok(Token {
        scope: scope.parse().map_err(bad)?,
        streams: streams.parse::<StreamPattern>().map_err(bad)?,
        name,
        created,
    })
}

/// Reads a stream row's columns into a [`StreamInfo`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn stream_from_row(
    name: String,
    unit: Option<String>,
    kind: i64,
    metadata: &str,
    owner: Option<String>,
    open: bool,
    created: i64,
    count: i64,
    first: Option<i64>,
    last: Option<i64>,
    origin: Option<String>,
) -> Result<StreamInfo> {
    let metadata: Metadata = serde_json::from_str(metadata).map_err(|e| {
        crate::error::corrupt(format!("metadata of stream {name} in the database"), e)
    })?;
    Ok(StreamInfo {
        name,
        unit,
        kind: ValueKind::from_code(kind)?,
        metadata,
        owner,
        open,
        created,
        count: count.max(0) as u64,
        first: if count > 0 { first } else { None },
        last: if count > 0 { last } else { None },
        origin,
    })
}

/// A string or data payload as a SenML value of the stream's kind.
pub(crate) fn value_of(
    kind: ValueKind,
    value: Option<f64>,
    payload: Option<&[u8]>,
) -> Option<senml::Value> {
    match kind {
        ValueKind::Number => value.map(senml::Value::Number),
        ValueKind::Boolean => value.map(|v| senml::Value::Bool(v != 0.0)),
        ValueKind::String => {
            payload.map(|p| senml::Value::String(Arc::from(String::from_utf8_lossy(p))))
        }
        ValueKind::Data => payload.map(|p| senml::Value::Data(Arc::from(p))),
    }
}

/// A stream by its number: its name and description.
pub(crate) fn db_stream_by_id(db: &mut dyn Db, id: i64) -> Result<Option<(String, StreamInfo)>> {
    let name = db
        .query(
            "SELECT name FROM streams WHERE id = $1",
            &[Param::Int(Some(id))],
        )?
        .first()
        .map(|r| r[0].text())
        .transpose()?;
    let Some(name) = name else { return Ok(None) };
    Ok(db.stream(&name)?.map(|(_, info)| (name, info)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_from_the_database_version_and_never_backwards() {
        const ALL: &[&str] = &["one", "two", "three"];
        let pending: Vec<_> = pending_migrations(1, ALL).unwrap().collect();
        assert_eq!(pending, [(2, &"two"), (3, &"three")]);
        assert_eq!(pending_migrations(3, ALL).unwrap().count(), 0);
        let e = pending_migrations(4, ALL).err().unwrap();
        assert!(
            matches!(e, crate::Error::SchemaTooNew { found: 4, known: 3 }),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(
            e.contains("schema version 4, newer than this fedwatt knows (3)"),
            "{e}"
        );
    }
}
