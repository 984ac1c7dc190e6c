//! Properties of the decoder over generated frames: what is encoded
//! decodes back identically whatever the chunking; a byte changed in a
//! group drops that group only; no input panics.

use std::borrow::Cow;

use proptest::prelude::*;
use tic::labels::{Content, KNOWN};
use tic::{Decoder, Frame, Group, Horodate, Mode, Season, Status, Value, decode, encode_frame};

fn horodate() -> impl Strategy<Value = Horodate> {
    (
        any::<bool>(),
        any::<bool>(),
        2000u16..2100,
        1u8..13,
        1u8..29,
        0u8..24,
        0u8..60,
        0u8..60,
    )
        .prop_map(
            |(summer, degraded, year, month, day, hour, minute, second)| Horodate {
                season: if summer {
                    Season::Summer
                } else {
                    Season::Winter
                },
                degraded,
                year,
                month,
                day,
                hour,
                minute,
                second,
            },
        )
}

/// Text a group may carry: printable ASCII, spaces included.
const TEXT: &str = "[ -~]{0,24}";

fn group(mode: Mode) -> impl Strategy<Value = Group> {
    let known = (
        0..KNOWN.len(),
        any::<u64>(),
        TEXT,
        "[0-9]{14}",
        any::<u32>(),
    )
        .prop_map(|(i, n, text, digits, bits)| {
            let kind = &KNOWN[i];
            let value = match kind.content {
                Content::Integer { .. } => Value::Integer(n),
                Content::Text => Value::Text(text),
                Content::Digits { .. } => Value::Text(digits),
                Content::Status => Value::Status(Status(bits)),
                Content::Empty => Value::Empty,
            };
            Group {
                label: Cow::Borrowed(kind.label),
                value,
                unit: kind.unit,
                horodate: None,
            }
        });
    let unknown = ("[A-Z][A-Za-z0-9+-]{0,8}", TEXT)
        .prop_filter("a known label", |(l, _)| {
            tic::labels::kind_of(l.as_bytes()).is_none()
        })
        .prop_map(|(label, text)| Group {
            label: Cow::Owned(label),
            value: Value::Raw(text),
            unit: None,
            horodate: None,
        });
    (
        prop_oneof![3 => known, 1 => unknown],
        proptest::option::of(horodate()),
    )
        .prop_map(move |(mut g, h)| {
            if mode == Mode::Standard {
                g.horodate = h;
            }
            g
        })
}

fn frames() -> impl Strategy<Value = (Mode, Vec<Vec<Group>>)> {
    prop_oneof![Just(Mode::Historic), Just(Mode::Standard)].prop_flat_map(|mode| {
        (
            Just(mode),
            prop::collection::vec(prop::collection::vec(group(mode), 0..12), 1..4),
        )
    })
}

fn encode_all(mode: Mode, frames: &[Vec<Group>]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|groups| encode_frame(mode, groups).unwrap())
        .collect()
}

/// Decodes `bytes` cut at `cuts` (positions taken modulo the length).
fn decode_chunked(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    let mut from = 0;
    for to in cuts {
        decoder.feed(&bytes[from..to], |f| out.push(f));
        from = to;
    }
    out.extend(decoder.finish());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn what_is_encoded_decodes_back_whatever_the_chunking(
        (mode, frames) in frames(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let bytes = encode_all(mode, &frames);
        let decoded = decode_chunked(&bytes, &cuts);
        prop_assert_eq!(decoded.len(), frames.len());
        for (got, sent) in decoded.iter().zip(&frames) {
            prop_assert!(got.is_complete());
            prop_assert_eq!(got.dropped, 0, "{:?}", got.errors);
            prop_assert_eq!(&got.groups, sent);
            if !sent.is_empty() {
                prop_assert_eq!(got.mode, Some(mode));
            }
        }
    }

    #[test]
    fn a_byte_changed_in_a_group_drops_that_group_only(
        (mode, groups) in frames().prop_map(|(m, f)| (m, f.concat())).prop_filter("no group", |(_, g)| !g.is_empty()),
        pick in any::<usize>(),
        at in any::<usize>(),
        new in any::<u8>(),
    ) {
        let victim = pick % groups.len();
        let mut bytes = vec![tic::STX];
        let mut span = (0, 0);
        for (i, g) in groups.iter().enumerate() {
            let start = bytes.len() + 1; // after the LF
            tic::encode_group(&mut bytes, mode, g).unwrap();
            if i == victim {
                span = (start, bytes.len() - 1); // before the CR
            }
        }
        bytes.push(tic::ETX);
        let at = span.0 + at % (span.1 - span.0);
        let old = bytes[at];
        let printable = new == b'\t' || (0x20..=0x7E).contains(&new);
        // Framing bytes end the group another way; and a change by a
        // multiple of 64 is one the TIC checksum cannot see.
        prop_assume!(![tic::STX, tic::ETX, tic::EOT, tic::LF, tic::CR].contains(&new));
        prop_assume!(new != old && (!printable || (i16::from(new) - i16::from(old)) % 64 != 0));
        bytes[at] = new;

        let f = decode(&bytes);
        prop_assert_eq!(f.len(), 1);
        prop_assert_eq!(f[0].dropped, 1, "{:?}", f[0].groups.get(victim));
        let mut expected = groups.clone();
        expected.remove(victim);
        prop_assert_eq!(&f[0].groups, &expected);
    }

    #[test]
    fn no_input_panics_and_the_invariants_hold(
        bytes in prop::collection::vec(prop_oneof![
            4 => prop::sample::select(b"\x02\x03\x04\n\r\t ABCDEHPST0123456789".to_vec()),
            1 => any::<u8>(),
        ], 0..400),
    ) {
        tic::fuzzing::check(&bytes);
    }

    #[test]
    fn frames_with_garbage_between_keep_the_invariants(
        (mode, frames) in frames(),
        noise in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
    ) {
        let mut bytes = encode_all(mode, &frames);
        for (at, b) in noise {
            let at = at % bytes.len();
            bytes[at] = b;
        }
        tic::fuzzing::check(&bytes);
    }
}
