//! What the control loop tells of itself, in order: transitions, orders,
//! confirmations, failures, measures, and the plans and stimulations it
//! accepted, to keep. Whoever runs the loop decides where it goes (the node
//! stores it as streams and in its control tables).

use serde_json::Value;

use crate::driver::Order;
use crate::machine::{Event as MachineEvent, Part, State};
use crate::model::Measured;

/// What happened, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalEntry {
    /// An equipment's state machine moved.
    Transition {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// From.
        from: State,
        /// To.
        to: State,
        /// Why.
        event: MachineEvent,
    },
    /// An order published to a device.
    Order {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// Which device.
        part: Part,
        /// What.
        order: Order,
    },
    /// The device confirmed it.
    Confirmed {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// Which device.
        part: Part,
        /// What.
        order: Order,
    },
    /// The device did not confirm in time, refused it, or went offline.
    Failed {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// Which device.
        part: Part,
        /// What.
        order: Order,
    },
    /// A device's measured state changed.
    Measured {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// Which device.
        part: Part,
        /// Its state.
        state: Measured,
    },
    /// A device measured its load's power.
    Power {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// Which device.
        part: Part,
        /// In W.
        watts: f64,
    },
    /// A plan accepted for an equipment, from the node's MQTT topics or
    /// the HTTP API, to keep. (Those given back from the store are kept
    /// already, and not journaled again.)
    Plan {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// The plan, as received.
        plan: Value,
        /// Where it came from.
        source: Source,
    },
    /// A stimulation accepted from the node's MQTT topics or the HTTP API,
    /// to keep (as plans are).
    Stimulation {
        /// When (µs).
        at: i64,
        /// The stimulation, as received.
        body: Value,
        /// When it ends (µs).
        until: i64,
        /// Where it came from.
        source: Source,
    },
    /// A message refused, and why.
    Refused {
        /// When (µs).
        at: i64,
        /// Its topic.
        topic: String,
        /// Why.
        reason: String,
    },
}

/// Where a plan or a stimulation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The node's MQTT topics.
    Mqtt,
    /// The HTTP API.
    Api,
    /// The store, at start-up: accepted before, applied again.
    Store,
}

impl Source {
    /// Its name, as stored.
    pub fn name(self) -> &'static str {
        match self {
            Source::Mqtt => "mqtt",
            Source::Api => "api",
            Source::Store => "store",
        }
    }
}

/// An order's name in the journal and the API.
pub fn order_name(order: Order) -> &'static str {
    match order {
        Order::On => "on",
        Order::Off => "off",
        Order::Press => "press",
    }
}
