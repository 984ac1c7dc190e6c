//! Properties of the codec:
//! - any valid pack → encode in each format → decode → same resolved records;
//! - resolution does not depend on how the base fields were factored.

use std::borrow::Cow;
use std::sync::Arc;

use proptest::prelude::*;
use senml::{Format, RawRecord, Record, ResolvedPack, Value, compact, encode, resolve_slice};

/// Microsecond exactness holds for times in [2^28, 2^32) seconds (1978–2106),
/// where a double's step is under half a microsecond.
const MIN_MICROS: i64 = (1 << 28) * 1_000_000;
const MAX_MICROS: i64 = (1 << 32) * 1_000_000 - 1;

const UNITS: &[&str] = &["W", "Wh", "kWh", "Cel", "%RH", "/", "VA", "A"];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9][A-Za-z0-9:./_-]{0,24}",
        (0..3usize, "[a-z0-9]{1,6}").prop_map(|(device, part)| {
            format!("urn:dev:prm:3000161007184{device}_{part}/power/active/raw")
        }),
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        (-1_000_000i64..1_000_000).prop_map(|v| v as f64 / 8.0),
    ]
}

/// Strings that every encoding can carry (XML 1.0 cannot carry most
/// control characters; tab, new line and carriage return it can).
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,16}", "[ \t\n\ra-z&<>\"']{0,16}"]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        finite().prop_map(Value::Number),
        text().prop_map(|s| Value::String(Arc::from(s))),
        any::<bool>().prop_map(Value::Bool),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(|d| Value::Data(Arc::from(d))),
    ]
}

fn record(with_unit: bool) -> impl Strategy<Value = Record> {
    (
        name(),
        MIN_MICROS..MAX_MICROS,
        prop::option::weighted(0.9, value()),
        prop::option::of(finite()),
        prop::sample::select(UNITS),
        prop::option::of(0.0f64..1e6),
    )
        .prop_map(move |(name, time, value, sum, unit, update_time)| {
            // A record carries a value, a sum, or both.
            let sum = if value.is_none() {
                Some(sum.unwrap_or(1.0))
            } else {
                sum
            };
            Record::new(name, time, value)
                .with_sum(sum)
                .with_unit(with_unit.then(|| unit.into()))
                .with_update_time(update_time)
        })
}

/// A resolved pack: records in stable chronological order.
fn pack() -> impl Strategy<Value = ResolvedPack> {
    (any::<bool>(), prop::sample::select(vec![10u64, 5, 26])).prop_flat_map(
        |(with_unit, version)| {
            prop::collection::vec(record(with_unit), 1..40).prop_map(move |mut records| {
                records.sort_by_key(|r| r.time);
                ResolvedPack { version, records }
            })
        },
    )
}

fn resolve(bytes: &[u8], format: Format) -> ResolvedPack {
    resolve_slice(bytes, format, 0.0)
        .unwrap_or_else(|e| panic!("{format}: {e}\n{}", String::from_utf8_lossy(bytes)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_valid_pack_round_trips_in_every_format(pack in pack()) {
        for format in Format::ALL {
            let plain = encode(&pack.to_raw(), format).unwrap();
            prop_assert_eq!(&resolve(&plain, format), &pack, "{} plain", format);
            let small = encode(&compact(&pack).unwrap(), format).unwrap();
            prop_assert_eq!(&resolve(&small, format), &pack, "{} compact", format);
        }
    }

    #[test]
    fn resolution_is_independent_of_how_base_fields_are_factored(
        (pack, choices) in pack_of_numbers().prop_flat_map(|pack| {
            let n = pack.records.len();
            (Just(pack), prop::collection::vec(factoring(), n))
        })
    ) {
        let (raw, expected) = factor(&pack, &choices);
        for format in Format::ALL {
            let bytes = encode(&raw, format).unwrap();
            prop_assert_eq!(&resolve(&bytes, format), &expected, "{}", format);
        }
    }
}

/// Records with numeric values and sums that add exactly (multiples of 1/8),
/// in any order: the factoring property also checks the stable sort.
fn pack_of_numbers() -> impl Strategy<Value = ResolvedPack> {
    let number = (-1_000_000i64..1_000_000).prop_map(|v| v as f64 / 8.0);
    let record = (
        name(),
        MIN_MICROS..MAX_MICROS,
        number.clone(),
        prop::option::of(number),
        prop::sample::select(UNITS),
    );
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(record, 1..30),
    )
        .prop_map(|(with_unit, with_sum, records)| {
            let records = records
                .into_iter()
                .map(|(name, time, v, sum, unit)| {
                    Record::new(name, time / 1000 * 1000, Some(Value::Number(v)))
                        .with_sum(with_sum.then(|| sum.unwrap_or(0.0)))
                        .with_unit(with_unit.then(|| unit.into()))
                })
                .collect();
            ResolvedPack {
                version: 10,
                records,
            }
        })
}

/// How one record is written: which base fields change before it.
#[derive(Debug, Clone)]
struct Factoring {
    base_name_cut: Option<prop::sample::Index>,
    base_time: Option<i64>,
    base_unit: bool,
    base_value: Option<i64>,
    base_sum: Option<i64>,
    base_only_before: bool,
    repeat_version: bool,
}

fn factoring() -> impl Strategy<Value = Factoring> {
    (
        prop::option::of(any::<prop::sample::Index>()),
        prop::option::of(1i64 << 28..1i64 << 32),
        any::<bool>(),
        prop::option::of(-1000i64..1000),
        prop::option::of(-1000i64..1000),
        prop::bool::weighted(0.1),
        any::<bool>(),
    )
        .prop_map(
            |(
                base_name_cut,
                base_time,
                base_unit,
                base_value,
                base_sum,
                base_only_before,
                repeat_version,
            )| {
                Factoring {
                    base_name_cut,
                    base_time,
                    base_unit,
                    base_value,
                    base_sum,
                    base_only_before,
                    repeat_version,
                }
            },
        )
}

/// Writes `pack`'s records, in the given (unsorted) order, with base fields
/// as `choices` say; returns the raw records and the expected resolved pack.
fn factor(pack: &ResolvedPack, choices: &[Factoring]) -> (Vec<RawRecord<'static>>, ResolvedPack) {
    let mut raw = Vec::new();
    let (mut bn, mut bt, mut bu, mut bv, mut bs) =
        (String::new(), 0i64, None::<senml::Text>, 0.0, 0.0);
    for (i, (r, f)) in pack.records.iter().zip(choices).enumerate() {
        if f.base_only_before {
            // A record of base fields alone: sets context, yields no record.
            bt = f.base_time.unwrap_or(bt);
            raw.push(RawRecord {
                base_time: Some(bt as f64),
                ..RawRecord::default()
            });
        }
        let mut out = RawRecord::default();
        if i == 0 || f.repeat_version {
            out.base_version = Some(pack.version);
        }
        let name: &str = &r.name;
        let cut = f.base_name_cut.as_ref().map(|ix| ix.index(name.len() + 1));
        if let Some(cut) = cut.or_else(|| (!name.starts_with(&bn)).then_some(0)) {
            bn = name[..cut].to_owned();
            out.base_name = Some(Cow::Owned(bn.clone()));
        }
        let rest = &name[bn.len()..];
        out.name = (!rest.is_empty()).then(|| Cow::Owned(rest.to_owned()));
        if let Some(t) = f.base_time {
            bt = t;
            out.base_time = Some(t as f64);
        }
        let offset = r.time - bt * 1_000_000;
        out.time = (offset != 0).then(|| offset as f64 / 1e6);
        if let Some(unit) = &r.unit {
            if f.base_unit {
                bu = Some(unit.clone());
                out.base_unit = Some(Cow::Owned(unit.to_string()));
            } else if bu.as_ref() != Some(unit) {
                out.unit = Some(Cow::Owned(unit.to_string()));
            }
        }
        if let Some(v) = f.base_value {
            bv = v as f64;
            out.base_value = Some(bv);
        }
        if let Some(Value::Number(v)) = r.value {
            out.value = Some(v - bv);
        }
        if let Some(sum) = r.sum() {
            if let Some(s) = f.base_sum {
                bs = s as f64;
                out.base_sum = Some(bs);
            }
            out.sum = Some(sum - bs);
        }
        raw.push(out);
    }
    let mut expected = pack.clone();
    expected.records.sort_by_key(|r| r.time);
    (raw, expected)
}
