//! What can go wrong in the store, split by who must act: the caller
//! (refused input, bad query), or the operator (database, configuration).

use std::fmt;

/// A record of an ingested pack that the store refuses, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    /// Index of the record in the pack as sent (base-only records count).
    pub record: usize,
    /// The SenML label of the offending field.
    pub field: &'static str,
    /// A short, stable name of the reason, for metrics (`duplicate_time`).
    pub code: &'static str,
    /// What is wrong, for a person.
    pub reason: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {}, field {:?}: {}",
            self.record, self.field, self.reason
        )
    }
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pack refused whole because of one of its records; nothing was stored.
    #[error("{0}")]
    Refused(RecordError),
    /// A query or command the caller got wrong (unknown stream, bad range…).
    #[error("{0}")]
    Invalid(String),
    /// A form the caller got wrong, with the field to blame (a project's
    /// `total_shares`, an investor's `shares`).
    #[error("{detail}")]
    InvalidField {
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong, for a person.
        detail: String,
    },
    /// A stream, token or other object that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An object that exists already (a name taken).
    #[error("{0}")]
    Conflict(String),
    /// The node's configuration cannot be used: the database URL, the data
    /// directory, the time zone, an audit key.
    #[error("configuration: {0}")]
    Config(String),
    /// Something the database holds does not read back: a blob of points,
    /// a row, a JSON column. The database was damaged, or changed outside
    /// fedwatt.
    #[error("{what} is unreadable: {detail}")]
    Corrupt {
        /// What was read, and where (`stored data of stream #3, day 19723`).
        what: String,
        /// Why it does not decode.
        detail: String,
    },
    /// The database was written by a newer fedwatt, whose schema this one
    /// does not know.
    #[error(
        "the database has schema version {found}, newer than this fedwatt knows ({known}): upgrade fedwatt"
    )]
    SchemaTooNew {
        /// The database's schema version.
        found: usize,
        /// The newest version this program knows.
        known: usize,
    },
    /// A setting kept in the store (a stream's retention, a grant's history
    /// limit or aggregation) that cannot be applied; its owner must change it.
    #[error("{what}: {detail}")]
    Setting {
        /// The setting, and whose it is (`retention "P1000Y" of stream x`).
        what: String,
        /// Why it cannot be applied.
        detail: String,
    },
    /// The system gives no randomness, for a token's secret or a signing key.
    #[error("no randomness from the system: {0}")]
    NoRandomness(getrandom::Error),
    /// The node itself went wrong: one of its own values did not serialize,
    /// a row vanished in the transaction that made it. A bug, or a database
    /// changed under the node's feet.
    #[error("internal error: {0}")]
    Internal(String),
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("PostgreSQL: {}", with_causes(.0))]
    Postgres(#[from] postgres::Error),
    /// The data directory or the database file cannot be used.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether the caller, not the node, is to blame (a 4xx, not a 5xx).
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Error::Refused(_)
                | Error::Invalid(_)
                | Error::InvalidField { .. }
                | Error::NotFound(_)
                | Error::Conflict(_)
        )
    }
}

/// An error and the errors that caused it, as one line: "error connecting
/// to server: Connection refused (os error 111)".
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for [`Error::Corrupt`].
pub(crate) fn corrupt(what: impl Into<String>, detail: impl fmt::Display) -> Error {
    Error::Corrupt {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// Shorthand for [`Error::Setting`].
pub(crate) fn setting(what: impl Into<String>, detail: impl fmt::Display) -> Error {
    Error::Setting {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// Shorthand for a refused record.
pub(crate) fn refused(
    record: usize,
    field: &'static str,
    code: &'static str,
    reason: impl Into<String>,
) -> Error {
    Error::Refused(RecordError {
        record,
        field,
        code,
        reason: reason.into(),
    })
}
