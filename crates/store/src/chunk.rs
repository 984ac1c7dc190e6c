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
//! The blobs themselves are encoded by [`crate::codec`] (version 2:
//! delta-of-delta times, scaled-integer or XOR numbers, a few bytes a
//! point).

use crate::calendar::HOUR;
pub use crate::codec::{Point, decode_hours, decode_points, encode_hours, encode_points};
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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
        assert!(
            decode_points(&[3], |_| {})
                .unwrap_err()
                .0
                .contains("version")
        );
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
