//! The [`Store`](crate::Store) facade, one file per concern, each an
//! `impl Store` block over the concern's module: what a caller of the
//! store sees. The connections, transactions and group commit are in
//! `lib.rs`; the facades of the control tables and of peers' data sit
//! with their modules (`coordination.rs`, `peers.rs`).

mod accounts;
mod audit;
mod federation;
mod ingest;
mod projects;
mod streams;
mod tokens;

pub use accounts::{MIN_PASSWORD, SESSION_IDLE, SESSION_LIFETIME, check_account_name};
pub use streams::StreamRecords;
