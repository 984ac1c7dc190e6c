//! The SenML JSON parser against serde_json, on arbitrary records: same
//! values where the types are right, the right error where they are not,
//! and numbers rounded exactly as a correct parser rounds them.

use proptest::prelude::*;
use senml::{Format, Reason, decode_slice};
use serde_json::{Map, Value};

const LABELS: &[&str] = &[
    "bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "s", "t", "ut",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,4}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn record() -> impl Strategy<Value = Map<String, Value>> {
    // `vd` (base64url data) is left out: its validity is not serde_json's to judge.
    let other = "[a-z]{1,5}".prop_filter("not vd", |k| k != "vd");
    let key = prop_oneof![prop::sample::select(LABELS).prop_map(str::to_owned), other];
    prop::collection::btree_map(key, json_value(), 0..6).prop_map(|m| m.into_iter().collect())
}

/// The type a label needs, as serde_json sees a value.
fn fits(label: &str, v: &Value) -> bool {
    match label {
        "bver" => v.as_u64().is_some(),
        "bn" | "bu" | "n" | "u" | "vs" => v.is_string(),
        "vb" => v.is_boolean(),
        _ => v.is_number(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn records_read_as_serde_json_reads_them(map in record(), pretty in any::<bool>()) {
        let object = Value::Object(map.clone());
        let text = if pretty { serde_json::to_string_pretty(&object) } else { serde_json::to_string(&object) }.unwrap();
        let pack = format!("[{text}]");
        let result = decode_slice(pack.as_bytes(), Format::Json);
        let first_misfit = map.iter().find(|(k, v)| {
            (LABELS.contains(&k.as_str()) && !fits(k, v)) || k.ends_with('_')
        });
        match (first_misfit, result) {
            (Some((label, _)), Err(e)) => {
                prop_assert_eq!(e.field.as_deref(), Some(label.as_str()), "{}", e);
                prop_assert_eq!(e.record, Some(0));
            }
            (Some((label, v)), Ok(_)) => prop_assert!(false, "accepted {label}: {v} in {text}"),
            (None, Err(e)) => prop_assert!(false, "refused {text}: {e}"),
            (None, Ok(records)) => {
                let r = &records[0];
                let text_field = |s: &Option<std::borrow::Cow<'_, str>>| s.as_deref().map(str::to_owned);
                prop_assert_eq!(text_field(&r.base_name), map.get("bn").and_then(Value::as_str).map(str::to_owned));
                prop_assert_eq!(text_field(&r.name), map.get("n").and_then(Value::as_str).map(str::to_owned));
                prop_assert_eq!(text_field(&r.string_value), map.get("vs").and_then(Value::as_str).map(str::to_owned));
                prop_assert_eq!(r.value, map.get("v").and_then(Value::as_f64));
                prop_assert_eq!(r.time, map.get("t").and_then(Value::as_f64));
                prop_assert_eq!(r.base_time, map.get("bt").and_then(Value::as_f64));
                prop_assert_eq!(r.bool_value, map.get("vb").and_then(Value::as_bool));
                prop_assert_eq!(r.base_version, map.get("bver").and_then(Value::as_u64));
            }
        }
    }

    #[test]
    fn numbers_round_as_a_correct_parser_does(
        text in "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?"
    ) {
        let pack = format!(r#"[{{"n":"a","v":{text}}}]"#);
        let expected: f64 = text.parse().unwrap();
        match decode_slice(pack.as_bytes(), Format::Json) {
            Ok(records) => prop_assert_eq!(records[0].value, Some(expected), "{}", text),
            Err(e) => {
                prop_assert!(!expected.is_finite(), "{} refused: {}", text, e);
                prop_assert!(matches!(e.reason, Reason::NotFinite(_)), "{}", e);
            }
        }
    }

    #[test]
    fn malformed_json_never_panics_and_is_refused_like_serde(text in "[\\[\\]{}\":,0-9a-z \\\\.eE+-]{0,40}") {
        let ours = decode_slice(text.as_bytes(), Format::Json);
        let serde: Result<Vec<Map<String, Value>>, _> = serde_json::from_str(&text);
        if serde.is_err() {
            // Not JSON (or not an array of objects): we refuse it too.
            prop_assert!(ours.is_err(), "accepted {:?}", text);
        }
    }
}
