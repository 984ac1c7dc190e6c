//! The store's vocabulary: streams, their metadata, tokens, accounts.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the records of a stream hold. A stream holds one kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// `v`: numbers.
    Number,
    /// `vb`: booleans (aggregated as 0/1, so that a mean is a duty cycle).
    Boolean,
    /// `vs`: strings.
    String,
    /// `vd`: opaque bytes.
    Data,
}

impl ValueKind {
    /// The kind of a resolved value.
    pub fn of(value: &senml::Value) -> ValueKind {
        match value {
            senml::Value::Number(_) => ValueKind::Number,
            senml::Value::Bool(_) => ValueKind::Boolean,
            senml::Value::String(_) => ValueKind::String,
            senml::Value::Data(_) => ValueKind::Data,
        }
    }

    /// The SenML label that carries this kind.
    pub fn label(self) -> &'static str {
        match self {
            ValueKind::Number => "v",
            ValueKind::Boolean => "vb",
            ValueKind::String => "vs",
            ValueKind::Data => "vd",
        }
    }

    /// Whether records of this kind are rolled up (count, sum, min, max…).
    pub fn is_aggregated(self) -> bool {
        matches!(self, ValueKind::Number | ValueKind::Boolean)
    }

    pub(crate) fn code(self) -> i16 {
        match self {
            ValueKind::Number => 0,
            ValueKind::Boolean => 1,
            ValueKind::String => 2,
            ValueKind::Data => 3,
        }
    }

    pub(crate) fn from_code(code: i64) -> Result<ValueKind> {
        Ok(match code {
            0 => ValueKind::Number,
            1 => ValueKind::Boolean,
            2 => ValueKind::String,
            3 => ValueKind::Data,
            _ => {
                return Err(crate::error::corrupt(
                    "a stream's kind of value in the database",
                    format!("{code} is no kind this fedwatt knows"),
                ));
            }
        })
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Number => "numbers",
            ValueKind::Boolean => "booleans",
            ValueKind::String => "strings",
            ValueKind::Data => "data",
        })
    }
}

/// A stream's metadata, as Quoalise's `meta` describes a series. Every part
/// is optional; unknown keys are refused so that typos do not go unnoticed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The device that measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// What is measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<Measurement>,
    /// How the business sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business: Option<Business>,
    /// How each value aggregates the period it stands for: `average`, `sum`, `instant`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<String>,
    /// Time between two points, as an ISO 8601 duration (`PT30M`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_interval: Option<String>,
    /// Licence of the data when published (`ODbL-1.0`, `etalab-2.0`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// How long points are kept, as an ISO 8601 duration (`P1Y`); older
    /// points are purged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    /// The name this stream had in a SEN1-era system (`app@server/…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sen1_name: Option<String>,
    /// Free labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Quoalise `meta.device`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// `electricity-meter`, `sensor`…
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub kind: Option<String>,
    /// Who assigns the identifier (`enedis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier_authority: Option<String>,
    /// The identifier's type (`prm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier_type: Option<String>,
    /// The identifier (`30001610071843`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier_value: Option<String>,
}

/// Quoalise `meta.measurement`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    /// `power`, `energy`, `temperature`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical: Option<String>,
    /// `electrical`…
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub kind: Option<String>,
    /// SenML unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// Quoalise `meta.business`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Business {
    /// `load-curve`, `index`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<String>,
    /// `consumption` or `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
}

impl Metadata {
    /// Checks what can be checked: durations parse.
    pub fn check(&self) -> Result<()> {
        for (key, value) in [
            ("retention", &self.retention),
            ("sampling_interval", &self.sampling_interval),
        ] {
            if let Some(text) = value {
                parse_duration(text).map_err(|e| Error::Invalid(format!("metadata {key}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// Parses an ISO 8601 duration (`P1Y`, `PT15M`, `P1DT12H`).
pub fn parse_duration(text: &str) -> std::result::Result<jiff::Span, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|e| format!("{text:?} is not an ISO 8601 duration ({e})"))?;
    if span.is_negative() || span.is_zero() {
        return Err(format!("{text:?} is not a positive duration"));
    }
    Ok(span)
}

/// A stream as the store knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamInfo {
    /// Resolved SenML name.
    pub name: String,
    /// SenML unit; every point is stored in it.
    pub unit: Option<String>,
    /// What the points hold.
    pub kind: ValueKind,
    /// Quoalise-style metadata.
    pub metadata: Metadata,
    /// Who sent its first point (a token's name), if known.
    pub owner: Option<String>,
    /// Readable without a token.
    pub open: bool,
    /// When the stream was created, µs since the epoch.
    pub created: i64,
    /// Number of points.
    pub count: u64,
    /// Time of the first point, µs.
    pub first: Option<i64>,
    /// Time of the last point, µs.
    pub last: Option<i64>,
    /// The peer (a bare JID) the stream is received from over the
    /// federation; `None` for the node's own streams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// What a token may do. Each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read streams, records, aggregates.
    Read,
    /// Also post data.
    Write,
    /// Also change stream metadata and publication.
    Admin,
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            _ => Err(format!(
                "unknown scope {s:?} (expected read, write or admin)"
            )),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        })
    }
}

/// A glob over stream names: `*` matches any run of characters, anything
/// else matches itself. `*` alone matches every stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StreamPattern(String);

impl StreamPattern {
    /// Every stream.
    pub fn all() -> Self {
        StreamPattern("*".into())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty(); // no `*`: the whole name
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

impl FromStr for StreamPattern {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.is_empty() {
            return Err("an empty stream pattern matches nothing; use * for every stream".into());
        }
        if let Some(bad) = s
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || "-:./_*".contains(c)))
        {
            return Err(format!("{bad:?} cannot appear in a stream name or pattern"));
        }
        Ok(StreamPattern(s.to_owned()))
    }
}

/// A token as the store keeps it (its secret only hashed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Token {
    /// Its unique name (who or what uses it).
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// Which streams.
    pub streams: StreamPattern,
    /// When it was created, µs.
    pub created: i64,
}

impl Token {
    /// Whether it may do `needed` on `stream`.
    pub fn allows(&self, needed: Scope, stream: &str) -> bool {
        self.scope >= needed && self.streams.matches(stream)
    }
}

/// What a signed-in account may do (see the API's roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, accounts included.
    Admin,
    /// Reads every stream, writes manual readings to any; manages no account.
    Operator,
    /// Reads open streams and their own, writes their own.
    Member,
}

impl Role {
    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Member => "member",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "member" => Ok(Role::Member),
            _ => Err(format!(
                "unknown role {s:?} (expected admin, operator or member)"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person's account on the node (its password only hashed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Account {
    /// Its unique name, `[a-z0-9._-]{1,64}`.
    pub name: String,
    /// The name shown to people.
    pub display_name: String,
    /// What it may do.
    pub role: Role,
    /// Streams it owns besides those whose owner is its name.
    pub streams: Vec<StreamPattern>,
    /// The stream of its household's consumption, if set.
    pub consumption_stream: Option<String>,
    /// When it was created, µs.
    pub created: i64,
}

impl Account {
    /// Whether it owns the stream `name` whose owner is `owner`: the owner
    /// is the account, or the name matches one of its patterns.
    pub fn owns(&self, name: &str, owner: Option<&str>) -> bool {
        owner == Some(self.name.as_str()) || self.streams.iter().any(|p| p.matches(name))
    }
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Its name, `[a-z0-9._-]{1,64}`.
    pub name: String,
    /// The name shown to people.
    pub display_name: String,
    /// Its role.
    pub role: Role,
    /// Its password, in clear (hashed before it is stored).
    pub password: String,
    /// Stream patterns it owns.
    pub streams: Vec<StreamPattern>,
    /// Its consumption stream.
    pub consumption_stream: Option<String>,
}

/// Changes to an account: `None` keeps what it has.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    /// A new display name.
    pub display_name: Option<String>,
    /// A new role.
    pub role: Option<Role>,
    /// A new password, in clear.
    pub password: Option<String>,
    /// New stream patterns, replacing the old.
    pub streams: Option<Vec<StreamPattern>>,
    /// A new consumption stream, or `Some(None)` for none.
    pub consumption_stream: Option<Option<String>>,
}

/// A signed-in session, as the store keeps it (its id only hashed).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The account signed in.
    pub account: String,
    /// The token each state-changing call of this session must carry.
    pub csrf: String,
    /// When it began, µs.
    pub created: i64,
    /// When it was last used, µs (kept to the minute).
    pub last_seen: i64,
    /// When it ends whatever its use, µs.
    pub expires: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_globs() {
        let p = |s: &str| s.parse::<StreamPattern>().unwrap();
        assert!(p("*").matches("anything"));
        assert!(p("urn:dev:prm:3000*").matches("urn:dev:prm:30001610071843_consumption"));
        assert!(!p("urn:dev:prm:3000*").matches("urn:dev:prm:2000"));
        assert!(p("a*c").matches("abc") && p("a*c").matches("ac") && !p("a*c").matches("ab"));
        assert!(p("*power*").matches("x/power/active") && !p("*power*").matches("x/energy"));
        assert!(p("exact").matches("exact") && !p("exact").matches("exactly"));
        assert!(
            !p("ab*ba").matches("aba"),
            "prefix and suffix may not overlap"
        );
        assert!("".parse::<StreamPattern>().is_err() && "a b".parse::<StreamPattern>().is_err());
    }

    #[test]
    fn scopes_include_the_lower_ones() {
        let t = Token {
            name: "t".into(),
            scope: Scope::Write,
            streams: "a*".parse().unwrap(),
            created: 0,
        };
        assert!(t.allows(Scope::Read, "ab") && t.allows(Scope::Write, "ab"));
        assert!(!t.allows(Scope::Admin, "ab") && !t.allows(Scope::Read, "b"));
    }

    #[test]
    fn metadata_refuses_unknown_keys_and_bad_durations() {
        let m: Metadata =
            serde_json::from_str(r#"{"retention":"P1Y","labels":{"site":"school"}}"#).unwrap();
        m.check().unwrap();
        assert!(serde_json::from_str::<Metadata>(r#"{"retension":"P1Y"}"#).is_err());
        let bad: Metadata = serde_json::from_str(r#"{"retention":"one year"}"#).unwrap();
        assert!(bad.check().unwrap_err().to_string().contains("retention"));
    }
}
