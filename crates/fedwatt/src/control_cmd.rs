//! The control loop in `serve`: its components, from `[control]`, live in
//! `control_mqtt`; this is their registration, and where TLS to an
//! `mqtts://` broker comes from.

use std::path::Path;
use std::sync::Arc;

use rumqttc::tokio_rustls::rustls::ClientConfig;

/// Adds the control loop (and the node's own broker) to `node`; the loop's
/// handle, for the HTTP API, when there is something to drive.
pub fn components(
    config: &crate::config::Config,
    store: &store::Store,
    node: &mut node::Node,
) -> Result<Option<control_mqtt::Handle>, String> {
    let timezone = store::time_zone(&config.store.timezone)?;
    control_mqtt::add_to(node, &config.control, store, timezone, &broker_tls)
}

/// TLS to an `mqtts://` broker, trusting `ca_file` or the system's CAs.
fn broker_tls(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    federation::tls_client_config(ca_file, "[control]")
}
