//! The SenML CBOR writer: integer labels, the smallest exact form for
//! each number, a definite-length array for a pack and an indefinite one
//! for a stream.

use std::io::Write;

use crate::encode::{Framing, PackBuffer, RecordWriter, non_empty};
use crate::error::{Error, Reason, Result};
use crate::model::{FieldValue, Label};

use super::BREAK;

/// Writes records as a SenML CBOR pack or SensML stream.
pub(crate) struct CborWriter<W> {
    pack: PackBuffer<W>,
    framing: Framing,
    count: usize,
}

impl<W: Write> CborWriter<W> {
    pub(crate) fn new(out: W, framing: Framing) -> Self {
        let mut opening = Vec::with_capacity(9);
        match framing {
            Framing::Pack(Some(n)) => put_header(&mut opening, 4, n as u64),
            Framing::Stream => opening.push(0x9f),
            // The count goes in front once known: the pack is held until then.
            Framing::Pack(None) => {}
        }
        CborWriter {
            pack: PackBuffer::new(out, &opening),
            framing,
            count: 0,
        }
    }
}

fn put_header(buf: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    match arg {
        0..=23 => buf.push(m | arg as u8),
        24..=0xff => buf.extend_from_slice(&[m | 24, arg as u8]),
        0x100..=0xffff => {
            buf.push(m | 25);
            buf.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            buf.push(m | 26);
            buf.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            buf.push(m | 27);
            buf.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

fn put_label(buf: &mut Vec<u8>, label: Label) {
    let key = label.cbor();
    if key >= 0 {
        put_header(buf, 0, key as u64)
    } else {
        put_header(buf, 1, (-1 - i64::from(key)) as u64)
    }
}

/// The smallest exact form: an integer, else a single, else a double.
fn put_number(buf: &mut Vec<u8>, v: f64) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::input(Reason::Unencodable {
            format: "CBOR",
            why: format!("{v} is not a finite number"),
        }));
    }
    // Integers are exact in a double up to 2^53; past that, -1 - v would
    // round, so larger integral values are written as floats.
    let exact_integer = v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0;
    if exact_integer && !(v == 0.0 && v.is_sign_negative()) {
        let n = v as i64;
        if n >= 0 {
            put_header(buf, 0, n as u64);
        } else {
            put_header(buf, 1, (-1 - n) as u64);
        }
    } else if f64::from(v as f32) == v {
        buf.push(0xfa);
        buf.extend_from_slice(&(v as f32).to_bits().to_be_bytes());
    } else {
        buf.push(0xfb);
        buf.extend_from_slice(&v.to_bits().to_be_bytes());
    }
    Ok(())
}

fn put_text(buf: &mut Vec<u8>, major: u8, bytes: &[u8]) {
    put_header(buf, major, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

impl<W: Write> RecordWriter for CborWriter<W> {
    fn write_fields(&mut self, fields: &[(Label, FieldValue<'_>)]) -> Result<()> {
        if let Framing::Pack(Some(n)) = self.framing
            && self.count >= n
        {
            return Err(Error::input(Reason::Unencodable {
                format: "CBOR",
                why: "more records than announced".into(),
            }));
        }
        self.count += 1;
        let buf = &mut self.pack.buf;
        put_header(buf, 5, fields.len() as u64);
        for &(label, value) in fields {
            put_label(buf, label);
            match value {
                FieldValue::Unsigned(v) => put_header(buf, 0, v),
                FieldValue::Number(v) => put_number(buf, v)?,
                FieldValue::Text(s) => put_text(buf, 3, s.as_bytes()),
                FieldValue::Bool(b) => buf.push(if b { 0xf5 } else { 0xf4 }),
                FieldValue::Data(d) => put_text(buf, 2, d),
            }
        }
        if self.framing == Framing::Pack(None) {
            return Ok(());
        }
        self.pack.record_done()
    }

    fn finish(&mut self) -> Result<()> {
        non_empty(self.count)?;
        let mut prefix = Vec::with_capacity(9);
        match self.framing {
            Framing::Pack(Some(n)) if n != self.count => {
                return Err(Error::input(Reason::Unencodable {
                    format: "CBOR",
                    why: format!("{} records written, {n} announced", self.count),
                }));
            }
            Framing::Pack(Some(_)) => {}
            Framing::Pack(None) => put_header(&mut prefix, 4, self.count as u64),
            Framing::Stream => return self.pack.close(self.count, b"", &[BREAK]),
        }
        self.pack.close(self.count, &prefix, b"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbor::{header, number};

    #[test]
    fn numbers_take_the_smallest_exact_form() {
        let enc = |v: f64| {
            let mut b = Vec::new();
            put_number(&mut b, v).unwrap();
            b
        };
        assert_eq!(enc(10.0), [0x0a]);
        assert_eq!(enc(-5.0), [0x24]);
        assert_eq!(enc(1800.0), [0x19, 0x07, 0x08]);
        assert_eq!(enc(1.5)[0], 0xfa);
        assert_eq!(enc(120.1)[0], 0xfb);
        assert_eq!(enc(-0.0)[0], 0xfa, "negative zero keeps its sign");
        for v in [
            1.8e19,
            -1.8e19,
            1e300,
            0.1,
            -2.5,
            -1.0091184569555482e16,
            9007199254740993.0,
            -9007199254740992.0,
        ] {
            let b = enc(v);
            let mut pos = 0;
            let h = header(&b, &mut pos).ok().unwrap();
            assert_eq!(number(&b, &mut pos, h).ok().unwrap(), v);
        }
    }
}
