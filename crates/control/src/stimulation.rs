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
//! {"kind": "ecowatt", "from": 1700002800, "levels": [1, 1, 2, 3, 3, 2]}
//! {"kind": "tempo", "colour": "red", "from": 1700028000, "until": 1700114400}
//! ```
//!
//! `ecowatt` gives RTE's level (1 green, 2 orange, 3 red) for each hour
//! from `from` (on an hour boundary; 96 hours at most). `tempo` gives EDF's
//! colour of a Tempo day, from its start to its end (06:00 to 06:00 local
//! time, as the sender knows).

use serde_json::{Map, Value};

use crate::model::{SignalLevel, TempoColour};
use crate::{Error, Result, invalid, seconds};

/// The longest a stimulation may last: a day.
pub const LONGEST: i64 = 24 * 3600 * 1_000_000;

/// An hour, in µs.
pub const HOUR: i64 = 3600 * 1_000_000;

/// Hours of Ecowatt levels one stimulation may give: four days, as RTE
/// forecasts.
pub const ECOWATT_HOURS: usize = 96;

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
    /// RTE Ecowatt levels (1 to 3), one per hour from `from`.
    Ecowatt(Vec<u8>),
    /// The EDF Tempo day's colour.
    Tempo(TempoColour),
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
            "ecowatt" => &["kind", "levels", "from"],
            "tempo" => &["kind", "colour", "from", "until"],
            other => {
                return invalid(format!(
                    "kind {other:?} is not a stimulation; expected shed, consume-now, signal, ecowatt or tempo"
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
        if kind == "ecowatt" {
            return ecowatt(fields, from);
        }
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
            "tempo" => {
                let colour = fields
                    .get("colour")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Error::Invalid(
                            "a tempo stimulation needs \"colour\" (blue, white or red)".into(),
                        )
                    })?;
                Ask::Tempo(colour.parse()?)
            }
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

/// Ecowatt levels, one per hour from `from`.
fn ecowatt(fields: &Map<String, Value>, from: i64) -> Result<Stimulation> {
    if from % HOUR != 0 {
        return invalid("an ecowatt stimulation's from must be on an hour boundary");
    }
    let Some(Value::Array(list)) = fields.get("levels") else {
        return invalid("an ecowatt stimulation needs \"levels\": a list of 1, 2 or 3 per hour");
    };
    if list.is_empty() || list.len() > ECOWATT_HOURS {
        return invalid(format!(
            "an ecowatt stimulation gives 1 to {ECOWATT_HOURS} hourly levels, not {}",
            list.len()
        ));
    }
    let levels = list
        .iter()
        .enumerate()
        .map(|(i, v)| match v.as_u64() {
            Some(level @ 1..=3) => Ok(level as u8),
            _ => invalid(format!("levels[{i}] is {v}, not 1, 2 or 3")),
        })
        .collect::<Result<Vec<u8>>>()?;
    let until = from + HOUR * levels.len() as i64;
    Ok(Stimulation {
        ask: Ask::Ecowatt(levels),
        from,
        until,
    })
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
        let ecowatt = Stimulation::from_json(
            &json!({"kind": "ecowatt", "from": 1_700_002_800, "levels": [1, 3]}),
            NOW,
        )
        .unwrap();
        assert_eq!(ecowatt.ask, Ask::Ecowatt(vec![1, 3]));
        assert_eq!(ecowatt.until - ecowatt.from, 2 * HOUR);
        let tempo = Stimulation::from_json(
            &json!({"kind": "tempo", "colour": "red", "until": 1_700_050_000}),
            NOW,
        )
        .unwrap();
        assert_eq!(tempo.ask, Ask::Tempo(TempoColour::Red));
    }

    #[test]
    fn malformed_stimulations_are_refused_with_the_reason() {
        let refuse = |v: Value| Stimulation::from_json(&v, NOW).unwrap_err().to_string();
        assert_eq!(
            refuse(json!({"kind": "boost", "until": 1})),
            "kind \"boost\" is not a stimulation; expected shed, consume-now, signal, ecowatt or tempo"
        );
        assert_eq!(
            refuse(json!({"kind": "ecowatt", "from": 1_700_000_000, "levels": [1]})),
            "an ecowatt stimulation's from must be on an hour boundary"
        );
        assert_eq!(
            refuse(json!({"kind": "ecowatt", "from": 1_700_002_800, "levels": [1, 4]})),
            "levels[1] is 4, not 1, 2 or 3"
        );
        assert_eq!(
            refuse(json!({"kind": "ecowatt", "from": 1_700_002_800, "levels": vec![1; 97]})),
            "an ecowatt stimulation gives 1 to 96 hourly levels, not 97"
        );
        assert_eq!(
            refuse(json!({"kind": "tempo", "colour": "green", "until": 1_700_050_000}))
                .split(';')
                .next()
                .unwrap(),
            "\"green\" is not a known Tempo colour"
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
