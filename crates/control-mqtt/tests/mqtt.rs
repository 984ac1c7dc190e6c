//! The control loop against a real Mosquitto (scripts/mosquitto, which
//! scripts/test starts), with simulated devices that speak their firmware's
//! own topics (Tasmota, Shelly Gen1, Shelly Gen2 RPC, Zigbee2MQTT, openHASP),
//! as the devices themselves do.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use control::driver::DeviceAddress;
use control::equipment::Safety;
use control::machine::{Part, State};
use control::model::{EquipmentKind, Firmware, Measured, Mode, Typology};
use control::signals::OffPeak;
use control_mqtt::{
    self as runtime, ControlConfig, DeviceConfig, DisplayConfig, EquipmentConfig, JournalEntry,
    MqttConfig, SiteConfig,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};

/// How long a simulated device waits before trying a broker that is away.
const RECONNECT: Duration = Duration::from_millis(200);

/// The broker scripts/test started, or none (then the test fails in CI and
/// is skipped, loudly, elsewhere).
fn broker() -> Option<(String, u16)> {
    match std::env::var("MQTT_TEST_URL") {
        Ok(url) => {
            let rest = url
                .strip_prefix("mqtt://")
                .expect("MQTT_TEST_URL is mqtt://HOST:PORT");
            let (host, port) = rest.rsplit_once(':').expect("MQTT_TEST_URL has a port");
            Some((
                host.to_owned(),
                port.parse().expect("MQTT_TEST_URL's port is a number"),
            ))
        }
        Err(_) => {
            assert!(
                std::env::var("CI").is_err(),
                "MQTT_TEST_URL is not set: run the tests with scripts/test"
            );
            eprintln!("SKIPPED: MQTT_TEST_URL is not set; run the tests with scripts/test");
            None
        }
    }
}

fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Objects a plate shows: (page, id) → properties.
type Plate = BTreeMap<(i64, i64), Map<String, Value>>;

/// Devices that obey (or not) and answer as their firmware does; what they
/// were told is kept, in order.
#[derive(Clone, Default)]
struct Devices {
    told: Arc<Mutex<Vec<(String, String)>>>,
    /// Devices asked their state (an empty POWER1).
    asked: Arc<Mutex<Vec<String>>>,
    mute: Arc<Mutex<bool>>,
    /// What each openHASP plate shows.
    plates: Arc<Mutex<HashMap<String, Plate>>>,
}

impl Devices {
    fn told(&self, device: &str) -> Vec<String> {
        self.told
            .lock()
            .unwrap()
            .iter()
            .filter(|(d, _)| d == device)
            .map(|(_, w)| w.clone())
            .collect()
    }

    /// A property of an object plate `plate` shows.
    fn shown(&self, plate: &str, page: i64, id: i64, property: &str) -> Option<Value> {
        self.plates
            .lock()
            .unwrap()
            .get(plate)?
            .get(&(page, id))?
            .get(property)
            .cloned()
    }

    /// Simulates `devices`, each listening to its own topics only, in
    /// every firmware's: a Tasmota topic, a Shelly Gen1 id, a Shelly Gen2
    /// prefix, a Zigbee2MQTT name or an openHASP plate (its relay output and
    /// its pages).
    async fn start(&self, host: &str, port: u16, id: &str, devices: &[&str]) -> AsyncClient {
        let mut options = MqttOptions::new(unique(&format!("sim-{id}")), host, port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(options, 1000);
        let mut topics = Vec::new();
        for d in devices {
            topics.push(format!("cmnd/{d}/POWER1"));
            topics.push(format!("shellies/{d}/relay/0/command"));
            topics.push(format!("shellies/{d}/command"));
            topics.push(format!("{d}/rpc"));
            topics.push(format!("zigbee2mqtt/{d}/set"));
            topics.push(format!("zigbee2mqtt/{d}/get"));
            topics.push(format!("hasp/{d}/command/#"));
        }
        for t in &topics {
            client.subscribe(t, QoS::AtLeastOnce).await.unwrap();
        }
        // Listening before anything is sent to it, as a device is.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut acks = 0;
        while acks < topics.len() {
            let Ok(event) = tokio::time::timeout_at(deadline, events.poll()).await else {
                panic!("the simulated devices got no SUBACK from {host}:{port} in 30 s");
            };
            match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => acks += 1,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(RECONNECT).await,
            }
        }
        let me = self.clone();
        let answer = client.clone();
        tokio::spawn(async move {
            let mut state: HashMap<String, bool> = HashMap::new();
            loop {
                let p = match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => p,
                    Ok(_) => continue,
                    // The broker is away: an error comes back at once, and
                    // polling again without a pause would spin a worker of
                    // the test's runtime, starving the node under test.
                    Err(_) => {
                        tokio::time::sleep(RECONNECT).await;
                        continue;
                    }
                };
                if *me.mute.lock().unwrap() {
                    continue;
                }
                for (topic, body) in me.obey(&mut state, &p.topic, &p.payload) {
                    answer
                        .publish(topic, QoS::AtLeastOnce, false, body)
                        .await
                        .unwrap();
                }
            }
        });
        client
    }

    /// What a device does with a message on `topic`: the messages it
    /// publishes in answer.
    fn obey(
        &self,
        state: &mut HashMap<String, bool>,
        topic: &str,
        payload: &[u8],
    ) -> Vec<(String, String)> {
        let word = String::from_utf8_lossy(payload).to_string();
        let parts: Vec<&str> = topic.split('/').collect();
        let told = |device: &str, what: &str| {
            self.told
                .lock()
                .unwrap()
                .push((device.to_owned(), what.to_owned()));
        };
        match parts.as_slice() {
            ["cmnd", device, "POWER1"] => {
                let on = match word.as_str() {
                    "ON" => true,
                    "OFF" => false,
                    _ => *state.get(*device).unwrap_or(&false),
                };
                if word.is_empty() {
                    self.asked.lock().unwrap().push(device.to_string());
                } else {
                    told(device, &word);
                }
                state.insert(device.to_string(), on);
                let body = format!(r#"{{"POWER1":"{}"}}"#, if on { "ON" } else { "OFF" });
                vec![(format!("stat/{device}/RESULT"), body)]
            }
            ["shellies", device, "relay", "0", "command"] => {
                told(device, &word);
                state.insert(device.to_string(), word == "on");
                vec![(format!("shellies/{device}/relay/0"), word)]
            }
            ["shellies", device, "command"] if word == "update" => {
                let on = *state.get(*device).unwrap_or(&false);
                let word = if on { "on" } else { "off" };
                vec![(format!("shellies/{device}/relay/0"), word.to_owned())]
            }
            [device, "rpc"] => {
                let request: Value = serde_json::from_str(&word).unwrap();
                let (id, src) = (request["id"].clone(), request["src"].as_str().unwrap());
                let on = match request["method"].as_str().unwrap() {
                    "Switch.Set" => {
                        let on = request["params"]["on"].as_bool().unwrap();
                        let press = request["params"].get("toggle_after").is_some();
                        told(
                            device,
                            if press {
                                "press"
                            } else if on {
                                "on"
                            } else {
                                "off"
                            },
                        );
                        // A press is on, and off again by the device itself.
                        state.insert(device.to_string(), on && !press);
                        on
                    }
                    _ => *state.get(*device).unwrap_or(&false),
                };
                let reply = json!({"id": id, "src": device, "dst": src, "result": {"output": on}});
                let status = json!({"id": 0, "output": *state.get(*device).unwrap_or(&false), "apower": 0.0});
                vec![
                    (format!("{src}/rpc"), reply.to_string()),
                    (format!("{device}/status/switch:0"), status.to_string()),
                ]
            }
            ["zigbee2mqtt", device, verb] => {
                let body: Value = serde_json::from_str(&word).unwrap();
                if *verb == "set" {
                    let asked = body["state"].as_str().unwrap();
                    told(device, asked);
                    state.insert(device.to_string(), asked == "ON");
                }
                let on = *state.get(*device).unwrap_or(&false);
                let body = json!({"state": if on { "ON" } else { "OFF" }, "linkquality": 120});
                vec![(format!("zigbee2mqtt/{device}"), body.to_string())]
            }
            ["hasp", plate, "command", keyword] => {
                self.plate_command(plate, keyword, &word);
                if let Some(output) = keyword.strip_prefix("output") {
                    let asked: Value = serde_json::from_str(&word).unwrap();
                    let asked = asked["state"].as_str().unwrap().to_owned();
                    told(plate, &asked);
                    let body = json!({ "state": asked });
                    return vec![(
                        format!("hasp/{plate}/state/output{output}"),
                        body.to_string(),
                    )];
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// A plate draws what it is told: objects created or updated by
    /// `jsonl`, cleared by `clearpage`.
    fn plate_command(&self, plate: &str, keyword: &str, payload: &str) {
        let mut plates = self.plates.lock().unwrap();
        let objects = plates.entry(plate.to_owned()).or_default();
        match keyword {
            "clearpage" if payload == "all" => objects.clear(),
            "jsonl" => {
                for line in payload.lines() {
                    assert!(payload.len() <= 2000, "a plate cuts payloads above 2 kB");
                    let object: Map<String, Value> = serde_json::from_str(line).unwrap();
                    let key = (
                        object["page"].as_i64().unwrap(),
                        object["id"].as_i64().unwrap(),
                    );
                    objects.entry(key).or_default().extend(object);
                }
            }
            _ => {}
        }
    }
}

fn equipment(name: &str, firmware: Firmware, device: &str, groups: &[&str]) -> EquipmentConfig {
    EquipmentConfig {
        name: name.to_owned(),
        kind: EquipmentKind::WaterHeater,
        typology: Typology::Plug,
        mode: Mode::Piloted,
        safety: Safety {
            min_on: 0,
            min_off: 0,
            max_shed: 3_600_000_000,
        },
        cycle: control::equipment::Cycle::default(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        site: None,
        devices: vec![DeviceConfig {
            part: Part::Switch,
            address: DeviceAddress {
                firmware,
                topic: device.to_owned(),
                channel: 0,
            },
        }],
    }
}

struct Node {
    client_id: String,
    handle: runtime::Handle,
    journal: Arc<Mutex<Vec<JournalEntry>>>,
    _stop: watch::Sender<bool>,
}

fn start(host: &str, port: u16, name: &str, equipments: Vec<EquipmentConfig>) -> Node {
    start_with(host, port, name, equipments, Vec::new(), Vec::new())
}

fn start_with(
    host: &str,
    port: u16,
    name: &str,
    equipments: Vec<EquipmentConfig>,
    displays: Vec<DisplayConfig>,
    sites: Vec<SiteConfig>,
) -> Node {
    let client_id = unique(name);
    let config = ControlConfig {
        mqtt: MqttConfig {
            host: host.to_owned(),
            port,
            user: None,
            password: None,
            client_id: client_id.clone(),
            tls: None,
        },
        equipments,
        displays,
        sites,
        timezone: jiff::tz::TimeZone::UTC,
    };
    let (tx, mut rx) = mpsc::channel(10_000);
    let (stop, stopped) = watch::channel(false);
    let (handle, requests) = runtime::handle();
    tokio::spawn(async move { runtime::run(config, tx, requests, stopped).await.unwrap() });
    let journal: Arc<Mutex<Vec<JournalEntry>>> = Arc::default();
    let keep = journal.clone();
    tokio::spawn(async move {
        while let Some(note) = rx.recv().await {
            let runtime::Note { entry, kept } = note;
            keep.lock().unwrap().push(entry);
            // Kept, as far as this test is concerned.
            if let Some(kept) = kept {
                kept.done(Ok(()));
            }
        }
    });
    Node {
        client_id,
        handle,
        journal,
        _stop: stop,
    }
}

/// Publishes as another program (or a device) would.
async fn send(client: &AsyncClient, topic: impl Into<String>, payload: impl Into<Vec<u8>>) {
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .unwrap();
}

/// Waits (30 s at most) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "waited 30 s for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_turns_a_water_heater_on_and_off_slot_by_slot() {
    let Some((host, port)) = broker() else { return };
    let devices = Devices::default();
    let device = unique("wh-plan");
    let sim = devices.start(&host, port, "plan", &[&device]).await;
    let node = start(
        &host,
        port,
        "plan",
        vec![equipment("water-heater", Firmware::Tasmota, &device, &[])],
    );
    // Without a plan, a water heater is kept on.
    until("the heater switched on", || devices.told(&device) == ["ON"]).await;
    // On from t+2 to t+4 (s), off before and after.
    let t = now_s() + 1;
    let plan = format!(r#"{{"slots":[[{},{}]]}}"#, t + 2, t + 4);
    send(
        &sim,
        runtime::plan_topic(&node.client_id, "water-heater"),
        plan,
    )
    .await;
    until("off, on in its slot, off after it", || {
        devices.told(&device) == ["ON", "OFF", "ON", "OFF"]
    })
    .await;
    until("every order confirmed by the device's answer", || {
        let journal = node.journal.lock().unwrap();
        journal
            .iter()
            .filter(|e| matches!(e, JournalEntry::Confirmed { .. }))
            .count()
            == 4
    })
    .await;

    // Bad input from anywhere is refused with its reason; the loop goes on.
    let refused = |reason: &str| {
        node.journal
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, JournalEntry::Refused { reason: r, .. } if r.contains(reason)))
    };
    for (topic, payload) in [
        (format!("stat/{device}/RESULT"), "{".to_owned()),
        (
            format!("stat/{device}/RESULT"),
            r#"{"POWER1":"MAYBE"}"#.to_owned(),
        ),
        (
            runtime::plan_topic(&node.client_id, "water-heater"),
            r#"{"start":1,"decisions":[1]}"#.to_owned(),
        ),
        (
            runtime::plan_topic(&node.client_id, "boiler"),
            r#"{"slots":[]}"#.to_owned(),
        ),
    ] {
        send(&sim, topic, payload).await;
    }
    until("each refused with its reason", || {
        refused("not JSON")
            && refused("\"MAYBE\" is neither on nor off")
            && refused("start must be on a quarter-hour boundary")
            && refused("no equipment is named \"boiler\"")
    })
    .await;
    let t = now_s() + 1;
    let plan = format!(r#"{{"slots":[[{t},{}]]}}"#, t + 600);
    send(
        &sim,
        runtime::plan_topic(&node.client_id, "water-heater"),
        plan,
    )
    .await;
    until("a good plan still applies", || {
        devices.told(&device).ends_with(&["ON".to_owned()])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shed_turns_a_group_off_at_once_and_restores_it_at_its_end() {
    let Some((host, port)) = broker() else { return };
    let devices = Devices::default();
    let (a, b, other) = (unique("wh-shed"), unique("sh-shed"), unique("wh-other"));
    let sim = devices.start(&host, port, "shed", &[&a, &b, &other]).await;
    let node = start(
        &host,
        port,
        "shed",
        vec![
            equipment("water-heater", Firmware::Tasmota, &a, &["east"]),
            equipment("heater", Firmware::ShellyGen1, &b, &["east"]),
            equipment("other", Firmware::Tasmota, &other, &["west"]),
        ],
    );
    until("both on", || {
        devices.told(&a) == ["ON"] && devices.told(&b) == ["on"]
    })
    .await;
    let until_s = now_s() + 3;
    let shed = format!(r#"{{"kind":"shed","group":"east","until":{until_s}}}"#);
    send(&sim, runtime::stimulation_topic(&node.client_id), shed).await;
    until("both off", || {
        devices.told(&a) == ["ON", "OFF"] && devices.told(&b) == ["on", "off"]
    })
    .await;
    assert!(now_s() < until_s, "cut at once, before the shed's end");
    until("both on again", || {
        devices.told(&a) == ["ON", "OFF", "ON"] && devices.told(&b) == ["on", "off", "on"]
    })
    .await;
    assert_eq!(devices.told(&other), ["ON"], "another group is left alone");
    // A malformed stimulation is refused with its reason; the loop goes on.
    send(
        &sim,
        runtime::stimulation_topic(&node.client_id),
        r#"{"kind":"shed"}"#,
    )
    .await;
    until("the refusal", || {
        node.journal.lock().unwrap().iter().any(|e| {
            matches!(e, JournalEntry::Refused { reason, .. } if reason == "a stimulation needs \"until\"")
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_does_not_answer_is_in_error_until_it_is_back_and_reconciled() {
    let Some((host, port)) = broker() else { return };
    let devices = Devices::default();
    *devices.mute.lock().unwrap() = true;
    let device = unique("sh-mute");
    let sim = devices.start(&host, port, "mute", &[&device]).await;
    let node = start(
        &host,
        port,
        "mute",
        vec![equipment("heater", Firmware::ShellyGen1, &device, &[])],
    );
    let in_error = |journal: &[JournalEntry]| {
        journal.iter().any(|e| {
            matches!(
                e,
                JournalEntry::Measured {
                    state: Measured::CommunicationError,
                    ..
                }
            )
        }) && journal
            .iter()
            .any(|e| matches!(e, JournalEntry::Failed { .. }))
    };
    until("the unanswered order fails", || {
        in_error(&node.journal.lock().unwrap())
    })
    .await;
    assert!(devices.told(&device).is_empty());
    // It comes back, and says so.
    *devices.mute.lock().unwrap() = false;
    send(&sim, format!("shellies/{device}/online"), "true").await;
    until("it is told again, and obeys", || {
        devices.told(&device) == ["on"]
    })
    .await;
    until("the order confirmed", || {
        node.journal
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, JournalEntry::Confirmed { .. }))
    })
    .await;
}

/// A broker of this test's own (scripts/mosquitto on another port), which
/// it may restart without disturbing the other tests.
struct OwnBroker {
    dir: String,
    port: u16,
}

impl OwnBroker {
    fn script(&self, action: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/mosquitto");
        let out = std::process::Command::new(script)
            .arg(action)
            .env("FEDWATT_MQTT_DIR", &self.dir)
            .env("FEDWATT_MQTT_PORT", self.port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/mosquitto {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.script("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_the_node_reconnects_and_no_order_is_lost() {
    let Some((host, _)) = broker() else { return };
    let own = OwnBroker {
        dir: format!("/tmp/fedwatt-mqtt-restart-{}", std::process::id()),
        // Below the ephemeral ports (see scripts/mosquitto): the node and
        // the device reconnect in a loop while this broker is down.
        port: 21_900 + 2 * (std::process::id() % 45) as u16,
    };
    own.script("start");
    let devices = Devices::default();
    let device = unique("wh-restart");
    let sim = devices.start(&host, own.port, "restart", &[&device]).await;
    let node = start(
        &host,
        own.port,
        "restart",
        vec![equipment(
            "water-heater",
            Firmware::Tasmota,
            &device,
            &["all"],
        )],
    );
    until("the heater on", || devices.told(&device) == ["ON"]).await;
    // A shed that starts in a second: its order falls in the outage.
    let first = format!(
        r#"{{"kind":"shed","group":"all","from":{},"until":{}}}"#,
        now_s() + 1,
        now_s() + 6
    );
    send(&sim, runtime::stimulation_topic(&node.client_id), first).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(sim);

    // The broker goes away and comes back.
    let asked_before = devices.asked.lock().unwrap().len();
    own.script("restart");
    let sim = devices
        .start(&host, own.port, "restart-again", &[&device])
        .await;
    // Back, the node subscribes again and asks its devices where they are.
    until("the node back, asking its device", || {
        devices.asked.lock().unwrap().len() > asked_before
    })
    .await;
    until(
        "the order decided in the outage reaches the device, and its end's",
        || devices.told(&device) == ["ON", "OFF", "ON"],
    )
    .await;
    // And the node takes new stimulations.
    let until_s = now_s() + 4;
    let shed = format!(r#"{{"kind":"shed","group":"all","until":{until_s}}}"#);
    send(&sim, runtime::stimulation_topic(&node.client_id), shed).await;
    until("the shed's order reaches the device", || {
        devices.told(&device).ends_with(&["OFF".to_owned()])
    })
    .await;
    until("and its end's", || {
        devices
            .told(&device)
            .ends_with(&["OFF".to_owned(), "ON".to_owned()])
    })
    .await;
    until("each confirmed", || {
        let journal = node.journal.lock().unwrap();
        journal
            .iter()
            .filter(|e| matches!(e, JournalEntry::Confirmed { .. }))
            .count()
            >= 5
    })
    .await;
}

/// Whether the journal shows `equipment` moving from `from` to `to`.
fn moved(node: &Node, equipment: &str, from: State, to: State) -> bool {
    node.journal.lock().unwrap().iter().any(|e| {
        matches!(e, JournalEntry::Transition { equipment: q, from: f, to: t, .. }
            if q == equipment && *f == from && *t == to)
    })
}

fn refused(node: &Node, reason: &str) -> bool {
    node.journal
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, JournalEntry::Refused { reason: r, .. } if r.contains(reason)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dishwasher_in_stand_by_starts_in_its_slot_and_returns_to_manual() {
    let Some((host, port)) = broker() else { return };
    let devices = Devices::default();
    // A Shelly Plus Plug S (Gen2 RPC) powers it; a Zigbee finger presses
    // its start button.
    let (plug, finger) = (unique("plusplug-dw"), unique("finger-dw"));
    let sim = devices
        .start(&host, port, "dishwasher", &[&plug, &finger])
        .await;
    let mut dishwasher = equipment("dishwasher", Firmware::ShellyGen2, &plug, &[]);
    dishwasher.kind = EquipmentKind::Dishwasher;
    dishwasher.typology = Typology::PlugAndFinger;
    dishwasher.devices.push(DeviceConfig {
        part: Part::Finger,
        address: DeviceAddress {
            firmware: Firmware::Zigbee2Mqtt,
            topic: finger.clone(),
            channel: 0,
        },
    });
    dishwasher.cycle.idle_for = 1_000_000;
    let node = start(&host, port, "dishwasher", vec![dishwasher]);
    until("stand-by: its plug off, waiting for its slot", || {
        devices.told(&plug) == ["off"]
            && moved(&node, "dishwasher", State::NotCommanded, State::StandBy)
    })
    .await;
    let t = now_s() + 1;
    let plan = format!(r#"{{"slots":[[{},{}]]}}"#, t + 2, t + 900);
    send(
        &sim,
        runtime::plan_topic(&node.client_id, "dishwasher"),
        plan,
    )
    .await;
    until(
        "launched in its slot: plug on, start button pressed",
        || devices.told(&plug) == ["off", "on"] && devices.told(&finger) == ["ON"],
    )
    .await;
    assert!(now_s() >= t + 2, "launched in its slot, not before");
    assert!(moved(&node, "dishwasher", State::StandBy, State::Running));
    until("the plug's and the finger's orders confirmed", || {
        node.journal
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, JournalEntry::Confirmed { .. }))
            .count()
            == 3
    })
    .await;
    // The machine runs (its plug measures it), then stays idle: its cycle
    // is over and the household has it back.
    let status = format!("{plug}/status/switch:0");
    send(&sim, &status, r#"{"id":0,"output":true,"apower":1850.5}"#).await;
    send(&sim, &status, r#"{"id":0,"output":true,"apower":1.2}"#).await;
    until("back to manual once idle", || {
        moved(&node, "dishwasher", State::Running, State::Manual)
    })
    .await;
    assert_eq!(devices.told(&plug), ["off", "on"], "manual: left powered");
    // A power reading that is no number is refused; the loop goes on.
    send(&sim, &status, r#"{"id":0,"output":true,"apower":"lots"}"#).await;
    until("the refusal", || {
        refused(&node, "power \"lots\" is not a number")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plate_shows_each_equipment_and_its_toggle_switches_manual_and_piloted() {
    let Some((host, port)) = broker() else { return };
    let devices = Devices::default();
    // The water heater is on the plate's own relay; the dryer on a
    // Zigbee plug.
    let (plate, dryer_plug) = (unique("plate"), unique("z-dryer"));
    let sim = devices
        .start(&host, port, "plate", &[&plate, &dryer_plug])
        .await;
    let mut dryer = equipment("dryer", Firmware::Zigbee2Mqtt, &dryer_plug, &[]);
    dryer.kind = EquipmentKind::Dryer;
    let node = start_with(
        &host,
        port,
        "plate",
        vec![
            equipment("water-heater", Firmware::OpenHasp, &plate, &[]),
            dryer,
        ],
        vec![DisplayConfig {
            plate: plate.clone(),
            equipments: vec!["water-heater".into(), "dryer".into()],
        }],
        Vec::new(),
    );
    // The plate says it is online (retained, as openHASP does): drawn.
    sim.publish(
        format!("hasp/{plate}/LWT"),
        QoS::AtLeastOnce,
        true,
        "online",
    )
    .await
    .unwrap();
    let shown = |page, id, property| devices.shown(&plate, page, id, property);
    until("both pages drawn, with their toggles", || {
        shown(2, 1, "text") == Some(json!("water-heater"))
            && shown(3, 1, "text") == Some(json!("dryer"))
            && shown(3, 4, "obj") == Some(json!("roller"))
    })
    .await;
    until("piloted: green; the heater on, its LED green", || {
        shown(2, 3, "bg_color") == Some(json!("#2E7D32"))
            && devices.told(&plate) == ["on"]
            && shown(1, 10, "bg_color") == Some(json!("#43A047"))
    })
    .await;

    // The household presses the water heater's toggle: manual, red.
    let toggle = format!("hasp/{plate}/state/p2b3");
    send(&sim, &toggle, r#"{"event":"down","val":1}"#).await;
    send(&sim, &toggle, r#"{"event":"up","val":0}"#).await;
    until("manual, and the plate shows it", || {
        moved(&node, "water-heater", State::PilotedOn, State::Manual)
            && shown(2, 3, "bg_color") == Some(json!("#C62828"))
            && shown(2, 2, "text") == Some(json!("manual"))
    })
    .await;
    // And back.
    send(&sim, &toggle, r#"{"event":"up","val":1}"#).await;
    until("piloted again, and shown", || {
        moved(&node, "water-heater", State::Manual, State::PilotedOff)
            && shown(2, 3, "bg_color") == Some(json!("#2E7D32"))
    })
    .await;
    // The dryer's end-by hour, from its roller.
    send(
        &sim,
        format!("hasp/{plate}/state/p3b4"),
        r#"{"event":"changed","val":7}"#,
    )
    .await;

    // Bad touches are refused with their reason; the loop goes on.
    send(&sim, &toggle, "{").await;
    send(
        &sim,
        format!("hasp/{plate}/state/p9b3"),
        r#"{"event":"up"}"#,
    )
    .await;
    send(
        &sim,
        format!("hasp/{plate}/state/p3b4"),
        r#"{"event":"changed","val":24}"#,
    )
    .await;
    until("each refused with its reason", || {
        refused(&node, "not JSON")
            && refused(&node, "page 9 shows no equipment")
            && refused(&node, "hour 24 is not 0 to 23")
    })
    .await;

    // The plate restarts: blank, then online again, it is drawn again with
    // what holds now.
    send(&sim, format!("hasp/{plate}/LWT"), "offline").await;
    devices.plates.lock().unwrap().remove(&plate);
    send(&sim, format!("hasp/{plate}/LWT"), "online").await;
    until("redrawn as things stand", || {
        shown(2, 3, "bg_color") == Some(json!("#2E7D32"))
            && shown(3, 4, "val") == Some(json!(7))
            && shown(1, 12, "obj") == Some(json!("led"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_adds_equipments_sets_modes_and_names_what_is_wrong() {
    let Some((host, port)) = broker() else { return };
    let devices = Devices::default();
    let (a, b) = (unique("wh-handle"), unique("sh-handle"));
    let _sim = devices.start(&host, port, "handle", &[&a, &b]).await;
    let node = start(
        &host,
        port,
        "handle",
        vec![equipment("water-heater", Firmware::Tasmota, &a, &[])],
    );
    until("the heater on", || devices.told(&a) == ["ON"]).await;
    // An equipment added while the node runs is driven at once.
    let heater = equipment("heater", Firmware::ShellyGen1, &b, &["east"]);
    node.handle.add_equipment(heater.clone()).await.unwrap();
    until("the new one on", || devices.told(&b) == ["on"]).await;
    assert_eq!(
        node.handle
            .add_equipment(heater)
            .await
            .unwrap_err()
            .to_string(),
        "an equipment named \"heater\" is driven already"
    );
    node.handle.set_mode("heater", Mode::Manual).await.unwrap();
    let started = Instant::now();
    loop {
        let status = node.handle.status().await.unwrap();
        let heater = status.iter().find(|e| e.name == "heater").unwrap();
        assert_eq!((heater.mode, heater.state), (Mode::Manual, State::Manual));
        if heater.devices[0].measured == Measured::On {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited 30 s for the heater's plug to say it is on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What cannot be is refused, named; nothing is applied.
    let no = |e: control::Error| e.to_string();
    assert_eq!(
        no(node
            .handle
            .set_mode("boiler", Mode::Manual)
            .await
            .unwrap_err()),
        "no equipment is named \"boiler\""
    );
    assert_eq!(
        no(node
            .handle
            .set_plan("water-heater", json!({"start": 1}), runtime::Source::Api)
            .await
            .unwrap_err()),
        "a plan needs \"decisions\" (with \"start\") or \"slots\""
    );
    let shed =
        json!({"kind": "shed", "equipments": ["water-heater", "boiler"], "until": now_s() + 60});
    assert_eq!(
        no(node
            .handle
            .stimulate(shed, runtime::Source::Api)
            .await
            .unwrap_err()),
        "no equipment is named \"boiler\""
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(devices.told(&a), ["ON"], "a refused shed cuts nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_peak_windows_and_signals_decide_where_no_plan_does() {
    let Some((host, port)) = broker() else { return };
    let devices = Devices::default();
    let (heater, now_plug, later_plug) = (unique("wh-sig"), unique("dw-now"), unique("dw-later"));
    let sim = devices
        .start(&host, port, "signals", &[&heater, &now_plug, &later_plug])
        .await;
    let dishwasher = |name: &str, plug: &str, site: &str| {
        let mut d = equipment(name, Firmware::Tasmota, plug, &[]);
        d.kind = EquipmentKind::Dishwasher;
        d.site = Some(site.to_owned());
        d
    };
    // Site "night" has its window in two hours (UTC); site "always" is
    // off-peak all day.
    let hm = |s: i64| format!("{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60);
    let later = format!("{}-{}", hm(now_s() + 7200), hm(now_s() + 10800));
    let sites = vec![
        SiteConfig {
            name: "night".into(),
            off_peak: OffPeak::parse(&[later]).unwrap(),
        },
        SiteConfig {
            name: "always".into(),
            off_peak: OffPeak::parse(&["00:00-24:00".into()]).unwrap(),
        },
    ];
    let node = start_with(
        &host,
        port,
        "signals",
        vec![
            equipment("water-heater", Firmware::Tasmota, &heater, &[]),
            dishwasher("dw-now", &now_plug, "always"),
            dishwasher("dw-later", &later_plug, "night"),
        ],
        Vec::new(),
        sites,
    );
    until(
        "a machine in its site's off-peak window is launched; the other waits",
        || devices.told(&now_plug) == ["OFF", "ON"] && devices.told(&later_plug) == ["OFF"],
    )
    .await;
    until("no window, no signal: the heater kept on", || {
        devices.told(&heater) == ["ON"]
    })
    .await;
    // The local signal says deficit for two seconds: the heater waits.
    let stimulate = |body: String| {
        let sim = sim.clone();
        let topic = runtime::stimulation_topic(&node.client_id);
        async move { send(&sim, topic, body).await }
    };
    stimulate(format!(
        r#"{{"kind":"signal","level":"--","until":{}}}"#,
        now_s() + 2
    ))
    .await;
    until("off while the grid is short, on again after", || {
        devices.told(&heater) == ["ON", "OFF", "ON"]
    })
    .await;
    // Ecowatt red for this hour, then a newer forecast says green.
    let hour = now_s() / 3600 * 3600;
    stimulate(format!(
        r#"{{"kind":"ecowatt","from":{hour},"levels":[3]}}"#
    ))
    .await;
    until("off in a red Ecowatt hour", || {
        devices.told(&heater) == ["ON", "OFF", "ON", "OFF"]
    })
    .await;
    stimulate(format!(
        r#"{{"kind":"ecowatt","from":{hour},"levels":[1]}}"#
    ))
    .await;
    until("on again with the newer forecast", || {
        devices.told(&heater) == ["ON", "OFF", "ON", "OFF", "ON"]
    })
    .await;
    stimulate(r#"{"kind":"ecowatt","from":1,"levels":[1]}"#.to_owned()).await;
    until("a malformed signal refused by name", || {
        refused(
            &node,
            "an ecowatt stimulation's from must be on an hour boundary",
        )
    })
    .await;
    assert_eq!(
        devices.told(&later_plug),
        ["OFF"],
        "still waiting for its window"
    );
}
