//! What the loop does with a message, a tick, or a change of an
//! equipment: orders sent and journaled, outcomes of device links, signals
//! followed, stimulations applied.

use std::collections::HashMap;

use control::device::{CONFIRM_WITHIN, Outcome};
use control::driver::Observation;
use control::equipment::Change;
use control::journal::{JournalEntry, Source};
use control::machine::{self, Effect, Part};
use control::signals::{self, Outlook};
use control::stimulation::{Ask, Stimulation, Targets};
use rumqttc::QoS;
use serde_json::Value;

use crate::engine::Loop;

impl Loop {
    pub(crate) fn next_wake(&self, now: i64) -> i64 {
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

    pub(crate) async fn tick(&mut self, now: i64) {
        let (due, later) = std::mem::take(&mut self.scheduled)
            .into_iter()
            .partition(|s| s.from <= now);
        self.scheduled = later;
        // Replies that did not come in time will not count.
        self.replies.prune(now);
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
    pub(crate) async fn carry_out(&mut self, now: i64, i: usize, changes: &[Change]) {
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
    pub(crate) async fn outcomes(&mut self, now: i64, i: usize, d: usize, outcomes: Vec<Outcome>) {
        for outcome in outcomes {
            let equipment = self.equipments[i].name.clone();
            let part = self.equipments[i].devices[d].part;
            match outcome {
                Outcome::Send(order, id) => {
                    self.wake_at = self.wake_at.min(now + CONFIRM_WITHIN);
                    let p = self.equipments[i].devices[d].driver.order(order, id);
                    self.replies.sent(id, (i, d), now);
                    if let Err(e) = self
                        .client
                        .publish(p.topic, QoS::AtLeastOnce, false, p.payload)
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
    pub(crate) async fn take(&mut self, now: i64, topic: &str, payload: &[u8], retained: bool) {
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
        for (i, d) in self.routes.targets(topic) {
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
            if let Observation::Power(watts) = observation {
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
            if observation == Observation::Available(true) && !retained {
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
            match id.and_then(|id| self.replies.answered(id)) {
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
            self.accept_plan(now, name, json, Source::Mqtt, None).await
        } else if rest == "stimulation" {
            self.accept_stimulation(now, json, Source::Mqtt, None)
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
    pub(crate) async fn follow_signals(&mut self, now: i64) {
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
    pub(crate) async fn stimulate(&mut self, now: i64, s: Stimulation) {
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
