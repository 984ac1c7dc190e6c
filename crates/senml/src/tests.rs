//! Errors are tested as carefully as successes: each bad input must be
//! refused with the record, the field and the reason.

use crate::error::{Error, Reason};
use crate::input::{Input, ReaderInput};
use crate::{Format, RecordReader, Value, resolve_slice, validate};

const NOW: f64 = 1_700_000_000.0;

fn err(bytes: &[u8], format: Format) -> Error {
    match resolve_slice(bytes, format, NOW) {
        Ok(pack) => panic!("accepted {:?}: {pack:?}", String::from_utf8_lossy(bytes)),
        Err(e) => e,
    }
}

fn json_err(text: &str) -> Error {
    err(text.as_bytes(), Format::Json)
}

fn at(e: &Error) -> (Option<usize>, Option<&str>) {
    (e.record, e.field.as_deref())
}

#[test]
fn json_type_errors_name_record_field_and_what_was_found() {
    let e = json_err(r#"[{"n":"a","v":1},{"n":"b","v":"12"}]"#);
    assert_eq!(at(&e), (Some(1), Some("v")));
    assert_eq!(
        e.reason,
        Reason::WrongType {
            expected: "a number",
            found: "string \"12\"".into()
        }
    );
    assert_eq!(
        e.to_string(),
        r#"record 1, field "v": expected a number, found string "12""#
    );

    let cases: &[(&str, usize, &str, &str)] = &[
        (
            r#"[{"n":5,"v":1}]"#,
            0,
            "n",
            "expected a string, found number 5",
        ),
        (r#"[{"n":"a","vb":"true"}]"#, 0, "vb", "expected a boolean"),
        (r#"[{"n":"a","v":null}]"#, 0, "v", "found null"),
        (r#"[{"n":"a","t":[1]}]"#, 0, "t", "found an array"),
        (r#"[{"n":"a","bt":{"x":1}}]"#, 0, "bt", "found an object"),
        (
            r#"[{"n":"a","v":1,"bver":-1}]"#,
            0,
            "bver",
            "expected an unsigned integer",
        ),
        (
            r#"[{"n":"a","v":1,"bver":10.5}]"#,
            0,
            "bver",
            "expected an unsigned integer",
        ),
        (r#"[{"n":"a","vd":"aGk+"}]"#, 0, "vd", "standard base64"),
        (r#"[{"n":"a","vd":"a"}]"#, 0, "vd", "base64url"),
        (r#"[{"n":"a","v":1,"v":2}]"#, 0, "v", "appears twice"),
        (
            r#"[{"n":"a","v":1,"crit_":true}]"#,
            0,
            "crit_",
            "must-understand",
        ),
        (
            r#"[{"n":"a","v":1e400}]"#,
            0,
            "v",
            "1e400 is not a finite number",
        ),
    ];
    for (text, record, field, reason) in cases {
        let e = json_err(text);
        assert_eq!(at(&e), (Some(*record), Some(*field)), "{text}: {e}");
        assert!(e.to_string().contains(reason), "{text}: {e}");
    }
}

#[test]
fn values_are_exactly_one_unless_a_sum() {
    let e = json_err(r#"[{"n":"a","v":1,"vs":"x"}]"#);
    assert_eq!(e.reason, Reason::SeveralValues("v, vs".into()));
    let e = json_err(r#"[{"n":"a","v":1},{"n":"b","t":5}]"#);
    assert_eq!((e.record, &e.reason), (Some(1), &Reason::NoValue));
    // A sum alone is a record; a record of base fields alone sets context.
    let pack = resolve_slice(
        br#"[{"bn":"m:"},{"n":"e","s":3600,"bs":100}]"#,
        Format::Json,
        NOW,
    )
    .unwrap();
    assert_eq!(pack.records.len(), 1);
    assert_eq!(
        (pack.records[0].value.as_ref(), pack.records[0].sum()),
        (None, Some(3700.0))
    );
    // The base value applies to a record without its own value.
    let pack = resolve_slice(
        br#"[{"n":"a","bv":100,"t":1},{"n":"a","v":5,"t":2}]"#,
        Format::Json,
        NOW,
    )
    .unwrap();
    assert_eq!(pack.records[0].number(), Some(100.0));
    assert_eq!(
        pack.records[1].number(),
        Some(105.0),
        "base value carried to later records"
    );
}

#[test]
fn names_are_checked_after_concatenation() {
    let e = json_err(r#"[{"bn":"urn:dev:ow:1:","n":"a b","v":1}]"#);
    assert_eq!(at(&e), (Some(0), Some("n")));
    assert!(e.to_string().contains("' ' at position 14"), "{e}");
    let e = json_err(r#"[{"v":1}]"#);
    assert!(e.to_string().contains("empty"), "{e}");
    let e = json_err(r#"[{"bn":"-x","v":1}]"#);
    assert_eq!(at(&e), (Some(0), Some("bn")));
    // A SEN1 name must be mapped first: '@' is not a SenML character.
    assert!(
        json_err(r#"[{"n":"app@srv/u@srv/p","v":1}]"#)
            .to_string()
            .contains("'@'")
    );
}

#[test]
fn versions_must_be_known_and_shared() {
    let e = json_err(r#"[{"n":"a","v":1,"bver":11}]"#);
    assert_eq!(e.reason, Reason::UnsupportedVersion(11));
    let e = json_err(r#"[{"n":"a","v":1,"bver":5},{"n":"a","v":1,"bver":10}]"#);
    assert_eq!(
        (e.record, &e.reason),
        (Some(1), &Reason::VersionMismatch { pack: 5, found: 10 })
    );
    let e = json_err(r#"[{"n":"a","v":1},{"n":"a","v":1,"bver":5}]"#);
    assert_eq!(e.reason, Reason::VersionMismatch { pack: 10, found: 5 });
    // RFC 9100: 26 is version 10 with the secondary-units feature.
    let pack = resolve_slice(
        br#"[{"n":"a","v":1,"u":"kWh","bver":26}]"#,
        Format::Json,
        NOW,
    )
    .unwrap();
    assert_eq!(pack.version, 26);
}

#[test]
fn numbers_must_stay_finite() {
    let e = json_err(r#"[{"n":"a","bv":1e308,"v":1e308}]"#);
    assert_eq!(at(&e), (Some(0), Some("v")));
    assert!(matches!(e.reason, Reason::NotFinite(_)));
    let e = json_err(r#"[{"n":"a","v":1,"t":1e300}]"#);
    assert!(matches!(e.reason, Reason::TimeOutOfRange(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "record 0, field \"t\": time 1e300 s is out of range"
    );
    let e = err(
        br#"<sensml xmlns="urn:ietf:params:xml:ns:senml"><senml n="a" v="NaN"/></sensml>"#,
        Format::Xml,
    );
    assert_eq!(
        (at(&e), &e.reason),
        ((Some(0), Some("v")), &Reason::NotFinite("NaN".into()))
    );
    let e = err(
        br#"<sensml xmlns="urn:ietf:params:xml:ns:senml"><senml n="a" v="inf"/></sensml>"#,
        Format::Xml,
    );
    assert!(matches!(e.reason, Reason::NotFinite(_)));
    // CBOR: [{0: "a", 2: NaN (half float 0x7e00)}]
    let e = err(
        &[0x81, 0xa2, 0x00, 0x61, b'a', 0x02, 0xf9, 0x7e, 0x00],
        Format::Cbor,
    );
    assert_eq!(at(&e), (Some(0), Some("v")));
}

#[test]
fn broken_json_is_a_syntax_error_with_its_offset() {
    let e = json_err(r#"[{"n":"a","v":1},{"n":"b","v":2"#);
    assert!(matches!(e.reason, Reason::Truncated { .. }), "{e}");
    let e = json_err(r#"[{"n":"a","v":1} {"n":"b","v":2}]"#);
    assert!(
        e.to_string().contains("expected ',' or ']' after record 0"),
        "{e}"
    );
    let e = json_err(r#"[{"n":"a","v":1,}]"#);
    assert!(matches!(e.reason, Reason::Syntax { offset: 16, .. }), "{e}");
    assert_eq!(json_err("[]").reason, Reason::EmptyPack);
    assert_eq!(
        json_err(r#"[{"bn":"a:"},{"bt":1.7e9}]"#).reason,
        Reason::NoMeasurement
    );
    assert!(matches!(
        json_err(r#"{"n":"a"}"#).reason,
        Reason::NotAPack(_)
    ));
    assert!(matches!(json_err("").reason, Reason::NotAPack(_)));
    assert!(
        json_err(r#"[{"n":"a","v":1}] x"#)
            .to_string()
            .contains("after the end of the pack")
    );
    assert!(
        json_err(r#"[1]"#)
            .to_string()
            .contains("expected a record object")
    );
    let garbage: Vec<u8> = (0..10_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for format in Format::ALL {
        let e = err(&garbage, format);
        assert!(e.is_fatal(), "{format}: {e}");
    }
}

#[test]
fn broken_cbor_is_refused() {
    // Not an array.
    assert!(matches!(
        err(&[0xa0], Format::Cbor).reason,
        Reason::NotAPack(_)
    ));
    // Definite array of 2 with one record.
    assert!(matches!(
        err(&[0x82, 0xa2, 0x00, 0x61, b'a', 0x02, 0x01], Format::Cbor).reason,
        Reason::Truncated { .. }
    ));
    // Indefinite-length text string as a name.
    let e = err(
        &[0x81, 0xa2, 0x00, 0x7f, 0x61, b'a', 0xff, 0x02, 0x01],
        Format::Cbor,
    );
    assert_eq!(at(&e), (Some(0), Some("n")));
    assert!(
        e.to_string().contains("indefinite-length text string"),
        "{e}"
    );
    // Invalid UTF-8 in a name.
    let e = err(&[0x81, 0xa2, 0x00, 0x61, 0xff, 0x02, 0x01], Format::Cbor);
    assert!(e.to_string().contains("UTF-8"), "{e}");
    // Hostile nesting in an unknown field.
    let mut deep = vec![0x81, 0xa2, 0x00, 0x61, b'a', 0x63, b'x', b'y', b'z'];
    deep.extend(std::iter::repeat_n(0x81, 100_000));
    deep.push(0x01);
    assert!(
        err(&deep, Format::Cbor)
            .to_string()
            .contains("nested deeper")
    );
    // A length that claims more than there is.
    assert!(
        err(
            &[0x81, 0xa1, 0x00, 0x7b, 0xff, 0, 0, 0, 0, 0, 0, 0],
            Format::Cbor
        )
        .is_fatal()
    );
    // Decimal fraction 12345e-2 = 123.45, and a string label.
    let pack = resolve_slice(
        &[
            0x81, 0xa2, 0x61, b'n', 0x61, b'a', 0x02, 0xc4, 0x82, 0x21, 0x19, 0x30, 0x39,
        ],
        Format::Cbor,
        NOW,
    )
    .unwrap();
    assert_eq!(pack.records[0].number(), Some(123.45));
}

#[test]
fn broken_xml_is_refused() {
    let x = |s: &str| err(s.as_bytes(), Format::Xml);
    assert!(
        matches!(
            x(r#"<sensml><senml n="a" v="1"/></sensml>"#).reason,
            Reason::NotAPack(_)
        ),
        "no namespace"
    );
    assert!(matches!(
        x(r#"<sensml xmlns="urn:ietf:params:xml:ns:senml"/>"#).reason,
        Reason::EmptyPack
    ));
    assert!(matches!(
        x(r#"<sensml xmlns="urn:ietf:params:xml:ns:senml"><senml n="a" v="1"/>"#).reason,
        Reason::Truncated { .. }
    ));
    assert!(
        x(r#"<!DOCTYPE x [<!ENTITY a "b">]><sensml xmlns="urn:ietf:params:xml:ns:senml"/>"#)
            .to_string()
            .contains("DOCTYPE")
    );
    assert!(
        x(r#"<sensml xmlns="urn:ietf:params:xml:ns:senml"><senml n="a" v="1"/><other/></sensml>"#)
            .to_string()
            .contains("<other>")
    );
    let e = x(
        r#"<sensml xmlns="urn:ietf:params:xml:ns:senml"><senml n="a" v="1"/><senml n="b" vb="yes"/></sensml>"#,
    );
    assert_eq!(at(&e), (Some(1), Some("vb")));
    let e =
        x(r#"<sensml xmlns="urn:ietf:params:xml:ns:senml"><senml n="a" v="1" n="b"/></sensml>"#);
    assert!(e.is_fatal() || e.reason == Reason::DuplicateField, "{e}");
    // Prefixed namespace and escapes are fine.
    let pack = resolve_slice(
        br#"<s:sensml xmlns:s="urn:ietf:params:xml:ns:senml"><s:senml n="a" vs="x &amp; y&#10;z" t="1.5e9"/></s:sensml>"#,
        Format::Xml,
        NOW,
    )
    .unwrap();
    assert_eq!(
        pack.records[0].value,
        Some(Value::String("x & y\nz".into()))
    );
}

#[test]
fn validation_reports_every_error_and_goes_on() {
    let text = r#"[{"n":"a","v":1},{"n":"b c","v":2},{"n":"c","v":"x"},{"n":"d"},{"n":"e","v":5}]"#;
    let mut errors = Vec::new();
    let summary = validate(
        RecordReader::from_slice(text.as_bytes(), Format::Json),
        NOW,
        |e| errors.push(e),
    );
    assert_eq!((summary.records, summary.errors), (5, 3));
    assert_eq!(
        errors.iter().map(|e| e.record).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
}

#[test]
fn cbor_validation_goes_on_after_a_bad_field() {
    // [{0:"a",2:1}, {0:"b",2:"x",6:1}, {0:"c",2:3}, 7 (not a map), {0:"d",4:true}]
    let pack = [
        0x85, 0xa2, 0x00, 0x61, b'a', 0x02, 0x01, 0xa3, 0x00, 0x61, b'b', 0x02, 0x61, b'x', 0x06,
        0x01, 0xa2, 0x00, 0x61, b'c', 0x02, 0x03, 0x07, 0xa2, 0x00, 0x61, b'd', 0x04, 0xf5,
    ];
    for reader in [
        RecordReader::from_slice(&pack, Format::Cbor),
        RecordReader::from_reader(&pack[..], Format::Cbor),
    ] {
        let mut errors = Vec::new();
        let summary = validate(reader, NOW, |e| errors.push(e));
        assert_eq!((summary.records, summary.errors), (5, 2), "{errors:?}");
        assert_eq!(at(&errors[0]), (Some(1), Some("v")));
        assert_eq!(
            errors[0].reason,
            Reason::WrongType {
                expected: "a number",
                found: "a text string".into()
            }
        );
        assert_eq!(at(&errors[1]), (Some(3), None));
    }
}

#[test]
fn relative_times_resolve_against_now_and_order_is_stable() {
    let pack = resolve_slice(
        br#"[{"n":"a","v":1,"t":-10},{"n":"b","v":2,"t":-20},{"n":"c","v":3,"t":-10}]"#,
        Format::Json,
        NOW,
    )
    .unwrap();
    let order: Vec<_> = pack.records.iter().map(|r| (&*r.name, r.time)).collect();
    let now = NOW as i64 * 1_000_000;
    assert_eq!(
        order,
        [
            ("b", now - 20_000_000),
            ("a", now - 10_000_000),
            ("c", now - 10_000_000)
        ]
    );
    // bt + t is compared with 2^28 after the addition (RFC 8428 §4.5.3).
    let pack = resolve_slice(
        br#"[{"n":"a","v":1,"bt":268435000,"t":1000}]"#,
        Format::Json,
        NOW,
    )
    .unwrap();
    assert_eq!(pack.records[0].time, 268_436_000_000_000);
}

#[test]
fn a_byte_order_mark_is_tolerated() {
    for (bytes, format) in [
        (&b"\xef\xbb\xbf[{\"n\":\"a\",\"v\":1}]"[..], Format::Json),
        (&b"\xef\xbb\xbf<sensml xmlns=\"urn:ietf:params:xml:ns:senml\"><senml n=\"a\" v=\"1\"/></sensml>"[..], Format::Xml),
    ] {
        assert_eq!(Format::sniff(bytes), Some(format));
        assert_eq!(resolve_slice(bytes, format, NOW).unwrap().records.len(), 1, "{format}");
        assert_eq!(crate::resolve_reader(bytes, format, NOW).unwrap().records.len(), 1, "{format}");
    }
}

#[test]
fn an_explicit_zero_is_a_value() {
    let pack = resolve_slice(
        br#"[{"n":"a","v":0},{"n":"a","v":5,"bv":0}]"#,
        Format::Json,
        NOW,
    )
    .unwrap();
    assert_eq!(pack.records[0].number(), Some(0.0));
    assert_eq!(pack.records[1].number(), Some(5.0));
}

#[test]
fn a_refused_record_does_not_change_the_base_fields() {
    let mut resolver = crate::Resolver::new(NOW);
    let ok = crate::decode_slice(br#"[{"bn":"a:","n":"x","v":1}]"#, Format::Json).unwrap();
    let bad = crate::decode_slice(br#"[{"bn":"b:","n":"x y","v":1}]"#, Format::Json).unwrap();
    let next = crate::decode_slice(br#"[{"n":"z","v":1}]"#, Format::Json).unwrap();
    resolver.push(&ok[0]).unwrap();
    assert!(resolver.push(&bad[0]).is_err());
    assert_eq!(&*resolver.push(&next[0]).unwrap().unwrap().name, "a:z");
}

#[test]
fn a_stream_refuses_a_record_it_would_have_to_hold_whole() {
    // An object that never closes, and a CBOR string that claims 1 TB.
    let mut json = br#"[{"n":"a","vs":""#.to_vec();
    json.resize(40 << 20, b'x');
    let mut cbor = vec![0x81, 0xa1, 0x03, 0x7b, 0, 0, 0x01, 0, 0, 0, 0, 0];
    cbor.resize(40 << 20, b'x');
    let mut xml = br#"<sensml xmlns="urn:ietf:params:xml:ns:senml"><senml n="a" vs=""#.to_vec();
    xml.resize(40 << 20, b'x');
    for (bytes, format) in [
        (&json, Format::Json),
        (&cbor, Format::Cbor),
        (&xml, Format::Xml),
    ] {
        let e = crate::resolve_reader(&bytes[..], format, NOW).unwrap_err();
        assert_eq!(
            e.reason,
            Reason::RecordTooLarge { limit: 16 << 20 },
            "{format}"
        );
    }
}

#[test]
fn a_reader_holds_one_chunk_not_the_whole_stream() {
    // 100 MB of records, generated on the fly.
    struct Endless {
        sent: usize,
        total: usize,
        closed: bool,
    }
    impl std::io::Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let record = br#"{"n":"urn:dev:prm:30001610071843_consumption/power/active/raw","t":1700000000,"v":1234.5}"#;
            if self.closed {
                return Ok(0);
            }
            let mut n = 0;
            while n + record.len() + 2 < buf.len() {
                buf[n] = if self.sent == 0 { b'[' } else { b',' };
                buf[n + 1..n + 1 + record.len()].copy_from_slice(record);
                n += record.len() + 1;
                self.sent += record.len() + 1;
                if self.sent >= self.total {
                    buf[n] = b']';
                    self.closed = true;
                    return Ok(n + 1);
                }
            }
            Ok(n)
        }
    }
    let mut input = ReaderInput::new(Endless {
        sent: 0,
        total: 100 << 20,
        closed: false,
    });
    let mut max_capacity = 0;
    while input.refill().unwrap() {
        input.set_pos(input.buffer().len());
        max_capacity = max_capacity.max(input.capacity());
    }
    assert!(
        max_capacity <= 256 * 1024,
        "buffer grew to {max_capacity} bytes"
    );
    let mut errors = 0;
    let summary = validate(
        RecordReader::from_reader(
            Endless {
                sent: 0,
                total: 20 << 20,
                closed: false,
            },
            Format::Json,
        ),
        NOW,
        |_| errors += 1,
    );
    assert_eq!(errors, 0);
    assert!(summary.records > 200_000);
}
