//! openHASP plates (touch displays): their relay outputs, their button
//! events, and the pages the node draws on them.
//!
//! - `hasp/<plate>/command/output<k>` takes `{"state":"on"}`; the plate
//!   echoes on `hasp/<plate>/state/output<k>` (relay `k` is the channel
//!   plus one).
//! - Objects send their events on `hasp/<plate>/state/p<page>b<id>`:
//!   `{"event":"up","val":1}`.
//! - `hasp/<plate>/command/jsonl` creates or updates objects, one JSON
//!   object per line; the plate cuts payloads above about 2 kB, so
//!   [`OpenHasp::jsonl`] splits them.
//! - `hasp/<plate>/LWT` says `online` or `offline`: a plate that comes back
//!   has lost its pages, and is drawn again.

use serde_json::{Map, Value, json};

use super::{Driver, Observation, Order, Publish, json, malformed, on_off, text};
use crate::{Error, Result};

/// Largest payload sent to a plate, in bytes.
pub const PLATE_PAYLOAD_MAX: usize = 2000;

/// An openHASP plate.
pub struct OpenHasp {
    base: String,
    output: String,
}

/// A touch on a plate's object.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplayEvent {
    /// The object's page.
    pub page: u8,
    /// The object's id on its page.
    pub id: u8,
    /// `down`, `up`, `release`, `long`, `hold`, `changed`…
    pub event: String,
    /// The object's value, for toggles, sliders, rollers.
    pub val: Option<i64>,
    /// The object's text, for text inputs and rollers.
    pub text: Option<String>,
}

impl OpenHasp {
    /// The plate named `plate`, its relay on output 1.
    pub fn new(plate: &str) -> OpenHasp {
        OpenHasp::with_output(plate, 0)
    }

    /// The plate named `plate`, its relay on output `channel + 1`.
    pub fn with_output(plate: &str, channel: u8) -> OpenHasp {
        OpenHasp {
            base: format!("hasp/{plate}"),
            output: format!("output{}", u16::from(channel) + 1),
        }
    }

    /// A touch on one of the plate's objects, if `topic` carries one.
    pub fn event(&self, topic: &str, payload: &[u8]) -> Result<Option<DisplayEvent>> {
        let Some(object) = topic
            .strip_prefix(self.base.as_str())
            .and_then(|r| r.strip_prefix("/state/p"))
        else {
            return Ok(None);
        };
        let Some((page, id)) = object.split_once('b') else {
            return Ok(None);
        };
        let (Ok(page), Ok(id)) = (page.parse::<u8>(), id.parse::<u8>()) else {
            return Ok(None);
        };
        let body = json(topic, payload)?;
        let Some(event) = body.get("event").and_then(Value::as_str) else {
            return Err(malformed(topic, "an object's message without an event"));
        };
        let val = match body.get("val") {
            None => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| malformed(topic, format!("val {v} is not an integer")))?,
            ),
        };
        Ok(Some(DisplayEvent {
            page,
            id,
            event: event.to_owned(),
            val,
            text: body.get("text").and_then(Value::as_str).map(str::to_owned),
        }))
    }

    /// Messages that create or update `objects` on the plate (each with its
    /// `page` and `id`), each payload at most [`PLATE_PAYLOAD_MAX`] bytes.
    /// An object too large for one payload is sent in parts, each with its
    /// page and id and some of its properties.
    pub fn jsonl(&self, objects: &[Value]) -> Result<Vec<Publish>> {
        let topic = format!("{}/command/jsonl", self.base);
        let mut lines = Vec::new();
        for object in objects {
            let Some(fields) = object.as_object() else {
                return Err(Error::Invalid(format!(
                    "a plate object must be a JSON object: {object}"
                )));
            };
            if !fields.contains_key("page") || !fields.contains_key("id") {
                return Err(Error::Invalid(format!(
                    "a plate object needs its page and id: {object}"
                )));
            }
            lines.extend(split_object(fields)?);
        }
        let mut messages = Vec::new();
        let mut payload = String::new();
        for line in lines {
            if !payload.is_empty() && payload.len() + 1 + line.len() > PLATE_PAYLOAD_MAX {
                messages.push(Publish::new(topic.clone(), std::mem::take(&mut payload)));
            }
            if !payload.is_empty() {
                payload.push('\n');
            }
            payload.push_str(&line);
        }
        if !payload.is_empty() {
            messages.push(Publish::new(topic, payload));
        }
        Ok(messages)
    }

    /// Shows `page` on the plate.
    pub fn show_page(&self, page: u8) -> Publish {
        Publish::new(format!("{}/command/page", self.base), page.to_string())
    }

    /// Clears every page, before drawing them again.
    pub fn clear_all(&self) -> Publish {
        Publish::new(format!("{}/command/clearpage", self.base), "all")
    }
}

/// One object as JSON lines of at most [`PLATE_PAYLOAD_MAX`] bytes.
fn split_object(fields: &Map<String, Value>) -> Result<Vec<String>> {
    let whole = Value::Object(fields.clone()).to_string();
    if whole.len() <= PLATE_PAYLOAD_MAX {
        return Ok(vec![whole]);
    }
    let key = json!({"page": fields["page"], "id": fields["id"]});
    let mut lines = Vec::new();
    let mut part = key.as_object().cloned().unwrap_or_default();
    for (name, value) in fields.iter().filter(|(n, _)| *n != "page" && *n != "id") {
        let mut with = part.clone();
        with.insert(name.clone(), value.clone());
        if Value::Object(with.clone()).to_string().len() <= PLATE_PAYLOAD_MAX {
            part = with;
            continue;
        }
        if part.len() > 2 {
            lines.push(
                Value::Object(std::mem::replace(
                    &mut part,
                    key.as_object().cloned().unwrap_or_default(),
                ))
                .to_string(),
            );
        }
        part.insert(name.clone(), value.clone());
        if Value::Object(part.clone()).to_string().len() > PLATE_PAYLOAD_MAX {
            return Err(Error::Invalid(format!(
                "the property {name:?} of object p{}b{} is larger than a plate takes ({PLATE_PAYLOAD_MAX} bytes)",
                fields["page"], fields["id"]
            )));
        }
    }
    if part.len() > 2 {
        lines.push(Value::Object(part).to_string());
    }
    Ok(lines)
}

impl Driver for OpenHasp {
    fn subscriptions(&self) -> Vec<String> {
        vec![
            format!("{}/state/+", self.base),
            format!("{}/LWT", self.base),
        ]
    }

    fn order(&self, order: Order, _id: u64) -> Publish {
        let state = if order.echo() { "on" } else { "off" };
        Publish::new(
            format!("{}/command/{}", self.base, self.output),
            json!({ "state": state }).to_string(),
        )
    }

    fn query(&self, _id: u64) -> Option<Publish> {
        // `statusupdate` makes the plate publish its state again.
        Some(Publish::new(
            format!("{}/command/statusupdate", self.base),
            "",
        ))
    }

    fn read(&self, topic: &str, payload: &[u8]) -> Result<Vec<Observation>> {
        let Some(rest) = topic.strip_prefix(self.base.as_str()) else {
            return Ok(Vec::new());
        };
        if rest == "/LWT" {
            return Ok(vec![Observation::Available(on_off_word(
                topic,
                text(topic, payload)?,
            )?)]);
        }
        if rest.strip_prefix("/state/") == Some(self.output.as_str()) {
            let state = json(topic, payload)?;
            return match state.get("state") {
                Some(Value::String(word)) => Ok(vec![Observation::Switch(on_off(topic, word)?)]),
                Some(Value::Number(n)) => Ok(vec![Observation::Switch(n.as_i64() != Some(0))]),
                _ => Err(malformed(topic, "an output's message without a state")),
            };
        }
        Ok(Vec::new())
    }
}

fn on_off_word(topic: &str, word: &str) -> Result<bool> {
    match word {
        "online" => Ok(true),
        "offline" => Ok(false),
        other => Err(malformed(
            topic,
            format!("{other:?} is neither online nor offline"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_button_events_and_the_plate_presence() {
        let plate = OpenHasp::new("plate01");
        assert_eq!(
            plate
                .event("hasp/plate01/state/p2b3", br#"{"event":"up","val":1}"#)
                .unwrap(),
            Some(DisplayEvent {
                page: 2,
                id: 3,
                event: "up".into(),
                val: Some(1),
                text: None
            })
        );
        assert_eq!(
            plate
                .event("hasp/plate01/state/output1", br#"{"state":"on"}"#)
                .unwrap(),
            None
        );
        assert_eq!(
            plate
                .event("hasp/plate02/state/p2b3", br#"{"event":"up"}"#)
                .unwrap(),
            None
        );
        assert_eq!(
            plate
                .event("hasp/plate01/state/p2b3", br#"{"val":1}"#)
                .unwrap_err()
                .to_string(),
            "hasp/plate01/state/p2b3: an object's message without an event"
        );
        assert_eq!(
            plate.read("hasp/plate01/LWT", b"online").unwrap(),
            [Observation::Available(true)]
        );
        assert_eq!(
            plate
                .read("hasp/plate01/state/output1", br#"{"state":"off"}"#)
                .unwrap(),
            [Observation::Switch(false)]
        );
        assert_eq!(
            plate.order(Order::On, 1),
            Publish::new("hasp/plate01/command/output1", r#"{"state":"on"}"#)
        );
    }

    #[test]
    fn pages_are_sent_in_payloads_a_plate_takes() {
        let plate = OpenHasp::new("plate01");
        let objects: Vec<Value> = (1..=60)
            .map(|id| json!({"page": 1, "id": id, "obj": "btn", "x": 10, "y": 10, "w": 140, "h": 50, "text": "Water heater"}))
            .collect();
        let messages = plate.jsonl(&objects).unwrap();
        assert!(messages.len() > 1);
        let mut lines = Vec::new();
        for m in &messages {
            assert_eq!(m.topic, "hasp/plate01/command/jsonl");
            assert!(m.payload.len() <= PLATE_PAYLOAD_MAX);
            lines.extend(
                String::from_utf8(m.payload.clone())
                    .unwrap()
                    .lines()
                    .map(str::to_owned),
            );
        }
        let back: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, objects, "every object, whole and in order");

        // One object larger than a payload goes in parts, each addressed.
        let long = json!({"page": 3, "id": 7, "obj": "label", "text": "x".repeat(1500), "options": "y".repeat(1500)});
        let parts = plate.jsonl(&[long]).unwrap();
        assert_eq!(parts.len(), 2);
        for p in &parts {
            let v: Value = serde_json::from_slice(&p.payload).unwrap();
            assert_eq!((v["page"].as_i64(), v["id"].as_i64()), (Some(3), Some(7)));
        }
        let huge = json!({"page": 3, "id": 8, "text": "x".repeat(3000)});
        assert!(
            plate
                .jsonl(&[huge])
                .unwrap_err()
                .to_string()
                .contains("larger than a plate takes")
        );
        assert!(plate.jsonl(&[json!({"obj": "btn"})]).is_err());
    }
}
