//! How equipments and their devices are written in the node's TOML file
//! (`[[control.equipment]]`) and in the HTTP API's JSON: names for every
//! word, whole seconds and minutes, a working default for every setting.
//! [`EquipmentSettings::to_config`] checks them and gives what the control
//! loop runs on.

use serde::{Deserialize, Serialize};

use crate::driver::DeviceAddress;
use crate::equipment::{Cycle, Safety};
use crate::fleet::{DeviceConfig, EquipmentConfig};
use crate::{Error, Result};

/// An equipment as configured: `[[control.equipment]]` in the node's
/// TOML file, or the JSON body that adds one over the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquipmentSettings {
    /// Its name: unique; in topics, stimulations and stream names.
    pub name: String,
    /// `water-heater`, `heater`, `dishwasher`, `washing-machine`, `dryer`,
    /// `machine` or `electric-vehicle`.
    pub kind: String,
    /// `plug`, `plug-and-finger`, `relay-and-meter`, `two-relays` or
    /// `inverted-relay`.
    pub typology: String,
    /// `manual`, `piloted`, `not-piloted` or `disabled` at start-up.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Groups it belongs to, for stimulations.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Its site (`[[control.site]]`), whose off-peak windows it follows
    /// where no plan decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Seconds a load the node switched on stays on at least.
    #[serde(default = "five_minutes")]
    pub min_on: u64,
    /// Seconds a load the node switched off stays off at least.
    #[serde(default = "five_minutes")]
    pub min_off: u64,
    /// Seconds a shed lasts at most.
    #[serde(default = "two_hours")]
    pub max_shed: u64,
    /// Minutes a machine's cycle lasts: it is launched this long before
    /// the household's end-by time at the latest.
    #[serde(default = "two_hours_in_minutes")]
    pub cycle_minutes: u64,
    /// Below this power (W) the load is idle…
    #[serde(default = "five_watts")]
    pub idle_below_w: f64,
    /// …and idle this many minutes after drawing power, its cycle or its
    /// charge is over.
    #[serde(default = "ten")]
    pub idle_minutes: u64,
    /// Minutes after which a launched cycle no meter watches is over.
    #[serde(default = "four_hours_in_minutes")]
    pub longest_cycle_minutes: u64,
    /// A car's battery capacity, in kWh.
    #[serde(default = "fifty")]
    pub battery_kwh: f64,
    /// A car's charging power, in kW.
    #[serde(default = "seven_point_four")]
    pub charge_kw: f64,
    /// `[[control.equipment.device]]`: its devices.
    pub device: Vec<DeviceSettings>,
}

fn default_mode() -> String {
    "manual".into()
}

fn five_minutes() -> u64 {
    300
}

fn two_hours() -> u64 {
    7200
}

fn two_hours_in_minutes() -> u64 {
    120
}

fn four_hours_in_minutes() -> u64 {
    240
}

fn five_watts() -> f64 {
    5.0
}

fn ten() -> u64 {
    10
}

fn fifty() -> f64 {
    50.0
}

fn seven_point_four() -> f64 {
    7.4
}

/// One of its devices: `[[control.equipment.device]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSettings {
    /// `switch`, `second-relay` or `finger`.
    pub part: String,
    /// `shelly-gen1`, `shelly-gen2`, `tasmota`, `zigbee2mqtt` or `openhasp`.
    pub firmware: String,
    /// Its identity in its firmware's topics (Shelly id, Gen2 prefix,
    /// Tasmota topic, Zigbee2MQTT name, openHASP plate).
    pub topic: String,
    /// Its relay number, from 0.
    #[serde(default)]
    pub channel: u8,
}

impl EquipmentSettings {
    /// An equipment with every other setting at its default, and no
    /// device yet.
    pub fn new(name: &str, kind: &str, typology: &str, mode: &str) -> EquipmentSettings {
        EquipmentSettings {
            name: name.to_owned(),
            kind: kind.to_owned(),
            typology: typology.to_owned(),
            mode: mode.to_owned(),
            groups: Vec::new(),
            site: None,
            min_on: five_minutes(),
            min_off: five_minutes(),
            max_shed: two_hours(),
            cycle_minutes: two_hours_in_minutes(),
            idle_below_w: five_watts(),
            idle_minutes: ten(),
            longest_cycle_minutes: four_hours_in_minutes(),
            battery_kwh: fifty(),
            charge_kw: seven_point_four(),
            device: Vec::new(),
        }
    }

    /// What the control loop runs on, or an error naming the equipment and
    /// the setting that is wrong.
    pub fn to_config(&self) -> Result<EquipmentConfig> {
        let named = |what: &str, err: Error| {
            Error::Invalid(format!("equipment {:?}: {what}: {err}", self.name))
        };
        let mut devices = Vec::new();
        for d in &self.device {
            devices.push(DeviceConfig {
                part: d.part.parse().map_err(|err| named("device part", err))?,
                address: DeviceAddress {
                    firmware: d
                        .firmware
                        .parse()
                        .map_err(|err| named("device firmware", err))?,
                    topic: d.topic.clone(),
                    channel: d.channel,
                },
            });
        }
        for (key, value) in [
            ("idle_below_w", self.idle_below_w),
            ("battery_kwh", self.battery_kwh),
            ("charge_kw", self.charge_kw),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(Error::Invalid(format!(
                    "equipment {:?}: {key} = {value}: expected a number, 0 or more",
                    self.name
                )));
            }
        }
        let micros = |s: u64| s.saturating_mul(1_000_000).min(i64::MAX as u64) as i64;
        let minutes = |m: u64| micros(m.saturating_mul(60));
        Ok(EquipmentConfig {
            name: self.name.clone(),
            kind: self.kind.parse().map_err(|err| named("kind", err))?,
            typology: self
                .typology
                .parse()
                .map_err(|err| named("typology", err))?,
            mode: self.mode.parse().map_err(|err| named("mode", err))?,
            safety: Safety {
                min_on: micros(self.min_on),
                min_off: micros(self.min_off),
                max_shed: micros(self.max_shed),
            },
            cycle: Cycle {
                duration: minutes(self.cycle_minutes),
                idle_below: self.idle_below_w,
                idle_for: minutes(self.idle_minutes),
                longest: minutes(self.longest_cycle_minutes),
                battery_wh: self.battery_kwh * 1000.0,
                charge_w: self.charge_kw * 1000.0,
            },
            groups: self.groups.clone(),
            site: self.site.clone(),
            devices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_json_get_their_defaults_and_mistakes_are_named() {
        let settings: EquipmentSettings = serde_json::from_value(serde_json::json!({
            "name": "wh", "kind": "water-heater", "typology": "plug",
            "device": [{"part": "switch", "firmware": "tasmota", "topic": "tasmota_1"}]
        }))
        .unwrap();
        let config = settings.to_config().unwrap();
        assert_eq!(config.safety, Safety::default());
        assert_eq!(config.cycle, Cycle::default());
        assert_eq!(config.mode, crate::model::Mode::Manual);
        let mut bad = settings.clone();
        bad.device[0].firmware = "espurna".into();
        assert!(
            bad.to_config()
                .unwrap_err()
                .to_string()
                .starts_with("equipment \"wh\": device firmware: \"espurna\" is not a known")
        );
        bad = settings;
        bad.charge_kw = f64::NAN;
        assert_eq!(
            bad.to_config().unwrap_err().to_string(),
            "equipment \"wh\": charge_kw = NaN: expected a number, 0 or more"
        );
        let unknown = serde_json::from_value::<EquipmentSettings>(serde_json::json!({
            "name": "wh", "kind": "water-heater", "typology": "plug", "device": [], "colour": 1
        }));
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `colour`")
        );
    }
}
