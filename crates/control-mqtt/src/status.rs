//! What the control loop reports on the node's status board: the devices
//! in communication error, and counters of orders and of the journal,
//! read off the journal as it is stored.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use control::journal::JournalEntry;
use control::model::Measured;
use store::Store;

/// The control loop's state for `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct ControlStatus {
    /// The devices (`equipment/part`) whose last measured state is a
    /// communication error.
    in_error: Mutex<BTreeSet<String>>,
    orders: AtomicU64,
    confirmed: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    journal_failures: AtomicU64,
}

impl ControlStatus {
    /// Takes in what one journal entry says.
    pub(crate) fn observe(&self, entry: &JournalEntry) {
        match entry {
            JournalEntry::Order { .. } => self.count(&self.orders),
            JournalEntry::Confirmed { .. } => self.count(&self.confirmed),
            JournalEntry::Failed { .. } => self.count(&self.failed),
            JournalEntry::Refused { .. } => self.count(&self.refused),
            JournalEntry::Measured {
                equipment,
                part,
                state,
                ..
            } => {
                let device = format!("{equipment}/{}", part.name());
                let mut in_error = self.in_error.lock().unwrap_or_else(PoisonError::into_inner);
                if *state == Measured::CommunicationError {
                    in_error.insert(device);
                } else {
                    in_error.remove(&device);
                }
            }
            _ => {}
        }
    }

    /// A batch of the journal could not be stored.
    pub(crate) fn journal_failed(&self) {
        self.count(&self.journal_failures);
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl node::Status for ControlStatus {
    fn name(&self) -> &'static str {
        "control"
    }

    fn health(&self, _: &Store) -> Result<serde_json::Value, store::Error> {
        let in_error = self.in_error.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(serde_json::json!({
            "devices_in_communication_error": *in_error,
            "journal_failures": self.journal_failures.load(Ordering::Relaxed),
        }))
    }

    fn metrics(&self, out: &mut String) {
        let in_error = self
            .in_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        node::describe_metric(
            out,
            "fedwatt_control_devices_in_error",
            "gauge",
            "Devices whose last state is a communication error.",
        );
        let _ = writeln!(out, "fedwatt_control_devices_in_error {in_error}");
        for (name, help, counter) in [
            (
                "fedwatt_control_orders_total",
                "Orders sent to devices.",
                &self.orders,
            ),
            (
                "fedwatt_control_orders_confirmed_total",
                "Orders their device confirmed.",
                &self.confirmed,
            ),
            (
                "fedwatt_control_orders_failed_total",
                "Orders their device did not confirm in time, or refused.",
                &self.failed,
            ),
            (
                "fedwatt_control_refused_total",
                "Plans, stimulations, plate touches and device messages refused.",
                &self.refused,
            ),
            (
                "fedwatt_control_journal_failures_total",
                "Batches of the control journal the store refused.",
                &self.journal_failures,
            ),
        ] {
            node::describe_metric(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use control::driver::Order;
    use control::machine::Part;
    use node::Status;

    use super::*;

    fn measured(state: Measured) -> JournalEntry {
        JournalEntry::Measured {
            at: 0,
            equipment: "water-heater".into(),
            part: Part::Switch,
            state,
        }
    }

    #[test]
    fn a_device_is_in_error_from_its_communication_error_until_it_answers_again() {
        let status = ControlStatus::default();
        status.observe(&measured(Measured::CommunicationError));
        status.observe(&JournalEntry::Order {
            at: 0,
            equipment: "water-heater".into(),
            part: Part::Switch,
            order: Order::On,
        });
        let mut text = String::new();
        status.metrics(&mut text);
        assert!(
            text.contains("fedwatt_control_devices_in_error 1\n"),
            "{text}"
        );
        assert!(text.contains("fedwatt_control_orders_total 1\n"), "{text}");
        status.observe(&measured(Measured::On));
        let mut text = String::new();
        status.metrics(&mut text);
        assert!(
            text.contains("fedwatt_control_devices_in_error 0\n"),
            "{text}"
        );
    }
}
