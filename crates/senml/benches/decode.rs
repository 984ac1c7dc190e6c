//! Decode + resolve of a 1,000,000-record pack: one meter's 30-minute load
//! curve, `bn`/`bt`/`bu` on the first record, as a Linky export is.
//!
//! The reference is a bare `serde_json` typed parse of the same bytes into
//! structs with the SenML fields (borrowed strings, no validation, no
//! resolution): what any Rust program pays just to read the JSON.
//!
//! Lines that return a whole decoded pack are timed without dropping it
//! (`iter_with_large_drop`), the reference as well: freeing a million
//! records is neither decoding nor resolving.
//!
//!     cargo bench -p fedwatt-senml --bench decode

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use senml::{Format, Framing, RecordReader, ResolvedPack, compact_iter, encode, resolve_slice};
use serde::Deserialize;

const RECORDS: usize = 1_000_000;
const NOW: f64 = 1_700_000_000.0;

/// The benchmark pack, in SenML JSON (bench/measure.py writes the same one).
fn load_curve_json() -> Vec<u8> {
    let mut out = String::with_capacity(RECORDS * 24);
    out.push('[');
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..RECORDS {
        // A household's power in W: a deterministic pseudo-random series.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let watts = 200 + (seed % 6000);
        if i == 0 {
            out.push_str(&format!(
                r#"{{"bn":"urn:dev:prm:30001610071843_consumption/power/active/raw","bt":1600041600,"bu":"W","v":{watts}}}"#
            ));
        } else {
            out.push_str(&format!(",\n{{\"t\":{},\"v\":{watts}}}", i * 1800));
        }
    }
    out.push_str("]\n");
    out.into_bytes()
}

/// Every SenML field, as a plain serde struct would have it.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Bare<'a> {
    bver: Option<u64>,
    #[serde(borrow)]
    bn: Option<&'a str>,
    bt: Option<f64>,
    bu: Option<&'a str>,
    bv: Option<f64>,
    bs: Option<f64>,
    n: Option<&'a str>,
    u: Option<&'a str>,
    v: Option<f64>,
    vs: Option<&'a str>,
    vb: Option<bool>,
    vd: Option<&'a str>,
    s: Option<f64>,
    t: Option<f64>,
    ut: Option<f64>,
}

/// Encodes `pack` compactly, record by record.
fn encode_compact(pack: &ResolvedPack, format: Format, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    let mut w = senml::writer(format, &mut out, Framing::Pack(Some(pack.records.len())));
    for r in compact_iter(pack).expect("compactable") {
        w.write(&r).expect("encodable");
    }
    w.finish().expect("encodable");
    drop(w);
    out
}

fn bench(c: &mut Criterion) {
    let json = load_curve_json();
    let pack = resolve_slice(&json, Format::Json, NOW).expect("the benchmark pack is valid");
    let cbor = encode_compact(&pack, Format::Cbor, json.len());
    let xml = encode_compact(&pack, Format::Xml, 2 * json.len());
    assert_eq!(
        resolve_slice(&cbor, Format::Cbor, NOW).expect("valid"),
        pack
    );
    eprintln!(
        "pack: {RECORDS} records; JSON {} bytes, CBOR {} bytes, XML {} bytes",
        json.len(),
        cbor.len(),
        xml.len()
    );

    let mut group = c.benchmark_group("senml-1M-load-curve");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS as u64));

    group.bench_function("serde_json typed parse (reference)", |b| {
        b.iter_with_large_drop(|| {
            serde_json::from_slice::<Vec<Bare<'_>>>(black_box(&json)).expect("valid")
        })
    });
    for (format, bytes) in [
        (Format::Json, &json),
        (Format::Cbor, &cbor),
        (Format::Xml, &xml),
    ] {
        group.bench_function(format!("{format} decode+resolve"), |b| {
            b.iter_with_large_drop(|| resolve_slice(black_box(bytes), format, NOW).expect("valid"))
        });
    }
    for (format, bytes) in [(Format::Json, &json), (Format::Cbor, &cbor)] {
        let mut reused = ResolvedPack::default();
        group.bench_function(format!("{format} decode+resolve, buffer reused"), |b| {
            b.iter(|| {
                senml::resolve_slice_into(black_box(bytes), format, NOW, &mut reused)
                    .expect("valid");
                black_box(reused.records.len())
            })
        });
    }
    group.bench_function("json decode+validate, nothing kept", |b| {
        b.iter(|| {
            let reader = RecordReader::from_slice(black_box(&json), Format::Json);
            black_box(senml::validate(reader, NOW, |e| panic!("{e}")))
        })
    });
    group.bench_function("json decode only", |b| {
        b.iter(|| {
            let mut reader = RecordReader::from_slice(black_box(&json), Format::Json);
            let mut n = 0;
            while let Some(has_value) = reader.next_with(|r| r.value.is_some()).expect("valid") {
                n += usize::from(has_value);
            }
            black_box(n)
        })
    });
    for format in [Format::Json, Format::Cbor] {
        group.bench_function(format!("{format} encode compact"), |b| {
            b.iter(|| black_box(encode_compact(black_box(&pack), format, json.len())))
        });
    }
    group.bench_function("json encode resolved", |b| {
        b.iter(|| black_box(encode(&pack.to_raw(), Format::Json).expect("encodable")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
