//! Shelly first generation: `shellies/<id>/relay/<n>/command` takes `on` or
//! `off`; the relay echoes its state on `shellies/<id>/relay/<n>`, its power
//! on `…/power`; `shellies/<id>/online` says whether it is there.
//!
//! A Gen1 relay has no one-shot command over MQTT: one used as a finger
//! needs its auto-off timer set on the device, and a press is an `on`.

use super::{Driver, Observation, Order, Publish, on_off, text};
use crate::Result;

pub(super) struct ShellyGen1 {
    base: String,
    relay: String,
}

impl ShellyGen1 {
    pub(super) fn new(id: &str, channel: u8) -> ShellyGen1 {
        let base = format!("shellies/{id}");
        ShellyGen1 {
            relay: format!("{base}/relay/{channel}"),
            base,
        }
    }
}

impl Driver for ShellyGen1 {
    fn subscriptions(&self) -> Vec<String> {
        vec![
            self.relay.clone(),
            format!("{}/power", self.relay),
            format!("{}/online", self.base),
        ]
    }

    fn order(&self, order: Order, _id: u64) -> Publish {
        let word = if order.echo() { "on" } else { "off" };
        Publish::new(format!("{}/command", self.relay), word)
    }

    fn query(&self, _id: u64) -> Option<Publish> {
        // `update` makes a Gen1 device publish its whole state again.
        Some(Publish::new(format!("{}/command", self.base), "update"))
    }

    fn read(&self, topic: &str, payload: &[u8]) -> Result<Vec<Observation>> {
        if topic == self.relay {
            // A relay cut by its own protection reports `overpower`: off.
            return Ok(match text(topic, payload)? {
                "overpower" => vec![Observation::Switch(false)],
                word => vec![Observation::Switch(on_off(topic, word)?)],
            });
        }
        if topic.strip_prefix(self.relay.as_str()) == Some("/power") {
            let word = text(topic, payload)?;
            let watts = word.parse::<f64>().ok().filter(|w| w.is_finite());
            return match watts {
                Some(w) => Ok(vec![Observation::Power(w)]),
                None => Err(super::malformed(
                    topic,
                    format!("power {word:?} is not a number"),
                )),
            };
        }
        if topic.strip_prefix(self.base.as_str()) == Some("/online") {
            return Ok(vec![Observation::Available(on_off(
                topic,
                text(topic, payload)?,
            )?)]);
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_gen1_topics() {
        let d = ShellyGen1::new("shelly1pm-A4CF12", 0);
        assert_eq!(
            d.order(Order::On, 1),
            Publish::new("shellies/shelly1pm-A4CF12/relay/0/command", "on")
        );
        assert_eq!(d.order(Order::Off, 2).payload, b"off");
        assert_eq!(
            d.read("shellies/shelly1pm-A4CF12/relay/0", b"on").unwrap(),
            [Observation::Switch(true)]
        );
        assert_eq!(
            d.read("shellies/shelly1pm-A4CF12/relay/0/power", b"1234.5")
                .unwrap(),
            [Observation::Power(1234.5)]
        );
        assert_eq!(
            d.read("shellies/shelly1pm-A4CF12/online", b"false")
                .unwrap(),
            [Observation::Available(false)]
        );
        assert!(
            d.read("shellies/other/relay/0", b"on").unwrap().is_empty(),
            "another device's topic says nothing about this one"
        );
    }

    #[test]
    fn names_what_it_cannot_read() {
        let d = ShellyGen1::new("s", 1);
        assert_eq!(
            d.read("shellies/s/relay/1", b"maybe")
                .unwrap_err()
                .to_string(),
            "shellies/s/relay/1: \"maybe\" is neither on nor off"
        );
        assert_eq!(
            d.read("shellies/s/relay/1/power", b"NaN")
                .unwrap_err()
                .to_string(),
            "shellies/s/relay/1/power: power \"NaN\" is not a number"
        );
        assert!(d.read("shellies/s/relay/1", &[0xff]).is_err());
    }
}
