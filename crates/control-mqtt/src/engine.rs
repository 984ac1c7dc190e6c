//! The loop's state, and its answers to the rest of the node: equipments
//! added, plates, requests from a [`Handle`](crate::Handle), plans and
//! stimulations accepted, the journal. What a message, a tick or a change
//! does is in `dispatch.rs`; the MQTT session in `session.rs`.

use std::collections::HashMap;

use control::device::DeviceLink;
use control::driver::{DeviceAddress, Driver, OpenHasp, driver};
use control::equipment::Equipment;
use control::fleet::{DisplayConfig, EquipmentConfig, check_equipment};
use control::journal::{JournalEntry, Source};
use control::machine::Part;
use control::model::EquipmentKind;
use control::plan::Plan;
use control::signals::{OffPeak, Signals};
use control::status::{DeviceStatus, EquipmentStatus};
use control::stimulation::{Ask, Stimulation, Targets};
use control::{Error, Result};
use jiff::tz::TimeZone;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::handle::{Kept, Note, Request};
use crate::routes::{Replies, Routes};

pub(crate) struct Device {
    pub(crate) part: Part,
    pub(crate) address: DeviceAddress,
    pub(crate) driver: Box<dyn Driver>,
    pub(crate) link: DeviceLink,
}

pub(crate) struct Controlled {
    pub(crate) name: String,
    pub(crate) groups: Vec<String>,
    pub(crate) equipment: Equipment,
    pub(crate) devices: Vec<Device>,
    /// The plates that show it: (plate, its position on the plate).
    pub(crate) shown_on: Vec<(usize, usize)>,
    /// Its plan, as received.
    pub(crate) plan: Option<Value>,
    /// Its site.
    pub(crate) site: Option<String>,
}

/// A plate the loop draws and listens to.
pub(crate) struct Plate {
    pub(crate) name: String,
    pub(crate) hasp: OpenHasp,
    /// The equipments it shows, in page order.
    pub(crate) shows: Vec<usize>,
}

pub(crate) struct Loop {
    pub(crate) client: Client,
    pub(crate) client_id: String,
    /// `fedwatt/<client id>/`: the prefix of the node's own topics.
    pub(crate) own_prefix: String,
    pub(crate) reply_to: String,
    pub(crate) equipments: Vec<Controlled>,
    pub(crate) plates: Vec<Plate>,
    /// Plate name → plate.
    pub(crate) plate_by_name: HashMap<String, usize>,
    /// Equipments shown on a plate whose view changed since the plates
    /// were last updated.
    pub(crate) redraw: Vec<usize>,
    pub(crate) timezone: TimeZone,
    /// The signals given (local level, Ecowatt, Tempo).
    pub(crate) signals: Signals,
    /// Site name → its off-peak windows.
    pub(crate) sites: HashMap<String, OffPeak>,
    /// Topic → (equipment, device).
    pub(crate) routes: Routes,
    /// Request id → (equipment, device), for replies on the shared topic.
    pub(crate) replies: Replies,
    pub(crate) next_id: u64,
    /// Stimulations that start later.
    pub(crate) scheduled: Vec<Stimulation>,
    /// When the loop next has something due: recomputed whole at each
    /// tick, lowered as orders and changes come (a scan of every equipment
    /// per message would not scale to a fleet).
    pub(crate) wake_at: i64,
    pub(crate) journal: mpsc::Sender<Note>,
    /// Connected to the broker now.
    pub(crate) connected: bool,
    /// Listening for confirmations since the first connection: the
    /// equipments are started.
    pub(crate) started: bool,
}

impl Loop {
    /// Drives equipment `e` from now on: its devices' topics are routed
    /// (and subscribed to, once connected); it starts once the loop does.
    pub(crate) async fn add_live(&mut self, now: i64, e: &EquipmentConfig) -> Result<()> {
        let i = self.add(now, e)?;
        if self.connected {
            let topics = self.equipment_topics(i);
            self.subscribe_to(topics);
            self.query_devices(i);
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
    pub(crate) fn add(&mut self, now: i64, e: &EquipmentConfig) -> Result<usize> {
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
            self.routes
                .add((i, d), device.driver.subscriptions(), &shared_reply);
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

    /// Adds a plate (its equipments are there: [`check`](crate::check) saw to it).
    pub(crate) fn add_plate(&mut self, d: &DisplayConfig) {
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
    pub(crate) async fn serve(&mut self, now: i64, request: Request) {
        match request {
            Request::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Request::Plan {
                equipment,
                plan,
                source,
                kept,
                done,
            } => {
                let outcome = self.accept_plan(now, &equipment, plan, source, kept).await;
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
            Request::Stimulate {
                body,
                source,
                kept,
                done,
            } => {
                let outcome = self.accept_stimulation(now, body, source, kept).await;
                let _ = done.send(outcome);
            }
            Request::Add { equipment, done } => {
                let outcome = self.add_live(now, &equipment).await;
                let _ = done.send(outcome);
            }
        }
    }

    pub(crate) fn index_of(&self, name: &str) -> Result<usize> {
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

    /// A plan for equipment `name`, checked whole, journaled (to keep,
    /// unless it comes from the store; `kept` is told once it is kept),
    /// applied.
    pub(crate) async fn accept_plan(
        &mut self,
        now: i64,
        name: &str,
        json: Value,
        source: Source,
        kept: Option<Kept>,
    ) -> Result<()> {
        let i = self.index_of(name)?;
        let plan = Plan::from_json(&json)?;
        if source != Source::Store {
            let entry = JournalEntry::Plan {
                at: now,
                equipment: name.to_owned(),
                plan: json.clone(),
                source,
            };
            self.journal(Note { entry, kept }).await;
        }
        self.equipments[i].plan = Some(json);
        let changes = self.equipments[i].equipment.set_plan(now, plan);
        self.carry_out(now, i, &changes).await;
        Ok(())
    }

    /// A stimulation, checked whole (its equipments included), applied or
    /// scheduled, journaled.
    pub(crate) async fn accept_stimulation(
        &mut self,
        now: i64,
        json: Value,
        source: Source,
        kept: Option<Kept>,
    ) -> Result<i64> {
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
        if source != Source::Store {
            let entry = JournalEntry::Stimulation {
                at: now,
                body: json,
                until: s.until,
                source,
            };
            self.journal(Note { entry, kept }).await;
        }
        let until = s.until;
        self.stimulate(now, s).await;
        Ok(until)
    }

    /// Journals `entry`.
    pub(crate) async fn note(&self, entry: JournalEntry) {
        self.journal(Note { entry, kept: None }).await;
    }

    /// Sends `note` to the journal's reader. The loop waits if the journal
    /// is full (its reader stores it): an entry is never dropped.
    async fn journal(&self, note: Note) {
        tracing::debug!("control: {:?}", note.entry);
        if self.journal.send(note).await.is_err() {
            tracing::warn!("control: the journal's reader is gone");
        }
    }

    pub(crate) async fn refuse(&self, at: i64, topic: &str, reason: String) {
        tracing::warn!("control: {topic}: refused: {reason}");
        self.note(JournalEntry::Refused {
            at,
            topic: topic.to_owned(),
            reason,
        })
        .await;
    }
}
