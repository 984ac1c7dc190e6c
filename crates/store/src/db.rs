//! What each backend provides: a few primitive reads and writes, in SQL of
//! its own dialect. Everything built on them (ingest, rollups, aggregates,
//! profiles) is written once, in `ingest` and `query`.

use std::sync::Arc;

use crate::error::Result;
use crate::model::{Metadata, StreamInfo, StreamPattern, Token, ValueKind};
use crate::rollup::Partial;

/// The two rollup tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rollup {
    /// UTC hours.
    Hour,
    /// Days of the node's time zone.
    Day,
}

impl Rollup {
    pub fn table(self) -> &'static str {
        match self {
            Rollup::Hour => "rollup_hour",
            Rollup::Day => "rollup_day",
        }
    }
}

/// What ingest needs to know of an existing stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamHead {
    pub id: i64,
    pub unit: Option<String>,
    pub kind: ValueKind,
}

/// Where a profile reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProfileSource {
    /// Hourly rollups (the time zone's offset is whole hours).
    Hours,
    /// Raw points.
    Points,
}

/// One row of a profile query: stream, slot, and the slot's count, sum,
/// min and max over one offset interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SlotRow {
    pub stream: i64,
    pub slot: usize,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// A stored point as a backend reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PointView<'a> {
    pub time: i64,
    pub value: Option<f64>,
    pub payload: Option<&'a [u8]>,
    pub sum: Option<f64>,
    pub update_time: Option<f64>,
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
    fn add_stream_stats(&mut self, stream: i64, added: u64, first: i64, last: i64) -> Result<()>;
    fn streams(&mut self, prefix: Option<&str>) -> Result<Vec<(i64, StreamInfo)>>;
    fn stream(&mut self, name: &str) -> Result<Option<(i64, StreamInfo)>>;
    fn set_stream(&mut self, stream: i64, metadata: &Metadata, open: bool) -> Result<()>;

    // Points.
    /// Inserts the points, replacing any at the same time; returns the
    /// times of the points that replaced one.
    fn write_points(&mut self, stream: i64, points: &[crate::ingest::PointRow])
    -> Result<Vec<i64>>;
    /// Points in `[from, to)`, oldest first, at most `limit`.
    fn read_points(
        &mut self,
        stream: i64,
        from: i64,
        to: i64,
        limit: u64,
        visit: &mut dyn FnMut(PointView<'_>),
    ) -> Result<()>;
    /// The partial of the numeric points in `[from, to)`, `None` if there are none.
    fn point_partial(&mut self, stream: i64, from: i64, to: i64) -> Result<Option<Partial>>;
    /// Deletes the points and hourly rollups before `before` (a whole hour)
    /// and the daily rollups before `day_before`. Returns the points deleted.
    fn delete_before(&mut self, stream: i64, before: i64, day_before: i64) -> Result<u64>;
    /// Recounts a stream's points, first and last time.
    fn recount(&mut self, stream: i64) -> Result<()>;

    // Rollups.
    /// Merges partials into the rows of their periods (created if missing).
    fn merge_rollups(&mut self, table: Rollup, stream: i64, rows: &[(i64, Partial)]) -> Result<()>;
    /// Overwrites the rows of these periods; `None` deletes the row.
    fn put_rollups(
        &mut self,
        table: Rollup,
        stream: i64,
        rows: &[(i64, Option<Partial>)],
    ) -> Result<()>;
    /// Rows whose period starts in `[from, to)`, oldest first.
    fn rollups(
        &mut self,
        table: Rollup,
        stream: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Partial)>>;
    /// count/sum/min/max per slot, grouped in the database.
    fn profile_rows(
        &mut self,
        source: ProfileSource,
        streams: &[i64],
        from: i64,
        to: i64,
        slot_sql: &str,
    ) -> Result<Vec<SlotRow>>;

    // Tokens.
    fn insert_token(&mut self, token: &Token, hash: &[u8]) -> Result<()>;
    fn token_by_hash(&mut self, hash: &[u8]) -> Result<Option<Token>>;
    fn tokens(&mut self) -> Result<Vec<Token>>;
    fn delete_token(&mut self, name: &str) -> Result<bool>;
}

/// Reads a token row's columns into a [`Token`].
pub(crate) fn token_from_row(
    name: String,
    scope: &str,
    streams: &str,
    created: i64,
) -> Result<Token> {
    let bad =
        |what: String| crate::Error::Config(format!("token {name:?} in the database: {what}"));
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
) -> Result<StreamInfo> {
    let metadata: Metadata = serde_json::from_str(metadata).map_err(|e| {
        crate::Error::Config(format!("metadata of stream {name} in the database: {e}"))
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
