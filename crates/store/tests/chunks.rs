//! A day of many points is stored in chunks of bounded size, whatever the
//! order its points come in: what is read back, counted and aggregated is
//! what a plain map of the points says. On every backend.

mod common;

use std::collections::BTreeMap;

use senml::{Format, Value, resolve_slice_indexed};
use store::{Every, Store, Time, TimeZone};

const STREAM: &str = "urn:dev:x:1_power";
/// 2024-01-01T00:00:00Z, in seconds.
const T0: i64 = 1_704_067_200;

fn ingest(store: &Store, points: &[(i64, f64)]) {
    let records: Vec<String> = points
        .iter()
        .map(|(t, v)| format!(r#"{{"n":"{STREAM}","t":{t},"v":{v}}}"#))
        .collect();
    let json = format!("[{}]", records.join(","));
    let records = resolve_slice_indexed(json.as_bytes(), Format::Json, 0.0).unwrap();
    store.ingest(&records, None).unwrap();
}

/// Every point of the stream, as (seconds, value).
fn stored(store: &Store) -> Vec<(i64, f64)> {
    let all = store
        .records(
            &[STREAM.to_owned()],
            Time::from_micros(0),
            Time::from_micros(i64::MAX / 2),
            u64::MAX,
            usize::MAX,
        )
        .unwrap();
    all[0]
        .1
        .iter()
        .map(|r| match r.value {
            Some(Value::Number(v)) => (r.time / 1_000_000, v),
            ref other => panic!("not a number: {other:?}"),
        })
        .collect()
}

/// Hourly (count, sum, min, max, first, last) of the points, by hour.
fn hourly(points: &BTreeMap<i64, f64>) -> BTreeMap<i64, (u64, f64, f64, f64, f64, f64)> {
    let mut hours: BTreeMap<i64, (u64, f64, f64, f64, f64, f64)> = BTreeMap::new();
    for (&t, &v) in points {
        let h = hours
            .entry(t.div_euclid(3600) * 3600)
            .or_insert((0, 0.0, v, v, v, v));
        h.0 += 1;
        h.1 += v;
        h.2 = h.2.min(v);
        h.3 = h.3.max(v);
        h.5 = v;
    }
    hours
}

fn check(store: &Store, model: &BTreeMap<i64, f64>, when: &str) {
    let expected: Vec<(i64, f64)> = model.iter().map(|(&t, &v)| (t, v)).collect();
    assert_eq!(stored(store), expected, "{when}: the points");
    assert_eq!(
        store.streams(None).unwrap()[0].count,
        model.len() as u64,
        "{when}: the count"
    );
    let aggregate = store
        .aggregate(
            &[STREAM.to_owned()],
            Time::from_micros(T0 * 1_000_000),
            Time::from_micros((T0 + 2 * 86_400) * 1_000_000),
            Every::Minutes(60),
            &TimeZone::UTC,
        )
        .unwrap();
    let got: BTreeMap<i64, (u64, f64, f64, f64, f64, f64)> = aggregate.series[0]
        .1
        .iter()
        .zip(&aggregate.bounds)
        .filter_map(|(p, &start)| {
            p.map(|p| {
                let hour = start / 1_000_000;
                (hour, (p.count, p.sum, p.min, p.max, p.first.1, p.last.1))
            })
        })
        .collect();
    assert_eq!(got, hourly(model), "{when}: the hours");
}

#[test]
fn a_day_of_many_points_reads_back_exactly_whatever_order_they_came_in() {
    for store in common::stores("chunks") {
        let mut model = BTreeMap::new();
        // Live: 2,000 points 10 s apart, one commit each (eight chunks' worth).
        for i in 0..2_000 {
            let point = (T0 + 10 * i, (i % 97) as f64);
            ingest(&store, &[point]);
            model.insert(point.0, point.1);
        }
        check(&store, &model, "appended one by one");

        // Late: points between the first ones, and some replaced.
        let late: Vec<(i64, f64)> = (0..600)
            .map(|i| (T0 + 10 * i + 5, 1000.0 + i as f64))
            .chain((700..760).map(|i| (T0 + 10 * i, -1.0)))
            .collect();
        ingest(&store, &late);
        model.extend(late.iter().copied());
        check(&store, &model, "late points among them");

        // Live again, in packs, then into the next day.
        for start in (2_000..3_000).step_by(250) {
            let pack: Vec<(i64, f64)> = (start..start + 250)
                .map(|i| (T0 + 10 * i, i as f64 / 4.0))
                .collect();
            ingest(&store, &pack);
            model.extend(pack.iter().copied());
        }
        let next_day: Vec<(i64, f64)> = (0..300)
            .map(|i| (T0 + 86_400 - 1_500 + 10 * i, 7.0))
            .collect();
        ingest(&store, &next_day);
        model.extend(next_day.iter().copied());
        check(&store, &model, "appended in packs, across midnight");
    }
}

/// On SQLite, where the rows can be looked at: no chunk holds more than
/// 256 points, and a point appended to a full day rewrites one small row.
#[test]
fn a_chunk_holds_at_most_256_points() {
    let dir = std::env::temp_dir().join(format!("fedwatt-store-bounded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(None, &dir, "UTC").unwrap();
    let day: Vec<(i64, f64)> = (0..8_640).map(|i| (T0 + 10 * i, 1.0)).collect();
    ingest(&store, &day);
    let db = rusqlite::Connection::open(dir.join("fedwatt.sqlite")).unwrap();
    let (chunks, largest, total): (i64, i64, i64) = db
        .query_row(
            "SELECT count(*), max(count), sum(count) FROM chunks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((chunks, largest, total), (34, 256, 8_640));
    let last_blob = || -> usize {
        db.query_row(
            "SELECT length(data) FROM chunks ORDER BY day DESC, part DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = last_blob();
    ingest(&store, &[(T0 + 86_399, 2.0)]);
    let grown = last_blob() - before;
    assert!(
        (1..=8).contains(&grown),
        "one point more in the last chunk: {grown} bytes"
    );
}
