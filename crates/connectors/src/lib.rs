//! fedwatt's connectors: sources that bring records in through the one
//! ingest door (`Store::ingest`), transforms and sinks, each a node
//! component ([`node::Component`]) built from a `[[connector]]` entry of
//! the node's TOML file ([`ConnectorSettings`], tagged by `kind`).
//!
//! Today this crate holds only the TIC source, [`tic::TicSource`]
//! (`kind = "tic"`): a Linky meter's customer port, read from a serial
//! device (7 data bits, even parity, 1 stop bit; 9600 baud standard, 1200
//! historic, found by trying both with `mode = "auto"`) or replayed from
//! a capture file, decoded by the `tic` crate and mapped to streams by
//! one table ([`tic_streams`]).
//!
//! ```
//! let entry: connectors::ConnectorSettings = toml::from_str(
//!     r#"
//!     id = "linky-home"
//!     kind = "tic"
//!     port = "/dev/ttyAMA0"
//!     "#,
//! )
//! .unwrap();
//! assert_eq!(entry.id(), "linky-home");
//! ```
//!
//! What it is *not*: it parses no TIC itself (the `tic` crate does) and
//! writes nothing but through `Store::ingest`; it serves nothing.
//!
//! Invariants:
//! - bad input never stops the node: a port that cannot be opened or
//!   fails is opened again every [`tic::RETRY`], with the reason logged
//!   and in `/healthz`; a bad group is dropped and counted, the frame's
//!   other groups stored;
//! - a capture that ends ends its component without error;
//! - every connector's id is unique in the node, and names it in
//!   `/healthz` (`connectors.<id>`) and `/metrics` (`{id="…"}`).

// Nothing that comes from outside is unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod settings;
mod status;
pub mod tic;
pub mod tic_streams;

use std::collections::HashSet;
use std::sync::Arc;

pub use settings::{ConnectorSettings, TicMode, TicSettings};
pub use status::ConnectorsStatus;

/// Adds a component to `node` for each `[[connector]]` entry, in order,
/// after checking them all: ids unique, each entry's keys (every error
/// names `[[connector]] id "…"` and the key).
pub fn add_to(node: &mut node::Node, entries: &[ConnectorSettings]) -> Result<(), String> {
    let mut ids = HashSet::new();
    for entry in entries {
        if !ids.insert(entry.id()) {
            return Err(format!(
                "{}: the id is given to two connectors; each needs its own",
                settings::section(entry.id())
            ));
        }
    }
    let mut status = ConnectorsStatus::default();
    let mut healths = Vec::new();
    for entry in entries {
        match entry {
            ConnectorSettings::Tic(s) => {
                healths.push(status.add(&s.id, "tic", tic::TicSource::describe(s)));
            }
        }
    }
    let status = Arc::new(status);
    let mut sources = Vec::new();
    for (entry, health) in entries.iter().zip(healths) {
        match entry {
            ConnectorSettings::Tic(s) => {
                sources.push(tic::TicSource::new(s, health, status.clone())?);
            }
        }
    }
    for source in sources {
        node.add(source);
    }
    Ok(())
}
