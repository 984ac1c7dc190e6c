//! Frames as meters send them, in both modes, written from the TIC facts
//! in the project's reference (shared/reference/sources.md): what a user
//! reading a Linky through its customer port would see.
//!
//! The checksums are computed by the crate's own `write_group`, except
//! the reference's hand-checked example, and two worked here by hand.

use std::io::Read;

use tic::{
    Decoder, EOT, ETX, End, Frame, FrameReader, Horodate, Mode, Reason, STX, Season, Status, Unit,
    Value, decode, write_group,
};

type Fields<'a> = &'a [(&'a str, Option<&'a str>, &'a str)];

fn frame(mode: Mode, groups: Fields) -> Vec<u8> {
    let mut out = vec![STX];
    for (label, h, data) in groups {
        let h = h.map(|h| Horodate::parse(h.as_bytes()).unwrap());
        write_group(
            &mut out,
            mode,
            label.as_bytes(),
            h.as_ref(),
            data.as_bytes(),
        );
    }
    out.push(ETX);
    out
}

/// A historic-mode frame of a meter on the off-peak option (HC).
const HISTORIC: Fields = &[
    ("ADCO", None, "041876097467"),
    ("OPTARIF", None, "HC.."),
    ("ISOUSC", None, "45"),
    ("HCHC", None, "052889104"),
    ("HCHP", None, "049503427"),
    ("PTEC", None, "HP.."),
    ("IINST", None, "008"),
    ("IMAX", None, "090"),
    ("PAPP", None, "01890"),
    ("HHPHC", None, "A"),
    ("MOTDETAT", None, "000000"),
];

/// A standard-mode frame, winter time, with horodated groups.
const STANDARD: Fields = &[
    ("ADSC", None, "041876097467"),
    ("VTIC", None, "02"),
    ("DATE", Some("H240115143012"), ""),
    ("NGTF", None, "      TEMPO     "),
    ("LTARF", None, "    HP  BLEU    "),
    ("EAST", None, "012345678"),
    ("EASF01", None, "003000000"),
    ("EASF02", None, "009345678"),
    ("EASF10", None, "000000000"),
    ("EASD01", None, "006000000"),
    ("EASD04", None, "000000000"),
    ("EAIT", None, "000001500"),
    ("IRMS1", None, "008"),
    ("URMS1", None, "231"),
    ("PREF", None, "09"),
    ("PCOUP", None, "09"),
    ("SINSTS", None, "01890"),
    ("SMAXSN", Some("H240115081200"), "05120"),
    ("SINSTI", None, "00000"),
    ("CCASN", Some("H240115143000"), "01750"),
    ("UMOY1", Some("H240115143000"), "232"),
    ("STGE", None, "003A0001"),
    ("MSG1", None, "PAS DE          MESSAGE         "),
    ("PRM", None, "30001610071843"),
    ("RELAIS", None, "000"),
    ("NTARF", None, "02"),
    ("XPERSO", None, "a label nobody knows"),
];

fn one(bytes: &[u8]) -> Frame {
    let mut frames = decode(bytes);
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.remove(0)
}

#[test]
fn the_reference_s_checksum_example_decodes() {
    // reference/sources.md: `SINSTS1\t00664\t` has checksum `G`.
    // By hand: "SINSTS1" = 0x53+0x49+0x4E+0x53+0x54+0x53+0x31 = 0x215,
    // HT 0x09, "00664" = 0x100, HT 0x09: 0x327; & 0x3F = 0x27; + 0x20 = 'G'.
    let f = one(b"\x02\nSINSTS1\t00664\tG\r\x03");
    assert_eq!(f.dropped, 0, "{:?}", f.errors);
    let g = &f.groups[0];
    assert_eq!(
        (&*g.label, &g.value, g.unit),
        ("SINSTS1", &Value::Integer(664), Some(Unit::VoltAmpere))
    );
    // Without the phase digit, 0x327 - 0x31 = 0x2F6; & 0x3F = 0x36: 'V'.
    assert_eq!(tic::checksum(b"SINSTS\t00664\t"), b'V');
    let f = one(b"\x02\nSINSTS\t00664\tV\r\nSINSTS\t00664\tG\r\x03");
    assert_eq!(f.groups.len(), 1);
    assert_eq!(
        f.errors[0].reason,
        Reason::Checksum {
            expected: 'V',
            found: 'G'
        }
    );
}

#[test]
fn a_historic_frame_gives_its_indexes_power_and_tariff_period() {
    let f = one(&frame(Mode::Historic, HISTORIC));
    assert_eq!(f.mode, Some(Mode::Historic));
    assert!(f.is_complete());
    assert_eq!((f.groups.len(), f.dropped), (HISTORIC.len(), 0));
    let value = |l| &f.get(l).unwrap().value;
    assert_eq!(value("ADCO"), &Value::Text("041876097467".into()));
    assert_eq!(value("HCHC"), &Value::Integer(52_889_104));
    assert_eq!(f.get("HCHP").unwrap().unit, Some(Unit::WattHour));
    assert_eq!(value("PTEC"), &Value::Text("HP..".into()));
    assert_eq!(value("PAPP"), &Value::Integer(1890));
    assert_eq!(f.get("IINST").unwrap().unit, Some(Unit::Ampere));
    assert_eq!(f.get("ISOUSC").unwrap().value.integer(), Some(45));
    assert!(f.groups.iter().all(|g| g.horodate.is_none()));
}

#[test]
fn a_standard_frame_gives_typed_values_horodates_and_raw_unknowns() {
    let f = one(&frame(Mode::Standard, STANDARD));
    assert_eq!(f.mode, Some(Mode::Standard));
    assert_eq!(
        (f.groups.len(), f.dropped),
        (STANDARD.len(), 0),
        "{:?}",
        f.errors
    );
    let g = |l| f.get(l).unwrap();
    let date = g("DATE").horodate.unwrap();
    assert_eq!(g("DATE").value, Value::Empty);
    assert_eq!((date.season, date.degraded), (Season::Winter, false));
    // 14:30:12 at +01:00 is 13:30:12 UTC.
    assert_eq!(date.unix_seconds(), 1_705_325_412);
    assert_eq!(g("EAST").value, Value::Integer(12_345_678));
    assert_eq!(g("EASF02").unit, Some(Unit::WattHour));
    assert_eq!(g("URMS1").unit, Some(Unit::Volt));
    assert_eq!(g("PREF").unit, Some(Unit::KiloVoltAmpere));
    assert_eq!(
        g("SMAXSN").horodate.unwrap().to_string(),
        "2024-01-15T08:12:00+01:00"
    );
    assert_eq!(g("CCASN").unit, Some(Unit::Watt));
    assert_eq!(g("STGE").value, Value::Status(Status(0x003A_0001)));
    assert_eq!(g("LTARF").value.text(), Some("    HP  BLEU    "));
    assert_eq!(g("PRM").value.text(), Some("30001610071843"));
    assert_eq!(g("XPERSO").value, Value::Raw("a label nobody knows".into()));
}

#[test]
fn a_corrupted_group_is_dropped_and_counted_the_rest_kept() {
    let mut bytes = frame(Mode::Standard, STANDARD);
    // A line hit: one digit of EAST's data changes ('4' becomes '5').
    let at = bytes.windows(9).position(|w| w == b"012345678").unwrap() + 4;
    bytes[at] = b'5';
    // And an unknown label's checksum is verified all the same.
    let at = bytes.windows(6).position(|w| w == b"nobody").unwrap();
    bytes[at] = b'N';
    let f = one(&bytes);
    assert!(f.is_complete());
    assert_eq!(f.dropped, 2);
    assert_eq!(f.groups.len(), STANDARD.len() - 2);
    assert!(f.get("EAST").is_none() && f.get("XPERSO").is_none());
    assert!(f.get("EASF01").is_some() && f.get("NTARF").is_some());
    let labels: Vec<_> = f
        .errors
        .iter()
        .map(|e| e.label.as_deref().unwrap())
        .collect();
    assert_eq!(labels, ["EAST", "XPERSO"]);
    assert!(matches!(f.errors[0].reason, Reason::Checksum { .. }));
    assert!(
        f.errors[0]
            .to_string()
            .starts_with("group EAST: checksum is ")
    );
}

#[test]
fn an_interrupted_frame_keeps_what_it_had_and_the_next_is_whole() {
    let whole = frame(Mode::Historic, HISTORIC);
    // The meter stops mid-group (in PAPP's data) and sends EOT.
    let cut = whole.windows(5).position(|w| w == b"PAPP ").unwrap() + 7;
    let mut bytes = whole[..cut].to_vec();
    bytes.push(EOT);
    bytes.extend_from_slice(&whole);
    let frames = decode(&bytes);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].end, End::Interrupted);
    assert_eq!(frames[0].groups.len(), 8, "ADCO to IMAX");
    assert_eq!(frames[0].dropped, 0, "an unfinished group is not a bad one");
    assert!(frames[1].is_complete());
    assert_eq!(frames[1].groups.len(), HISTORIC.len());

    // A lost ETX: the next STX starts a frame; the group it cut is counted.
    let mut bytes = whole[..cut].to_vec();
    bytes.extend_from_slice(&whole);
    let frames = decode(&bytes);
    assert_eq!(frames[0].end, End::Restarted);
    assert_eq!(frames[0].dropped, 1);
    assert_eq!(frames[0].errors[0].reason, Reason::Unterminated);
    assert_eq!(frames[0].errors[0].label.as_deref(), Some("PAPP"));
    assert!(frames[1].is_complete());

    // The input ends mid-frame: what it had, as EndOfInput.
    let last = decode(&whole[..cut]);
    assert_eq!(last[0].end, End::EndOfInput);
    assert_eq!(last[0].groups.len(), 8);
}

#[test]
fn the_autumn_season_change_keeps_instants_in_order() {
    // On 2024-10-27 the clock goes from 02:59:59 summer time back to
    // 02:00:00 winter time: one second later, though the hour is lower.
    let mut bytes = frame(
        Mode::Standard,
        &[
            ("DATE", Some("E241027025959"), ""),
            ("SINSTS", None, "00500"),
        ],
    );
    bytes.extend(frame(
        Mode::Standard,
        &[
            ("DATE", Some("H241027020000"), ""),
            ("SINSTS", None, "00510"),
        ],
    ));
    // And a meter whose clock is degraded says so in lower case.
    bytes.extend(frame(
        Mode::Standard,
        &[("DATE", Some("h241027020001"), "")],
    ));
    let frames = decode(&bytes);
    let dates: Vec<Horodate> = frames
        .iter()
        .map(|f| f.get("DATE").unwrap().horodate.unwrap())
        .collect();
    assert_eq!(dates[0].season, Season::Summer);
    assert_eq!(dates[1].season, Season::Winter);
    assert_eq!(dates[1].unix_seconds() - dates[0].unix_seconds(), 1);
    // 02:00:00+01:00 is 01:00:00 UTC.
    assert_eq!(dates[1].unix_seconds(), 1_729_990_800);
    assert!(dates[2].degraded && !dates[1].degraded);
    assert_eq!(dates[2].utc_offset_seconds(), 3_600);
}

#[test]
fn the_mode_is_locked_by_the_first_valid_group() {
    let mut bytes = frame(Mode::Standard, &STANDARD[..4]);
    // A historic group inside a standard stream is dropped and counted.
    let mut mixed = frame(Mode::Standard, &STANDARD[4..6]);
    let mut historic = Vec::new();
    write_group(&mut historic, Mode::Historic, b"PAPP", None, b"01890");
    mixed.splice(1..1, historic);
    bytes.extend(mixed);
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    decoder.feed(&bytes, |f| frames.push(f));
    assert_eq!(decoder.mode(), Some(Mode::Standard));
    assert_eq!(frames[1].groups.len(), 2);
    assert_eq!(frames[1].dropped, 1);
    assert_eq!(
        frames[1].errors[0].reason,
        Reason::ModeMismatch {
            locked: Mode::Standard,
            found: Mode::Historic
        }
    );
    assert_eq!(
        frames[1].errors[0].to_string(),
        "group PAPP: a historic group in a standard stream"
    );
    assert_eq!(decoder.stats().mode_mismatches, 1);

    // A decoder told the mode refuses the other from the start.
    let mut decoder = Decoder::with_mode(Mode::Historic);
    let mut frames = Vec::new();
    decoder.feed(&frame(Mode::Standard, &STANDARD[..3]), |f| frames.push(f));
    assert_eq!((frames[0].groups.len(), frames[0].dropped), (0, 3));
}

#[test]
fn a_decoder_started_mid_frame_waits_for_the_next_stx() {
    let whole = frame(Mode::Historic, HISTORIC);
    let mut bytes = whole[whole.len() / 2..].to_vec();
    bytes.extend_from_slice(&whole);
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    decoder.feed(&bytes, |f| frames.push(f));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].groups.len(), HISTORIC.len());
    assert_eq!(
        decoder.stats().stray_bytes,
        (whole.len() - whole.len() / 2) as u64
    );
}

#[test]
fn a_serial_port_giving_a_byte_at_a_time_gives_the_same_frames() {
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((&b, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = b;
            self.0 = rest;
            Ok(1)
        }
    }
    let mut bytes = frame(Mode::Standard, STANDARD);
    bytes.extend(frame(Mode::Standard, &STANDARD[..5]));
    let read: Vec<Frame> = FrameReader::new(Trickle(&bytes))
        .map(Result::unwrap)
        .collect();
    assert_eq!(read, decode(&bytes));
    assert_eq!(read.len(), 2);
}

#[test]
fn oversized_groups_and_frames_are_bounded() {
    let mut bytes = vec![STX, b'\n'];
    bytes.extend(std::iter::repeat_n(b'A', 10_000));
    bytes.push(b'\r');
    for _ in 0..tic::MAX_GROUPS + 5 {
        write_group(&mut bytes, Mode::Historic, b"PAPP", None, b"00100");
    }
    bytes.push(ETX);
    let f = one(&bytes);
    assert_eq!(f.groups.len(), tic::MAX_GROUPS);
    assert_eq!(f.dropped, 6);
    assert_eq!(
        f.errors[0].reason,
        Reason::TooLong {
            len: 10_000,
            max: tic::MAX_GROUP_LEN
        }
    );
    assert_eq!(
        f.errors[1].reason,
        Reason::TooManyGroups {
            max: tic::MAX_GROUPS
        }
    );
}
