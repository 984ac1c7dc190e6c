//! Zigbee2MQTT: `zigbee2mqtt/<name>/set` takes `{"state":"ON"}`; the device's
//! state comes on `zigbee2mqtt/<name>` (`{"state":"ON","power":…}`), and
//! `zigbee2mqtt/<name>/availability` says `online` or `offline` (as JSON
//! `{"state":"online"}` since Zigbee2MQTT 1.33, as text before).
//!
//! Channel 0 is `state`; channel n ≥ 1 is `state_l<n>`, as multi-gang
//! switches name their endpoints. A finger (Fingerbot and the like) in push
//! mode presses when set on.

use serde_json::{Value, json};

use super::{Driver, Observation, Order, Publish, json, malformed, on_off, text, watts};
use crate::Result;

pub(super) struct Zigbee2Mqtt {
    base: String,
    state: String,
}

impl Zigbee2Mqtt {
    pub(super) fn new(name: &str, channel: u8) -> Zigbee2Mqtt {
        Zigbee2Mqtt {
            base: format!("zigbee2mqtt/{name}"),
            state: match channel {
                0 => "state".to_owned(),
                n => format!("state_l{n}"),
            },
        }
    }
}

impl Driver for Zigbee2Mqtt {
    fn subscriptions(&self) -> Vec<String> {
        vec![self.base.clone(), format!("{}/availability", self.base)]
    }

    fn order(&self, order: Order, _id: u64) -> Publish {
        let word = if order.echo() { "ON" } else { "OFF" };
        Publish::new(
            format!("{}/set", self.base),
            json!({ &self.state: word }).to_string(),
        )
    }

    fn query(&self, _id: u64) -> Option<Publish> {
        Some(Publish::new(
            format!("{}/get", self.base),
            json!({ &self.state: "" }).to_string(),
        ))
    }

    fn read(&self, topic: &str, payload: &[u8]) -> Result<Vec<Observation>> {
        if topic == self.base {
            let state = json(topic, payload)?;
            let mut seen = Vec::new();
            match state.get(&self.state) {
                Some(Value::String(word)) => seen.push(Observation::Switch(on_off(topic, word)?)),
                Some(other) => {
                    return Err(malformed(
                        topic,
                        format!("{} {other} is not ON or OFF", self.state),
                    ));
                }
                None => {}
            }
            if let Some(power) = state.get("power") {
                seen.push(Observation::Power(watts(topic, power)?));
            }
            return Ok(seen);
        }
        if topic.strip_prefix(self.base.as_str()) == Some("/availability") {
            let word = text(topic, payload)?;
            let word = match serde_json::from_str::<Value>(word) {
                Ok(Value::Object(o)) => o
                    .get("state")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                _ => word.to_owned(),
            };
            return match word.as_str() {
                "online" => Ok(vec![Observation::Available(true)]),
                "offline" => Ok(vec![Observation::Available(false)]),
                other => Err(malformed(
                    topic,
                    format!("{other:?} is neither online nor offline"),
                )),
            };
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_zigbee2mqtt_topics() {
        let d = Zigbee2Mqtt::new("water heater", 0);
        assert_eq!(
            d.order(Order::On, 1),
            Publish::new("zigbee2mqtt/water heater/set", r#"{"state":"ON"}"#)
        );
        assert_eq!(
            d.read(
                "zigbee2mqtt/water heater",
                br#"{"state":"OFF","power":0.4,"linkquality":120}"#
            )
            .unwrap(),
            [Observation::Switch(false), Observation::Power(0.4)]
        );
        assert_eq!(
            d.read(
                "zigbee2mqtt/water heater/availability",
                br#"{"state":"online"}"#
            )
            .unwrap(),
            [Observation::Available(true)]
        );
        assert_eq!(
            d.read("zigbee2mqtt/water heater/availability", b"offline")
                .unwrap(),
            [Observation::Available(false)],
            "the text form of older versions"
        );
        assert_eq!(
            d.read("zigbee2mqtt/water heater", br#"{"state":true}"#)
                .unwrap_err()
                .to_string(),
            "zigbee2mqtt/water heater: state true is not ON or OFF"
        );
        let gang = Zigbee2Mqtt::new("wall", 2);
        assert_eq!(gang.order(Order::Off, 1).payload, br#"{"state_l2":"OFF"}"#);
    }
}
