//! `[[connector]]` in the node's TOML file: one entry per connector, its
//! `kind` telling which ([`ConnectorSettings`]), and the checks that turn
//! the entries into components ([`add_to`](crate::add_to)). Every error
//! names `[[connector]] id "…"` and the key.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, de::Error as _};

/// One `[[connector]]` entry. A new kind of connector is a new variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ConnectorSettings {
    /// `kind = "tic"`: a Linky meter's TIC, from a serial port or a capture.
    Tic(TicSettings),
}

impl ConnectorSettings {
    /// The connector's id.
    pub fn id(&self) -> &str {
        match self {
            ConnectorSettings::Tic(tic) => &tic.id,
        }
    }
}

/// The kinds [`ConnectorSettings`] knows, for error messages.
const KINDS: &str = "tic";

impl<'de> Deserialize<'de> for ConnectorSettings {
    /// Reads the entry whole first, so that every error, an unknown kind
    /// included, names the connector's id.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut entry = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let Some(id) = entry.get("id").and_then(|v| v.as_str()).map(str::to_owned) else {
            return Err(D::Error::custom(
                "[[connector]]: an entry has no id (id = \"linky-home\")",
            ));
        };
        let named = |e: &dyn std::fmt::Display| D::Error::custom(format!("{}: {e}", section(&id)));
        let kind = entry.remove("kind");
        match kind.as_ref().and_then(|k| k.as_str()) {
            Some("tic") => serde_json::from_value(serde_json::Value::Object(entry))
                .map(ConnectorSettings::Tic)
                .map_err(|e| named(&e)),
            Some(other) => Err(named(&format!(
                "kind: unknown kind {other:?} (known: {KINDS})"
            ))),
            None => Err(named(&format!("kind is missing (one of: {KINDS})"))),
        }
    }
}

/// `[[connector]] id "…"`, as errors name a connector.
pub(crate) fn section(id: &str) -> String {
    format!("[[connector]] id {id:?}")
}

/// `kind = "tic"`: a Linky meter's TIC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicSettings {
    /// The connector's id, unique in the node: it names the connector in
    /// `/healthz`, `/metrics` and logs (letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// The serial device the meter's customer port is wired to
    /// (`/dev/ttyAMA0`, `/dev/ttyUSB0`), read as 7E1; or set `file`.
    #[serde(
        default,
        deserialize_with = "node::unset_if_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<PathBuf>,
    /// A capture of TIC bytes, as a port gave them, replayed once; or set
    /// `port`.
    #[serde(
        default,
        deserialize_with = "node::unset_if_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub file: Option<PathBuf>,
    /// `auto` (default), `historic` (1200 baud) or `standard` (9600 baud).
    #[serde(default)]
    pub mode: TicMode,
    /// Seconds between frames when replaying `file`; unset: the pace of
    /// the baud rate (each frame takes as long as it would on the line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<f64>,
    /// The owner recorded on the streams; default `tic`.
    #[serde(
        default,
        deserialize_with = "node::unset_if_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub owner: Option<String>,
    /// The delivery point (14 digits) that names the meter's streams when
    /// its frames do not carry a PRM (historic mode); unset: they are named
    /// by the meter's address (ADCO).
    #[serde(
        default,
        deserialize_with = "node::unset_if_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub prm: Option<String>,
}

/// Which TIC mode a connector expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicMode {
    /// A port is read at 9600 baud (standard) and, when nothing decodes,
    /// at 1200 (historic), in turn until frames decode; the decoder tells
    /// the mode from the first valid group.
    #[default]
    Auto,
    /// 1200 baud, historic groups only.
    Historic,
    /// 9600 baud, standard groups only.
    Standard,
}

/// Where a TIC connector reads, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TicInput {
    /// A serial port, opened (and re-opened) at run time.
    Port(PathBuf),
    /// A capture, replayed once.
    File {
        path: PathBuf,
        /// Between frames; `None`: the baud rate's pace.
        interval: Option<std::time::Duration>,
    },
}

impl TicSettings {
    /// Checks the entry: an id usable in metrics, `port` or `file` (not
    /// both), a file that can be opened, an interval only for a file, a
    /// PRM of 14 digits.
    pub(crate) fn input(&self) -> Result<TicInput, String> {
        check_id(&self.id)?;
        let at = section(&self.id);
        if let Some(prm) = &self.prm
            && !(prm.len() == 14 && prm.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("{at} prm: {prm:?} is not 14 digits"));
        }
        if let Some(owner) = &self.owner
            && owner.trim().is_empty()
        {
            return Err(format!("{at} owner: is blank"));
        }
        match (&self.port, &self.file) {
            (Some(_), Some(_)) => Err(format!(
                "{at}: both port and file are set; set port (a serial device) or file (a capture to replay)"
            )),
            (None, None) => Err(format!(
                "{at}: neither port nor file is set; set port (a serial device) or file (a capture to replay)"
            )),
            (Some(port), None) => match self.interval {
                Some(_) => Err(format!(
                    "{at} interval: only a replayed file has one; a port goes at the meter's pace"
                )),
                None => Ok(TicInput::Port(port.clone())),
            },
            (None, Some(file)) => {
                std::fs::File::open(file)
                    .map_err(|e| format!("{at} file {}: {e}", file.display()))?;
                let interval = match self.interval {
                    None => None,
                    Some(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => {
                        Some(std::time::Duration::from_secs_f64(s))
                    }
                    Some(s) => {
                        return Err(format!(
                            "{at} interval: {s} is not a number of seconds from 0 to 86400"
                        ));
                    }
                };
                Ok(TicInput::File {
                    path: file.clone(),
                    interval,
                })
            }
        }
    }
}

/// An id: not empty, at most 64 of `A-Z a-z 0-9 - _ .`, so that it can
/// be a metric's label as written.
fn check_id(id: &str) -> Result<(), String> {
    let fine = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "{} id: use 1 to 64 letters, digits, '-', '_' or '.'",
            section(id)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        connector: Vec<ConnectorSettings>,
    }

    fn read(text: &str) -> Result<Vec<ConnectorSettings>, String> {
        toml::from_str::<File>(text)
            .map(|f| f.connector)
            .map_err(|e| e.to_string())
    }

    fn tic(entry: &str) -> TicSettings {
        match read(&format!("[[connector]]\n{entry}")).unwrap().remove(0) {
            ConnectorSettings::Tic(tic) => tic,
        }
    }

    fn capture() -> PathBuf {
        let file = std::env::temp_dir().join(format!("fedwatt-capture-{}.tic", std::process::id()));
        std::fs::write(&file, b"\x02\x03").unwrap();
        file
    }

    #[test]
    fn a_port_entry_reads_with_its_defaults() {
        let t = tic(r#"id = "linky-home"
kind = "tic"
port = "/dev/ttyAMA0"
owner = ""
"#);
        assert_eq!(t.mode, TicMode::Auto);
        assert_eq!(t.owner, None);
        assert_eq!(t.input(), Ok(TicInput::Port(PathBuf::from("/dev/ttyAMA0"))));
        let t = tic(
            "id = \"h\"\nkind = \"tic\"\nport = \"/dev/x\"\nmode = \"historic\"\nprm = \"30001610071843\"",
        );
        assert_eq!(
            (t.mode, t.prm.as_deref()),
            (TicMode::Historic, Some("30001610071843"))
        );
    }

    #[test]
    fn a_file_entry_takes_an_interval_in_seconds() {
        let file = capture();
        let t = tic(&format!(
            "id = \"replay\"\nkind = \"tic\"\nfile = {:?}\ninterval = 1.5\n",
            file.display().to_string()
        ));
        assert_eq!(
            t.input(),
            Ok(TicInput::File {
                path: file.clone(),
                interval: Some(std::time::Duration::from_millis(1500))
            })
        );
        let t = tic(&format!(
            "id = \"replay\"\nkind = \"tic\"\nfile = {:?}\ninterval = 2\n",
            file.display().to_string()
        ));
        assert!(
            matches!(t.input(), Ok(TicInput::File { interval: Some(d), .. }) if d.as_secs() == 2)
        );
    }

    #[test]
    fn mistakes_name_the_connector_and_the_key() {
        let e = read("[[connector]]\nid = \"m\"\nkind = \"modbus\"\n").unwrap_err();
        assert!(
            e.contains(r#"[[connector]] id "m": kind: unknown kind "modbus""#),
            "{e}"
        );
        let e = read("[[connector]]\nid = \"m\"\nport = \"/dev/x\"\n").unwrap_err();
        assert!(
            e.contains(r#"[[connector]] id "m": kind is missing"#),
            "{e}"
        );
        let e = read("[[connector]]\nkind = \"tic\"\n").unwrap_err();
        assert!(e.contains("[[connector]]: an entry has no id"), "{e}");
        let e = read("[[connector]]\nid = \"m\"\nkind = \"tic\"\nprot = \"/dev/x\"\n").unwrap_err();
        assert!(
            e.contains(r#"[[connector]] id "m": unknown field `prot`"#),
            "{e}"
        );
        let e =
            read("[[connector]]\nid = \"m\"\nkind = \"tic\"\nport = \"/dev/x\"\nmode = \"fast\"\n")
                .unwrap_err();
        assert!(
            e.contains(r#"[[connector]] id "m": unknown variant `fast`"#),
            "{e}"
        );

        let e = tic("id = \"m\"\nkind = \"tic\"").input().unwrap_err();
        assert!(
            e.starts_with(r#"[[connector]] id "m": neither port nor file"#),
            "{e}"
        );
        let file = capture().display().to_string();
        let e = tic(&format!(
            "id = \"m\"\nkind = \"tic\"\nport = \"/dev/x\"\nfile = {file:?}"
        ))
        .input()
        .unwrap_err();
        assert!(
            e.starts_with(r#"[[connector]] id "m": both port and file"#),
            "{e}"
        );
        let e = tic("id = \"m\"\nkind = \"tic\"\nfile = \"/nonexistent/capture.tic\"")
            .input()
            .unwrap_err();
        assert!(
            e.starts_with(r#"[[connector]] id "m" file /nonexistent/capture.tic: "#),
            "{e}"
        );
        let e = tic("id = \"m\"\nkind = \"tic\"\nport = \"/dev/x\"\ninterval = 1")
            .input()
            .unwrap_err();
        assert!(e.starts_with(r#"[[connector]] id "m" interval: "#), "{e}");
        let e = tic(&format!(
            "id = \"m\"\nkind = \"tic\"\nfile = {file:?}\ninterval = -1"
        ))
        .input()
        .unwrap_err();
        assert!(
            e.starts_with(r#"[[connector]] id "m" interval: -1 "#),
            "{e}"
        );
        let e = tic("id = \"m\"\nkind = \"tic\"\nport = \"/dev/x\"\nprm = \"123\"")
            .input()
            .unwrap_err();
        assert!(e.starts_with(r#"[[connector]] id "m" prm: "123""#), "{e}");
        let e = tic("id = \"a b\"\nkind = \"tic\"\nport = \"/dev/x\"")
            .input()
            .unwrap_err();
        assert!(e.starts_with(r#"[[connector]] id "a b" id: "#), "{e}");
    }
}
