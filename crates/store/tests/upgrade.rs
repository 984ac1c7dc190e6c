//! A store in the layout of schema version 6 (chunks and hours rows in the
//! codec's version 1) is upgraded in place when it is opened, and reads
//! back what it held: every record, aggregate and profile. On every
//! backend.
//!
//! Version 6's tables are those of today's schema; only its blobs differ.
//! The test writes a store, turns every blob back into version 1 and the
//! schema version back to 6, then opens it again.

use std::path::PathBuf;

use senml::{Format, resolve_slice_indexed};
use store::codec::{Point, decode_hours, decode_points, encode_legacy_hours, encode_legacy_points};
use store::{Every, ProfileBy, Store, Time, TimeZone};

/// 2024-01-01T00:00:00Z, in seconds.
const T0: i64 = 1_704_067_200;

/// Where a test store lives: its data directory, and its database URL on
/// PostgreSQL.
struct Backend {
    dir: PathBuf,
    url: Option<String>,
}

impl Backend {
    fn open(&self) -> Store {
        Store::open(self.url.as_deref(), &self.dir, "UTC").unwrap()
    }

    fn raw(&self) -> Raw {
        match &self.url {
            None => Raw::Lite(rusqlite::Connection::open(self.dir.join("fedwatt.sqlite")).unwrap()),
            Some(url) => Raw::Pg(postgres::Client::connect(url, postgres::NoTls).unwrap()),
        }
    }
}

fn backends(test: &str) -> Vec<Backend> {
    let dir = |b: &str| {
        let dir =
            std::env::temp_dir().join(format!("fedwatt-store-{test}-{b}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    };
    let mut backends = vec![Backend {
        dir: dir("sqlite"),
        url: None,
    }];
    match std::env::var("POSTGRES_TEST_URL") {
        Ok(admin) => {
            let name = format!("fedwatt_store_{test}_{}", std::process::id());
            let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            for sql in [
                format!("DROP DATABASE IF EXISTS {name}"),
                format!("CREATE DATABASE {name}"),
            ] {
                client.batch_execute(&sql).unwrap();
            }
            let base = admin.rsplit_once('/').unwrap().0;
            backends.push(Backend {
                dir: dir("postgres"),
                url: Some(format!("{base}/{name}")),
            });
        }
        Err(_) => assert!(
            std::env::var("CI").is_err(),
            "POSTGRES_TEST_URL is not set: run the tests with scripts/test"
        ),
    }
    backends
}

/// The database itself, to rewrite its blobs.
enum Raw {
    Lite(rusqlite::Connection),
    Pg(postgres::Client),
}

/// A blob's row: table, stream, day, part (the day for hours), data.
type Blob = (&'static str, i64, i64, i64, Vec<u8>);

impl Raw {
    fn blobs(&mut self) -> Vec<Blob> {
        let mut out = Vec::new();
        for (table, sql) in [
            ("chunks", "SELECT stream, day, part, data FROM chunks"),
            ("hours", "SELECT stream, day, day, data FROM hours"),
        ] {
            match self {
                Raw::Lite(db) => {
                    let mut stmt = db.prepare(sql).unwrap();
                    let rows = stmt
                        .query_map([], |r| {
                            Ok((table, r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })
                        .unwrap();
                    out.extend(rows.map(Result::unwrap));
                }
                Raw::Pg(db) => out.extend(
                    db.query(sql, &[])
                        .unwrap()
                        .iter()
                        .map(|r| (table, r.get(0), r.get(1), r.get(2), r.get(3))),
                ),
            }
        }
        out
    }

    /// Every blob in version 1, and the schema at version 6.
    fn back_to_version_6(&mut self) {
        for (table, stream, day, part, data) in self.blobs() {
            let legacy = if table == "chunks" {
                let mut points: Vec<Point> = Vec::new();
                decode_points(&data, |p| points.push(p)).unwrap();
                encode_legacy_points(&points)
            } else {
                let mut hours = Vec::new();
                decode_hours(day, &data, |h, p| hours.push((h, p))).unwrap();
                encode_legacy_hours(day, &hours)
            };
            let sql = format!("UPDATE {table} SET data = $1 WHERE stream = $2 AND day = $3");
            let sql = if table == "chunks" {
                sql + " AND part = $4"
            } else {
                sql + " AND day = $4"
            };
            match self {
                Raw::Lite(db) => {
                    db.execute(&sql, rusqlite::params![legacy, stream, day, part])
                        .unwrap();
                }
                Raw::Pg(db) => {
                    db.execute(&sql, &[&legacy, &stream, &day, &part]).unwrap();
                }
            }
        }
        match self {
            Raw::Lite(db) => db.execute_batch("PRAGMA user_version = 6").unwrap(),
            Raw::Pg(db) => db
                .batch_execute("DELETE FROM fedwatt_schema WHERE version > 6")
                .unwrap(),
        }
    }

    fn versions(&mut self) -> Vec<u8> {
        let mut v: Vec<u8> = self.blobs().iter().map(|b| b.4[0]).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

const STREAMS: [&str; 5] = ["power", "state", "switch", "frame", "energy"];

fn ingest(store: &Store, json: &str) {
    let records = resolve_slice_indexed(json.as_bytes(), Format::Json, 0.0).unwrap();
    store.ingest(&records, None).unwrap();
}

/// Numbers with decimals over two days (three chunks on the first), and
/// strings, booleans, data, sums and update times.
fn fill(store: &Store) {
    let mut records = Vec::new();
    for i in 0..700 {
        let v = if i % 5 == 0 {
            format!("{}", i as f64 / 3.0)
        } else {
            format!("{}.{}", 200 + i % 37, i % 10)
        };
        records.push(format!(
            r#"{{"n":"power","u":"W","t":{},"v":{v}}}"#,
            T0 + 120 * i
        ));
    }
    for i in 0..50 {
        let t = T0 + 1_800 * i;
        let on = if i % 3 == 0 { "on" } else { "off" };
        records.push(format!(r#"{{"n":"state","t":{t},"vs":"{on}"}}"#));
        records.push(format!(r#"{{"n":"switch","t":{t},"vb":{}}}"#, i % 2 == 0));
        records.push(format!(
            r#"{{"n":"frame","t":{t},"vd":"AQID{:02}AA"}}"#,
            i % 7
        ));
        records.push(format!(
            r#"{{"n":"energy","u":"Wh","t":{t},"s":{},"ut":600,"v":{}}}"#,
            1000 + 17 * i,
            -0.5 * i as f64
        ));
    }
    ingest(store, &format!("[{}]", records.join(",")));
}

/// What the store answers, written out.
fn answers(store: &Store) -> String {
    let names: Vec<String> = STREAMS.iter().map(|s| s.to_string()).collect();
    let numeric: Vec<String> = ["power", "switch", "energy"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (from, to) = (
        Time::from_micros(T0 * 1_000_000),
        Time::from_micros((T0 + 3 * 86_400) * 1_000_000),
    );
    let records = store
        .records(&names, Time::MIN, Time::MAX, u64::MAX, usize::MAX)
        .unwrap();
    let hours = store
        .aggregate(&numeric, from, to, Every::Minutes(60), &TimeZone::UTC)
        .unwrap();
    let days = store
        .aggregate(&numeric, from, to, Every::Days(1), &TimeZone::UTC)
        .unwrap();
    let profile = store
        .profile(&numeric, from, to, ProfileBy::HourOfDay, &TimeZone::UTC)
        .unwrap();
    format!("{records:?}\n{hours:?}\n{days:?}\n{profile:?}")
}

#[test]
fn a_store_of_version_1_blobs_is_upgraded_in_place_and_reads_back_identically() {
    for backend in backends("upgradev2") {
        let store = backend.open();
        fill(&store);
        let before = answers(&store);
        for kind in ["Number(", "String(", "Bool(", "Data("] {
            assert!(before.contains(kind), "{kind} in the answers");
        }
        drop(store);
        let mut raw = backend.raw();
        assert_eq!(raw.versions(), [2]);
        raw.back_to_version_6();
        assert_eq!(raw.versions(), [1], "every blob back in version 1");
        drop(raw);

        let store = backend.open();
        assert_eq!(backend.raw().versions(), [2], "every blob in version 2");
        assert_eq!(answers(&store), before);
    }
}
