//! Names: the RFC 8428 §4.5.1 character rules, RFC 9039 device URNs, and
//! the reversible mapping of 2019 SEN1 names.

use std::fmt;

/// Whether `c` may appear in a resolved SenML name.
#[inline]
fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b':' | b'.' | b'/' | b'_')
}

/// Checks a resolved name against RFC 8428 §4.5.1: only `A-Z a-z 0-9 - : . / _`,
/// first character a letter or a digit. The error says which character is
/// wrong and where.
pub fn check_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err("the name is empty".into());
    };
    if !first.is_ascii_alphanumeric() {
        return Err(format!(
            "it starts with {:?}; a name starts with a letter or a digit",
            name.chars().next().unwrap_or_default()
        ));
    }
    if let Some(pos) = bytes.iter().position(|&c| !is_name_char(c)) {
        let ch = name[pos..].chars().next().unwrap_or_default();
        return Err(format!(
            "character {ch:?} at position {pos} is not allowed (only A-Z a-z 0-9 - : . / _)"
        ));
    }
    Ok(())
}

/// Whether `name` is a valid resolved SenML name.
pub fn is_valid_name(name: &str) -> bool {
    check_name(name).is_ok()
}

/// An RFC 9039 device URN, `urn:dev:<subtype>:<identifier>[_<component>]`,
/// as the Quoalise ecosystem uses them for stream names, e.g.
/// `urn:dev:prm:30001610071843_consumption/power/active/raw`.
///
/// ```
/// use senml::DeviceUrn;
/// let urn: DeviceUrn = "urn:dev:prm:30001610071843_consumption/power/active/raw".parse().unwrap();
/// assert_eq!(urn.subtype, "prm");
/// assert_eq!(urn.identifier, "30001610071843");
/// assert_eq!(urn.component.as_deref(), Some("consumption/power/active/raw"));
/// assert_eq!(urn.to_string(), "urn:dev:prm:30001610071843_consumption/power/active/raw");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceUrn {
    /// `mac`, `ow`, `org`, `os`, `ops`, or another lower-case subtype such as `prm`.
    pub subtype: String,
    /// The device identifier within the subtype.
    pub identifier: String,
    /// What follows the first `_`: the function or part of the device.
    pub component: Option<String>,
}

impl DeviceUrn {
    /// A device URN; checks the identifier against its subtype's rules.
    pub fn new(
        subtype: &str,
        identifier: &str,
        component: Option<&str>,
    ) -> Result<Self, DeviceUrnError> {
        let urn = DeviceUrn {
            subtype: subtype.to_owned(),
            identifier: identifier.to_owned(),
            component: component.map(str::to_owned),
        };
        urn.check()?;
        Ok(urn)
    }

    /// The URN of an electricity delivery point (PRM/PDL, 14 digits), as
    /// Quoalise names meters: `urn:dev:prm:<14 digits>`.
    pub fn prm(prm: &str, component: Option<&str>) -> Result<Self, DeviceUrnError> {
        Self::new("prm", prm, component)
    }

    fn check(&self) -> Result<(), DeviceUrnError> {
        let err = |why: String| Err(DeviceUrnError(why));
        let sub = self.subtype.as_str();
        if sub.is_empty()
            || !sub.as_bytes()[0].is_ascii_lowercase()
            || !sub
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return err(format!(
                "subtype {sub:?} must be lower-case letters and digits, starting with a letter"
            ));
        }
        let id = self.identifier.as_str();
        if id.is_empty() {
            return err("the identifier is empty".into());
        }
        if let Some(c) = id
            .bytes()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.')))
        {
            return err(format!(
                "identifier {id:?} contains {:?}; use letters, digits, '-' and '.'",
                c as char
            ));
        }
        let hex = |len: &[usize]| {
            len.contains(&id.len())
                && id
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        };
        match sub {
            "mac" if !hex(&[12, 16]) => {
                return err(format!(
                    "a mac identifier is an EUI-48 or EUI-64 in 12 or 16 lower-case hex digits, not {id:?}"
                ));
            }
            "ow" if !hex(&[16]) => {
                return err(format!(
                    "a 1-Wire identifier is 16 lower-case hex digits, not {id:?}"
                ));
            }
            "org" | "os" | "ops" => {
                let (pen, rest) = id.split_once('-').unwrap_or((id, ""));
                let parts = rest.split('-').filter(|p| !p.is_empty()).count();
                let wanted = if sub == "ops" { 2 } else { 1 };
                if pen.is_empty() || !pen.bytes().all(|c| c.is_ascii_digit()) || parts < wanted {
                    return err(format!(
                        "an {sub} identifier is <enterprise number>-<{}>, not {id:?}",
                        if sub == "ops" {
                            "product>-<serial"
                        } else {
                            "identifier"
                        }
                    ));
                }
            }
            "prm" if !(id.len() == 14 && id.bytes().all(|c| c.is_ascii_digit())) => {
                return err(format!("a PRM is 14 digits, not {id:?}"));
            }
            _ => {}
        }
        if let Some(component) = &self.component {
            check_name(&format!("x{component}"))
                .map_err(|why| DeviceUrnError(format!("component {component:?}: {why}")))?;
        }
        Ok(())
    }
}

impl fmt::Display for DeviceUrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "urn:dev:{}:{}", self.subtype, self.identifier)?;
        if let Some(c) = &self.component {
            write!(f, "_{c}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for DeviceUrn {
    type Err = DeviceUrnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("urn:dev:")
            .ok_or_else(|| DeviceUrnError(format!("{s:?} does not start with \"urn:dev:\"")))?;
        let (subtype, rest) = rest.split_once(':').ok_or_else(|| {
            DeviceUrnError(format!("{s:?} has no subtype (urn:dev:<subtype>:<id>)"))
        })?;
        let (identifier, component) = match rest.split_once('_') {
            Some((id, c)) => (id, Some(c)),
            None => (rest, None),
        };
        DeviceUrn::new(subtype, identifier, component)
    }
}

/// Why a device URN is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid device URN: {0}")]
pub struct DeviceUrnError(String);

/// Maps a 2019 SEN1 name (`app@server/user@server/path`) to a valid SenML
/// name by replacing its two `@` with `:`. The mapping is reversible with
/// [`senml_to_sen1`]; names that would not map back are refused.
///
/// ```
/// use senml::{sen1_to_senml, senml_to_sen1};
/// let sen1 = "bmhs@sen1.bmhs.com/user32490384239473947@bmhs.com/maison1/pi2/dht22_1/Temp1";
/// let name = sen1_to_senml(sen1).unwrap();
/// assert_eq!(name, "bmhs:sen1.bmhs.com/user32490384239473947:bmhs.com/maison1/pi2/dht22_1/Temp1");
/// assert_eq!(senml_to_sen1(&name).unwrap(), sen1);
/// ```
pub fn sen1_to_senml(sen1: &str) -> Result<String, Sen1NameError> {
    let err = |why: &str| Err(Sen1NameError(format!("{sen1:?}: {why}")));
    let mut parts = sen1.splitn(3, '/');
    let (Some(app), Some(user), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return err("a SEN1 name has the form app@server/user@server/path");
    };
    let mut mapped = String::with_capacity(sen1.len());
    for (what, part) in [("application", app), ("user", user)] {
        let Some((local, server)) = part.split_once('@') else {
            return err(&format!("the {what} part {part:?} has no '@'"));
        };
        if local.is_empty() || server.is_empty() || local.contains(':') || server.contains('@') {
            return err(&format!(
                "the {what} part {part:?} must be <name>@<server> with no ':' in the name"
            ));
        }
        mapped.push_str(local);
        mapped.push(':');
        mapped.push_str(server);
        mapped.push('/');
    }
    if path.contains('@') {
        return err("the data path contains '@'");
    }
    mapped.push_str(path);
    check_name(&mapped)
        .map_err(|why| Sen1NameError(format!("{sen1:?} maps to an invalid SenML name: {why}")))?;
    Ok(mapped)
}

/// The inverse of [`sen1_to_senml`].
pub fn senml_to_sen1(name: &str) -> Result<String, Sen1NameError> {
    let mut parts = name.splitn(3, '/');
    let (Some(app), Some(user), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Sen1NameError(format!(
            "{name:?} is not a mapped SEN1 name (app:server/user:server/path)"
        )));
    };
    let mut sen1 = String::with_capacity(name.len());
    for part in [app, user] {
        let Some((local, server)) = part.split_once(':') else {
            return Err(Sen1NameError(format!("{name:?}: part {part:?} has no ':'")));
        };
        sen1.push_str(local);
        sen1.push('@');
        sen1.push_str(server);
        sen1.push('/');
    }
    sen1.push_str(path);
    Ok(sen1)
}

/// Why a SEN1 name cannot be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SEN1 name {0}")]
pub struct Sen1NameError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc8428_charset() {
        assert!(is_valid_name("urn:dev:ow:10e2073a01080063:voltage"));
        assert!(is_valid_name("2001:db8::2/temperature"));
        assert!(is_valid_name("a"));
        for (bad, why) in [
            ("", "empty"),
            ("_x", "starts with '_'"),
            ("-x", "starts with '-'"),
            ("a b", "' ' at position 1"),
            ("a@b", "'@' at position 1"),
            ("é", "starts with 'é'"),
            ("ab\u{e9}", "'é' at position 2"),
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn device_urns_are_checked_per_subtype() {
        assert!("urn:dev:mac:0024befffe804ff1".parse::<DeviceUrn>().is_ok());
        assert!(
            "urn:dev:ow:10e2073a01080063_temp"
                .parse::<DeviceUrn>()
                .is_ok()
        );
        assert!("urn:dev:org:32473-foo".parse::<DeviceUrn>().is_ok());
        assert!(
            "urn:dev:ops:32473-Refrigerator-5002"
                .parse::<DeviceUrn>()
                .is_ok()
        );
        assert!("urn:dev:mac:0024BEFFFE804FF1".parse::<DeviceUrn>().is_err());
        assert!("urn:dev:ow:10e2".parse::<DeviceUrn>().is_err());
        assert!("urn:dev:org:foo".parse::<DeviceUrn>().is_err());
        assert!("urn:dev:ops:32473-only".parse::<DeviceUrn>().is_err());
        assert!("urn:dev:prm:3000161007184".parse::<DeviceUrn>().is_err());
        assert!("urn:dev:Prm:30001610071843".parse::<DeviceUrn>().is_err());
        assert!("urn:x:prm:30001610071843".parse::<DeviceUrn>().is_err());
        assert!(
            "urn:dev:prm:30001610071843_a b"
                .parse::<DeviceUrn>()
                .is_err()
        );
        let urn = DeviceUrn::prm("30001610071843", Some("production/energy/active/index")).unwrap();
        assert_eq!(
            urn.to_string(),
            "urn:dev:prm:30001610071843_production/energy/active/index"
        );
    }

    #[test]
    fn sen1_names_map_both_ways_and_refuse_ambiguity() {
        let sen1 = "logNact@sen1.lognact.fr/zabbix1@lognact.fr/batiment3/conso";
        let mapped = sen1_to_senml(sen1).unwrap();
        assert!(is_valid_name(&mapped));
        assert_eq!(senml_to_sen1(&mapped).unwrap(), sen1);
        assert!(sen1_to_senml("app@server/user@server").is_err(), "no path");
        assert!(sen1_to_senml("app/user@server/p").is_err(), "no @ in app");
        assert!(
            sen1_to_senml("a:b@server/user@server/p").is_err(),
            "':' would not map back"
        );
        assert!(sen1_to_senml("app@server/user@server/p@q").is_err());
        assert!(
            sen1_to_senml("app@server/user@server/a path").is_err(),
            "space"
        );
    }
}
