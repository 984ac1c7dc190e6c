//! The demo's household: a water heater, a dishwasher and a car. Their
//! devices are simulated in the demo's process and speak their firmware's
//! own topics on the node's own MQTT broker — a Tasmota plug, a Shelly
//! Plus plug (Gen2 RPC) with a Zigbee finger on the dishwasher's start
//! button, a Shelly Gen1 relay on the charger — so the node drives them as
//! it would real ones, and a newcomer can watch it do so.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use control::settings::{DeviceSettings, EquipmentSettings};
use control_mqtt::SiteSettings;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};

use crate::config::Control;

const WATER_HEATER: &str = "demo-water-heater";
const DISHWASHER_PLUG: &str = "demo-dishwasher-plug";
const DISHWASHER_FINGER: &str = "demo-dishwasher-finger";
const CHARGER: &str = "demo-ev-charger";

/// A dishwasher's cycle in the demo: short, to be watched.
const CYCLE: Duration = Duration::from_secs(180);
/// A car's charge in the demo.
const CHARGE: Duration = Duration::from_secs(600);

/// The `[control]` section of the demo: the household's equipments on the
/// node's own broker, listening on `mqtt_listen`.
pub fn control(mqtt_listen: &str) -> Control {
    let device = |part: &str, firmware: &str, topic: &str| DeviceSettings {
        part: part.into(),
        firmware: firmware.into(),
        topic: topic.into(),
        channel: 0,
    };
    let equipment =
        |name: &str, kind: &str, typology: &str, devices: Vec<DeviceSettings>| EquipmentSettings {
            site: Some("demo-house".into()),
            groups: vec!["demo".into()],
            min_on: 60,
            min_off: 60,
            idle_minutes: 1,
            device: devices,
            ..EquipmentSettings::new(name, kind, typology, "piloted")
        };
    Control {
        listen: mqtt_listen.into(),
        client_id: "fedwatt-demo".into(),
        equipment: vec![
            equipment(
                "water-heater",
                "water-heater",
                "plug",
                vec![device("switch", "tasmota", WATER_HEATER)],
            ),
            equipment(
                "dishwasher",
                "dishwasher",
                "plug-and-finger",
                vec![
                    device("switch", "shelly-gen2", DISHWASHER_PLUG),
                    device("finger", "zigbee2mqtt", DISHWASHER_FINGER),
                ],
            ),
            equipment(
                "car",
                "electric-vehicle",
                "plug",
                vec![device("switch", "shelly-gen1", CHARGER)],
            ),
        ],
        site: vec![SiteSettings {
            name: "demo-house".into(),
            off_peak: vec!["22:00-06:00".into()],
        }],
        ..Control::default()
    }
}

/// What the simulated devices are doing.
#[derive(Default)]
struct House {
    /// Switch state of each device, by its topic name.
    on: HashMap<&'static str, bool>,
    /// When the dishwasher's cycle started, if it runs.
    cycle: Option<Instant>,
    /// When the car started charging, if it does.
    charging: Option<Instant>,
}

impl House {
    fn is_on(&self, device: &str) -> bool {
        self.on.get(device).copied().unwrap_or(false)
    }

    fn water_heater_watts(&self) -> f64 {
        if self.is_on(WATER_HEATER) {
            2200.0
        } else {
            0.0
        }
    }

    fn dishwasher_watts(&self) -> f64 {
        match self.cycle {
            Some(started) if self.is_on(DISHWASHER_PLUG) && started.elapsed() < CYCLE => 1950.0,
            _ if self.is_on(DISHWASHER_PLUG) => 1.5,
            _ => 0.0,
        }
    }

    fn charger_watts(&self) -> f64 {
        match self.charging {
            Some(started) if self.is_on(CHARGER) && started.elapsed() < CHARGE => 7400.0,
            _ => 0.0,
        }
    }
}

/// Runs the household's devices on the broker at `broker` (host:port), in
/// a thread of their own, for as long as the demo runs.
pub fn spawn_devices(broker: std::net::SocketAddr) {
    std::thread::spawn(move || {
        let mut options =
            MqttOptions::new("demo-household", broker.ip().to_string(), broker.port());
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut connection) = Client::new(options, 1000);
        let mut house = House::default();
        let mut last_report = Instant::now();
        loop {
            match connection.recv_timeout(Duration::from_secs(1)) {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => hello(&client),
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    let payload = String::from_utf8_lossy(&p.payload).into_owned();
                    for (topic, body) in obey(&mut house, &p.topic, &payload) {
                        let _ = client.try_publish(topic, QoS::AtLeastOnce, false, body);
                    }
                }
                Ok(Ok(_)) | Err(rumqttc::RecvTimeoutError::Timeout) => {}
                // The broker is not up yet, or went away: try again.
                Ok(Err(_)) => std::thread::sleep(Duration::from_secs(1)),
                Err(rumqttc::RecvTimeoutError::Disconnected) => return,
            }
            // Each device reports its power every ten seconds.
            if last_report.elapsed() >= Duration::from_secs(10) {
                last_report = Instant::now();
                for (topic, body) in report(&house) {
                    let _ = client.try_publish(topic, QoS::AtMostOnce, false, body);
                }
            }
        }
    });
}

/// Subscribes to the devices' command topics and says they are online, as
/// the devices do when they connect.
fn hello(client: &Client) {
    for topic in [
        format!("cmnd/{WATER_HEATER}/POWER1"),
        format!("{DISHWASHER_PLUG}/rpc"),
        format!("zigbee2mqtt/{DISHWASHER_FINGER}/set"),
        format!("zigbee2mqtt/{DISHWASHER_FINGER}/get"),
        format!("shellies/{CHARGER}/relay/0/command"),
        format!("shellies/{CHARGER}/command"),
    ] {
        let _ = client.try_subscribe(topic, QoS::AtLeastOnce);
    }
    for (topic, body) in [
        (format!("tele/{WATER_HEATER}/LWT"), "Online"),
        (format!("{DISHWASHER_PLUG}/online"), "true"),
        (
            format!("zigbee2mqtt/{DISHWASHER_FINGER}/availability"),
            r#"{"state":"online"}"#,
        ),
        (format!("shellies/{CHARGER}/online"), "true"),
    ] {
        let _ = client.try_publish(topic, QoS::AtLeastOnce, true, body);
    }
}

/// What a device does with a message: the messages it publishes back.
fn obey(house: &mut House, topic: &str, payload: &str) -> Vec<(String, String)> {
    let word = |on: bool, upper: bool| match (on, upper) {
        (true, true) => "ON",
        (false, true) => "OFF",
        (true, false) => "on",
        (false, false) => "off",
    };
    if topic == format!("cmnd/{WATER_HEATER}/POWER1") {
        match payload {
            "ON" => house.on.insert(WATER_HEATER, true),
            "OFF" => house.on.insert(WATER_HEATER, false),
            _ => None,
        };
        let on = house.is_on(WATER_HEATER);
        return vec![(
            format!("stat/{WATER_HEATER}/RESULT"),
            json!({ "POWER1": word(on, true) }).to_string(),
        )];
    }
    if topic == format!("{DISHWASHER_PLUG}/rpc") {
        let Ok(request) = serde_json::from_str::<Value>(payload) else {
            return Vec::new();
        };
        let (id, src) = (request["id"].clone(), request["src"].as_str().unwrap_or(""));
        let was_on = house.is_on(DISHWASHER_PLUG);
        if request["method"] == "Switch.Set" {
            let on = request["params"]["on"].as_bool().unwrap_or(was_on);
            house.on.insert(DISHWASHER_PLUG, on);
            if !on {
                house.cycle = None;
            }
        }
        let on = house.is_on(DISHWASHER_PLUG);
        let watts = house.dishwasher_watts();
        return vec![
            (
                format!("{src}/rpc"),
                json!({"id": id, "src": DISHWASHER_PLUG, "dst": src,
                       "result": {"was_on": was_on, "output": on, "apower": watts}})
                .to_string(),
            ),
            (
                format!("{DISHWASHER_PLUG}/status/switch:0"),
                json!({"id": 0, "output": on, "apower": watts}).to_string(),
            ),
        ];
    }
    if topic.starts_with(&format!("zigbee2mqtt/{DISHWASHER_FINGER}/")) {
        // Pressed with the machine powered: its cycle starts.
        if topic.ends_with("/set") && payload.contains("ON") && house.is_on(DISHWASHER_PLUG) {
            house.cycle = Some(Instant::now());
        }
        let pressed = topic.ends_with("/set") && payload.contains("ON");
        return vec![(
            format!("zigbee2mqtt/{DISHWASHER_FINGER}"),
            json!({"state": word(pressed, true), "battery": 87}).to_string(),
        )];
    }
    if topic == format!("shellies/{CHARGER}/relay/0/command") {
        let on = payload == "on";
        if on && !house.is_on(CHARGER) {
            house.charging = Some(Instant::now());
        }
        house.on.insert(CHARGER, on);
        return vec![
            (
                format!("shellies/{CHARGER}/relay/0"),
                word(on, false).into(),
            ),
            (
                format!("shellies/{CHARGER}/relay/0/power"),
                house.charger_watts().to_string(),
            ),
        ];
    }
    if topic == format!("shellies/{CHARGER}/command") && payload == "update" {
        let on = house.is_on(CHARGER);
        return vec![(
            format!("shellies/{CHARGER}/relay/0"),
            word(on, false).into(),
        )];
    }
    Vec::new()
}

/// The power each device measures, as they report it every few seconds.
fn report(house: &House) -> Vec<(String, String)> {
    vec![
        (
            format!("tele/{WATER_HEATER}/SENSOR"),
            json!({"ENERGY": {"Power": house.water_heater_watts()}}).to_string(),
        ),
        (
            format!("{DISHWASHER_PLUG}/status/switch:0"),
            json!({"id": 0, "output": house.is_on(DISHWASHER_PLUG), "apower": house.dishwasher_watts()})
                .to_string(),
        ),
        (
            format!("shellies/{CHARGER}/relay/0/power"),
            house.charger_watts().to_string(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_households_settings_are_valid() {
        let control = control("127.0.0.1:18830");
        for e in &control.equipment {
            let config = e.to_config().unwrap();
            control::fleet::check_equipment(&config).unwrap();
        }
    }

    #[test]
    fn a_press_on_the_powered_dishwasher_starts_its_cycle() {
        let mut house = House::default();
        let rpc = format!("{DISHWASHER_PLUG}/rpc");
        let on =
            r#"{"id":1,"src":"fedwatt/n/reply","method":"Switch.Set","params":{"id":0,"on":true}}"#;
        let answers = obey(&mut house, &rpc, on);
        assert_eq!(answers[0].0, "fedwatt/n/reply/rpc");
        assert!(
            (house.dishwasher_watts() - 1.5).abs() < 1e-9,
            "powered, idle"
        );
        obey(
            &mut house,
            &format!("zigbee2mqtt/{DISHWASHER_FINGER}/set"),
            r#"{"state":"ON"}"#,
        );
        assert!(house.dishwasher_watts() > 1000.0, "running");
    }
}
