//! Every example of RFC 8428 §5 and §6, in JSON, CBOR and XML, decodes and
//! resolves to the records the RFC gives, and round-trips through all three
//! encodings.
//!
//! The JSON fixtures are the RFC's text; the CBOR and XML of §5.1.2 are the
//! RFC's own; the other CBOR and XML forms were made with an independent
//! encoder (Python cbor2). The expected records were written by hand.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use senml::{
    Format, RecordReader, ResolvedPack, Value, compact, encode, resolve_reader, resolve_slice,
};

/// "Now" for the examples without absolute times (RFC 8428 §5.1.7 states it).
const NOW: f64 = 1_320_078_429.0;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rfc8428")
}

fn fixture(example: &str, format: Format) -> Vec<u8> {
    let dir = fixtures();
    match format {
        Format::Json => std::fs::read(dir.join(format!("{example}.json"))).unwrap(),
        Format::Xml => std::fs::read(dir.join(format!("{example}.xml"))).unwrap(),
        Format::Cbor => {
            let hex = std::fs::read_to_string(dir.join(format!("{example}.cbor.hex"))).unwrap();
            let digits: Vec<u8> = hex.bytes().filter(u8::is_ascii_hexdigit).collect();
            digits
                .chunks(2)
                .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
                .collect()
        }
    }
}

/// The expected pack, built from the hand-written JSON without this crate's decoder.
fn expected(all: &serde_json::Value, example: &str) -> ResolvedPack {
    let entry = &all[example];
    if let Some(other) = entry["same_as"].as_str() {
        return expected(all, other);
    }
    let records = entry["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let value = if let Some(v) = r.get("v") {
                Value::Number(v.as_f64().unwrap())
            } else if let Some(s) = r.get("vs") {
                Value::String(Arc::from(s.as_str().unwrap()))
            } else if let Some(b) = r.get("vb") {
                Value::Bool(b.as_bool().unwrap())
            } else {
                assert_eq!(r["vd"], "aGkgCg", "the only data value of the RFC");
                Value::Data(Arc::from(&b"hi \n"[..]))
            };
            senml::Record::new(
                r["n"].as_str().unwrap(),
                (r["t"].as_f64().unwrap() * 1e6).round() as i64,
                Some(value),
            )
            .with_unit(r.get("u").map(|u| u.as_str().unwrap().into()))
        })
        .collect();
    ResolvedPack {
        version: entry["version"].as_u64().unwrap(),
        records,
    }
}

fn examples() -> (serde_json::Value, Vec<String>) {
    let text = std::fs::read_to_string(fixtures().join("expected-resolved.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names = all
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !k.starts_with('_'))
        .cloned()
        .collect();
    (all, names)
}

#[test]
fn every_example_resolves_to_the_rfc_records_in_every_format() {
    let (all, names) = examples();
    assert_eq!(names.len(), 11, "all the examples of RFC 8428 §5.1");
    for example in &names {
        let want = expected(&all, example);
        for format in Format::ALL {
            let bytes = fixture(example, format);
            let got = resolve_slice(&bytes, format, NOW)
                .unwrap_or_else(|e| panic!("{example} {format}: {e}"));
            assert_eq!(got, want, "{example} in {format}");
            let streamed = resolve_reader(&bytes[..], format, NOW).unwrap();
            assert_eq!(streamed, want, "{example} in {format}, streamed");
        }
    }
}

#[test]
fn every_example_round_trips_through_every_encoding() {
    let (all, names) = examples();
    for example in &names {
        let want = expected(&all, example);
        for from in Format::ALL {
            let pack = resolve_slice(&fixture(example, from), from, NOW).unwrap();
            for to in Format::ALL {
                for (shape, raw) in [
                    ("resolved", pack.to_raw()),
                    ("compact", compact(&pack).unwrap()),
                ] {
                    let bytes = encode(&raw, to).unwrap();
                    let again = resolve_slice(&bytes, to, 0.0).unwrap_or_else(|e| {
                        panic!(
                            "{example} {from}→{to} {shape}: {e}\n{}",
                            String::from_utf8_lossy(&bytes)
                        )
                    });
                    assert_eq!(again, want, "{example} {from}→{to} ({shape})");
                }
            }
        }
    }
}

#[test]
fn the_rfc_cbor_example_equals_its_json_record_by_record() {
    let json = fixture("multiple-data-points", Format::Json);
    let cbor = fixture("multiple-data-points", Format::Cbor);
    let xml = fixture("multiple-data-points", Format::Xml);
    // The RFC's CBOR writes the last record's time as 0 where its JSON omits it: the same time.
    let raw = |bytes: &[u8], format| {
        let mut records: Vec<_> = senml::decode_slice(bytes, format)
            .unwrap()
            .into_iter()
            .map(|r| r.into_owned())
            .collect();
        for r in &mut records[1..] {
            r.time.get_or_insert(0.0);
        }
        records
    };
    let from_json = raw(&json, Format::Json);
    assert_eq!(raw(&cbor, Format::Cbor), from_json);
    assert_eq!(raw(&xml, Format::Xml), from_json);
    assert_eq!(from_json[0].base_version, Some(5));
    assert_eq!(from_json[1].time, Some(-5.0));
}

#[test]
fn a_sensml_stream_is_read_record_by_record() {
    // The indefinite-length CBOR array of a SensML stream, fed one byte at a time.
    struct OneByte<'a>(&'a [u8]);
    impl std::io::Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }
    let cbor = fixture("sensml-stream", Format::Cbor);
    assert_eq!(cbor[0], 0x9f, "indefinite-length array");
    for format in Format::ALL {
        let bytes = fixture("sensml-stream", format);
        let mut reader = RecordReader::from_reader(OneByte(&bytes), format);
        let mut times = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            times.push(r.time.unwrap_or(0.0));
        }
        assert_eq!(
            times,
            [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0],
            "{format}"
        );
    }
}
