//! `[control]` in the node's TOML file ([`ControlSettings`]), and the
//! checks that turn it into what runs: the control loop's configuration
//! and, when no broker is named, the node's own broker ([`ControlSetup`]).
//! Every error names `[control]` and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use control::fleet::{DisplayConfig, SiteConfig};
use control::settings::EquipmentSettings;
use control::signals::OffPeak;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use tokio_rustls::rustls::ClientConfig;

use crate::broker::BrokerAuth;
use crate::config::{ControlConfig, MqttConfig, check};

/// `[control]`: the flexibility control loop. Unset keys are `None`; an
/// empty string in the file counts as unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSettings {
    /// `mqtt://host:port` of the MQTT broker (Mosquitto…), or `mqtts://`
    /// for TLS. Unset: the node runs its own, on `listen`, when it has
    /// equipments to drive.
    #[serde(deserialize_with = "node::unset_if_empty")]
    pub broker: Option<String>,
    /// Where the node's own broker listens when `broker` is unset.
    pub listen: String,
    /// PEM file of the CA certificates to trust for an `mqtts://` broker
    /// (self-hosted); unset: the system's.
    #[serde(deserialize_with = "node::unset_if_empty")]
    pub ca_file: Option<PathBuf>,
    /// User name, if the broker wants one.
    #[serde(deserialize_with = "node::unset_if_empty")]
    pub user: Option<String>,
    /// Its password (or use `password_file`).
    #[serde(deserialize_with = "node::unset_if_empty")]
    pub password: Option<String>,
    /// A file holding the password.
    #[serde(deserialize_with = "node::unset_if_empty")]
    pub password_file: Option<PathBuf>,
    /// This node's MQTT client id, unique on the broker; it names the
    /// node's topics (`fedwatt/<client_id>/plan/<equipment>`…).
    pub client_id: String,
    /// `[[control.equipment]]`: the equipments the node drives.
    pub equipment: Vec<EquipmentSettings>,
    /// `[[control.display]]`: the households' openHASP plates.
    pub display: Vec<DisplaySettings>,
    /// `[[control.site]]`: the households' off-peak windows.
    pub site: Vec<SiteSettings>,
}

/// `[[control.site]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    /// Its name, as equipments give it (`site = "…"`).
    pub name: String,
    /// Its off-peak windows in local time: `22:00-06:00` (every day),
    /// `mon-fri 22:00-06:00`, `sat,sun 00:00-24:00`.
    #[serde(default)]
    pub off_peak: Vec<String>,
}

/// `[[control.display]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplaySettings {
    /// The plate's name in its topics (`hasp/<plate>/…`).
    pub plate: String,
    /// The equipments it shows, by name, in page order (10 at most).
    pub equipments: Vec<String>,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            broker: None,
            listen: "127.0.0.1:1883".into(),
            ca_file: None,
            user: None,
            password: None,
            password_file: None,
            client_id: "fedwatt".into(),
            equipment: Vec::new(),
            display: Vec::new(),
            site: Vec::new(),
        }
    }
}

/// What runs for `[control]`.
pub struct ControlSetup {
    /// The control loop's configuration.
    pub config: ControlConfig,
    /// The node's own broker, when no `broker` is set.
    pub embedded_broker: Option<EmbeddedBrokerSettings>,
}

/// The node's own MQTT broker.
pub struct EmbeddedBrokerSettings {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The user and password it asks of every client (the control loop
    /// gives `[control] user` and `password`).
    pub auth: BrokerAuth,
}

/// How TLS to an `mqtts://` broker is set up: given the CA file to trust
/// (`None`: the system's), the client configuration, or why not.
pub type TlsSetup<'a> = &'a dyn Fn(Option<&Path>) -> Result<Arc<ClientConfig>, String>;

impl ControlSettings {
    /// Checks the section whole and gives what runs: `None` when there is
    /// nothing to drive (no broker, no equipment nor display in the file,
    /// none `stored` in the store). End-by times set on a plate are read
    /// in `timezone`; `tls` is asked only for an `mqtts://` broker.
    pub fn setup(
        &self,
        stored: bool,
        timezone: TimeZone,
        tls: TlsSetup<'_>,
    ) -> Result<Option<ControlSetup>, String> {
        let (host, port, tls_to_broker, embedded) = match &self.broker {
            None => {
                if self.equipment.is_empty() && self.display.is_empty() && !stored {
                    return Ok(None);
                }
                let address: SocketAddr = self.listen.parse().map_err(|_| {
                    format!(
                        "[control] listen {:?}: expected IP:PORT (127.0.0.1:1883) for the node's own broker",
                        self.listen
                    )
                })?;
                (
                    address.ip().to_string(),
                    address.port(),
                    false,
                    Some(address),
                )
            }
            Some(broker) => {
                let (host, port, tls) = broker_address(broker)?;
                (host, port, tls, None)
            }
        };
        let password = self.password()?;
        let equipments = self
            .equipment
            .iter()
            .map(|e| e.to_config().map_err(|err| format!("[control] {err}")))
            .collect::<Result<Vec<_>, _>>()?;
        let sites = self
            .site
            .iter()
            .map(|s| {
                Ok(SiteConfig {
                    name: s.name.clone(),
                    off_peak: OffPeak::parse(&s.off_peak)
                        .map_err(|e| format!("[control] site {:?}: {e}", s.name))?,
                })
            })
            .collect::<Result<_, String>>()?;
        let config = ControlConfig {
            mqtt: MqttConfig {
                host,
                port,
                user: self.user.clone(),
                password,
                client_id: self.client_id.clone(),
                tls: if tls_to_broker {
                    Some(tls(self.ca_file.as_deref())?)
                } else {
                    None
                },
            },
            equipments,
            displays: self
                .display
                .iter()
                .map(|d| DisplayConfig {
                    plate: d.plate.clone(),
                    equipments: d.equipments.clone(),
                })
                .collect(),
            sites,
            timezone,
        };
        check(&config).map_err(|e| format!("[control] {e}"))?;
        let embedded_broker = embedded.map(|listen| EmbeddedBrokerSettings {
            listen,
            auth: BrokerAuth {
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

    /// The password, given in the file (`password`) or in a file of its
    /// own (`password_file`, read without its final line break).
    fn password(&self) -> Result<Option<String>, String> {
        node::secret(
            self.password.as_deref(),
            self.password_file.as_deref(),
            "[control]",
        )
    }
}

/// `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`: host, port, and whether
/// over TLS.
fn broker_address(broker: &str) -> Result<(String, u16, bool), String> {
    let (address, tls, default_port) = match broker.split_once("://") {
        Some(("mqtt", address)) => (address, false, 1883),
        Some(("mqtts", address)) => (address, true, 8883),
        _ => {
            return Err(format!(
                "[control] broker {broker:?}: expected mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS"
            ));
        }
    };
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("[control] broker {broker:?}: {port:?} is not a port"))?,
        ),
        None => (address, default_port),
    };
    Ok((host.to_owned(), port, tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> ControlSettings {
        toml::from_str(toml_text).unwrap()
    }

    fn no_tls(_: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
        panic!("TLS asked for a plain broker")
    }

    fn setup(settings: &ControlSettings) -> Result<Option<ControlSetup>, String> {
        settings.setup(false, TimeZone::UTC, &no_tls)
    }

    const HEATER: &str = r#"
        [[equipment]]
        name = "water-heater"
        kind = "water-heater"
        typology = "plug"
        [[equipment.device]]
        part = "switch"
        firmware = "tasmota"
        topic = "wh"
    "#;

    #[test]
    fn empty_strings_are_unset_and_unset_keys_are_not_written() {
        let s = section("broker = \"\"\nuser = \"\"\nca_file = \"\"\n");
        assert_eq!(s, ControlSettings::default());
        let written = toml::to_string(&ControlSettings::default()).unwrap();
        assert!(!written.contains("broker"), "{written}");
        assert!(written.contains("listen = \"127.0.0.1:1883\""), "{written}");
    }

    #[test]
    fn nothing_to_drive_runs_nothing() {
        assert!(setup(&ControlSettings::default()).unwrap().is_none());
        // Equipments added at run time are something to drive.
        let stored = ControlSettings::default()
            .setup(true, TimeZone::UTC, &no_tls)
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.embedded_broker.map(|b| b.listen.to_string()),
            Some("127.0.0.1:1883".into())
        );
    }

    #[test]
    fn a_named_broker_is_reached_with_the_given_credentials() {
        let mut s = section(HEATER);
        s.broker = Some("mqtt://broker.example".into());
        s.user = Some("node".into());
        s.password = Some("secret".into());
        let set = setup(&s).unwrap().unwrap();
        let m = &set.config.mqtt;
        assert_eq!((m.host.as_str(), m.port), ("broker.example", 1883));
        assert_eq!(
            (m.user.as_deref(), m.password.as_deref()),
            (Some("node"), Some("secret"))
        );
        assert!(m.tls.is_none() && set.embedded_broker.is_none());
        assert_eq!(set.config.equipments[0].name, "water-heater");
    }

    #[test]
    fn the_node_s_own_broker_asks_for_the_configured_login() {
        let mut s = section(HEATER);
        s.listen = "127.0.0.1:18831".into();
        s.user = Some("node".into());
        let set = setup(&s).unwrap().unwrap();
        let broker = set.embedded_broker.unwrap();
        assert_eq!(broker.listen.port(), 18831);
        assert_eq!(broker.auth.login, Some(("node".into(), String::new())));
        assert_eq!(set.config.mqtt.port, 18831);
    }

    #[test]
    fn an_mqtts_broker_asks_for_tls_with_the_ca_file() {
        let mut s = section(HEATER);
        s.broker = Some("mqtts://broker.example".into());
        s.ca_file = Some("/etc/ca.pem".into());
        let refused = |ca: Option<&Path>| -> Result<Arc<ClientConfig>, String> {
            Err(format!(
                "[control] ca_file {}: no PEM certificate in it",
                ca.unwrap().display()
            ))
        };
        let e = s.setup(false, TimeZone::UTC, &refused).err().unwrap();
        assert_eq!(e, "[control] ca_file /etc/ca.pem: no PEM certificate in it");
    }

    #[test]
    fn mistakes_are_named() {
        let err = |s: &ControlSettings| setup(s).err().unwrap();
        let mut s = section(HEATER);
        s.broker = Some("tcp://x".into());
        assert_eq!(
            err(&s),
            "[control] broker \"tcp://x\": expected mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS"
        );
        s.broker = Some("mqtt://x:port".into());
        assert_eq!(
            err(&s),
            "[control] broker \"mqtt://x:port\": \"port\" is not a port"
        );
        s.broker = None;
        s.listen = "localhost".into();
        assert!(err(&s).starts_with("[control] listen \"localhost\": expected IP:PORT"));
        let mut s = section(HEATER);
        s.client_id = "a/b".into();
        assert_eq!(
            err(&s),
            "[control] client id \"a/b\": it must be non-empty, without / + #"
        );
        let mut s = section(HEATER);
        s.site.push(SiteSettings {
            name: "home".into(),
            off_peak: vec!["25:00-06:00".into()],
        });
        assert!(
            err(&s).starts_with("[control] site \"home\": "),
            "{}",
            err(&s)
        );
        // A device topic no MQTT packet could carry is refused here, not
        // left to break every subscription at every connection.
        let long = section(&HEATER.replace(
            "topic = \"wh\"",
            &format!("topic = \"{}\"", "w".repeat(70_000)),
        ));
        assert_eq!(
            err(&long),
            "[control] equipment \"water-heater\": a device topic of 70000 bytes, above the 1024 allowed"
        );
        let mut s = section(HEATER);
        s.password_file = Some("/nonexistent/fedwatt-password".into());
        assert!(err(&s).starts_with("[control] password_file /nonexistent/fedwatt-password: "));
        assert!(
            toml::from_str::<ControlSettings>("brokr = \"mqtt://x\"")
                .unwrap_err()
                .to_string()
                .contains("brokr")
        );
    }
}
