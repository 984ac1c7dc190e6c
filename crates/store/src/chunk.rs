//! How points and hourly rollups are laid out on disk: rows per stream and
//! UTC day, holding that day's points (*chunks*) or that day's hourly
//! partials, each encoded as a small blob. A year of 10-minute points is 365
//! rows, not 52,560: ingest and reads touch one B-tree entry per day.
//!
//! A day of more than [`CHUNK_POINTS`] points is split into parts, each
//! keyed by the start of its time range: the day itself for the first, its
//! first point's time for the others. A commit that adds a point to a day
//! of a point a second then rewrites one chunk of 4 KB, not 1.4 MB.
//! Pure.
//!
//! Chunk blob, version 1: the byte 1, then for each point in time order:
//! flags (1 value, 2 payload, 4 sum, 8 update time), time (i64 LE, µs),
//! then the fields the flags name: value f64, payload (u32 LE length and
//! bytes), sum f64, update time f64.
//!
//! Hours blob, version 1: the byte 1, then for each hour with points: the
//! hour of the day (u8), count (u32), sum, min, max (f64), first time (i64),
//! first value (f64), last time (i64), last value (f64); all LE.

use std::sync::Arc;

use crate::calendar::HOUR;
use crate::rollup::Partial;

/// µs in a day.
pub const DAY: i64 = 24 * HOUR;

/// Most points a chunk holds (about 4.4 KB of numbers: one page of the
/// store, with room to spare).
pub const CHUNK_POINTS: usize = 256;

/// Splits the points of the UTC day `day` (sorted by time) into chunks of
/// at most [`CHUNK_POINTS`]: (part, points), the first keyed `first_part`
/// (the day, unless only the day's later chunks are rewritten), the others
/// by their first point's time.
pub fn parts_of(first_part: i64, points: &[Point]) -> Vec<(i64, &[Point])> {
    points
        .chunks(CHUNK_POINTS)
        .enumerate()
        .map(|(i, part)| (if i == 0 { first_part } else { part[0].time }, part))
        .collect()
}

/// Times the store accepts, so that day arithmetic cannot overflow
/// (±146,000 years).
pub const TIME_LIMIT: i64 = 1 << 62;

/// Start (µs) of the UTC day of `time`.
pub fn day_of(time: i64) -> i64 {
    time.clamp(-TIME_LIMIT, TIME_LIMIT).div_euclid(DAY) * DAY
}

/// A stored point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// µs since the epoch.
    pub time: i64,
    /// Number, or boolean as 0/1.
    pub value: Option<f64>,
    /// String (UTF-8) or data bytes.
    pub payload: Option<Arc<[u8]>>,
    /// SenML sum.
    pub sum: Option<f64>,
    /// SenML update time.
    pub update_time: Option<f64>,
}

const VALUE: u8 = 1;
const PAYLOAD: u8 = 2;
const SUM: u8 = 4;
const UPDATE_TIME: u8 = 8;

/// Encodes points sorted by time.
pub fn encode_points<'a>(points: impl IntoIterator<Item = &'a Point>) -> Vec<u8> {
    let mut out = vec![1u8];
    for p in points {
        let mut flags = 0;
        for (present, flag) in [
            (p.value.is_some(), VALUE),
            (p.payload.is_some(), PAYLOAD),
            (p.sum.is_some(), SUM),
            (p.update_time.is_some(), UPDATE_TIME),
        ] {
            if present {
                flags |= flag;
            }
        }
        out.push(flags);
        out.extend_from_slice(&p.time.to_le_bytes());
        if let Some(v) = p.value {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(payload) = &p.payload {
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            out.extend_from_slice(payload);
        }
        for v in [p.sum, p.update_time].into_iter().flatten() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Reads little-endian fields off a blob.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or("the blob ends early")?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(self.take()?))
    }
    fn version(&mut self) -> Result<(), String> {
        match self.u8()? {
            1 => Ok(()),
            v => Err(format!("unknown blob version {v}")),
        }
    }
}

/// Decodes a chunk, calling `visit` for each point in time order.
pub fn decode_points(data: &[u8], mut visit: impl FnMut(Point)) -> Result<(), String> {
    let mut r = Reader(data);
    r.version()?;
    while !r.0.is_empty() {
        let flags = r.u8()?;
        let time = r.i64()?;
        let value = (flags & VALUE != 0).then(|| r.f64()).transpose()?;
        let payload = if flags & PAYLOAD != 0 {
            let len = r.u32()? as usize;
            if r.0.len() < len {
                return Err("the blob ends early".into());
            }
            let (bytes, rest) = r.0.split_at(len);
            r.0 = rest;
            Some(Arc::from(bytes))
        } else {
            None
        };
        let sum = (flags & SUM != 0).then(|| r.f64()).transpose()?;
        let update_time = (flags & UPDATE_TIME != 0).then(|| r.f64()).transpose()?;
        visit(Point {
            time,
            value,
            payload,
            sum,
            update_time,
        });
    }
    Ok(())
}

/// Merges `new` points into `old` ones (both sorted, one per time): a new
/// point replaces an old one at the same time. Returns the merged points and
/// how many were replaced.
pub fn merge(old: Vec<Point>, new: Vec<Point>) -> (Vec<Point>, usize) {
    if old.is_empty() {
        return (new, 0);
    }
    let mut out = Vec::with_capacity(old.len() + new.len());
    let mut replaced = 0;
    let mut old = old.into_iter().peekable();
    for p in new {
        while let Some(o) = old.next_if(|o| o.time < p.time) {
            out.push(o);
        }
        if old.next_if(|o| o.time == p.time).is_some() {
            replaced += 1;
        }
        out.push(p);
    }
    out.extend(old);
    (out, replaced)
}

/// The hourly partials of a day's points (only hours with numeric points).
pub fn hours_of(points: &[Point]) -> Vec<(i64, Partial)> {
    let mut hours = Vec::new();
    add_to_hours(&mut hours, points);
    hours
}

/// Adds points (sorted by time, each later than every point `hours` was
/// made of) to a day's hourly partials.
pub fn add_to_hours(hours: &mut Vec<(i64, Partial)>, points: &[Point]) {
    for p in points {
        let Some(v) = p.value else { continue };
        let hour = p.time.div_euclid(HOUR) * HOUR;
        match hours.last_mut() {
            Some((h, partial)) if *h == hour => partial.add(p.time, v),
            _ => hours.push((hour, Partial::of(p.time, v))),
        }
    }
}

/// Encodes the hourly partials of the UTC day starting at `day`.
pub fn encode_hours(day: i64, hours: &[(i64, Partial)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + hours.len() * 61);
    out.push(1u8);
    for (hour, p) in hours {
        out.push(((hour - day) / HOUR) as u8);
        out.extend_from_slice(&(p.count.min(u64::from(u32::MAX)) as u32).to_le_bytes());
        for v in [p.sum, p.min, p.max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&p.first.0.to_le_bytes());
        out.extend_from_slice(&p.first.1.to_le_bytes());
        out.extend_from_slice(&p.last.0.to_le_bytes());
        out.extend_from_slice(&p.last.1.to_le_bytes());
    }
    out
}

/// Decodes the hourly partials of the UTC day starting at `day`.
pub fn decode_hours(
    day: i64,
    data: &[u8],
    mut visit: impl FnMut(i64, Partial),
) -> Result<(), String> {
    let mut r = Reader(data);
    r.version()?;
    while !r.0.is_empty() {
        let hour = day + i64::from(r.u8()?) * HOUR;
        let count = u64::from(r.u32()?);
        let (sum, min, max) = (r.f64()?, r.f64()?, r.f64()?);
        let first = (r.i64()?, r.f64()?);
        let last = (r.i64()?, r.f64()?);
        visit(
            hour,
            Partial {
                count,
                sum,
                min,
                max,
                first,
                last,
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(time: i64, value: Option<f64>) -> Point {
        Point {
            time,
            value,
            payload: None,
            sum: None,
            update_time: None,
        }
    }

    #[test]
    fn points_round_trip_with_every_field() {
        let points = vec![
            point(-5, Some(1.5)),
            Point {
                time: 7,
                value: None,
                payload: Some(Arc::from(&b"on"[..])),
                sum: Some(2.0),
                update_time: Some(60.0),
            },
            point(9, None),
        ];
        let mut back = Vec::new();
        decode_points(&encode_points(&points), |p| back.push(p)).unwrap();
        assert_eq!(back, points);
        assert!(decode_points(&encode_points(&points)[..20], |_| {}).is_err());
        assert!(decode_points(&[2], |_| {}).unwrap_err().contains("version"));
    }

    #[test]
    fn merging_replaces_equal_times_and_keeps_order() {
        let old = vec![
            point(1, Some(1.0)),
            point(3, Some(3.0)),
            point(5, Some(5.0)),
        ];
        let new = [
            point(0, Some(0.0)),
            point(3, Some(30.0)),
            point(6, Some(6.0)),
        ];
        let (merged, replaced) = merge(old, new.to_vec());
        let got: Vec<(i64, f64)> = merged.iter().map(|p| (p.time, p.value.unwrap())).collect();
        assert_eq!(got, [(0, 0.0), (1, 1.0), (3, 30.0), (5, 5.0), (6, 6.0)]);
        assert_eq!(replaced, 1);
    }

    #[test]
    fn hours_round_trip_and_skip_non_numeric_points() {
        let day = 19_723 * DAY;
        let points = [
            point(day + 10, Some(2.0)),
            point(day + 20, None),
            point(day + 20, Some(4.0)),
            point(day + 5 * HOUR, Some(-1.0)),
        ];
        let hours = hours_of(&points);
        assert_eq!(hours.len(), 2);
        assert_eq!(
            (hours[0].1.count, hours[0].1.sum, hours[1].0),
            (2, 6.0, day + 5 * HOUR)
        );
        let mut back = Vec::new();
        decode_hours(day, &encode_hours(day, &hours), |h, p| back.push((h, p))).unwrap();
        assert_eq!(back, hours);
    }

    #[test]
    fn days_floor_even_before_1970_and_at_the_limits() {
        assert_eq!(day_of(-1), -DAY);
        assert_eq!(day_of(DAY + 1), DAY);
        assert!(day_of(i64::MIN) <= -TIME_LIMIT && day_of(i64::MAX) >= TIME_LIMIT - DAY);
    }
}
