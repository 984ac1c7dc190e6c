//! The vocabulary of the control-command: what a household owns, how it is
//! wired, and who is in charge of it. Each word has one English name, used
//! in configuration files, the HTTP API and stream names.

use crate::{Error, Result};

/// Declares an enum whose variants have fixed names, with `name()`,
/// `ALL`, and `FromStr` that lists the accepted names when it refuses one.
macro_rules! named {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// Its name in configuration files and the API.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = $name::ALL.iter().map(|v| v.name()).collect();
                        Error::Invalid(format!(
                            "{s:?} is not a known {}; expected one of: {}",
                            $what,
                            names.join(", ")
                        ))
                    })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named! {
    /// What the household owns.
    EquipmentKind, "equipment kind" {
        /// A washing machine: one cycle, started once.
        WashingMachine = "washing-machine",
        /// A dishwasher: one cycle.
        Dishwasher = "dishwasher",
        /// A dryer: one cycle.
        Dryer = "dryer",
        /// Any other machine run in one cycle.
        Machine = "machine",
        /// A water heater, switched on and off.
        WaterHeater = "water-heater",
        /// A heater, switched between comfort (on) and eco (off).
        Heater = "heater",
        /// An electric car, charged to a target by a departure time.
        ElectricVehicle = "electric-vehicle",
    }
}

impl EquipmentKind {
    /// How it is driven.
    pub fn load(self) -> Load {
        match self {
            EquipmentKind::WashingMachine
            | EquipmentKind::Dishwasher
            | EquipmentKind::Dryer
            | EquipmentKind::Machine => Load::OneShot,
            EquipmentKind::WaterHeater | EquipmentKind::Heater => Load::Continuous,
            EquipmentKind::ElectricVehicle => Load::Charge,
        }
    }
}

/// How an equipment's consumption can be moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// One cycle, launched once in a slot, then the household takes over.
    OneShot,
    /// On or off in every slot.
    Continuous,
    /// Charged to a target by a deadline.
    Charge,
}

named! {
    /// How an equipment is wired: which devices, hence which state machine.
    Typology, "typology" {
        /// A controllable plug: on gives power, off cuts it.
        Plug = "plug",
        /// A plug and a finger that presses the machine's start button.
        PlugAndFinger = "plug-and-finger",
        /// A relay, and a meter that tells when the cycle ends.
        RelayAndMeter = "relay-and-meter",
        /// Two relays (a heater's comfort and eco wires).
        TwoRelays = "two-relays",
        /// A relay wired the other way: closed cuts the load.
        InvertedRelay = "inverted-relay",
    }
}

named! {
    /// Who is in charge of an equipment.
    Mode, "mode" {
        /// The node does not drive it (it may still measure it).
        NotPiloted = "not-piloted",
        /// The household drives it: the node keeps it powered.
        Manual = "manual",
        /// The node drives it from plans and stimulations.
        Piloted = "piloted",
        /// Out of service: no order is sent.
        Disabled = "disabled",
    }
}

named! {
    /// What a device says of itself.
    Measured, "measured state" {
        /// Switched on.
        On = "on",
        /// Switched off.
        Off = "off",
        /// It does not answer (offline, or an order went unconfirmed).
        CommunicationError = "communication-error",
        /// Not heard from yet.
        Unknown = "unknown",
    }
}

named! {
    /// What a device does for its equipment.
    Role, "device role" {
        /// Switches the load and measures its power.
        SwitchAndMeasure = "switch-and-measure",
        /// Switches the load.
        Switch = "switch",
        /// Measures the load's power.
        Measure = "measure",
        /// Presses the machine's start button.
        PressStart = "press-start",
        /// Shows the household the equipments and takes their choices.
        Display = "display",
    }
}

named! {
    /// A device's firmware: its MQTT topics and payloads.
    Firmware, "firmware" {
        /// Shelly first generation: `shellies/<id>/relay/<n>/command`.
        ShellyGen1 = "shelly-gen1",
        /// Shelly second generation and later: JSON-RPC on `<prefix>/rpc`.
        ShellyGen2 = "shelly-gen2",
        /// Tasmota: `cmnd/<topic>/POWER`.
        Tasmota = "tasmota",
        /// Zigbee2MQTT: `zigbee2mqtt/<name>/set`.
        Zigbee2Mqtt = "zigbee2mqtt",
        /// openHASP displays: `hasp/<plate>/…`.
        OpenHasp = "openhasp",
    }
}

named! {
    /// The five-level local signal: forecast of local surplus (`++`) or
    /// deficit (`--`).
    SignalLevel, "signal level" {
        /// Strong deficit: consume as little as possible.
        VeryLow = "--",
        /// Deficit.
        Low = "-",
        /// Neither.
        Neutral = "0",
        /// Surplus.
        High = "+",
        /// Strong surplus: consume now.
        VeryHigh = "++",
    }
}

named! {
    /// EDF Tempo day colour.
    TempoColour, "Tempo colour" {
        /// Cheapest days.
        Blue = "blue",
        /// Middle days.
        White = "white",
        /// The 22 dearest days of the year.
        Red = "red",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_unknown_ones_are_refused_with_the_choices() {
        for t in Typology::ALL {
            assert_eq!(t.name().parse::<Typology>().unwrap(), *t);
        }
        for l in SignalLevel::ALL {
            assert_eq!(l.to_string().parse::<SignalLevel>().unwrap(), *l);
        }
        assert_eq!(
            "boiler".parse::<EquipmentKind>().unwrap_err().to_string(),
            "\"boiler\" is not a known equipment kind; expected one of: washing-machine, dishwasher, \
             dryer, machine, water-heater, heater, electric-vehicle"
        );
    }

    #[test]
    fn each_kind_has_its_load() {
        assert_eq!(EquipmentKind::Dishwasher.load(), Load::OneShot);
        assert_eq!(EquipmentKind::WaterHeater.load(), Load::Continuous);
        assert_eq!(EquipmentKind::ElectricVehicle.load(), Load::Charge);
    }
}
