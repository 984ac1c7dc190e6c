//! What the three encoders share: the writer trait, number text, base64url.

use std::io::Write;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::{Error, Reason, Result};
use crate::model::{FieldValue, Label, RawRecord, Record};

/// Something that writes a pack record by record.
pub trait RecordWriter {
    /// Writes one record given as its fields, in [`Label::ALL`] order.
    fn write_fields(&mut self, fields: &[(Label, FieldValue<'_>)]) -> Result<()>;

    /// Writes one raw record.
    fn write(&mut self, record: &RawRecord<'_>) -> Result<()> {
        self.write_fields(record.fields().as_slice())
    }

    /// Writes one resolved record of a pack of `version`.
    fn write_resolved(&mut self, record: &Record, version: u64) -> Result<()> {
        self.write_fields(record.fields(version).as_slice())
    }

    /// Closes the pack and flushes. A pack needs at least one record.
    fn finish(&mut self) -> Result<()>;
}

/// Bytes written out at a time: records gather in a buffer this large.
const FLUSH_AT: usize = 60 * 1024;

/// A pack on its way to `out`: records gather in `buf`, which goes out in
/// large pieces. The three writers share it.
pub(crate) struct PackBuffer<W> {
    pub(crate) out: W,
    pub(crate) buf: Vec<u8>,
}

impl<W: Write> PackBuffer<W> {
    /// A buffer that starts with the pack's `opening` bytes.
    pub(crate) fn new(out: W, opening: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(opening);
        PackBuffer { out, buf }
    }

    /// After a record: writes the buffer out once it is large.
    pub(crate) fn record_done(&mut self) -> Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Closes a pack of `count` records: `prefix` goes out before what the
    /// buffer holds, `closing` after it; then everything is flushed.
    pub(crate) fn close(&mut self, count: usize, prefix: &[u8], closing: &[u8]) -> Result<()> {
        non_empty(count)?;
        self.out.write_all(prefix)?;
        self.buf.extend_from_slice(closing);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()?;
        Ok(())
    }
}

/// A pack needs at least one record (RFC 8428 §11).
pub(crate) fn non_empty(count: usize) -> Result<()> {
    if count == 0 {
        Err(Error::input(Reason::EmptyPack))
    } else {
        Ok(())
    }
}

/// How a pack is framed. Only CBOR tells the two apart (RFC 8428 §6): a
/// SenML pack is a definite-length array, a SensML stream an indefinite one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A pack of this many records, or of a count not known in advance (the
    /// CBOR writer then holds the encoded pack until `finish`).
    Pack(Option<usize>),
    /// A stream, written as it goes.
    Stream,
}

/// Appends `v` as the shortest decimal text that reads back to the same
/// double: integers without a fraction (`1800`, not `1800.0`), otherwise
/// the shortest round-trip form with a lower-case `e` (RFC 8428 §5).
pub(crate) fn write_number(buf: &mut Vec<u8>, v: f64, format: &'static str) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::input(Reason::Unencodable {
            format,
            why: format!("{v} is not a finite number"),
        }));
    }
    let whole = v as i64;
    if whole as f64 == v && whole.unsigned_abs() < 1_000_000_000_000_000 {
        if v == 0.0 && v.is_sign_negative() {
            buf.extend_from_slice(b"-0");
        } else {
            buf.extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
        }
    } else {
        buf.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    }
    Ok(())
}

/// base64url (RFC 4648 §5). Encodes without padding as RFC 8428 says;
/// decodes with or without padding, so that a padded value from a lenient
/// producer is not lost.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn encode_base64url(buf: &mut Vec<u8>, data: &[u8]) {
    let start = buf.len();
    buf.resize(
        start + base64::encoded_len(data.len(), false).unwrap_or(0),
        0,
    );
    let written = BASE64URL.encode_slice(data, &mut buf[start..]).unwrap_or(0);
    buf.truncate(start + written);
}

pub(crate) fn decode_base64url(text: &str) -> Result<Vec<u8>, String> {
    BASE64URL.decode(text).map_err(|e| {
        let hint = if text.contains(['+', '/']) {
            " ('+' and '/' belong to standard base64, not base64url)"
        } else {
            ""
        };
        format!("{e}{hint}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: f64) -> String {
        let mut buf = Vec::new();
        write_number(&mut buf, v, "JSON").unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn numbers_are_short_and_exact() {
        assert_eq!(text(1800.0), "1800");
        assert_eq!(text(-5.0), "-5");
        assert_eq!(text(120.1), "120.1");
        assert_eq!(text(1276020076.001), "1276020076.001");
        assert_eq!(text(1e20), "1e20");
        assert_eq!(text(-0.0), "-0");
        for v in [0.1, 1.0 / 3.0, 5e-324, f64::MAX, 1e15, 123456789012345.6] {
            assert_eq!(text(v).parse::<f64>().unwrap(), v);
        }
        assert!(write_number(&mut Vec::new(), f64::NAN, "JSON").is_err());
    }

    #[test]
    fn base64url_round_trips_and_names_the_wrong_alphabet() {
        let mut buf = Vec::new();
        encode_base64url(&mut buf, b"hi \n\xfb\xff");
        assert_eq!(buf, b"aGkgCvv_");
        assert_eq!(decode_base64url("aGkgCvv_").unwrap(), b"hi \n\xfb\xff");
        assert_eq!(decode_base64url("aGkgCg==").unwrap(), b"hi \n");
        assert!(
            decode_base64url("aGkgCvv/")
                .unwrap_err()
                .contains("standard base64")
        );
    }
}
