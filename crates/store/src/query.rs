//! Reading back: raw records, calendar aggregates and profiles, built on
//! the primitives of [`Db`] so that both backends answer alike.

use std::sync::Arc;

use jiff::tz::TimeZone;
use senml::Record;

use crate::calendar::{self, Every, HOUR, ProfileBy};
use crate::db::{Db, ProfileSource, Rollup, value_of};
use crate::error::{Error, Result};
use crate::model::StreamInfo;
use crate::rollup::{Function, Partial};

/// The most points one records query returns.
pub const MAX_RECORDS: u64 = 10_000_000;

/// Looks up streams by name, refusing unknown ones and non-aggregated ones
/// when `aggregated` is asked.
pub(crate) fn resolve_streams(
    db: &mut dyn Db,
    names: &[String],
    aggregated: bool,
) -> Result<Vec<(i64, StreamInfo)>> {
    if names.is_empty() {
        return Err(Error::Invalid(
            "give at least one stream (stream=NAME)".into(),
        ));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let (id, info) = db
            .stream(name)?
            .ok_or_else(|| Error::NotFound(format!("no stream named {name:?}")))?;
        if aggregated && !info.kind.is_aggregated() {
            return Err(Error::Invalid(format!(
                "stream {name} holds {}: aggregates and profiles need numbers or booleans",
                info.kind
            )));
        }
        out.push((id, info));
    }
    Ok(out)
}

/// The records of each stream in `[from, to)`, oldest first, at most
/// `limit` per stream.
pub(crate) fn records(
    db: &mut dyn Db,
    streams: &[(i64, StreamInfo)],
    from: i64,
    to: i64,
    limit: u64,
) -> Result<Vec<Vec<Record>>> {
    let mut out = Vec::with_capacity(streams.len());
    for (id, info) in streams {
        let name: Arc<str> = info.name.as_str().into();
        let unit: Option<Arc<str>> = info.unit.as_deref().map(Into::into);
        let kind = info.kind;
        let mut records = Vec::new();
        db.read_points(*id, from, to, limit.min(MAX_RECORDS), &mut |p| {
            records.push(Record {
                name: name.clone(),
                time: p.time,
                value: value_of(kind, p.value, p.payload),
                sum: p.sum,
                unit: unit.clone(),
                update_time: p.update_time,
            });
        })?;
        out.push(records);
    }
    Ok(out)
}

/// Buckets of an aggregate, and each stream's partial per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// `n + 1` boundaries (µs) of the `n` buckets.
    pub bounds: Vec<i64>,
    /// For each stream asked, in order: its description and one partial per
    /// bucket (`None` for a bucket without points).
    pub series: Vec<(StreamInfo, Vec<Option<Partial>>)>,
}

/// Where an aggregate can read from without scanning more than needed.
fn aggregate_source(
    bounds: &[i64],
    every: Every,
    tz: &TimeZone,
    node_tz: &TimeZone,
) -> Option<Rollup> {
    let same_zone = tz.iana_name().is_some() && tz.iana_name() == node_tz.iana_name();
    if every.is_calendar() && same_zone {
        Some(Rollup::Day)
    } else if bounds.iter().all(|b| b % HOUR == 0) {
        Some(Rollup::Hour)
    } else {
        None
    }
}

pub(crate) fn aggregate(
    db: &mut dyn Db,
    streams: Vec<(i64, StreamInfo)>,
    from: i64,
    to: i64,
    every: Every,
    tz: &TimeZone,
    node_tz: &TimeZone,
) -> Result<Aggregate> {
    let bounds = calendar::buckets(from, to, every, tz).map_err(Error::Invalid)?;
    let (start, end) = (bounds[0], bounds[bounds.len() - 1]);
    let source = aggregate_source(&bounds, every, tz, node_tz);
    let mut series = Vec::with_capacity(streams.len());
    for (id, info) in streams {
        let rows = match source {
            Some(table) => db.rollups(table, id, start, end)?,
            None => {
                let mut rows = Vec::new();
                db.read_points(id, start, end, u64::MAX, &mut |p| {
                    if let Some(v) = p.value {
                        rows.push((p.time, Partial::of(p.time, v)));
                    }
                })?;
                rows
            }
        };
        let mut buckets: Vec<Option<Partial>> = vec![None; bounds.len() - 1];
        let mut b = 0;
        for (t, partial) in &rows {
            while b + 1 < bounds.len() && *t >= bounds[b + 1] {
                b += 1;
            }
            if b + 1 == bounds.len() {
                break;
            }
            if *t >= bounds[b] {
                Partial::merge_into(&mut buckets[b], partial);
            }
        }
        series.push((info, buckets));
    }
    Ok(Aggregate { bounds, series })
}

/// count, sum, min and max of a profile slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlotAggregate {
    /// Number of points.
    pub count: u64,
    /// Sum of their values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl SlotAggregate {
    /// The value of `function`; `None` for first and last, which a profile
    /// does not keep.
    pub fn get(&self, function: Function) -> Option<f64> {
        match function {
            Function::Mean => Some(self.sum / self.count as f64),
            Function::Min => Some(self.min),
            Function::Max => Some(self.max),
            Function::Sum => Some(self.sum),
            Function::Count => Some(self.count as f64),
            Function::First | Function::Last => None,
        }
    }
}

/// A profile: for each stream, one aggregate per slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// How time was folded.
    pub by: ProfileBy,
    /// For each stream asked, in order: its description and its slots.
    pub series: Vec<(StreamInfo, Vec<Option<SlotAggregate>>)>,
}

pub(crate) fn profile(
    db: &mut dyn Db,
    streams: Vec<(i64, StreamInfo)>,
    from: i64,
    to: i64,
    by: ProfileBy,
    tz: &TimeZone,
) -> Result<Profile> {
    if from >= to {
        return Err(Error::Invalid("`from` must be before `to`".into()));
    }
    let pieces = calendar::offset_intervals(from, to, tz).map_err(Error::Invalid)?;
    let hourly = from % HOUR == 0
        && to % HOUR == 0
        && pieces.iter().all(|p| p.0 % HOUR == 0 && p.2 % HOUR == 0);
    let source = if hourly {
        ProfileSource::Hours
    } else {
        ProfileSource::Points
    };
    let column = match source {
        ProfileSource::Hours => "start",
        ProfileSource::Points => "time",
    };
    let ids: Vec<i64> = streams.iter().map(|(id, _)| *id).collect();
    let mut slots: Vec<Vec<Option<SlotAggregate>>> = vec![vec![None; by.slots()]; ids.len()];
    for (a, b, offset) in pieces {
        let sql = by.slot_sql(column, &offset.to_string());
        for row in db.profile_rows(source, &ids, a, b, &sql)? {
            let Some(i) = ids.iter().position(|&id| id == row.stream) else {
                continue;
            };
            let Some(slot) = slots[i].get_mut(row.slot) else {
                return Err(Error::Config(format!(
                    "profile slot {} out of range",
                    row.slot
                )));
            };
            let add = SlotAggregate {
                count: row.count,
                sum: row.sum,
                min: row.min,
                max: row.max,
            };
            *slot = Some(match *slot {
                None => add,
                Some(s) => SlotAggregate {
                    count: s.count + add.count,
                    sum: s.sum + add.sum,
                    min: s.min.min(add.min),
                    max: s.max.max(add.max),
                },
            });
        }
    }
    Ok(Profile {
        by,
        series: streams
            .into_iter()
            .map(|(_, info)| info)
            .zip(slots)
            .collect(),
    })
}
