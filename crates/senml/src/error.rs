//! Errors that name the record, the field and the reason.

use std::fmt;

/// A SenML decoding, validation or resolution error.
///
/// Every error says where it happened (the zero-based index of the record in
/// the pack, and the field label when one is to blame) and why. The label is
/// the JSON/XML label (`bt`, `v`, …) whatever the encoding, so one message
/// reads the same for all three formats.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// Zero-based index of the record in the pack, when the error is in a record.
    pub record: Option<usize>,
    /// The label of the offending field, when one field is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: Reason,
}

/// What is wrong with the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The bytes are not well-formed JSON, CBOR or XML; decoding cannot go on.
    #[error("malformed {format} at byte {offset}: {message}")]
    Syntax {
        /// `JSON`, `CBOR` or `XML`.
        format: &'static str,
        /// Byte offset from the start of the input.
        offset: u64,
        /// What the parser expected or found.
        message: String,
    },
    /// One record is longer than a stream reader holds.
    #[error(
        "a record is longer than {limit} bytes (a stream holds one record at a time, up to this size)"
    )]
    RecordTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The input ended in the middle of the pack.
    #[error("the input ends in the middle of the pack (after {offset} bytes)")]
    Truncated {
        /// Bytes read before the end.
        offset: u64,
    },
    /// The top level is not a SenML pack.
    #[error("not a SenML pack: {0}")]
    NotAPack(String),
    /// A pack with no record at all (RFC 8428 §11: a pack holds at least one record).
    #[error("the pack holds no record; a SenML pack holds at least one")]
    EmptyPack,
    /// A field has the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type the field must have.
        expected: &'static str,
        /// What was there.
        found: String,
    },
    /// A number is NaN or infinite, or its computation overflowed.
    #[error("{0} is not a finite number")]
    NotFinite(String),
    /// A data value is not base64url.
    #[error("not base64url (RFC 4648 §5): {0}")]
    InvalidBase64(String),
    /// A resolved name breaks RFC 8428 §4.5.1.
    #[error("invalid name {name:?}: {why}")]
    InvalidName {
        /// The resolved name (base name + name).
        name: String,
        /// Which character, where, or that it is empty.
        why: String,
    },
    /// Every record only sets base fields: there is no measurement.
    #[error("the pack holds no measurement: every record only sets base fields")]
    NoMeasurement,
    /// The record carries no value and no sum.
    #[error("the record has no value: it needs one of v, vs, vb, vd, or a sum s")]
    NoValue,
    /// The record carries more than one of `v`, `vs`, `vb`, `vd`.
    #[error("the record has several values ({0}); exactly one is allowed")]
    SeveralValues(String),
    /// A field appears twice in one record.
    #[error("the field appears twice in the record")]
    DuplicateField,
    /// A label ending in `_` that this implementation does not understand (RFC 8428 §4.4).
    #[error("unknown must-understand label {0:?} (labels ending in '_' must be understood)")]
    MustUnderstand(String),
    /// The record's version differs from the pack's.
    #[error(
        "version {found} differs from the pack's version {pack}; all records of a pack share one version"
    )]
    VersionMismatch {
        /// Version of the first record.
        pack: u64,
        /// Version of this record.
        found: u64,
    },
    /// A version this implementation does not understand (RFC 8428 §4.4, RFC 9100).
    #[error(
        "unsupported SenML version {0} (this implementation reads versions 1 to 10, and 26 = 10 with secondary units)"
    )]
    UnsupportedVersion(u64),
    /// A time that cannot be represented (beyond ±292,000 years, or not finite).
    #[error("time {0:?} s is out of range")]
    TimeOutOfRange(f64),
    /// A value that an encoding cannot carry (e.g. a control character in XML).
    #[error("cannot be encoded in {format}: {why}")]
    Unencodable {
        /// The target encoding.
        format: &'static str,
        /// Why.
        why: String,
    },
    /// Reading the input failed.
    #[error("read error: {0}")]
    Io(String),
}

impl Reason {
    /// A short, stable name of the reason (`not_finite`), for metrics and
    /// logs that group errors.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Syntax { .. } => "syntax",
            Reason::RecordTooLarge { .. } => "record_too_large",
            Reason::Truncated { .. } => "truncated",
            Reason::NotAPack(_) => "not_a_pack",
            Reason::EmptyPack => "empty_pack",
            Reason::WrongType { .. } => "wrong_type",
            Reason::NotFinite(_) => "not_finite",
            Reason::InvalidBase64(_) => "invalid_base64",
            Reason::InvalidName { .. } => "invalid_name",
            Reason::NoMeasurement => "no_measurement",
            Reason::NoValue => "no_value",
            Reason::SeveralValues(_) => "several_values",
            Reason::DuplicateField => "duplicate_field",
            Reason::MustUnderstand(_) => "must_understand",
            Reason::VersionMismatch { .. } => "version_mismatch",
            Reason::UnsupportedVersion(_) => "unsupported_version",
            Reason::TimeOutOfRange(_) => "time_out_of_range",
            Reason::Unencodable { .. } => "unencodable",
            Reason::Io(_) => "io",
        }
    }
}

impl Error {
    /// An error about the whole input, not one record.
    pub fn input(reason: Reason) -> Self {
        Error {
            record: None,
            field: None,
            reason,
        }
    }

    /// An error in record `index`.
    pub fn in_record(index: usize, reason: Reason) -> Self {
        Error {
            record: Some(index),
            field: None,
            reason,
        }
    }

    /// An error in field `label` of record `index`.
    pub fn in_field(index: usize, label: &str, reason: Reason) -> Self {
        Error {
            record: Some(index),
            field: Some(label.to_owned()),
            reason,
        }
    }

    /// Whether decoding can go on with the next record after this error.
    ///
    /// Syntax errors, truncation and read errors lose the framing of the
    /// input: nothing after them can be trusted.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.reason,
            Reason::Syntax { .. }
                | Reason::Truncated { .. }
                | Reason::RecordTooLarge { .. }
                | Reason::NotAPack(_)
                | Reason::EmptyPack
                | Reason::NoMeasurement
                | Reason::Io(_)
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.record, &self.field) {
            (Some(i), Some(field)) => write!(f, "record {i}, field {field:?}: {}", self.reason),
            (Some(i), None) => write!(f, "record {i}: {}", self.reason),
            (None, _) => write!(f, "{}", self.reason),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::input(Reason::Io(e.to_string()))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
