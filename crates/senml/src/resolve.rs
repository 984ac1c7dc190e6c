//! Resolution (RFC 8428 §4.5–4.6): base fields carried forward, relative
//! times against "now", one value per record, names checked, chronological order.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Reason, Result};
use crate::model::{
    DEFAULT_VERSION, RELATIVE_TIME_LIMIT, RawRecord, Record, ResolvedPack, Text, Value,
};
use crate::names::check_name;

/// Distinct names or units remembered before the caches are cleared, so that
/// memory stays bounded on a stream with millions of different names.
const CACHE_LIMIT: usize = 4096;

/// Whether a version is one this implementation reads: RFC 8428 versions up
/// to 10, and 26 (RFC 9100: version 10 plus the secondary-units feature, bit 4).
pub fn is_supported_version(version: u64) -> bool {
    (1..=DEFAULT_VERSION).contains(&version) || version == DEFAULT_VERSION | (1 << 4)
}

/// Resolves raw records one at a time, keeping the base fields in force.
///
/// Feed it the records of one pack in order. It holds no record, so it can
/// validate a stream of any length in constant memory; [`Resolver::finish`]
/// is only needed to build a [`ResolvedPack`].
///
/// ```
/// use senml::{Format, Resolver};
/// let json = br#"[{"bn":"urn:dev:ow:10e2073a01080063:","bt":1.320067464e9,"bu":"A","n":"current","v":1.2},
///                 {"n":"current","t":60,"v":1.3}]"#;
/// let pack = senml::resolve_slice(json, Format::Json, 0.0).unwrap();
/// assert_eq!(&*pack.records[1].name, "urn:dev:ow:10e2073a01080063:current");
/// assert_eq!(pack.records[1].time, 1_320_067_524_000_000);
/// assert_eq!(pack.records[1].unit.as_deref(), Some("A"));
/// ```
#[derive(Debug)]
pub struct Resolver {
    now: f64,
    index: usize,
    /// The base fields in force; `base.version` is `None` before the first record.
    base: Base,
    /// Resolved names under the current base name, by record name (`""` for none).
    names: HashMap<Box<str>, Text>,
    /// The last name looked up, to skip the map for runs of one name.
    last_name: Option<(Box<str>, Text)>,
    units: HashMap<Box<str>, Text>,
    records: Vec<Record>,
    produced: usize,
    sorted: bool,
    keep: bool,
}

/// The base fields in force (RFC 8428 §4.5), with the base time also in
/// microseconds so that most records need no float rounding.
#[derive(Debug, Clone, Default)]
struct Base {
    version: Option<u64>,
    name: String,
    time: f64,
    time_micros: i64,
    unit: Option<Text>,
    value: Option<f64>,
    sum: Option<f64>,
}

impl Resolver {
    /// A resolver for one pack; relative times are taken from `now` (SenML
    /// seconds since the Unix epoch).
    pub fn new(now: f64) -> Self {
        Resolver {
            now,
            index: 0,
            base: Base::default(),
            names: HashMap::new(),
            last_name: None,
            units: HashMap::new(),
            records: Vec::new(),
            produced: 0,
            sorted: true,
            keep: true,
        }
    }

    /// A resolver that fills `records` (cleared first, its capacity kept):
    /// a node that resolves pack after pack reuses one buffer instead of
    /// touching fresh memory for every pack.
    pub fn with_buffer(now: f64, mut records: Vec<Record>) -> Self {
        records.clear();
        Resolver {
            records,
            ..Resolver::new(now)
        }
    }

    /// A resolver that checks records without keeping them (for validation
    /// of streams too large for memory).
    pub fn validating(now: f64) -> Self {
        Resolver {
            keep: false,
            ..Resolver::new(now)
        }
    }

    /// Reserves room for `additional` more records.
    pub fn reserve(&mut self, additional: usize) {
        if self.keep {
            self.records.reserve(additional);
        }
    }

    /// Number of raw records seen so far (the index the next one gets).
    pub fn records_seen(&self) -> usize {
        self.index
    }

    /// Number of resolved records produced so far.
    pub fn records_resolved(&self) -> usize {
        self.produced
    }

    /// Counts a record that could not be decoded, so that the records after
    /// it keep their index in errors.
    pub fn skip(&mut self) {
        self.index += 1;
    }

    /// Takes the next raw record of the pack. Returns the resolved record,
    /// or `None` for a record that only sets base fields.
    ///
    /// On error nothing of the record is applied, and the next record can
    /// still be fed (the error is about this record only).
    pub fn push(&mut self, raw: &RawRecord<'_>) -> Result<Option<&Record>> {
        let index = self.index;
        self.index += 1;
        // A record's own base fields apply to it and to the records after
        // it, but only once it is accepted: until then they are pending.
        let has_base = raw.base_version.is_some()
            || raw.base_name.is_some()
            || raw.base_time.is_some()
            || raw.base_unit.is_some()
            || raw.base_value.is_some()
            || raw.base_sum.is_some();
        let pending = if has_base || self.base.version.is_none() {
            Some(self.next_base(index, raw)?)
        } else {
            None
        };
        let produced = if raw.is_base_only() {
            None
        } else {
            Some(self.resolve(index, raw, pending.as_ref())?)
        };
        if let Some(base) = pending {
            if base.name != self.base.name {
                self.names.clear();
                self.last_name = None;
            }
            self.base = base;
        }
        let Some(record) = produced else {
            return Ok(None);
        };
        self.produced += 1;
        if self.keep {
            if let Some(last) = self.records.last() {
                self.sorted &= last.time <= record.time;
            }
        } else {
            self.records.clear();
        }
        self.records.push(record);
        Ok(self.records.last())
    }

    /// The base fields after `raw`'s, checked.
    fn next_base(&mut self, index: usize, raw: &RawRecord<'_>) -> Result<Base> {
        let field_err = |label: &str, reason| Error::in_field(index, label, reason);
        // Version: a base field like the others, the same for every record.
        let version = raw
            .base_version
            .or(self.base.version)
            .unwrap_or(DEFAULT_VERSION);
        if !is_supported_version(version) {
            return Err(field_err("bver", Reason::UnsupportedVersion(version)));
        }
        if let Some(pack) = self.base.version
            && pack != version
        {
            return Err(field_err(
                "bver",
                Reason::VersionMismatch {
                    pack,
                    found: version,
                },
            ));
        }
        for (label, v) in [
            ("bt", raw.base_time),
            ("bv", raw.base_value),
            ("bs", raw.base_sum),
        ] {
            check_finite(index, label, v)?;
        }
        let mut base = Base {
            version: Some(version),
            ..self.base.clone()
        };
        if let Some(bn) = raw.base_name.as_deref() {
            bn.clone_into(&mut base.name);
        }
        if let Some(bt) = raw.base_time {
            base.time = bt;
            base.time_micros =
                to_micros(bt).ok_or_else(|| field_err("bt", Reason::TimeOutOfRange(bt)))?;
        }
        if let Some(bu) = raw.base_unit.as_deref() {
            base.unit = Some(self.unit(bu));
        }
        base.value = raw.base_value.or(base.value);
        base.sum = raw.base_sum.or(base.sum);
        Ok(base)
    }

    /// The resolved record of `raw` under `pending` base fields, or under
    /// the ones in force when the record sets none.
    fn resolve(
        &mut self,
        index: usize,
        raw: &RawRecord<'_>,
        pending: Option<&Base>,
    ) -> Result<Record> {
        let base = pending.unwrap_or(&self.base);
        let values = usize::from(raw.value.is_some())
            + usize::from(raw.string_value.is_some())
            + usize::from(raw.bool_value.is_some())
            + usize::from(raw.data_value.is_some());
        if values > 1 {
            let labels: Vec<_> = raw.value_labels().map(|l| l.as_str()).collect();
            return Err(Error::in_record(
                index,
                Reason::SeveralValues(labels.join(", ")),
            ));
        }
        let value = match raw {
            RawRecord { value: Some(v), .. } => {
                Some(Value::Number(finite_sum(index, "v", base.value, *v)?))
            }
            RawRecord {
                string_value: Some(s),
                ..
            } => Some(Value::String(Arc::from(&**s))),
            RawRecord {
                bool_value: Some(b),
                ..
            } => Some(Value::Bool(*b)),
            RawRecord {
                data_value: Some(d),
                ..
            } => Some(Value::Data(Arc::from(&**d))),
            _ => base.value.map(Value::Number),
        };
        let sum = match (base.sum, raw.sum) {
            (None, None) => None,
            (b, s) => Some(finite_sum(index, "s", b, s.unwrap_or(0.0))?),
        };
        if value.is_none() && sum.is_none() {
            return Err(Error::in_record(index, Reason::NoValue));
        }
        check_finite(index, "ut", raw.update_time)?;
        let time = self.time(index, base, raw.time)?;
        let unit = match raw.unit.as_deref() {
            Some(u) => Some(self.unit(u)),
            None => base.unit.clone(),
        };
        let new_base_name = pending
            .map(|p| p.name.as_str())
            .filter(|bn| *bn != self.base.name);
        let name = match new_base_name {
            Some(bn) => self.new_name(index, bn, raw.name.as_deref().unwrap_or(""))?,
            None => self.name(index, raw.name.as_deref().unwrap_or(""))?,
        };
        Ok(Record::new(name, time, value)
            .with_unit(unit)
            .with_sum(sum)
            .with_update_time(raw.update_time))
    }

    /// `base time + time` (+ now when relative) in microseconds. Each term is
    /// converted to integer microseconds before the addition, so that a
    /// time written as `bt` + `t` resolves to the same microsecond as the
    /// same time written whole (an f64 sum near 2^32 s could be 1 µs off).
    #[inline]
    fn time(&self, index: usize, base: &Base, time: Option<f64>) -> Result<i64> {
        check_finite(index, "t", time)?;
        let time = time.unwrap_or(0.0);
        let seconds = base.time + time;
        let out_of_range = || Error::in_field(index, "t", Reason::TimeOutOfRange(seconds));
        let mut micros = to_micros(time)
            .and_then(|t| t.checked_add(base.time_micros))
            .ok_or_else(out_of_range)?;
        if seconds < RELATIVE_TIME_LIMIT {
            micros = to_micros(self.now)
                .and_then(|now| now.checked_add(micros))
                .ok_or_else(out_of_range)?;
        }
        // i64 microseconds span ±292,000 years; keep a margin for arithmetic on them.
        if micros.unsigned_abs() >= 1 << 62 {
            return Err(out_of_range());
        }
        Ok(micros)
    }

    /// The interned resolved name under the current base name, checked once
    /// per distinct name.
    #[inline]
    fn name(&mut self, index: usize, name: &str) -> Result<Text> {
        if let Some((last, arc)) = &self.last_name
            && **last == *name
        {
            return Ok(arc.clone());
        }
        let arc = match self.names.get(name) {
            Some(arc) => arc.clone(),
            None => {
                let arc = self.new_name(index, &self.base.name, name)?;
                if self.names.len() >= CACHE_LIMIT {
                    self.names.clear();
                }
                self.names.insert(name.into(), arc.clone());
                arc
            }
        };
        self.last_name = Some((name.into(), arc.clone()));
        Ok(arc)
    }

    /// `base_name + name`, checked.
    fn new_name(&self, index: usize, base_name: &str, name: &str) -> Result<Text> {
        let full = format!("{base_name}{name}");
        if let Err(why) = check_name(&full) {
            let label = if name.is_empty() { "bn" } else { "n" };
            return Err(Error::in_field(
                index,
                label,
                Reason::InvalidName { name: full, why },
            ));
        }
        Ok(Text::from(full))
    }

    fn unit(&mut self, unit: &str) -> Text {
        if let Some(arc) = self.units.get(unit) {
            return arc.clone();
        }
        if self.units.len() >= CACHE_LIMIT {
            self.units.clear();
        }
        let arc = Text::from(unit);
        self.units.insert(unit.into(), arc.clone());
        arc
    }

    /// The end of the pack: an error if no record came at all, or if none
    /// was a measurement (every one only set base fields).
    pub fn check_end(&self) -> Result<()> {
        match (self.index, self.produced) {
            (0, _) => Err(Error::input(Reason::EmptyPack)),
            (_, 0) => Err(Error::input(Reason::NoMeasurement)),
            _ => Ok(()),
        }
    }

    /// The resolved pack, in stable chronological order; refused as
    /// [`Resolver::check_end`] says.
    pub fn finish(mut self) -> Result<ResolvedPack> {
        self.check_end()?;
        if !self.sorted {
            self.records.sort_by_key(|r| r.time);
        }
        Ok(ResolvedPack {
            version: self.base.version.unwrap_or(DEFAULT_VERSION),
            records: self.records,
        })
    }
}

/// Seconds to integer microseconds, `None` beyond ±146,000 years.
#[inline]
fn to_micros(seconds: f64) -> Option<i64> {
    // Whole seconds, the common case, need no rounding (a libm call).
    let whole = seconds as i64;
    if whole as f64 == seconds && whole.unsigned_abs() < 4_000_000_000_000 {
        return Some(whole * 1_000_000);
    }
    let micros = (seconds * 1e6).round();
    (micros.is_finite() && micros.abs() < 4.6e18).then_some(micros as i64)
}

#[inline]
fn check_finite(index: usize, label: &str, v: Option<f64>) -> Result<()> {
    match v {
        Some(v) if !v.is_finite() => Err(Error::in_field(
            index,
            label,
            Reason::NotFinite(v.to_string()),
        )),
        _ => Ok(()),
    }
}

/// `base + v`, refused when either or the sum is not finite (1e308 + 1e308).
#[inline]
fn finite_sum(index: usize, label: &str, base: Option<f64>, v: f64) -> Result<f64> {
    check_finite(index, label, Some(v))?;
    let total = base.unwrap_or(0.0) + v;
    if total.is_finite() {
        Ok(total)
    } else {
        Err(Error::in_field(
            index,
            label,
            Reason::NotFinite(format!("{} + {v}", base.unwrap_or(0.0))),
        ))
    }
}
