//! The web UI's use cases over the real API, on both backends: a
//! cooperative plant and its investors, self-consumption, the node's
//! status. Each node is seeded with data whose energy the test works out
//! by hand (a plant at 1000 W for known hours is 1 kWh an hour; a day at
//! 400 W on the 25-hour last Sunday of October in Paris is 10 kWh).

mod common;

use common::{Backend, Node, Place, backends, enc};
use serde_json::{Value, json};

const PV: &str = "ecole-jaures:pv/power";
const HOUSE: &str = "house-a:load/power";
const METER: &str = "house-b:load/energy";

fn each_backend(scenario: impl Fn(Backend)) {
    for backend in backends() {
        eprintln!("--- {backend:?}");
        scenario(backend);
    }
}

/// Epoch seconds of a local time in Europe/Paris (`2026-03-29T10:00`).
fn paris(local: &str) -> i64 {
    let zoned: jiff::Zoned = format!("{local}[Europe/Paris]").parse().unwrap();
    zoned.timestamp().as_second()
}

/// Posts `value` in `unit` on `stream` every `step` seconds over
/// `[from, to)` (epoch seconds).
fn constant(
    node: &Node,
    token: &str,
    stream: &str,
    unit: &str,
    value: f64,
    range: (i64, i64),
    step: i64,
) {
    let records: Vec<Value> = (range.0..range.1)
        .step_by(step as usize)
        .map(|t| json!({"n": stream, "u": unit, "t": t, "v": value}))
        .collect();
    let answer = node.post_json(token, &Value::Array(records).to_string());
    assert_eq!(answer.status, 200, "{}", answer.text());
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

fn school(production_stream: &str) -> Value {
    json!({
        "id": "ecole-jaures",
        "title": "Centrale solaire de l'école Jaurès",
        "description": "96 m² on the roof",
        "total_shares": 400,
        "share_price": 150.0,
        "currency": "EUR",
        "panel_area_m2": 96.0,
        "production_stream": production_stream,
        "maintenance_budget": 1200.0,
        "commissioned": "2025-01-01",
    })
}

#[test]
fn projects_and_investors_are_managed_by_admins_and_refused_whole() {
    each_backend(|backend| {
        let place = Place::new(backend);
        let admin = place.token("admin", "admin", "*");
        let reader = place.token("reader", "read", "*");
        let node = place.serve(&[]);
        let body = school(PV).to_string();

        assert_eq!(
            node.post(
                "/api/v1/projects",
                None,
                "application/json",
                body.as_bytes()
            )
            .status,
            401
        );
        assert_eq!(
            node.post(
                "/api/v1/projects",
                Some(&reader),
                "application/json",
                body.as_bytes()
            )
            .status,
            403
        );
        let created = node.post(
            "/api/v1/projects",
            Some(&admin),
            "application/json",
            body.as_bytes(),
        );
        assert_eq!((created.status, created.json()), (201, school(PV)));
        let again = node.post(
            "/api/v1/projects",
            Some(&admin),
            "application/json",
            body.as_bytes(),
        );
        assert_eq!(again.status, 409);

        // Each wrong field is named, and nothing is saved.
        for (field, value) in [
            ("total_shares", json!(0)),
            ("total_shares", json!(2.5)),
            ("share_price", json!(-1)),
            ("panel_area_m2", json!("big")),
            ("currency", json!("euro")),
            ("commissioned", json!("2025-13-01")),
            ("id", json!("École")),
            ("colour", json!("green")),
        ] {
            let mut bad = school(PV);
            bad["id"] = json!("mairie");
            bad[field] = value;
            let answer = node.post(
                "/api/v1/projects",
                Some(&admin),
                "application/json",
                bad.to_string().as_bytes(),
            );
            assert_eq!(answer.status, 400, "{field}: {}", answer.text());
            assert_eq!(answer.json()["field"], field, "{}", answer.text());
        }
        let mut missing = school(PV);
        missing["id"] = json!("mairie");
        missing.as_object_mut().unwrap().remove("production_stream");
        let answer = node.post(
            "/api/v1/projects",
            Some(&admin),
            "application/json",
            missing.to_string().as_bytes(),
        );
        assert_eq!(answer.json()["field"], "production_stream");
        let listed = node.get("/api/v1/projects", Some(&reader));
        assert_eq!(listed.json(), json!([school(PV)]));

        // Investors: the shares never add up to more than 400.
        let put = node.put(
            "/api/v1/projects/ecole-jaures/investors/alice",
            Some(&admin),
            r#"{"shares":4}"#,
        );
        assert_eq!(put.status, 200, "{}", put.text());
        assert_eq!(put.json()["shares"], 4);
        assert_eq!(
            node.put(
                "/api/v1/projects/ecole-jaures/investors/bruno",
                Some(&reader),
                r#"{"shares":1}"#
            )
            .status,
            403
        );
        assert_eq!(
            node.put(
                "/api/v1/projects/ecole-jaures/investors/bruno",
                Some(&admin),
                r#"{"shares":396}"#
            )
            .status,
            200
        );
        let over = node.put(
            "/api/v1/projects/ecole-jaures/investors/chloe",
            Some(&admin),
            r#"{"shares":1}"#,
        );
        assert_eq!(
            (over.status, over.json()["field"].clone()),
            (400, json!("shares")),
            "{}",
            over.text()
        );
        let zero = node.put(
            "/api/v1/projects/ecole-jaures/investors/chloe",
            Some(&admin),
            r#"{"shares":0}"#,
        );
        assert_eq!(zero.json()["field"], "shares");
        let bad_name = node.put(
            "/api/v1/projects/ecole-jaures/investors/Chloé",
            Some(&admin),
            r#"{"shares":1}"#,
        );
        assert_eq!(bad_name.json()["field"], "account");
        let investors = node.get("/api/v1/projects/ecole-jaures/investors", Some(&reader));
        assert_eq!(
            investors.json(),
            json!([
                {"account": "alice", "display_name": "alice", "shares": 4},
                {"account": "bruno", "display_name": "bruno", "shares": 396},
            ])
        );
        // The total cannot fall below what is held.
        let smaller = node.patch(
            "/api/v1/projects/ecole-jaures",
            Some(&admin),
            r#"{"total_shares":399}"#,
        );
        assert_eq!(
            smaller.json()["field"],
            "total_shares",
            "{}",
            smaller.text()
        );
        let renamed = node.patch(
            "/api/v1/projects/ecole-jaures",
            Some(&admin),
            r#"{"title":"École Jaurès","share_price":160}"#,
        );
        assert_eq!(renamed.status, 200, "{}", renamed.text());
        let shown = node
            .get("/api/v1/projects/ecole-jaures", Some(&reader))
            .json();
        assert_eq!(
            (
                shown["title"].clone(),
                shown["share_price"].clone(),
                shown["total_shares"].clone()
            ),
            (json!("École Jaurès"), json!(160.0), json!(400))
        );

        assert_eq!(
            node.delete(
                "/api/v1/projects/ecole-jaures/investors/bruno",
                Some(&admin)
            )
            .status,
            204
        );
        assert_eq!(
            node.delete(
                "/api/v1/projects/ecole-jaures/investors/bruno",
                Some(&admin)
            )
            .status,
            404
        );
        assert_eq!(
            node.delete("/api/v1/projects/ecole-jaures", Some(&reader))
                .status,
            403
        );
        assert_eq!(
            node.delete("/api/v1/projects/ecole-jaures", Some(&admin))
                .status,
            204
        );
        assert_eq!(
            node.get("/api/v1/projects/ecole-jaures/investors", Some(&reader))
                .status,
            404
        );
        assert_eq!(
            node.get("/api/v1/projects", Some(&reader)).json(),
            json!([])
        );
    });
}

#[test]
fn an_investors_summary_is_the_plants_energy_times_their_shares() {
    each_backend(|backend| {
        let place = Place::new(backend);
        let admin = place.token("admin", "admin", "*");
        let node = place.serve(&[]);
        // 1000 W from 10:00 to 14:00 on the 23-hour 29 March (4 kWh), and
        // 2000 W from 12:00 to 13:00 on 15 January (2 kWh), every 30 min.
        constant(
            &node,
            &admin,
            PV,
            "W",
            1000.0,
            (paris("2026-03-29T10:00"), paris("2026-03-29T14:00")),
            1800,
        );
        constant(
            &node,
            &admin,
            PV,
            "W",
            2000.0,
            (paris("2026-01-15T12:00"), paris("2026-01-15T13:00")),
            1800,
        );
        // The household's meter: 10 Wh on 15 January, 100 Wh on 29 March.
        constant(
            &node,
            &admin,
            METER,
            "Wh",
            10.0,
            (paris("2026-01-15T12:15"), paris("2026-01-15T12:16")),
            60,
        );
        constant(
            &node,
            &admin,
            METER,
            "Wh",
            100.0,
            (paris("2026-03-29T11:00"), paris("2026-03-29T11:01")),
            60,
        );
        let created = node.post(
            "/api/v1/projects",
            Some(&admin),
            "application/json",
            school(PV).to_string().as_bytes(),
        );
        assert_eq!(created.status, 201);
        node.put(
            "/api/v1/projects/ecole-jaures/investors/alice",
            Some(&admin),
            r#"{"shares":4}"#,
        );

        let answer = node.get(
            &format!("/api/v1/projects/ecole-jaures/summary?account=alice&year=2026&tz=Europe/Paris&consumption={}", enc(METER)),
            Some(&admin),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        let s = answer.json();
        assert_eq!(
            (
                s["account"].clone(),
                s["shares"].clone(),
                s["year"].clone(),
                s["tz"].clone()
            ),
            (json!("alice"), json!(4), json!(2026), json!("Europe/Paris"))
        );
        assert!(
            close(&s["fraction"], 0.01)
                && close(&s["invested"], 600.0)
                && close(&s["panel_area_m2"], 0.96),
            "{s}"
        );
        // Alice's hundredth of 6 kWh.
        let production = &s["production"];
        assert!(close(&production["year"], 0.06), "{production}");
        let months = production["months"].as_array().unwrap();
        assert_eq!(months.len(), 12);
        assert_eq!(months[0]["start"], "2026-01-01T00:00:00+01:00");
        assert_eq!(months[3]["start"], "2026-04-01T00:00:00+02:00");
        assert!(
            close(&months[0]["kwh"], 0.02) && close(&months[2]["kwh"], 0.04),
            "{months:?}"
        );
        assert_eq!(months[1]["kwh"], Value::Null);
        let days = production["days"].as_array().unwrap();
        assert_eq!(days.len(), 365);
        // 29 March is day 88 of the year; the clocks go forward that night.
        assert_eq!(days[87]["start"], "2026-03-29T00:00:00+01:00");
        assert_eq!(days[88]["start"], "2026-03-30T00:00:00+02:00");
        assert!(
            close(&days[87]["kwh"], 0.04) && close(&days[14]["kwh"], 0.02),
            "{:?}",
            &days[87]
        );

        let consumption = &s["consumption"];
        assert_eq!(consumption["stream"], METER);
        assert!(close(&consumption["year"], 0.11), "{consumption}");
        // Covered, hour by hour: on 15 January from 12:00, min(0.02, 0.01);
        // on 29 March the 100 Wh of 11:00 meet that hour's 0.01 kWh alone
        // (the other three hours of production find no consumption).
        let covered = &s["covered"];
        assert!(close(&covered["year"], 0.02 / 0.11), "{covered}");
        assert!(
            close(&covered["months"][0], 1.0) && close(&covered["months"][2], 0.1),
            "{covered}"
        );
        assert_eq!(covered["months"][1], Value::Null);

        // Without a consumption stream, neither consumption nor coverage.
        let plain = node
            .get(
                "/api/v1/projects/ecole-jaures/summary?account=alice&year=2026&tz=Europe/Paris",
                Some(&admin),
            )
            .json();
        assert_eq!(
            (plain["consumption"].clone(), plain["covered"].clone()),
            (Value::Null, Value::Null)
        );
        // A token holds no account: it names one.
        let answer = node.get(
            "/api/v1/projects/ecole-jaures/summary?year=2026",
            Some(&admin),
        );
        assert_eq!(
            (answer.status, answer.json()["field"].clone()),
            (400, json!("account"))
        );
        let answer = node.get(
            "/api/v1/projects/ecole-jaures/summary?account=alice&year=twenty",
            Some(&admin),
        );
        assert_eq!(answer.json()["field"], "year");
        // A project whose plant has sent nothing yet: a year without data.
        let mut new = school("mairie:pv/power");
        new["id"] = json!("mairie");
        node.post(
            "/api/v1/projects",
            Some(&admin),
            "application/json",
            new.to_string().as_bytes(),
        );
        let empty = node.get(
            "/api/v1/projects/mairie/summary?account=alice&year=2026&tz=Europe/Paris",
            Some(&admin),
        );
        assert_eq!(empty.status, 200, "{}", empty.text());
        let empty = empty.json();
        assert_eq!(
            (empty["shares"].clone(), empty["production"]["year"].clone()),
            (json!(0), json!(0.0))
        );
        assert_eq!(empty["production"]["days"][0]["kwh"], Value::Null);
        let limited = place.token("limited", "read", "house-b:*");
        assert_eq!(
            node.get(
                "/api/v1/projects/ecole-jaures/summary?account=alice&year=2026",
                Some(&limited)
            )
            .status,
            403
        );
    });
}

#[test]
fn self_consumption_splits_a_25_hour_day_by_each_key() {
    each_backend(|backend| {
        let place = Place::new(backend);
        let admin = place.token("admin", "admin", "*");
        let node = place.serve(&[]);
        // 25 October 2026, the last Sunday of October: 25 hours in Paris.
        let day = (paris("2026-10-25T00:00"), paris("2026-10-26T00:00"));
        assert_eq!(day.1 - day.0, 25 * 3600);
        constant(&node, &admin, PV, "W", 400.0, day, 1800); // 10 kWh
        constant(&node, &admin, HOUSE, "W", 200.0, day, 1800); // 5 kWh
        // 1 kWh read at noon.
        constant(
            &node,
            &admin,
            METER,
            "Wh",
            1000.0,
            (paris("2026-10-25T12:00"), paris("2026-10-25T12:01")),
            60,
        );
        let query = |extra: &str| {
            format!(
                "/api/v1/selfconsumption?production={}&consumption={}&consumption={}&from={}&to={}&tz=Europe/Paris{extra}",
                enc(PV),
                enc(HOUSE),
                enc(METER),
                day.0,
                day.1
            )
        };

        // By day, computed hour by hour: 10 produced, 6 used; in each of
        // the 25 hours the plant's 0.4 kWh meets the house's 0.2, and at
        // noon also the meter's 1 kWh, of which it covers 0.2 more.
        let by_day = node.get(&query("&step=day"), Some(&admin));
        assert_eq!(by_day.status, 200, "{}", by_day.text());
        assert_eq!(by_day.json()["computed_by"], "hour");
        let t = &by_day.json()["totals"];
        for (key, want) in [
            ("production", 10.0),
            ("consumption", 6.0),
            ("direct", 5.2),
            ("export", 4.8),
            ("import", 0.8),
            ("self_consumption", 0.52),
            ("self_sufficiency", 5.2 / 6.0),
        ] {
            assert!(close(&t[key], want), "{key}: {t}");
        }
        assert_eq!(by_day.json()["intervals"].as_array().unwrap().len(), 1);

        // By half-hour (the default for a day): 50 of them; at noon the
        // plant's 0.2 kWh meets 1.1 kWh of use.
        let by_half_hour = node.get(&query(""), Some(&admin)).json();
        assert_eq!(by_half_hour["step"], "30m");
        let intervals = by_half_hour["intervals"].as_array().unwrap();
        assert_eq!(intervals.len(), 50);
        let noon = intervals
            .iter()
            .find(|i| i["start"] == "2026-10-25T12:00:00+01:00")
            .unwrap();
        assert!(
            close(&noon["direct"], 0.2)
                && close(&noon["import"], 0.9)
                && close(&noon["export"], 0.0),
            "{noon}"
        );
        let t = &by_half_hour["totals"];
        for (key, want) in [
            ("direct", 5.1),
            ("export", 4.9),
            ("import", 0.9),
            ("self_consumption", 0.51),
            ("self_sufficiency", 5.1 / 6.0),
        ] {
            assert!(close(&t[key], want), "{key}: {t}");
        }
        let allocated = |json: &Value| -> Vec<f64> {
            json["consumers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["allocated"].as_f64().unwrap())
                .collect()
        };
        // Proportional: at noon 1/11 and 10/11 of 0.2 kWh.
        let a = allocated(&by_half_hour);
        assert!(
            (a[0] - (4.9 + 0.2 / 11.0)).abs() < 1e-9 && (a[1] - 2.0 / 11.0).abs() < 1e-9,
            "{a:?}"
        );
        // Equal: 0.1 each at noon.
        let a = allocated(&node.get(&query("&key=equal"), Some(&admin)).json());
        assert!(
            (a[0] - 5.0).abs() < 1e-9 && (a[1] - 0.1).abs() < 1e-9,
            "{a:?}"
        );
        // Static, all to the meter: it takes the 0.2 kWh of noon, the
        // house nothing.
        let shares = format!(
            "&key=static&shares={}",
            enc(&format!("{HOUSE}:0,{METER}:1"))
        );
        let answer = node.get(&query(&shares), Some(&admin)).json();
        let a = allocated(&answer);
        assert!(a[0] == 0.0 && (a[1] - 0.2).abs() < 1e-9, "{a:?}");
        assert!(close(&answer["consumers"][1]["self_sufficiency"], 0.2));

        for (extra, field) in [
            ("&step=week", "step"),
            ("&key=static", "shares"),
            ("&key=fair", "key"),
            ("&shares=nobody:1", "shares"),
        ] {
            let answer = node.get(&query(extra), Some(&admin));
            assert_eq!(
                (answer.status, answer.json()["field"].clone()),
                (400, json!(field)),
                "{extra}: {}",
                answer.text()
            );
        }
        let answer = node.get(
            &format!(
                "/api/v1/selfconsumption?production={}&consumption={}&to={}",
                enc(PV),
                enc(HOUSE),
                day.1
            ),
            Some(&admin),
        );
        assert_eq!(answer.json()["field"], "from");
        let answer = node.get(
            &format!(
                "/api/v1/selfconsumption?production={}&from={}&to={}",
                enc(PV),
                day.0,
                day.1
            ),
            Some(&admin),
        );
        assert_eq!(answer.json()["field"], "consumption");
        let limited = place.token("limited", "read", "house-a:*");
        assert_eq!(node.get(&query(""), Some(&limited)).status, 403);
    });
}

#[test]
fn the_status_shows_peers_the_outbox_and_the_last_exchanges() {
    each_backend(|backend| {
        let place = Place::new(backend);
        let admin = place.token("admin", "admin", "*");
        let limited = place.token("limited", "read", "house-a:*");
        let node = place.serve(&[]);
        let grant = node.post(
            "/api/v1/grants",
            Some(&admin),
            "application/json",
            br#"{"to":"aggregator@b.example","streams":"house-a:*","purpose":"flexibility"}"#,
        );
        assert_eq!(grant.status, 201, "{}", grant.text());
        let id = grant.json()["id"].as_i64().unwrap();
        let old = node.post(
            "/api/v1/grants",
            Some(&admin),
            "application/json",
            br#"{"to":"old@c.example","streams":"*"}"#,
        );
        let old_id = old.json()["id"].as_i64().unwrap();
        assert_eq!(
            node.delete(&format!("/api/v1/grants/{old_id}"), Some(&admin))
                .status,
            200
        );

        assert_eq!(node.get("/api/v1/status", None).status, 401);
        assert_eq!(node.get("/api/v1/status", Some(&limited)).status, 403);
        let answer = node.get("/api/v1/status", Some(&admin));
        assert_eq!(answer.status, 200, "{}", answer.text());
        let s = answer.json();
        assert_eq!(s["node"]["name"], "fedwatt");
        assert_eq!(s["node"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(s["health"]["status"], "ok");
        // The revocation's notice to old@c.example waits: this node does
        // not federate.
        assert_eq!(s["outbox"]["backlog"], 1);
        assert_eq!(s["control"], Value::Null);
        let peers = s["peers"].as_array().unwrap();
        let states: Vec<(&str, &str)> = peers
            .iter()
            .map(|p| (p["jid"].as_str().unwrap(), p["state"].as_str().unwrap()))
            .collect();
        assert_eq!(
            states,
            [
                ("aggregator@b.example", "granted"),
                ("old@c.example", "revoked")
            ]
        );
        assert!(peers[0]["last_exchange"].is_string());
        // Newest first: the revocation, then the two grants.
        let kinds: Vec<&str> = s["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["revoke", "grant", "grant"]);
        assert_eq!(s["exchanges"][2]["detail"]["id"], id);
    });
}
