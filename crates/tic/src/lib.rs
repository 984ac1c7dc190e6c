//! Linky TIC (télé-information client): a streaming decoder of the frames
//! a French electricity meter sends on its customer port, in both modes.
//!
//! - [`Decoder`] takes bytes in chunks of any size (a serial port gives a
//!   few at a time) and gives out [`Frame`]s: STX … ETX, or cut by EOT
//!   ([`End::Interrupted`]), each with its valid [`Group`]s and a count of
//!   those it dropped, with why ([`GroupError`]);
//! - the mode is told by the separator, SP for historic (1200 baud, ADCO …
//!   MOTDETAT), HT for standard (9600 baud, ADSC …, horodates), and then
//!   kept: a group of the other mode is dropped and counted;
//! - each group's checksum is verified, the historic way (label, SP, data)
//!   or the standard way (also the horodate and the HT before the
//!   checksum): a bad group is dropped, the rest of the frame kept;
//! - labels are typed ([`Value`], [`Unit`]): indexes in Wh, powers in VA,
//!   currents in A, voltages in V, tariff periods and identifiers as text,
//!   STGE as a [`Status`]; a label this crate does not know is kept as
//!   [`Value::Raw`] text, its checksum verified all the same;
//! - [`Horodate`]s carry their season letter, whose offset (+02:00 summer,
//!   +01:00 winter) turns them into UTC instants without a time-zone
//!   database.
//!
//! ```
//! let mut bytes = vec![tic::STX];
//! tic::write_group(&mut bytes, tic::Mode::Standard, b"EAST", None, b"012345678");
//! tic::write_group(&mut bytes, tic::Mode::Standard, b"SINSTS", None, b"00664");
//! bytes.push(tic::ETX);
//!
//! let mut decoder = tic::Decoder::new();
//! let mut frames = Vec::new();
//! for chunk in bytes.chunks(3) {
//!     decoder.feed(chunk, |frame| frames.push(frame));
//! }
//! let frame = &frames[0];
//! assert_eq!(frame.mode, Some(tic::Mode::Standard));
//! assert!(frame.is_complete());
//! let power = frame.get("SINSTS").unwrap();
//! assert_eq!(power.value, tic::Value::Integer(664));
//! assert_eq!(power.unit.map(tic::Unit::symbol), Some("VA"));
//! ```
//!
//! What it does not do: no I/O beyond the `Read` it is handed
//! ([`FrameReader`]), no serial port settings (7 data bits, even parity,
//! 1 stop bit: a port read as 8N1 shows the parity bit, and those bytes
//! are refused), no clock (a horodate is what the meter says), no
//! conversion to SenML, and it names no STGE bit (the reference this crate
//! was written from does not list them).
//!
//! Invariants:
//! - the frames do not depend on how the bytes were chunked;
//! - a group is either valid (its checksum and its label's type) or
//!   dropped and counted in its frame's `dropped`; a dropped group never
//!   changes the groups around it;
//! - no input panics, and memory is bounded: one group of at most
//!   [`MAX_GROUP_LEN`] bytes, one frame of at most [`MAX_GROUPS`] groups
//!   and [`MAX_ERRORS`] errors;
//! - every decoded group encodes back ([`encode_group`]) to bytes that
//!   decode to the same group.

// Nothing that comes from outside is unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod decoder;
mod encode;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod group;
mod horodate;
pub mod labels;

use std::fmt;

pub use decoder::{Decoder, End, Frame, FrameReader, MAX_ERRORS, MAX_GROUPS, Stats, decode};
pub use encode::{CR, EOT, ETX, LF, STX, checksum, encode_frame, encode_group, write_group};
pub use error::{EncodeError, GroupError, Reason};
pub use group::{Group, MAX_GROUP_LEN, Status, Value};
pub use horodate::{Horodate, Season};
pub use labels::Unit;

/// The TIC mode, told by the separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 1200 baud, SP separators, no horodates (ADCO … MOTDETAT).
    Historic,
    /// 9600 baud, HT separators, horodates (ADSC …).
    Standard,
}

impl Mode {
    /// The byte between a group's fields: SP or HT.
    pub fn separator(self) -> u8 {
        match self {
            Mode::Historic => b' ',
            Mode::Standard => b'\t',
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Historic => "historic",
            Mode::Standard => "standard",
        })
    }
}
