//! Resolution (RFC 8428 §4.5–4.6): base fields carried forward, relative
//! times against "now", one value per record, names checked, chronological order.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Reason, Result};
use crate::model::{DEFAULT_VERSION, RELATIVE_TIME_LIMIT, RawRecord, Record, ResolvedPack, Value};
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
    version: Option<u64>,
    base_version: Option<u64>,
    base_name: String,
    base_time: f64,
    base_unit: Option<Arc<str>>,
    base_value: Option<f64>,
    base_sum: Option<f64>,
    /// Resolved names under the current base name, by record name (`""` for none).
    names: HashMap<Box<str>, Arc<str>>,
    /// The last name looked up, to skip the map for runs of one name.
    last_name: Option<(Box<str>, Arc<str>)>,
    units: HashMap<Box<str>, Arc<str>>,
    records: Vec<Record>,
    produced: usize,
    sorted: bool,
    keep: bool,
}

impl Resolver {
    /// A resolver for one pack; relative times are taken from `now` (SenML
    /// seconds since the Unix epoch).
    pub fn new(now: f64) -> Self {
        Resolver {
            now,
            index: 0,
            version: None,
            base_version: None,
            base_name: String::new(),
            base_time: 0.0,
            base_unit: None,
            base_value: None,
            base_sum: None,
            names: HashMap::new(),
            last_name: None,
            units: HashMap::new(),
            records: Vec::new(),
            produced: 0,
            sorted: true,
            keep: true,
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

    /// Takes the next raw record of the pack. Returns the resolved record,
    /// or `None` for a record that only sets base fields.
    ///
    /// On error nothing of the record is applied, and the next record can
    /// still be fed (the error is about this record only).
    pub fn push(&mut self, raw: &RawRecord<'_>) -> Result<Option<&Record>> {
        let index = self.index;
        self.index += 1;
        let record = self.resolve(index, raw)?;
        match record {
            Some(record) => {
                self.produced += 1;
                if self.keep {
                    if let Some(last) = self.records.last() {
                        self.sorted &= last.time <= record.time;
                    }
                    self.records.push(record);
                    Ok(self.records.last())
                } else {
                    self.records.clear();
                    self.records.push(record);
                    Ok(self.records.last())
                }
            }
            None => Ok(None),
        }
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
            version: self.version.unwrap_or(DEFAULT_VERSION),
            records: self.records,
        })
    }

    fn resolve(&mut self, index: usize, raw: &RawRecord<'_>) -> Result<Option<Record>> {
        let field_err = |label: &str, reason| Error::in_field(index, label, reason);

        // Version: a base field like the others, the same for every record.
        let version = raw
            .base_version
            .or(self.base_version)
            .unwrap_or(DEFAULT_VERSION);
        if !is_supported_version(version) {
            return Err(field_err("bver", Reason::UnsupportedVersion(version)));
        }
        if let Some(pack) = self.version {
            if pack != version {
                return Err(field_err(
                    "bver",
                    Reason::VersionMismatch {
                        pack,
                        found: version,
                    },
                ));
            }
        }

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

        // Everything below is computed before any base field is updated, so
        // a refused record leaves the resolver as it was.
        let base_time = raw.base_time.unwrap_or(self.base_time);
        let base_value = raw.base_value.or(self.base_value);
        let base_sum = raw.base_sum.or(self.base_sum);
        for (label, v) in [
            ("bt", raw.base_time),
            ("bv", raw.base_value),
            ("bs", raw.base_sum),
        ] {
            check_finite(index, label, v)?;
        }

        let produces = !raw.is_base_only();
        let mut resolved = None;
        if produces {
            let value = match raw {
                RawRecord { value: Some(v), .. } => {
                    Some(Value::Number(finite_sum(index, "v", base_value, *v)?))
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
                _ => base_value.map(Value::Number),
            };
            let sum = match (base_sum, raw.sum) {
                (None, None) => None,
                (b, s) => Some(finite_sum(index, "s", b, s.unwrap_or(0.0))?),
            };
            if value.is_none() && sum.is_none() {
                return Err(Error::in_record(index, Reason::NoValue));
            }
            check_finite(index, "ut", raw.update_time)?;
            let time = self.time(index, base_time, raw.time)?;
            let new_base = raw.base_name.as_deref().filter(|bn| *bn != self.base_name);
            let name = self.name(index, new_base, raw.name.as_deref().unwrap_or(""))?;
            let unit = match raw.unit.as_deref() {
                Some(u) => Some(self.unit(u)),
                None => match raw.base_unit.as_deref() {
                    Some(bu) => Some(self.unit(bu)),
                    None => self.base_unit.clone(),
                },
            };
            resolved = Some(Record {
                name,
                time,
                value,
                sum,
                unit,
                update_time: raw.update_time,
            });
        }

        // Accepted: the record's base fields now apply to the records after it.
        self.version = Some(version);
        self.base_version = Some(version);
        if let Some(bn) = raw.base_name.as_deref() {
            if bn != self.base_name {
                self.base_name.clear();
                self.base_name.push_str(bn);
                self.names.clear();
                self.last_name = None;
            }
        }
        self.base_time = base_time;
        if let Some(bu) = raw.base_unit.as_deref() {
            self.base_unit = Some(self.unit(bu));
        }
        self.base_value = base_value;
        self.base_sum = base_sum;
        Ok(resolved)
    }

    /// `base time + time` (+ now when relative) in microseconds. Each term is
    /// converted to integer microseconds before the addition, so that a
    /// time written as `bt` + `t` resolves to the same microsecond as the
    /// same time written whole (an f64 sum near 2^32 s could be 1 µs off).
    fn time(&self, index: usize, base_time: f64, time: Option<f64>) -> Result<i64> {
        check_finite(index, "t", time)?;
        let time = time.unwrap_or(0.0);
        let seconds = base_time + time;
        let out_of_range = || Error::in_field(index, "t", Reason::TimeOutOfRange(seconds));
        let relative = seconds < RELATIVE_TIME_LIMIT;
        let now = if relative { self.now } else { 0.0 };
        let mut micros = 0i64;
        for part in [base_time, time, now] {
            micros = to_micros(part)
                .and_then(|m| micros.checked_add(m))
                .ok_or_else(out_of_range)?;
        }
        // i64 microseconds span ±292,000 years; keep a margin for arithmetic on them.
        if micros.unsigned_abs() >= 1 << 62 {
            return Err(out_of_range());
        }
        Ok(micros)
    }

    /// The interned resolved name `base name + name`, checked once per
    /// distinct name. `new_base` is a base name that replaces the current one
    /// from this record on.
    fn name(&mut self, index: usize, new_base: Option<&str>, name: &str) -> Result<Arc<str>> {
        let base_changed = new_base.is_some();
        if !base_changed {
            if let Some((last, arc)) = &self.last_name {
                if **last == *name {
                    return Ok(arc.clone());
                }
            }
            if let Some(arc) = self.names.get(name) {
                let arc = arc.clone();
                self.last_name = Some((name.into(), arc.clone()));
                return Ok(arc);
            }
        }
        let full = format!("{}{name}", new_base.unwrap_or(&self.base_name));
        if let Err(why) = check_name(&full) {
            let label = if name.is_empty() { "bn" } else { "n" };
            return Err(Error::in_field(
                index,
                label,
                Reason::InvalidName { name: full, why },
            ));
        }
        let arc: Arc<str> = Arc::from(full);
        if !base_changed {
            if self.names.len() >= CACHE_LIMIT {
                self.names.clear();
            }
            self.names.insert(name.into(), arc.clone());
            self.last_name = Some((name.into(), arc.clone()));
        }
        Ok(arc)
    }

    fn unit(&mut self, unit: &str) -> Arc<str> {
        if let Some(arc) = self.units.get(unit) {
            return arc.clone();
        }
        if self.units.len() >= CACHE_LIMIT {
            self.units.clear();
        }
        let arc: Arc<str> = Arc::from(unit);
        self.units.insert(unit.into(), arc.clone());
        arc
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
