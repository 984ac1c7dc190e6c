//! SenML XML (RFC 8428 §7): `<sensml xmlns="urn:ietf:params:xml:ns:senml">`
//! holding one `<senml …/>` element per record, fields as attributes.
//!
//! The decoder streams with quick-xml; record strings are owned (XML is not
//! the hot path, and attribute values may need unescaping anyway).

use std::borrow::Cow;
use std::io::{BufRead, Write};

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use crate::encode::{PackBuffer, RecordWriter, decode_base64url, encode_base64url, write_number};
use crate::error::{Error, Reason, Result};
use crate::input::MAX_RECORD_BYTES;
use crate::model::{FieldValue, Label, RawRecord, check_unknown_label};

/// The SenML XML namespace.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:senml";

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Before the root element.
    Prolog,
    /// Inside `<sensml>`.
    Records,
    /// Inside a `<senml>` written with a separate end tag.
    InRecord,
    Done,
}

/// Decodes the records of a SenML XML pack one by one.
pub(crate) struct XmlDecoder<R> {
    reader: NsReader<EventLimit<R>>,
    buf: Vec<u8>,
    state: State,
    index: usize,
}

impl<R: BufRead> XmlDecoder<R> {
    pub(crate) fn new(input: R) -> Self {
        let mut reader = NsReader::from_reader(EventLimit {
            inner: input,
            since_event: 0,
        });
        reader.config_mut().check_end_names = true;
        XmlDecoder {
            reader,
            buf: Vec::with_capacity(1024),
            state: State::Prolog,
            index: 0,
        }
    }

    fn syntax(&mut self, message: impl Into<String>) -> Error {
        let record = matches!(self.state, State::Records | State::InRecord).then_some(self.index);
        self.state = State::Done;
        Error {
            record,
            field: None,
            reason: Reason::Syntax {
                format: "XML",
                offset: self.reader.buffer_position(),
                message: message.into(),
            },
        }
    }

    /// The next record, `None` after the last one.
    pub(crate) fn next_record(&mut self) -> Result<Option<RawRecord<'static>>> {
        loop {
            if self.state == State::Done {
                return Ok(None);
            }
            self.buf.clear();
            self.reader.get_mut().since_event = 0;
            let (ns, event) = match self.reader.read_resolved_event_into(&mut self.buf) {
                Ok(pair) => pair,
                Err(quick_xml::Error::Io(e)) if e.get_ref().is_some_and(|e| e.is::<TooLarge>()) => {
                    self.state = State::Done;
                    return Err(Error::input(Reason::RecordTooLarge {
                        limit: MAX_RECORD_BYTES,
                    }));
                }
                Err(e) => {
                    let message = e.to_string();
                    return Err(self.syntax(message));
                }
            };
            let in_senml_ns = matches!(ns, ResolveResult::Bound(ns) if ns.as_ref() == NAMESPACE);
            match (self.state, event) {
                (_, Event::Decl(_) | Event::Comment(_) | Event::PI(_)) => {}
                (_, Event::DocType(_)) => {
                    return Err(self.syntax("a DOCTYPE is not allowed in SenML XML"));
                }
                (_, Event::Text(t)) if t.as_ref().bytes().all(|c: u8| c.is_ascii_whitespace()) => {}
                (_, Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)) => {
                    return Err(
                        self.syntax("text is not allowed here; records are <senml …/> elements")
                    );
                }
                (State::Prolog, Event::Start(e))
                    if in_senml_ns && e.local_name().as_ref() == "sensml" =>
                {
                    self.state = State::Records;
                }
                (State::Prolog, Event::Empty(e))
                    if in_senml_ns && e.local_name().as_ref() == "sensml" =>
                {
                    self.state = State::Done;
                    return Err(Error::input(Reason::EmptyPack));
                }
                (State::Prolog, Event::Start(e) | Event::Empty(e)) => {
                    let name = e.name().as_ref().to_owned();
                    self.state = State::Done;
                    return Err(Error::input(Reason::NotAPack(format!(
                        "the root element is <{name}>; SenML XML has <sensml xmlns=\"{NAMESPACE}\">"
                    ))));
                }
                (State::Records, Event::Start(e))
                    if in_senml_ns && e.local_name().as_ref() == "senml" =>
                {
                    // A `<senml>` with a separate end tag: expect it next.
                    self.state = State::InRecord;
                    self.index += 1;
                    return record(&e, self.index - 1).map(Some);
                }
                (State::Records, Event::Empty(e))
                    if in_senml_ns && e.local_name().as_ref() == "senml" =>
                {
                    self.index += 1;
                    return record(&e, self.index - 1).map(Some);
                }
                (State::Records | State::InRecord, Event::Start(e) | Event::Empty(e)) => {
                    let name = e.name().as_ref().to_owned();
                    return Err(self.syntax(format!(
                        "unexpected element <{name}>; records are <senml …/> in the SenML namespace"
                    )));
                }
                (State::InRecord, Event::End(_)) => self.state = State::Records,
                (State::Records, Event::End(_)) => {
                    self.state = State::Done;
                    return if self.index == 0 {
                        Err(Error::input(Reason::EmptyPack))
                    } else {
                        self.trailing().map(|_| None)
                    };
                }
                (State::Prolog, Event::Eof) => {
                    self.state = State::Done;
                    return Err(Error::input(Reason::NotAPack(
                        "the input holds no XML element".into(),
                    )));
                }
                (_, Event::Eof) => {
                    let offset = self.reader.buffer_position();
                    self.state = State::Done;
                    return Err(Error::input(Reason::Truncated { offset }));
                }
                (_, Event::End(_)) => return Err(self.syntax("unexpected end tag")),
                (State::Done, _) => unreachable!("checked at the top of the loop"),
            }
        }
    }

    /// After the root: only comments, processing instructions and white space.
    fn trailing(&mut self) -> Result<()> {
        loop {
            self.buf.clear();
            match self.reader.read_event_into(&mut self.buf) {
                Ok(Event::Eof) => return Ok(()),
                Ok(Event::Comment(_) | Event::PI(_)) => {}
                Ok(Event::Text(t)) if t.as_ref().bytes().all(|c: u8| c.is_ascii_whitespace()) => {}
                Ok(_) => return Err(self.syntax("content after the end of the pack")),
                Err(e) => {
                    let message = e.to_string();
                    return Err(self.syntax(message));
                }
            }
        }
    }
}

fn record(element: &BytesStart<'_>, index: usize) -> Result<RawRecord<'static>> {
    let mut record = RawRecord::default();
    let mut seen = 0u16;
    for attr in element.attributes() {
        let attr = attr.map_err(|e| {
            Error::in_record(
                index,
                Reason::Syntax {
                    format: "XML",
                    offset: 0,
                    message: format!("bad attribute: {e}"),
                },
            )
        })?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let key = attr.key.local_name().as_ref().to_owned();
        let Some(label) = Label::from_name(&key) else {
            check_unknown_label(&key).map_err(|r| Error::in_field(index, &key, r))?;
            continue;
        };
        let field = |reason| Error::in_field(index, label.as_str(), reason);
        let bit = 1u16 << (label.cbor() + 6);
        if seen & bit != 0 {
            return Err(field(Reason::DuplicateField));
        }
        seen |= bit;
        let text = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| {
                field(Reason::Syntax {
                    format: "XML",
                    offset: 0,
                    message: e.to_string(),
                })
            })?
            .into_owned();
        match label {
            Label::BaseVersion => {
                let v = text.trim().parse::<u64>().map_err(|_| {
                    field(Reason::WrongType {
                        expected: "an unsigned integer",
                        found: format!("{text:?}"),
                    })
                })?;
                record.base_version = Some(v);
            }
            Label::BaseName | Label::BaseUnit | Label::Name | Label::Unit | Label::StringValue => {
                record.set_text(label, Cow::Owned(text));
            }
            Label::BoolValue => {
                record.bool_value = Some(match text.trim() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(field(Reason::WrongType {
                            expected: "a boolean (true or false)",
                            found: format!("{text:?}"),
                        }));
                    }
                })
            }
            Label::DataValue => {
                let bytes = decode_base64url(text.trim())
                    .map_err(|why| field(Reason::InvalidBase64(why)))?;
                record.data_value = Some(Cow::Owned(bytes));
            }
            _ => {
                record.set_number(label, parse_double(&text).map_err(field)?);
            }
        }
    }
    Ok(record)
}

/// An `xs:double` attribute; NaN and infinities are refused.
fn parse_double(text: &str) -> Result<f64, Reason> {
    let trimmed = text.trim();
    // Rust also reads "inf", "nan" and "infinity"; none is a SenML number.
    let looks_numeric = trimmed
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E'));
    match trimmed.parse::<f64>() {
        Ok(v) if v.is_finite() && looks_numeric => Ok(v),
        Ok(_) if looks_numeric => Err(Reason::NotFinite(trimmed.to_owned())),
        Ok(_) => Err(Reason::NotFinite(trimmed.to_owned())),
        Err(_) => Err(Reason::WrongType {
            expected: "a number",
            found: format!("{text:?}"),
        }),
    }
}

/// Hands quick-xml at most [`MAX_RECORD_BYTES`] for one event, so that an
/// element that never closes cannot make it buffer the whole input.
pub(crate) struct EventLimit<R> {
    inner: R,
    since_event: usize,
}

#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an XML element longer than {MAX_RECORD_BYTES} bytes")
    }
}

impl std::error::Error for TooLarge {}

impl<R: BufRead> std::io::Read for EventLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for EventLimit<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.since_event > MAX_RECORD_BYTES {
            return Err(std::io::Error::other(TooLarge));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.since_event += n;
        self.inner.consume(n);
    }
}

/// Writes records as a SenML XML pack, one element per line.
pub(crate) struct XmlWriter<W> {
    pack: PackBuffer<W>,
    count: usize,
}

impl<W: Write> XmlWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        let opening = b"<sensml xmlns=\"urn:ietf:params:xml:ns:senml\">\n";
        XmlWriter {
            pack: PackBuffer::new(out, opening),
            count: 0,
        }
    }
}

impl<W: Write> RecordWriter for XmlWriter<W> {
    fn write_fields(&mut self, fields: &[(Label, FieldValue<'_>)]) -> Result<()> {
        let start = self.pack.buf.len();
        let result = write_element(&mut self.pack.buf, fields);
        if result.is_err() {
            self.pack.buf.truncate(start);
            return result;
        }
        self.count += 1;
        self.pack.record_done()
    }

    fn finish(&mut self) -> Result<()> {
        self.pack.close(self.count, b"", b"</sensml>\n")
    }
}

fn write_element(buf: &mut Vec<u8>, fields: &[(Label, FieldValue<'_>)]) -> Result<()> {
    buf.extend_from_slice(b"<senml");
    for &(label, value) in fields {
        buf.push(b' ');
        buf.extend_from_slice(label.as_str().as_bytes());
        buf.extend_from_slice(b"=\"");
        match value {
            FieldValue::Unsigned(v) => {
                buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes())
            }
            FieldValue::Number(v) => write_number(buf, v, "XML")?,
            FieldValue::Text(s) => write_attribute_text(buf, s, label)?,
            FieldValue::Bool(b) => buf.extend_from_slice(if b { b"true" } else { b"false" }),
            FieldValue::Data(d) => encode_base64url(buf, d),
        }
        buf.push(b'"');
    }
    buf.extend_from_slice(b"/>\n");
    Ok(())
}

/// Escapes an attribute value. White space other than a space is written as
/// a character reference so that attribute normalisation keeps it; characters
/// XML 1.0 cannot carry at all are refused.
fn write_attribute_text(buf: &mut Vec<u8>, s: &str, label: Label) -> Result<()> {
    for c in s.chars() {
        match c {
            '&' => buf.extend_from_slice(b"&amp;"),
            '<' => buf.extend_from_slice(b"&lt;"),
            '>' => buf.extend_from_slice(b"&gt;"),
            '"' => buf.extend_from_slice(b"&quot;"),
            '\t' => buf.extend_from_slice(b"&#9;"),
            '\n' => buf.extend_from_slice(b"&#10;"),
            '\r' => buf.extend_from_slice(b"&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {
                return Err(Error::input(Reason::Unencodable {
                    format: "XML",
                    why: format!(
                        "field {:?} holds U+{:04X}, which XML 1.0 cannot carry",
                        label.as_str(),
                        c as u32
                    ),
                }));
            }
            c => {
                let mut utf8 = [0u8; 4];
                buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    Ok(())
}
