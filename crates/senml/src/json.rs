//! SenML JSON (RFC 8428 §5): a streaming decoder and an encoder.
//!
//! The decoder frames one record object at a time (finds its closing brace
//! without allocating), then parses that slice with `serde_json`. Framing
//! first means a type error in one record does not lose the position of the
//! next, and a reader input needs to hold only one record at a time.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::encode::{RecordWriter, write_number};
use crate::error::{Error, Reason, Result};
use crate::input::Input;
use crate::model::{FieldValue, Label, RawRecord, check_unknown_label};

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Start,
    First,
    Rest,
    Done,
}

/// Decodes the records of a SenML JSON pack one by one.
pub(crate) struct JsonDecoder<I> {
    input: I,
    state: State,
    index: usize,
}

impl<I: Input> JsonDecoder<I> {
    pub(crate) fn new(input: I) -> Self {
        JsonDecoder {
            input,
            state: State::Start,
            index: 0,
        }
    }

    fn syntax(&self, pos: usize, message: impl Into<String>) -> Error {
        let reason = Reason::Syntax {
            format: "JSON",
            offset: self.input.offset_of(pos),
            message: message.into(),
        };
        match self.state {
            State::Start | State::Done => Error::input(reason),
            _ => Error::in_record(self.index, reason),
        }
    }

    fn truncated(&self) -> Error {
        Error::input(Reason::Truncated {
            offset: self.input.offset_of(self.input.buffer().len()),
        })
    }

    /// The next record, `None` after the last one.
    pub(crate) fn next_record(&mut self) -> Result<Option<RawRecord<'_>>> {
        if self.state == State::Start {
            match self.input.skip_whitespace()? {
                Some(b'[') => {
                    self.input.set_pos(self.input.pos() + 1);
                    self.state = State::First;
                }
                Some(c) => {
                    self.state = State::Done;
                    return Err(Error::input(Reason::NotAPack(format!(
                        "a SenML JSON pack is an array of records, but the input starts with {:?}",
                        c as char
                    ))));
                }
                None => {
                    self.state = State::Done;
                    return Err(Error::input(Reason::NotAPack("the input is empty".into())));
                }
            }
        }
        if self.state == State::Done {
            return Ok(None);
        }
        let Some(mut c) = self.input.skip_whitespace()? else {
            self.state = State::Done;
            return Err(self.truncated());
        };
        if c == b']' {
            self.input.set_pos(self.input.pos() + 1);
            let empty = self.index == 0;
            self.state = State::Done;
            if let Some(c) = self.input.skip_whitespace()? {
                return Err(self.syntax(
                    self.input.pos(),
                    format!("unexpected {:?} after the end of the pack", c as char),
                ));
            }
            return if empty {
                Err(Error::input(Reason::EmptyPack))
            } else {
                Ok(None)
            };
        }
        if self.state == State::Rest {
            if c != b',' {
                let pos = self.input.pos();
                self.state = State::Done;
                return Err(self.syntax(
                    pos,
                    format!(
                        "expected ',' or ']' after record {}, found {:?}",
                        self.index - 1,
                        c as char
                    ),
                ));
            }
            self.input.set_pos(self.input.pos() + 1);
            match self.input.skip_whitespace()? {
                Some(next) => c = next,
                None => {
                    self.state = State::Done;
                    return Err(self.truncated());
                }
            }
        }
        if c != b'{' {
            let pos = self.input.pos();
            let err = self.syntax(
                pos,
                format!("expected a record object, found {:?}", c as char),
            );
            self.state = State::Done;
            return Err(err);
        }
        let end = loop {
            match find_object_end(self.input.rest()) {
                Some(len) => break self.input.pos() + len,
                None => {
                    if !self.input.refill()? {
                        self.state = State::Done;
                        return Err(self.truncated());
                    }
                }
            }
        };
        let start = self.input.pos();
        let index = self.index;
        self.index += 1;
        self.state = State::Rest;
        self.input.set_pos(end);
        let offset = self.input.offset_of(start);
        parse_record(&self.input.buffer()[start..end], index, offset).map(Some)
    }
}

/// Length of the JSON object at the start of `bytes` (which starts with
/// `{`), or `None` if it does not end within `bytes`. Only braces, brackets
/// and strings are looked at; the parser checks the rest.
fn find_object_end(bytes: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i)? {
                        b'"' => break,
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where a field-level problem was found while serde was parsing.
#[derive(Default)]
struct Problem {
    field: Option<String>,
    reason: Option<Reason>,
}

impl Problem {
    fn set<E: de::Error>(&mut self, reason: Reason) -> E {
        let message = reason.to_string();
        self.reason = Some(reason);
        E::custom(message)
    }
}

fn parse_record(bytes: &[u8], index: usize, offset: u64) -> Result<RawRecord<'_>> {
    let mut problem = Problem::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = RecordSeed {
        problem: &mut problem,
    }
    .deserialize(&mut de);
    match result {
        Ok(record) => Ok(record),
        Err(e) => Err(match (problem.reason, problem.field) {
            (Some(reason), Some(field)) => Error::in_field(index, &field, reason),
            (Some(reason), None) => Error::in_record(index, reason),
            (None, field) => {
                let reason = Reason::Syntax {
                    format: "JSON",
                    offset: offset + byte_offset(bytes, e.line(), e.column()),
                    message: strip_position(&e.to_string()),
                };
                Error {
                    record: Some(index),
                    field,
                    reason,
                }
            }
        }),
    }
}

/// serde_json reports line and column; turn them into a byte offset.
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> u64 {
    let mut offset = 0usize;
    for _ in 1..line {
        match bytes[offset..].iter().position(|&c| c == b'\n') {
            Some(n) => offset += n + 1,
            None => break,
        }
    }
    (offset + column.saturating_sub(1)) as u64
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(n) => message[..n].to_owned(),
        None => message.to_owned(),
    }
}

struct RecordSeed<'p> {
    problem: &'p mut Problem,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = RawRecord<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = RawRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SenML record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let problem = self.problem;
        let mut record = RawRecord::default();
        let mut seen = 0u16;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let Some(label) = Label::from_name(&key) else {
                if let Err(reason) = check_unknown_label(&key) {
                    problem.field = Some(key.into_owned());
                    return Err(problem.set(reason));
                }
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            problem.field = Some(label.as_str().to_owned());
            let bit = 1u16 << (label.cbor() + 6);
            if seen & bit != 0 {
                return Err(problem.set(Reason::DuplicateField));
            }
            seen |= bit;
            let kind = match label {
                Label::BaseName
                | Label::BaseUnit
                | Label::Name
                | Label::Unit
                | Label::StringValue
                | Label::DataValue => Kind::String,
                Label::BoolValue => Kind::Bool,
                Label::BaseVersion => Kind::Unsigned,
                _ => Kind::Number,
            };
            let value = map.next_value_seed(FieldSeed {
                kind,
                problem: &mut *problem,
            })?;
            match (label, value) {
                (Label::BaseVersion, Field::Unsigned(v)) => record.base_version = Some(v),
                (Label::BaseName, Field::String(s)) => record.base_name = Some(s),
                (Label::BaseTime, Field::Number(v)) => record.base_time = Some(v),
                (Label::BaseUnit, Field::String(s)) => record.base_unit = Some(s),
                (Label::BaseValue, Field::Number(v)) => record.base_value = Some(v),
                (Label::BaseSum, Field::Number(v)) => record.base_sum = Some(v),
                (Label::Name, Field::String(s)) => record.name = Some(s),
                (Label::Unit, Field::String(s)) => record.unit = Some(s),
                (Label::Value, Field::Number(v)) => record.value = Some(v),
                (Label::StringValue, Field::String(s)) => record.string_value = Some(s),
                (Label::BoolValue, Field::Bool(b)) => record.bool_value = Some(b),
                (Label::DataValue, Field::String(s)) => match crate::encode::decode_base64url(&s) {
                    Ok(bytes) => record.data_value = Some(Cow::Owned(bytes)),
                    Err(why) => return Err(problem.set(Reason::InvalidBase64(why))),
                },
                (Label::Sum, Field::Number(v)) => record.sum = Some(v),
                (Label::Time, Field::Number(v)) => record.time = Some(v),
                (Label::UpdateTime, Field::Number(v)) => record.update_time = Some(v),
                _ => unreachable!("FieldSeed returns the kind it was asked for"),
            }
        }
        problem.field = None;
        Ok(record)
    }
}

/// A map key, borrowed from the input unless it holds escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a label")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Number,
    Unsigned,
    String,
    Bool,
}

enum Field<'de> {
    Number(f64),
    Unsigned(u64),
    String(Cow<'de, str>),
    Bool(bool),
}

/// Parses one field value, accepting any JSON type so that a wrong one is
/// reported as "expected a number, found string \"abc\"" rather than a
/// parser message.
struct FieldSeed<'p> {
    kind: Kind,
    problem: &'p mut Problem,
}

impl FieldSeed<'_> {
    fn expected(&self) -> &'static str {
        match self.kind {
            Kind::Number => "a number",
            Kind::Unsigned => "an unsigned integer",
            Kind::String => "a string",
            Kind::Bool => "a boolean",
        }
    }

    fn wrong<'de, E: de::Error>(self, found: String) -> Result<Field<'de>, E> {
        let expected = self.expected();
        Err(self.problem.set(Reason::WrongType { expected, found }))
    }

    fn number<'de, E: de::Error>(self, v: f64, text: impl fmt::Display) -> Result<Field<'de>, E> {
        match self.kind {
            Kind::Number => Ok(Field::Number(v)),
            _ => self.wrong(format!("number {text}")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        match self.kind {
            Kind::Unsigned => Ok(Field::Unsigned(v)),
            _ => self.number(v as f64, v),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.number(v as f64, v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.number(v, v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        match self.kind {
            Kind::Bool => Ok(Field::Bool(v)),
            _ => self.wrong(format!("boolean {v}")),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        match self.kind {
            Kind::String => Ok(Field::String(Cow::Borrowed(v))),
            _ => self.wrong(format!("string {v:?}")),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match self.kind {
            Kind::String => Ok(Field::String(Cow::Owned(v.to_owned()))),
            _ => self.wrong(format!("string {v:?}")),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.wrong("null".into())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        self.wrong("an array".into())
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        self.wrong("an object".into())
    }
}

/// Writes records as a SenML JSON pack, one record per line.
pub(crate) struct JsonWriter<W> {
    out: W,
    buf: Vec<u8>,
    count: usize,
}

impl<W: Write> JsonWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        JsonWriter {
            out,
            buf: Vec::with_capacity(64 * 1024),
            count: 0,
        }
    }
}

impl<W: Write> RecordWriter for JsonWriter<W> {
    fn write(&mut self, record: &RawRecord<'_>) -> Result<()> {
        let buf = &mut self.buf;
        buf.extend_from_slice(if self.count == 0 { b"[{" } else { b",\n{" });
        self.count += 1;
        for (i, (label, value)) in record.fields().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.push(b'"');
            buf.extend_from_slice(label.as_str().as_bytes());
            buf.extend_from_slice(b"\":");
            match value {
                FieldValue::Unsigned(v) => buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
                FieldValue::Number(v) => write_number(buf, v, "JSON")?,
                FieldValue::Text(s) => write_json_string(buf, s),
                FieldValue::Bool(b) => buf.extend_from_slice(if b { b"true" } else { b"false" }),
                FieldValue::Data(d) => {
                    buf.push(b'"');
                    crate::encode::encode_base64url(buf, d);
                    buf.push(b'"');
                }
            }
        }
        buf.push(b'}');
        if buf.len() >= 60 * 1024 {
            self.out.write_all(buf)?;
            buf.clear();
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.count == 0 {
            return Err(Error::input(Reason::EmptyPack));
        }
        self.buf.extend_from_slice(b"]\n");
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()?;
        Ok(())
    }
}

/// Appends `s` as a JSON string literal.
fn write_json_string(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let escape: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                buf.extend_from_slice(&bytes[start..i]);
                buf.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(escape);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}
