//! What the flexibility control keeps in the store besides its journal
//! streams: the equipments added at run time (over the API or with
//! `fedwatt device add`), the last plan of each equipment, and the
//! stimulations received.
//!
//! The store does not read these: equipments, plans and stimulations are
//! kept as the JSON the control crate reads and checks, so that what was
//! accepted once is accepted again after a restart, word for word.

use serde::Serialize;

use crate::db::{Cell, Param};
use crate::error::{Error, Result, corrupt};
use crate::{Store, Time};

/// The tables, with `{key}` and `{int}` in the backend's types.
const SCHEMA: &str = r#"
CREATE TABLE control_equipments (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    added {int} NOT NULL
);
CREATE TABLE control_plans (
    equipment TEXT PRIMARY KEY,
    plan TEXT NOT NULL,
    source TEXT NOT NULL,
    received {int} NOT NULL
);
CREATE TABLE control_stimulations (
    id {key},
    received {int} NOT NULL,
    source TEXT NOT NULL,
    body TEXT NOT NULL,
    until_time {int} NOT NULL
);
CREATE INDEX control_stimulations_until ON control_stimulations (until_time);
"#;

/// [`SCHEMA`] in one backend's types.
pub(crate) fn schema(key: &str, int: &str) -> String {
    SCHEMA.replace("{key}", key).replace("{int}", int)
}

/// An equipment added at run time, as its configuration JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEquipment {
    /// Its name.
    pub name: String,
    /// Its configuration, as the control crate reads it.
    pub config: serde_json::Value,
    /// When it was added (µs).
    pub added: i64,
}

/// The last plan an equipment received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredPlan {
    /// The equipment.
    pub equipment: String,
    /// The plan, as received.
    pub plan: serde_json::Value,
    /// Where it came from (`mqtt`, `api`).
    pub source: String,
    /// When (µs).
    pub received: i64,
}

/// A stimulation received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredStimulation {
    /// Its number.
    pub id: i64,
    /// When it was received (µs).
    pub received: i64,
    /// Where it came from (`mqtt`, `api`).
    pub source: String,
    /// The stimulation, as received.
    pub body: serde_json::Value,
    /// When it ends (µs).
    pub until: i64,
}

fn json_of(cell: &Cell, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(&cell.text()?)
        .map_err(|e| corrupt(format!("{what} in the database"), format!("not JSON: {e}")))
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '+', '#']) {
        return Err(Error::Invalid(format!(
            "equipment {name:?}: a name must be non-empty, without / + #"
        )));
    }
    Ok(())
}

impl Store {
    /// Adds an equipment (its configuration, checked by the caller);
    /// refuses a name already taken.
    pub fn add_equipment(&self, name: &str, config: &serde_json::Value) -> Result<StoredEquipment> {
        check_name(name)?;
        let added = Time::now().as_micros();
        let text = config.to_string();
        self.write(|db| {
            let taken = db.query(
                "SELECT 1 FROM control_equipments WHERE name = $1",
                &[Param::Text(Some(name))],
            )?;
            if !taken.is_empty() {
                return Err(Error::Conflict(format!(
                    "an equipment named {name:?} is already stored"
                )));
            }
            db.execute(
                "INSERT INTO control_equipments (name, config, added) VALUES ($1, $2, $3)",
                &[
                    Param::Text(Some(name)),
                    Param::Text(Some(&text)),
                    Param::Int(Some(added)),
                ],
            )?;
            Ok(())
        })?;
        Ok(StoredEquipment {
            name: name.to_owned(),
            config: config.clone(),
            added,
        })
    }

    /// The equipments added at run time, by name.
    pub fn equipments(&self) -> Result<Vec<StoredEquipment>> {
        self.read(|db| {
            db.query(
                "SELECT name, config, added FROM control_equipments ORDER BY name",
                &[],
            )?
            .iter()
            .map(|row| {
                Ok(StoredEquipment {
                    name: row[0].text()?,
                    config: json_of(&row[1], "an equipment's configuration")?,
                    added: row[2].int()?,
                })
            })
            .collect()
        })
    }

    /// Removes an equipment added at run time, with its plan; `false` if
    /// there was none of that name.
    pub fn remove_equipment(&self, name: &str) -> Result<bool> {
        self.write(|db| {
            db.execute(
                "DELETE FROM control_plans WHERE equipment = $1",
                &[Param::Text(Some(name))],
            )?;
            Ok(db.execute(
                "DELETE FROM control_equipments WHERE name = $1",
                &[Param::Text(Some(name))],
            )? > 0)
        })
    }

    /// Keeps `plan` as the last plan of `equipment`, replacing the one
    /// before.
    pub fn save_plan(
        &self,
        equipment: &str,
        plan: &serde_json::Value,
        source: &str,
        received: Time,
    ) -> Result<()> {
        let text = plan.to_string();
        self.write(|db| {
            db.execute(
                "INSERT INTO control_plans (equipment, plan, source, received) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (equipment) DO UPDATE
                 SET plan = excluded.plan, source = excluded.source, received = excluded.received",
                &[
                    Param::Text(Some(equipment)),
                    Param::Text(Some(&text)),
                    Param::Text(Some(source)),
                    Param::Int(Some(received.as_micros())),
                ],
            )?;
            Ok(())
        })
    }

    /// The last plan of each equipment.
    pub fn plans(&self) -> Result<Vec<StoredPlan>> {
        self.read(|db| {
            db.query(
                "SELECT equipment, plan, source, received FROM control_plans ORDER BY equipment",
                &[],
            )?
            .iter()
            .map(|row| {
                Ok(StoredPlan {
                    equipment: row[0].text()?,
                    plan: json_of(&row[1], "a plan")?,
                    source: row[2].text()?,
                    received: row[3].int()?,
                })
            })
            .collect()
        })
    }

    /// Records a stimulation received, which ends at `until`.
    pub fn save_stimulation(
        &self,
        body: &serde_json::Value,
        source: &str,
        received: Time,
        until: Time,
    ) -> Result<()> {
        let text = body.to_string();
        self.write(|db| {
            db.execute(
                "INSERT INTO control_stimulations (received, source, body, until_time) VALUES ($1, $2, $3, $4)",
                &[
                    Param::Int(Some(received.as_micros())),
                    Param::Text(Some(source)),
                    Param::Text(Some(&text)),
                    Param::Int(Some(until.as_micros())),
                ],
            )?;
            Ok(())
        })
    }

    /// The stimulations that end after `now`, oldest first: those still
    /// to apply after a restart.
    pub fn stimulations_in_force(&self, now: Time) -> Result<Vec<StoredStimulation>> {
        self.read(|db| {
            db.query(
                "SELECT id, received, source, body, until_time FROM control_stimulations
                 WHERE until_time > $1 ORDER BY id",
                &[Param::Int(Some(now.as_micros()))],
            )?
            .iter()
            .map(|row| {
                Ok(StoredStimulation {
                    id: row[0].int()?,
                    received: row[1].int()?,
                    source: row[2].text()?,
                    body: json_of(&row[3], "a stimulation")?,
                    until: row[4].int()?,
                })
            })
            .collect()
        })
    }
}
