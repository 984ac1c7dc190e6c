//! SenML JSON (RFC 8428 §5): a streaming decoder and an encoder.
//!
//! Records are parsed by a parser that knows SenML's labels (`parse`). From a
//! stream, each record object is first framed (its closing brace found
//! without allocating), so that the buffer only has to hold one record; in
//! memory it is parsed in place. A type error in one record is reported
//! with the record and the decoder goes on with the next.

mod parse;

use std::io::Write;

use crate::encode::{PackBuffer, RecordWriter, write_number};
use crate::error::{Error, Reason, Result};
use crate::input::Input;
use crate::model::{FieldValue, Label, RawRecord};
use parse::{Stop, parse_record, show};

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

    /// Runs `f` on the next record where it was parsed (no copy of the
    /// record); `None` after the last one.
    #[inline]
    pub(crate) fn next_with<'s, T>(
        &'s mut self,
        f: impl FnOnce(&RawRecord<'s>) -> T,
    ) -> Result<Option<T>> {
        if self.state == State::Start {
            // A UTF-8 byte-order mark is tolerated (RFC 8259 §8.1 allows ignoring it).
            while self.input.rest().len() < 3 && self.input.refill()? {}
            if self.input.rest().starts_with(b"\xef\xbb\xbf") {
                self.input.set_pos(self.input.pos() + 3);
            }
            match self.input.skip_whitespace()? {
                Some(b'[') => {
                    self.input.set_pos(self.input.pos() + 1);
                    self.state = State::First;
                }
                Some(c) => {
                    self.state = State::Done;
                    return Err(Error::input(Reason::NotAPack(format!(
                        "a SenML JSON pack is an array of records, but the input starts with {}",
                        show(c)
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
                    format!("unexpected {} after the end of the pack", show(c)),
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
                        "expected ',' or ']' after record {}, found {}",
                        self.index - 1,
                        show(c)
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
            let err = self.syntax(pos, format!("expected a record object, found {}", show(c)));
            self.state = State::Done;
            return Err(err);
        }
        if !self.input.is_whole() {
            // Bring the whole object into the buffer before parsing it. At
            // the end of the input the parser still runs on what there is,
            // so that a stream fails exactly as the same bytes in memory do.
            while find_object_end(self.input.rest()).is_none() && self.input.refill()? {}
        }
        let index = self.index;
        self.index += 1;
        self.state = State::Rest;
        let start = self.input.pos();
        let mut record = RawRecord::default();
        match parse_record(&self.input.buffer()[start..], index, &mut record) {
            Ok((problem, len)) => {
                self.input.set_pos(start + len);
                match problem {
                    None => Ok(Some(f(&record))),
                    Some(e) => Err(e),
                }
            }
            Err(Stop::Incomplete) => {
                self.state = State::Done;
                Err(self.truncated())
            }
            Err(Stop::Syntax(at, message)) => {
                self.state = State::Done;
                Err(Error::in_record(
                    index,
                    Reason::Syntax {
                        format: "JSON",
                        offset: self.input.offset_of(start + at),
                        message,
                    },
                ))
            }
        }
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

/// Writes records as a SenML JSON pack, one record per line.
pub(crate) struct JsonWriter<W> {
    pack: PackBuffer<W>,
    count: usize,
    /// The last long string written and its JSON form: packs repeat names
    /// and units, and comparing is cheaper than escaping again.
    last_text: (String, Vec<u8>),
}

impl<W: Write> JsonWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        JsonWriter {
            pack: PackBuffer::new(out, b""),
            count: 0,
            last_text: (String::new(), Vec::new()),
        }
    }
}

impl<W: Write> RecordWriter for JsonWriter<W> {
    fn write_fields(&mut self, fields: &[(Label, FieldValue<'_>)]) -> Result<()> {
        let buf = &mut self.pack.buf;
        buf.extend_from_slice(if self.count == 0 { b"[{" } else { b",\n{" });
        self.count += 1;
        for (i, &(label, value)) in fields.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.push(b'"');
            buf.extend_from_slice(label.as_str().as_bytes());
            buf.extend_from_slice(b"\":");
            match value {
                FieldValue::Unsigned(v) => {
                    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes())
                }
                FieldValue::Number(v) => write_number(buf, v, "JSON")?,
                FieldValue::Text(s) if s.len() >= 16 => {
                    let (text, json) = &mut self.last_text;
                    if text != s {
                        s.clone_into(text);
                        json.clear();
                        write_json_string(json, s);
                    }
                    buf.extend_from_slice(json);
                }
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
        self.pack.record_done()
    }

    fn finish(&mut self) -> Result<()> {
        self.pack.close(self.count, b"", b"]\n")
    }
}

/// Bytes that a JSON string cannot hold as they are: `"`, `\\` and controls.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = true;
        c += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Appends `s` as a JSON string literal.
fn write_json_string(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(n) = bytes[start..]
        .iter()
        .position(|&c| NEEDS_ESCAPE[usize::from(c)])
    {
        let i = start + n;
        buf.extend_from_slice(&bytes[start..i]);
        match bytes[i] {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            c => buf.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}
