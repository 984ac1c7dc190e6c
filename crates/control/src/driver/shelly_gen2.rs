//! Shelly second generation and later (Plus, Pro, Gen3…): JSON-RPC over
//! MQTT. A request on `<prefix>/rpc` names a `src`; the device answers on
//! `<src>/rpc` with the request's `id`. Its switch status comes on
//! `<prefix>/status/switch:<n>` and in `NotifyStatus` on
//! `<prefix>/events/rpc`; `<prefix>/online` (retained) says whether it is
//! there.
//!
//! Every Gen2 device of a node answers on the node's one reply topic: a
//! reply is matched to its device by its request id, which is unique per
//! node.

use serde_json::{Value, json};

use super::{Driver, Observation, Order, Publish, json, malformed, on_off, text, watts};
use crate::Result;

pub(super) struct ShellyGen2 {
    prefix: String,
    switch: String,
    channel: u8,
    reply_to: String,
}

impl ShellyGen2 {
    pub(super) fn new(prefix: &str, channel: u8, reply_to: &str) -> ShellyGen2 {
        ShellyGen2 {
            prefix: prefix.to_owned(),
            switch: format!("switch:{channel}"),
            channel,
            reply_to: reply_to.to_owned(),
        }
    }

    fn request(&self, id: u64, method: &str, params: Value) -> Publish {
        let body = json!({"id": id, "src": self.reply_to, "method": method, "params": params});
        Publish::new(format!("{}/rpc", self.prefix), body.to_string())
    }

    /// What a switch status object (`{"output":…,"apower":…}`) says.
    fn status(topic: &str, status: &Value) -> Result<Vec<Observation>> {
        let mut seen = Vec::new();
        match status.get("output") {
            Some(Value::Bool(on)) => seen.push(Observation::Switch(*on)),
            Some(other) => {
                return Err(malformed(topic, format!("output {other} is not a boolean")));
            }
            None => {}
        }
        if let Some(power) = status.get("apower") {
            seen.push(Observation::Power(watts(topic, power)?));
        }
        Ok(seen)
    }
}

impl Driver for ShellyGen2 {
    fn subscriptions(&self) -> Vec<String> {
        vec![
            format!("{}/status/{}", self.prefix, self.switch),
            format!("{}/events/rpc", self.prefix),
            format!("{}/online", self.prefix),
            format!("{}/rpc", self.reply_to),
        ]
    }

    fn order(&self, order: Order, id: u64) -> Publish {
        let params = match order {
            Order::On => json!({"id": self.channel, "on": true}),
            Order::Off => json!({"id": self.channel, "on": false}),
            // On, and off again by the device itself one second later.
            Order::Press => json!({"id": self.channel, "on": true, "toggle_after": 1}),
        };
        self.request(id, "Switch.Set", params)
    }

    fn query(&self, id: u64) -> Option<Publish> {
        Some(self.request(id, "Switch.GetStatus", json!({"id": self.channel})))
    }

    fn read(&self, topic: &str, payload: &[u8]) -> Result<Vec<Observation>> {
        let Some(rest) = topic.strip_prefix(self.prefix.as_str()) else {
            if topic.strip_prefix(self.reply_to.as_str()) == Some("/rpc") {
                return read_reply(topic, &json(topic, payload)?);
            }
            return Ok(Vec::new());
        };
        match rest {
            "/online" => Ok(vec![Observation::Available(on_off(
                topic,
                text(topic, payload)?,
            )?)]),
            "/events/rpc" => {
                let event = json(topic, payload)?;
                if event.get("method").and_then(Value::as_str) != Some("NotifyStatus") {
                    return Ok(Vec::new());
                }
                match event.pointer(&format!("/params/{}", self.switch)) {
                    Some(status) => Self::status(topic, status),
                    None => Ok(Vec::new()),
                }
            }
            _ if rest.strip_prefix("/status/") == Some(self.switch.as_str()) => {
                Self::status(topic, &json(topic, payload)?)
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// A reply on the node's reply topic: the request's id and its outcome,
/// with the switch state when the reply carries one.
fn read_reply(topic: &str, reply: &Value) -> Result<Vec<Observation>> {
    let Some(id) = reply.get("id").and_then(Value::as_u64) else {
        return Err(malformed(topic, "a reply without a numeric id"));
    };
    if let Some(error) = reply.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned);
        return Ok(vec![Observation::Reply {
            id,
            outcome: Err(message),
        }]);
    }
    let mut seen = vec![Observation::Reply {
        id,
        outcome: Ok(()),
    }];
    if let Some(Value::Bool(on)) = reply.pointer("/result/output") {
        seen.push(Observation::Switch(*on));
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> ShellyGen2 {
        ShellyGen2::new("shellyplus1pm-kitchen", 0, "fedwatt-node1")
    }

    #[test]
    fn orders_are_rpc_requests_answered_on_the_reply_topic() {
        let p = device().order(Order::On, 7);
        assert_eq!(p.topic, "shellyplus1pm-kitchen/rpc");
        let body: Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(
            body,
            json!({"id":7,"src":"fedwatt-node1","method":"Switch.Set","params":{"id":0,"on":true}})
        );
        let press: Value =
            serde_json::from_slice(&device().order(Order::Press, 8).payload).unwrap();
        assert_eq!(press["params"]["toggle_after"], 1);
        assert_eq!(
            device()
                .read(
                    "fedwatt-node1/rpc",
                    br#"{"id":7,"src":"shellyplus1pm-a8032ab","dst":"fedwatt-node1","result":{"was_on":false}}"#
                )
                .unwrap(),
            [Observation::Reply { id: 7, outcome: Ok(()) }]
        );
        assert_eq!(
            device()
                .read(
                    "fedwatt-node1/rpc",
                    br#"{"id":9,"error":{"code":-103,"message":"Invalid argument 'id'"}}"#
                )
                .unwrap(),
            [Observation::Reply {
                id: 9,
                outcome: Err("Invalid argument 'id'".into())
            }]
        );
    }

    #[test]
    fn status_and_notifications_give_state_and_power() {
        assert_eq!(
            device()
                .read(
                    "shellyplus1pm-kitchen/status/switch:0",
                    br#"{"id":0,"source":"MQTT","output":true,"apower":1995.2,"voltage":231.1}"#
                )
                .unwrap(),
            [Observation::Switch(true), Observation::Power(1995.2)]
        );
        assert_eq!(
            device()
                .read(
                    "shellyplus1pm-kitchen/events/rpc",
                    br#"{"src":"x","dst":"y","method":"NotifyStatus","params":{"ts":1.0,"switch:0":{"id":0,"output":false}}}"#
                )
                .unwrap(),
            [Observation::Switch(false)]
        );
        assert!(
            device()
                .read(
                    "shellyplus1pm-kitchen/status/switch:1",
                    br#"{"output":true}"#
                )
                .unwrap()
                .is_empty(),
            "another switch of the same device"
        );
        assert_eq!(
            device()
                .read(
                    "shellyplus1pm-kitchen/status/switch:0",
                    br#"{"output":"yes"}"#
                )
                .unwrap_err()
                .to_string(),
            "shellyplus1pm-kitchen/status/switch:0: output \"yes\" is not a boolean"
        );
        assert!(device().read("fedwatt-node1/rpc", b"{").is_err());
    }
}
