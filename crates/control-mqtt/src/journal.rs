//! The control loop's journal, kept in the store: what it journals is
//! stored as streams, so that states, orders and power can be charted and
//! federated like any other data; plans and stimulations in the store's
//! control tables, from every source alike (the MQTT topics and the HTTP
//! API), each answered ([`Kept`](crate::Kept)) once stored.
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

use control::journal::{JournalEntry, order_name};
use senml::{Record, Value};
use store::Store;
use tokio::sync::mpsc;

use crate::handle::Note;
use crate::status::ControlStatus;

/// The owner of the streams the control loop writes.
const OWNER: &str = "control";

/// Journal entries stored in one transaction, at most.
const BATCH: usize = 4096;

/// Stores what the loop journals, until the loop is gone (its end of
/// `notes` dropped), and tells `status`. Entries are stored in batches of
/// what came within 50 ms, except that one a caller waits for goes at once.
pub(crate) async fn store(
    store: Store,
    mut notes: mpsc::Receiver<Note>,
    status: Arc<ControlStatus>,
) {
    while let Some(first) = notes.recv().await {
        if first.kept.is_none() {
            // What comes meanwhile goes in the same transaction.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match notes.try_recv() {
                Ok(note) => batch.push(note),
                Err(_) => break,
            }
        }
        for note in &batch {
            status.observe(&note.entry);
        }
        let store = store.clone();
        let stored = tokio::task::spawn_blocking(move || keep(&store, batch)).await;
        let failure = match stored {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        status.journal_failed();
        tracing::error!("control: storing its journal: {failure}");
    }
}

/// Stores a batch of journal entries: plans and stimulations in their
/// tables, each answered to who waits for it; then the streams' records in
/// one pack.
fn keep(store: &Store, batch: Vec<Note>) -> store::Result<()> {
    let mut entries = Vec::with_capacity(batch.len());
    for Note { entry, kept } in batch {
        let saved = save(store, &entry);
        match (kept, saved) {
            (Some(kept), saved) => kept.done(saved.map_err(|e| e.to_string())),
            (None, Err(e)) => tracing::error!("control: keeping {entry:?}: {e}"),
            (None, Ok(())) => {}
        }
        entries.push(entry);
    }
    let records: Vec<(usize, Record)> = last_of_each_instant(entries.iter().filter_map(record))
        .into_iter()
        .enumerate()
        .collect();
    if !records.is_empty() {
        store.ingest(&records, Some(OWNER))?;
    }
    Ok(())
}

/// Keeps a plan or a stimulation in its table; other entries are kept as
/// records.
fn save(store: &Store, entry: &JournalEntry) -> store::Result<()> {
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
        ),
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
        ),
        _ => Ok(()),
    }
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
        // Kept in their own tables (see `save`).
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plans_and_stimulations_are_kept_before_their_caller_is_answered() {
        let dir = std::env::temp_dir().join(format!("fedwatt-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let kept_in = Store::open(None, &dir, "UTC").unwrap();
        let (notes, noted) = mpsc::channel(16);
        let storing = tokio::spawn(store(kept_in.clone(), noted, Default::default()));
        let (kept, is_kept) = tokio::sync::oneshot::channel();
        let plan = serde_json::json!({"slots": []});
        notes
            .send(Note {
                entry: JournalEntry::Plan {
                    at: 1_000_000,
                    equipment: "heater".into(),
                    plan: plan.clone(),
                    source: control::journal::Source::Api,
                },
                kept: Some(crate::handle::Kept::from_sender(kept)),
            })
            .await
            .unwrap();
        // Answered once it is in the store, and not before.
        assert_eq!(is_kept.await.unwrap(), Ok(()));
        let plans = kept_in.plans().unwrap();
        assert_eq!(plans.len(), 1);
        assert_eq!(
            (plans[0].equipment.as_str(), &plans[0].plan),
            ("heater", &plan)
        );
        assert_eq!(plans[0].source, "api");
        // A stimulation from MQTT, that no one waits for, goes the same way.
        let shed = serde_json::json!({"kind": "shed", "group": "all"});
        notes
            .send(Note {
                entry: JournalEntry::Stimulation {
                    at: 2_000_000,
                    body: shed.clone(),
                    until: i64::MAX / 2,
                    source: control::journal::Source::Mqtt,
                },
                kept: None,
            })
            .await
            .unwrap();
        drop(notes);
        storing.await.unwrap();
        let in_force = kept_in
            .stimulations_in_force(store::Time::from_micros(3_000_000))
            .unwrap();
        assert_eq!(in_force.len(), 1);
        assert_eq!(
            (&in_force[0].body, in_force[0].source.as_str()),
            (&shed, "mqtt")
        );
        drop(kept_in);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
