//! The control loop and the node's own MQTT broker as components of a node
//! ([`node::Component`]), and [`add_to`], which adds what `[control]`
//! asks for.
//!
//! The control loop's component drives the configured equipments and those
//! added at run time (kept in the store), gives the loop back the kept
//! plans and stimulations, says it is ready then (so that an API call made
//! right after the start sees them), and stores the journal until the node
//! stops.

use std::sync::Arc;

use control::fleet::{EquipmentConfig, check_equipment};
use control::journal::Source;
use control::settings::EquipmentSettings;
use jiff::tz::TimeZone;
use store::Store;
use tokio::sync::mpsc;

use crate::broker::Broker;
use crate::config::ControlConfig;
use crate::handle::{Handle, Requests, handle};
use crate::settings::{ControlSettings, TlsSetup};
use crate::status::ControlStatus;

/// Adds to `node` what `settings` asks for: the node's own MQTT broker
/// when no broker is named, then the control loop. Returns the loop's
/// handle, for the HTTP API, or `None` when there is nothing to drive
/// (nothing configured, nothing added at run time in `store`).
///
/// `tls` makes the TLS configuration for an `mqtts://` broker.
pub fn add_to(
    node: &mut node::Node,
    settings: &ControlSettings,
    store: &Store,
    timezone: TimeZone,
    tls: TlsSetup<'_>,
) -> Result<Option<Handle>, String> {
    let stored_equipments = !store.equipments().map_err(|e| e.to_string())?.is_empty();
    let Some(mut setup) = settings.setup(stored_equipments, timezone, tls)? else {
        tracing::info!("no [control] broker nor equipment configured: driving no device");
        return Ok(None);
    };
    if let Some(embedded) = setup.embedded_broker {
        let listener = std::net::TcpListener::bind(embedded.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| {
                format!(
                    "cannot run the node's own MQTT broker on {}: {e}; set [control] broker to the broker running there, or [control] listen to another address",
                    embedded.listen
                )
            })?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        setup.config.mqtt.port = address.port();
        tracing::info!(
            "no [control] broker configured: the node's own MQTT broker listens on {address}"
        );
        node.add(EmbeddedBroker {
            listener,
            broker: Broker::new(embedded.auth),
        });
    }
    let (handle, requests) = handle();
    node.add(ControlLoop {
        config: setup.config,
        handle: handle.clone(),
        requests,
    });
    Ok(Some(handle))
}

/// The node's own MQTT broker, on a bound listener.
pub struct EmbeddedBroker {
    listener: std::net::TcpListener,
    broker: Broker,
}

impl node::Component for EmbeddedBroker {
    fn name(&self) -> &'static str {
        "mqtt broker"
    }

    fn run(self: Box<Self>, mut cx: node::Context) -> node::BoxFuture<Result<(), node::Failure>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            cx.ready();
            self.broker.serve(listener, cx.shutdown.watch()).await;
            Ok(())
        })
    }
}

/// The control loop, with its journal kept in the node's store.
pub struct ControlLoop {
    config: ControlConfig,
    handle: Handle,
    requests: Requests,
}

impl node::Component for ControlLoop {
    fn name(&self) -> &'static str {
        "control"
    }

    fn run(self: Box<Self>, mut cx: node::Context) -> node::BoxFuture<Result<(), node::Failure>> {
        Box::pin(async move {
            let mut config = self.config;
            let stored = cx.store.clone();
            let configured: Vec<String> =
                config.equipments.iter().map(|e| e.name.clone()).collect();
            let sites: Vec<String> = config.sites.iter().map(|s| s.name.clone()).collect();
            match tokio::task::spawn_blocking(move || {
                stored_equipments(&stored, &configured, &sites)
            })
            .await
            {
                Ok(added) => config.equipments.extend(added),
                Err(e) => tracing::error!("control: reading the stored equipments: {e}"),
            }
            let (journal, notes) = mpsc::channel(65_536);
            let running = tokio::spawn(crate::run(
                config,
                journal,
                self.requests,
                cx.shutdown.watch(),
            ));
            let status = Arc::new(ControlStatus::default());
            cx.status.register(status.clone());
            let storing = tokio::spawn(crate::journal::store(cx.store.clone(), notes, status));
            // Its kept plans and stimulations first: an API call made
            // right after the start sees them.
            restore(&cx.store, &self.handle).await;
            cx.ready();
            // The loop ends at shutdown (or fails); the journal's reader
            // then stores what is left, and ends with it.
            let ended = running.await;
            drop(self.handle);
            storing.await?;
            ended??;
            Ok(())
        })
    }
}

/// The equipments added at run time, except those whose name the
/// configuration file took since, or whose site it no longer has (each
/// skipped with its reason logged).
fn stored_equipments(
    store: &Store,
    configured: &[String],
    sites: &[String],
) -> Vec<EquipmentConfig> {
    let stored = match store.equipments() {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!("control: reading the stored equipments: {e}");
            return Vec::new();
        }
    };
    stored
        .into_iter()
        .filter_map(|e| {
            if configured.contains(&e.name) {
                tracing::error!(
                    "control: equipment {:?} is both in the configuration file and added at run time; the file's is driven",
                    e.name
                );
                return None;
            }
            let read = serde_json::from_value::<EquipmentSettings>(e.config)
                .map_err(|err| err.to_string())
                .and_then(|s| s.to_config().map_err(|err| err.to_string()))
                .and_then(|c| match &c.site {
                    Some(site) if !sites.contains(site) => {
                        Err(format!("its site {site:?} is not configured"))
                    }
                    _ => check_equipment(&c).map(|()| c).map_err(|err| err.to_string()),
                });
            read.map_err(|err| tracing::error!("control: stored equipment {:?}: {err}", e.name))
                .ok()
        })
        .collect()
}

/// Gives the loop back the last plan of each equipment and the
/// stimulations still in force.
async fn restore(store: &Store, handle: &Handle) {
    let read = store.clone();
    let now = store::Time::now();
    let kept = tokio::task::spawn_blocking(move || {
        Ok::<_, store::Error>((read.plans()?, read.stimulations_in_force(now)?))
    })
    .await;
    let (plans, stimulations) = match kept {
        Ok(Ok(kept)) => kept,
        Ok(Err(e)) => return tracing::error!("control: reading the kept plans: {e}"),
        Err(e) => return tracing::error!("control: reading the kept plans: {e}"),
    };
    for p in plans {
        if let Err(e) = handle.set_plan(&p.equipment, p.plan, Source::Store).await {
            tracing::warn!("control: the kept plan of {}: {e}", p.equipment);
        }
    }
    for s in stimulations {
        if let Err(e) = handle.stimulate(s.body, Source::Store).await {
            tracing::warn!("control: kept stimulation {}: {e}", s.id);
        }
    }
}
