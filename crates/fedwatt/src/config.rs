//! The node's configuration: one TOML file, every key with a default,
//! `FEDWATT_*` environment variables over the file, command-line flags over
//! both.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything a node reads at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the node keeps its files (the SQLite database among them).
    pub data_dir: PathBuf,
    /// The HTTP server.
    pub http: api::HttpSettings,
    /// The database.
    pub database: Database,
    /// Storage settings.
    pub store: StoreSettings,
    /// `[xmpp]`: the node's XMPP account; without a `jid`, the node runs
    /// without federation.
    pub xmpp: federation::XmppSettings,
    /// `[audit]`: the audit trail's signing key.
    pub audit: Audit,
    /// `[control]`: the flexibility control loop; without a `broker`, the
    /// node drives no device unless it has equipments (then it runs its
    /// own broker).
    pub control: Control,
    /// `[[connector]]`: the sources the node reads (a Linky meter's TIC);
    /// their settings live in `connectors`, with their checks.
    pub connector: Vec<connectors::ConnectorSettings>,
}

/// `[control]`: its settings live beside the control loop, in
/// `control_mqtt`, with their checks.
pub type Control = control_mqtt::ControlSettings;

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// The Ed25519 key that signs checkpoints (64 hex digits), created on
    /// first use; default `audit.key` in the data directory.
    pub key_file: String,
    /// Seconds between signed checkpoints (when the trail grew).
    pub checkpoint_interval: u64,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            key_file: String::new(),
            checkpoint_interval: 300,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// `postgres://user:password@host/db`, `sqlite:PATH`, or empty for
    /// SQLite in the data directory.
    pub url: String,
    /// A file holding the URL (a secret), read when `url` is empty.
    pub url_file: String,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Time zone of daily rollups and the API's default (IANA name).
    pub timezone: String,
    /// How often points past their stream's retention are purged, in seconds.
    pub purge_interval: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./fedwatt-data"),
            http: api::HttpSettings::default(),
            database: Database::default(),
            store: StoreSettings::default(),
            xmpp: federation::XmppSettings::default(),
            audit: Audit::default(),
            control: Control::default(),
            connector: Vec::new(),
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            timezone: "UTC".into(),
            purge_interval: 3600,
        }
    }
}

impl Config {
    /// Defaults, then `file` if given, then the environment.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, String> {
        let mut table = toml::Table::try_from(Config::default()).map_err(|e| e.to_string())?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("config {}: {e}", path.display()))?;
            let from_file: toml::Table = text
                .parse()
                .map_err(|e| format!("config {}: {e}", path.display()))?;
            merge(&mut table, from_file);
            // Check the file alone, so that its errors name it.
            toml::Value::Table(table.clone())
                .try_into::<Config>()
                .map_err(|e| format!("config {}: {e}", path.display()))?;
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("FEDWATT_") else {
                continue;
            };
            if NOT_SETTINGS.contains(&name.as_str()) {
                continue;
            }
            let key = key.to_ascii_lowercase();
            apply_env(&mut table, &key, &value).map_err(|e| format!("environment {name}: {e}"))?;
        }
        toml::Value::Table(table)
            .try_into::<Config>()
            .map_err(|e| e.to_string())
    }

    /// The database URL, from `url` or `url_file`; `None` for SQLite in
    /// the data directory.
    pub fn database_url(&self) -> Result<Option<String>, String> {
        if !self.database.url.is_empty() {
            return Ok(Some(self.database.url.clone()));
        }
        if self.database.url_file.is_empty() {
            return Ok(None);
        }
        let url = std::fs::read_to_string(&self.database.url_file)
            .map_err(|e| format!("database url_file {}: {e}", self.database.url_file))?;
        Ok(Some(url.trim().to_owned()))
    }
}

impl Config {
    /// The federation's settings; `None` when no `jid` is set.
    pub fn xmpp(&self) -> Result<Option<federation::XmppConfig>, String> {
        self.xmpp.config().map_err(|e| e.to_string())
    }

    /// Where the audit signing key lives.
    pub fn audit_key_file(&self) -> PathBuf {
        if self.audit.key_file.is_empty() {
            self.data_dir.join("audit.key")
        } else {
            PathBuf::from(&self.audit.key_file)
        }
    }
}

/// `FEDWATT_*` variables that are not configuration keys: the log level,
/// and those of the project's scripts (`scripts/test` exports some), which
/// a node started beside them must not take for settings.
const NOT_SETTINGS: &[&str] = &[
    "FEDWATT_LOG",
    "FEDWATT_XMPP_DIR",
    "FEDWATT_XMPP_LOG",
    "FEDWATT_MQTT_DIR",
    "FEDWATT_MQTT_PORT",
    "FEDWATT_PG_DIR",
    "FEDWATT_PG_PORT",
    "FEDWATT_TOOLS",
];

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// Sets the key that `key` (`http_listen`, `data_dir`) names, keeping the
/// type of its default. A key of a section that has no default (an unset
/// `Option`, such as `control_broker`) is set as a string, and the
/// configuration checked with it, so that a wrong one is refused here.
fn apply_env(table: &mut toml::Table, key: &str, value: &str) -> Result<(), String> {
    if let Some(old) = table.get(key) {
        let new = typed(old, value)?;
        table.insert(key.to_owned(), new);
        return Ok(());
    }
    let in_section = |section: &str| key.strip_prefix(&format!("{section}_")).map(str::to_owned);
    for (section, inner) in table.iter_mut() {
        if let (Some(rest), toml::Value::Table(inner)) = (in_section(section), inner)
            && let Some(old) = inner.get(&rest)
        {
            let new = typed(old, value)?;
            inner.insert(rest, new);
            return Ok(());
        }
    }
    let unset = table.iter().find_map(|(section, inner)| {
        let rest = in_section(section).filter(|rest| !rest.is_empty())?;
        inner.is_table().then(|| (section.clone(), rest))
    });
    let Some((section, rest)) = unset else {
        return Err("not a setting of fedwatt (see fedwatt.example.toml)".into());
    };
    let mut tried = table.clone();
    if let Some(toml::Value::Table(inner)) = tried.get_mut(&section) {
        inner.insert(rest, toml::Value::String(value.to_owned()));
    }
    toml::Value::Table(tried.clone())
        .try_into::<Config>()
        .map_err(|e| e.to_string())?;
    *table = tried;
    Ok(())
}

fn typed(like: &toml::Value, value: &str) -> Result<toml::Value, String> {
    Ok(match like {
        toml::Value::Integer(_) => toml::Value::Integer(
            value
                .parse()
                .map_err(|_| format!("{value:?} is not a whole number"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(
            value
                .parse()
                .map_err(|_| format!("{value:?} is not true or false"))?,
        ),
        _ => toml::Value::String(value.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_the_defaults() {
        let dir = std::env::temp_dir().join(format!("fedwatt-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("fedwatt.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/fedwatt\"\n[http]\nlisten = \"0.0.0.0:80\"\n",
        )
        .unwrap();
        let env = [
            ("FEDWATT_HTTP_BODY_LIMIT".to_owned(), "1000".to_owned()),
            ("PATH".into(), "/bin".into()),
        ];
        let config = Config::load(Some(&file), env.into_iter()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/fedwatt"));
        assert_eq!(config.http.listen, "0.0.0.0:80");
        assert_eq!(config.http.body_limit, 1000);
        assert_eq!(config.store.timezone, "UTC");
    }

    #[test]
    fn the_environment_sets_the_xmpp_section() {
        let env = [
            ("FEDWATT_XMPP_JID", "fedwatt@a.example/node"),
            ("FEDWATT_XMPP_PASSWORD", "pw"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let xmpp = Config::load(None, env.into_iter())
            .unwrap()
            .xmpp()
            .unwrap()
            .unwrap();
        assert_eq!(
            (xmpp.jid.as_str(), xmpp.password.as_str()),
            ("fedwatt@a.example/node", "pw")
        );
        assert_eq!((xmpp.address, xmpp.ca_file), (None, None));
        assert!(
            Config::load(None, std::iter::empty())
                .unwrap()
                .xmpp()
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn mistakes_are_named() {
        let env = |k: &str, v: &str| [(k.to_owned(), v.to_owned())].into_iter();
        assert!(
            Config::load(None, env("FEDWATT_HTTP_LISTN", "x"))
                .unwrap_err()
                .contains("FEDWATT_HTTP_LISTN")
        );
        assert!(
            Config::load(None, env("FEDWATT_HTTP_BODY_LIMIT", "big"))
                .unwrap_err()
                .contains("whole number")
        );
        let dir = std::env::temp_dir().join(format!("fedwatt-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "[http]\nlisten_on = 1\n").unwrap();
        let e = Config::load(Some(&file), std::iter::empty()).unwrap_err();
        assert!(e.contains("bad.toml") && e.contains("listen_on"), "{e}");
    }

    #[test]
    fn the_environment_sets_keys_that_are_unset_by_default() {
        let env = |k: &str, v: &str| [(k.to_owned(), v.to_owned())].into_iter();
        let config = Config::load(None, env("FEDWATT_CONTROL_BROKER", "mqtt://10.0.0.2")).unwrap();
        assert_eq!(config.control.broker.as_deref(), Some("mqtt://10.0.0.2"));
        let config = Config::load(None, env("FEDWATT_CONTROL_CA_FILE", "/etc/ca.pem")).unwrap();
        assert_eq!(config.control.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        // A key no section has is still refused, named.
        let e = Config::load(None, env("FEDWATT_CONTROL_BROKR", "mqtt://x")).unwrap_err();
        assert!(
            e.contains("FEDWATT_CONTROL_BROKR") && e.contains("brokr"),
            "{e}"
        );
        let e = Config::load(None, env("FEDWATT_NOSECTION_KEY", "x")).unwrap_err();
        assert!(e.contains("not a setting of fedwatt"), "{e}");
    }
}
