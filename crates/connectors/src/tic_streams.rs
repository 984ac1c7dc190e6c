//! The one table from TIC labels to stream names and units, and what a
//! decoded frame becomes: SenML records.
//!
//! A meter is named by its delivery point when it is known, as the
//! Quoalise ecosystem names it, `urn:dev:prm:<PRM>` (the standard mode's
//! PRM group, or the connector's `prm` setting); otherwise by the
//! meter's address, `urn:dev:ads:<ADCO or ADSC>`. A stream's name is the
//! meter, then `_consumption/…` or `_production/…`, then the quantity:
//!
//! | labels | stream | unit |
//! |---|---|---|
//! | EAST, BASE | `_consumption/energy/active/index` | Wh |
//! | EASF01–10, EASD01–04, HCHC, HCHP, EJPHN, EJPHPM, BBRH* | `_consumption/energy/active/index/<label in lower case>` | Wh |
//! | EAIT | `_production/energy/active/index` | Wh |
//! | SINSTS, PAPP | `_consumption/power/apparent/raw` | VA |
//! | SINSTI | `_production/power/apparent/raw` | VA |
//! | IRMS1–3, IINST (single phase), IINST1–3 | `_consumption/current/l1`…`l3` | A |
//! | URMS1–3 | `_consumption/voltage/l1`…`l3` | V |
//! | PREF | `_consumption/power/apparent/subscribed` | kVA |
//! | ISOUSC | `_consumption/current/subscribed` | A |
//! | LTARF, PTEC | `_consumption/tariff/period` | text |
//!
//! Other labels are not stored. Text is stored without the spaces meters
//! pad it with. Every record of a frame has the frame's
//! time: its DATE group's horodate (standard mode), else the time it
//! arrived.

use senml::{Record, Value};
use tic::Frame;

/// Which way the energy flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Consumption,
    Production,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Consumption => "consumption",
            Direction::Production => "production",
        }
    }
}

/// The quantity's path after the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// This path.
    Fixed(&'static str),
    /// `energy/active/index/<label in lower case>`: one index per tariff.
    TariffIndex,
}

/// One label's stream.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    label: &'static str,
    direction: Direction,
    path: Path,
    /// The SenML unit; `None` for text.
    unit: Option<&'static str>,
}

const fn map(
    label: &'static str,
    direction: Direction,
    path: Path,
    unit: Option<&'static str>,
) -> Mapping {
    Mapping {
        label,
        direction,
        path,
        unit,
    }
}

use Direction::{Consumption as C, Production as P};
use Path::{Fixed, TariffIndex};

const WH: Option<&str> = Some("Wh");
const VA: Option<&str> = Some("VA");
const A: Option<&str> = Some("A");
const V: Option<&str> = Some("V");

/// Every label stored, both modes.
const STREAMS: &[Mapping] = &[
    map("EAST", C, Fixed("energy/active/index"), WH),
    map("BASE", C, Fixed("energy/active/index"), WH),
    map("EASF01", C, TariffIndex, WH),
    map("EASF02", C, TariffIndex, WH),
    map("EASF03", C, TariffIndex, WH),
    map("EASF04", C, TariffIndex, WH),
    map("EASF05", C, TariffIndex, WH),
    map("EASF06", C, TariffIndex, WH),
    map("EASF07", C, TariffIndex, WH),
    map("EASF08", C, TariffIndex, WH),
    map("EASF09", C, TariffIndex, WH),
    map("EASF10", C, TariffIndex, WH),
    map("EASD01", C, TariffIndex, WH),
    map("EASD02", C, TariffIndex, WH),
    map("EASD03", C, TariffIndex, WH),
    map("EASD04", C, TariffIndex, WH),
    map("HCHC", C, TariffIndex, WH),
    map("HCHP", C, TariffIndex, WH),
    map("EJPHN", C, TariffIndex, WH),
    map("EJPHPM", C, TariffIndex, WH),
    map("BBRHCJB", C, TariffIndex, WH),
    map("BBRHPJB", C, TariffIndex, WH),
    map("BBRHCJW", C, TariffIndex, WH),
    map("BBRHPJW", C, TariffIndex, WH),
    map("BBRHCJR", C, TariffIndex, WH),
    map("BBRHPJR", C, TariffIndex, WH),
    map("EAIT", P, Fixed("energy/active/index"), WH),
    map("SINSTS", C, Fixed("power/apparent/raw"), VA),
    map("PAPP", C, Fixed("power/apparent/raw"), VA),
    map("SINSTI", P, Fixed("power/apparent/raw"), VA),
    map("IRMS1", C, Fixed("current/l1"), A),
    map("IRMS2", C, Fixed("current/l2"), A),
    map("IRMS3", C, Fixed("current/l3"), A),
    map("IINST", C, Fixed("current/l1"), A),
    map("IINST1", C, Fixed("current/l1"), A),
    map("IINST2", C, Fixed("current/l2"), A),
    map("IINST3", C, Fixed("current/l3"), A),
    map("URMS1", C, Fixed("voltage/l1"), V),
    map("URMS2", C, Fixed("voltage/l2"), V),
    map("URMS3", C, Fixed("voltage/l3"), V),
    map("PREF", C, Fixed("power/apparent/subscribed"), Some("kVA")),
    map("ISOUSC", C, Fixed("current/subscribed"), A),
    map("LTARF", C, Fixed("tariff/period"), None),
    map("PTEC", C, Fixed("tariff/period"), None),
];

fn mapping(label: &str) -> Option<&'static Mapping> {
    STREAMS.iter().find(|m| m.label == label)
}

/// The meter a frame is from, as the start of its streams' names:
/// `urn:dev:prm:<PRM>` from the frame's PRM group or, failing it, `prm`
/// (the connector's setting); else `urn:dev:ads:<ADCO or ADSC>`. `None`
/// when the frame names no meter (its identifier group dropped) and no
/// `prm` is set.
pub fn meter_of(frame: &Frame, prm: Option<&str>) -> Option<String> {
    let text = |label| {
        frame
            .get(label)
            .and_then(|g| g.value.text())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()))
    };
    if let Some(prm) = text("PRM").or(prm) {
        return Some(format!("urn:dev:prm:{prm}"));
    }
    text("ADSC")
        .or_else(|| text("ADCO"))
        .map(|address| format!("urn:dev:ads:{address}"))
}

/// The frame's own time, in µs since the epoch: its DATE group's
/// horodate, if it has one.
pub fn frame_time(frame: &Frame) -> Option<i64> {
    frame
        .get("DATE")
        .and_then(|g| g.horodate.as_ref())
        .map(tic::Horodate::unix_micros)
}

/// The records of a frame's groups that the table (above) maps, each named
/// under `meter` and stamped `time` (µs), in the order the groups came.
pub fn records(frame: &Frame, meter: &str, time: i64) -> Vec<Record> {
    let mut out = Vec::new();
    for group in &frame.groups {
        let Some(m) = mapping(&group.label) else {
            continue;
        };
        let value = match (&group.value, m.unit) {
            (tic::Value::Integer(n), Some(_)) => Value::Number(*n as f64),
            (tic::Value::Text(t), None) => Value::String(t.trim().into()),
            // The decoder types every mapped label; anything else is not
            // what the table says, and not stored.
            _ => continue,
        };
        let direction = m.direction.word();
        let name = match m.path {
            Fixed(path) => format!("{meter}_{direction}/{path}"),
            TariffIndex => format!(
                "{meter}_{direction}/energy/active/index/{}",
                m.label.to_ascii_lowercase()
            ),
        };
        out.push(Record::new(name, time, Some(value)).with_unit(m.unit.map(Into::into)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tic::{Horodate, Mode, Season};

    /// What a record says, for comparing with what was written by hand.
    fn said(r: &Record) -> (String, Option<String>, i64, String) {
        let value = match &r.value {
            Some(Value::Number(n)) => format!("{n}"),
            Some(Value::String(s)) => format!("{s:?}"),
            other => format!("{other:?}"),
        };
        (
            r.name.to_string(),
            r.unit.as_ref().map(|u| u.to_string()),
            r.time,
            value,
        )
    }

    /// A record of `urn:dev:prm:30001610071843`, written by hand: `name`
    /// after the meter, `unit` (empty for none), `value` as [`said`] writes it.
    fn expected(
        time: i64,
        name: &str,
        unit: &str,
        value: &str,
    ) -> (String, Option<String>, i64, String) {
        (
            format!("urn:dev:prm:30001610071843{name}"),
            (!unit.is_empty()).then(|| unit.to_owned()),
            time,
            value.to_owned(),
        )
    }

    fn frame_of(bytes: &[u8]) -> Frame {
        let frames = tic::decode(bytes);
        assert_eq!(frames.len(), 1);
        frames.into_iter().next().unwrap()
    }

    #[test]
    fn a_standard_frame_becomes_the_streams_of_its_prm_at_its_horodate() {
        let date = Horodate {
            season: Season::Winter,
            degraded: false,
            year: 2024,
            month: 1,
            day: 15,
            hour: 8,
            minute: 30,
            second: 0,
        };
        let mut bytes = vec![tic::STX];
        for (label, horodate, data) in [
            ("ADSC", None, "041876097461"),
            ("VTIC", None, "02"),
            ("DATE", Some(&date), ""),
            ("NGTF", None, "H PLEINE/CREUSE "),
            ("LTARF", None, "   HEURE  PLEINE"),
            ("EAST", None, "012345678"),
            ("EASF01", None, "004000000"),
            ("EASF02", None, "008345678"),
            ("EAIT", None, "000001000"),
            ("IRMS1", None, "003"),
            ("URMS1", None, "231"),
            ("PREF", None, "09"),
            ("SINSTS", None, "00664"),
            ("SINSTI", None, "00012"),
            ("PRM", None, "30001610071843"),
        ] {
            tic::write_group(
                &mut bytes,
                Mode::Standard,
                label.as_bytes(),
                horodate,
                data.as_bytes(),
            );
        }
        bytes.push(tic::ETX);
        let frame = frame_of(&bytes);
        let meter = meter_of(&frame, None).unwrap();
        assert_eq!(meter, "urn:dev:prm:30001610071843");
        // 2024-01-15 08:30:00 winter time (UTC+1) is 07:30:00 UTC.
        let time = frame_time(&frame).unwrap();
        assert_eq!(time, 1_705_303_800_000_000);
        let got: Vec<_> = records(&frame, &meter, time).iter().map(said).collect();
        let n = |name, unit, value| expected(1_705_303_800_000_000, name, unit, value);
        assert_eq!(
            got,
            vec![
                n("_consumption/tariff/period", "", "\"HEURE  PLEINE\""),
                n("_consumption/energy/active/index", "Wh", "12345678"),
                n("_consumption/energy/active/index/easf01", "Wh", "4000000"),
                n("_consumption/energy/active/index/easf02", "Wh", "8345678"),
                n("_production/energy/active/index", "Wh", "1000"),
                n("_consumption/current/l1", "A", "3"),
                n("_consumption/voltage/l1", "V", "231"),
                n("_consumption/power/apparent/subscribed", "kVA", "9"),
                n("_consumption/power/apparent/raw", "VA", "664"),
                n("_production/power/apparent/raw", "VA", "12"),
            ]
        );
    }

    #[test]
    fn a_historic_frame_is_named_by_its_address_or_the_prm_setting_at_arrival() {
        let mut bytes = vec![tic::STX];
        for (label, data) in [
            ("ADCO", "031762120162"),
            ("OPTARIF", "HC.."),
            ("ISOUSC", "45"),
            ("HCHC", "052890470"),
            ("HCHP", "049126843"),
            ("PTEC", "HP.."),
            ("IINST", "008"),
            ("IMAX", "042"),
            ("PAPP", "01830"),
            ("HHPHC", "D"),
            ("MOTDETAT", "000000"),
        ] {
            tic::write_group(
                &mut bytes,
                Mode::Historic,
                label.as_bytes(),
                None,
                data.as_bytes(),
            );
        }
        bytes.push(tic::ETX);
        let frame = frame_of(&bytes);
        assert_eq!(frame_time(&frame), None);
        assert_eq!(
            meter_of(&frame, None).as_deref(),
            Some("urn:dev:ads:031762120162")
        );
        let meter = meter_of(&frame, Some("30001610071843")).unwrap();
        assert_eq!(meter, "urn:dev:prm:30001610071843");
        let arrival = 1_700_000_000_123_456;
        let got: Vec<_> = records(&frame, &meter, arrival).iter().map(said).collect();
        let n = |name, unit, value| expected(arrival, name, unit, value);
        assert_eq!(
            got,
            vec![
                n("_consumption/current/subscribed", "A", "45"),
                n("_consumption/energy/active/index/hchc", "Wh", "52890470"),
                n("_consumption/energy/active/index/hchp", "Wh", "49126843"),
                n("_consumption/tariff/period", "", "\"HP..\""),
                n("_consumption/current/l1", "A", "8"),
                n("_consumption/power/apparent/raw", "VA", "1830"),
            ]
        );
    }

    #[test]
    fn a_frame_whose_identifier_was_dropped_names_no_meter() {
        let mut bytes = vec![tic::STX];
        tic::write_group(&mut bytes, Mode::Historic, b"BASE", None, b"000001000");
        bytes.push(tic::ETX);
        assert_eq!(meter_of(&frame_of(&bytes), None), None);
    }

    #[test]
    fn the_table_agrees_with_the_decoders_units_and_every_name_is_valid_senml() {
        for m in STREAMS {
            let kind = tic::labels::kind_of(m.label.as_bytes())
                .unwrap_or_else(|| panic!("{} is not a label the decoder knows", m.label));
            assert_eq!(
                kind.unit.map(tic::Unit::symbol),
                m.unit,
                "{}'s unit",
                m.label
            );
            let frame = Frame {
                mode: Some(Mode::Standard),
                groups: vec![tic::Group {
                    label: m.label.into(),
                    value: match m.unit {
                        Some(_) => tic::Value::Integer(1),
                        None => tic::Value::Text("X".into()),
                    },
                    unit: kind.unit,
                    horodate: None,
                }],
                dropped: 0,
                errors: Vec::new(),
                end: tic::End::Complete,
            };
            let records = records(&frame, "urn:dev:prm:30001610071843", 0);
            assert_eq!(records.len(), 1, "{}", m.label);
            let pack = format!(r#"[{{"n":"{}","v":1}}]"#, records[0].name);
            senml::resolve_slice(pack.as_bytes(), senml::Format::Json, 0.0)
                .unwrap_or_else(|e| panic!("{}: {e}", records[0].name));
        }
    }
}
