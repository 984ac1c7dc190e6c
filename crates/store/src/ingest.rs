//! The one door for data: a resolved pack is checked whole, grouped by
//! stream, then written in one transaction by [`apply`], or refused whole.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use jiff::tz::TimeZone;
use senml::{Record, Value};

use crate::calendar::HOUR;
use crate::db::{Db, Rollup};
use crate::error::{Result, refused};
use crate::model::ValueKind;
use crate::rollup::Partial;

/// A point as the store writes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PointRow {
    /// Index of its record in the pack, for errors.
    pub index: usize,
    pub time: i64,
    /// The number (booleans as 0/1); `None` for strings, data, or a record
    /// with a sum only.
    pub value: Option<f64>,
    /// String (UTF-8) or data bytes.
    pub payload: Option<Arc<[u8]>>,
    pub sum: Option<f64>,
    pub update_time: Option<f64>,
}

/// The points of one stream in a pack, sorted by time, one per time.
#[derive(Debug)]
pub(crate) struct StreamBatch {
    pub name: Arc<str>,
    pub unit: Option<Arc<str>>,
    pub kind: ValueKind,
    /// Index of the stream's first record in the pack.
    pub first_index: usize,
    pub points: Vec<PointRow>,
}

/// Groups the records of a pack (in input order, with their index) by
/// stream, checking what can be checked without the database: one kind of
/// value and compatible units per stream, no two points at the same time.
pub(crate) fn prepare(records: &[(usize, Record)]) -> Result<Vec<StreamBatch>> {
    let mut by_name: HashMap<Arc<str>, usize> = HashMap::new();
    let mut batches: Vec<StreamBatch> = Vec::new();
    for (index, record) in records {
        let index = *index;
        let kind = record
            .value
            .as_ref()
            .map_or(ValueKind::Number, ValueKind::of);
        let slot = *by_name.entry(record.name.clone()).or_insert_with(|| {
            batches.push(StreamBatch {
                name: record.name.clone(),
                unit: record.unit.clone(),
                kind,
                first_index: index,
                points: Vec::new(),
            });
            batches.len() - 1
        });
        let batch = &mut batches[slot];
        if kind != batch.kind {
            return Err(refused(
                index,
                kind.label(),
                "stream_kind",
                format!(
                    "stream {} holds {} (record {}), not {kind}",
                    batch.name, batch.kind, batch.first_index
                ),
            ));
        }
        let mut point = point_of(index, record);
        if record.unit != batch.unit {
            convert_unit(
                &mut point,
                record.unit.as_deref(),
                batch.unit.as_deref(),
                &batch.name,
            )?;
        }
        batch.points.push(point);
    }
    for batch in &mut batches {
        batch.points.sort_by_key(|p| p.time);
        if let Some(w) = batch.points.windows(2).find(|w| w[0].time == w[1].time) {
            let (a, b) = (w[0].index.min(w[1].index), w[0].index.max(w[1].index));
            return Err(refused(
                b,
                "t",
                "duplicate_time",
                format!(
                    "stream {} has a point at this time already (record {a})",
                    batch.name
                ),
            ));
        }
    }
    Ok(batches)
}

fn point_of(index: usize, record: &Record) -> PointRow {
    let (value, payload) = match &record.value {
        Some(Value::Number(v)) => (Some(*v), None),
        Some(Value::Bool(b)) => (Some(f64::from(u8::from(*b))), None),
        Some(Value::String(s)) => (None, Some(Arc::<[u8]>::from(s.clone()))),
        Some(Value::Data(d)) => (None, Some(d.clone())),
        None => (None, None),
    };
    PointRow {
        index,
        time: record.time,
        value,
        payload,
        sum: record.sum,
        update_time: record.update_time,
    }
}

/// Expresses a point's number and sum in the stream's unit (`kW` → `W`), or
/// refuses it when the units measure different things.
fn convert_unit(
    point: &mut PointRow,
    from: Option<&str>,
    to: Option<&str>,
    stream: &str,
) -> Result<()> {
    let convert = |v: f64| match (from, to) {
        (Some(from), Some(to)) => senml::units::convert(v, from, to),
        _ => None,
    };
    let fail = || {
        refused(
            point.index,
            "u",
            "unit",
            format!(
                "stream {stream} is in {}, and {} cannot be converted to it",
                to.unwrap_or("no unit"),
                from.unwrap_or("no unit")
            ),
        )
    };
    let value = point
        .value
        .map(|v| convert(v).ok_or_else(fail))
        .transpose()?;
    let sum = point.sum.map(|v| convert(v).ok_or_else(fail)).transpose()?;
    if point.value.is_none() && point.sum.is_none() {
        return Err(fail());
    }
    point.value = value;
    point.sum = sum;
    Ok(())
}

/// Writes prepared batches inside the caller's transaction. Every check
/// against the database is made before the first write, so that a refusal
/// leaves nothing to roll back but the transaction itself.
pub(crate) fn apply(
    db: &mut dyn Db,
    batches: &mut [StreamBatch],
    owner: Option<&str>,
    node_tz: &TimeZone,
    now: i64,
) -> Result<u64> {
    // One lock order for every transaction, so that two packs touching the
    // same streams cannot deadlock.
    batches.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ids = Vec::with_capacity(batches.len());
    for batch in batches.iter_mut() {
        let head = match db.find_stream(&batch.name)? {
            Some(head) => head,
            None => db.create_stream(&batch.name, batch.unit.as_deref(), batch.kind, owner, now)?,
        };
        if head.kind != batch.kind {
            return Err(refused(
                batch.first_index,
                batch.kind.label(),
                "stream_kind",
                format!(
                    "stream {} holds {}, not {}",
                    batch.name, head.kind, batch.kind
                ),
            ));
        }
        if head.unit.as_deref() != batch.unit.as_deref() {
            for point in &mut batch.points {
                convert_unit(
                    point,
                    batch.unit.as_deref(),
                    head.unit.as_deref(),
                    &batch.name,
                )?;
            }
            batch.unit = head.unit.as_deref().map(Into::into);
        }
        ids.push(head.id);
    }
    let mut written = 0;
    for (batch, id) in batches.iter().zip(ids) {
        let replaced = db.write_points(id, &batch.points)?;
        let added = batch.points.len() as u64 - replaced.len() as u64;
        let first = batch.points.first().map_or(0, |p| p.time);
        let last = batch.points.last().map_or(0, |p| p.time);
        db.add_stream_stats(id, added, first, last)?;
        if batch.kind.is_aggregated() {
            update_rollups(db, id, &batch.points, &replaced, node_tz)?;
        }
        written += batch.points.len() as u64;
    }
    Ok(written)
}

/// Brings the hourly and daily rollups of the hours the points fall in up to
/// date: merged in when every point is new, recomputed from the points for
/// an hour where one replaced another.
fn update_rollups(
    db: &mut dyn Db,
    stream: i64,
    points: &[PointRow],
    replaced: &[i64],
    tz: &TimeZone,
) -> Result<()> {
    let dirty: BTreeSet<i64> = replaced.iter().map(|t| hour_of(*t)).collect();
    let mut merged: Vec<(i64, Partial)> = Vec::new();
    let mut hours: Vec<i64> = Vec::new();
    for p in points {
        let hour = hour_of(p.time);
        if hours.last() != Some(&hour) {
            hours.push(hour);
        }
        let Some(v) = p.value else { continue };
        if dirty.contains(&hour) {
            continue;
        }
        match merged.last_mut() {
            Some((h, partial)) if *h == hour => partial.add(p.time, v),
            _ => merged.push((hour, Partial::of(p.time, v))),
        }
    }
    db.merge_rollups(Rollup::Hour, stream, &merged)?;
    let mut recomputed = Vec::with_capacity(dirty.len());
    for &hour in &dirty {
        recomputed.push((hour, db.point_partial(stream, hour, hour + HOUR)?));
    }
    db.put_rollups(Rollup::Hour, stream, &recomputed)?;

    // Days of the node's time zone that these hours fall in.
    let mut days: Vec<(i64, i64)> = Vec::new();
    for hour in hours {
        if days
            .last()
            .is_some_and(|&(start, end)| hour >= start && hour < end)
        {
            continue;
        }
        days.push(crate::calendar::day_around(hour, tz).map_err(crate::Error::Invalid)?);
    }
    let mut rows = Vec::with_capacity(days.len());
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let aligned = days.iter().all(|&(s, e)| s % HOUR == 0 && e % HOUR == 0);
        let hourly = if aligned {
            db.rollups(Rollup::Hour, stream, first.0, last.1)?
        } else {
            Vec::new()
        };
        let mut next = 0;
        for &(start, end) in &days {
            let partial = if aligned {
                while next < hourly.len() && hourly[next].0 < start {
                    next += 1;
                }
                let mut day: Option<Partial> = None;
                while next < hourly.len() && hourly[next].0 < end {
                    Partial::merge_into(&mut day, &hourly[next].1);
                    next += 1;
                }
                day
            } else {
                db.point_partial(stream, start, end)?
            };
            rows.push((start, partial));
        }
    }
    db.put_rollups(Rollup::Day, stream, &rows)
}

/// Start (µs) of the UTC hour of `time`.
pub(crate) fn hour_of(time: i64) -> i64 {
    time.div_euclid(HOUR) * HOUR
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, time_s: i64, value: Value, unit: Option<&str>) -> Record {
        Record {
            name: name.into(),
            time: time_s * 1_000_000,
            value: Some(value),
            sum: None,
            unit: unit.map(Into::into),
            update_time: None,
        }
    }

    #[test]
    fn records_group_by_stream_in_time_order() {
        let pack = [
            (0, record("a", 20, Value::Number(2.0), Some("W"))),
            (1, record("b", 10, Value::Bool(true), None)),
            (2, record("a", 10, Value::Number(1.0), Some("W"))),
        ];
        let batches = prepare(&pack).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(
            batches[0]
                .points
                .iter()
                .map(|p| p.index)
                .collect::<Vec<_>>(),
            [2, 0]
        );
        assert_eq!(batches[1].kind, ValueKind::Boolean);
        assert_eq!(batches[1].points[0].value, Some(1.0));
    }

    #[test]
    fn a_second_point_at_one_time_is_refused_naming_both_records() {
        let pack = [
            (0, record("a", 10, Value::Number(1.0), None)),
            (1, record("b", 10, Value::Number(1.0), None)),
            (3, record("a", 10, Value::Number(2.0), None)),
        ];
        let e = prepare(&pack).unwrap_err().to_string();
        assert_eq!(
            e,
            "record 3, field \"t\": stream a has a point at this time already (record 0)"
        );
    }

    #[test]
    fn units_convert_within_a_stream_or_the_pack_is_refused() {
        let pack = [
            (0, record("a", 10, Value::Number(1500.0), Some("W"))),
            (1, record("a", 20, Value::Number(2.0), Some("kW"))),
        ];
        assert_eq!(prepare(&pack).unwrap()[0].points[1].value, Some(2000.0));
        let pack = [
            (0, record("a", 10, Value::Number(1.0), Some("W"))),
            (1, record("a", 20, Value::Number(2.0), Some("Cel"))),
        ];
        let e = prepare(&pack).unwrap_err().to_string();
        assert!(
            e.starts_with("record 1, field \"u\": stream a is in W"),
            "{e}"
        );
    }

    #[test]
    fn one_stream_holds_one_kind_of_value() {
        let pack = [
            (0, record("a", 10, Value::Number(1.0), None)),
            (1, record("a", 20, Value::String("on".into()), None)),
        ];
        let e = prepare(&pack).unwrap_err().to_string();
        assert_eq!(
            e,
            "record 1, field \"vs\": stream a holds numbers (record 0), not strings"
        );
    }
}
