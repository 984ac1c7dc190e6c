//! What the control loop runs on: the broker, and the fleet (whose types
//! and checks are in [`control::fleet`]).

use std::sync::Arc;

use control::Result;
use control::fleet::{DisplayConfig, EquipmentConfig, SiteConfig};
use jiff::tz::TimeZone;
use tokio_rustls::rustls::ClientConfig;

/// The broker.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Its host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// User name, if the broker wants one.
    pub user: Option<String>,
    /// Password, with the user name.
    pub password: Option<String>,
    /// This node's client id, unique on the broker; it also names the
    /// node's topics and its Shelly Gen2 reply topic.
    pub client_id: String,
    /// TLS to the broker, with whom to trust; plain TCP if `None`.
    pub tls: Option<Arc<ClientConfig>>,
}

/// What the control loop needs.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// The broker.
    pub mqtt: MqttConfig,
    /// The equipments.
    pub equipments: Vec<EquipmentConfig>,
    /// The households' plates.
    pub displays: Vec<DisplayConfig>,
    /// The sites, with their off-peak windows.
    pub sites: Vec<SiteConfig>,
    /// The households' time zone: end-by times set on a plate are local.
    pub timezone: TimeZone,
}

/// Checks a configuration whole: unique names, names usable in topics,
/// each typology's devices, each device's address.
pub fn check(config: &ControlConfig) -> Result<()> {
    control::fleet::check(
        &config.mqtt.client_id,
        &config.equipments,
        &config.displays,
        &config.sites,
    )
}
