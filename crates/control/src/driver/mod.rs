//! Device drivers: for each firmware, what to publish to switch a device
//! and what its messages say. One small file per firmware, behind the
//! [`Driver`] trait; [`driver`] picks one from a device's configuration.
//!
//! An order is confirmed by the device's own answer: its state echo
//! ([`Observation::Switch`] with the state asked for) or, for firmwares
//! that answer requests, the reply to that request ([`Observation::Reply`]).

mod openhasp;
mod shelly_gen1;
mod shelly_gen2;
mod tasmota;
mod zigbee2mqtt;

pub use openhasp::{DisplayEvent, OpenHasp, PLATE_PAYLOAD_MAX};

use crate::model::Firmware;
use crate::{Error, Result};

/// A message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Publish {
    fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Publish {
        Publish {
            topic: topic.into(),
            payload: payload.into(),
        }
    }
}

/// What the node asks a device to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Close the switch.
    On,
    /// Open the switch.
    Off,
    /// Press a button once (a finger): on for a moment, then off.
    Press,
}

impl Order {
    /// The state the device reports once it obeyed: a press shows as on.
    pub fn echo(self) -> bool {
        !matches!(self, Order::Off)
    }
}

/// What a message from a device says.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// Its switch is on (`true`) or off.
    Switch(bool),
    /// The power it measures, in W.
    Power(f64),
    /// It is online (`true`) or went offline.
    Available(bool),
    /// It answered request `id`: done, or refused with its reason.
    Reply {
        /// The request's id.
        id: u64,
        /// `Ok` if done; the device's error otherwise.
        outcome: std::result::Result<(), String>,
    },
}

/// How one device is reached: its firmware's topics and payloads.
pub trait Driver: Send + Sync {
    /// Topic filters to subscribe to, for everything the device says.
    fn subscriptions(&self) -> Vec<String>;

    /// What to publish to carry out `order`; `id` numbers the request, for
    /// firmwares that answer requests.
    fn order(&self, order: Order, id: u64) -> Publish;

    /// What to publish to make the device tell its state, if it can be
    /// asked (at start-up, and when it comes back online).
    fn query(&self, id: u64) -> Option<Publish>;

    /// What a message on `topic` says; nothing if the topic is not this
    /// device's (or says nothing the node uses); an error naming what is
    /// wrong if it is this device's and cannot be read.
    fn read(&self, topic: &str, payload: &[u8]) -> Result<Vec<Observation>>;
}

/// Where a device is, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceAddress {
    /// Its firmware.
    pub firmware: Firmware,
    /// Its identity in its firmware's topics: the Shelly id, the Shelly
    /// Gen2 topic prefix, the Tasmota topic, the Zigbee2MQTT friendly
    /// name, the openHASP plate name.
    pub topic: String,
    /// The relay (switch, output) number on the device, from 0.
    pub channel: u8,
}

/// The driver for a device. `reply_to` is the topic prefix under which
/// firmwares that answer requests (Shelly Gen2) send their replies: the
/// node's own, unique per node.
pub fn driver(address: &DeviceAddress, reply_to: &str) -> Result<Box<dyn Driver>> {
    let topic = address.topic.as_str();
    if topic.is_empty() || topic.contains(['+', '#']) || topic.starts_with('/') {
        return Err(Error::Invalid(format!(
            "device topic {topic:?}: it must be non-empty, without MQTT wildcards (+, #), \
             and not start with /"
        )));
    }
    let channel = address.channel;
    Ok(match address.firmware {
        Firmware::ShellyGen1 => Box::new(shelly_gen1::ShellyGen1::new(topic, channel)),
        Firmware::ShellyGen2 => Box::new(shelly_gen2::ShellyGen2::new(topic, channel, reply_to)),
        Firmware::Tasmota => Box::new(tasmota::Tasmota::new(topic, channel)),
        Firmware::Zigbee2Mqtt => Box::new(zigbee2mqtt::Zigbee2Mqtt::new(topic, channel)),
        Firmware::OpenHasp => Box::new(OpenHasp::with_output(topic, channel)),
    })
}

/// A device message's payload as text, or an error naming the topic.
fn text<'a>(topic: &str, payload: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(payload)
        .map(str::trim)
        .map_err(|_| malformed(topic, "the payload is not UTF-8 text"))
}

/// A device message's payload as JSON, or an error naming the topic.
fn json(topic: &str, payload: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(payload).map_err(|e| malformed(topic, format!("not JSON: {e}")))
}

fn malformed(topic: &str, reason: impl Into<String>) -> Error {
    Error::Message {
        topic: topic.to_owned(),
        reason: reason.into(),
    }
}

/// Reads `on`/`off`-like words (case-insensitive): `true` for on.
fn on_off(topic: &str, word: &str) -> Result<bool> {
    match word.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(malformed(topic, format!("{word:?} is neither on nor off"))),
    }
}

/// A power reading in W: a finite number, not negative beyond rounding.
fn watts(topic: &str, value: &serde_json::Value) -> Result<f64> {
    match value.as_f64() {
        Some(w) if w.is_finite() => Ok(w),
        _ => Err(malformed(topic, format!("power {value} is not a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_with_wildcards_is_refused() {
        let address = DeviceAddress {
            firmware: Firmware::Tasmota,
            topic: "plug/#".into(),
            channel: 0,
        };
        assert!(
            driver(&address, "fedwatt/node")
                .err()
                .unwrap()
                .to_string()
                .contains("without MQTT wildcards")
        );
    }
}
