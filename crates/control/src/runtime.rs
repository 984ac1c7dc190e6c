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
//! - Draws the pages of each openHASP plate when it says it is online,
//!   updates them when what they show changes, and takes the household's
//!   touches on them ([`crate::display`]).
//! - Wakes when an equipment has something due ([`Equipment::next_wake`])
//!   and when an order's confirmation is due, at least every second.
//! - Other parts of the node (the HTTP API) reach it through a [`Handle`]:
//!   its equipments' status, plans, modes, stimulations, new equipments.
//! - Everything that happens is sent to the journal channel, plans and
//!   stimulations included (so that they can be kept and applied again
//!   after a restart, with [`Source::Store`]).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use jiff::tz::TimeZone;

use crate::device::{CONFIRM_WITHIN, DeviceLink, Outcome};
use crate::display::EQUIPMENTS_PER_PLATE;
use crate::driver::{DeviceAddress, Driver, OpenHasp, Order, driver};
use crate::equipment::{Change, Cycle, Equipment, Safety};
use crate::machine::{self, Effect, Event as MachineEvent, Part, State};
use crate::model::{EquipmentKind, Measured, Mode, Typology};
use crate::plan::Plan;
use crate::signals::{self, OffPeak, Outlook, Signals};
use crate::stimulation::{Ask, Stimulation, Targets};
use crate::{Error, Result};

mod plates;

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
    pub tls: Option<std::sync::Arc<rumqttc::tokio_rustls::rustls::ClientConfig>>,
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
    /// Its cycle or charge: duration, how its end shows, a car's battery.
    pub cycle: Cycle,
    /// The groups it belongs to, for stimulations.
    pub groups: Vec<String>,
    /// Its site (household), whose off-peak windows it follows where no
    /// plan decides.
    pub site: Option<String>,
    /// Its devices.
    pub devices: Vec<DeviceConfig>,
}

/// A site (a household, a building) and its off-peak windows.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// Its name, as equipments give it.
    pub name: String,
    /// Its off-peak windows, in local time.
    pub off_peak: OffPeak,
}

/// An openHASP plate in a household, and what it shows.
#[derive(Debug, Clone)]
pub struct DisplayConfig {
    /// The plate's name in its topics (`hasp/<plate>/…`).
    pub plate: String,
    /// The equipments it shows, by name, in page order
    /// ([`EQUIPMENTS_PER_PLATE`] at most).
    pub equipments: Vec<String>,
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
    /// A plan accepted for an equipment from the node's MQTT topics, to
    /// keep. (The HTTP API keeps those it takes before it answers; those
    /// given back from the store are kept already.)
    Plan {
        /// When (µs).
        at: i64,
        /// The equipment.
        equipment: String,
        /// The plan, as received.
        plan: Value,
        /// Where it came from.
        source: Source,
    },
    /// A stimulation accepted from the node's MQTT topics, to keep (as
    /// plans are).
    Stimulation {
        /// When (µs).
        at: i64,
        /// The stimulation, as received.
        body: Value,
        /// When it ends (µs).
        until: i64,
        /// Where it came from.
        source: Source,
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

/// Where a plan or a stimulation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The node's MQTT topics.
    Mqtt,
    /// The HTTP API.
    Api,
    /// The store, at start-up: accepted before, applied again.
    Store,
}

impl Source {
    /// Its name, as stored.
    pub fn name(self) -> &'static str {
        match self {
            Source::Mqtt => "mqtt",
            Source::Api => "api",
            Source::Store => "store",
        }
    }
}

/// A device as the loop sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStatus {
    /// What it does for its equipment.
    pub part: Part,
    /// How it is reached.
    pub address: DeviceAddress,
    /// What it says of itself.
    pub measured: Measured,
    /// Since when (µs).
    pub since: i64,
    /// The last power it measured (W).
    pub power: Option<f64>,
    /// An order sent and not confirmed yet.
    pub pending: Option<Order>,
}

/// An equipment as the loop sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct EquipmentStatus {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: EquipmentKind,
    /// How it is wired.
    pub typology: Typology,
    /// Who is in charge.
    pub mode: Mode,
    /// Its command state.
    pub state: State,
    /// Its groups.
    pub groups: Vec<String>,
    /// The household's end-by time (µs).
    pub end_by: Option<i64>,
    /// A car's target charge (%).
    pub target_charge: Option<u8>,
    /// Its plan, as received.
    pub plan: Option<Value>,
    /// Its devices.
    pub devices: Vec<DeviceStatus>,
}

impl EquipmentStatus {
    /// As JSON, for the HTTP API (times in seconds since 1970).
    pub fn to_json(&self) -> Value {
        let seconds = |t: i64| t as f64 / 1e6;
        json!({
            "name": self.name,
            "kind": self.kind.name(),
            "typology": self.typology.name(),
            "mode": self.mode.name(),
            "state": self.state.name(),
            "groups": self.groups,
            "end_by": self.end_by.map(seconds),
            "target_charge": self.target_charge,
            "plan": self.plan,
            "devices": self.devices.iter().map(|d| json!({
                "part": d.part.name(),
                "firmware": d.address.firmware.name(),
                "topic": d.address.topic,
                "channel": d.address.channel,
                "measured": d.measured.name(),
                "since": seconds(d.since),
                "power": d.power,
                "pending": d.pending.map(order_name),
            })).collect::<Vec<_>>(),
        })
    }
}

/// An order's name in the journal and the API.
pub fn order_name(order: Order) -> &'static str {
    match order {
        Order::On => "on",
        Order::Off => "off",
        Order::Press => "press",
    }
}

/// What another part of the node asks the loop.
enum Request {
    Status(oneshot::Sender<Vec<EquipmentStatus>>),
    Plan {
        equipment: String,
        plan: Value,
        source: Source,
        done: oneshot::Sender<Result<()>>,
    },
    Mode {
        equipment: String,
        mode: Mode,
        done: oneshot::Sender<Result<()>>,
    },
    Stimulate {
        body: Value,
        source: Source,
        done: oneshot::Sender<Result<i64>>,
    },
    Add {
        equipment: Box<EquipmentConfig>,
        done: oneshot::Sender<Result<()>>,
    },
}

/// How the rest of the node reaches the control loop. Cheap to clone.
#[derive(Clone)]
pub struct Handle(mpsc::Sender<Request>);

/// What [`run`] takes requests from: the other end of a [`Handle`].
pub struct Requests(mpsc::Receiver<Request>);

/// A handle, and the requests end to give [`run`].
pub fn handle() -> (Handle, Requests) {
    let (tx, rx) = mpsc::channel(1024);
    (Handle(tx), Requests(rx))
}

impl Handle {
    async fn ask<T>(&self, request: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.0.send(request(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Every equipment, as the loop sees it now.
    pub async fn status(&self) -> Result<Vec<EquipmentStatus>> {
        self.ask(Request::Status).await
    }

    /// A new plan for `equipment` (JSON, see [`crate::plan`]).
    pub async fn set_plan(&self, equipment: &str, plan: Value, source: Source) -> Result<()> {
        self.ask(|done| Request::Plan {
            equipment: equipment.to_owned(),
            plan,
            source,
            done,
        })
        .await?
    }

    /// Sets `equipment`'s mode, as the household would.
    pub async fn set_mode(&self, equipment: &str, mode: Mode) -> Result<()> {
        self.ask(|done| Request::Mode {
            equipment: equipment.to_owned(),
            mode,
            done,
        })
        .await?
    }

    /// A stimulation (JSON, see [`crate::stimulation`]); returns when it
    /// ends (µs).
    pub async fn stimulate(&self, body: Value, source: Source) -> Result<i64> {
        self.ask(|done| Request::Stimulate { body, source, done })
            .await?
    }

    /// Drives a new equipment from now on.
    pub async fn add_equipment(&self, equipment: EquipmentConfig) -> Result<()> {
        self.ask(|done| Request::Add {
            equipment: Box::new(equipment),
            done,
        })
        .await?
    }
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
    address: DeviceAddress,
    driver: Box<dyn Driver>,
    link: DeviceLink,
}

struct Controlled {
    name: String,
    groups: Vec<String>,
    equipment: Equipment,
    devices: Vec<Device>,
    /// The plates that show it: (plate, its position on the plate).
    shown_on: Vec<(usize, usize)>,
    /// Its plan, as received.
    plan: Option<Value>,
    /// Its site.
    site: Option<String>,
}

/// A plate the loop draws and listens to.
struct Plate {
    name: String,
    hasp: OpenHasp,
    /// The equipments it shows, in page order.
    shows: Vec<usize>,
}

/// Which typology needs which parts.
fn required_parts(typology: Typology) -> &'static [Part] {
    match typology {
        Typology::Plug | Typology::RelayAndMeter | Typology::InvertedRelay => &[Part::Switch],
        Typology::PlugAndFinger => &[Part::Switch, Part::Finger],
        Typology::TwoRelays => &[Part::Switch, Part::SecondRelay],
    }
}

/// Checks one equipment: a name usable in topics, its typology's devices,
/// each device's address.
pub fn check_equipment(e: &EquipmentConfig) -> Result<()> {
    if e.name.is_empty() || e.name.contains(['/', '+', '#']) {
        return Err(Error::Invalid(format!(
            "equipment {:?}: a name must be non-empty, without / + #",
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
    Ok(())
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
    let mut sites = std::collections::HashSet::new();
    for site in &config.sites {
        if !sites.insert(site.name.as_str()) {
            return Err(Error::Invalid(format!(
                "site {:?} is configured twice",
                site.name
            )));
        }
    }
    let mut names = std::collections::HashSet::new();
    for e in &config.equipments {
        check_equipment(e)?;
        if let Some(site) = e.site.as_deref().filter(|s| !sites.contains(s)) {
            return Err(Error::Invalid(format!(
                "equipment {:?} is on site {site:?}, which is not configured",
                e.name
            )));
        }
        if !names.insert(e.name.as_str()) {
            return Err(Error::Invalid(format!(
                "equipment {:?} is named twice",
                e.name
            )));
        }
    }
    let mut plates = std::collections::HashSet::new();
    for p in &config.displays {
        if p.plate.is_empty() || p.plate.contains(['/', '+', '#']) {
            return Err(Error::Invalid(format!(
                "display {:?}: a plate name must be non-empty, without / + #",
                p.plate
            )));
        }
        if !plates.insert(p.plate.as_str()) {
            return Err(Error::Invalid(format!(
                "display {:?} is configured twice",
                p.plate
            )));
        }
        if p.equipments.is_empty() || p.equipments.len() > EQUIPMENTS_PER_PLATE {
            return Err(Error::Invalid(format!(
                "display {:?} shows {} equipments: 1 to {EQUIPMENTS_PER_PLATE}",
                p.plate,
                p.equipments.len()
            )));
        }
        if let Some(unknown) = p.equipments.iter().find(|n| !names.contains(n.as_str())) {
            return Err(Error::Invalid(format!(
                "display {:?} shows {unknown:?}, which is no equipment",
                p.plate
            )));
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
    plates: Vec<Plate>,
    /// Plate name → plate.
    plate_by_name: HashMap<String, usize>,
    /// Equipments shown on a plate whose view changed since the plates
    /// were last updated.
    redraw: Vec<usize>,
    timezone: TimeZone,
    /// The signals given (local level, Ecowatt, Tempo).
    signals: Signals,
    /// Site name → its off-peak windows.
    sites: HashMap<String, OffPeak>,
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
    /// Connected to the broker now.
    connected: bool,
    /// Listening for confirmations since the first connection: the
    /// equipments are started.
    started: bool,
}

/// Runs the control loop until `shutdown` turns true, taking requests
/// from the [`Handle`] paired with `requests`.
pub async fn run(
    config: ControlConfig,
    journal: mpsc::Sender<JournalEntry>,
    mut requests: Requests,
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
    if let Some(tls) = &m.tls {
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
    }
    let (client, mut eventloop) = AsyncClient::new(options, 65_536);
    let now = now_micros();
    let mut control = Loop {
        client,
        client_id: m.client_id.clone(),
        own_prefix: format!("fedwatt/{}/", m.client_id),
        reply_to: format!("fedwatt/{}/reply", m.client_id),
        equipments: Vec::new(),
        plates: Vec::new(),
        plate_by_name: HashMap::new(),
        redraw: Vec::new(),
        timezone: config.timezone.clone(),
        signals: Signals::default(),
        sites: config
            .sites
            .iter()
            .map(|s| (s.name.clone(), s.off_peak.clone()))
            .collect(),
        routes: HashMap::new(),
        wildcard_routes: Vec::new(),
        requests: HashMap::new(),
        // Ids unique across restarts: a late reply to the previous run's
        // request is not taken for this run's.
        next_id: now as u64,
        scheduled: Vec::new(),
        wake_at: now,
        journal,
        connected: false,
        started: false,
    };
    for e in &config.equipments {
        control.add(now, e)?;
    }
    for d in &config.displays {
        control.add_plate(d);
    }
    tracing::info!(
        "control: {} equipments, broker {}:{}",
        control.equipments.len(),
        m.host,
        m.port
    );
    loop {
        let now = now_micros();
        let pause = Duration::from_micros((control.wake_at - now).clamp(0, 1_000_000) as u64);
        tokio::select! {
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!("control: connected to the broker");
                    control.connected = true;
                    control.subscribe().await;
                    // The first orders go out once the node listens for
                    // their confirmations.
                    if !control.started {
                        control.started = true;
                        let now = now_micros();
                        // What the windows and signals say is known before
                        // the first orders, which follow it.
                        control.follow_signals(now).await;
                        for i in 0..control.equipments.len() {
                            let changes = control.equipments[i].equipment.start(now);
                            control.carry_out(now, i, &changes).await;
                        }
                        control.update_plates().await;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    control.take(now_micros(), &p.topic, &p.payload, p.retain).await;
                    control.update_plates().await;
                }
                Ok(_) => {}
                Err(e) => {
                    if control.connected {
                        tracing::warn!("control: broker connection lost ({e}); reconnecting");
                    } else {
                        tracing::warn!("control: cannot reach the broker ({e}); retrying");
                    }
                    control.connected = false;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            Some(request) = requests.0.recv() => {
                control.serve(now_micros(), request).await;
                control.update_plates().await;
            }
            _ = tokio::time::sleep(pause), if control.started => {
                control.tick(now_micros()).await;
                control.update_plates().await;
            }
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

impl Loop {
    /// Drives equipment `e` from now on: its devices' topics are routed
    /// (and subscribed to, once connected); it starts once the loop does.
    async fn add_live(&mut self, now: i64, e: &EquipmentConfig) -> Result<()> {
        let i = self.add(now, e)?;
        if self.connected {
            let topics = self.equipment_topics(i);
            self.subscribe_to(topics).await;
            self.query_devices(i).await;
        }
        if self.started {
            self.follow_signals(now).await;
            let changes = self.equipments[i].equipment.start(now);
            self.carry_out(now, i, &changes).await;
        }
        tracing::info!("control: now driving {}", e.name);
        Ok(())
    }

    /// Adds equipment `e` and routes its devices' topics; returns its index.
    fn add(&mut self, now: i64, e: &EquipmentConfig) -> Result<usize> {
        check_equipment(e)?;
        if let Some(site) = e.site.as_deref().filter(|s| !self.sites.contains_key(*s)) {
            return Err(Error::Invalid(format!(
                "equipment {:?} is on site {site:?}, which is not configured",
                e.name
            )));
        }
        if self.equipments.iter().any(|x| x.name == e.name) {
            return Err(Error::NameTaken(e.name.clone()));
        }
        let mut devices = Vec::new();
        for d in &e.devices {
            devices.push(Device {
                part: d.part,
                driver: driver(&d.address, &self.reply_to)?,
                address: d.address.clone(),
                link: DeviceLink::new(now),
            });
        }
        let i = self.equipments.len();
        let shared_reply = format!("{}/rpc", self.reply_to);
        for (d, device) in devices.iter().enumerate() {
            for topic in device.driver.subscriptions() {
                if topic == shared_reply {
                    continue;
                }
                if topic.contains(['+', '#']) {
                    self.wildcard_routes.push((topic, i, d));
                } else {
                    self.routes.entry(topic).or_default().push((i, d));
                }
            }
        }
        self.equipments.push(Controlled {
            name: e.name.clone(),
            groups: e.groups.clone(),
            equipment: Equipment::new(e.kind, e.typology, e.mode, e.safety).with_cycle(e.cycle),
            devices,
            shown_on: Vec::new(),
            plan: None,
            site: e.site.clone(),
        });
        Ok(i)
    }

    /// Adds a plate (its equipments are there: [`check`] saw to it).
    fn add_plate(&mut self, d: &DisplayConfig) {
        let p = self.plates.len();
        let mut shows = Vec::new();
        for (position, name) in d.equipments.iter().enumerate() {
            if let Some(i) = self.equipments.iter().position(|e| &e.name == name) {
                self.equipments[i].shown_on.push((p, position));
                shows.push(i);
            }
        }
        self.plate_by_name.insert(d.plate.clone(), p);
        self.plates.push(Plate {
            name: d.plate.clone(),
            hasp: OpenHasp::new(&d.plate),
            shows,
        });
    }

    /// Answers a request from the rest of the node.
    async fn serve(&mut self, now: i64, request: Request) {
        match request {
            Request::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Request::Plan {
                equipment,
                plan,
                source,
                done,
            } => {
                let outcome = self.accept_plan(now, &equipment, plan, source).await;
                let _ = done.send(outcome);
            }
            Request::Mode {
                equipment,
                mode,
                done,
            } => {
                let outcome = match self.index_of(&equipment) {
                    Ok(i) => {
                        tracing::info!("control: {equipment} set {mode}");
                        let changes = self.equipments[i].equipment.set_mode(now, mode);
                        self.carry_out(now, i, &changes).await;
                        self.shown_changed(i);
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                let _ = done.send(outcome);
            }
            Request::Stimulate { body, source, done } => {
                let outcome = self.accept_stimulation(now, body, source).await;
                let _ = done.send(outcome);
            }
            Request::Add { equipment, done } => {
                let outcome = self.add_live(now, &equipment).await;
                let _ = done.send(outcome);
            }
        }
    }

    fn index_of(&self, name: &str) -> Result<usize> {
        self.equipments
            .iter()
            .position(|e| e.name == name)
            .ok_or_else(|| Error::NoEquipment(name.to_owned()))
    }

    fn status(&self) -> Vec<EquipmentStatus> {
        self.equipments
            .iter()
            .map(|e| EquipmentStatus {
                name: e.name.clone(),
                kind: e.equipment.kind,
                typology: e.equipment.typology,
                mode: e.equipment.mode,
                state: e.equipment.state,
                groups: e.groups.clone(),
                end_by: e.equipment.end_by(),
                target_charge: (e.equipment.kind == EquipmentKind::ElectricVehicle)
                    .then(|| e.equipment.target_charge()),
                plan: e.plan.clone(),
                devices: e
                    .devices
                    .iter()
                    .map(|d| DeviceStatus {
                        part: d.part,
                        address: d.address.clone(),
                        measured: d.link.measured,
                        since: d.link.since,
                        power: d.link.power,
                        pending: d.link.pending.map(|p| p.order),
                    })
                    .collect(),
            })
            .collect()
    }

    /// A plan for equipment `name`, checked whole, applied, journaled.
    async fn accept_plan(
        &mut self,
        now: i64,
        name: &str,
        json: Value,
        source: Source,
    ) -> Result<()> {
        let i = self.index_of(name)?;
        let plan = Plan::from_json(&json)?;
        if source == Source::Mqtt {
            self.note(JournalEntry::Plan {
                at: now,
                equipment: name.to_owned(),
                plan: json.clone(),
                source,
            })
            .await;
        }
        self.equipments[i].plan = Some(json);
        let changes = self.equipments[i].equipment.set_plan(now, plan);
        self.carry_out(now, i, &changes).await;
        Ok(())
    }

    /// A stimulation, checked whole (its equipments included), applied or
    /// scheduled, journaled.
    async fn accept_stimulation(&mut self, now: i64, json: Value, source: Source) -> Result<i64> {
        let s = Stimulation::from_json(&json, now)?;
        let targets = match &s.ask {
            Ask::Shed(t) | Ask::ConsumeNow(t) => Some(t),
            Ask::Signal(_) | Ask::Ecowatt(_) | Ask::Tempo(_) => None,
        };
        if let Some(Targets::Equipments(names)) = targets {
            for name in names {
                self.index_of(name)?;
            }
        }
        if source == Source::Mqtt {
            self.note(JournalEntry::Stimulation {
                at: now,
                body: json,
                until: s.until,
                source,
            })
            .await;
        }
        let until = s.until;
        self.stimulate(now, s).await;
        Ok(until)
    }

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

    /// Every topic the node listens to.
    async fn subscribe(&mut self) {
        let mut topics: Vec<String> = self.routes.keys().cloned().collect();
        topics.extend(self.wildcard_routes.iter().map(|(t, _, _)| t.clone()));
        topics.push(format!("{}/rpc", self.reply_to));
        topics.push(plan_topic(&self.client_id, "+"));
        topics.push(stimulation_topic(&self.client_id));
        for plate in &self.plates {
            topics.extend(plate.hasp.subscriptions());
        }
        self.subscribe_to(topics).await;
        // Ask every device where it stands: what it says reconciles it.
        for i in 0..self.equipments.len() {
            self.query_devices(i).await;
        }
    }

    /// The topics of equipment `i`'s devices.
    fn equipment_topics(&self, i: usize) -> Vec<String> {
        let shared_reply = format!("{}/rpc", self.reply_to);
        self.equipments[i]
            .devices
            .iter()
            .flat_map(|d| d.driver.subscriptions())
            .filter(|t| *t != shared_reply)
            .collect()
    }

    async fn subscribe_to(&self, mut topics: Vec<String>) {
        topics.sort();
        topics.dedup();
        for chunk in topics.chunks(100) {
            let filters = chunk
                .iter()
                .map(|t| rumqttc::SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
            if let Err(e) = self.client.subscribe_many(filters).await {
                tracing::error!("control: subscribing: {e}");
            }
        }
    }

    /// Asks equipment `i`'s devices their state.
    async fn query_devices(&mut self, i: usize) {
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
            self.stimulate(now, s).await;
        }
        self.follow_signals(now).await;
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
                        self.shown_changed(i);
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
                    if part == Part::Switch {
                        self.shown_changed(i);
                    }
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

    /// Takes a message from the broker; `retained` when the broker replays
    /// one it kept (on the node's subscription) rather than a live one.
    async fn take(&mut self, now: i64, topic: &str, payload: &[u8], retained: bool) {
        if let Some(rest) = topic.strip_prefix(self.own_prefix.as_str()) {
            return self.take_own(now, topic, rest, payload).await;
        }
        if let Some(plate) = topic
            .strip_prefix("hasp/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|name| self.plate_by_name.get(name))
        {
            // A plate's relay output may also be a device: both read it.
            self.take_plate(now, *plate, topic, payload).await;
        }
        let mut targets: Vec<(usize, usize)> = self.routes.get(topic).cloned().unwrap_or_default();
        targets.extend(
            self.wildcard_routes
                .iter()
                .filter(|(f, _, _)| rumqttc::matches(topic, f))
                .map(|&(_, i, d)| (i, d)),
        );
        for (i, d) in targets {
            self.take_for(now, i, d, topic, payload, retained).await;
        }
    }

    async fn take_for(
        &mut self,
        now: i64,
        i: usize,
        d: usize,
        topic: &str,
        payload: &[u8],
        retained: bool,
    ) {
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
                let changes = self.equipments[i].equipment.measured_power(now, watts);
                if !changes.is_empty() {
                    self.carry_out(now, i, &changes).await;
                } else if let Some(t) = self.equipments[i].equipment.next_wake(now) {
                    // A cycle's end may be due later: wake for it.
                    self.wake_at = self.wake_at.min(t);
                }
            }
            let next_id = &mut self.next_id;
            let mut fresh_id = || {
                *next_id += 1;
                *next_id
            };
            let link = &mut self.equipments[i].devices[d].link;
            let mut outcomes = link.observe(now, &observation, &mut fresh_id);
            if observation == crate::driver::Observation::Available(true) && !retained {
                outcomes.extend(link.came_online(now, &mut fresh_id));
            }
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
                Some((i, d)) => self.take_for(now, i, d, topic, payload, false).await,
                None => {
                    self.refuse(now, topic, "a reply to no request of this node".into())
                        .await
                }
            }
            return;
        }
        let json = match serde_json::from_slice::<Value>(payload) {
            Ok(v) => v,
            Err(e) => return self.refuse(now, topic, format!("not JSON: {e}")).await,
        };
        let outcome = if let Some(name) = rest.strip_prefix("plan/") {
            self.accept_plan(now, name, json, Source::Mqtt).await
        } else if rest == "stimulation" {
            self.accept_stimulation(now, json, Source::Mqtt)
                .await
                .map(|_| ())
        } else {
            Ok(())
        };
        if let Err(e) = outcome {
            self.refuse(now, topic, e.to_string()).await;
        }
    }

    /// Gives each equipment what its site's off-peak windows and the
    /// signals say now, for where no plan decides ([`signals::fallback`]).
    async fn follow_signals(&mut self, now: i64) {
        self.signals.prune(now);
        // One outlook per site (they are few), then a look-up per equipment.
        let anywhere = signals::outlook(&self.signals, None, now, &self.timezone);
        let by_site: HashMap<String, Outlook> = self
            .sites
            .iter()
            .map(|(name, windows)| {
                let outlook = signals::outlook(&self.signals, Some(windows), now, &self.timezone);
                (name.clone(), outlook)
            })
            .collect();
        for i in 0..self.equipments.len() {
            let outlook = match &self.equipments[i].site {
                Some(site) => by_site.get(site).copied().unwrap_or(anywhere),
                None => anywhere,
            };
            let equipment = &mut self.equipments[i].equipment;
            let decided = signals::fallback(equipment.kind, outlook);
            let changes = equipment.set_fallback(now, decided);
            if !changes.is_empty() {
                self.carry_out(now, i, &changes).await;
            }
        }
    }

    /// Applies a stimulation now, or schedules it for its start. Its
    /// equipments were checked when it was accepted.
    async fn stimulate(&mut self, now: i64, s: Stimulation) {
        let (targets, shed) = match &s.ask {
            Ask::Shed(t) => (t, true),
            Ask::ConsumeNow(t) => (t, false),
            Ask::Signal(_) | Ask::Ecowatt(_) | Ask::Tempo(_) => {
                // Signals hold over their span, known in advance.
                tracing::info!(
                    "control: signal {:?} from {} until {}",
                    s.ask,
                    s.from,
                    s.until
                );
                self.signals.take(&s);
                if self.started {
                    self.follow_signals(now).await;
                }
                return;
            }
        };
        let chosen: Vec<usize> = match targets {
            Targets::Equipments(names) => (0..self.equipments.len())
                .filter(|&i| names.contains(&self.equipments[i].name))
                .collect(),
            Targets::Group(group) => (0..self.equipments.len())
                .filter(|&i| self.equipments[i].groups.contains(group))
                .collect(),
        };
        // One that starts later waits for its start; one that comes before
        // the equipments started (given back from the store at start-up)
        // waits for them.
        if s.from > now || !self.started {
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
