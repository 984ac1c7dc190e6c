//! A Linky meter on a serial port, end to end: `fedwatt serve` reads a
//! pseudo-terminal's replica as its `[[connector]]` port; the test writes
//! real TIC frames (one with a corrupted group) at the controller side and
//! reads the streams and `/healthz` back through the HTTP API.
//!
//! A pseudo-terminal takes the port's 7E1 settings but does not apply a
//! line discipline's parity or baud rate: this checks the data path
//! (port, decoder, mapping, store, health), not the line.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Place, enc};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use tic::{Group, Horodate, Mode, Season, Value};

const PRM: &str = "30001610071843";

fn group(label: &'static str, value: Value, horodate: Option<Horodate>) -> Group {
    Group {
        label: label.into(),
        value,
        unit: tic::labels::kind_of(label.as_bytes()).and_then(|k| k.unit),
        horodate,
    }
}

/// A standard frame at 12:00:`second` summer time on 2024-06-01.
fn frame(second: u8, east: u64, sinsts: u64) -> Vec<u8> {
    let date = Horodate {
        season: Season::Summer,
        degraded: false,
        year: 2024,
        month: 6,
        day: 1,
        hour: 12,
        minute: 0,
        second,
    };
    tic::encode_frame(
        Mode::Standard,
        &[
            group("ADSC", Value::Text("041876097461".into()), None),
            group("DATE", Value::Empty, Some(date)),
            group("EAST", Value::Integer(east), None),
            group("EASF01", Value::Integer(east / 2), None),
            group("SINSTS", Value::Integer(sinsts), None),
            group("PRM", Value::Text(PRM.into()), None),
        ],
    )
    .unwrap()
}

/// 2024-06-01T10:00:`second`Z (12:00 summer time) in SenML seconds.
fn at(second: u8) -> f64 {
    1_717_236_000.0 + f64::from(second)
}

fn points(node: &common::Node, token: &str, stream: &str) -> Vec<(f64, f64)> {
    let answer = node.get(
        &format!(
            "/api/v1/records?stream={}&from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z",
            enc(stream)
        ),
        Some(token),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let records = answer.json();
    let mut base_time = 0.0;
    let mut out = Vec::new();
    for r in records.as_array().unwrap() {
        if let Some(bt) = r.get("bt").and_then(|t| t.as_f64()) {
            base_time = bt;
        }
        let t = base_time + r.get("t").and_then(|t| t.as_f64()).unwrap_or(0.0);
        out.push((t, r["v"].as_f64().unwrap()));
    }
    out
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_meter_on_a_serial_port_is_stored_and_a_corrupted_group_is_dropped_alone() {
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let replica = ptsname(&controller, Vec::new()).unwrap();
    let replica = replica.to_str().unwrap().to_owned();

    let place = Place::new(Backend::Sqlite);
    let config = place.dir().join("fedwatt.toml");
    std::fs::write(
        &config,
        format!("[[connector]]\nid = \"linky\"\nkind = \"tic\"\nport = {replica:?}\n"),
    )
    .unwrap();
    let reader = place.token("reader", "read", "*");
    let node = place.serve_with(&["--config", config.to_str().unwrap()], &[]);
    let health = || node.get("/healthz", None).json()["connectors"]["linky"].clone();
    wait_for("the port to be read", || health()["state"] == "reading");

    let mut bytes = frame(0, 1_000_000, 500);
    let mut corrupted = frame(2, 1_000_010, 510);
    let at_power = corrupted
        .windows(b"SINSTS\t00510".len())
        .position(|w| w == b"SINSTS\t00510")
        .unwrap();
    // One digit changed: the group's checksum no longer holds.
    corrupted[at_power + b"SINSTS\t0051".len()] = b'9';
    bytes.extend_from_slice(&corrupted);
    bytes.extend_from_slice(&frame(4, 1_000_020, 520));
    for chunk in bytes.chunks(37) {
        rustix::io::write(&controller, chunk).unwrap();
    }
    // Three frames: EAST and EASF01 in each, SINSTS in two.
    wait_for("eight records stored", || health()["records"] == 8);

    let meter = format!("urn:dev:prm:{PRM}");
    assert_eq!(
        points(
            &node,
            &reader,
            &format!("{meter}_consumption/energy/active/index")
        ),
        vec![
            (at(0), 1_000_000.0),
            (at(2), 1_000_010.0),
            (at(4), 1_000_020.0)
        ]
    );
    assert_eq!(
        points(
            &node,
            &reader,
            &format!("{meter}_consumption/energy/active/index/easf01")
        ),
        vec![(at(0), 500_000.0), (at(2), 500_005.0), (at(4), 500_010.0)]
    );
    // The corrupted power group is missing; the frame's others are there.
    assert_eq!(
        points(
            &node,
            &reader,
            &format!("{meter}_consumption/power/apparent/raw")
        ),
        vec![(at(0), 500.0), (at(4), 520.0)]
    );
    let health = health();
    assert_eq!(health["dropped_groups"], 1, "{health}");
    assert_eq!(health["frames"], 3, "{health}");
    assert_eq!(health["mode"], "standard", "{health}");
    assert_eq!(
        health["last_frame"], "2024-06-01T10:00:04+00:00",
        "{health}"
    );
    let metrics = node.get("/metrics", None).text();
    assert!(
        metrics.contains("fedwatt_connector_dropped_groups_total{id=\"linky\"} 1\n"),
        "{metrics}"
    );
}
