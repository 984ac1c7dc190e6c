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
    /// node drives no device.
    pub control: Control,
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    /// `mqtt://host:port` of the MQTT broker (Mosquitto…). Empty: the node
    /// runs its own, on `listen`, when it has equipments to drive.
    pub broker: String,
    /// Where the node's own broker listens when `broker` is empty.
    pub listen: String,
    /// PEM file of the CA certificates to trust for an `mqtts://` broker
    /// (self-hosted); default: the system's.
    pub ca_file: String,
    /// User name, if the broker wants one.
    pub user: String,
    /// Its password (or use `password_file`).
    pub password: String,
    /// A file holding the password.
    pub password_file: String,
    /// This node's MQTT client id, unique on the broker; it names the
    /// node's topics (`fedwatt/<client_id>/plan/<equipment>`…).
    pub client_id: String,
    /// `[[control.equipment]]`: the equipments the node drives.
    pub equipment: Vec<control::settings::EquipmentSettings>,
    /// `[[control.display]]`: the households' openHASP plates.
    pub display: Vec<ControlDisplay>,
    /// `[[control.site]]`: the households' off-peak windows.
    pub site: Vec<ControlSite>,
}

/// `[[control.site]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSite {
    /// Its name, as equipments give it (`site = "…"`).
    pub name: String,
    /// Its off-peak windows in local time: `22:00-06:00` (every day),
    /// `mon-fri 22:00-06:00`, `sat,sun 00:00-24:00`.
    #[serde(default)]
    pub off_peak: Vec<String>,
}

/// What `serve` runs for `[control]`.
pub struct ControlSetup {
    /// The control loop's settings.
    pub config: control::runtime::ControlConfig,
    /// The node's own broker, when `broker` is empty.
    pub embedded_broker: Option<EmbeddedBroker>,
}

/// The node's own MQTT broker.
pub struct EmbeddedBroker {
    /// Where it listens.
    pub listen: std::net::SocketAddr,
    /// The user and password it asks of every client (the control loop
    /// gives `[control] user` and `password`).
    pub auth: control::broker::BrokerAuth,
}

/// `[[control.display]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlDisplay {
    /// The plate's name in its topics (`hasp/<plate>/…`).
    pub plate: String,
    /// The equipments it shows, by name, in page order (10 at most).
    pub equipments: Vec<String>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            broker: String::new(),
            listen: "127.0.0.1:1883".into(),
            ca_file: String::new(),
            user: String::new(),
            password: String::new(),
            password_file: String::new(),
            client_id: "fedwatt".into(),
            equipment: Vec::new(),
            display: Vec::new(),
            site: Vec::new(),
        }
    }
}

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

/// `FEDWATT_*` variables that are not configuration keys.
impl Config {
    /// The federation's settings; `None` when no `jid` is set.
    pub fn xmpp(&self) -> Result<Option<federation::XmppConfig>, String> {
        self.xmpp.config().map_err(|e| e.to_string())
    }

    /// The control loop's settings, and the address of the node's own
    /// broker when it runs one; `None` when there is nothing to drive (no
    /// broker, no equipment in the file, none `stored` in the store).
    pub fn control(&self, stored: bool) -> Result<Option<ControlSetup>, String> {
        use control::runtime::{ControlConfig, DisplayConfig, MqttConfig};
        let c = &self.control;
        let mut tls_to_broker = false;
        let (host, port, embedded) = if c.broker.is_empty() {
            if c.equipment.is_empty() && c.display.is_empty() && !stored {
                return Ok(None);
            }
            let address: std::net::SocketAddr = c.listen.parse().map_err(|_| {
                format!(
                    "[control] listen {:?}: expected IP:PORT (127.0.0.1:1883) for the node's own broker",
                    c.listen
                )
            })?;
            (address.ip().to_string(), address.port(), Some(address))
        } else {
            let (address, tls, default_port) = match c.broker.split_once("://") {
                Some(("mqtt", address)) => (address, false, 1883),
                Some(("mqtts", address)) => (address, true, 8883),
                _ => {
                    return Err(format!(
                        "[control] broker {:?}: expected mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS",
                        c.broker
                    ));
                }
            };
            let (host, port) = match address.rsplit_once(':') {
                Some((host, port)) => (
                    host,
                    port.parse::<u16>().map_err(|_| {
                        format!("[control] broker {:?}: {port:?} is not a port", c.broker)
                    })?,
                ),
                None => (address, default_port),
            };
            tls_to_broker = tls;
            (host.to_owned(), port, None)
        };
        let password = secret(&c.password, &c.password_file, "[control]")?;
        let equipments = c
            .equipment
            .iter()
            .map(|e| e.to_config().map_err(|err| format!("[control] {err}")))
            .collect::<Result<Vec<_>, _>>()?;
        let config = ControlConfig {
            mqtt: MqttConfig {
                host,
                port,
                user: (!c.user.is_empty()).then(|| c.user.clone()),
                password,
                client_id: c.client_id.clone(),
                tls: if tls_to_broker {
                    let ca_file = (!c.ca_file.is_empty()).then(|| std::path::Path::new(&c.ca_file));
                    Some(federation::tls_client_config(ca_file, "[control]")?)
                } else {
                    None
                },
            },
            equipments,
            displays: c
                .display
                .iter()
                .map(|d| DisplayConfig {
                    plate: d.plate.clone(),
                    equipments: d.equipments.clone(),
                })
                .collect(),
            sites: c
                .site
                .iter()
                .map(|s| {
                    Ok(control::runtime::SiteConfig {
                        name: s.name.clone(),
                        off_peak: control::signals::OffPeak::parse(&s.off_peak)
                            .map_err(|e| format!("[control] site {:?}: {e}", s.name))?,
                    })
                })
                .collect::<Result<_, String>>()?,
            timezone: store::time_zone(&self.store.timezone)?,
        };
        control::runtime::check(&config).map_err(|e| format!("[control] {e}"))?;
        let embedded_broker = embedded.map(|listen| EmbeddedBroker {
            listen,
            auth: control::broker::BrokerAuth {
                login: config
                    .mqtt
                    .user
                    .clone()
                    .map(|u| (u, config.mqtt.password.clone().unwrap_or_default())),
            },
        });
        Ok(Some(ControlSetup {
            config,
            embedded_broker,
        }))
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

const NOT_SETTINGS: &[&str] = &["FEDWATT_LOG"];

/// A password given in the file (`password`) or in a file of its own
/// (`password_file`, read without its final line break); `None` if neither.
fn secret(password: &str, password_file: &str, section: &str) -> Result<Option<String>, String> {
    if !password.is_empty() {
        return Ok(Some(password.to_owned()));
    }
    if password_file.is_empty() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(password_file)
        .map_err(|e| format!("{section} password_file {password_file}: {e}"))?;
    Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()))
}

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
/// type of its default.
fn apply_env(table: &mut toml::Table, key: &str, value: &str) -> Result<(), String> {
    if let Some(old) = table.get(key) {
        let new = typed(old, value)?;
        table.insert(key.to_owned(), new);
        return Ok(());
    }
    for (section, inner) in table.iter_mut() {
        if let (Some(rest), toml::Value::Table(inner)) =
            (key.strip_prefix(&format!("{section}_")), inner)
            && let Some(old) = inner.get(rest)
        {
            let new = typed(old, value)?;
            inner.insert(rest.to_owned(), new);
            return Ok(());
        }
    }
    Err("not a setting of fedwatt (see fedwatt.example.toml)".into())
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
}
