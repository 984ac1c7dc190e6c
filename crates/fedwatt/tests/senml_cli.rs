//! `fedwatt senml …` as a user runs it: files and pipes, exit statuses,
//! errors on standard error naming the record and the field.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fedwatt(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fedwatt"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the fedwatt binary runs");
    // A command refused before it reads its input closes the pipe: not an error here.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing to fedwatt: {e}"
        );
    }
    child.wait_with_output().unwrap()
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../senml/tests/rfc8428")
        .join(name);
    path.to_str().unwrap().to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn resolve_prints_absolute_records_as_json() {
    let out = fedwatt(
        &["senml", "resolve", &fixture("multiple-data-points.xml")],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 7);
    // Chronological, stable: the five currents first, then voltage before the last current.
    assert_eq!(records[0]["n"], "urn:dev:ow:10e2073a0108006:current");
    assert_eq!(records[0]["t"], 1276020071.001);
    assert_eq!(records[0]["u"], "A");
    assert_eq!(records[5]["n"], "urn:dev:ow:10e2073a0108006:voltage");
    assert_eq!(records[5]["v"], 120.1);
    assert_eq!(
        records[5]["bver"], 5,
        "a version other than 10 stays on every resolved record"
    );
}

#[test]
fn relative_times_use_now() {
    let out = fedwatt(
        &["senml", "resolve", "--now", "1700000000"],
        br#"[{"n":"a","v":1,"t":-60}]"#,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "[{\"n\":\"a\",\"t\":1699999940,\"v\":1}]\n"
    );
}

#[test]
fn convert_round_trips_through_cbor_and_xml_on_pipes() {
    let json = std::fs::read(fixture("multiple-measurements.json")).unwrap();
    let cbor = fedwatt(&["senml", "convert", "--to", "cbor"], &json);
    assert!(cbor.status.success(), "{}", text(&cbor.stderr));
    assert_eq!(
        cbor.stdout[0], 0x8d,
        "a definite-length array of 13 records"
    );
    let stream = fedwatt(&["senml", "convert", "--to", "cbor", "--stream"], &json);
    assert_eq!(stream.stdout[0], 0x9f, "an indefinite-length array");
    let xml = fedwatt(&["senml", "convert", "--to", "xml"], &cbor.stdout);
    assert!(text(&xml.stdout).starts_with("<sensml xmlns=\"urn:ietf:params:xml:ns:senml\">"));
    let back = fedwatt(&["senml", "resolve", "--now", "0"], &xml.stdout);
    let direct = fedwatt(&["senml", "resolve", "--now", "0"], &json);
    assert!(back.status.success(), "{}", text(&back.stderr));
    assert_eq!(back.stdout, direct.stdout);
}

#[test]
fn compact_output_is_smaller_and_resolves_the_same() {
    let resolved = std::fs::read(fixture("resolved-data.json")).unwrap();
    let small = fedwatt(
        &["senml", "convert", "--compact", "--to", "json"],
        &resolved,
    );
    assert!(small.status.success(), "{}", text(&small.stderr));
    assert!(
        small.stdout.len() * 2 < resolved.len(),
        "{} vs {} bytes",
        small.stdout.len(),
        resolved.len()
    );
    let a = fedwatt(&["senml", "resolve", "--now", "0"], &small.stdout);
    let b = fedwatt(&["senml", "resolve", "--now", "0"], &resolved);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn validate_reports_every_error_with_record_and_field() {
    let out = fedwatt(
        &["senml", "validate"],
        br#"[{"n":"a","v":1},{"n":"b c","v":2},{"n":"c","v":"x"},{"n":"d","bver":11,"v":1}]"#,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0].starts_with("<stdin>: record 1, field \"n\": invalid name \"b c\""),
        "{stderr}"
    );
    assert!(
        lines[1].contains("record 2, field \"v\": expected a number, found string \"x\""),
        "{stderr}"
    );
    assert!(
        lines[2].contains("record 3, field \"bver\": unsupported SenML version 11"),
        "{stderr}"
    );
    assert_eq!(lines[3], "<stdin>: 3 error(s) in 4 record(s)");

    let ok = fedwatt(
        &["senml", "validate", &fixture("multiple-data-types.xml")],
        b"",
    );
    assert!(ok.status.success());
    assert_eq!(text(&ok.stdout), "ok: 4 records\n");
}

#[test]
fn bad_input_and_bad_usage_say_what_is_wrong() {
    let out = fedwatt(&["senml", "resolve"], br#"[{"n":"a","v":1},{"n":"b","v":"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("ends in the middle of the pack"),
        "{}",
        text(&out.stderr)
    );

    let out = fedwatt(&["senml", "validate"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "fedwatt: <stdin>: the input is empty\n");

    let out = fedwatt(&["senml", "resolve"], b"hello");
    assert!(
        text(&out.stderr).contains("cannot tell the encoding"),
        "{}",
        text(&out.stderr)
    );

    let out = fedwatt(&["senml", "resolve", "/nonexistent/pack.json"], b"");
    assert!(
        text(&out.stderr).contains("cannot open /nonexistent/pack.json"),
        "{}",
        text(&out.stderr)
    );

    let out = fedwatt(&["senml", "convert", "--to", "yaml"], b"[]");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown SenML format \"yaml\""),
        "{}",
        text(&out.stderr)
    );

    let out = fedwatt(
        &["senml", "convert", "--to", "xml"],
        br#"[{"n":"a","vs":"bell \u0007"}]"#,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("XML 1.0 cannot carry"),
        "{}",
        text(&out.stderr)
    );
}
