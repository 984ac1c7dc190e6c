//! Why a group was dropped, and why one cannot be encoded.

use std::fmt;

use crate::Mode;

/// A group that was dropped: its label when one could be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", Shown(.label))]
pub struct GroupError {
    /// The group's label as far as it could be read (the bytes before the
    /// first separator, lossily as text), `None` when there was none.
    pub label: Option<String>,
    /// What was wrong.
    pub reason: Reason,
}

/// What was wrong with a dropped group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The checksum character is not the one the group's bytes give.
    #[error("checksum is {found:?}, the group's bytes give {expected:?}")]
    Checksum {
        /// The checksum computed from the group.
        expected: char,
        /// The checksum character the group carries.
        found: char,
    },
    /// The group is in the other mode than the one the stream is in.
    #[error("a {found} group in a {locked} stream")]
    ModeMismatch {
        /// The mode the decoder locked on with the first valid group.
        locked: Mode,
        /// The mode of this group (told by its separator).
        found: Mode,
    },
    /// Too few bytes for a label, a separator and a checksum.
    #[error("{len} bytes is too short for a group")]
    TooShort {
        /// The group's length between LF and CR.
        len: usize,
    },
    /// Longer than any TIC group can be.
    #[error("{len} bytes is longer than the {max} a group may have")]
    TooLong {
        /// The group's length between LF and CR.
        len: usize,
        /// The longest group accepted ([`crate::MAX_GROUP_LEN`]).
        max: usize,
    },
    /// A byte that is neither printable ASCII nor a tab.
    #[error("byte 0x{byte:02X} at {at} is not printable ASCII")]
    BadByte {
        /// The byte.
        byte: u8,
        /// Its position in the group (after LF).
        at: usize,
    },
    /// The byte before the checksum is not the mode's separator.
    #[error("no {0} separator before the checksum")]
    NoChecksumSeparator(Mode),
    /// No separator between label and data.
    #[error("no {0} separator after the label")]
    NoSeparator(Mode),
    /// A standard group with more fields than label, horodate and data.
    #[error("{found} fields, a standard group has 2 or 3")]
    FieldCount {
        /// The number of tab-separated fields before the checksum.
        found: usize,
    },
    /// The label is empty.
    #[error("empty label")]
    EmptyLabel,
    /// The horodate is not a season letter and `YYMMDDhhmmss`.
    #[error("horodate {found:?}: {why}")]
    Horodate {
        /// The horodate as written.
        found: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The data is not what the label carries.
    #[error("data {found:?} is not {expected}")]
    Value {
        /// What the label carries, e.g. "5 digits at most".
        expected: &'static str,
        /// The data as written.
        found: String,
    },
    /// An LF came, or the frame ended, before the group's CR.
    #[error("the group ends without CR")]
    Unterminated,
    /// The frame already holds [`crate::MAX_GROUPS`] groups.
    #[error("more than {max} groups in a frame")]
    TooManyGroups {
        /// The most groups a frame may hold.
        max: usize,
    },
}

/// Why a group cannot be written as TIC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Historic mode has no horodates.
    #[error("{label}: historic mode has no horodate")]
    HorodateInHistoric {
        /// The group's label.
        label: String,
    },
    /// A label that is empty or holds a byte a label cannot have.
    #[error("label {label:?} is empty or holds a separator or non-printable byte")]
    Label {
        /// The label.
        label: String,
    },
    /// Data with a byte the mode cannot carry.
    #[error("{label}: data {data:?} holds a separator or non-printable byte")]
    Data {
        /// The group's label.
        label: String,
        /// The data.
        data: String,
    },
    /// Data the decoder would read as another value (say, text under a
    /// label that carries a number).
    #[error("{label}: {value} is not what this label carries")]
    Kind {
        /// The group's label.
        label: String,
        /// The value, as debug text.
        value: String,
    },
}

struct Shown<'a>(&'a Option<String>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(label) => write!(f, "group {label}"),
            None => f.write_str("group"),
        }
    }
}
