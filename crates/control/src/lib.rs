//! Flexibility control-command: the part of a node that drives a
//! household's flexible loads (water heaters, heaters, dishwashers, washing
//! machines, dryers, EV chargers) from plans and stimulations, with the
//! household kept in control.
//!
//! Its core is pure: it does no I/O, and knows
//! - the vocabulary of equipments, devices, typologies and modes
//!   ([`model`]);
//! - each device firmware's MQTT topics and payloads, behind one trait
//!   ([`driver`]): what to publish for an order, what a message from the
//!   device says;
//! - the state machine of each kind of load, as a table, and each
//!   typology's orders ([`machine`]);
//! - one equipment under control, with the rules that need a clock:
//!   plan slots, minimum on/off durations, maximum shed, the end of
//!   stimulations and overrides, deadlines ([`equipment`]);
//! - one device's link: orders confirmed by the device's own answer,
//!   communication errors, reconciliation when it comes back ([`device`]);
//! - plans of quarter-hour decisions and time slots ([`plan`]), and
//!   stimulations ([`stimulation`]);
//! - what a piloted equipment with no plan does under its site's off-peak
//!   windows and the signals ([`signals`]);
//! - the pages an openHASP plate shows and what its buttons ask
//!   ([`display`]).
//!
//! [`settings`] is how equipments are written in the node's TOML file and
//! the HTTP API, [`fleet`] what they become once checked. [`journal`] and
//! [`status`] are what the loop tells of itself, as plain values.
//!
//! What it is *not*: the control loop. The MQTT session, the clock, the
//! node's own broker and the storing of the journal are in
//! `fedwatt-control-mqtt` (library `control_mqtt`); this crate depends on no
//! runtime, no network and no store.
//!
//! Invariants: a message from a device is either understood or refused with
//! a reason, never a panic; a state machine answers every event in every
//! state (an event that does not apply is ignored, explicitly).

pub mod device;
pub mod display;
pub mod driver;
pub mod equipment;
pub mod fleet;
pub mod fuzzing;
pub mod journal;
pub mod machine;
pub mod model;
pub mod plan;
pub mod settings;
pub mod signals;
pub mod status;
pub mod stimulation;

/// What is wrong with an input from outside (a device's message, a plan,
/// a configuration value).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// A device message that cannot be read.
    #[error("{topic}: {reason}")]
    Message {
        /// Its topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// An invalid value, named.
    #[error("{0}")]
    Invalid(String),
    /// A plan, mode or stimulation for an equipment the node does not have.
    #[error("no equipment is named {0:?}")]
    NoEquipment(String),
    /// An equipment added under a name the node drives already.
    #[error("an equipment named {0:?} is driven already")]
    NameTaken(String),
    /// The control loop is not running (it stopped, or never started).
    #[error("the control loop is not running")]
    Stopped,
    /// A plan or stimulation applied, but not kept (the store failed): it
    /// would not survive a restart, so it is not acknowledged.
    #[error("applied, but could not be kept: {0}")]
    NotKept(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// A time in whole seconds since 1970 (UTC), as on the wire, read as
/// microseconds; an error naming `what` otherwise.
fn seconds(value: Option<&serde_json::Value>, what: &str) -> Result<i64> {
    match value.and_then(serde_json::Value::as_i64) {
        // Up to the last second of year 9999.
        Some(s) if (0..=253_402_300_799).contains(&s) => Ok(s * 1_000_000),
        _ => Err(Error::Invalid(format!(
            "{what} must be a time in whole seconds since 1970 (UTC), got {}",
            value.map_or("nothing".to_owned(), serde_json::Value::to_string)
        ))),
    }
}

/// Refuses an input, saying why.
fn invalid<T>(why: impl Into<String>) -> Result<T> {
    Err(Error::Invalid(why.into()))
}
