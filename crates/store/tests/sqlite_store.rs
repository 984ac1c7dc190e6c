//! The store used as a library, on an embedded SQLite file: what the API
//! and the CLI rely on, checked without HTTP.

use senml::{Format, resolve_slice_indexed};
use store::{Error, Every, ProfileBy, Store, Time};

fn store(test: &str) -> Store {
    Store::open(None, &fresh_dir(test), "Europe/Paris").unwrap()
}

/// An empty data directory of this test's own.
fn fresh_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fedwatt-store-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ingest(store: &Store, json: &str) -> Result<u64, Error> {
    let records = resolve_slice_indexed(json.as_bytes(), Format::Json, 0.0).unwrap();
    store.ingest(&records, Some("test"))
}

/// `n` points a minute apart on each of `streams`.
fn minutes(streams: &[&str], n: usize) -> String {
    let mut records = Vec::new();
    for s in streams {
        for i in 0..n {
            records.push(format!(
                r#"{{"n":"{s}","t":{},"v":{i}}}"#,
                1_704_067_200 + 60 * i
            ));
        }
    }
    format!("[{}]", records.join(","))
}

#[test]
fn an_answer_too_large_is_refused_rather_than_built() {
    let store = store("cap");
    assert_eq!(ingest(&store, &minutes(&["a", "b"], 300)).unwrap(), 600);
    let names = vec!["a".to_owned(), "b".to_owned()];
    let all = store
        .records(&names, Time::MIN, Time::MAX, u64::MAX, 600)
        .unwrap();
    assert_eq!(
        all.iter().map(|(_, r)| r.len()).collect::<Vec<_>>(),
        [300, 300]
    );
    let e = store
        .records(&names, Time::MIN, Time::MAX, u64::MAX, 599)
        .unwrap_err();
    assert!(
        matches!(e, Error::Invalid(ref m) if m.contains("more than 599 records")),
        "{e}"
    );
    // A limit per stream brings it under the cap.
    let limited = store
        .records(&names, Time::MIN, Time::MAX, 100, 599)
        .unwrap();
    assert_eq!(
        limited.iter().map(|(_, r)| r.len()).collect::<Vec<_>>(),
        [100, 100]
    );
}

#[test]
fn a_refused_pack_leaves_the_store_as_it_was() {
    let store = store("atomic");
    ingest(&store, &minutes(&["a"], 10)).unwrap();
    let before = store.streams(None).unwrap();
    // Stream b would be new, stream a gets strings: refused whole.
    let e = ingest(
        &store,
        r#"[{"n":"b","t":1704067200,"v":1},{"n":"a","t":1704070000,"vs":"x"}]"#,
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Refused(ref r) if r.record == 1 && r.field == "vs"),
        "{e}"
    );
    assert_eq!(store.streams(None).unwrap(), before);
}

#[test]
fn rollups_follow_points_written_in_any_order_and_replaced() {
    let store = store("rollups");
    // Two days of minutes, sent newest first, then the first hour again.
    let pack = minutes(&["m"], 2 * 1440);
    let mut records = resolve_slice_indexed(pack.as_bytes(), Format::Json, 0.0).unwrap();
    records.reverse();
    store.ingest(&records, None).unwrap();
    let again: Vec<String> = (0..60)
        .map(|i| format!(r#"{{"n":"m","t":{},"v":1000}}"#, 1_704_067_200 + 60 * i))
        .collect();
    ingest(&store, &format!("[{}]", again.join(","))).unwrap();
    let names = vec!["m".to_owned()];
    let paris = store::time_zone("Europe/Paris").unwrap();
    let (from, to) = (
        Time::from_micros(1_704_067_200_000_000),
        Time::from_micros(1_704_067_200_000_000 + 2 * 86_400_000_000),
    );
    // Daily (read from daily rollups, the node's zone) against hourly (UTC hours) against points.
    let expected: f64 = (0..2 * 1440)
        .map(|i| if i < 60 { 1000.0 } else { i as f64 })
        .sum();
    for (every, tz) in [
        (Every::Days(1), paris.clone()),
        (Every::Minutes(60), store::TimeZone::UTC),
        (Every::Minutes(15), paris.clone()),
    ] {
        let aggregate = store.aggregate(&names, from, to, every, &tz).unwrap();
        let sum: f64 = aggregate.series[0].1.iter().flatten().map(|p| p.sum).sum();
        let count: u64 = aggregate.series[0]
            .1
            .iter()
            .flatten()
            .map(|p| p.count)
            .sum();
        assert_eq!((count, sum), (2 * 1440, expected), "{every:?}");
    }
    let profile = store
        .profile(
            &names,
            from,
            to,
            ProfileBy::HourOfDay,
            &store::TimeZone::UTC,
        )
        .unwrap();
    let midnight = profile.series[0].1[0].unwrap();
    // Midnight UTC: the replaced hour of day one (1000) and 1440..1499 of day two.
    assert_eq!(
        (midnight.count, midnight.min, midnight.max),
        (120, 1000.0, 1499.0)
    );
    assert_eq!(store.streams(None).unwrap()[0].count, 2 * 1440);
}

/// A point added to a day already stored rewrites that day's rows where
/// they are: a commit writes every page it changed, and a row deleted and
/// inserted anew (under a new rowid) changed three pages instead of one.
#[test]
fn a_new_point_rewrites_its_day_in_place_in_small_pages() {
    let dir = fresh_dir("in-place");
    let store = Store::open(None, &dir, "UTC").unwrap();
    let rowids = || {
        let db = rusqlite::Connection::open(dir.join("fedwatt.sqlite")).unwrap();
        let rowid = |table: &str| -> i64 {
            db.query_row(&format!("SELECT rowid FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        let page_size: i64 = db.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        (rowid("chunks"), rowid("hours"), page_size)
    };
    ingest(&store, &minutes(&["urn:dev:x:1_power"], 10)).unwrap();
    let before = rowids();
    ingest(
        &store,
        r#"[{"n":"urn:dev:x:1_power","t":1704070000,"v":7}]"#,
    )
    .unwrap();
    assert_eq!(rowids(), before);
    assert_eq!(before.2, 8192);
}

/// A blob damaged outside fedwatt is reported as such, naming the stream
/// and day, and blamed on the node, not on whoever asked.
#[test]
fn a_damaged_chunk_is_reported_as_corrupt_not_as_the_callers_fault() {
    let dir = fresh_dir("corrupt");
    let store = Store::open(None, &dir, "UTC").unwrap();
    ingest(&store, &minutes(&["urn:dev:x:1_power"], 10)).unwrap();
    let db = rusqlite::Connection::open(dir.join("fedwatt.sqlite")).unwrap();
    db.execute("UPDATE chunks SET data = x'00ff00'", [])
        .unwrap();
    let names = ["urn:dev:x:1_power".to_owned()];
    let e = store
        .records(
            &names,
            Time::from_secs_f64(1_704_067_200.0),
            Time::from_secs_f64(1_704_153_600.0),
            100,
            1_000,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    assert!(!e.is_caller_error());
    let text = e.to_string();
    assert!(
        text.starts_with("stored data of stream #1, day ") && text.contains(" is unreadable: "),
        "{text}"
    );
}

/// Packs ingested at once from many threads are written together (group
/// commit): each accepted one is stored whole, each refused one leaves
/// nothing, not even the new stream it named before its refused record.
#[test]
fn packs_ingested_at_once_are_kept_or_refused_each_on_its_own() {
    let store = store("together");
    ingest(&store, &minutes(&["a"], 1)).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut accepted = 0;
                for i in 0..40 {
                    let t = 1_704_067_260 + 60 * (k * 40 + i);
                    if i % 3 == 0 {
                        // A new stream, then strings into numeric stream a.
                        let pack = format!(
                            r#"[{{"n":"new-{k}-{i}","t":{t},"v":1}},{{"n":"a","t":{t},"vs":"x"}}]"#
                        );
                        let e = ingest(&store, &pack).unwrap_err();
                        assert!(matches!(e, Error::Refused(ref r) if r.record == 1), "{e}");
                    } else {
                        ingest(&store, &format!(r#"[{{"n":"a","t":{t},"v":{i}}}]"#)).unwrap();
                        accepted += 1;
                    }
                }
                accepted
            })
        })
        .collect();
    let accepted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let streams = store.streams(None).unwrap();
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert_eq!(streams[0].count, 1 + accepted);
}

/// A store written when a day was one chunk (schema version 3) is read
/// whole after the upgrade, and its days grow into parts from there.
#[test]
fn a_store_of_one_chunk_a_day_is_upgraded_in_place() {
    let dir = fresh_dir("upgrade-parts");
    let store = Store::open(None, &dir, "UTC").unwrap();
    ingest(&store, &minutes(&["m"], 200)).unwrap();
    drop(store);
    // Back to version 3: chunks keyed by stream and day alone, and none of
    // the tables of later versions.
    let db = rusqlite::Connection::open(dir.join("fedwatt.sqlite")).unwrap();
    db.execute_batch(
        "DROP TABLE investments;
         DROP TABLE projects;
         CREATE TABLE old_chunks (stream INTEGER NOT NULL, day INTEGER NOT NULL,
             count INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (stream, day));
         INSERT INTO old_chunks SELECT stream, day, count, data FROM chunks;
         DROP TABLE chunks;
         ALTER TABLE old_chunks RENAME TO chunks;
         DROP TABLE sessions;
         DROP TABLE account_streams;
         DROP TABLE accounts;
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(db);

    let store = Store::open(None, &dir, "UTC").unwrap();
    let names = vec!["m".to_owned()];
    let all = |store: &Store| {
        store.records(
            &names,
            Time::from_micros(0),
            Time::from_micros(i64::MAX / 2),
            u64::MAX,
            usize::MAX,
        )
    };
    assert_eq!(all(&store).unwrap()[0].1.len(), 200);
    // 200 more: the day's first chunk fills up, a second one starts.
    let more: Vec<String> = (200..400)
        .map(|i| format!(r#"{{"n":"m","t":{},"v":{i}}}"#, 1_704_067_200 + 60 * i))
        .collect();
    ingest(&store, &format!("[{}]", more.join(","))).unwrap();
    let values: Vec<f64> = all(&store).unwrap()[0]
        .1
        .iter()
        .map(|r| match r.value {
            Some(senml::Value::Number(v)) => v,
            _ => f64::NAN,
        })
        .collect();
    assert_eq!(values, (0..400).map(f64::from).collect::<Vec<_>>());
    let db = rusqlite::Connection::open(dir.join("fedwatt.sqlite")).unwrap();
    let parts: Vec<(i64, i64, i64)> = db
        .prepare("SELECT day, part, count FROM chunks ORDER BY part")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let day = 1_704_067_200_000_000;
    assert_eq!(
        parts,
        [(day, day, 256), (day, day + 256 * 60_000_000, 144)],
        "the first part keyed by its day, the second by its first point"
    );
}
