//! `fedwatt demo`, the main job: a node with a year of sample data that a
//! newcomer can explore with the commands it prints.

mod common;

use std::io::BufRead;

use common::{Backend, Place};
use serde_json::Value;

#[test]
fn the_demo_node_serves_a_year_of_sample_data() {
    let place = Place::new(Backend::Sqlite);
    let mqtt = format!("127.0.0.1:{}", common::free_port());
    let mut node = place.start(
        &["demo", "--listen", "127.0.0.1:0", "--mqtt-listen", &mqtt],
        &[],
    );
    let (mut reader, mut writer) = (None, None);
    for line in (&mut node.stdout).lines() {
        let line = line.unwrap();
        if let Some(token) = line.trim().strip_prefix("reader token: ") {
            reader = Some(token.to_owned());
        }
        if let Some(token) = line.trim().strip_prefix("writer token: ") {
            writer = Some(token.to_owned());
        }
        if line.contains("openapi.json") {
            break;
        }
    }
    let reader = reader.expect("the demo prints a reader token");
    let writer = writer.expect("the demo prints a writer token");
    let get = |path: &str, token: Option<&str>| {
        let answer = node.get(path, token);
        (
            answer.status,
            serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null),
        )
    };

    // Without a token: only the plant, published as open data: its load
    // curve of a year and its inverter's live readings.
    let (status, open) = get("/api/v1/streams", None);
    assert_eq!(status, 200);
    let open = open["streams"].as_array().unwrap().clone();
    assert_eq!(open.len(), 2, "{open:?}");
    let curve = open
        .iter()
        .find(|s| s["name"].as_str().unwrap().contains("production"))
        .unwrap();
    assert_eq!(curve["count"], 365 * 48);
    let inverter = open
        .iter()
        .find(|s| s["name"].as_str().unwrap().contains("inverter"))
        .unwrap();
    assert!(
        inverter["count"].as_u64().unwrap() >= 3600 / 5,
        "{inverter}"
    );

    // With the reader token: five households, the school, the town hall,
    // the plant, and two live streams; the school is busiest on weekdays.
    let (_, all) = get("/api/v1/streams", Some(&reader));
    let names: Vec<String> = all["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 10, "{names:?}");
    let school = names
        .iter()
        .find(|n| n.starts_with("urn:dev:prm:30002520083954"))
        .unwrap();
    let school_stream = all["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == school.as_str())
        .unwrap();
    let first = school_stream["first"].as_str().unwrap().to_owned();
    let last = school_stream["last"].as_str().unwrap().to_owned();
    let query = format!(
        "/api/v1/profile?stream={school}&from={}&to={}&by=day-of-week&tz=Europe/Paris",
        store::parse_time(&first).unwrap() / 1_000_000,
        store::parse_time(&last).unwrap() / 1_000_000
    );
    let (status, profile) = get(&query, Some(&reader));
    assert_eq!(status, 200, "{profile}");
    let days: Vec<f64> = profile["streams"][0]["values"]["mean"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        days[0] > 1.5 * days[6],
        "Monday {} vs Sunday {}",
        days[0],
        days[6]
    );

    // The cooperative plant: alice's 12 shares of 400 produce 3% of it,
    // and cover part of her household's consumption.
    let house = "urn:dev:prm:30001610071843_consumption/power/active/raw";
    let year = &first[..4];
    let (status, summary) = get(
        &format!(
            "/api/v1/projects/ecole-jaures/summary?account=alice&year={year}&tz=Europe/Paris&consumption={house}"
        ),
        Some(&reader),
    );
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (summary["shares"].as_u64(), summary["fraction"].as_f64()),
        (Some(12), Some(0.03))
    );
    assert!(
        summary["production"]["year"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    let covered = summary["covered"]["year"].as_f64().unwrap();
    assert!(covered > 0.0 && covered < 1.0, "{covered}");
    let (_, investors) = get("/api/v1/projects/ecole-jaures/investors", Some(&reader));
    assert_eq!(investors.as_array().unwrap().len(), 13);

    // The node's status shows the household's equipments and devices.
    let (status, node_status) = get("/api/v1/status", Some(&reader));
    assert_eq!(status, 200, "{node_status}");
    let equipments = node_status["control"]["equipments"].as_array().unwrap();
    assert_eq!(equipments.len(), 3, "{node_status}");
    assert!(
        equipments
            .iter()
            .all(|e| !e["devices"].as_array().unwrap().is_empty())
    );

    // Its household: a consume-now launches the dishwasher and charges the
    // car, through their simulated devices on the node's own broker.
    let (status, listed) = get("/api/v1/control/equipments", Some(&reader));
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed["equipments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["water-heater", "dishwasher", "car"]);
    let until = store::Time::now().as_micros() / 1_000_000 + 600;
    let body =
        format!(r#"{{"kind":"consume-now","equipments":["dishwasher","car"],"until":{until}}}"#);
    let answer = node.post(
        "/api/v1/control/stimulations",
        Some(&writer),
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(answer.status, 202, "{}", answer.text());
    let start = std::time::Instant::now();
    loop {
        let (_, dishwasher) = get("/api/v1/control/equipments/dishwasher", Some(&reader));
        if dishwasher["state"] == "running" && dishwasher["devices"][0]["measured"] == "on" {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the dishwasher did not run: {dishwasher}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
