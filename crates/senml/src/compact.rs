//! Compact encoding: a resolved pack written back with base fields chosen
//! to make it small, so that it can be re-sent efficiently.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::{Error, Reason, Result};
use crate::model::{DEFAULT_VERSION, RELATIVE_TIME_LIMIT, RawRecord, ResolvedPack, set_value};

/// Characters after which a base name may end, so that `n` reads as a
/// word (`…:voltage`, not `…:vo` + `ltage`).
fn is_separator(c: u8) -> bool {
    matches!(c, b':' | b'/' | b'_' | b'.' | b'-')
}

/// The raw records of `pack` with:
/// - `bn`: the names' common prefix (cut after a separator), or the whole
///   name when all records share it;
/// - `bt`: the first record's time in whole seconds, times as offsets (0 omitted);
/// - `bu`: the most frequent unit, when every record has a unit;
/// - `bver` when the version is not 10.
///
/// Decoding and resolving the result gives `pack` back exactly.
///
/// ```
/// use senml::{Format, compact, encode, resolve_slice};
/// let resolved = br#"[{"n":"urn:dev:prm:30001610071843_consumption/power/active/raw","u":"W","t":1600041600,"v":245},
///                     {"n":"urn:dev:prm:30001610071843_consumption/power/active/raw","u":"W","t":1600043400,"v":420}]"#;
/// let pack = resolve_slice(resolved, Format::Json, 0.0).unwrap();
/// let json = encode(&compact(&pack).unwrap(), Format::Json).unwrap();
/// assert_eq!(
///     std::str::from_utf8(&json).unwrap(),
///     "[{\"bn\":\"urn:dev:prm:30001610071843_consumption/power/active/raw\",\"bt\":1600041600,\"bu\":\"W\",\"v\":245},\n{\"t\":1800,\"v\":420}]\n"
/// );
/// assert_eq!(resolve_slice(&json, Format::Json, 0.0).unwrap(), pack);
/// ```
pub fn compact(pack: &ResolvedPack) -> Result<Vec<RawRecord<'_>>> {
    Ok(compact_iter(pack)?.collect())
}

/// [`compact`], one record at a time: for large packs, encode as you go
/// instead of holding every raw record.
pub fn compact_iter(pack: &ResolvedPack) -> Result<impl Iterator<Item = RawRecord<'_>>> {
    let records = &pack.records;
    let Some(first) = records.first() else {
        return Err(Error::input(Reason::EmptyPack));
    };

    // Base name: the longest common prefix, cut after a separator unless
    // every name is the same.
    let mut prefix = first.name.len();
    let mut all_same = true;
    for r in records {
        if r.name != first.name {
            all_same = false;
            prefix = common_prefix(&first.name.as_bytes()[..prefix], r.name.as_bytes());
        }
    }
    if !all_same {
        prefix = first.name.as_bytes()[..prefix]
            .iter()
            .rposition(|&c| is_separator(c))
            .map_or(0, |i| i + 1);
    }
    let base_name = &first.name[..prefix];

    // Base time: whole seconds, so offsets of whole-second series stay integers.
    let base_seconds = (first.time.div_euclid(1_000_000)) as f64;
    for (index, r) in records.iter().enumerate() {
        if r.time_seconds() < RELATIVE_TIME_LIMIT {
            return Err(Error::in_field(
                index,
                "t",
                Reason::Unencodable {
                    format: "SenML",
                    why: format!(
                        "time {} s is before 1978-07-04 (2^28 s) and would read as relative to \"now\"",
                        r.time_seconds()
                    ),
                },
            ));
        }
    }

    // Base unit: the most frequent one, when no record lacks a unit.
    let base_unit = if records.iter().all(|r| r.unit.is_some()) {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for r in records {
            *counts
                .entry(r.unit.as_deref().unwrap_or_default())
                .or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|&(u, n)| (n, std::cmp::Reverse(u)))
            .map(|(u, _)| u)
    } else {
        None
    };

    let base_micros = first.time.div_euclid(1_000_000) * 1_000_000;
    let version = pack.version;
    Ok(records.iter().enumerate().map(move |(i, r)| {
        let mut raw = RawRecord::default();
        if i == 0 {
            raw.base_version = (version != DEFAULT_VERSION).then_some(version);
            raw.base_name = (!base_name.is_empty()).then_some(Cow::Borrowed(base_name));
            raw.base_unit = base_unit.map(Cow::Borrowed);
            raw.base_time = Some(base_seconds);
        }
        let rest = &r.name[prefix..];
        raw.name = (!rest.is_empty()).then_some(Cow::Borrowed(rest));
        if r.unit.as_deref() != base_unit {
            raw.unit = r.unit.as_deref().map(Cow::Borrowed);
        }
        let offset = r.time - base_micros;
        raw.time = (offset != 0).then(|| offset as f64 / 1e6);
        raw.sum = r.sum();
        raw.update_time = r.update_time();
        set_value(&mut raw, r.value.as_ref());
        raw
    }))
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
