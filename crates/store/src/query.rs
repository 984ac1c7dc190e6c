//! Reading back: raw records, calendar aggregates and profiles, built on
//! the primitives of [`Db`] so that both backends answer alike.

use jiff::tz::TimeZone;
use senml::{Record, Text};

use crate::calendar::{self, Every, HOUR, ProfileBy};
use crate::chunk::{Point, TIME_LIMIT, day_of, decode_hours, decode_points};
use crate::codec::decode_hour_slots;
use crate::db::{Db, value_of};
use crate::error::{Error, Result};
use crate::ingest::corrupt;
use crate::model::StreamInfo;
use crate::rollup::{Function, Partial};

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

/// Visits the points of a stream in `[from, to)`, oldest first, until
/// `visit` returns false.
pub(crate) fn scan_points(
    db: &mut dyn Db,
    stream: i64,
    from: i64,
    to: i64,
    mut visit: impl FnMut(Point) -> bool,
) -> Result<()> {
    let (from, to) = (from.max(-TIME_LIMIT), to.min(TIME_LIMIT));
    if from >= to {
        return Ok(());
    }
    db.chunks(stream, day_of(from), day_of(to - 1), &mut |day, data| {
        let mut more = true;
        decode_points(data, |p| {
            if more && p.time >= from && p.time < to {
                more = visit(p);
            }
        })
        .map_err(|e| corrupt(stream, day, e))?;
        Ok(more)
    })
}

/// Visits the records of each stream in `[from, to)`, stream by stream,
/// oldest first, at most `limit` per stream, until `visit` returns false.
/// `visit` gets the index of the record's stream in `streams`.
pub(crate) fn scan_records(
    db: &mut dyn Db,
    streams: &[(i64, StreamInfo)],
    from: i64,
    to: i64,
    limit: u64,
    visit: &mut dyn FnMut(usize, Record) -> bool,
) -> Result<()> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    for (index, (id, info)) in streams.iter().enumerate() {
        let name = Text::from(info.name.as_str());
        let unit: Option<Text> = info.unit.as_deref().map(Into::into);
        let (mut taken, mut more) = (0, true);
        if limit > 0 {
            scan_points(db, *id, from, to, |p| {
                let value = value_of(info.kind, p.value, p.payload.as_deref());
                let record = Record::new(name.clone(), p.time, value)
                    .with_unit(unit.clone())
                    .with_sum(p.sum)
                    .with_update_time(p.update_time);
                taken += 1;
                more = visit(index, record);
                more && taken < limit
            })?;
        }
        if !more {
            break;
        }
    }
    Ok(())
}

/// The records of each stream in `[from, to)`, oldest first, at most
/// `limit` per stream, and refused beyond `max_total` in all.
pub(crate) fn records(
    db: &mut dyn Db,
    streams: &[(i64, StreamInfo)],
    from: i64,
    to: i64,
    limit: u64,
    max_total: usize,
) -> Result<Vec<Vec<Record>>> {
    let mut out: Vec<Vec<Record>> = streams.iter().map(|_| Vec::new()).collect();
    let mut total = 0;
    scan_records(db, streams, from, to, limit, &mut |stream, record| {
        out[stream].push(record);
        total += 1;
        total <= max_total
    })?;
    if total > max_total {
        return Err(Error::Invalid(format!(
            "the answer would hold more than {max_total} records: ask for a shorter time range, \
             fewer streams, or a limit per stream"
        )));
    }
    Ok(out)
}

/// The hourly partials of a stream in `[from, to)` (hour-aligned), oldest
/// first, as (hour, partial).
fn hourly(
    db: &mut dyn Db,
    stream: i64,
    from: i64,
    to: i64,
    mut visit: impl FnMut(i64, Partial),
) -> Result<()> {
    if from >= to {
        return Ok(());
    }
    db.hours(stream, day_of(from), day_of(to - 1), &mut |day, data| {
        decode_hours(day, data, |hour, p| {
            if hour >= from && hour < to {
                visit(hour, p);
            }
        })
        .map_err(|e| corrupt(stream, day, e))
    })
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

/// Where an aggregate reads from: the coarsest rollup that fits the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Daily partials (buckets of whole days of the node's time zone).
    Days,
    /// Hourly partials (buckets that start on UTC hours).
    Hours,
    /// The points themselves.
    Points,
}

fn aggregate_source(bounds: &[i64], every: Every, tz: &TimeZone, node_tz: &TimeZone) -> Source {
    let same_zone = tz.iana_name().is_some() && tz.iana_name() == node_tz.iana_name();
    if every.is_calendar() && same_zone {
        Source::Days
    } else if bounds.iter().all(|b| b % HOUR == 0) {
        Source::Hours
    } else {
        Source::Points
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
        let mut rows: Vec<(i64, Partial)> = Vec::new();
        match source {
            Source::Days => rows = db.days(id, start, end)?,
            Source::Hours => hourly(db, id, start, end, |hour, p| rows.push((hour, p)))?,
            Source::Points => scan_points(db, id, start, end, |p| {
                if let Some(v) = p.value {
                    rows.push((p.time, Partial::of(p.time, v)));
                }
                true
            })?,
        }
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
    let hourly_fits = from % HOUR == 0
        && to % HOUR == 0
        && pieces.iter().all(|p| p.0 % HOUR == 0 && p.2 % HOUR == 0);
    let ids: Vec<i64> = streams.iter().map(|(id, _)| *id).collect();
    let mut slots: Vec<Vec<Option<SlotAggregate>>> = vec![vec![None; by.slots()]; ids.len()];
    // Offsets apply piece by piece; each stream's rows come in time order.
    let offset_at = |time: i64, piece: &mut usize| {
        while *piece + 1 < pieces.len() && time >= pieces[*piece].1 {
            *piece += 1;
        }
        pieces[*piece].2
    };
    let add = |slot: &mut Option<SlotAggregate>, count: u64, sum: f64, min: f64, max: f64| {
        *slot = Some(match *slot {
            None => SlotAggregate {
                count,
                sum,
                min,
                max,
            },
            Some(s) => SlotAggregate {
                count: s.count + count,
                sum: s.sum + sum,
                min: s.min.min(min),
                max: s.max.max(max),
            },
        });
    };
    if hourly_fits {
        // Every stream's hours in one read where a round trip costs.
        let mut piece = vec![0; ids.len()];
        let (first_day, last_day) = (day_of(from), day_of(to - 1));
        db.hours_of_streams(&ids, first_day, last_day, &mut |i, day, data| {
            decode_hour_slots(day, data, |hour, p| {
                if hour >= from && hour < to {
                    let slot = by.slot(hour, offset_at(hour, &mut piece[i]));
                    add(&mut slots[i][slot], p.count, p.sum, p.min, p.max);
                }
            })
            .map_err(|e| corrupt(ids[i], day, e))
        })?;
    } else {
        for (i, &id) in ids.iter().enumerate() {
            let mut piece = 0;
            let stream_slots = &mut slots[i];
            scan_points(db, id, from, to, |p| {
                if let Some(v) = p.value {
                    let slot = by.slot(p.time, offset_at(p.time, &mut piece));
                    add(&mut stream_slots[slot], 1, v, v, v);
                }
                true
            })?;
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
