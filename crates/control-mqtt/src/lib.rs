//! fedwatt's control loop over MQTT: the I/O around the pure core of
//! `fedwatt-control` (library `control`).
//!
//! - [`run`] is the loop: one MQTT session to the broker (its own MQTT
//!   3.1.1 client on rumqttc's packet codec; TLS with rustls for
//!   `mqtts://`), the equipments with their devices, the clock. It
//!   subscribes to every device's topics (again after each
//!   reconnection) and asks each device its state; takes plans on
//!   [`plan_topic`] and stimulations on [`stimulation_topic`] (a malformed
//!   one is refused with a logged reason; the loop goes on); draws and
//!   updates the openHASP plates and takes their touches; wakes when an
//!   equipment or an order's confirmation is due, every second at least.
//! - The rest of the node reaches it through a [`Handle`]: its equipments'
//!   status, plans, modes, stimulations, new equipments.
//! - Everything that happens is sent to the journal channel as a [`Note`],
//!   plans and stimulations included, whatever their source, so that they
//!   are kept and applied again after a restart (with [`Source::Store`]).
//! - [`broker`] is a small MQTT broker for a node with none to talk to.
//! - [`add_to`] adds both to a node as [`node::Component`]s, from
//!   `[control]` ([`ControlSettings`]); the control component keeps the
//!   journal in the store (streams `equipment/…`, and the control tables)
//!   and gives the loop back what it kept at start; [`ControlStatus`] is
//!   what it reports on the node's status board.
//!
//! What it is *not*: the rules. What an order is, what a device's message
//! says, what a plan or a shed does to an equipment are decided in
//! `control`; this crate routes messages and keeps nothing of its own.
//!
//! Invariants: a plan or a stimulation acknowledged through a [`Handle`] is
//! stored before the answer; the loop never drops a journal entry (it waits
//! for the journal's reader instead); the loop starts the equipments only
//! once it listens for their confirmations.

pub mod broker;
mod client;
mod component;
mod config;
mod dispatch;
mod engine;
mod handle;
mod journal;
mod plates;
mod routes;
mod session;
mod settings;
mod status;

pub use component::{ControlLoop, EmbeddedBroker, add_to};
pub use config::{ControlConfig, MqttConfig, check};
pub use control::fleet::{DeviceConfig, DisplayConfig, EquipmentConfig, SiteConfig};
pub use control::journal::{JournalEntry, Source};
pub use control::status::{DeviceStatus, EquipmentStatus};
pub use handle::{Handle, Kept, Note, Requests, handle};
pub use session::{plan_topic, run, stimulation_topic};
pub use settings::{
    ControlSettings, ControlSetup, DisplaySettings, EmbeddedBrokerSettings, SiteSettings, TlsSetup,
};
pub use status::ControlStatus;
