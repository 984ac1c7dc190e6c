//! Stimulations: another program (an energy management system, a
//! cooperative's operator, a market) asks for consumption now or none, for
//! some equipments and a while, or announces the local signal level.
//!
//! As JSON (times in seconds since 1970, UTC; `from` defaults to now):
//!
//! ```json
//! {"kind": "shed", "equipments": ["water-heater", "heater-living"], "until": 1700003600}
//! {"kind": "consume-now", "group": "cooperative-east", "from": 1700000000, "until": 1700001800}
//! {"kind": "signal", "level": "++", "until": 1700003600}
//! ```

use serde_json::{Map, Value};

use crate::model::SignalLevel;
use crate::{Error, Result, invalid, seconds};

/// The longest a stimulation may last: a day.
pub const LONGEST: i64 = 24 * 3600 * 1_000_000;

/// Which equipments a stimulation is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// These equipments, by name.
    Equipments(Vec<String>),
    /// Every equipment of this group.
    Group(String),
}

/// What a stimulation asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// Cut these loads.
    Shed(Targets),
    /// Consume now: launch or power these loads.
    ConsumeNow(Targets),
    /// The local signal is at this level.
    Signal(SignalLevel),
}

/// A stimulation, checked whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Stimulation {
    /// What it asks.
    pub ask: Ask,
    /// From when (µs).
    pub from: i64,
    /// Until when (µs), after `from`, at most [`LONGEST`] later.
    pub until: i64,
}

impl Stimulation {
    /// Reads a stimulation received at `now` (µs), or says what is wrong.
    pub fn from_json(value: &Value, now: i64) -> Result<Stimulation> {
        let Some(fields) = value.as_object() else {
            return invalid("a stimulation must be a JSON object with a \"kind\"");
        };
        let kind = fields.get("kind").and_then(Value::as_str).unwrap_or("");
        let allowed: &[&str] = match kind {
            "shed" | "consume-now" => &["kind", "equipments", "group", "from", "until"],
            "signal" => &["kind", "level", "from", "until"],
            other => {
                return invalid(format!(
                    "kind {other:?} is not a stimulation; expected shed, consume-now or signal"
                ));
            }
        };
        if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
            return invalid(format!("a {kind} stimulation has no field {unknown:?}"));
        }
        let from = match fields.get("from") {
            None => now,
            Some(v) => seconds(Some(v), "from")?,
        };
        let Some(until) = fields.get("until") else {
            return invalid("a stimulation needs \"until\"");
        };
        let until = seconds(Some(until), "until")?;
        if until <= from {
            return invalid("until must come after from");
        }
        if until - from > LONGEST {
            return invalid("a stimulation lasts a day at most");
        }
        let ask = match kind {
            "shed" => Ask::Shed(targets(fields)?),
            "consume-now" => Ask::ConsumeNow(targets(fields)?),
            _ => {
                let level = fields.get("level").and_then(Value::as_str).ok_or_else(|| {
                    Error::Invalid(
                        "a signal stimulation needs \"level\" (--, -, 0, + or ++)".into(),
                    )
                })?;
                Ask::Signal(level.parse()?)
            }
        };
        Ok(Stimulation { ask, from, until })
    }
}

fn targets(fields: &Map<String, Value>) -> Result<Targets> {
    match (fields.get("equipments"), fields.get("group")) {
        (Some(Value::Array(list)), None) if !list.is_empty() => list
            .iter()
            .enumerate()
            .map(|(i, v)| match v.as_str() {
                Some(name) if !name.is_empty() => Ok(name.to_owned()),
                _ => invalid(format!("equipments[{i}] is not an equipment's name")),
            })
            .collect::<Result<Vec<_>>>()
            .map(Targets::Equipments),
        (Some(_), None) => invalid("equipments must be a non-empty list of names"),
        (None, Some(Value::String(group))) if !group.is_empty() => {
            Ok(Targets::Group(group.clone()))
        }
        (None, Some(_)) => invalid("group must be a group's name"),
        (Some(_), Some(_)) => invalid("a stimulation names equipments or a group, not both"),
        (None, None) => invalid("a stimulation needs \"equipments\" or \"group\""),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000 * 1_000_000;

    #[test]
    fn reads_each_kind() {
        let shed = Stimulation::from_json(
            &json!({"kind": "shed", "equipments": ["wh"], "until": 1_700_003_600}),
            NOW,
        )
        .unwrap();
        assert_eq!(
            shed,
            Stimulation {
                ask: Ask::Shed(Targets::Equipments(vec!["wh".into()])),
                from: NOW,
                until: NOW + 3_600_000_000
            }
        );
        let boost = Stimulation::from_json(
            &json!({"kind": "consume-now", "group": "east", "from": 1_700_000_900, "until": 1_700_001_800}),
            NOW,
        )
        .unwrap();
        assert_eq!(boost.ask, Ask::ConsumeNow(Targets::Group("east".into())));
        assert_eq!(boost.from, NOW + 900_000_000);
        let signal = Stimulation::from_json(
            &json!({"kind": "signal", "level": "--", "until": 1_700_000_900}),
            NOW,
        )
        .unwrap();
        assert_eq!(signal.ask, Ask::Signal(SignalLevel::VeryLow));
    }

    #[test]
    fn malformed_stimulations_are_refused_with_the_reason() {
        let refuse = |v: Value| Stimulation::from_json(&v, NOW).unwrap_err().to_string();
        assert_eq!(
            refuse(json!({"kind": "boost", "until": 1})),
            "kind \"boost\" is not a stimulation; expected shed, consume-now or signal"
        );
        assert_eq!(
            refuse(json!({"kind": "shed", "group": "g"})),
            "a stimulation needs \"until\""
        );
        assert_eq!(
            refuse(json!({"kind": "shed", "group": "g", "until": 1_699_999_999})),
            "until must come after from"
        );
        assert_eq!(
            refuse(json!({"kind": "shed", "group": "g", "until": 1_700_200_000})),
            "a stimulation lasts a day at most"
        );
        assert_eq!(
            refuse(json!({"kind": "shed", "until": 1_700_000_900})),
            "a stimulation needs \"equipments\" or \"group\""
        );
        assert_eq!(
            refuse(
                json!({"kind": "shed", "group": "g", "equipments": ["a"], "until": 1_700_000_900})
            ),
            "a stimulation names equipments or a group, not both"
        );
        assert_eq!(
            refuse(json!({"kind": "shed", "equipments": [], "until": 1_700_000_900})),
            "equipments must be a non-empty list of names"
        );
        assert_eq!(
            refuse(json!({"kind": "shed", "equipments": [3], "until": 1_700_000_900})),
            "equipments[0] is not an equipment's name"
        );
        assert_eq!(
            refuse(json!({"kind": "signal", "level": "+++", "until": 1_700_000_900}))
                .split(';')
                .next()
                .unwrap(),
            "\"+++\" is not a known signal level"
        );
        assert_eq!(
            refuse(json!({"kind": "signal", "level": "+", "group": "g", "until": 1_700_000_900})),
            "a signal stimulation has no field \"group\""
        );
        assert_eq!(
            refuse(json!({"kind": "shed", "group": "g", "until": "soon"})),
            "until must be a time in whole seconds since 1970 (UTC), got \"soon\""
        );
        assert_eq!(
            refuse(json!("shed")),
            "a stimulation must be a JSON object with a \"kind\""
        );
    }
}
