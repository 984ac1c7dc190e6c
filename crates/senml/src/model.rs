//! The SenML data model: raw records as they are written, resolved records
//! as they are meant.

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::Reason;

/// The SenML version of RFC 8428. Packs without `bver` have this version.
pub const DEFAULT_VERSION: u64 = 10;

/// Times below 2^28 seconds are relative to "now" (RFC 8428 §4.5.3).
pub const RELATIVE_TIME_LIMIT: f64 = 268_435_456.0;

/// The labels of RFC 8428 Table 1, with their CBOR integer labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    /// `bver`, CBOR -1.
    BaseVersion,
    /// `bn`, CBOR -2.
    BaseName,
    /// `bt`, CBOR -3.
    BaseTime,
    /// `bu`, CBOR -4.
    BaseUnit,
    /// `bv`, CBOR -5.
    BaseValue,
    /// `bs`, CBOR -6.
    BaseSum,
    /// `n`, CBOR 0.
    Name,
    /// `u`, CBOR 1.
    Unit,
    /// `v`, CBOR 2.
    Value,
    /// `vs`, CBOR 3.
    StringValue,
    /// `vb`, CBOR 4.
    BoolValue,
    /// `s`, CBOR 5.
    Sum,
    /// `t`, CBOR 6.
    Time,
    /// `ut`, CBOR 7.
    UpdateTime,
    /// `vd`, CBOR 8.
    DataValue,
}

impl Label {
    /// Every label, in the order the encoders write them.
    pub const ALL: [Label; 15] = [
        Label::BaseVersion,
        Label::BaseName,
        Label::BaseTime,
        Label::BaseUnit,
        Label::BaseValue,
        Label::BaseSum,
        Label::Name,
        Label::Unit,
        Label::Time,
        Label::Value,
        Label::StringValue,
        Label::BoolValue,
        Label::DataValue,
        Label::Sum,
        Label::UpdateTime,
    ];

    /// The JSON and XML label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Label::BaseVersion => "bver",
            Label::BaseName => "bn",
            Label::BaseTime => "bt",
            Label::BaseUnit => "bu",
            Label::BaseValue => "bv",
            Label::BaseSum => "bs",
            Label::Name => "n",
            Label::Unit => "u",
            Label::Value => "v",
            Label::StringValue => "vs",
            Label::BoolValue => "vb",
            Label::Sum => "s",
            Label::Time => "t",
            Label::UpdateTime => "ut",
            Label::DataValue => "vd",
        }
    }

    /// The CBOR integer label.
    pub const fn cbor(self) -> i8 {
        match self {
            Label::BaseVersion => -1,
            Label::BaseName => -2,
            Label::BaseTime => -3,
            Label::BaseUnit => -4,
            Label::BaseValue => -5,
            Label::BaseSum => -6,
            Label::Name => 0,
            Label::Unit => 1,
            Label::Value => 2,
            Label::StringValue => 3,
            Label::BoolValue => 4,
            Label::Sum => 5,
            Label::Time => 6,
            Label::UpdateTime => 7,
            Label::DataValue => 8,
        }
    }

    /// The label with this JSON/XML name.
    pub fn from_name(name: &str) -> Option<Label> {
        Label::from_bytes(name.as_bytes())
    }

    /// The label with this JSON/XML name, as bytes.
    #[inline]
    pub fn from_bytes(name: &[u8]) -> Option<Label> {
        Some(match name {
            b"bver" => Label::BaseVersion,
            b"bn" => Label::BaseName,
            b"bt" => Label::BaseTime,
            b"bu" => Label::BaseUnit,
            b"bv" => Label::BaseValue,
            b"bs" => Label::BaseSum,
            b"n" => Label::Name,
            b"u" => Label::Unit,
            b"v" => Label::Value,
            b"vs" => Label::StringValue,
            b"vb" => Label::BoolValue,
            b"s" => Label::Sum,
            b"t" => Label::Time,
            b"ut" => Label::UpdateTime,
            b"vd" => Label::DataValue,
            _ => return None,
        })
    }

    /// The label with this CBOR integer.
    pub fn from_cbor(key: i64) -> Option<Label> {
        Some(match key {
            -1 => Label::BaseVersion,
            -2 => Label::BaseName,
            -3 => Label::BaseTime,
            -4 => Label::BaseUnit,
            -5 => Label::BaseValue,
            -6 => Label::BaseSum,
            0 => Label::Name,
            1 => Label::Unit,
            2 => Label::Value,
            3 => Label::StringValue,
            4 => Label::BoolValue,
            5 => Label::Sum,
            6 => Label::Time,
            7 => Label::UpdateTime,
            8 => Label::DataValue,
            _ => return None,
        })
    }
}

/// What an unknown label means for a decoder (RFC 8428 §4.4).
pub(crate) fn check_unknown_label(label: &str) -> Result<(), Reason> {
    if label.ends_with('_') {
        Err(Reason::MustUnderstand(label.to_owned()))
    } else {
        Ok(())
    }
}

/// A record as written in a pack: base fields included, times possibly
/// relative. Strings borrow from the input when they can.
///
/// Unknown labels are not kept: RFC 8428 says to ignore them (and decoders
/// refuse unknown labels ending in `_`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRecord<'a> {
    /// `bver`.
    pub base_version: Option<u64>,
    /// `bn`.
    pub base_name: Option<Cow<'a, str>>,
    /// `bt`, seconds.
    pub base_time: Option<f64>,
    /// `bu`.
    pub base_unit: Option<Cow<'a, str>>,
    /// `bv`.
    pub base_value: Option<f64>,
    /// `bs`.
    pub base_sum: Option<f64>,
    /// `n`.
    pub name: Option<Cow<'a, str>>,
    /// `u`.
    pub unit: Option<Cow<'a, str>>,
    /// `v`.
    pub value: Option<f64>,
    /// `vs`.
    pub string_value: Option<Cow<'a, str>>,
    /// `vb`.
    pub bool_value: Option<bool>,
    /// `vd`, already decoded from base64url (JSON, XML) or taken as is (CBOR).
    pub data_value: Option<Cow<'a, [u8]>>,
    /// `s`.
    pub sum: Option<f64>,
    /// `t`, seconds.
    pub time: Option<f64>,
    /// `ut`, seconds.
    pub update_time: Option<f64>,
}

impl<'a> RawRecord<'a> {
    /// A copy that owns its strings, independent of the input buffer.
    pub fn into_owned(self) -> RawRecord<'static> {
        fn own(s: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            s.map(|s| Cow::Owned(s.into_owned()))
        }
        RawRecord {
            base_version: self.base_version,
            base_name: own(self.base_name),
            base_time: self.base_time,
            base_unit: own(self.base_unit),
            base_value: self.base_value,
            base_sum: self.base_sum,
            name: own(self.name),
            unit: own(self.unit),
            value: self.value,
            string_value: own(self.string_value),
            bool_value: self.bool_value,
            data_value: self.data_value.map(|d| Cow::Owned(d.into_owned())),
            sum: self.sum,
            time: self.time,
            update_time: self.update_time,
        }
    }

    /// Whether the record holds only base fields, which set context for the
    /// records after it and produce no resolved record themselves
    /// (as in RFC 8428 §5.1.7: `[{"bn":"…"},{"n":"temp",…}]`).
    pub fn is_base_only(&self) -> bool {
        self.name.is_none()
            && self.unit.is_none()
            && self.value.is_none()
            && self.string_value.is_none()
            && self.bool_value.is_none()
            && self.data_value.is_none()
            && self.sum.is_none()
            && self.time.is_none()
            && self.update_time.is_none()
    }

    /// The fields present, in the order encoders write them
    /// ([`Label::ALL`]: base fields, name, unit, time, value, sum, update time).
    pub fn fields(&self) -> Fields<'_> {
        let mut f = Fields::default();
        if let Some(v) = self.base_version {
            f.push(Label::BaseVersion, FieldValue::Unsigned(v));
        }
        f.text(Label::BaseName, &self.base_name);
        f.number(Label::BaseTime, self.base_time);
        f.text(Label::BaseUnit, &self.base_unit);
        f.number(Label::BaseValue, self.base_value);
        f.number(Label::BaseSum, self.base_sum);
        f.text(Label::Name, &self.name);
        f.text(Label::Unit, &self.unit);
        f.number(Label::Time, self.time);
        f.number(Label::Value, self.value);
        f.text(Label::StringValue, &self.string_value);
        if let Some(b) = self.bool_value {
            f.push(Label::BoolValue, FieldValue::Bool(b));
        }
        if let Some(d) = self.data_value.as_deref() {
            f.push(Label::DataValue, FieldValue::Data(d));
        }
        f.number(Label::Sum, self.sum);
        f.number(Label::UpdateTime, self.update_time);
        f
    }

    /// Sets the numeric field of `label` (`bt`, `bv`, `bs`, `v`, `s`, `t`, `ut`);
    /// other labels are not numbers and are left alone.
    pub(crate) fn set_number(&mut self, label: Label, v: f64) {
        let slot = match label {
            Label::BaseTime => &mut self.base_time,
            Label::BaseValue => &mut self.base_value,
            Label::BaseSum => &mut self.base_sum,
            Label::Value => &mut self.value,
            Label::Sum => &mut self.sum,
            Label::Time => &mut self.time,
            Label::UpdateTime => &mut self.update_time,
            _ => return,
        };
        *slot = Some(v);
    }

    /// Sets the text field of `label` (`bn`, `bu`, `n`, `u`, `vs`); other
    /// labels are not text and are left alone.
    pub(crate) fn set_text(&mut self, label: Label, s: Cow<'a, str>) {
        let slot = match label {
            Label::BaseName => &mut self.base_name,
            Label::BaseUnit => &mut self.base_unit,
            Label::Name => &mut self.name,
            Label::Unit => &mut self.unit,
            Label::StringValue => &mut self.string_value,
            _ => return,
        };
        *slot = Some(s);
    }

    /// The labels of the value fields present (`v`, `vs`, `vb`, `vd`).
    pub(crate) fn value_labels(&self) -> impl Iterator<Item = Label> + '_ {
        [
            (self.value.is_some(), Label::Value),
            (self.string_value.is_some(), Label::StringValue),
            (self.bool_value.is_some(), Label::BoolValue),
            (self.data_value.is_some(), Label::DataValue),
        ]
        .into_iter()
        .filter_map(|(present, label)| present.then_some(label))
    }
}

/// One field's value, as [`RawRecord::fields`] hands it to an encoder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// `bver`.
    Unsigned(u64),
    /// Times, values, sums.
    Number(f64),
    /// Names, units, string values.
    Text(&'a str),
    /// `vb`.
    Bool(bool),
    /// `vd`.
    Data(&'a [u8]),
}

/// The fields of one record, in the order encoders write them: what every
/// writer consumes, whether the record is raw or resolved.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    items: [(Label, FieldValue<'a>); 15],
    len: usize,
}

impl Default for Fields<'_> {
    fn default() -> Self {
        Fields {
            items: [(Label::Name, FieldValue::Bool(false)); 15],
            len: 0,
        }
    }
}

impl<'a> Fields<'a> {
    fn push(&mut self, label: Label, value: FieldValue<'a>) {
        self.items[self.len] = (label, value);
        self.len += 1;
    }

    fn text(&mut self, label: Label, text: &'a Option<Cow<'_, str>>) {
        if let Some(s) = text.as_deref() {
            self.push(label, FieldValue::Text(s));
        }
    }

    fn number(&mut self, label: Label, v: Option<f64>) {
        if let Some(v) = v {
            self.push(label, FieldValue::Number(v));
        }
    }

    /// The fields, in order.
    pub fn as_slice(&self) -> &[(Label, FieldValue<'a>)] {
        &self.items[..self.len]
    }
}

/// The value of a resolved record.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `v`: a number (base value already added).
    Number(f64),
    /// `vs`: a string.
    String(Arc<str>),
    /// `vb`: a boolean.
    Bool(bool),
    /// `vd`: opaque bytes.
    Data(Arc<[u8]>),
}

/// Shared text of resolved records, a name or a unit: one pointer wide, so
/// that a record stays small, and cheap to clone (a million records of one
/// meter hold one copy of its name). Reads as a `str`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(Arc<String>);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Arc::new(s.to_owned()))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Arc::new(s))
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        *self.0 == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == *other
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// An optional finite number in 8 bytes: SenML numbers are finite, so NaN
/// is free to mean "absent". Keeps [`Record`] at 64 bytes.
#[derive(Clone, Copy)]
struct MaybeNumber(f64);

impl MaybeNumber {
    #[inline]
    fn new(value: Option<f64>) -> MaybeNumber {
        debug_assert!(value.is_none_or(f64::is_finite), "SenML numbers are finite");
        MaybeNumber(value.unwrap_or(f64::NAN))
    }

    #[inline]
    fn get(self) -> Option<f64> {
        (!self.0.is_nan()).then_some(self.0)
    }
}

impl PartialEq for MaybeNumber {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for MaybeNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// A resolved record (RFC 8428 §4.6): absolute name, absolute time, no base
/// fields.
///
/// 64 bytes: a node holds millions of them. Names and units are shared
/// ([`Text`]); the sum and update time, rarely present, are read with
/// [`Record::sum`] and [`Record::update_time`].
///
/// ```
/// use senml::{Record, Value};
/// let r = Record::new("urn:dev:ow:10e2073a01080063:voltage", 1_320_067_464_000_000, Some(Value::Number(120.1)))
///     .with_unit(Some("V".into()));
/// assert_eq!((r.unit.as_deref(), r.sum()), (Some("V"), None));
/// assert_eq!(std::mem::size_of::<Record>(), 64);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Base name + name; valid per RFC 8428 §4.5.1.
    pub name: Text,
    /// Unit, else base unit.
    pub unit: Option<Text>,
    /// UTC time in integer microseconds since the Unix epoch.
    pub time: i64,
    /// The value; `None` only for a record that carries a sum alone.
    pub value: Option<Value>,
    sum: MaybeNumber,
    update_time: MaybeNumber,
}

impl Record {
    /// A record without unit, sum or update time.
    #[inline]
    pub fn new(name: impl Into<Text>, time: i64, value: Option<Value>) -> Record {
        Record {
            name: name.into(),
            unit: None,
            time,
            value,
            sum: MaybeNumber::new(None),
            update_time: MaybeNumber::new(None),
        }
    }

    /// With this unit.
    #[inline]
    pub fn with_unit(mut self, unit: Option<Text>) -> Record {
        self.unit = unit;
        self
    }

    /// With this sum (finite, as SenML numbers are).
    #[inline]
    pub fn with_sum(mut self, sum: Option<f64>) -> Record {
        self.sum = MaybeNumber::new(sum);
        self
    }

    /// With this update time, in seconds (finite).
    #[inline]
    pub fn with_update_time(mut self, update_time: Option<f64>) -> Record {
        self.update_time = MaybeNumber::new(update_time);
        self
    }

    /// Base sum + sum, if either was present.
    #[inline]
    pub fn sum(&self) -> Option<f64> {
        self.sum.get()
    }

    /// Update time, in seconds (a duration, not resolved against anything).
    #[inline]
    pub fn update_time(&self) -> Option<f64> {
        self.update_time.get()
    }

    /// The record's time in SenML seconds.
    pub fn time_seconds(&self) -> f64 {
        self.time as f64 / 1e6
    }

    /// The numeric value, if the record has one.
    pub fn number(&self) -> Option<f64> {
        match self.value {
            Some(Value::Number(v)) => Some(v),
            _ => None,
        }
    }
}

/// A resolved pack: its version and its records in chronological order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedPack {
    /// The pack's SenML version (10 unless the producer said otherwise).
    pub version: u64,
    /// Resolved records, in chronological order (stable: records with equal
    /// times keep the order they had in the pack).
    pub records: Vec<Record>,
}

impl ResolvedPack {
    /// The records as raw records without base fields, ready to encode
    /// (RFC 8428 §5.1.4 shape). Use [`crate::compact`] for a smaller form.
    pub fn to_raw(&self) -> Vec<RawRecord<'_>> {
        self.records
            .iter()
            .map(|r| r.to_raw(self.version))
            .collect()
    }
}

impl Record {
    /// The fields of this record as a resolved record without base fields
    /// (RFC 8428 §5.1.4 shape), for a pack of `version`: what
    /// [`crate::RecordWriter::write_resolved`] writes, without building a
    /// raw record first.
    pub fn fields(&self, version: u64) -> Fields<'_> {
        let mut f = Fields::default();
        if version != DEFAULT_VERSION {
            f.push(Label::BaseVersion, FieldValue::Unsigned(version));
        }
        f.push(Label::Name, FieldValue::Text(&self.name));
        if let Some(u) = self.unit.as_deref() {
            f.push(Label::Unit, FieldValue::Text(u));
        }
        f.push(Label::Time, FieldValue::Number(self.time_seconds()));
        match &self.value {
            Some(Value::Number(v)) => f.push(Label::Value, FieldValue::Number(*v)),
            Some(Value::String(s)) => f.push(Label::StringValue, FieldValue::Text(s)),
            Some(Value::Bool(b)) => f.push(Label::BoolValue, FieldValue::Bool(*b)),
            Some(Value::Data(d)) => f.push(Label::DataValue, FieldValue::Data(d)),
            None => {}
        }
        f.number(Label::Sum, self.sum());
        f.number(Label::UpdateTime, self.update_time());
        f
    }

    /// This record as a raw record without base fields, for a pack of
    /// `version` (which resolved records carry only when it is not 10).
    pub fn to_raw(&self, version: u64) -> RawRecord<'_> {
        let mut raw = RawRecord {
            base_version: (version != DEFAULT_VERSION).then_some(version),
            name: Some(Cow::Borrowed(&*self.name)),
            unit: self.unit.as_deref().map(Cow::Borrowed),
            time: Some(self.time_seconds()),
            sum: self.sum(),
            update_time: self.update_time(),
            ..RawRecord::default()
        };
        set_value(&mut raw, self.value.as_ref());
        raw
    }
}

/// Puts a resolved value into the matching raw field.
pub(crate) fn set_value<'a>(raw: &mut RawRecord<'a>, value: Option<&'a Value>) {
    match value {
        Some(Value::Number(v)) => raw.value = Some(*v),
        Some(Value::String(s)) => raw.string_value = Some(Cow::Borrowed(s)),
        Some(Value::Bool(b)) => raw.bool_value = Some(*b),
        Some(Value::Data(d)) => raw.data_value = Some(Cow::Borrowed(d)),
        None => {}
    }
}
