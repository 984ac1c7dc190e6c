//! SenML (RFC 8428): the data model, JSON/CBOR/XML codecs, resolution and
//! validation, RFC 8798 units and RFC 9039 device names.
//!
//! Every measurement that enters fedwatt is SenML. This crate turns bytes
//! into [`Record`]s and back:
//!
//! - [`RecordReader`] decodes raw records one by one, from memory or from a
//!   stream of any length, in any of the three encodings ([`Format`]);
//! - [`Resolver`] applies RFC 8428 §4.5–4.6: base fields carried forward,
//!   relative times against "now", names checked, chronological order;
//! - [`compact`] and [`writer`] write resolved packs back small.
//!
//! ```
//! use senml::Format;
//! let json = br#"[{"bn":"urn:dev:prm:30001610071843_consumption/power/active/raw",
//!                  "bt":1600041600,"bu":"W","v":245},{"t":1800,"v":420}]"#;
//! let pack = senml::resolve_slice(json, Format::Json, 0.0).unwrap();
//! assert_eq!(pack.records.len(), 2);
//! assert_eq!(pack.records[1].time, 1_600_043_400_000_000); // microseconds
//! assert_eq!(pack.records[1].number(), Some(420.0));
//! ```
//!
//! What it does not do: no I/O beyond the `Read`/`Write` it is handed, no
//! storage, no metadata beyond what SenML carries. Unknown labels are
//! dropped (RFC 8428 §4.4), except labels ending in `_`, which are refused.
//!
//! Invariants:
//! - a [`Record`] always has a valid name (RFC 8428 §4.5.1), an absolute
//!   time in microseconds, finite numbers, and a value unless it has a sum;
//! - a [`ResolvedPack`] is in stable chronological order;
//! - `resolve(decode(encode(compact(pack)))) == pack` in every format.

// Nothing that comes from outside is unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod cbor;
mod codec;
mod compact;
mod encode;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod input;
mod json;
mod model;
mod names;
mod resolve;
pub mod units;
mod xml;

pub use codec::{
    Format, RecordReader, Validation, decode_slice, encode, resolve_reader, resolve_slice,
    resolve_slice_indexed, resolve_slice_into, validate, writer,
};
pub use compact::{compact, compact_iter};
pub use encode::{Framing, RecordWriter};
pub use error::{Error, Reason, Result};
pub use model::{
    DEFAULT_VERSION, FieldValue, Fields, Label, RELATIVE_TIME_LIMIT, RawRecord, Record,
    ResolvedPack, Text, Value,
};
pub use names::{
    DeviceUrn, DeviceUrnError, Sen1NameError, check_name, is_valid_name, sen1_to_senml,
    senml_to_sen1,
};
pub use resolve::{Resolver, is_supported_version};
pub use xml::NAMESPACE as XML_NAMESPACE;

#[cfg(test)]
mod tests;
