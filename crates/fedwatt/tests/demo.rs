//! `fedwatt demo`, the main job: a node with a year of sample data that a
//! newcomer can explore with the commands it prints.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn the_demo_node_serves_a_year_of_sample_data() {
    let dir = std::env::temp_dir().join(format!("fedwatt-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut command = Command::new(env!("CARGO_BIN_EXE_fedwatt"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("FEDWATT_")) {
        command.env_remove(key);
    }
    let mut child = command
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut reader = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(token) = line.trim().strip_prefix("reader token: ") {
            reader = Some(token.to_owned());
        }
        if line.contains("openapi.json") {
            break;
        }
    }
    let reader = reader.expect("the demo prints a reader token");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let base = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the demo stopped before serving"
        );
        if let Some(rest) = line.split("serving ").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in stderr.lines() {});
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get = |path: &str, token: Option<&str>| {
        let mut request = agent.get(format!("{base}{path}"));
        if let Some(t) = token {
            request = request.header("Authorization", format!("Bearer {t}"));
        }
        let mut response = request.call().unwrap();
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 28)
            .read_to_string()
            .unwrap();
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap_or(serde_json::Value::Null),
        )
    };

    // Without a token: only the plant, published as open data.
    let (status, open) = get("/api/v1/streams", None);
    assert_eq!(status, 200);
    let open = open["streams"].as_array().unwrap().clone();
    assert_eq!(open.len(), 1);
    assert!(open[0]["name"].as_str().unwrap().contains("production"));
    assert_eq!(open[0]["count"], 365 * 48);

    // With the reader token: the three streams; the school is busiest on weekdays.
    let (_, all) = get("/api/v1/streams", Some(&reader));
    let names: Vec<String> = all["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 3);
    let school = names
        .iter()
        .find(|n| n.starts_with("urn:dev:prm:30002520083954"))
        .unwrap();
    let first = all["streams"][0]["first"].as_str().unwrap().to_owned();
    let last = all["streams"][0]["last"].as_str().unwrap().to_owned();
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

    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
