//! Tasmota: `cmnd/<topic>/POWER<k>` takes `ON`, `OFF`, or nothing to ask;
//! the answer comes on `stat/<topic>/RESULT` (`{"POWER1":"ON"}`) and
//! `stat/<topic>/POWER<k>`, the periodic state on `tele/<topic>/STATE`, the
//! power on `tele/<topic>/SENSOR` (`{"ENERGY":{"Power":…}}`), and
//! `tele/<topic>/LWT` (retained) says `Online` or `Offline`.
//!
//! Relay `k` is the channel plus one. A device with one relay names it
//! `POWER` in its answers, not `POWER1`: both are read.

use serde_json::Value;

use super::{Driver, Observation, Order, Publish, json, malformed, on_off, text, watts};
use crate::Result;

pub(super) struct Tasmota {
    topic: String,
    power: String,
    single: bool,
}

impl Tasmota {
    pub(super) fn new(topic: &str, channel: u8) -> Tasmota {
        Tasmota {
            topic: topic.to_owned(),
            power: format!("POWER{}", u16::from(channel) + 1),
            single: channel == 0,
        }
    }

    /// The relay's state in a RESULT or STATE object, if it is there.
    fn power_in(&self, topic: &str, object: &Value) -> Result<Option<bool>> {
        let value = object
            .get(&self.power)
            .or_else(|| object.get("POWER").filter(|_| self.single));
        match value {
            Some(Value::String(word)) => Ok(Some(on_off(topic, word)?)),
            Some(other) => Err(malformed(
                topic,
                format!("{} {other} is not ON or OFF", self.power),
            )),
            None => Ok(None),
        }
    }
}

impl Driver for Tasmota {
    fn subscriptions(&self) -> Vec<String> {
        let t = &self.topic;
        let mut topics = vec![
            format!("stat/{t}/RESULT"),
            format!("stat/{t}/{}", self.power),
            format!("tele/{t}/STATE"),
            format!("tele/{t}/SENSOR"),
            format!("tele/{t}/LWT"),
        ];
        if self.single {
            topics.push(format!("stat/{t}/POWER"));
        }
        topics
    }

    fn order(&self, order: Order, _id: u64) -> Publish {
        let (t, p) = (&self.topic, &self.power);
        match order {
            Order::On => Publish::new(format!("cmnd/{t}/{p}"), "ON"),
            Order::Off => Publish::new(format!("cmnd/{t}/{p}"), "OFF"),
            // On, and off again one second later, in one command.
            Order::Press => Publish::new(
                format!("cmnd/{t}/Backlog"),
                format!("{p} ON; Delay 10; {p} OFF"),
            ),
        }
    }

    fn query(&self, _id: u64) -> Option<Publish> {
        Some(Publish::new(
            format!("cmnd/{}/{}", self.topic, self.power),
            "",
        ))
    }

    fn read(&self, topic: &str, payload: &[u8]) -> Result<Vec<Observation>> {
        let (Some(kind), Some(rest)) = (
            topic.split('/').next(),
            topic
                .split_once('/')
                .and_then(|(_, r)| r.strip_prefix(self.topic.as_str()))
                .and_then(|r| r.strip_prefix('/')),
        ) else {
            return Ok(Vec::new());
        };
        match (kind, rest) {
            ("stat", "RESULT") | ("tele", "STATE") => Ok(self
                .power_in(topic, &json(topic, payload)?)?
                .map(Observation::Switch)
                .into_iter()
                .collect()),
            ("stat", r) if r == self.power || (self.single && r == "POWER") => {
                Ok(vec![Observation::Switch(on_off(
                    topic,
                    text(topic, payload)?,
                )?)])
            }
            ("tele", "SENSOR") => match json(topic, payload)?.pointer("/ENERGY/Power") {
                Some(power) => Ok(vec![Observation::Power(watts(topic, power)?)]),
                None => Ok(Vec::new()),
            },
            ("tele", "LWT") => match text(topic, payload)? {
                "Online" => Ok(vec![Observation::Available(true)]),
                "Offline" => Ok(vec![Observation::Available(false)]),
                other => Err(malformed(
                    topic,
                    format!("{other:?} is neither Online nor Offline"),
                )),
            },
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_tasmota_topics() {
        let d = Tasmota::new("tasmota_5A1B2C", 0);
        assert_eq!(
            d.order(Order::Off, 1),
            Publish::new("cmnd/tasmota_5A1B2C/POWER1", "OFF")
        );
        assert_eq!(
            d.order(Order::Press, 1),
            Publish::new(
                "cmnd/tasmota_5A1B2C/Backlog",
                "POWER1 ON; Delay 10; POWER1 OFF"
            )
        );
        assert_eq!(
            d.read("stat/tasmota_5A1B2C/RESULT", br#"{"POWER":"ON"}"#)
                .unwrap(),
            [Observation::Switch(true)],
            "a one-relay device says POWER"
        );
        assert_eq!(
            d.read("stat/tasmota_5A1B2C/POWER", b"OFF").unwrap(),
            [Observation::Switch(false)]
        );
        assert_eq!(
            d.read(
                "tele/tasmota_5A1B2C/SENSOR",
                br#"{"Time":"2024-01-01T00:00:00","ENERGY":{"Power":512,"Voltage":230}}"#
            )
            .unwrap(),
            [Observation::Power(512.0)]
        );
        assert_eq!(
            d.read("tele/tasmota_5A1B2C/LWT", b"Offline").unwrap(),
            [Observation::Available(false)]
        );
        assert!(
            d.read("stat/tasmota_5A1B2C/RESULT", br#"{"Dimmer":30}"#)
                .unwrap()
                .is_empty()
        );
        assert!(
            d.read("stat/tasmota_OTHER/POWER", b"ON")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_second_relay_is_power2() {
        let d = Tasmota::new("dual", 1);
        assert_eq!(d.order(Order::On, 1).topic, "cmnd/dual/POWER2");
        assert!(
            d.read("stat/dual/RESULT", br#"{"POWER1":"ON"}"#)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            d.read("stat/dual/RESULT", br#"{"POWER2":"ON"}"#).unwrap(),
            [Observation::Switch(true)]
        );
        assert!(
            d.read("stat/dual/RESULT", br#"{"POWER":"ON"}"#)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            d.read("tele/dual/LWT", b"gone").unwrap_err().to_string(),
            "tele/dual/LWT: \"gone\" is neither Online nor Offline"
        );
    }
}
