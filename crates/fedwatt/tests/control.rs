//! `fedwatt serve` with `[control]`: the node drives a water heater through
//! a real Mosquitto (scripts/mosquitto), and its states, orders and power
//! are streams of its store, read back over HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Place, enc};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

fn broker() -> Option<String> {
    match std::env::var("MQTT_TEST_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var("CI").is_err(),
                "MQTT_TEST_URL is not set: run the tests with scripts/test"
            );
            eprintln!("!!! SKIPPED: MQTT_TEST_URL is not set (scripts/test sets it)");
            None
        }
    }
}

/// A Tasmota plug on the broker: obeys `cmnd/<topic>/POWER1`, answers on
/// `stat/<topic>/RESULT`, and reports its power on `tele/<topic>/SENSOR`.
fn tasmota_plug(url: &str, topic: &str) {
    tasmota_plug_with_login(url, topic, None);
}

fn tasmota_plug_with_login(url: &str, topic: &str, login: Option<(&str, &str)>) {
    let rest = url.strip_prefix("mqtt://").unwrap();
    let (host, port) = rest.rsplit_once(':').unwrap();
    let mut options = MqttOptions::new(format!("plug-{topic}"), host, port.parse().unwrap());
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = Client::new(options, 100);
    client
        .subscribe(format!("cmnd/{topic}/POWER1"), QoS::AtLeastOnce)
        .unwrap();
    // Subscribed before the node starts, as a device already there is.
    for event in connection.iter() {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = event {
            break;
        }
    }
    // Online, retained, as Tasmota says when it connects.
    client
        .publish(
            format!("tele/{topic}/LWT"),
            QoS::AtLeastOnce,
            true,
            "Online",
        )
        .unwrap();
    let topic = topic.to_owned();
    std::thread::spawn(move || {
        let mut on = false;
        for event in connection.iter() {
            let Ok(Event::Incoming(Packet::Publish(p))) = event else {
                continue;
            };
            match &*p.payload {
                b"ON" => on = true,
                b"OFF" => on = false,
                _ => {}
            }
            let state = if on { "ON" } else { "OFF" };
            let _ = client.publish(
                format!("stat/{topic}/RESULT"),
                QoS::AtLeastOnce,
                false,
                format!(r#"{{"POWER1":"{state}"}}"#),
            );
            let watts = if on { 2000.5 } else { 0.0 };
            let _ = client.publish(
                format!("tele/{topic}/SENSOR"),
                QoS::AtLeastOnce,
                false,
                format!(r#"{{"ENERGY":{{"Power":{watts}}}}}"#),
            );
        }
    });
}

/// `[[control.equipment]]` for a piloted water heater on the Tasmota plug
/// `topic`, with no minimum on or off durations.
fn water_heater(topic: &str) -> String {
    format!(
        r#"[[control.equipment]]
name = "water-heater"
kind = "water-heater"
typology = "plug"
mode = "piloted"
min_on = 0
min_off = 0

[[control.equipment.device]]
part = "switch"
firmware = "tasmota"
topic = "{topic}"
"#
    )
}

#[test]
fn the_node_drives_a_water_heater_and_keeps_its_states_as_streams() {
    let Some(url) = broker() else { return };
    let place = Place::new(Backend::Sqlite);
    let device = format!("wh-node-{}", std::process::id());
    tasmota_plug(&url, &device);
    let config = place.dir.join("fedwatt.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[control]
broker = "{url}"
client_id = "node-{pid}"

{water_heater}
"#,
            pid = std::process::id(),
            water_heater = water_heater(&device),
        ),
    )
    .unwrap();
    let token = place.token("reader", "read", "*");
    let node = place.serve_with(&["--config", config.to_str().unwrap()], &[]);
    let last = |stream: &str| {
        let a = node.get(&format!("/api/v1/streams/{}", enc(stream)), Some(&token));
        (a.status == 200).then(|| a.json())
    };
    let start = Instant::now();
    // No plan: a water heater is kept on, and the plug confirms.
    loop {
        let confirmed = last("equipment/water-heater/switch/confirmed");
        let power = last("equipment/water-heater/switch/power");
        if confirmed.is_some() && power.is_some() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no confirmed order or power stored in 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let records = node
        .get(
            &format!(
                "/api/v1/records?stream={}",
                enc("equipment/water-heater/state")
            ),
            Some(&token),
        )
        .json();
    assert!(records.to_string().contains("piloted-on"), "{records}");
    let power = node
        .get(
            &format!(
                "/api/v1/records?stream={}",
                enc("equipment/water-heater/switch/power")
            ),
            Some(&token),
        )
        .json();
    assert!(power.to_string().contains("2000.5"), "{power}");
}

#[test]
fn a_control_section_with_mistakes_is_refused_by_name() {
    let place = Place::new(Backend::Sqlite);
    let config = place.dir.join("bad.toml");
    std::fs::write(
        &config,
        r#"
[control]
broker = "mqtt://127.0.0.1:1"

[[control.equipment]]
name = "boiler"
kind = "boiler"
typology = "plug"

[[control.equipment.device]]
part = "switch"
firmware = "tasmota"
topic = "x"
"#,
    )
    .unwrap();
    let out = place.run(&[
        "--config",
        config.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "[control] equipment \"boiler\": kind: \"boiler\" is not a known equipment kind"
        ),
        "{err}"
    );
    // A plate showing what is not an equipment.
    std::fs::write(
        &config,
        format!(
            r#"
[control]
broker = "mqtt://127.0.0.1:1"

{water_heater}

[[control.display]]
plate = "plate01"
equipments = ["water-heater", "boiler"]
"#,
            water_heater = water_heater("x"),
        ),
    )
    .unwrap();
    let out = place.run(&[
        "--config",
        config.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[control] display \"plate01\" shows \"boiler\", which is no equipment"),
        "{err}"
    );
}

#[test]
fn the_api_drives_equipments_and_what_it_was_told_survives_a_restart() {
    let Some(url) = broker() else { return };
    let place = Place::new(Backend::Sqlite);
    let pid = std::process::id();
    let (heater, dishwasher) = (format!("wh-api-{pid}"), format!("dw-api-{pid}"));
    tasmota_plug(&url, &heater);
    tasmota_plug(&url, &dishwasher);
    let config = place.dir.join("fedwatt.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[control]
broker = "{url}"
client_id = "api-{pid}"

{water_heater}
"#,
            water_heater = water_heater(&heater),
        ),
    )
    .unwrap();
    let admin = place.token("operator", "admin", "*");
    let household = place.token("household", "write", "equipment/water-heater/*");
    let args = ["--config", config.to_str().unwrap()];
    let mut node = place.serve_with(&args, &[]);
    let equipments = "/api/v1/control/equipments";
    assert_eq!(node.get(equipments, None).status, 401);

    // An equipment added over the API is driven at once, and kept.
    let added = format!(
        r#"{{"name":"dishwasher","kind":"dishwasher","typology":"plug","mode":"piloted",
            "device":[{{"part":"switch","firmware":"tasmota","topic":"{dishwasher}"}}]}}"#
    );
    let post = |body: &str, token: &str| {
        node.post(equipments, Some(token), "application/json", body.as_bytes())
    };
    assert_eq!(
        post(&added, &household).status,
        403,
        "adding needs an admin"
    );
    let created = post(&added, &admin);
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["state"], "stand-by");
    let again = post(&added, &admin);
    assert_eq!(again.status, 409);
    assert_eq!(
        again.json()["detail"],
        "an equipment named \"dishwasher\" is driven already"
    );
    let bad = post(
        &added.replace("\"dishwasher\",\"typology\"", "\"boiler\",\"typology\""),
        &admin,
    );
    assert_eq!(bad.status, 400);
    assert!(
        bad.text()
            .contains("kind: \\\"boiler\\\" is not a known equipment kind"),
        "{}",
        bad.text()
    );

    // A household's token sees and drives its own equipment only.
    let seen = node.get(equipments, Some(&household)).json();
    assert_eq!(seen["equipments"].as_array().unwrap().len(), 1);
    assert_eq!(seen["equipments"][0]["name"], "water-heater");
    let plan_path = "/api/v1/control/equipments/water-heater/plan";
    let in_an_hour = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 900
        + 4)
        * 900;
    let plan = format!(r#"{{"start":{in_an_hour},"decisions":[1,0,1,0]}}"#);
    assert_eq!(node.put(plan_path, Some(&household), &plan).status, 204);
    let wrong = node.put(
        plan_path,
        Some(&household),
        r#"{"start":1,"decisions":[1]}"#,
    );
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.json()["detail"],
        "start must be on a quarter-hour boundary (a multiple of 900 s)"
    );
    let other = node.put(
        "/api/v1/control/equipments/dishwasher/mode",
        Some(&household),
        r#"{"mode":"manual"}"#,
    );
    assert_eq!(other.status, 403, "{}", other.text());
    let unknown = node.put(
        "/api/v1/control/equipments/boiler/plan",
        Some(&admin),
        &plan,
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["detail"], "no equipment is named \"boiler\"");
    let mode = node.put(
        "/api/v1/control/equipments/dishwasher/mode",
        Some(&admin),
        r#"{"mode":"sometimes"}"#,
    );
    assert_eq!(mode.status, 400);
    assert!(
        mode.text()
            .contains("is not a known mode; expected one of: not-piloted, manual"),
        "{}",
        mode.text()
    );

    // A stimulation acts on many equipments: operators only.
    let shed = format!(
        r#"{{"kind":"shed","equipments":["water-heater"],"until":{}}}"#,
        in_an_hour + 3600
    );
    let stimulations = "/api/v1/control/stimulations";
    let refused = node.post(
        stimulations,
        Some(&household),
        "application/json",
        shed.as_bytes(),
    );
    assert_eq!(refused.status, 403);
    let accepted = node.post(
        stimulations,
        Some(&admin),
        "application/json",
        shed.as_bytes(),
    );
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let shown = node
        .get(&format!("{equipments}/water-heater"), Some(&admin))
        .json();
    assert_eq!(shown["state"], "shed");
    assert_eq!(shown["plan"]["decisions"], serde_json::json!([1, 0, 1, 0]));

    // Killed and started again: the added equipment, the plan and the shed
    // still hold.
    node.kill();
    let node = place.serve_with(&args, &[]);
    let start = Instant::now();
    loop {
        let listed = node.get(equipments, Some(&admin)).json();
        let names: Vec<&str> = listed["equipments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["water-heater", "dishwasher"]);
        let heater = &listed["equipments"][0];
        assert_eq!(heater["plan"]["start"], in_an_hour);
        if heater["state"] == "shed" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the shed did not hold after the restart: {heater}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn device_commands_add_list_show_and_remove_equipments() {
    for backend in common::backends() {
        let place = Place::new(backend);
        let config = place.dir.join("fedwatt.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[control]
broker = "mqtt://127.0.0.1:1"

{water_heater}
"#,
                water_heater = water_heater("tasmota_5A1B2C"),
            ),
        )
        .unwrap();
        let device = |args: &[&str]| {
            let mut all = vec!["--config", config.to_str().unwrap(), "device"];
            all.extend_from_slice(args);
            let out = place.run(&all);
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let add = |name: &str, typology: &str, devices: &[&str]| {
            let mut args = vec![
                "add",
                "--name",
                name,
                "--kind",
                "dishwasher",
                "--typology",
                typology,
                "--mode",
                "piloted",
                "--group",
                "east",
            ];
            for d in devices {
                args.extend_from_slice(&["--device", d]);
            }
            device(&args)
        };
        let both = [
            "switch:shelly-gen2:shellyplusplugs-1",
            "finger:zigbee2mqtt:fingerbot",
        ];
        let (ok, out, err) = add("dishwasher", "plug-and-finger", &both);
        assert!(ok, "{err}");
        assert!(out.contains("equipment dishwasher added"), "{out}");

        // Mistakes are refused, named; nothing is added.
        for (name, typology, devices, expected) in [
            (
                "dishwasher",
                "plug-and-finger",
                &both[..],
                "an equipment named \"dishwasher\" exists already",
            ),
            (
                "water-heater",
                "plug",
                &both[..1],
                "an equipment named \"water-heater\" exists already",
            ),
            (
                "dryer",
                "plug",
                &["switch:espurna:x"][..],
                "equipment \"dryer\": device firmware: \"espurna\" is not a known",
            ),
            (
                "dryer",
                "plug-and-finger",
                &both[..1],
                "equipment \"dryer\" (plug-and-finger) needs a device for its Finger",
            ),
            (
                "dryer",
                "plug",
                &["switch-tasmota"][..],
                "--device \"switch-tasmota\": expected PART:FIRMWARE:TOPIC",
            ),
        ] {
            let (ok, _, err) = add(name, typology, devices);
            assert!(!ok && err.contains(expected), "{name}: {err}");
        }

        let (ok, out, _) = device(&["list"]);
        assert!(ok);
        let rows: Vec<&str> = out.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{out}");
        assert!(
            rows[0].starts_with("water-heater") && rows[0].contains("file"),
            "{out}"
        );
        assert!(
            rows[1].starts_with("dishwasher") && rows[1].contains("added"),
            "{out}"
        );
        let (_, json, _) = device(&["list", "--json"]);
        let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(listed[1]["device"][1]["firmware"], "zigbee2mqtt");
        assert_eq!(listed[1]["groups"], serde_json::json!(["east"]));

        let (ok, out, _) = device(&["show", "dishwasher"]);
        assert!(ok);
        assert!(
            out.contains("dishwasher: dishwasher (plug-and-finger), piloted at start-up"),
            "{out}"
        );
        assert!(
            out.contains("finger — zigbee2mqtt fingerbot channel 0"),
            "{out}"
        );
        assert!(out.contains("state: never driven yet"), "{out}");
        let (ok, _, err) = device(&["show", "boiler"]);
        assert!(
            !ok && err.contains("no equipment is named \"boiler\""),
            "{err}"
        );

        let (ok, _, err) = device(&["remove", "water-heater"]);
        assert!(!ok && err.contains("is in the configuration file"), "{err}");
        let (ok, _, err) = device(&["remove", "dishwasher"]);
        assert!(ok, "{err}");
        let (_, out, _) = device(&["list"]);
        assert_eq!(out.lines().count(), 2, "{out}");
    }
}

#[test]
fn without_a_broker_the_node_runs_its_own_and_drives_through_it() {
    let place = Place::new(Backend::Sqlite);
    let port = common::free_port();
    let device = format!("wh-own-{}", std::process::id());
    let config = place.dir.join("fedwatt.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[control]
listen = "127.0.0.1:{port}"
user = "node"
password = "s3cret"

{water_heater}
"#,
            water_heater = water_heater(&device),
        ),
    )
    .unwrap();
    let token = place.token("reader", "read", "*");
    let node = place.serve_with(&["--config", config.to_str().unwrap()], &[]);
    // The plug connects to the node's broker once it is up, as a device
    // does when its broker comes back.
    tasmota_plug_with_login(
        &format!("mqtt://127.0.0.1:{port}"),
        &device,
        Some(("node", "s3cret")),
    );
    let start = Instant::now();
    loop {
        let state = node.get(
            &format!(
                "/api/v1/streams/{}",
                enc("equipment/water-heater/switch/confirmed")
            ),
            Some(&token),
        );
        if state.status == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no confirmed order in 30 s through the node's own broker"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Its broker asks for the login it was given.
    let mut options = MqttOptions::new("intruder", "127.0.0.1", port);
    options.set_credentials("node", "guess");
    let (_client, mut connection) = Client::new(options, 10);
    let refused = connection.iter().next().unwrap();
    assert!(
        matches!(refused, Err(rumqttc::ConnectionError::ConnectionRefused(_))),
        "{refused:?}"
    );
}

#[test]
fn the_node_drives_through_a_broker_over_tls_trusting_its_ca_file() {
    let Some(url) = broker() else { return };
    let (Ok(tls_url), Ok(ca)) = (
        std::env::var("MQTT_TLS_TEST_URL"),
        std::env::var("MQTT_TEST_CA"),
    ) else {
        panic!("MQTT_TLS_TEST_URL and MQTT_TEST_CA are set with MQTT_TEST_URL by scripts/test")
    };
    let place = Place::new(Backend::Sqlite);
    let device = format!("wh-tls-{}", std::process::id());
    // The device on the plain listener, the node over TLS: one broker.
    tasmota_plug(&url, &device);
    let config = place.dir.join("fedwatt.toml");
    let write = |ca_file: &str| {
        std::fs::write(
            &config,
            format!(
                r#"
[control]
broker = "{tls_url}"
ca_file = "{ca_file}"
client_id = "tls-{pid}"

{water_heater}
"#,
                pid = std::process::id(),
                water_heater = water_heater(&device),
            ),
        )
        .unwrap()
    };
    // A CA file that is no PEM is refused by name.
    let not_pem = place.dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    write(not_pem.to_str().unwrap());
    let out = place.run(&[
        "--config",
        config.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[control] ca_file") && err.contains("no PEM certificate in it"),
        "{err}"
    );

    write(&ca);
    let token = place.token("reader", "read", "*");
    let node = place.serve_with(&["--config", config.to_str().unwrap()], &[]);
    let start = Instant::now();
    while node
        .get(
            &format!(
                "/api/v1/streams/{}",
                enc("equipment/water-heater/switch/confirmed")
            ),
            Some(&token),
        )
        .status
        != 200
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no confirmed order in 30 s over TLS"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_device_that_does_not_answer_is_reported_in_healthz_and_metrics_until_it_does() {
    let Some(url) = broker() else { return };
    let place = Place::new(Backend::Sqlite);
    let device = format!("wh-mute-{}", std::process::id());
    let config = place.dir.join("fedwatt.toml");
    std::fs::write(
        &config,
        format!(
            "[control]\nbroker = \"{url}\"\nclient_id = \"mute-{pid}\"\n\n{water_heater}",
            pid = std::process::id(),
            water_heater = water_heater(&device),
        ),
    )
    .unwrap();
    let node = place.serve_with(&["--config", config.to_str().unwrap()], &[]);
    let in_error =
        || node.get("/healthz", None).json()["control"]["devices_in_communication_error"].clone();
    let start = Instant::now();
    // No plug listens on its topic: its first order goes unconfirmed.
    while in_error() != serde_json::json!(["water-heater/switch"]) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the mute plug is not reported in 30 s: {}",
            node.get("/healthz", None).json()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = node.get("/metrics", None).text();
    assert!(
        metrics.contains("fedwatt_control_devices_in_error 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fedwatt_control_orders_failed_total 1\n"),
        "{metrics}"
    );
    // The plug comes: it is reconciled, and no longer reported.
    tasmota_plug(&url, &device);
    while in_error() != serde_json::json!([]) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the plug is still reported once it answers: {}",
            node.get("/healthz", None).json()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
