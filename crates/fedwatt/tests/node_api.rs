//! The node's HTTP API, end to end, on both backends: a real `fedwatt
//! serve` process, real HTTP, real SQLite and PostgreSQL.

mod common;

use common::{Backend, Node, Place, backends, enc};
use serde_json::{Value, json};

const METER: &str = "urn:dev:prm:30001610071843_consumption/power/active/raw";

fn each_backend(scenario: impl Fn(Backend)) {
    for backend in backends() {
        eprintln!("--- {backend:?}");
        scenario(backend);
    }
}

fn started(backend: Backend) -> (Place, Node, String) {
    let place = Place::new(backend);
    let writer = place.token("meter-gateway", "write", "*");
    let node = place.serve(&[]);
    (place, node, writer)
}

/// The streams list and each stream's count, to check that nothing moved.
fn snapshot(node: &Node, token: &str) -> Value {
    let answer = node.get("/api/v1/streams", Some(token));
    assert_eq!(answer.status, 200);
    answer.json()
}

#[test]
fn a_pack_in_any_encoding_is_stored_and_read_back() {
    each_backend(|backend| {
        let (_place, node, token) = started(backend);
        let pack = format!(
            r#"[{{"bn":"{METER}","bt":1704067200,"bu":"W","v":500}},{{"t":1800,"v":650.5}},{{"t":3600,"v":700}}]"#
        );
        let answer = node.post_json(&token, &pack);
        assert_eq!(
            (answer.status, answer.json()),
            (200, json!({"accepted": 3}))
        );

        // The same kind of data as CBOR and XML, on other streams.
        let cbor = senml::encode(
            &senml::decode_slice(
                br#"[{"bn":"house:","n":"temp","u":"Cel","t":1704067200,"v":19.5}]"#,
                senml::Format::Json,
            )
            .unwrap(),
            senml::Format::Cbor,
        )
        .unwrap();
        let answer = node.post(
            "/api/v1/data",
            Some(&token),
            "application/senml+cbor",
            &cbor,
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        let xml = r#"<sensml xmlns="urn:ietf:params:xml:ns:senml"><senml bn="house:" n="door" t="1704067200" vb="true"/><senml n="label" t="1704067200" vs="entrée"/></sensml>"#;
        let answer = node.post(
            "/api/v1/data",
            Some(&token),
            "application/senml+xml",
            xml.as_bytes(),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());

        let streams = snapshot(&node, &token);
        let names: Vec<&str> = streams["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["house:door", "house:label", "house:temp", METER]);
        let meter = &streams["streams"][3];
        assert_eq!(
            (
                meter["unit"].as_str(),
                meter["kind"].as_str(),
                meter["count"].as_u64()
            ),
            (Some("W"), Some("number"), Some(3))
        );
        assert_eq!(meter["first"], "2024-01-01T00:00:00+00:00");
        assert_eq!(meter["last"], "2024-01-01T01:00:00+00:00");
        assert_eq!(meter["owner"], "meter-gateway");

        let answer = node.get("/api/v1/streams?prefix=house:", Some(&token));
        assert_eq!(answer.json()["streams"].as_array().unwrap().len(), 3);

        // Records: SenML JSON by default, in time order, absolute.
        let answer = node.get(
            &format!(
                "/api/v1/records?stream={}&from=1704067200&to=2024-01-01T01:00:00Z",
                enc(METER)
            ),
            Some(&token),
        );
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type, "application/senml+json");
        let records = answer.json();
        assert_eq!(
            records,
            json!([
                {"n": METER, "t": 1704067200, "v": 500, "u": "W"},
                {"n": METER, "t": 1704069000, "v": 650.5, "u": "W"}
            ])
        );
        // Several streams and kinds, as CSV.
        let answer = node.get_as(
            "/api/v1/records?stream=house:door&stream=house:label&stream=house:temp",
            Some(&token),
            Some("text/csv"),
        );
        assert_eq!(
            answer.text(),
            "stream,time,value,unit,sum\n\
            house:door,2024-01-01T00:00:00+00:00,true,,\n\
            house:label,2024-01-01T00:00:00+00:00,entrée,,\n\
            house:temp,2024-01-01T00:00:00+00:00,19.5,Cel,\n"
        );
        let answer = node.get(
            &format!("/api/v1/records?stream={}&limit=1", enc(METER)),
            Some(&token),
        );
        assert_eq!(answer.json().as_array().unwrap().len(), 1);
    });
}

#[test]
fn tokens_scopes_patterns_and_open_streams_decide_who_may_do_what() {
    each_backend(|backend| {
        let place = Place::new(backend);
        let writer = place.token("gateway", "write", "urn:dev:prm:3000*");
        let reader = place.token("reader", "read", "*");
        let admin = place.token("admin", "admin", "*");
        let node = place.serve(&[]);
        let pack = format!(r#"[{{"n":"{METER}","t":1704063600,"v":1}}]"#);

        assert_eq!(
            node.post(
                "/api/v1/data",
                None,
                "application/senml+json",
                pack.as_bytes()
            )
            .status,
            401
        );
        assert_eq!(node.post_json("not-a-token", &pack).status, 401);
        let answer = node.post_json(&reader, &pack);
        assert_eq!(answer.status, 403);
        assert!(
            answer.json()["detail"]
                .as_str()
                .unwrap()
                .contains("needs write")
        );
        let answer = node.post_json(
            &writer,
            r#"[{"n":"urn:dev:prm:4000:x","t":1704063600,"v":1}]"#,
        );
        assert_eq!(answer.status, 403);
        assert!(
            answer.text().contains("urn:dev:prm:3000*"),
            "{}",
            answer.text()
        );
        assert_eq!(node.post_json(&writer, &pack).status, 200);

        let records = format!("/api/v1/records?stream={}", enc(METER));
        assert_eq!(node.get(&records, None).status, 401);
        assert_eq!(
            node.get("/api/v1/streams", None).json(),
            json!({"streams": []})
        );
        assert_eq!(node.get(&records, Some(&reader)).status, 200);
        assert_eq!(
            node.get("/api/v1/records?stream=nothing", Some(&reader))
                .status,
            404
        );

        // Publishing needs admin; then anyone may read the stream.
        let stream = format!("/api/v1/streams/{METER}");
        assert_eq!(
            node.patch(&stream, Some(&writer), r#"{"open":true}"#)
                .status,
            403
        );
        let answer = node.patch(
            &stream,
            Some(&admin),
            r#"{"open":true,"metadata":{"licence":"ODbL-1.0"}}"#,
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["metadata"]["licence"], "ODbL-1.0");
        assert_eq!(node.get(&records, None).status, 200);
        assert_eq!(
            node.get("/api/v1/streams", None).json()["streams"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let answer = node.patch(
            &stream,
            Some(&admin),
            r#"{"metadata":{"licence":"x","colour":"red"}}"#,
        );
        assert_eq!(answer.status, 400);
        assert!(answer.text().contains("colour"));

        // A revoked token is refused at once.
        assert!(place.run(&["token", "revoke", "reader"]).status.success());
        assert_eq!(node.get("/api/v1/streams", Some(&reader)).status, 401);
    });
}

#[test]
fn a_resent_point_replaces_the_old_one_and_the_rollups_follow() {
    each_backend(|backend| {
        let (_place, node, token) = started(backend);
        let first = format!(
            r#"[{{"bn":"{METER}","bt":1704067200,"v":100}},{{"t":600,"v":200}},{{"t":1200,"v":300}}]"#
        );
        assert_eq!(node.post_json(&token, &first).status, 200);
        // 200 re-sent as 900: same count, new sum and max.
        let again = format!(r#"[{{"n":"{METER}","t":1704067800,"v":900}}]"#);
        assert_eq!(node.post_json(&token, &again).status, 200);
        assert_eq!(snapshot(&node, &token)["streams"][0]["count"], 3);
        let query = format!(
            "/api/v1/aggregate?stream={}&from=1704067200&to=1704074400&every=PT1H&fn=count,sum,min,max,first,last&tz=UTC",
            enc(METER)
        );
        let values = &node.get(&query, Some(&token)).json()["streams"][0]["values"];
        assert_eq!(values["count"], json!([3.0, null]));
        assert_eq!(values["sum"], json!([1300.0, null]));
        assert_eq!(
            (values["min"][0].as_f64(), values["max"][0].as_f64()),
            (Some(100.0), Some(900.0))
        );
        assert_eq!(
            (values["first"][0].as_f64(), values["last"][0].as_f64()),
            (Some(100.0), Some(300.0))
        );
        // The daily rollup agrees.
        let query = format!(
            "/api/v1/aggregate?stream={}&from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z&every=P1D&fn=sum,count&tz=UTC",
            enc(METER)
        );
        let values = &node.get(&query, Some(&token)).json()["streams"][0]["values"];
        assert_eq!(
            (values["sum"][0].as_f64(), values["count"][0].as_f64()),
            (Some(1300.0), Some(3.0))
        );
    });
}

/// Ten-minute points from `from` to `to` (epoch seconds), value = f(time).
fn ten_minute_pack(name: &str, from: i64, to: i64, value: impl Fn(i64) -> f64) -> String {
    let mut pack = format!(
        r#"[{{"bn":"{name}","bt":{from},"bu":"W","v":{}}}"#,
        value(from)
    );
    let mut t = from + 600;
    while t < to {
        pack.push_str(&format!(r#",{{"t":{},"v":{}}}"#, t - from, value(t)));
        t += 600;
    }
    pack.push(']');
    pack
}

#[test]
fn daily_buckets_in_paris_have_23_and_25_hours_across_daylight_saving() {
    each_backend(|backend| {
        for node_zone in ["UTC", "Europe/Paris"] {
            // Daily rollups kept in UTC or in Paris: the answers are the same.
            let place = Place::new(backend);
            let token = place.token("gateway", "write", "*");
            let node = place.serve(&[("FEDWATT_STORE_TIMEZONE", node_zone)]);
            for (from, to) in [
                ("2024-03-30T00:00:00+01:00", "2024-04-01T00:00:00+02:00"),
                ("2024-10-26T00:00:00+02:00", "2024-10-28T00:00:00+01:00"),
            ] {
                let (a, b) = (jiff_seconds(from), jiff_seconds(to));
                let answer = node.post_json(
                    &token,
                    &ten_minute_pack(METER, a - 86400, b + 86400, |_| 1.0),
                );
                assert_eq!(answer.status, 200, "{}", answer.text());
                let query = format!(
                    "/api/v1/aggregate?stream={}&from={}&to={}&every=P1D&fn=count,mean&tz=Europe/Paris",
                    enc(METER),
                    enc(from),
                    enc(to)
                );
                let answer = node.get(&query, Some(&token)).json();
                let counts: Vec<f64> = answer["streams"][0]["values"]["count"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                let hours: Vec<f64> = counts.iter().map(|c| c / 6.0).collect();
                let expected = if from.starts_with("2024-03") {
                    [24.0, 23.0]
                } else {
                    [24.0, 25.0]
                };
                assert_eq!(hours, expected, "{node_zone}: {answer}");
                assert_eq!(
                    answer["buckets"][1]["start"].as_str().unwrap()[..10],
                    to[..10].replace("04-01", "03-31").replace("10-28", "10-27")
                );
            }
        }
    });
}

fn jiff_seconds(text: &str) -> i64 {
    store::parse_time(text).unwrap() / 1_000_000
}

#[test]
fn aggregates_of_several_streams_share_their_buckets_and_match_the_points() {
    each_backend(|backend| {
        let (_place, node, token) = started(backend);
        let start = jiff_seconds("2024-06-03T00:00:00+02:00"); // a Monday
        let end = start + 14 * 86400;
        // The school uses 2 kW on weekdays from 8 to 17 local, the house 500 W always.
        let school = |t: i64| {
            let local = t + 7200;
            let (day, hour) = ((local / 86400 + 3) % 7, local % 86400 / 3600);
            if day < 5 && (8..17).contains(&hour) {
                2000.0
            } else {
                100.0
            }
        };
        assert_eq!(
            node.post_json(&token, &ten_minute_pack("school", start, end, school))
                .status,
            200
        );
        assert_eq!(
            node.post_json(
                &token,
                &ten_minute_pack("house", start, end, |t| (t % 7) as f64 * 100.0)
            )
            .status,
            200
        );

        let query = format!(
            "/api/v1/aggregate?stream=school&stream=house&from={start}&to={end}&every=P1W&fn=mean,max&tz=Europe/Paris"
        );
        let answer = node.get(&query, Some(&token)).json();
        assert_eq!(answer["buckets"].as_array().unwrap().len(), 2);
        let mean = (5.0 * 9.0 * 2000.0 + (168.0 - 45.0) * 100.0) / 168.0;
        for week in 0..2 {
            let got = answer["streams"][0]["values"]["mean"][week]
                .as_f64()
                .unwrap();
            assert!((got - mean).abs() < 1e-9, "{got} vs {mean}");
        }
        assert_eq!(answer["streams"][1]["name"], "house");
        assert_eq!(answer["streams"][1]["values"]["max"][0], 600.0);

        // 15-minute buckets come from the points, and agree with them.
        let query = format!(
            "/api/v1/aggregate?stream=house&from={start}&to={}&every=PT15M&fn=count,sum&tz=Asia/Kolkata",
            start + 3600
        );
        let answer = node.get(&query, Some(&token)).json();
        let counts = &answer["streams"][0]["values"]["count"];
        assert_eq!(
            counts
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_f64().unwrap_or(0.0))
                .sum::<f64>(),
            6.0
        );

        // The typical weekday of the school: 2 kW in class hours, local time.
        let query = format!(
            "/api/v1/profile?stream=school&from={start}&to={end}&by=hour-of-day&fn=mean,max&tz=Europe/Paris"
        );
        let answer = node.get(&query, Some(&token)).json();
        let mean = answer["streams"][0]["values"]["mean"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(mean.len(), 24);
        let weekday_share = (5.0 * 2000.0 + 2.0 * 100.0) / 7.0;
        assert!((mean[9].as_f64().unwrap() - weekday_share).abs() < 1e-9);
        assert_eq!(mean[7].as_f64(), Some(100.0));
        let query = format!(
            "/api/v1/profile?stream=school&from={start}&to={end}&by=day-of-week&tz=Europe/Paris"
        );
        let days = node.get(&query, Some(&token)).json()["streams"][0]["values"]["mean"].clone();
        assert_eq!(days[6].as_f64(), Some(100.0), "Sunday: closed");
        assert!((days[0].as_f64().unwrap() - (9.0 * 2000.0 + 15.0 * 100.0) / 24.0).abs() < 1e-9);
        // Profiles in a zone whose offset is not whole hours read the points.
        let query = format!(
            "/api/v1/profile?stream=school&from={start}&to={end}&by=hour-of-week&fn=count&tz=Asia/Kolkata"
        );
        let counts = node.get(&query, Some(&token)).json()["streams"][0]["values"]["count"].clone();
        assert_eq!(
            counts
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_f64().unwrap())
                .sum::<f64>(),
            14.0 * 144.0
        );
    });
}

#[test]
fn bad_input_gets_a_precise_4xx_and_changes_nothing() {
    each_backend(|backend| {
        let place = Place::new(backend);
        let token = place.token("gateway", "write", "*");
        let node = place.serve(&[("FEDWATT_HTTP_BODY_LIMIT", "12000000")]);
        let good = format!(r#"[{{"n":"{METER}","u":"W","t":1704063600,"v":1}}]"#);
        assert_eq!(node.post_json(&token, &good).status, 200);
        let before = snapshot(&node, &token);

        let mut garbage = Vec::with_capacity(10_000_000);
        let mut seed = 12345u64;
        while garbage.len() < 10_000_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            garbage.push((seed >> 33) as u8);
        }
        let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
            ("truncated JSON", br#"[{"n":"a","v":1},{"n":"b","#.to_vec(), 400, "ends in the middle of the pack"),
            ("wrong type", br#"[{"n":"a","v":1},{"n":"b","v":"12"}]"#.to_vec(), 400, "field \"v\""),
            ("invalid name", br#"[{"n":"a","v":1},{"n":"b c","v":2}]"#.to_vec(), 400, "invalid name"),
            ("10 MB of garbage", garbage.clone(), 400, "pack refused"),
            ("huge number", br#"[{"n":"a","v":1e999}]"#.to_vec(), 400, "field \"v\""),
            ("time out of range", br#"[{"n":"a","t":1e300,"v":1}]"#.to_vec(), 400, "field \"t\""),
            ("duplicated times", br#"[{"n":"a","t":1704063600,"v":1},{"n":"b","t":1704063600,"v":1},{"n":"a","t":1704063600,"v":2}]"#.to_vec(), 400, "record 2, field \"t\""),
            ("mixed versions", br#"[{"bver":10,"n":"a","v":1},{"bver":5,"n":"b","v":2}]"#.to_vec(), 400, "record 1, field \"bver\""),
            ("another kind of value", format!(r#"[{{"n":"x","v":1}},{{"n":"{METER}","t":1704067200,"vs":"on"}}]"#).into_bytes(), 400, "record 1, field \"vs\""),
            ("a unit that cannot convert", format!(r#"[{{"n":"x","v":1}},{{"n":"{METER}","t":1704067200,"u":"Cel","v":3}}]"#).into_bytes(), 400, "record 1, field \"u\""),
            ("empty pack", b"[]".to_vec(), 400, "no record"),
        ];
        for (what, body, status, detail) in &cases {
            let answer = node.post("/api/v1/data", Some(&token), "application/senml+json", body);
            assert_eq!(answer.status, *status, "{what}: {}", answer.text());
            assert_eq!(answer.content_type, "application/problem+json", "{what}");
            let problem = answer.json();
            let text = problem["detail"].as_str().unwrap();
            assert!(text.contains(detail), "{what}: {text}");
            assert_eq!(problem["status"], *status);
        }
        let answer = node.post("/api/v1/data", Some(&token), "text/plain", good.as_bytes());
        assert_eq!(answer.status, 415);
        // A body over the limit is refused from its Content-Length, before
        // it is sent.
        let head = node.post_head_only(&token, "application/senml+json", 13_000_000);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
        assert!(head.contains("12000000 bytes"), "{head}");
        // The pack in CBOR and XML, cut short.
        let cbor = senml::encode(
            &senml::decode_slice(good.as_bytes(), senml::Format::Json).unwrap(),
            senml::Format::Cbor,
        )
        .unwrap();
        assert_eq!(
            node.post(
                "/api/v1/data",
                Some(&token),
                "application/senml+cbor",
                &cbor[..cbor.len() - 3]
            )
            .status,
            400
        );
        assert_eq!(
            node.post(
                "/api/v1/data",
                Some(&token),
                "application/senml+xml",
                b"<sensml xmlns=\"urn:ietf:params:xml:ns:senml\"><senml n="
            )
            .status,
            400
        );
        // Bad queries.
        for query in [
            "/api/v1/aggregate?stream=x&from=yesterday&to=1&every=P1D",
            "/api/v1/aggregate?stream=x&from=0&to=1&every=P2X",
            "/api/v1/aggregate?stream=x&from=0&to=1&every=P1D&fn=avg",
            "/api/v1/aggregate?stream=x&from=0&to=1&every=P1D&tz=Mars/Olympus",
            "/api/v1/profile?stream=x&from=0&to=1&by=hour-of-month",
            "/api/v1/records",
        ] {
            let answer = node.get(query, Some(&token));
            assert_eq!(answer.status, 400, "{query}: {}", answer.text());
        }

        assert_eq!(
            node.get("/healthz", None).status,
            200,
            "the node is still up"
        );
        assert_eq!(snapshot(&node, &token), before, "the store is unchanged");
        let metrics = node.get("/metrics", None).text();
        assert!(
            metrics.contains("fedwatt_ingested_records_total 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("fedwatt_refused_records_total{reason=\"duplicate_time\"} 3"),
            "{metrics}"
        );
        assert!(
            metrics.contains("route=\"/api/v1/data\",method=\"POST\""),
            "{metrics}"
        );
    });
}

#[test]
fn points_past_their_retention_are_purged_with_their_rollups() {
    each_backend(|backend| {
        let place = Place::new(backend);
        let token = place.token("gateway", "write", "*");
        let now = store::Time::now().as_micros() / 1_000_000;
        let start = now - 3 * 86400;
        let pack = ten_minute_pack("sensor", start - start % 3600, now, |_| 1.0);
        // Loaded by the import command, which needs no server.
        let file = place.dir().join("sensor.json");
        std::fs::write(&file, &pack).unwrap();
        let out = place.run(&["import", "senml", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = place.run(&[
            "stream",
            "set",
            "sensor",
            "--metadata",
            r#"{"retention":"P1D"}"#,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let node = place.serve(&[("FEDWATT_STORE_PURGE_INTERVAL", "1")]);
        let token = {
            let _ = token;
            place.token("reader", "read", "*")
        };
        let mut first = String::new();
        for _ in 0..100 {
            first = snapshot(&node, &token)["streams"][0]["first"]
                .as_str()
                .unwrap()
                .to_owned();
            if store::parse_time(&first).unwrap() >= (now - 86400 - 3600) * 1_000_000 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let first = store::parse_time(&first).unwrap() / 1_000_000;
        assert!(
            first >= now - 86400 - 3600 && first <= now - 86400 + 3600,
            "first point {first}, now {now}"
        );
        let query = format!(
            "/api/v1/aggregate?stream=sensor&from={}&to={now}&every=PT1H&fn=count&tz=UTC",
            start - 86400
        );
        let counts = node.get(&query, Some(&token)).json()["streams"][0]["values"]["count"].clone();
        let total: f64 = counts
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_f64().unwrap_or(0.0))
            .sum();
        let records = node
            .get("/api/v1/records?stream=sensor", Some(&token))
            .json();
        assert_eq!(
            total as usize,
            records.as_array().unwrap().len(),
            "rollups follow the purge"
        );
    });
}

#[test]
fn grants_are_managed_over_http_by_admins_only() {
    each_backend(|backend| {
        let place = Place::new(backend);
        let admin = place.token("admin", "admin", "*");
        let limited = place.token("limited", "admin", "urn:dev:prm:1*");
        let node = place.serve(&[]);
        let post = |token: &str, body: &str| {
            node.post(
                "/api/v1/grants",
                Some(token),
                "application/json",
                body.as_bytes(),
            )
        };
        let body = r#"{"to":"node@b.example","streams":"urn:dev:prm:1*","purpose":"study","until":"2030-01-01T00:00:00Z","min_aggregation":"PT1H","retention":"P1Y"}"#;
        assert_eq!(post(&limited, body).status, 403);
        assert_eq!(node.get("/api/v1/grants", None).status, 401);
        let given = post(&admin, body);
        assert_eq!(given.status, 201, "{}", given.text());
        let g = given.json();
        assert_eq!(
            (g["grantee"].as_str(), g["min_aggregation"].as_str()),
            (Some("node@b.example"), Some("PT1H"))
        );
        for (bad, why) in [
            (r#"{"to":"node@b.example/res","streams":"*"}"#, "bare JID"),
            (
                r#"{"to":"node@b.example","streams":"*","retention":"forever"}"#,
                "retention",
            ),
            (
                r#"{"to":"node@b.example","streams":"*","min_aggregation":"P7X"}"#,
                "minimum aggregation",
            ),
            (
                r#"{"to":"node@b.example","streams":"*","from":"2030-01-01T00:00:00Z","until":"2029-01-01T00:00:00Z"}"#,
                "after its start",
            ),
            (r#"{"to":"node@b.example"}"#, "streams"),
        ] {
            let a = post(&admin, bad);
            assert_eq!(a.status, 400, "{bad}");
            assert!(a.text().contains(why), "{bad}: {}", a.text());
        }
        let list = node.get("/api/v1/grants", Some(&admin)).json();
        assert_eq!(list["grants"].as_array().unwrap().len(), 1);
        let id = g["id"].as_i64().unwrap();
        let revoke = |id: i64| {
            node.delete(&format!("/api/v1/grants/{id}"), Some(&admin))
                .status
        };
        assert_eq!(revoke(id), 200);
        assert_eq!(revoke(id), 400, "revoked already");
        assert_eq!(revoke(999), 404);
        let list = node.get("/api/v1/grants", Some(&admin)).json();
        assert!(list["grants"][0]["revoked"].is_i64());
        let out = place.run(&["grant", "list"]);
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            listed.contains("revoked") && listed.contains("means of PT1H"),
            "{listed}"
        );
    });
}

#[test]
fn the_node_describes_itself() {
    each_backend(|backend| {
        let place = Place::new(backend);
        let node = place.serve(&[]);
        let answer = node.get("/api/v1/openapi.json", None);
        assert_eq!(answer.status, 200);
        let doc = answer.json();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in [
            "/api/v1/data",
            "/api/v1/streams",
            "/api/v1/streams/{name}",
            "/api/v1/records",
            "/api/v1/aggregate",
            "/api/v1/profile",
            "/api/v1/grants",
            "/api/v1/grants/{id}",
            "/api/v1/projects",
            "/api/v1/projects/{id}/summary",
            "/api/v1/selfconsumption",
            "/api/v1/status",
            "/healthz",
            "/metrics",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is not described");
        }
        let health = node.get("/healthz", None);
        assert_eq!(
            (health.status, health.json()["status"].as_str()),
            (200, Some("ok"))
        );
        let missing = node.get("/api/v2/nothing", None);
        assert_eq!(
            (missing.status, missing.content_type.as_str()),
            (404, "application/problem+json")
        );
    });
}

#[test]
fn a_configuration_file_sets_the_limits_and_the_time_zone() {
    each_backend(|backend| {
        let place = Place::new(backend);
        let token = place.token("gateway", "write", "*");
        let config = place.dir().join("fedwatt.toml");
        std::fs::write(
            &config,
            "[http]\nbody_limit = 2000\n[store]\ntimezone = \"Europe/Paris\"\n",
        )
        .unwrap();
        let node = place.serve_with(&["--config", config.to_str().unwrap()], &[]);
        let small = format!(r#"[{{"n":"{METER}","t":1704067200,"v":1}}]"#);
        assert_eq!(node.post_json(&token, &small).status, 200);
        let big = format!(
            "[{}]",
            vec![format!(r#"{{"n":"{METER}","t":1704067200,"v":1}}"#); 60].join(",")
        );
        assert_eq!(node.post_json(&token, &big).status, 413);
        let query = format!(
            "/api/v1/aggregate?stream={}&from=1704067200&to=1704153600&every=P1D",
            enc(METER)
        );
        let answer = node.get(&query, Some(&token)).json();
        assert_eq!(answer["tz"], "Europe/Paris");
        assert_eq!(answer["buckets"][0]["start"], "2024-01-01T00:00:00+01:00");
    });
}

#[test]
fn a_large_answer_is_streamed_whole_in_every_representation() {
    each_backend(|backend| {
        let (_place, node, token) = started(backend);
        // Three days of 10-second points: 25,920 records, megabytes of answer.
        let from = 1_704_067_200;
        let mut pack = format!(r#"[{{"bn":"{METER}","bt":{from},"bu":"W","v":0}}"#);
        for i in 1..25_920 {
            pack.push_str(&format!(r#",{{"t":{},"v":{i}}}"#, i * 10));
        }
        pack.push(']');
        assert_eq!(node.post_json(&token, &pack).json()["accepted"], 25_920);
        let path = format!("/api/v1/records?stream={}", enc(METER));
        let csv = node.get_as(&path, Some(&token), Some("text/csv")).text();
        let lines: Vec<&str> = csv.lines().skip(1).collect();
        assert_eq!(lines.len(), 25_920);
        assert!(lines[25_919].contains(",25919,W,"), "{}", lines[25_919]);
        for (accept, format) in [
            ("application/senml+json", senml::Format::Json),
            ("application/senml+cbor", senml::Format::Cbor),
            ("application/senml+xml", senml::Format::Xml),
        ] {
            let answer = node.get_as(&path, Some(&token), Some(accept));
            let records = senml::resolve_slice(&answer.body, format, 0.0)
                .unwrap()
                .records;
            assert_eq!(records.len(), 25_920, "{accept}");
            assert!(
                records
                    .windows(2)
                    .all(|w| w[0].time + 10_000_000 == w[1].time),
                "{accept}"
            );
        }
    });
}

/// One GET with the given request headers: status, response headers, body.
fn get_with(
    node: &Node,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(format!("{}{path}", node.base));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.call().unwrap();
    let body = response.body_mut().read_to_vec().unwrap();
    (response.status().as_u16(), response.headers().clone(), body)
}

#[test]
fn the_web_ui_is_served_outside_the_api_with_its_cache_and_security_headers() {
    let place = Place::new(Backend::Sqlite);
    let node = place.serve(&[]);
    let header = |h: &ureq::http::HeaderMap, k: &str| {
        h.get(k)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (status, headers, body) = get_with(&node, "/", &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert_eq!(
        header(&headers, "content-security-policy"),
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    );
    assert!(String::from_utf8_lossy(&body).contains("<html"));
    // Any other path outside the API is the same page: the UI routes in it.
    let (status, _, spa) = get_with(&node, "/explorer/some/where", &[]);
    assert_eq!((status, &spa), (200, &body));
    // The same ETag again: 304, nothing sent.
    let etag = header(&headers, "etag");
    assert!(etag.starts_with('"'), "{etag}");
    let (status, _, empty) = get_with(&node, "/", &[("If-None-Match", &etag)]);
    assert_eq!((status, empty.len()), (304, 0));
    // The API keeps its 404s.
    for path in [
        "/api/v1/nothing",
        "/api/nothing",
        "/healthz/more",
        "/metrics/more",
    ] {
        let (status, headers, _) = get_with(&node, path, &[]);
        assert_eq!(
            (status, header(&headers, "content-type").as_str()),
            (404, "application/problem+json"),
            "{path}"
        );
    }
    // A missing hashed file is not answered with the page.
    let (status, _, _) = get_with(&node, "/assets/none-0000.js", &[]);
    assert_eq!(status, 404);
    if api::ui_built() {
        // The page names its script; both come gzipped when asked, the
        // script cached for good.
        let html = String::from_utf8(body).unwrap();
        let script = html
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("index.html loads a script")
            .to_owned();
        let (status, headers, gz) = get_with(&node, &script, &[("Accept-Encoding", "gzip")]);
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "content-encoding"), "gzip");
        assert_eq!(
            header(&headers, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            header(&headers, "content-type"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "a gzip stream");
        let (_, headers, plain) = get_with(&node, &script, &[("Accept-Encoding", "br")]);
        assert_eq!(header(&headers, "content-encoding"), "");
        assert!(plain.len() > gz.len());
    } else {
        let page = String::from_utf8_lossy(&body).into_owned();
        assert!(
            page.contains("web UI was not built") && page.contains("scripts/web"),
            "{page}"
        );
    }
}
