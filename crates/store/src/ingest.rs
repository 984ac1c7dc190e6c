//! The one door for data: a resolved pack is checked whole, grouped by
//! stream, then written in one transaction by [`apply`], or refused whole.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::tz::TimeZone;
use senml::{Record, Text, Value};

use crate::calendar::{HOUR, day_around};
use crate::chunk::{
    DAY, Point, add_to_hours, day_of, decode_hours, decode_points, encode_hours, encode_points,
    hours_of, merge, parts_of,
};
use crate::db::{ChunkRow, ChunkWrite, Db, Param, day_chunks};
use crate::error::{Result, refused};
use crate::federation;
use crate::model::ValueKind;
use crate::rollup::Partial;

/// A point of a pack, with the index of its record for errors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PointRow {
    pub index: usize,
    pub point: Point,
}

/// The points of one stream in a pack, sorted by time, one per time.
#[derive(Debug)]
pub(crate) struct StreamBatch {
    pub name: Text,
    pub unit: Option<Text>,
    pub kind: ValueKind,
    /// Index of the stream's first record in the pack.
    pub first_index: usize,
    pub points: Vec<PointRow>,
}

/// Groups the records of a pack (in input order, with their index) by
/// stream, checking what can be checked without the database: one kind of
/// value and compatible units per stream, no two points at the same time.
pub(crate) fn prepare(records: &[(usize, Record)]) -> Result<Vec<StreamBatch>> {
    let mut by_name: HashMap<Text, usize> = HashMap::new();
    let mut batches: Vec<StreamBatch> = Vec::new();
    // A pack's records come stream by stream, their names shared by the
    // resolver: the last record's stream, compared without hashing.
    let mut last: Option<(Text, usize)> = None;
    for (index, record) in records {
        let index = *index;
        let kind = record
            .value
            .as_ref()
            .map_or(ValueKind::Number, ValueKind::of);
        let slot = match &last {
            Some((name, slot)) if *name == record.name => *slot,
            _ => {
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
                last = Some((record.name.clone(), slot));
                slot
            }
        };
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
        batch.points.sort_by_key(|p| p.point.time);
        if let Some(w) = batch
            .points
            .windows(2)
            .find(|w| w[0].point.time == w[1].point.time)
        {
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
        point: Point {
            time: record.time,
            value,
            payload,
            sum: record.sum(),
            update_time: record.update_time(),
        },
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
    let p = &point.point;
    let value = p.value.map(|v| convert(v).ok_or_else(fail)).transpose()?;
    let sum = p.sum.map(|v| convert(v).ok_or_else(fail)).transpose()?;
    if p.value.is_none() && p.sum.is_none() {
        return Err(fail());
    }
    point.point.value = value;
    point.point.sum = sum;
    Ok(())
}

/// What [`apply`] wrote.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Points written.
    pub written: u64,
    /// Pushes queued in the outbox for subscribers.
    pub queued: u64,
    /// The streams written, in the batches' order.
    pub streams: Vec<i64>,
}

/// Writes prepared batches inside the caller's transaction. Every check
/// against the database is made before the first write, so that a refusal
/// leaves nothing to roll back but the transaction itself.
///
/// `origin` is the peer the pack comes from (a bare JID), `None` for the
/// node's own data: a stream is written only by where it came from. The
/// node's own streams queue a push to each of their subscribers.
pub(crate) fn apply(
    db: &mut dyn Db,
    batches: &mut [StreamBatch],
    owner: Option<&str>,
    origin: Option<&str>,
    node_tz: &TimeZone,
    now: i64,
) -> Result<Applied> {
    // One lock order for every transaction, so that two packs touching the
    // same streams cannot deadlock.
    batches.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ids = Vec::with_capacity(batches.len());
    for batch in batches.iter_mut() {
        let head = match db.find_stream(&batch.name)? {
            Some(head) => head,
            None => {
                let mut head =
                    db.create_stream(&batch.name, batch.unit.as_deref(), batch.kind, owner, now)?;
                if head.origin.is_none() && origin.is_some() {
                    db.execute(
                        "UPDATE streams SET origin = $1 WHERE id = $2",
                        &[Param::Text(origin), Param::Int(Some(head.id))],
                    )?;
                    head.origin = origin.map(str::to_owned);
                }
                head
            }
        };
        if head.origin.as_deref() != origin {
            let whose = |o: Option<&str>| match o {
                Some(peer) => format!("received from {peer}"),
                None => "this node's own".to_owned(),
            };
            return Err(refused(
                batch.first_index,
                "n",
                "stream_origin",
                format!(
                    "stream {} is {}; it cannot be written as {}",
                    batch.name,
                    whose(head.origin.as_deref()),
                    whose(origin)
                ),
            ));
        }
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
    let mut applied = Applied::default();
    for (batch, id) in batches.iter().zip(ids) {
        db.lock_stream(id)?;
        let added = write_points(db, id, batch, node_tz)?;
        let first = batch.points.first().map_or(0, |p| p.point.time);
        let last = batch.points.last().map_or(0, |p| p.point.time);
        db.add_stream_stats(id, added, first, last)?;
        applied.written += batch.points.len() as u64;
        if origin.is_none() {
            // One push carries at most PUSH_RECORDS points, so that no
            // stanza outgrows what an XMPP server accepts.
            for part in batch.points.chunks(federation::PUSH_RECORDS) {
                let (from, to) = (part[0].point.time, part[part.len() - 1].point.time + 1);
                applied.queued += federation::enqueue_pushes(db, id, from, to, now)?;
            }
        }
        applied.streams.push(id);
    }
    Ok(applied)
}

/// Merges a stream's points into the chunks of their days, rewrites those
/// days' hourly partials, then the daily partials of the node's days they
/// fall in. Returns the number of points that were new (not replacements).
///
/// Points later than every point of their day, as live data comes, are
/// appended to the day's last chunk and added to its hours: a commit reads
/// and writes a bounded amount whatever the day holds. Points among the
/// day's existing ones make the whole day merged again.
fn write_points(db: &mut dyn Db, stream: i64, batch: &StreamBatch, tz: &TimeZone) -> Result<u64> {
    let runs: Vec<&[PointRow]> = batch
        .points
        .chunk_by(|a, b| day_of(a.point.time) == day_of(b.point.time))
        .collect();
    // Each day's chunk holding its first new point, and the later ones: one
    // read for the whole batch.
    let starts: Vec<(i64, i64)> = runs
        .iter()
        .map(|run| (day_of(run[0].point.time), run[0].point.time))
        .collect();
    if starts.is_empty() {
        return Ok(0);
    }
    let mut tails = db.chunks_from(stream, &starts)?.into_iter().peekable();
    // Per day: its chunks read, their points, and whether the new points
    // all come after them.
    let mut days = Vec::with_capacity(runs.len());
    for &(day, first_time) in &starts {
        let mut loaded = Vec::new();
        while let Some((_, chunk)) = tails.next_if(|(d, _)| *d == day) {
            loaded.push(chunk);
        }
        let mut old = decode_chunks(stream, day, &loaded)?;
        let appended = loaded.len() <= 1 && old.last().is_none_or(|p| p.time < first_time);
        if !appended {
            loaded = day_chunks(db, stream, day)?;
            old = decode_chunks(stream, day, &loaded)?;
        }
        days.push((loaded, old, appended));
    }
    // The stored hours that appended points add to (a new day has none).
    let mut stored_hours: Vec<(i64, Vec<(i64, Partial)>)> = Vec::new();
    let extended = starts
        .iter()
        .zip(&days)
        .filter(|(_, (loaded, _, appended))| *appended && !loaded.is_empty())
        .map(|(&(day, _), _)| day);
    if let (true, Some(from), Some(to)) = (
        batch.kind.is_aggregated(),
        extended.clone().min(),
        extended.max(),
    ) {
        db.hours(stream, from, to, &mut |day, data| {
            let mut partials = Vec::new();
            decode_hours(day, data, |hour, p| partials.push((hour, p)))
                .map_err(|e| corrupt(stream, day, e))?;
            stored_hours.push((day, partials));
            Ok(())
        })?;
    }
    let mut chunks = Vec::new();
    let mut hours = Vec::new();
    let mut touched = Vec::new();
    let mut added = 0;
    for ((run, &(day, _)), (loaded, old, appended)) in runs.iter().zip(&starts).zip(days) {
        let new: Vec<Point> = run.iter().map(|p| p.point.clone()).collect();
        let (old_points, new_points) = (old.len(), new.len());
        let (merged, replaced) = merge(old, new);
        added += (new_points - replaced) as u64;
        if batch.kind.is_aggregated() {
            let partials = if appended {
                let mut partials = stored_hours
                    .iter_mut()
                    .find(|(d, _)| *d == day)
                    .map(|(_, partials)| std::mem::take(partials))
                    .unwrap_or_default();
                add_to_hours(&mut partials, &merged[old_points..]);
                partials
            } else {
                hours_of(&merged)
            };
            hours.push((day, partials));
        }
        chunks.extend(rewrite_day(day, &loaded, &merged));
        touched.push(day);
    }
    db.put_chunks(stream, &chunks)?;
    if batch.kind.is_aggregated() {
        let rows: Vec<(i64, Option<Vec<u8>>)> = hours
            .iter()
            .map(|(day, partials)| {
                let encoded = (!partials.is_empty()).then(|| encode_hours(*day, partials));
                (*day, encoded)
            })
            .collect();
        db.put_hours(stream, &rows)?;
        update_days(db, stream, &touched, tz)?;
    }
    Ok(added)
}

/// The points of chunks of one day, in order.
pub(crate) fn decode_chunks(stream: i64, day: i64, chunks: &[ChunkRow]) -> Result<Vec<Point>> {
    let mut points = Vec::new();
    for (_, data) in chunks {
        decode_points(data, |p| points.push(p)).map_err(|e| corrupt(stream, day, e))?;
    }
    Ok(points)
}

/// The writes that replace the chunks `loaded` (a day's chunks from some
/// part to its last) with `points`, split anew: the chunks written, and the
/// deletion of the loaded parts that no longer exist.
pub(crate) fn rewrite_day(day: i64, loaded: &[ChunkRow], points: &[Point]) -> Vec<ChunkWrite> {
    let first_part = loaded.first().map_or(day, |(part, _)| *part);
    let parts = parts_of(first_part, points);
    let mut writes: Vec<ChunkWrite> = parts
        .iter()
        .map(|(part, points)| (day, *part, points.len() as u64, encode_points(points)))
        .collect();
    for (part, _) in loaded {
        if !parts.iter().any(|(p, _)| p == part) {
            writes.push((day, *part, 0, Vec::new()));
        }
    }
    writes
}

/// Recomputes the daily partials of the node's days that overlap the given
/// UTC days, from the hourly partials (or from the points, in a time zone
/// whose days do not start on a UTC hour).
pub(crate) fn update_days(
    db: &mut dyn Db,
    stream: i64,
    utc_days: &[i64],
    tz: &TimeZone,
) -> Result<()> {
    let mut days: Vec<(i64, i64)> = Vec::new();
    for &utc_day in utc_days {
        for instant in [utc_day, utc_day + DAY - 1] {
            let (start, end) = day_around(instant, tz).map_err(crate::Error::Invalid)?;
            if !days.contains(&(start, end)) {
                days.push((start, end));
            }
        }
    }
    days.sort_unstable();
    let (Some(&(from, _)), Some(&(_, to))) = (days.first(), days.last()) else {
        return Ok(());
    };
    let aligned = days.iter().all(|&(s, e)| s % HOUR == 0 && e % HOUR == 0);
    let mut partials: Vec<(i64, Partial)> = Vec::new();
    if aligned {
        db.hours(stream, day_of(from), day_of(to - 1), &mut |day, data| {
            decode_hours(day, data, |hour, p| partials.push((hour, p)))
                .map_err(|e| corrupt(stream, day, e))
        })?;
    } else {
        db.chunks(stream, day_of(from), day_of(to - 1), &mut |day, data| {
            decode_points(data, |p| {
                if let Some(v) = p.value {
                    partials.push((p.time, Partial::of(p.time, v)));
                }
            })
            .map_err(|e| corrupt(stream, day, e))?;
            Ok(true)
        })?;
    }
    let mut rows = Vec::with_capacity(days.len());
    let mut next = 0;
    for (start, end) in days {
        while next < partials.len() && partials[next].0 < start {
            next += 1;
        }
        let mut day: Option<Partial> = None;
        while next < partials.len() && partials[next].0 < end {
            Partial::merge_into(&mut day, &partials[next].1);
            next += 1;
        }
        rows.push((start, day));
    }
    db.put_days(stream, &rows)
}

/// The error for a blob the store cannot read back.
pub(crate) fn corrupt(stream: i64, day: i64, e: impl std::fmt::Display) -> crate::Error {
    crate::error::corrupt(format!("stored data of stream #{stream}, day {day}"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, time_s: i64, value: Value, unit: Option<&str>) -> Record {
        Record::new(name, time_s * 1_000_000, Some(value)).with_unit(unit.map(Into::into))
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
        assert_eq!(batches[1].points[0].point.value, Some(1.0));
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
        assert_eq!(
            prepare(&pack).unwrap()[0].points[1].point.value,
            Some(2000.0)
        );
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
