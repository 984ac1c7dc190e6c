//! An equipment and its devices as the control loop sees them now, for the
//! rest of the node (the HTTP API).

use serde_json::{Value, json};

use crate::driver::{DeviceAddress, Order};
use crate::journal::order_name;
use crate::machine::{Part, State};
use crate::model::{EquipmentKind, Measured, Mode, Typology};

/// A device as the loop sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStatus {
    /// What it does for its equipment.
    pub part: Part,
    /// How it is reached.
    pub address: DeviceAddress,
    /// What it says of itself.
    pub measured: Measured,
    /// Since when (µs).
    pub since: i64,
    /// The last power it measured (W).
    pub power: Option<f64>,
    /// An order sent and not confirmed yet.
    pub pending: Option<Order>,
}

/// An equipment as the loop sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct EquipmentStatus {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: EquipmentKind,
    /// How it is wired.
    pub typology: Typology,
    /// Who is in charge.
    pub mode: Mode,
    /// Its command state.
    pub state: State,
    /// Its groups.
    pub groups: Vec<String>,
    /// The household's end-by time (µs).
    pub end_by: Option<i64>,
    /// A car's target charge (%).
    pub target_charge: Option<u8>,
    /// Its plan, as received.
    pub plan: Option<Value>,
    /// Its devices.
    pub devices: Vec<DeviceStatus>,
}

impl EquipmentStatus {
    /// As JSON, for the HTTP API (times in seconds since 1970).
    pub fn to_json(&self) -> Value {
        let seconds = |t: i64| t as f64 / 1e6;
        json!({
            "name": self.name,
            "kind": self.kind.name(),
            "typology": self.typology.name(),
            "mode": self.mode.name(),
            "state": self.state.name(),
            "groups": self.groups,
            "end_by": self.end_by.map(seconds),
            "target_charge": self.target_charge,
            "plan": self.plan,
            "devices": self.devices.iter().map(|d| json!({
                "part": d.part.name(),
                "firmware": d.address.firmware.name(),
                "topic": d.address.topic,
                "channel": d.address.channel,
                "measured": d.measured.name(),
                "since": seconds(d.since),
                "power": d.power,
                "pending": d.pending.map(order_name),
            })).collect::<Vec<_>>(),
        })
    }
}
