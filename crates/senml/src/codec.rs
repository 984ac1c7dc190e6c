//! The three encodings behind one interface: formats, a streaming record
//! reader, record writers, and whole-pack helpers.

use std::fmt;
use std::io::{BufReader, Read, Write};
use std::str::FromStr;

use crate::cbor::{CborDecoder, CborWriter};
use crate::encode::{Framing, RecordWriter};
use crate::error::{Error, Result};
use crate::input::{ReaderInput, SliceInput};
use crate::json::{JsonDecoder, JsonWriter};
use crate::model::{RawRecord, Record, ResolvedPack};
use crate::resolve::Resolver;
use crate::xml::{XmlDecoder, XmlWriter};

/// A SenML encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/senml+json` (RFC 8428 §5).
    Json,
    /// `application/senml+cbor` (RFC 8428 §6).
    Cbor,
    /// `application/senml+xml` (RFC 8428 §7).
    Xml,
}

impl Format {
    /// All formats.
    pub const ALL: [Format; 3] = [Format::Json, Format::Cbor, Format::Xml];

    /// The SenML media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/senml+json",
            Format::Cbor => "application/senml+cbor",
            Format::Xml => "application/senml+xml",
        }
    }

    /// The format of a SenML or SensML media type (parameters ignored).
    pub fn from_media_type(media_type: &str) -> Option<Format> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/senml+json" | "application/sensml+json" | "application/json" => {
                Some(Format::Json)
            }
            "application/senml+cbor" | "application/sensml+cbor" | "application/cbor" => {
                Some(Format::Cbor)
            }
            "application/senml+xml" | "application/sensml+xml" | "application/xml" | "text/xml" => {
                Some(Format::Xml)
            }
            _ => None,
        }
    }

    /// The format of a file name's extension (`.json`, `.senml`, `.cbor`, `.xml`…).
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" | "senml" | "sensml" | "senmlj" => Some(Format::Json),
            "cbor" | "senmlc" | "sensmlc" => Some(Format::Cbor),
            "xml" | "senmlx" | "sensmlx" => Some(Format::Xml),
            _ => None,
        }
    }

    /// Guesses the format from the first bytes: `[` is JSON, `<` is XML, a
    /// CBOR array or self-describe tag is CBOR.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
        let first = *head.iter().find(|c| !c.is_ascii_whitespace())?;
        match first {
            b'[' => Some(Format::Json),
            b'<' => Some(Format::Xml),
            0x80..=0x9f | 0xd9 => Some(Format::Cbor),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "json",
            Format::Cbor => "cbor",
            Format::Xml => "xml",
        })
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "cbor" => Ok(Format::Cbor),
            "xml" => Ok(Format::Xml),
            _ => Err(format!("unknown SenML format {s:?} (json, cbor or xml)")),
        }
    }
}

enum Decoder<'a> {
    JsonSlice(JsonDecoder<SliceInput<'a>>),
    JsonStream(JsonDecoder<ReaderInput<Box<dyn Read + 'a>>>),
    CborSlice(CborDecoder<SliceInput<'a>>),
    CborStream(CborDecoder<ReaderInput<Box<dyn Read + 'a>>>),
    XmlSlice(XmlDecoder<&'a [u8]>),
    XmlStream(XmlDecoder<BufReader<Box<dyn Read + 'a>>>),
}

/// Reads the records of a pack one at a time, in any of the three
/// encodings, from memory or from a stream of any length.
///
/// A record borrows from the reader's buffer until the next call. After an
/// error for which [`Error::is_fatal`] is false, reading can go on with the
/// next record; after a fatal one, the reader returns `None`.
///
/// ```
/// use senml::{Format, RecordReader};
/// let mut reader = RecordReader::from_slice(br#"[{"n":"a","v":1},{"n":"b","vb":true}]"#, Format::Json);
/// let mut names = Vec::new();
/// while let Some(record) = reader.next_record().unwrap() {
///     names.push(record.name.unwrap().into_owned());
/// }
/// assert_eq!(names, ["a", "b"]);
/// ```
pub struct RecordReader<'a> {
    decoder: Decoder<'a>,
}

impl<'a> RecordReader<'a> {
    /// A reader over bytes in memory; records borrow strings from them.
    pub fn from_slice(bytes: &'a [u8], format: Format) -> Self {
        let decoder = match format {
            Format::Json => Decoder::JsonSlice(JsonDecoder::new(SliceInput::new(bytes))),
            Format::Cbor => Decoder::CborSlice(CborDecoder::new(SliceInput::new(bytes))),
            Format::Xml => Decoder::XmlSlice(XmlDecoder::new(bytes)),
        };
        RecordReader { decoder }
    }

    /// A reader over a stream, holding one buffer chunk and one record at a time.
    pub fn from_reader(reader: impl Read + 'a, format: Format) -> Self {
        let reader: Box<dyn Read + 'a> = Box::new(reader);
        let decoder = match format {
            Format::Json => Decoder::JsonStream(JsonDecoder::new(ReaderInput::new(reader))),
            Format::Cbor => Decoder::CborStream(CborDecoder::new(ReaderInput::new(reader))),
            Format::Xml => {
                Decoder::XmlStream(XmlDecoder::new(BufReader::with_capacity(64 * 1024, reader)))
            }
        };
        RecordReader { decoder }
    }

    /// The next raw record, or `None` after the last one.
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<RawRecord<'_>>> {
        match &mut self.decoder {
            Decoder::JsonSlice(d) => d.next_with(RawRecord::clone),
            Decoder::JsonStream(d) => d.next_with(RawRecord::clone),
            Decoder::CborSlice(d) => d.next_with(RawRecord::clone),
            Decoder::CborStream(d) => d.next_with(RawRecord::clone),
            // The XML decoder builds owned records: nothing to copy.
            Decoder::XmlSlice(d) => d.next_record(),
            Decoder::XmlStream(d) => d.next_record(),
        }
    }

    /// Runs `f` on the next raw record without moving it out of the
    /// decoder: the fast path for work on whole packs.
    #[inline]
    pub fn next_with<'s, T>(
        &'s mut self,
        f: impl FnOnce(&RawRecord<'s>) -> T,
    ) -> Result<Option<T>> {
        match &mut self.decoder {
            Decoder::JsonSlice(d) => d.next_with(f),
            Decoder::JsonStream(d) => d.next_with(f),
            Decoder::CborSlice(d) => d.next_with(f),
            Decoder::CborStream(d) => d.next_with(f),
            Decoder::XmlSlice(d) => Ok(d.next_record()?.map(|r| f(&r))),
            Decoder::XmlStream(d) => Ok(d.next_record()?.map(|r| f(&r))),
        }
    }
}

/// A writer of `format` on `out`; `framing` matters for CBOR only.
pub fn writer<'w>(
    format: Format,
    out: impl Write + 'w,
    framing: Framing,
) -> Box<dyn RecordWriter + 'w> {
    match format {
        Format::Json => Box::new(JsonWriter::new(out)),
        Format::Cbor => Box::new(CborWriter::new(out, framing)),
        Format::Xml => Box::new(XmlWriter::new(out)),
    }
}

/// Encodes records as a pack.
pub fn encode(records: &[RawRecord<'_>], format: Format) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(records.len() * 24);
    let mut w = writer(format, &mut out, Framing::Pack(Some(records.len())));
    for r in records {
        w.write(r)?;
    }
    w.finish()?;
    drop(w);
    Ok(out)
}

/// Decodes a whole pack into owned raw records; stops at the first error.
pub fn decode_slice(bytes: &[u8], format: Format) -> Result<Vec<RawRecord<'_>>> {
    let mut reader = RecordReader::from_slice(bytes, format);
    let mut records = Vec::new();
    while let Some(r) = reader.next_record()? {
        records.push(r.into_owned());
    }
    Ok(records)
}

/// Decodes and resolves a whole pack held in memory, with relative times
/// taken from `now` (seconds). The pack is valid as a whole or refused with
/// the first error.
pub fn resolve_slice(bytes: &[u8], format: Format, now: f64) -> Result<ResolvedPack> {
    let mut pack = ResolvedPack::default();
    resolve_slice_into(bytes, format, now, &mut pack)?;
    Ok(pack)
}

/// [`resolve_slice`] into an existing pack, whose record buffer is reused
/// (cleared, capacity kept). On error the pack is left empty.
///
/// ```
/// use senml::{Format, ResolvedPack};
/// let mut pack = ResolvedPack::default();
/// for body in [&br#"[{"n":"a","v":1}]"#[..], br#"[{"n":"b","v":2},{"n":"b","v":3}]"#] {
///     senml::resolve_slice_into(body, Format::Json, 1.7e9, &mut pack).unwrap();
///     // … store pack.records …
/// }
/// assert_eq!(pack.records.len(), 2);
/// ```
pub fn resolve_slice_into(
    bytes: &[u8],
    format: Format,
    now: f64,
    pack: &mut ResolvedPack,
) -> Result<()> {
    let mut resolver = Resolver::with_buffer(now, std::mem::take(&mut pack.records));
    // A record takes at least 8 bytes in JSON and 2 in CBOR; reserving an
    // upper bound spares the copies of a growing vector (untouched pages
    // cost nothing).
    let min_record_bytes = if format == Format::Cbor { 4 } else { 16 };
    resolver.reserve((bytes.len() / min_record_bytes).min(1 << 24));
    *pack = resolve_from(RecordReader::from_slice(bytes, format), resolver)?;
    Ok(())
}

/// Decodes and resolves a whole pack read from a stream.
pub fn resolve_reader(reader: impl Read, format: Format, now: f64) -> Result<ResolvedPack> {
    resolve_from(
        RecordReader::from_reader(reader, format),
        Resolver::new(now),
    )
}

/// Decodes and resolves a whole pack held in memory, keeping the input
/// order and each record's index in the pack (base-only records count): for
/// callers that check the records further and must name the offending one,
/// as a store refusing a record whose stream holds another kind of value.
///
/// ```
/// use senml::Format;
/// let json = br#"[{"bn":"m:","bt":10},{"n":"b","v":2},{"n":"a","t":-5,"v":1}]"#;
/// let records = senml::resolve_slice_indexed(json, Format::Json, 0.0).unwrap();
/// assert_eq!(records.iter().map(|(i, r)| (*i, &*r.name)).collect::<Vec<_>>(), [(1, "m:b"), (2, "m:a")]);
/// ```
pub fn resolve_slice_indexed(
    bytes: &[u8],
    format: Format,
    now: f64,
) -> Result<Vec<(usize, Record)>> {
    let mut reader = RecordReader::from_slice(bytes, format);
    let mut resolver = Resolver::validating(now);
    let mut records = Vec::new();
    while let Some(pushed) = reader.next_with(|raw| {
        let index = resolver.records_seen();
        resolver
            .push(raw)
            .map(|resolved| resolved.map(|r| (index, r.clone())))
    })? {
        records.extend(pushed?);
    }
    resolver.check_end()?;
    Ok(records)
}

fn resolve_from(mut reader: RecordReader<'_>, mut resolver: Resolver) -> Result<ResolvedPack> {
    while let Some(pushed) = reader.next_with(|raw| resolver.push(raw).map(|_| ()))? {
        pushed?;
    }
    resolver.finish()
}

/// What [`validate`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validation {
    /// Raw records read.
    pub records: usize,
    /// Errors reported.
    pub errors: usize,
}

/// Checks every record of a pack in constant memory, reporting every error
/// found (decoding goes on after an error in one record; it stops after a
/// syntax error, where the framing of the input is lost).
pub fn validate(
    mut reader: RecordReader<'_>,
    now: f64,
    mut on_error: impl FnMut(Error),
) -> Validation {
    let mut resolver = Resolver::validating(now);
    let mut summary = Validation::default();
    loop {
        match reader.next_with(|raw| resolver.push(raw).err()) {
            Ok(Some(pushed)) => {
                summary.records += 1;
                if let Some(e) = pushed {
                    summary.errors += 1;
                    on_error(e);
                }
            }
            Ok(None) => {
                // An error already said why there may be no measurement.
                if let (0, Err(e)) = (summary.errors, resolver.check_end()) {
                    summary.errors += 1;
                    on_error(e);
                }
                break;
            }
            Err(e) => {
                let fatal = e.is_fatal();
                if !fatal {
                    summary.records += 1;
                    resolver.skip();
                }
                summary.errors += 1;
                on_error(e);
                if fatal {
                    break;
                }
            }
        }
    }
    summary
}
