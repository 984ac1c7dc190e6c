//! What the connectors report on the node's status board: one entry per
//! connector id under `connectors` in `/healthz`, and counters labelled
//! by id in `/metrics`.

use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};

use store::{Store, Time};

/// Every connector's health; one board entry, `connectors`.
#[derive(Debug, Default)]
pub struct ConnectorsStatus {
    connectors: Vec<Arc<Health>>,
}

impl ConnectorsStatus {
    /// The health of a new connector, reported from now on.
    pub(crate) fn add(&mut self, id: &str, kind: &'static str, input: String) -> Arc<Health> {
        let health = Arc::new(Health {
            id: id.to_owned(),
            kind,
            input,
            counts: Mutex::default(),
        });
        self.connectors.push(health.clone());
        health
    }
}

/// One connector's health, updated as it runs.
#[derive(Debug)]
pub struct Health {
    id: String,
    kind: &'static str,
    input: String,
    counts: Mutex<Counts>,
}

/// What a connector counted, and where it is.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Counts {
    /// `starting`, `reading`, `retrying`, `replayed`, `stopped`.
    pub state: &'static str,
    /// The baud rate a port is read at.
    pub baud: Option<u32>,
    /// The mode the decoder found.
    pub mode: Option<String>,
    pub frames: u64,
    pub records: u64,
    pub dropped_groups: u64,
    pub interrupted_frames: u64,
    pub errors: u64,
    pub last_frame: Option<i64>,
    pub last_error: Option<String>,
}

impl Health {
    /// Changes the counts.
    pub(crate) fn update(&self, change: impl FnOnce(&mut Counts)) {
        change(&mut self.counts.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// An error: counted, kept as the last one, and logged.
    pub(crate) fn error(&self, message: String) {
        tracing::warn!("connector {}: {message}", self.id);
        self.update(|c| {
            c.errors += 1;
            c.last_error = Some(message);
        });
    }

    pub(crate) fn counts(&self) -> Counts {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl node::Status for ConnectorsStatus {
    fn name(&self) -> &'static str {
        "connectors"
    }

    fn health(&self, _: &Store) -> Result<serde_json::Value, store::Error> {
        let mut all = serde_json::Map::new();
        for h in &self.connectors {
            let c = h.counts();
            all.insert(
                h.id.clone(),
                serde_json::json!({
                    "kind": h.kind,
                    "input": h.input,
                    "state": if c.state.is_empty() { "starting" } else { c.state },
                    "baud": c.baud,
                    "mode": c.mode,
                    "frames": c.frames,
                    "records": c.records,
                    "dropped_groups": c.dropped_groups,
                    "interrupted_frames": c.interrupted_frames,
                    "errors": c.errors,
                    "last_frame": c.last_frame.map(|t| Time::from_micros(t).to_string()),
                    "last_error": c.last_error,
                }),
            );
        }
        Ok(serde_json::Value::Object(all))
    }

    fn metrics(&self, out: &mut String) {
        let counts: Vec<_> = self
            .connectors
            .iter()
            .map(|h| (&h.id, h.counts()))
            .collect();
        type Field = fn(&Counts) -> u64;
        let metrics: [(&str, &str, Field); 4] = [
            ("fedwatt_connector_frames_total", "Frames decoded.", |c| {
                c.frames
            }),
            ("fedwatt_connector_records_total", "Records stored.", |c| {
                c.records
            }),
            (
                "fedwatt_connector_dropped_groups_total",
                "Groups dropped (bad checksum, malformed).",
                |c| c.dropped_groups,
            ),
            (
                "fedwatt_connector_errors_total",
                "Errors: a port that failed, a pack the store refused, a frame naming no meter.",
                |c| c.errors,
            ),
        ];
        for (name, help, field) in metrics {
            node::describe_metric(out, name, "counter", help);
            for (id, c) in &counts {
                // Ids are checked to need no escaping.
                let _ = writeln!(out, "{name}{{id=\"{id}\"}} {}", field(c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node::Status;

    #[test]
    fn metrics_have_one_line_per_connector() {
        let mut status = ConnectorsStatus::default();
        let a = status.add("a", "tic", "/dev/ttyAMA0".into());
        status.add("b", "tic", "capture.tic".into());
        a.update(|c| c.frames = 3);
        a.error("gone".into());
        let mut out = String::new();
        status.metrics(&mut out);
        assert!(
            out.contains("fedwatt_connector_frames_total{id=\"a\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("fedwatt_connector_frames_total{id=\"b\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("fedwatt_connector_errors_total{id=\"a\"} 1\n"),
            "{out}"
        );
        assert_eq!(
            out.matches("# TYPE fedwatt_connector_records_total counter")
                .count(),
            1
        );
    }
}
