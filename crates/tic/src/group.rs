//! One group (LF … CR): its checks and its typed value.

use std::borrow::Cow;
use std::fmt;

use crate::labels::{Content, kind_of};
use crate::{GroupError, Horodate, Mode, Reason, Unit, checksum};

/// The longest group accepted between LF and CR, in bytes. The longest
/// the reference gives (PJOURF+1: 8 + 1 + 98 + 2) is well under it.
pub const MAX_GROUP_LEN: usize = 256;

/// One decoded group: a label, its typed value and unit, its horodate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The label as written (borrowed from the label table when known).
    pub label: Cow<'static, str>,
    /// The value, typed by the label.
    pub value: Value,
    /// The unit of the value, for labels that carry a quantity.
    pub unit: Option<Unit>,
    /// The group's horodate (standard mode only).
    pub horodate: Option<Horodate>,
}

/// A group's value, typed by its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A number: an index, a power, a current, a voltage, a count.
    Integer(u64),
    /// Text a known label carries: a tariff period (PTEC, LTARF, NGTF), an
    /// identifier (ADCO, ADSC, PRM), a message.
    Text(String),
    /// The STGE status register.
    Status(Status),
    /// No data (DATE, whose content is its horodate).
    Empty,
    /// The data of a label this crate does not know, as written.
    Raw(String),
}

impl Value {
    /// The number, if the value is one.
    pub fn integer(&self) -> Option<u64> {
        match self {
            Value::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// The text, if the value is text (known or raw).
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(s) | Value::Raw(s) => Some(s),
            _ => None,
        }
    }
}

/// The STGE status register (standard mode), 32 bits written as 8
/// hexadecimal digits.
///
/// The meaning of its bits is Enedis's (Enedis-NOI-CPT_54E); the project's
/// reference does not list them, so only the raw bits are offered here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u32);

impl Status {
    /// Bit `n` (0 is the least significant); `false` past bit 31.
    pub fn bit(self, n: u32) -> bool {
        n < 32 && self.0 >> n & 1 == 1
    }

    /// `width` bits from bit `shift` up, as a number; 0 when out of range.
    pub fn field(self, shift: u32, width: u32) -> u32 {
        if shift >= 32 || width == 0 {
            return 0;
        }
        let mask = if width >= 32 {
            u32::MAX
        } else {
            (1 << width) - 1
        };
        self.0 >> shift & mask
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}", self.0)
    }
}

/// Decodes a group's bytes between LF and CR. `locked` is the stream's
/// mode, if one is known: a group of the other mode is refused.
pub(crate) fn parse(content: &[u8], locked: Option<Mode>) -> Result<(Mode, Group), GroupError> {
    let mode = if content.contains(&b'\t') {
        Mode::Standard
    } else {
        Mode::Historic
    };
    let sep = mode.separator();
    let fail = |reason| GroupError {
        label: label_of(content),
        reason,
    };
    if content.len() > MAX_GROUP_LEN {
        return Err(fail(Reason::TooLong {
            len: content.len(),
            max: MAX_GROUP_LEN,
        }));
    }
    if let Some(at) = content
        .iter()
        .position(|&b| !(b == b'\t' || (0x20..=0x7E).contains(&b)))
    {
        return Err(fail(Reason::BadByte {
            byte: content[at],
            at,
        }));
    }
    if let Some(locked) = locked.filter(|&l| l != mode) {
        return Err(fail(Reason::ModeMismatch {
            locked,
            found: mode,
        }));
    }
    let [body @ .., before, found] = content else {
        return Err(fail(Reason::TooShort { len: content.len() }));
    };
    if body.is_empty() {
        return Err(fail(Reason::TooShort { len: content.len() }));
    }
    if *before != sep {
        return Err(fail(Reason::NoChecksumSeparator(mode)));
    }
    let covered = match mode {
        Mode::Historic => body,
        Mode::Standard => &content[..content.len() - 1],
    };
    let expected = checksum(covered);
    if *found != expected {
        return Err(fail(Reason::Checksum {
            expected: char::from(expected),
            found: char::from(*found),
        }));
    }
    let (label, horodate, data) = split(body, mode).map_err(fail)?;
    if label.is_empty() {
        return Err(fail(Reason::EmptyLabel));
    }
    let horodate = horodate.map(Horodate::parse).transpose().map_err(fail)?;
    let group = typed(label, horodate, data).map_err(fail)?;
    Ok((mode, group))
}

/// The bytes of a group before its first separator (HT if it has one,
/// else SP), as text, to name it in an error; `None` if there are none.
pub(crate) fn label_of(content: &[u8]) -> Option<String> {
    let sep = if content.contains(&b'\t') {
        b'\t'
    } else {
        b' '
    };
    content
        .split(|&b| b == sep)
        .next()
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
}

/// A group's label, horodate and data.
type Fields<'a> = (&'a [u8], Option<&'a [u8]>, &'a [u8]);

/// Splits a group's body (checksum and its separator removed) into label,
/// horodate and data.
fn split(body: &[u8], mode: Mode) -> Result<Fields<'_>, Reason> {
    let sep = mode.separator();
    let Some(first) = body.iter().position(|&b| b == sep) else {
        return Err(Reason::NoSeparator(mode));
    };
    let (label, rest) = (&body[..first], &body[first + 1..]);
    match mode {
        // Historic data runs to the separator before the checksum, spaces
        // included.
        Mode::Historic => Ok((label, None, rest)),
        Mode::Standard => match rest.iter().position(|&b| b == sep) {
            None => Ok((label, None, rest)),
            Some(second) => {
                let data = &rest[second + 1..];
                if data.contains(&sep) {
                    let found = 2 + data.iter().filter(|&&b| b == sep).count() + 1;
                    return Err(Reason::FieldCount { found });
                }
                Ok((label, Some(&rest[..second]), data))
            }
        },
    }
}

/// Types a group's data by its label. The bytes are printable ASCII
/// (checked by `parse`), so they are UTF-8.
fn typed(label: &[u8], horodate: Option<Horodate>, data: &[u8]) -> Result<Group, Reason> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let Some(kind) = kind_of(label) else {
        return Ok(Group {
            label: Cow::Owned(text(label)),
            value: Value::Raw(text(data)),
            unit: None,
            horodate,
        });
    };
    let wrong = |expected| Reason::Value {
        expected,
        found: text(data),
    };
    let value = match kind.content {
        Content::Integer { .. } => {
            Value::Integer(integer(data).ok_or_else(|| wrong("decimal digits that fit 64 bits"))?)
        }
        Content::Text => Value::Text(text(data)),
        Content::Digits { digits } => {
            if data.len() != usize::from(digits) || !data.iter().all(u8::is_ascii_digit) {
                return Err(wrong("14 decimal digits"));
            }
            Value::Text(text(data))
        }
        Content::Status => {
            if data.len() != 8 {
                return Err(wrong("8 hexadecimal digits"));
            }
            let bits = data
                .iter()
                .try_fold(0u32, |acc, &b| Some(acc << 4 | char::from(b).to_digit(16)?));
            Value::Status(Status(bits.ok_or_else(|| wrong("8 hexadecimal digits"))?))
        }
        Content::Empty => {
            if !data.is_empty() {
                return Err(wrong("empty"));
            }
            Value::Empty
        }
    };
    Ok(Group {
        label: Cow::Borrowed(kind.label),
        value,
        unit: kind.unit,
        horodate,
    })
}

/// 1 to 20 decimal digits that fit a `u64`.
fn integer(data: &[u8]) -> Option<u64> {
    if data.is_empty() || data.len() > 20 {
        return None;
    }
    data.iter().try_fold(0u64, |acc, &b| {
        let d = b.wrapping_sub(b'0');
        if d >= 10 {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(content: &[u8]) -> Reason {
        parse(content, None).unwrap_err().reason
    }

    #[test]
    fn a_historic_group_is_typed_by_its_label() {
        let (mode, g) = parse(b"PAPP 01250 )", None).unwrap();
        assert_eq!(mode, Mode::Historic);
        assert_eq!(g.label, "PAPP");
        assert_eq!(g.value, Value::Integer(1250));
        assert_eq!(g.unit, Some(Unit::VoltAmpere));
        assert_eq!(g.horodate, None);
    }

    #[test]
    fn the_checksum_may_be_a_space_in_historic_mode() {
        // "HCHC 000000899" sums to 768, and 768 & 0x3F = 0: the checksum
        // is SP.
        assert_eq!(checksum(b"HCHC 000000899"), b' ');
        let (_, g) = parse(b"HCHC 000000899  ", None).unwrap();
        assert_eq!(g.value, Value::Integer(899));
    }

    #[test]
    fn a_standard_group_carries_its_horodate() {
        let (mode, g) = parse(b"SMAXSN\tE240701120000\t05120\t#", None).unwrap();
        assert_eq!(mode, Mode::Standard);
        assert_eq!(g.value, Value::Integer(5120));
        assert_eq!(g.horodate.map(|h| h.unix_seconds()), Some(1_719_828_000));
    }

    #[test]
    fn each_refusal_names_the_label_and_the_reason() {
        let e = parse(b"PAPP 01250 +", None).unwrap_err();
        assert_eq!(e.label.as_deref(), Some("PAPP"));
        assert_eq!(
            e.reason,
            Reason::Checksum {
                expected: ')',
                found: '+'
            }
        );
        assert_eq!(
            e.to_string(),
            "group PAPP: checksum is '+', the group's bytes give ')'"
        );

        assert_eq!(
            reason(b"PAPP 01250)"),
            Reason::NoChecksumSeparator(Mode::Historic)
        );
        assert_eq!(reason(b"P"), Reason::TooShort { len: 1 });
        assert_eq!(reason(b"PAPP\x01 0 *"), Reason::BadByte { byte: 1, at: 4 });
        assert!(matches!(reason(b"PAPP 0125x Z"), Reason::Checksum { .. }));
        let e = parse(b"PAPP\t01250\t\t", Some(Mode::Historic)).unwrap_err();
        assert_eq!(
            e.reason,
            Reason::ModeMismatch {
                locked: Mode::Historic,
                found: Mode::Standard
            }
        );
    }

    #[test]
    fn data_that_is_not_what_the_label_carries_is_refused() {
        // Checksums computed, so that only the data is wrong.
        let group = |body: &str| {
            let mut g = body.as_bytes().to_vec();
            let standard = g.contains(&b'\t');
            let c = checksum(&g[..g.len() - usize::from(!standard)]);
            g.push(c);
            g
        };
        assert_eq!(
            reason(&group("PAPP 12A45 ")[..]).to_string(),
            "data \"12A45\" is not decimal digits that fit 64 bits"
        );
        assert!(matches!(
            reason(&group("PRM\t1234\t")),
            Reason::Value {
                expected: "14 decimal digits",
                ..
            }
        ));
        assert!(matches!(
            reason(&group("STGE\t0001G000\t")),
            Reason::Value { .. }
        ));
        assert!(matches!(
            reason(&group("DATE\tE240101000000\tX\t")),
            Reason::Value {
                expected: "empty",
                ..
            }
        ));
        assert!(matches!(
            reason(&group("A\tB\tC\tD\t")),
            Reason::FieldCount { found: 4 }
        ));
        assert!(matches!(reason(&group("\t1\t")), Reason::EmptyLabel));
        assert!(matches!(
            reason(&group("UMOY1\tX240101000000\t230\t")),
            Reason::Horodate { .. }
        ));
    }

    #[test]
    fn an_unknown_label_is_kept_raw() {
        let mut g = b"XYZZY\tplugh 2\t".to_vec();
        g.push(checksum(&g));
        let (_, g) = parse(&g, None).unwrap();
        assert_eq!(g.value, Value::Raw("plugh 2".into()));
        assert_eq!(g.unit, None);
    }

    #[test]
    fn status_bits_read_from_the_hex() {
        let s = Status(0x0030_4A01);
        assert!(s.bit(0));
        assert!(!s.bit(1));
        assert!(!s.bit(40));
        assert_eq!(s.field(10, 4), 0x2);
        assert_eq!(s.field(0, 32), 0x0030_4A01);
        assert_eq!(s.to_string(), "00304A01");
    }
}
