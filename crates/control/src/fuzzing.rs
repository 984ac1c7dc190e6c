//! What the control fuzz targets and their regression tests check: no
//! input from outside — a device's message, a plan, a stimulation, a touch
//! on a plate — makes the control loop's pure core panic, and what is
//! accepted keeps the invariants the loop relies on.

#![allow(clippy::expect_used)] // This module exists to panic when an invariant breaks.

use serde_json::Value;

use crate::device::DeviceLink;
use crate::display::{self, DisplayAction, EquipmentView};
use crate::driver::{DeviceAddress, Observation, OpenHasp, driver};
use crate::equipment::{Equipment, Safety};
use crate::machine::State;
use crate::model::{EquipmentKind, Firmware, Measured, Mode, Typology};
use crate::plan::Plan;
use crate::signals::Signals;
use crate::stimulation::{Ask, ECOWATT_HOURS, HOUR, LONGEST, Stimulation};

/// Fixed "now" (a quarter-hour boundary), so that runs repeat.
const NOW: i64 = 1_700_000_100 * 1_000_000;

/// The topics a device of each firmware speaks on, for the device named
/// `dev`.
const TOPICS: &[(Firmware, &str)] = &[
    (Firmware::ShellyGen1, "shellies/dev/relay/0"),
    (Firmware::ShellyGen1, "shellies/dev/relay/0/power"),
    (Firmware::ShellyGen1, "shellies/dev/online"),
    (Firmware::ShellyGen2, "dev/status/switch:0"),
    (Firmware::ShellyGen2, "dev/events/rpc"),
    (Firmware::ShellyGen2, "dev/online"),
    (Firmware::ShellyGen2, "node/rpc"),
    (Firmware::Tasmota, "stat/dev/RESULT"),
    (Firmware::Tasmota, "stat/dev/POWER1"),
    (Firmware::Tasmota, "tele/dev/STATE"),
    (Firmware::Tasmota, "tele/dev/SENSOR"),
    (Firmware::Tasmota, "tele/dev/LWT"),
    (Firmware::Zigbee2Mqtt, "zigbee2mqtt/dev"),
    (Firmware::Zigbee2Mqtt, "zigbee2mqtt/dev/availability"),
    (Firmware::OpenHasp, "hasp/dev/state/output1"),
    (Firmware::OpenHasp, "hasp/dev/LWT"),
];

/// Panics if a device message breaks an invariant. The first byte picks
/// the firmware and topic; the rest is the payload.
pub fn check_device_message(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let (firmware, topic) = TOPICS[usize::from(pick) % TOPICS.len()];
    let address = DeviceAddress {
        firmware,
        topic: "dev".into(),
        channel: 0,
    };
    let device = driver(&address, "node").expect("a valid address");
    let Ok(seen) = device.read(topic, payload) else {
        return;
    };
    let mut link = DeviceLink::new(NOW);
    let mut id = 0;
    link.order(NOW, crate::driver::Order::On, 1);
    for observation in &seen {
        if let Observation::Power(w) = observation {
            assert!(w.is_finite(), "power {w} accepted");
        }
        link.observe(NOW + 1, observation, || {
            id += 1;
            id
        });
    }
}

/// Panics if a plan breaks an invariant: an accepted plan decides
/// something only where it covers, its next change comes later, and an
/// equipment follows it without panicking.
pub fn check_plan(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(plan) = Plan::from_json(&value) else {
        return;
    };
    let mut e = Equipment::new(
        EquipmentKind::WaterHeater,
        Typology::Plug,
        Mode::Piloted,
        Safety::default(),
    );
    e.start(NOW);
    e.set_plan(NOW, plan.clone());
    let mut now = NOW - 86_400_000_000;
    for _ in 0..400 {
        let _ = plan.decision(now);
        match plan.next_change(now) {
            Some(next) => {
                assert!(next > now, "next change {next} not after {now}");
                now = next;
            }
            None => break,
        }
        e.tick(now);
    }
}

/// Panics if a stimulation breaks an invariant: an accepted one spans a
/// positive time within its limits, and equipments and signals take it.
pub fn check_stimulation(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(s) = Stimulation::from_json(&value, NOW) else {
        return;
    };
    assert!(s.until > s.from, "{s:?} ends before it starts");
    let longest = match &s.ask {
        Ask::Ecowatt(levels) => {
            assert!(!levels.is_empty() && levels.len() <= ECOWATT_HOURS);
            assert!(levels.iter().all(|l| (1..=3).contains(l)));
            HOUR * ECOWATT_HOURS as i64
        }
        _ => LONGEST,
    };
    assert!(s.until - s.from <= longest, "{s:?} lasts too long");
    let mut signals = Signals::default();
    signals.take(&s);
    let _ = (
        signals.local(s.from),
        signals.ecowatt(s.from),
        signals.tempo(s.from),
    );
    signals.prune(s.until);
    assert_eq!(signals, Signals::default(), "a signal outlived its end");
    let mut e = Equipment::new(
        EquipmentKind::Heater,
        Typology::TwoRelays,
        Mode::Piloted,
        Safety::default(),
    );
    e.start(NOW);
    e.shed_until(s.from.max(NOW), s.until);
    e.tick(s.until);
}

/// Panics if a touch on a plate breaks an invariant. The first byte picks
/// the object; the rest is the message.
pub fn check_display_event(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let (page, id) = (pick % 8, pick / 8 % 12);
    let plate = OpenHasp::new("plate");
    let topic = format!("hasp/plate/state/p{page}b{id}");
    let Ok(Some(event)) = plate.event(&topic, payload) else {
        return;
    };
    let views: Vec<EquipmentView> = [
        EquipmentKind::Dishwasher,
        EquipmentKind::WaterHeater,
        EquipmentKind::ElectricVehicle,
    ]
    .into_iter()
    .map(|kind| EquipmentView {
        label: kind.name().into(),
        kind,
        mode: Mode::Piloted,
        state: State::StandBy,
        measured: Measured::Unknown,
        end_by: None,
        target_charge: None,
    })
    .collect();
    if let Ok(Some(action)) = display::action(&views, &event) {
        let equipment = match action {
            DisplayAction::SetMode { equipment, .. }
            | DisplayAction::SetEndByHour { equipment, .. }
            | DisplayAction::SetEndByMinute { equipment, .. }
            | DisplayAction::SetTargetCharge { equipment, .. } => equipment,
        };
        assert!(
            equipment < views.len(),
            "{action:?} names no equipment of the plate"
        );
    }
}
