//! Plans: when a piloted equipment should consume. An energy management
//! system sends, per equipment, either 96 quarter-hour decisions from a
//! start time (the next 24 hours) or a list of time slots.
//!
//! Times are UTC microseconds, as everywhere in fedwatt; on the wire they
//! are seconds.

use serde_json::Value;

use crate::{Result, invalid, seconds};

/// A quarter of an hour, in microseconds.
pub const SLOT: i64 = 15 * 60 * 1_000_000;

/// Decisions in a plan of quarter hours: 24 hours.
pub const SLOTS_PER_PLAN: usize = 96;

/// When an equipment should consume.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// On or off for each quarter hour from `start`.
    QuarterHours {
        /// The first slot's start, on a quarter-hour boundary.
        start: i64,
        /// One decision per slot; at most [`SLOTS_PER_PLAN`].
        decisions: Vec<bool>,
    },
    /// On within each slot `[from, to)`, off elsewhere; sorted, apart.
    Slots(Vec<(i64, i64)>),
}

impl Plan {
    /// The plan's decision at `now`: `Some(on)`, or `None` once the plan
    /// does not cover `now` (before its start, or after its last slot of
    /// quarter hours).
    pub fn decision(&self, now: i64) -> Option<bool> {
        match self {
            Plan::QuarterHours { start, decisions } => {
                if now < *start {
                    return None;
                }
                // The current slot is (now − start) / 15 min.
                let slot = usize::try_from((now - start) / SLOT).ok()?;
                decisions.get(slot).copied()
            }
            Plan::Slots(slots) => Some(slots.iter().any(|&(from, to)| from <= now && now < to)),
        }
    }

    /// The next time after `now` when the decision may change, for the
    /// control loop to wake up then (a quarter-hour boundary, a slot's
    /// start or end).
    pub fn next_change(&self, now: i64) -> Option<i64> {
        match self {
            Plan::QuarterHours { start, decisions } => {
                let end = start + SLOT * decisions.len() as i64;
                if now >= end {
                    return None;
                }
                if now < *start {
                    return Some(*start);
                }
                Some(start + ((now - start) / SLOT + 1) * SLOT)
            }
            Plan::Slots(slots) => slots
                .iter()
                .flat_map(|&(from, to)| [from, to])
                .filter(|&t| t > now)
                .min(),
        }
    }

    /// Reads a plan from JSON:
    /// `{"start": 1700000100, "decisions": [0,1,1,…]}` (start in seconds on
    /// a quarter-hour boundary; at most 96 decisions, each 0/1 or
    /// true/false), or `{"slots": [[from, to], …]}` (seconds, `from < to`,
    /// sorted and apart). Refuses anything else with a reason.
    pub fn from_json(value: &Value) -> Result<Plan> {
        let Some(fields) = value.as_object() else {
            return invalid("a plan must be a JSON object with \"decisions\" or \"slots\"");
        };
        if let Some(unknown) = fields
            .keys()
            .find(|k| !matches!(k.as_str(), "start" | "decisions" | "slots"))
        {
            return invalid(format!("a plan has no field {unknown:?}"));
        }
        match (fields.get("decisions"), fields.get("slots")) {
            (Some(decisions), None) => {
                let start = seconds(fields.get("start"), "start")?;
                if start % SLOT != 0 {
                    return invalid(
                        "start must be on a quarter-hour boundary (a multiple of 900 s)",
                    );
                }
                let Some(list) = decisions.as_array() else {
                    return invalid("decisions must be a list");
                };
                if list.is_empty() || list.len() > SLOTS_PER_PLAN {
                    return invalid(format!(
                        "decisions: {} given, expected 1 to {SLOTS_PER_PLAN}",
                        list.len()
                    ));
                }
                let decisions = list
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match d {
                        Value::Bool(b) => Ok(*b),
                        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
                        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
                        other => invalid(format!(
                            "decisions[{i}]: {other} is not 0, 1, true or false"
                        )),
                    })
                    .collect::<Result<Vec<bool>>>()?;
                Ok(Plan::QuarterHours { start, decisions })
            }
            (None, Some(slots)) => {
                if fields.contains_key("start") {
                    return invalid("a plan of slots has no start");
                }
                let Some(list) = slots.as_array() else {
                    return invalid("slots must be a list of [from, to]");
                };
                let mut out: Vec<(i64, i64)> = Vec::with_capacity(list.len());
                for (i, slot) in list.iter().enumerate() {
                    let pair = slot.as_array().filter(|p| p.len() == 2);
                    let Some(pair) = pair else {
                        return invalid(format!("slots[{i}] must be [from, to]"));
                    };
                    let from = seconds(pair.first(), &format!("slots[{i}] from"))?;
                    let to = seconds(pair.get(1), &format!("slots[{i}] to"))?;
                    if from >= to {
                        return invalid(format!("slots[{i}] ends before it starts"));
                    }
                    if let Some(&(_, previous_end)) = out.last()
                        && from < previous_end
                    {
                        return invalid(format!("slots[{i}] starts before slots[{}] ends", i - 1));
                    }
                    out.push((from, to));
                }
                Ok(Plan::Slots(out))
            }
            (Some(_), Some(_)) => invalid("a plan has either decisions or slots, not both"),
            (None, None) => invalid("a plan needs \"decisions\" (with \"start\") or \"slots\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const T0: i64 = 1_700_000_100; // a quarter-hour boundary

    #[test]
    fn the_current_slot_is_now_minus_start_over_a_quarter_hour() {
        let plan = Plan::from_json(&json!({"start": T0, "decisions": [0, 1, 1, 0]})).unwrap();
        let at = |s: i64| plan.decision(s * 1_000_000);
        assert_eq!(at(T0 - 1), None);
        assert_eq!(at(T0), Some(false));
        assert_eq!(at(T0 + 899), Some(false));
        assert_eq!(at(T0 + 900), Some(true));
        assert_eq!(at(T0 + 3 * 900), Some(false));
        assert_eq!(
            at(T0 + 4 * 900),
            None,
            "past its last slot, the plan says nothing"
        );
        assert_eq!(
            plan.next_change((T0 + 10) * 1_000_000),
            Some((T0 + 900) * 1_000_000)
        );
        assert_eq!(plan.next_change((T0 + 4 * 900) * 1_000_000), None);
    }

    #[test]
    fn slots_are_on_inside_and_off_outside() {
        let plan =
            Plan::from_json(&json!({"slots": [[T0, T0 + 1800], [T0 + 3600, T0 + 4500]]})).unwrap();
        assert_eq!(plan.decision((T0 + 100) * 1_000_000), Some(true));
        assert_eq!(plan.decision((T0 + 1800) * 1_000_000), Some(false));
        assert_eq!(
            plan.next_change((T0 + 1800) * 1_000_000),
            Some((T0 + 3600) * 1_000_000)
        );
    }

    #[test]
    fn malformed_plans_are_refused_with_the_reason() {
        let refuse = |v: Value| Plan::from_json(&v).unwrap_err().to_string();
        assert_eq!(
            refuse(json!({"start": T0 + 1, "decisions": [1]})),
            "start must be on a quarter-hour boundary (a multiple of 900 s)"
        );
        assert_eq!(
            refuse(json!({"start": T0, "decisions": vec![1; 97]})),
            "decisions: 97 given, expected 1 to 96"
        );
        assert_eq!(
            refuse(json!({"start": T0, "decisions": [1, 2]})),
            "decisions[1]: 2 is not 0, 1, true or false"
        );
        assert_eq!(
            refuse(json!({"decisions": [1]})),
            "start must be a time in whole seconds since 1970 (UTC), got nothing"
        );
        assert_eq!(
            refuse(json!({"slots": [[T0, T0]]})),
            "slots[0] ends before it starts"
        );
        assert_eq!(
            refuse(json!({"slots": [[T0, T0 + 900], [T0 + 600, T0 + 1200]]})),
            "slots[1] starts before slots[0] ends"
        );
        assert_eq!(
            refuse(json!({"slots": [], "decisions": []})),
            "a plan has either decisions or slots, not both"
        );
        assert_eq!(refuse(json!({"slot": []})), "a plan has no field \"slot\"");
        assert_eq!(
            refuse(json!([1, 0])),
            "a plan must be a JSON object with \"decisions\" or \"slots\""
        );
    }
}
