//! A JSON parser for one SenML record object (RFC 8259 grammar, RFC 8428
//! labels).
//!
//! A record is a flat object with a handful of known labels, so a parser
//! that knows them beats a generic one: labels are matched as bytes,
//! integers (most times and values) take a fast exact path, strings borrow
//! from the input unless they hold escapes.
//!
//! Two kinds of failure: a *field* error (wrong type, duplicate label, bad
//! base64…) is reported once the whole object has been read, so the caller
//! can go on with the next record; a *syntax* error or the end of the input
//! stops decoding.

use std::borrow::Cow;

use crate::encode::decode_base64url;
use crate::error::{Error, Reason};
use crate::model::{Label, RawRecord, check_unknown_label};

/// Why parsing had to stop.
pub(super) enum Stop {
    /// The object continues past the end of the bytes.
    Incomplete,
    /// Not JSON: the message and the offset (from the record's start).
    Syntax(usize, String),
}

/// Unknown values nested deeper than this are refused (a stack guard).
const MAX_DEPTH: usize = 128;

/// Parses the record object at the start of `bytes` into `record` (which
/// starts empty; filling it in place spares copies of a large struct).
/// Returns the record's field error, if any, and the number of bytes it took.
#[inline]
pub(super) fn parse_record<'a>(
    bytes: &'a [u8],
    index: usize,
    record: &mut RawRecord<'a>,
) -> Result<(Option<Error>, usize), Stop> {
    let mut p = Parser { bytes, pos: 0 };
    let problem = p.record(index, record)?;
    Ok((problem, p.pos))
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// What a value turned out to be, for "expected a number, found …".
fn found_string(s: &str) -> String {
    format!("string {s:?}")
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Number,
    Unsigned,
    Text,
    Bool,
    Data,
}

fn kind(label: Label) -> Kind {
    match label {
        Label::BaseVersion => Kind::Unsigned,
        Label::BaseName | Label::BaseUnit | Label::Name | Label::Unit | Label::StringValue => {
            Kind::Text
        }
        Label::BoolValue => Kind::Bool,
        Label::DataValue => Kind::Data,
        _ => Kind::Number,
    }
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Number => "a number",
        Kind::Unsigned => "an unsigned integer",
        Kind::Text => "a string",
        Kind::Bool => "a boolean",
        Kind::Data => "a base64url string",
    }
}

/// A member name: a SenML label, or another one.
enum Key<'a> {
    Known(Label),
    Unknown(Cow<'a, str>),
}

/// A number token: its value, and the integer when it is a plain
/// non-negative integer (for `bver`).
struct Number {
    value: f64,
    unsigned: Option<u64>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Result<u8, Stop> {
        self.bytes.get(self.pos).copied().ok_or(Stop::Incomplete)
    }

    fn syntax<T>(&self, message: impl Into<String>) -> Result<T, Stop> {
        Err(Stop::Syntax(self.pos, message.into()))
    }

    fn ws(&mut self) -> Result<u8, Stop> {
        loop {
            match self.peek()? {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                c => return Ok(c),
            }
        }
    }

    fn unexpected<T>(&self, c: u8, wanted: &str) -> Result<T, Stop> {
        self.syntax(format!("expected {wanted}, found {}", show(c)))
    }

    fn record(&mut self, index: usize, record: &mut RawRecord<'a>) -> Result<Option<Error>, Stop> {
        let mut problem: Option<Error> = None;
        let mut seen = 0u16;
        self.pos += 1; // '{', checked by the caller
        if self.ws()? == b'}' {
            self.pos += 1;
            return Ok(None);
        }
        loop {
            let c = self.ws()?;
            if c != b'"' {
                return self.unexpected(c, "a label in double quotes");
            }
            match self.label()? {
                Key::Unknown(key) => {
                    if let Err(reason) = check_unknown_label(&key) {
                        problem.get_or_insert(Error::in_field(index, &key, reason));
                    }
                    self.skip_value(0)?;
                }
                Key::Known(label) => {
                    let bit = 1u16 << (label.cbor() + 6);
                    let result = if seen & bit != 0 {
                        self.skip_value(0)?;
                        Err(Reason::DuplicateField)
                    } else {
                        seen |= bit;
                        self.field(label, record)?
                    };
                    if let Err(reason) = result {
                        problem.get_or_insert(Error::in_field(index, label.as_str(), reason));
                    }
                }
            }
            match self.ws()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Ok(problem);
                }
                c => return self.unexpected(c, "',' or '}' in a record"),
            }
        }
    }

    /// A member name, its ':' and the white space around. Plain names are
    /// matched as bytes, without UTF-8 checks; a name with escapes, or one
    /// SenML does not know, is decoded as a string.
    #[inline]
    fn label(&mut self) -> Result<Key<'a>, Stop> {
        let start = self.pos + 1;
        let plain = self.bytes[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let known = match plain {
            Some(n) if self.bytes[start + n] == b'"' => {
                Label::from_bytes(&self.bytes[start..start + n])
            }
            _ => None,
        };
        let label = match known {
            Some(label) => {
                self.pos = start + plain.unwrap_or_default() + 1;
                Key::Known(label)
            }
            None => {
                let name = self.string()?;
                Label::from_name(&name).map_or(Key::Unknown(name), Key::Known)
            }
        };
        let c = self.ws()?;
        if c != b':' {
            return self.unexpected(c, "':' after a label");
        }
        self.pos += 1;
        self.ws()?;
        Ok(label)
    }

    /// Reads one known field into `record`; a wrong value is skipped and
    /// reported.
    fn field(
        &mut self,
        label: Label,
        record: &mut RawRecord<'a>,
    ) -> Result<Result<(), Reason>, Stop> {
        let kind = kind(label);
        let c = self.peek()?;
        let matches = match kind {
            Kind::Number | Kind::Unsigned => c == b'-' || c.is_ascii_digit(),
            Kind::Text | Kind::Data => c == b'"',
            Kind::Bool => c == b't' || c == b'f',
        };
        if !matches {
            let found = self.describe_value()?;
            return Ok(Err(Reason::WrongType {
                expected: expected(kind),
                found,
            }));
        }
        match kind {
            Kind::Number => {
                let start = self.pos;
                let n = self.number()?;
                if !n.value.is_finite() {
                    let text = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
                    return Ok(Err(Reason::NotFinite(text)));
                }
                record.set_number(label, n.value);
            }
            Kind::Unsigned => {
                let start = self.pos;
                match self.number()?.unsigned {
                    Some(v) => record.base_version = Some(v),
                    None => {
                        let text =
                            String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
                        return Ok(Err(Reason::WrongType {
                            expected: expected(kind),
                            found: format!("number {text}"),
                        }));
                    }
                }
            }
            Kind::Text => record.set_text(label, self.string()?),
            Kind::Data => match decode_base64url(&self.string()?) {
                Ok(bytes) => record.data_value = Some(Cow::Owned(bytes)),
                Err(why) => return Ok(Err(Reason::InvalidBase64(why))),
            },
            Kind::Bool => {
                if self.literal("true")? {
                    record.bool_value = Some(true);
                } else if self.literal("false")? {
                    record.bool_value = Some(false);
                } else {
                    // Starts like a boolean but is not one: let the reader say what it is.
                    let found = self.describe_value()?;
                    return Ok(Err(Reason::WrongType {
                        expected: expected(kind),
                        found,
                    }));
                }
            }
        }
        Ok(Ok(()))
    }

    /// Reads any value and says what it was.
    fn describe_value(&mut self) -> Result<String, Stop> {
        let c = self.peek()?;
        Ok(match c {
            b'"' => found_string(&self.string()?),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                self.number()?;
                format!(
                    "number {}",
                    String::from_utf8_lossy(&self.bytes[start..self.pos])
                )
            }
            b'[' => {
                self.skip_value(0)?;
                "an array".into()
            }
            b'{' => {
                self.skip_value(0)?;
                "an object".into()
            }
            _ => {
                for (literal, described) in [
                    ("true", "boolean true"),
                    ("false", "boolean false"),
                    ("null", "null"),
                ] {
                    if self.literal(literal)? {
                        return Ok(described.into());
                    }
                }
                return self.unexpected(c, "a value");
            }
        })
    }

    /// Consumes `word` if the input holds it here.
    fn literal(&mut self, word: &str) -> Result<bool, Stop> {
        let end = self.pos + word.len();
        match self.bytes.get(self.pos..end) {
            Some(bytes) if bytes == word.as_bytes() => {
                self.pos = end;
                Ok(true)
            }
            Some(_) => Ok(false),
            None if word.as_bytes().starts_with(&self.bytes[self.pos..]) => Err(Stop::Incomplete),
            None => Ok(false),
        }
    }

    /// Skips any value, checking its syntax.
    fn skip_value(&mut self, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return self.syntax(format!("values nested deeper than {MAX_DEPTH}"));
        }
        let c = self.peek()?;
        let close = match c {
            b'[' => b']',
            b'{' => b'}',
            _ => {
                self.describe_value()?;
                return Ok(());
            }
        };
        self.pos += 1;
        if self.ws()? == close {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if close == b'}' {
                let c = self.ws()?;
                if c != b'"' {
                    return self.unexpected(c, "a member name in double quotes");
                }
                self.string()?;
                let c = self.ws()?;
                if c != b':' {
                    return self.unexpected(c, "':'");
                }
                self.pos += 1;
                self.ws()?;
            }
            self.skip_value(depth + 1)?;
            match self.ws()? {
                b',' => {
                    self.pos += 1;
                    self.ws()?;
                }
                c if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                c => return self.unexpected(c, &format!("',' or '{}'", close as char)),
            }
        }
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Result<Cow<'a, str>, Stop> {
        self.pos += 1;
        let start = self.pos;
        let bytes = self.bytes;
        // Fast path: no escape, borrow.
        loop {
            match *bytes.get(self.pos).ok_or(Stop::Incomplete)? {
                b'"' => {
                    let s = utf8(&bytes[start..self.pos]).map_err(|at| {
                        Stop::Syntax(start + at, "invalid UTF-8 in a string".into())
                    })?;
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                b'\\' => break,
                0..=0x1f => return self.syntax("a control character in a string must be escaped"),
                _ => self.pos += 1,
            }
        }
        // Slow path: unescape into an owned string.
        let mut out = Vec::with_capacity(self.pos - start + 16);
        out.extend_from_slice(&bytes[start..self.pos]);
        loop {
            let c = *bytes.get(self.pos).ok_or(Stop::Incomplete)?;
            self.pos += 1;
            match c {
                b'"' => {
                    return String::from_utf8(out).map(Cow::Owned).map_err(|e| {
                        Stop::Syntax(
                            start + e.utf8_error().valid_up_to(),
                            "invalid UTF-8 in a string".into(),
                        )
                    });
                }
                b'\\' => {
                    let escape = *bytes.get(self.pos).ok_or(Stop::Incomplete)?;
                    self.pos += 1;
                    let plain = match escape {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let ch = self.unicode_escape()?;
                            let mut utf8 = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
                            continue;
                        }
                        other => return self.syntax(format!("invalid escape \\{}", other as char)),
                    };
                    out.push(plain);
                }
                0..=0x1f => return self.syntax("a control character in a string must be escaped"),
                c => out.push(c),
            }
        }
    }

    /// After `\u`: four hex digits, and a low surrogate after a high one.
    fn unicode_escape(&mut self) -> Result<char, Stop> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if self
                    .bytes
                    .get(self.pos..self.pos + 2)
                    .ok_or(Stop::Incomplete)?
                    != b"\\u"
                {
                    return self
                        .syntax("a high surrogate must be followed by a low surrogate escape");
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return self.syntax("a high surrogate must be followed by a low surrogate");
                }
                0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
            }
            0xdc00..=0xdfff => return self.syntax("a lone low surrogate"),
            c => c,
        };
        char::from_u32(code).map_or_else(|| self.syntax("an invalid code point"), Ok)
    }

    fn hex4(&mut self) -> Result<u32, Stop> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or(Stop::Incomplete)?;
        let mut v = 0;
        for &d in digits {
            let n = (d as char)
                .to_digit(16)
                .map_or_else(|| self.syntax("\\u needs four hex digits"), Ok)?;
            v = v * 16 + n;
        }
        self.pos += 4;
        Ok(v)
    }

    /// A number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<Number, Stop> {
        let bytes = self.bytes;
        let start = self.pos;
        let negative = bytes[start] == b'-';
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        let mut mantissa: u64 = 0;
        while let Some(&d) = bytes.get(self.pos).filter(|d| d.is_ascii_digit()) {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            self.pos += 1;
        }
        let int_digits = self.pos - int_start;
        if int_digits == 0 {
            return match bytes.get(self.pos) {
                None => Err(Stop::Incomplete),
                Some(_) => self.syntax("a number needs digits"),
            };
        }
        if int_digits > 1 && bytes[int_start] == b'0' {
            return Err(Stop::Syntax(
                int_start,
                "a number cannot start with 0".into(),
            ));
        }
        let mut plain = true;
        if bytes.get(self.pos) == Some(&b'.') {
            plain = false;
            self.pos += 1;
            self.digits()?;
        }
        if matches!(bytes.get(self.pos), Some(b'e' | b'E')) {
            plain = false;
            self.pos += 1;
            if matches!(bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        // The number must end here; at the end of the bytes it may go on.
        if self.pos == bytes.len() {
            return Err(Stop::Incomplete);
        }
        // Integers of up to 15 digits are exact in a double: no parsing needed.
        if plain && int_digits <= 15 {
            let value = if negative {
                -(mantissa as f64)
            } else {
                mantissa as f64
            };
            return Ok(Number {
                value,
                unsigned: (!negative).then_some(mantissa),
            });
        }
        let text = std::str::from_utf8(&bytes[start..self.pos])
            .map_err(|_| Stop::Syntax(start, "bad number".into()))?;
        let value = text
            .parse::<f64>()
            .map_err(|_| Stop::Syntax(start, format!("bad number {text}")))?;
        let unsigned = if plain && !negative {
            text.parse::<u64>().ok()
        } else {
            None
        };
        Ok(Number { value, unsigned })
    }

    fn digits(&mut self) -> Result<(), Stop> {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        match (self.pos - start, self.bytes.get(self.pos)) {
            (0, None) => Err(Stop::Incomplete),
            (0, Some(_)) => self.syntax("a digit must follow '.', 'e' or 'E'"),
            _ => Ok(()),
        }
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, usize> {
    std::str::from_utf8(bytes).map_err(|e| e.valid_up_to())
}

/// A byte as a user reads it in an error message.
pub(super) fn show(c: u8) -> String {
    if c.is_ascii_graphic() || c == b' ' {
        format!("{:?}", c as char)
    } else {
        format!("byte {c:#04x}")
    }
}
