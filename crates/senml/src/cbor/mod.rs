//! SenML CBOR (RFC 8428 §6, RFC 8949): a streaming decoder and an encoder.
//!
//! Integer labels, definite and indefinite arrays and maps, integers,
//! half/single/double floats and decimal fractions (tag 4). As with JSON,
//! each record is first framed (its end found from the item headers), then
//! decoded from the complete slice.

mod write;

pub(crate) use write::CborWriter;

use std::borrow::Cow;

use crate::error::{Error, Reason, Result};
use crate::input::Input;
use crate::model::{Label, RawRecord, check_unknown_label};

/// Nesting allowed inside an unknown field's value before we call it hostile.
const MAX_DEPTH: usize = 64;

const BREAK: u8 = 0xff;
const SELF_DESCRIBED_TAG: u64 = 55799;

/// Why an item could not be read from the bytes at hand.
enum Short {
    /// More bytes are needed.
    Incomplete,
    /// The bytes are not well-formed CBOR.
    Malformed(String),
}

/// An item header: major type, argument, and whether the length is indefinite.
#[derive(Debug, Clone, Copy)]
struct Header {
    major: u8,
    arg: u64,
    indefinite: bool,
    /// The additional-information bits (to tell f16/f32/f64 apart).
    info: u8,
}

/// Reads a header at `bytes[*pos..]`, advancing `pos`. Always inlined: it
/// runs for every key and value, and its result must stay in registers.
#[inline(always)]
fn header(bytes: &[u8], pos: &mut usize) -> Result<Header, Short> {
    let initial = *bytes.get(*pos).ok_or(Short::Incomplete)?;
    let (major, info) = (initial >> 5, initial & 0x1f);
    let size = match info {
        0..=23 => 0,
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        31 if matches!(major, 2..=5 | 7) => {
            *pos += 1;
            return Ok(Header {
                major,
                arg: 0,
                indefinite: true,
                info,
            });
        }
        _ => return Err(reserved(initial)),
    };
    let arg_bytes = bytes
        .get(*pos + 1..*pos + 1 + size)
        .ok_or(Short::Incomplete)?;
    let arg = if size == 0 {
        u64::from(info)
    } else {
        arg_bytes.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
    };
    *pos += 1 + size;
    Ok(Header {
        major,
        arg,
        indefinite: false,
        info,
    })
}

#[cold]
fn reserved(initial: u8) -> Short {
    Short::Malformed(format!(
        "reserved additional information {} in initial byte {initial:#04x}",
        initial & 0x1f
    ))
}

/// Skips one complete item (of any type) at `bytes[*pos..]`.
fn skip_item(bytes: &[u8], pos: &mut usize, depth: usize) -> Result<(), Short> {
    if depth > MAX_DEPTH {
        return Err(Short::Malformed(format!(
            "items nested deeper than {MAX_DEPTH}"
        )));
    }
    let h = header(bytes, pos)?;
    match (h.major, h.indefinite) {
        (0 | 1, _) | (7, false) => Ok(()),
        (2 | 3, false) => skip_bytes(bytes, pos, h.arg),
        (2 | 3, true) => loop {
            if *bytes.get(*pos).ok_or(Short::Incomplete)? == BREAK {
                *pos += 1;
                return Ok(());
            }
            let chunk = header(bytes, pos)?;
            if chunk.major != h.major || chunk.indefinite {
                return Err(Short::Malformed(
                    "an indefinite-length string holds a chunk of another type".into(),
                ));
            }
            skip_bytes(bytes, pos, chunk.arg)?;
        },
        (4 | 5, false) => {
            let items = if h.major == 5 {
                h.arg.saturating_mul(2)
            } else {
                h.arg
            };
            for _ in 0..items {
                skip_item(bytes, pos, depth + 1)?;
            }
            Ok(())
        }
        (4 | 5, true) => loop {
            if *bytes.get(*pos).ok_or(Short::Incomplete)? == BREAK {
                *pos += 1;
                return Ok(());
            }
            skip_item(bytes, pos, depth + 1)?;
            if h.major == 5 {
                skip_item(bytes, pos, depth + 1)?;
            }
        },
        (6, _) => skip_item(bytes, pos, depth + 1),
        (7, true) => Err(Short::Malformed("unexpected break".into())),
        _ => unreachable!("major types are 3 bits"),
    }
}

fn skip_bytes(bytes: &[u8], pos: &mut usize, len: u64) -> Result<(), Short> {
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| pos.checked_add(len))
        .ok_or(Short::Incomplete)?;
    if end > bytes.len() {
        return Err(Short::Incomplete);
    }
    *pos = end;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Start,
    /// Inside the pack array: how many records remain (`None`: indefinite).
    Records(Option<u64>),
    Done,
}

/// Decodes the records of a SenML CBOR pack one by one.
pub(crate) struct CborDecoder<I> {
    input: I,
    state: State,
    index: usize,
}

impl<I: Input> CborDecoder<I> {
    pub(crate) fn new(input: I) -> Self {
        CborDecoder {
            input,
            state: State::Start,
            index: 0,
        }
    }

    /// Runs `read` on the unconsumed bytes until it has enough of them.
    fn framed<T>(
        &mut self,
        mut read: impl FnMut(&[u8], &mut usize) -> Result<T, Short>,
    ) -> Result<(T, usize)> {
        loop {
            let mut pos = 0;
            match read(self.input.rest(), &mut pos) {
                Ok(value) => return Ok((value, pos)),
                Err(Short::Incomplete) => {
                    if !self.input.refill()? {
                        self.state = State::Done;
                        return Err(Error::input(Reason::Truncated {
                            offset: self.input.offset_of(self.input.buffer().len()),
                        }));
                    }
                }
                Err(Short::Malformed(message)) => {
                    self.state = State::Done;
                    let reason = Reason::Syntax {
                        format: "CBOR",
                        offset: self.input.offset_of(self.input.pos() + pos),
                        message,
                    };
                    return Err(Error {
                        record: (self.index > 0).then_some(self.index),
                        field: None,
                        reason,
                    });
                }
            }
        }
    }

    fn advance(&mut self, n: usize) {
        self.input.set_pos(self.input.pos() + n);
    }

    /// Runs `f` on the next record where it was decoded (no copy of the
    /// record); `None` after the last one.
    #[inline]
    pub(crate) fn next_with<'s, T>(
        &'s mut self,
        f: impl FnOnce(&RawRecord<'s>) -> T,
    ) -> Result<Option<T>> {
        if self.state == State::Start {
            let (h, n) = self.framed(|bytes, pos| {
                let mut h = header(bytes, pos)?;
                if h.major == 6 && h.arg == SELF_DESCRIBED_TAG {
                    h = header(bytes, pos)?;
                }
                Ok(h)
            })?;
            self.advance(n);
            if h.major != 4 {
                self.state = State::Done;
                return Err(Error::input(Reason::NotAPack(format!(
                    "a SenML CBOR pack is an array of records, but the input starts with {}",
                    describe(h)
                ))));
            }
            self.state = State::Records((!h.indefinite).then_some(h.arg));
        }
        let remaining = match self.state {
            State::Done => return Ok(None),
            State::Records(remaining) => remaining,
            State::Start => unreachable!("handled above"),
        };
        let at_end = match remaining {
            Some(n) => n == 0,
            None => {
                let (is_break, _) = self.framed(|bytes, _| {
                    bytes.first().map(|&b| b == BREAK).ok_or(Short::Incomplete)
                })?;
                if is_break {
                    self.advance(1);
                }
                is_break
            }
        };
        if at_end {
            self.state = State::Done;
            if self.input.pos() < self.input.buffer().len() || self.input.refill()? {
                let offset = self.input.offset_of(self.input.pos());
                return Err(Error::input(Reason::Syntax {
                    format: "CBOR",
                    offset,
                    message: "bytes after the end of the pack".into(),
                }));
            }
            return if self.index == 0 {
                Err(Error::input(Reason::EmptyPack))
            } else {
                Ok(None)
            };
        }
        if !self.input.is_whole() {
            // Bring the whole record into the buffer before decoding it. On
            // malformed bytes or at the end of the input the decoder still
            // runs on what there is, so that a stream fails exactly as the
            // same bytes in memory do.
            while let Err(Short::Incomplete) = skip_item(self.input.rest(), &mut 0, 0) {
                if !self.input.refill()? {
                    break;
                }
            }
        }
        let index = self.index;
        self.index += 1;
        self.state = State::Records(remaining.map(|n| n - 1));
        let start = self.input.pos();
        let mut record = RawRecord::default();
        match decode_record(&self.input.buffer()[start..], index, &mut record) {
            Ok((problem, len)) => {
                self.input.set_pos(start + len);
                match problem {
                    None => Ok(Some(f(&record))),
                    Some(e) => Err(e),
                }
            }
            Err(Short::Incomplete) => {
                self.state = State::Done;
                Err(Error::input(Reason::Truncated {
                    offset: self.input.offset_of(self.input.buffer().len()),
                }))
            }
            Err(Short::Malformed(message)) => {
                self.state = State::Done;
                Err(Error::in_record(
                    index,
                    Reason::Syntax {
                        format: "CBOR",
                        offset: self.input.offset_of(start),
                        message,
                    },
                ))
            }
        }
    }
}

fn describe(h: Header) -> String {
    match h.major {
        0 | 1 => "an integer".into(),
        2 => "a byte string".into(),
        3 => "a text string".into(),
        4 => "an array".into(),
        5 => "a map".into(),
        6 => format!("tag {}", h.arg),
        _ => match h.info {
            20 | 21 => "a boolean".into(),
            22 => "null".into(),
            23 => "undefined".into(),
            25..=27 => "a float".into(),
            _ => "a simple value".into(),
        },
    }
}

/// Decodes the record at the start of `bytes` into `record` (which starts
/// empty). Returns the record's first field error, if any, and the bytes it
/// took: a bad field's value is skipped, so decoding can go on after it.
#[inline]
fn decode_record<'a>(
    bytes: &'a [u8],
    index: usize,
    record: &mut RawRecord<'a>,
) -> Result<(Option<Error>, usize), Short> {
    let mut pos = 0;
    let h = header(bytes, &mut pos)?;
    if h.major != 5 {
        pos = 0;
        skip_item(bytes, &mut pos, 0)?;
        let reason = Reason::WrongType {
            expected: "a map",
            found: describe(h),
        };
        return Ok((Some(Error::in_record(index, reason)), pos));
    }
    // Keys and values sit at depth 1, under the record's map, as when the
    // record was framed: both must find a hostile nesting at the same byte.
    let mut problem: Option<Error> = None;
    let mut seen = 0u16;
    let mut remaining = h.arg;
    loop {
        if h.indefinite {
            if *bytes.get(pos).ok_or(Short::Incomplete)? == BREAK {
                pos += 1;
                break;
            }
        } else if remaining == 0 {
            break;
        } else {
            remaining -= 1;
        }
        let key_start = pos;
        let key = header(bytes, &mut pos)?;
        let label = match key.major {
            0 => i64::try_from(key.arg).ok().and_then(Label::from_cbor),
            1 => i64::try_from(key.arg)
                .ok()
                .and_then(|n| Label::from_cbor(-1 - n)),
            3 if !key.indefinite => {
                let start = pos;
                skip_bytes(bytes, &mut pos, key.arg)?;
                match std::str::from_utf8(&bytes[start..pos]) {
                    Ok(name) => {
                        if let Err(reason) = check_unknown_label(name) {
                            problem.get_or_insert(Error::in_field(index, name, reason));
                        }
                        Label::from_name(name)
                    }
                    Err(_) => {
                        let reason = Reason::WrongType {
                            expected: "a UTF-8 label",
                            found: "invalid UTF-8".into(),
                        };
                        problem.get_or_insert(Error::in_record(index, reason));
                        None
                    }
                }
            }
            _ => {
                pos = key_start;
                skip_item(bytes, &mut pos, 1)?;
                let reason = Reason::WrongType {
                    expected: "an integer or text label",
                    found: describe(key),
                };
                problem.get_or_insert(Error::in_record(index, reason));
                None
            }
        };
        let value_start = pos;
        let Some(label) = label else {
            skip_item(bytes, &mut pos, 1)?;
            continue;
        };
        let bit = 1u16 << (label.cbor() + 6);
        let result = if seen & bit != 0 {
            Err(Reason::DuplicateField)
        } else {
            seen |= bit;
            field(bytes, &mut pos, label, record)?
        };
        if let Err(reason) = result {
            problem.get_or_insert(Error::in_field(index, label.as_str(), reason));
            pos = value_start;
            skip_item(bytes, &mut pos, 1)?;
        }
    }
    Ok((problem, pos))
}

/// Reads the value of a known field into `record`. The outer error means
/// the bytes end or are not CBOR; the inner one that the value is wrong.
#[inline]
fn field<'a>(
    bytes: &'a [u8],
    pos: &mut usize,
    label: Label,
    record: &mut RawRecord<'a>,
) -> Result<Result<(), Reason>, Short> {
    let vh = header(bytes, pos)?;
    let wrong = |expected, found| Ok(Err(Reason::WrongType { expected, found }));
    match label {
        Label::BaseVersion => match vh.major {
            0 => record.base_version = Some(vh.arg),
            _ => return wrong("an unsigned integer", describe(vh)),
        },
        Label::BaseName | Label::BaseUnit | Label::Name | Label::Unit | Label::StringValue => {
            match text(bytes, pos, vh)? {
                Ok(s) => record.set_text(label, Cow::Borrowed(s)),
                Err(reason) => return Ok(Err(reason)),
            }
        }
        Label::DataValue => {
            if vh.major != 2 || vh.indefinite {
                let found = if vh.major == 2 {
                    "an indefinite-length byte string".into()
                } else {
                    describe(vh)
                };
                return wrong("a definite-length byte string", found);
            }
            let start = *pos;
            skip_bytes(bytes, pos, vh.arg)?;
            record.data_value = Some(Cow::Borrowed(&bytes[start..*pos]));
        }
        Label::BoolValue => match (vh.major, vh.info) {
            (7, 20) => record.bool_value = Some(false),
            (7, 21) => record.bool_value = Some(true),
            _ => return wrong("a boolean", describe(vh)),
        },
        _ => {
            // A malformed decimal fraction reads as a wrong value here; the
            // caller's skip of the value then finds the real problem.
            let v = match number(bytes, pos, vh) {
                Ok(v) => v,
                Err(reason) => return Ok(Err(reason)),
            };
            record.set_number(label, v);
        }
    }
    Ok(Ok(()))
}

/// A definite-length text string whose header was just read.
#[inline]
fn text<'a>(bytes: &'a [u8], pos: &mut usize, h: Header) -> Result<Result<&'a str, Reason>, Short> {
    if h.major != 3 || h.indefinite {
        let found = if h.major == 3 {
            "an indefinite-length text string".into()
        } else {
            describe(h)
        };
        return Ok(Err(Reason::WrongType {
            expected: "a definite-length text string",
            found,
        }));
    }
    let start = *pos;
    skip_bytes(bytes, pos, h.arg)?;
    Ok(
        std::str::from_utf8(&bytes[start..*pos]).map_err(|e| Reason::WrongType {
            expected: "UTF-8 text",
            found: format!("invalid UTF-8 at byte {} of the string", e.valid_up_to()),
        }),
    )
}

/// A number (integer, float, or decimal fraction) whose header was just read.
#[inline]
fn number(bytes: &[u8], pos: &mut usize, h: Header) -> Result<f64, Reason> {
    let wrong = |found| Reason::WrongType {
        expected: "a number",
        found,
    };
    let v = match (h.major, h.info) {
        (0, _) => h.arg as f64,
        (1, _) => -1.0 - h.arg as f64,
        (7, 25) => f16_to_f64(h.arg as u16),
        (7, 26) => f64::from(f32::from_bits(h.arg as u32)),
        (7, 27) => f64::from_bits(h.arg),
        (6, 4) => decimal_fraction(bytes, pos)?,
        _ => return Err(wrong(describe(h))),
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Reason::NotFinite(v.to_string()))
    }
}

/// Tag 4: `[exponent, mantissa]`, value = mantissa × 10^exponent, read
/// through the decimal text so that the double is correctly rounded.
fn decimal_fraction(bytes: &[u8], pos: &mut usize) -> Result<f64, Reason> {
    let wrong = |found: String| Reason::WrongType {
        expected: "a decimal fraction [exponent, mantissa]",
        found,
    };
    let malformed = |_| wrong("a malformed item".into());
    let array = header(bytes, pos).map_err(malformed)?;
    if array.major != 4 || array.indefinite || array.arg != 2 {
        return Err(wrong(describe(array)));
    }
    let mut int = |what: &str| -> Result<i128, Reason> {
        let h = header(bytes, pos).map_err(malformed)?;
        match h.major {
            0 => Ok(i128::from(h.arg)),
            1 => Ok(-1 - i128::from(h.arg)),
            6 if (h.arg == 2 || h.arg == 3) && what == "mantissa" => {
                let b = header(bytes, pos).map_err(malformed)?;
                if b.major != 2 || b.indefinite || b.arg > 15 {
                    return Err(wrong("a bignum mantissa longer than 15 bytes".into()));
                }
                let start = *pos;
                skip_bytes(bytes, pos, b.arg).map_err(malformed)?;
                let n = bytes[start..*pos]
                    .iter()
                    .fold(0i128, |a, &d| (a << 8) | i128::from(d));
                Ok(if h.arg == 2 { n } else { -1 - n })
            }
            _ => Err(wrong(format!("{} as {what}", describe(h)))),
        }
    };
    let exponent = int("exponent")?;
    let mantissa = int("mantissa")?;
    let v: f64 = format!("{mantissa}e{exponent}")
        .parse()
        .map_err(|_| wrong("an unreadable value".into()))?;
    Ok(v)
}

/// IEEE 754 half precision to double.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    sign * match exponent {
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_decode() {
        assert_eq!(f16_to_f64(0x3e00), 1.5);
        assert_eq!(f16_to_f64(0xc400), -4.0);
        assert_eq!(f16_to_f64(0x0001), 5.960464477539063e-8);
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
        assert!(f16_to_f64(0x7c00).is_infinite());
        assert!(f16_to_f64(0x7e00).is_nan());
    }
}
