//! The status board: what each component reports for `/healthz` and
//! `/metrics`, read by the HTTP API without knowing the components.

use std::sync::{Arc, PoisonError, RwLock};

use store::Store;

/// What a component reports about itself.
pub trait Status: Send + Sync + 'static {
    /// Its key in `/healthz` (`federation`, `control`…).
    fn name(&self) -> &'static str;

    /// Its part of `/healthz`. It runs on a blocking thread and may read
    /// the store (the federation's outbox backlog).
    fn health(&self, store: &Store) -> Result<serde_json::Value, store::Error>;

    /// Its metrics, appended to `out` in Prometheus' text format (names
    /// prefixed `fedwatt_`, with their HELP and TYPE lines).
    fn metrics(&self, out: &mut String);
}

/// Writes a metric's HELP and TYPE lines (`kind`: `counter`, `gauge`…),
/// before its samples, in Prometheus' text format.
pub fn describe_metric(out: &mut String, name: &str, kind: &str, help: &str) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The statuses of a node's components, shared by all of them.
#[derive(Clone, Default)]
pub struct StatusBoard(Arc<RwLock<Vec<Arc<dyn Status>>>>);

impl StatusBoard {
    /// Adds a component's status; one of the same name is replaced.
    pub fn register(&self, status: Arc<dyn Status>) {
        let mut all = self.0.write().unwrap_or_else(PoisonError::into_inner);
        all.retain(|s| s.name() != status.name());
        all.push(status);
    }

    /// Every status's health, by name, in the order they were registered.
    pub fn health(
        &self,
        store: &Store,
    ) -> Result<serde_json::Map<String, serde_json::Value>, store::Error> {
        let mut health = serde_json::Map::new();
        for status in self.statuses() {
            health.insert(status.name().to_owned(), status.health(store)?);
        }
        Ok(health)
    }

    /// Every status's metrics.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        for status in self.statuses() {
            status.metrics(&mut out);
        }
        out
    }

    fn statuses(&self) -> Vec<Arc<dyn Status>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for StatusBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.statuses().iter().map(|s| s.name()).collect();
        f.debug_tuple("StatusBoard").field(&names).finish()
    }
}
