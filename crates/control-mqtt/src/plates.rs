//! The openHASP plates in the loop: drawn whole when a plate says it is
//! online, updated when what they show changes, and the household's
//! touches turned into modes, end-by times and targets.

use jiff::tz::TimeZone;
use rumqttc::QoS;

use crate::engine::Loop;
use control::display::{self, DisplayAction, EquipmentView};
use control::driver::Publish;
use control::machine::Part;
use control::model::{EquipmentKind, Measured};

impl Loop {
    /// Equipment `i` shows differently: its plates are updated once the
    /// message or tick at hand is handled.
    pub(crate) fn shown_changed(&mut self, i: usize) {
        if !self.equipments[i].shown_on.is_empty() && !self.redraw.contains(&i) {
            self.redraw.push(i);
        }
    }

    /// What a plate shows of equipment `i`.
    fn view(&self, i: usize) -> EquipmentView {
        let e = &self.equipments[i];
        let measured = e
            .devices
            .iter()
            .find(|d| d.part == Part::Switch)
            .map_or(Measured::Unknown, |d| d.link.measured);
        let end_by = e.equipment.end_by().and_then(|t| {
            let local = jiff::Timestamp::from_microsecond(t)
                .ok()?
                .to_zoned(self.timezone.clone());
            Some((local.hour() as u8, local.minute() as u8))
        });
        EquipmentView {
            label: e.name.clone(),
            kind: e.equipment.kind,
            mode: e.equipment.mode,
            state: e.equipment.state,
            measured,
            end_by,
            target_charge: (e.equipment.kind == EquipmentKind::ElectricVehicle)
                .then(|| e.equipment.target_charge()),
        }
    }

    fn publish_all(&self, messages: Vec<Publish>) {
        for m in messages {
            if let Err(e) = self
                .client
                .publish(m.topic, QoS::AtLeastOnce, false, m.payload)
            {
                tracing::error!("control: publishing to a plate: {e}");
            }
        }
    }

    /// Draws every page of plate `p`, from a blank plate.
    async fn draw(&self, p: usize) {
        let plate = &self.plates[p];
        let views: Vec<EquipmentView> = plate.shows.iter().map(|&i| self.view(i)).collect();
        let drawn = display::pages(&views).and_then(|objects| plate.hasp.jsonl(&objects));
        match drawn {
            Ok(pages) => {
                let mut messages = vec![plate.hasp.clear_all()];
                messages.extend(pages);
                messages.push(plate.hasp.show_page(1));
                tracing::info!("control: drawing plate {}", plate.name);
                self.publish_all(messages);
            }
            Err(e) => tracing::error!("control: plate {}: {e}", plate.name),
        }
    }

    /// Sends the plates what changed on the equipments they show.
    pub(crate) async fn update_plates(&mut self) {
        for i in std::mem::take(&mut self.redraw) {
            let view = self.view(i);
            for &(p, position) in &self.equipments[i].shown_on {
                match self.plates[p]
                    .hasp
                    .jsonl(&display::updates(position, &view))
                {
                    Ok(messages) => self.publish_all(messages),
                    Err(e) => tracing::error!("control: plate {}: {e}", self.plates[p].name),
                }
            }
        }
    }

    /// A message from plate `p`: it came online (drawn again, it lost its
    /// pages), or the household touched it.
    pub(crate) async fn take_plate(&mut self, now: i64, p: usize, topic: &str, payload: &[u8]) {
        if topic.ends_with("/LWT") {
            if payload == b"online" {
                self.draw(p).await;
            }
            return;
        }
        let event = match self.plates[p].hasp.event(topic, payload) {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(e) => return self.refuse(now, topic, e.to_string()).await,
        };
        let views: Vec<EquipmentView> =
            self.plates[p].shows.iter().map(|&i| self.view(i)).collect();
        let action = match display::action(&views, &event) {
            Ok(Some(action)) => action,
            Ok(None) => return,
            Err(e) => return self.refuse(now, topic, e.to_string()).await,
        };
        let position = match action {
            DisplayAction::SetMode { equipment, .. }
            | DisplayAction::SetEndByHour { equipment, .. }
            | DisplayAction::SetEndByMinute { equipment, .. }
            | DisplayAction::SetTargetCharge { equipment, .. } => equipment,
        };
        let i = self.plates[p].shows[position];
        tracing::info!(
            "control: plate {}: {:?} for {}",
            self.plates[p].name,
            action,
            self.equipments[i].name
        );
        let (hour, minute) = views[position].end_by.unwrap_or((0, 0));
        match action {
            DisplayAction::SetMode { mode, .. } => {
                let changes = self.equipments[i].equipment.set_mode(now, mode);
                self.carry_out(now, i, &changes).await;
            }
            DisplayAction::SetEndByHour { hour, .. } => self.set_end_by(now, i, hour, minute),
            DisplayAction::SetEndByMinute { minute, .. } => self.set_end_by(now, i, hour, minute),
            DisplayAction::SetTargetCharge { percent, .. } => {
                self.equipments[i].equipment.set_target_charge(percent);
            }
        }
        // The plate shows what the node now holds, whatever changed.
        self.shown_changed(i);
        if let Some(t) = self.equipments[i].equipment.next_wake(now) {
            self.wake_at = self.wake_at.min(t);
        }
    }

    /// The household's end-by time for equipment `i`: the next `hour`:`minute`
    /// in the households' time zone.
    fn set_end_by(&mut self, now: i64, i: usize, hour: u8, minute: u8) {
        let end = next_local_time(now, &self.timezone, hour, minute);
        if end.is_none() {
            tracing::warn!("control: no {hour:02}:{minute:02} after now in the time zone");
        }
        self.equipments[i].equipment.set_end_by(end);
    }
}

/// The first `hour`:`minute` in `tz` after `now` (µs), in µs.
fn next_local_time(now: i64, tz: &TimeZone, hour: u8, minute: u8) -> Option<i64> {
    let now = jiff::Timestamp::from_microsecond(now).ok()?;
    let today = now.to_zoned(tz.clone()).date();
    let at = |date: jiff::civil::Date| {
        date.at(hour as i8, minute as i8, 0, 0)
            .to_zoned(tz.clone())
            .ok()
            .map(|z| z.timestamp())
    };
    let mut end = at(today)?;
    if end <= now {
        end = at(today.tomorrow().ok()?)?;
    }
    Some(end.as_microsecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_by_time_is_the_next_one_in_the_households_time_zone() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_microsecond();
        // 20:00 in Paris (UTC+1 in November): 07:30 is tomorrow's.
        assert_eq!(
            next_local_time(at("2026-11-23T19:00:00Z"), &paris, 7, 30),
            Some(at("2026-11-24T06:30:00Z"))
        );
        assert_eq!(
            next_local_time(at("2026-11-23T19:00:00Z"), &paris, 22, 0),
            Some(at("2026-11-23T21:00:00Z"))
        );
        // The morning summer time begins, 02:30 does not exist: later.
        assert_eq!(
            next_local_time(at("2026-03-29T00:00:00Z"), &paris, 2, 30),
            Some(at("2026-03-29T01:30:00Z"))
        );
    }
}
