//! Writing TIC: the checksum, groups and frames, as a meter sends them.
//!
//! The decoder's tests and a simulated meter use it; a group written here
//! decodes back to itself.

use crate::labels::{Content, kind_of};
use crate::{EncodeError, Group, Horodate, Mode, Value};

/// Start of a frame.
pub const STX: u8 = 0x02;
/// End of a frame.
pub const ETX: u8 = 0x03;
/// A frame interrupted.
pub const EOT: u8 = 0x04;
/// Start of a group.
pub const LF: u8 = 0x0A;
/// End of a group.
pub const CR: u8 = 0x0D;

/// The TIC checksum of `covered`: (sum of the bytes & 0x3F) + 0x20.
///
/// What is covered depends on the mode: in historic mode the label, the
/// separator and the data; in standard mode also the horodate and its
/// separator, and the separator before the checksum.
///
/// ```
/// // The reference's check: the group `SINSTS1\t00664\t` has checksum `G`.
/// assert_eq!(tic::checksum(b"SINSTS1\t00664\t"), b'G');
/// ```
pub fn checksum(covered: &[u8]) -> u8 {
    (covered.iter().fold(0u8, |sum, &b| sum.wrapping_add(b)) & 0x3F) + 0x20
}

/// Appends one group, LF to CR, with its checksum. Nothing is checked: a
/// label or data holding a separator gives a group that does not decode
/// back (tests use this to write broken groups).
pub fn write_group(
    out: &mut Vec<u8>,
    mode: Mode,
    label: &[u8],
    horodate: Option<&Horodate>,
    data: &[u8],
) {
    let sep = mode.separator();
    out.push(LF);
    let start = out.len();
    out.extend_from_slice(label);
    out.push(sep);
    if let Some(h) = horodate {
        h.write(out);
        out.push(sep);
    }
    out.extend_from_slice(data);
    if mode == Mode::Standard {
        out.push(sep);
    }
    let sum = checksum(&out[start..]);
    if mode == Mode::Historic {
        out.push(sep);
    }
    out.push(sum);
    out.push(CR);
}

/// Appends a decoded group, written as a meter writes it (numbers
/// zero-padded to their label's width), or says why it cannot be written
/// in `mode` so that it decodes back to itself.
pub fn encode_group(out: &mut Vec<u8>, mode: Mode, group: &Group) -> Result<(), EncodeError> {
    let label = group.label.as_bytes();
    let sep = mode.separator();
    let printable = |b: &u8| (0x20..=0x7E).contains(b);
    if label.is_empty() || !label.iter().all(|b| printable(b) && *b != sep) {
        return Err(EncodeError::Label {
            label: group.label.to_string(),
        });
    }
    if mode == Mode::Historic && group.horodate.is_some() {
        return Err(EncodeError::HorodateInHistoric {
            label: group.label.to_string(),
        });
    }
    let kind = kind_of(label);
    let wrong = || EncodeError::Kind {
        label: group.label.to_string(),
        value: format!("{:?}", group.value),
    };
    let mut number = [0u8; 20];
    let data: &[u8] = match (&group.value, kind.map(|k| k.content)) {
        (Value::Integer(n), Some(Content::Integer { digits })) => padded(*n, digits, &mut number),
        (Value::Text(s), Some(Content::Text)) => s.as_bytes(),
        (Value::Text(s), Some(Content::Digits { digits }))
            if s.len() == usize::from(digits) && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.as_bytes()
        }
        (Value::Status(s), Some(Content::Status)) => {
            let text = s.to_string();
            number[..8].copy_from_slice(text.as_bytes());
            &number[..8]
        }
        (Value::Empty, Some(Content::Empty)) => b"",
        (Value::Raw(s), None) => s.as_bytes(),
        _ => return Err(wrong()),
    };
    if group.unit != kind.and_then(|k| k.unit) {
        return Err(wrong());
    }
    // Standard data may hold spaces; historic data may too (it runs to the
    // last separator), but never a tab, which would make it standard.
    if !data.iter().all(|b| printable(b) && *b != b'\t') {
        return Err(EncodeError::Data {
            label: group.label.to_string(),
            data: String::from_utf8_lossy(data).into_owned(),
        });
    }
    write_group(out, mode, label, group.horodate.as_ref(), data);
    Ok(())
}

/// A whole frame, STX to ETX.
pub fn encode_frame(mode: Mode, groups: &[Group]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(groups.len() * 24 + 2);
    out.push(STX);
    for g in groups {
        encode_group(&mut out, mode, g)?;
    }
    out.push(ETX);
    Ok(out)
}

/// `n` in decimal, zero-padded to `width` digits (wider if it must be).
fn padded(n: u64, width: u8, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    while buf.len() - i < usize::from(width) && i > 0 {
        i -= 1;
        buf[i] = b'0';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_checksum_example_holds() {
        // reference/sources.md: `SINSTS1\t00664\t` has checksum `G`.
        assert_eq!(checksum(b"SINSTS1\t00664\t"), b'G');
        let mut out = Vec::new();
        write_group(&mut out, Mode::Standard, b"SINSTS1", None, b"00664");
        assert_eq!(out, b"\nSINSTS1\t00664\tG\r");
    }

    #[test]
    fn historic_mode_leaves_the_last_separator_out_of_the_sum() {
        let mut out = Vec::new();
        write_group(&mut out, Mode::Historic, b"PAPP", None, b"01250");
        // 'P'+'A'+'P'+'P'+' '+"01250" = 0x249; & 0x3F = 0x09; + 0x20 = ')'.
        assert_eq!(out, b"\nPAPP 01250 )\r");
    }

    #[test]
    fn numbers_are_padded_to_their_label_s_width() {
        let mut buf = [0u8; 20];
        assert_eq!(padded(664, 5, &mut buf), b"00664");
        assert_eq!(padded(123_456, 5, &mut buf), b"123456");
        assert_eq!(padded(0, 1, &mut buf), b"0");
        assert_eq!(padded(u64::MAX, 9, &mut buf), b"18446744073709551615");
    }
}
