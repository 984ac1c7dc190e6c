//! The control loop: one MQTT session to the broker, the equipments with
//! their devices, and the clock. Everything else in this crate is pure;
//! this module does the I/O around it.
//!
//! - Subscribes to every device's topics (again after each reconnection),
//!   and asks each device for its state.
//! - Plans arrive on `fedwatt/<client id>/plan/<equipment>`, stimulations on
//!   `fedwatt/<client id>/stimulation` (JSON: [`crate::plan`],
//!   [`crate::stimulation`]). A malformed one is refused with a logged
//!   reason; the loop goes on.
//! - Wakes when an equipment has something due ([`Equipment::next_wake`])
//!   and when an order's confirmation is due, at least every second.
//! - Everything that happens is sent to the journal channel.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};

use crate::device::{CONFIRM_WITHIN, DeviceLink, Outcome};
use crate::driver::{DeviceAddress, Driver, Order, driver};
use crate::equipment::{Change, Equipment, Safety};
use crate::machine::{self, Effect, Event as MachineEvent, Part, State};
use crate::model::{EquipmentKind, Measured, Mode, Typology};
use crate::plan::Plan;
use crate::stimulation::{Ask, Stimulation, Targets};
use crate::{Error, Result};

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
}

/// A device of an equipment.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// What it does for its equipment.
    pub part: Part,
    /// How it is reached.
    pub address: DeviceAddress,
}

/// An equipment and its devices.
#[derive(Debug, Clone)]
pub struct EquipmentConfig {
    /// Its name: unique, used in topics, stimulations and the journal.
    pub name: String,
    /// What it is.
    pub kind: EquipmentKind,
    /// How it is wired.
    pub typology: Typology,
    /// Who is in charge at start-up.
    pub mode: Mode,
    /// Its timing rules.
    pub safety: Safety,
    /// The groups it belongs to, for stimulations.
    pub groups: Vec<String>,
    /// Its devices.
    pub devices: Vec<DeviceConfig>,
}

/// What the control loop needs.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// The broker.
    pub mqtt: MqttConfig,
    /// The equipments.
    pub equipments: Vec<EquipmentConfig>,
}

/// What happened, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalEntry {
    /// An equipment's state machine moved.
    Transition {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// From.
        from: State,
        /// To.
        to: State,
        /// Why.
        event: MachineEvent,
    },
    /// An order published to a device.
    Order {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// Which device.
        part: Part,
        /// What.
        order: Order,
    },
    /// The device confirmed it.
    Confirmed {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// Which device.
        part: Part,
        /// What.
        order: Order,
    },
    /// The device did not confirm in time, refused it, or went offline.
    Failed {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// Which device.
        part: Part,
        /// What.
        order: Order,
    },
    /// A device's measured state changed.
    Measured {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// Which device.
        part: Part,
        /// Its state.
        state: Measured,
    },
    /// A device measured its load's power.
    Power {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// Which device.
        part: Part,
        /// In W.
        watts: f64,
    },
    /// A message refused, and why.
    Refused {
        /// When (µs).
        at: i64,
        /// Its topic.
        topic: String,
        /// Why.
        reason: String,
    },
}

/// The topic of plans for `equipment`.
pub fn plan_topic(client_id: &str, equipment: &str) -> String {
    format!("fedwatt/{client_id}/plan/{equipment}")
}

/// The topic of stimulations.
pub fn stimulation_topic(client_id: &str) -> String {
    format!("fedwatt/{client_id}/stimulation")
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

struct Device {
    part: Part,
    driver: Box<dyn Driver>,
    link: DeviceLink,
}

struct Controlled {
    name: String,
    groups: Vec<String>,
    equipment: Equipment,
    devices: Vec<Device>,
}

/// Which typology needs which parts.
fn required_parts(typology: Typology) -> &'static [Part] {
    match typology {
        Typology::Plug | Typology::RelayAndMeter | Typology::InvertedRelay => &[Part::Switch],
        Typology::PlugAndFinger => &[Part::Switch, Part::Finger],
        Typology::TwoRelays => &[Part::Switch, Part::SecondRelay],
    }
}

/// Checks a configuration whole: unique names, names usable in topics,
/// each typology's devices, each device's address.
pub fn check(config: &ControlConfig) -> Result<()> {
    let id = &config.mqtt.client_id;
    if id.is_empty() || id.contains(['/', '+', '#']) {
        return Err(Error::Invalid(format!(
            "client id {id:?}: it must be non-empty, without / + #"
        )));
    }
    let mut names = std::collections::HashSet::new();
    for e in &config.equipments {
        if e.name.is_empty() || e.name.contains(['/', '+', '#']) {
            return Err(Error::Invalid(format!(
                "equipment {:?}: a name must be non-empty, without / + #",
                e.name
            )));
        }
        if !names.insert(e.name.as_str()) {
            return Err(Error::Invalid(format!(
                "equipment {:?} is named twice",
                e.name
            )));
        }
        for part in required_parts(e.typology) {
            if !e.devices.iter().any(|d| d.part == *part) {
                return Err(Error::Invalid(format!(
                    "equipment {:?} ({}) needs a device for its {part:?}",
                    e.name, e.typology
                )));
            }
        }
        for d in &e.devices {
            driver(&d.address, "x")
                .map_err(|err| Error::Invalid(format!("equipment {:?}: {err}", e.name)))?;
        }
    }
    Ok(())
}

struct Loop {
    client: AsyncClient,
    client_id: String,
    /// `fedwatt/<client id>/`: the prefix of the node's own topics.
    own_prefix: String,
    reply_to: String,
    equipments: Vec<Controlled>,
    /// Exact topic → (equipment, device).
    routes: HashMap<String, Vec<(usize, usize)>>,
    /// Subscriptions with wildcards, with their device.
    wildcard_routes: Vec<(String, usize, usize)>,
    /// Request id → (equipment, device), for replies on the shared topic.
    requests: HashMap<u64, (usize, usize)>,
    next_id: u64,
    /// Stimulations that start later.
    scheduled: Vec<Stimulation>,
    /// When the loop next has something due: recomputed whole at each
    /// tick, lowered as orders and changes come (a scan of every equipment
    /// per message would not scale to a fleet).
    wake_at: i64,
    journal: mpsc::Sender<JournalEntry>,
}

/// Runs the control loop until `shutdown` turns true.
pub async fn run(
    config: ControlConfig,
    journal: mpsc::Sender<JournalEntry>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    check(&config)?;
    let m = &config.mqtt;
    let mut options = MqttOptions::new(&m.client_id, &m.host, m.port);
    options.set_keep_alive(Duration::from_secs(30));
    // A session the broker keeps while the node is away: plans and
    // stimulations sent meanwhile (QoS 1) are delivered when it is back.
    options.set_clean_session(false);
    options.set_max_packet_size(1 << 20, 1 << 20);
    if let Some(user) = &m.user {
        options.set_credentials(user, m.password.clone().unwrap_or_default());
    }
    let (client, mut eventloop) = AsyncClient::new(options, 65_536);
    let reply_to = format!("fedwatt/{}/reply", m.client_id);
    let now = now_micros();
    let mut equipments = Vec::new();
    for e in &config.equipments {
        let mut devices = Vec::new();
        for d in &e.devices {
            devices.push(Device {
                part: d.part,
                driver: driver(&d.address, &reply_to)?,
                link: DeviceLink::new(now),
            });
        }
        equipments.push(Controlled {
            name: e.name.clone(),
            groups: e.groups.clone(),
            equipment: Equipment::new(e.kind, e.typology, e.mode, e.safety),
            devices,
        });
    }
    let mut routes: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
    let mut wildcard_routes = Vec::new();
    for (i, e) in equipments.iter().enumerate() {
        for (d, device) in e.devices.iter().enumerate() {
            for topic in device.driver.subscriptions() {
                if topic == format!("{reply_to}/rpc") {
                    continue;
                }
                if topic.contains(['+', '#']) {
                    wildcard_routes.push((topic, i, d));
                } else {
                    routes.entry(topic).or_default().push((i, d));
                }
            }
        }
    }
    let mut control = Loop {
        client,
        client_id: m.client_id.clone(),
        own_prefix: format!("fedwatt/{}/", m.client_id),
        reply_to,
        equipments,
        routes,
        wildcard_routes,
        requests: HashMap::new(),
        // Ids unique across restarts: a late reply to the previous run's
        // request is not taken for this run's.
        next_id: now as u64,
        scheduled: Vec::new(),
        wake_at: now,
        journal,
    };
    tracing::info!(
        "control: {} equipments, broker {}:{}",
        control.equipments.len(),
        m.host,
        m.port
    );
    let mut connected = false;
    let mut started = false;
    loop {
        let now = now_micros();
        let pause = Duration::from_micros((control.wake_at - now).clamp(0, 1_000_000) as u64);
        tokio::select! {
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!("control: connected to the broker");
                    connected = true;
                    control.subscribe().await;
                    // The first orders go out once the node listens for
                    // their confirmations.
                    if !started {
                        started = true;
                        let now = now_micros();
                        for i in 0..control.equipments.len() {
                            let changes = control.equipments[i].equipment.start(now);
                            control.carry_out(now, i, &changes).await;
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    control.take(now_micros(), &p.topic, &p.payload).await;
                }
                Ok(_) => {}
                Err(e) => {
                    if connected {
                        tracing::warn!("control: broker connection lost ({e}); reconnecting");
                    } else {
                        tracing::warn!("control: cannot reach the broker ({e}); retrying");
                    }
                    connected = false;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = tokio::time::sleep(pause), if started => control.tick(now_micros()).await,
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    let _ = control.client.disconnect().await;
    Ok(())
}

/// Whether `topic` matches the MQTT filter `filter`.
fn matches_filter(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl Loop {
    /// Journals `entry`. The loop waits if the journal is full (its
    /// reader stores it): an entry is never dropped.
    async fn note(&self, entry: JournalEntry) {
        tracing::debug!("control: {entry:?}");
        if self.journal.send(entry).await.is_err() {
            tracing::warn!("control: the journal's reader is gone");
        }
    }

    async fn refuse(&self, at: i64, topic: &str, reason: String) {
        tracing::warn!("control: {topic}: refused: {reason}");
        self.note(JournalEntry::Refused {
            at,
            topic: topic.to_owned(),
            reason,
        })
        .await;
    }

    async fn subscribe(&mut self) {
        let mut topics: Vec<String> = self.routes.keys().cloned().collect();
        topics.extend(self.wildcard_routes.iter().map(|(t, _, _)| t.clone()));
        topics.push(format!("{}/rpc", self.reply_to));
        topics.push(plan_topic(&self.client_id, "+"));
        topics.push(stimulation_topic(&self.client_id));
        for chunk in topics.chunks(100) {
            let filters = chunk
                .iter()
                .map(|t| rumqttc::SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
            if let Err(e) = self.client.subscribe_many(filters).await {
                tracing::error!("control: subscribing: {e}");
            }
        }
        // Ask every device where it stands: what it says reconciles it.
        for i in 0..self.equipments.len() {
            for d in 0..self.equipments[i].devices.len() {
                self.next_id += 1;
                let id = self.next_id;
                if let Some(q) = self.equipments[i].devices[d].driver.query(id) {
                    self.requests.insert(id, (i, d));
                    let _ = self
                        .client
                        .publish(q.topic, QoS::AtLeastOnce, false, q.payload)
                        .await;
                }
            }
        }
    }

    fn next_wake(&self, now: i64) -> i64 {
        let mut wake = now + 1_000_000;
        for s in &self.scheduled {
            wake = wake.min(s.from);
        }
        for e in &self.equipments {
            if let Some(t) = e.equipment.next_wake(now) {
                wake = wake.min(t);
            }
            for d in &e.devices {
                if let Some(p) = d.link.pending {
                    wake = wake.min(p.sent + CONFIRM_WITHIN);
                }
            }
        }
        wake
    }

    async fn tick(&mut self, now: i64) {
        let (due, later) = std::mem::take(&mut self.scheduled)
            .into_iter()
            .partition(|s| s.from <= now);
        self.scheduled = later;
        for s in due {
            let topic = stimulation_topic(&self.client_id);
            self.stimulate(now, &topic, s).await;
        }
        for i in 0..self.equipments.len() {
            let changes = self.equipments[i].equipment.tick(now);
            self.carry_out(now, i, &changes).await;
            for d in 0..self.equipments[i].devices.len() {
                let next_id = &mut self.next_id;
                let outcomes = self.equipments[i].devices[d].link.check(now, || {
                    *next_id += 1;
                    *next_id
                });
                self.outcomes(now, i, d, outcomes).await;
            }
        }
        self.wake_at = self.next_wake(now);
    }

    /// Journals `changes` of equipment `i` and sends their orders.
    async fn carry_out(&mut self, now: i64, i: usize, changes: &[Change]) {
        for change in changes {
            let effect = match *change {
                Change::Moved {
                    from,
                    to,
                    event,
                    effect,
                } => {
                    if from != to {
                        self.note(JournalEntry::Transition {
                            at: now,
                            equipment: self.equipments[i].name.clone(),
                            from,
                            to,
                            event,
                        })
                        .await;
                    }
                    effect
                }
                Change::Released(effect) => effect,
            };
            if effect == Effect::Nothing {
                continue;
            }
            let typology = self.equipments[i].equipment.typology;
            for (part, order) in machine::orders(typology, effect) {
                let Some(d) = self.equipments[i]
                    .devices
                    .iter()
                    .position(|x| x.part == part)
                else {
                    continue;
                };
                self.next_id += 1;
                let id = self.next_id;
                let outcomes = self.equipments[i].devices[d].link.order(now, order, id);
                self.outcomes(now, i, d, outcomes).await;
            }
        }
        if let Some(t) = self.equipments[i].equipment.next_wake(now) {
            self.wake_at = self.wake_at.min(t);
        }
    }

    /// Carries out what a device link says: publishes, journals.
    async fn outcomes(&mut self, now: i64, i: usize, d: usize, outcomes: Vec<Outcome>) {
        for outcome in outcomes {
            let equipment = self.equipments[i].name.clone();
            let part = self.equipments[i].devices[d].part;
            match outcome {
                Outcome::Send(order, id) => {
                    self.wake_at = self.wake_at.min(now + CONFIRM_WITHIN);
                    let p = self.equipments[i].devices[d].driver.order(order, id);
                    self.requests.insert(id, (i, d));
                    if let Err(e) = self
                        .client
                        .publish(p.topic, QoS::AtLeastOnce, false, p.payload)
                        .await
                    {
                        tracing::error!("control: publishing an order: {e}");
                    }
                    self.note(JournalEntry::Order {
                        at: now,
                        equipment,
                        part,
                        order,
                    })
                    .await;
                }
                Outcome::Confirmed(order) => {
                    self.note(JournalEntry::Confirmed {
                        at: now,
                        equipment,
                        part,
                        order,
                    })
                    .await;
                }
                Outcome::Failed(order) => {
                    tracing::warn!("control: {equipment}: its {part:?} did not confirm {order:?}");
                    self.note(JournalEntry::Failed {
                        at: now,
                        equipment,
                        part,
                        order,
                    })
                    .await;
                }
                Outcome::Measured(state) => {
                    self.note(JournalEntry::Measured {
                        at: now,
                        equipment,
                        part,
                        state,
                    })
                    .await;
                }
            }
        }
    }

    /// Takes a message from the broker.
    async fn take(&mut self, now: i64, topic: &str, payload: &[u8]) {
        if let Some(rest) = topic.strip_prefix(self.own_prefix.as_str()) {
            return self.take_own(now, topic, rest, payload).await;
        }
        let mut targets: Vec<(usize, usize)> = self.routes.get(topic).cloned().unwrap_or_default();
        targets.extend(
            self.wildcard_routes
                .iter()
                .filter(|(f, _, _)| matches_filter(f, topic))
                .map(|&(_, i, d)| (i, d)),
        );
        for (i, d) in targets {
            self.take_for(now, i, d, topic, payload).await;
        }
    }

    async fn take_for(&mut self, now: i64, i: usize, d: usize, topic: &str, payload: &[u8]) {
        let seen = match self.equipments[i].devices[d].driver.read(topic, payload) {
            Ok(seen) => seen,
            Err(e) => return self.refuse(now, topic, e.to_string()).await,
        };
        for observation in seen {
            if let crate::driver::Observation::Power(watts) = observation {
                self.note(JournalEntry::Power {
                    at: now,
                    equipment: self.equipments[i].name.clone(),
                    part: self.equipments[i].devices[d].part,
                    watts,
                })
                .await;
            }
            let next_id = &mut self.next_id;
            let outcomes = self.equipments[i].devices[d]
                .link
                .observe(now, &observation, || {
                    *next_id += 1;
                    *next_id
                });
            self.outcomes(now, i, d, outcomes).await;
        }
    }

    /// Plans, stimulations and replies on the node's own topics.
    async fn take_own(&mut self, now: i64, topic: &str, rest: &str, payload: &[u8]) {
        if rest == "reply/rpc" {
            let id = serde_json::from_slice::<serde_json::Value>(payload)
                .ok()
                .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64));
            match id.and_then(|id| self.requests.remove(&id)) {
                Some((i, d)) => self.take_for(now, i, d, topic, payload).await,
                None => {
                    self.refuse(now, topic, "a reply to no request of this node".into())
                        .await
                }
            }
            return;
        }
        let json = match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(v) => v,
            Err(e) => return self.refuse(now, topic, format!("not JSON: {e}")).await,
        };
        if let Some(name) = rest.strip_prefix("plan/") {
            let Some(i) = self.equipments.iter().position(|e| e.name == name) else {
                return self
                    .refuse(now, topic, format!("no equipment is named {name:?}"))
                    .await;
            };
            match Plan::from_json(&json) {
                Ok(plan) => {
                    let changes = self.equipments[i].equipment.set_plan(now, plan);
                    self.carry_out(now, i, &changes).await;
                }
                Err(e) => self.refuse(now, topic, e.to_string()).await,
            }
        } else if rest == "stimulation" {
            match Stimulation::from_json(&json, now) {
                Ok(s) => self.stimulate(now, topic, s).await,
                Err(e) => self.refuse(now, topic, e.to_string()).await,
            }
        }
    }

    async fn stimulate(&mut self, now: i64, topic: &str, s: Stimulation) {
        let (targets, shed) = match &s.ask {
            Ask::Shed(t) => (t, true),
            Ask::ConsumeNow(t) => (t, false),
            Ask::Signal(level) => {
                tracing::info!("control: the local signal is {level} until {}", s.until);
                return;
            }
        };
        let chosen: Vec<usize> = match targets {
            Targets::Equipments(names) => {
                if let Some(unknown) = names
                    .iter()
                    .find(|n| !self.equipments.iter().any(|e| &e.name == *n))
                {
                    return self
                        .refuse(now, topic, format!("no equipment is named {unknown:?}"))
                        .await;
                }
                (0..self.equipments.len())
                    .filter(|&i| names.contains(&self.equipments[i].name))
                    .collect()
            }
            Targets::Group(group) => (0..self.equipments.len())
                .filter(|&i| self.equipments[i].groups.contains(group))
                .collect(),
        };
        // One that starts later waits for its start.
        if s.from > now {
            self.wake_at = self.wake_at.min(s.from);
            self.scheduled.push(s);
            return;
        }
        for i in chosen {
            let e = &mut self.equipments[i].equipment;
            let changes = if shed {
                e.shed_until(now, s.until)
            } else {
                e.consume_now_until(now, s.until)
            };
            self.carry_out(now, i, &changes).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_mqtt_says() {
        assert!(matches_filter(
            "hasp/plate01/state/+",
            "hasp/plate01/state/p1b3"
        ));
        assert!(!matches_filter(
            "hasp/plate01/state/+",
            "hasp/plate01/state/p1b3/x"
        ));
        assert!(matches_filter("a/#", "a/b/c"));
        assert!(!matches_filter("a/b", "a/c"));
    }
}
