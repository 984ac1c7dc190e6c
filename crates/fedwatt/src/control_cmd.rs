//! The flexibility control loop in the node: started by `serve` when
//! `[control]` names a broker; what it journals is stored as streams, so
//! that states, orders and power can be charted and federated like any
//! other data.
//!
//! Streams, per equipment `E` and device part `P` (`switch`, `finger`…):
//! - `equipment/E/state`: its command state (`piloted-on`, `stand-by`…);
//! - `equipment/E/P/measured`: what the device says (`on`, `off`,
//!   `communication-error`, `unknown`);
//! - `equipment/E/P/order` and `equipment/E/P/confirmed`: each order sent
//!   (`on`, `off`, `press`) and each confirmed; `equipment/E/P/failed`: each
//!   the device did not confirm;
//! - `equipment/E/P/power`: the power it measures, in W.

use std::sync::Arc;
use std::time::Duration;

use control::runtime::{ControlConfig, Handle, JournalEntry, Requests, Source, order_name};
use control::settings::EquipmentSettings;
use senml::{Record, Value};
use store::Store;
use tokio::sync::{mpsc, watch};

/// The owner of the streams the control loop writes.
const OWNER: &str = "control";

/// Journal entries stored in one transaction, at most.
const BATCH: usize = 4096;

/// Runs the control loop and stores its journal, until `stopped`. The
/// equipments added at run time are driven too, and the plans and
/// stimulations accepted before a restart apply again.
pub async fn run(
    mut config: ControlConfig,
    store: Store,
    handle: Handle,
    requests: Requests,
    stopped: watch::Receiver<bool>,
    restored: tokio::sync::oneshot::Sender<()>,
) {
    let stored = store.clone();
    let configured = config_names(&config);
    match tokio::task::spawn_blocking(move || stored_equipments(&stored, &configured)).await {
        Ok(added) => config.equipments.extend(added),
        Err(e) => tracing::error!("control: reading the stored equipments: {e}"),
    }
    let (journal, mut entries) = mpsc::channel(65_536);
    let control = tokio::spawn(control::runtime::run(config, journal, requests, stopped));
    restore(&store, &handle).await;
    // The API answers once the loop holds what it held before.
    let _ = restored.send(());
    while let Some(first) = entries.recv().await {
        let mut batch = vec![first];
        // What came meanwhile goes in the same transaction.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while batch.len() < BATCH {
            match entries.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let store = store.clone();
        let stored = tokio::task::spawn_blocking(move || keep(&store, &batch)).await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("control: storing its journal: {e}"),
            Err(e) => tracing::error!("control: storing its journal: {e}"),
        }
    }
    match control.await {
        Ok(Err(e)) => tracing::error!("control: {e}"),
        Err(e) => tracing::error!("control: {e}"),
        Ok(Ok(())) => {}
    }
}

fn config_names(config: &ControlConfig) -> Vec<String> {
    config.equipments.iter().map(|e| e.name.clone()).collect()
}

/// The equipments added at run time, except those whose name the
/// configuration file took since (each skipped with its reason logged).
fn stored_equipments(
    store: &Store,
    configured: &[String],
) -> Vec<control::runtime::EquipmentConfig> {
    let stored = match store.equipments() {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!("control: reading the stored equipments: {e}");
            return Vec::new();
        }
    };
    stored
        .into_iter()
        .filter_map(|e| {
            if configured.contains(&e.name) {
                tracing::error!(
                    "control: equipment {:?} is both in the configuration file and added at run time; the file's is driven",
                    e.name
                );
                return None;
            }
            let read = serde_json::from_value::<EquipmentSettings>(e.config)
                .map_err(|err| err.to_string())
                .and_then(|s| s.to_config().map_err(|err| err.to_string()));
            read.map_err(|err| tracing::error!("control: stored equipment {:?}: {err}", e.name))
                .ok()
        })
        .collect()
}

/// Gives the loop back the last plan of each equipment and the
/// stimulations still in force.
async fn restore(store: &Store, handle: &Handle) {
    let read = store.clone();
    let now = store::Time::now();
    let kept = tokio::task::spawn_blocking(move || {
        Ok::<_, store::Error>((read.plans()?, read.stimulations_in_force(now)?))
    })
    .await;
    let (plans, stimulations) = match kept {
        Ok(Ok(kept)) => kept,
        Ok(Err(e)) => return tracing::error!("control: reading the kept plans: {e}"),
        Err(e) => return tracing::error!("control: reading the kept plans: {e}"),
    };
    for p in plans {
        if let Err(e) = handle.set_plan(&p.equipment, p.plan, Source::Store).await {
            tracing::warn!("control: the kept plan of {}: {e}", p.equipment);
        }
    }
    for s in stimulations {
        if let Err(e) = handle.stimulate(s.body, Source::Store).await {
            tracing::warn!("control: kept stimulation {}: {e}", s.id);
        }
    }
}

/// Stores a batch of journal entries: the streams' records in one pack,
/// plans and stimulations in their tables.
fn keep(store: &Store, batch: &[JournalEntry]) -> store::Result<()> {
    for entry in batch {
        match entry {
            JournalEntry::Plan {
                at,
                equipment,
                plan,
                source,
            } => store.save_plan(
                equipment,
                plan,
                source.name(),
                store::Time::from_micros(*at),
            )?,
            JournalEntry::Stimulation {
                at,
                body,
                until,
                source,
            } => store.save_stimulation(
                body,
                source.name(),
                store::Time::from_micros(*at),
                store::Time::from_micros(*until),
            )?,
            _ => {}
        }
    }
    let records: Vec<(usize, Record)> = last_of_each_instant(batch.iter().filter_map(record))
        .into_iter()
        .enumerate()
        .collect();
    if !records.is_empty() {
        store.ingest(&records, Some(OWNER))?;
    }
    Ok(())
}

/// The records, keeping of several in one stream at one instant (two
/// transitions in a row) the last: what the stream says from then on.
fn last_of_each_instant(records: impl Iterator<Item = Record>) -> Vec<Record> {
    let mut kept: Vec<Record> = Vec::new();
    let mut at: std::collections::HashMap<(Arc<str>, i64), usize> =
        std::collections::HashMap::new();
    for r in records {
        let key = (Arc::from(&*r.name), r.time);
        match at.get(&key) {
            Some(&i) => kept[i] = r,
            None => {
                at.insert(key, kept.len());
                kept.push(r);
            }
        }
    }
    kept
}

/// A journal entry as a record of its stream, if it is stored.
fn record(entry: &JournalEntry) -> Option<Record> {
    let text = |name: String, at: i64, value: &str| {
        Some(Record::new(name, at, Some(Value::String(Arc::from(value)))))
    };
    match entry {
        JournalEntry::Transition {
            at, equipment, to, ..
        } => text(format!("equipment/{equipment}/state"), *at, to.name()),
        JournalEntry::Measured {
            at,
            equipment,
            part,
            state,
        } => text(
            format!("equipment/{equipment}/{}/measured", part.name()),
            *at,
            state.name(),
        ),
        JournalEntry::Order {
            at,
            equipment,
            part,
            order,
        } => text(
            format!("equipment/{equipment}/{}/order", part.name()),
            *at,
            order_name(*order),
        ),
        JournalEntry::Confirmed {
            at,
            equipment,
            part,
            order,
        } => text(
            format!("equipment/{equipment}/{}/confirmed", part.name()),
            *at,
            order_name(*order),
        ),
        JournalEntry::Failed {
            at,
            equipment,
            part,
            order,
        } => text(
            format!("equipment/{equipment}/{}/failed", part.name()),
            *at,
            order_name(*order),
        ),
        JournalEntry::Power {
            at,
            equipment,
            part,
            watts,
        } => Some(
            Record::new(
                format!("equipment/{equipment}/{}/power", part.name()),
                *at,
                Some(Value::Number(*watts)),
            )
            .with_unit(Some("W".into())),
        ),
        // Logged by the loop; nothing to chart.
        JournalEntry::Refused { .. } => None,
        // Kept in their own tables (see `keep`).
        JournalEntry::Plan { .. } | JournalEntry::Stimulation { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use control::machine::{Event, Part, State};
    use control::model::Measured;

    use super::*;

    #[test]
    fn journal_entries_become_records_of_their_streams() {
        let r = record(&JournalEntry::Transition {
            at: 5,
            equipment: "water-heater".into(),
            from: State::PilotedOff,
            to: State::PilotedOn,
            event: Event::SlotOn,
        })
        .unwrap();
        assert_eq!(&*r.name, "equipment/water-heater/state");
        assert_eq!(r.time, 5);
        assert_eq!(r.value, Some(Value::String("piloted-on".into())));
        let m = record(&JournalEntry::Measured {
            at: 6,
            equipment: "heater".into(),
            part: Part::Switch,
            state: Measured::CommunicationError,
        })
        .unwrap();
        assert_eq!(&*m.name, "equipment/heater/switch/measured");
        assert_eq!(m.value, Some(Value::String("communication-error".into())));
        let p = record(&JournalEntry::Power {
            at: 7,
            equipment: "ev".into(),
            part: Part::Switch,
            watts: 7400.0,
        })
        .unwrap();
        assert_eq!(p.unit.as_deref(), Some("W"));
        assert!(
            record(&JournalEntry::Refused {
                at: 8,
                topic: "t".into(),
                reason: "r".into()
            })
            .is_none()
        );
    }
}
