//! What an openHASP plate shows of a household's equipments, and what its
//! buttons mean.
//!
//! - Page 1 is the status page: one LED per equipment (green on, grey off,
//!   red when its device does not answer, orange not heard from yet), with
//!   its name.
//! - Page 2 + i is equipment i's page: its name (`b1`), its state (`b2`),
//!   the manual/piloted toggle (`b3`: green piloted, red manual), and, for
//!   what has a deadline, the end-by hour and minute (`b4`, `b5` rollers);
//!   for a car, the target charge (`b6` slider, `b7` its value).
//!
//! Objects are JSON for `jsonl` ([`crate::driver::OpenHasp::jsonl`]
//! splits them into payloads a plate takes).

use serde_json::{Value, json};

use crate::driver::DisplayEvent;
use crate::machine::State;
use crate::model::{EquipmentKind, Load, Measured, Mode};
use crate::{Error, Result};

/// Equipments a plate shows at most: its status page's room, and the
/// pages after it (openHASP has 12).
pub const EQUIPMENTS_PER_PLATE: usize = 10;

const PILOTED_GREEN: &str = "#2E7D32";
const MANUAL_RED: &str = "#C62828";

/// What a plate shows of one equipment.
#[derive(Debug, Clone, PartialEq)]
pub struct EquipmentView {
    /// Its name for the household.
    pub label: String,
    /// What it is.
    pub kind: EquipmentKind,
    /// Who is in charge.
    pub mode: Mode,
    /// Its command state.
    pub state: State,
    /// Its switch's measured state.
    pub measured: Measured,
    /// The household's end-by time, local (hour, minute), if any.
    pub end_by: Option<(u8, u8)>,
    /// A car's target charge, in %.
    pub target_charge: Option<u8>,
}

/// What the household asked for on a plate.
#[derive(Debug, Clone, PartialEq)]
pub enum DisplayAction {
    /// Equipment `equipment` (its index on the plate) goes to `mode`.
    SetMode {
        /// Its index among the plate's equipments.
        equipment: usize,
        /// Manual or piloted.
        mode: Mode,
    },
    /// New end-by hour (the minute stays).
    SetEndByHour {
        /// Its index among the plate's equipments.
        equipment: usize,
        /// 0 to 23.
        hour: u8,
    },
    /// New end-by minute (the hour stays).
    SetEndByMinute {
        /// Its index among the plate's equipments.
        equipment: usize,
        /// 0, 15, 30 or 45.
        minute: u8,
    },
    /// New target charge for a car.
    SetTargetCharge {
        /// Its index among the plate's equipments.
        equipment: usize,
        /// 0 to 100.
        percent: u8,
    },
}

fn led_colour(measured: Measured) -> &'static str {
    match measured {
        Measured::On => "#43A047",
        Measured::Off => "#9E9E9E",
        Measured::CommunicationError => "#E53935",
        Measured::Unknown => "#FB8C00",
    }
}

fn mode_text(mode: Mode) -> (&'static str, &'static str) {
    match mode {
        Mode::Piloted => ("Piloté", PILOTED_GREEN),
        Mode::Manual => ("Manuel", MANUAL_RED),
        Mode::NotPiloted => ("Non piloté", "#616161"),
        Mode::Disabled => ("Désactivé", "#616161"),
    }
}

fn has_deadline(kind: EquipmentKind) -> bool {
    matches!(kind.load(), Load::OneShot | Load::Charge)
}

/// Every object of every page, for a plate that shows `equipments`.
pub fn pages(equipments: &[EquipmentView]) -> Result<Vec<Value>> {
    if equipments.len() > EQUIPMENTS_PER_PLATE {
        return Err(Error::Invalid(format!(
            "a plate shows {EQUIPMENTS_PER_PLATE} equipments at most, {} given",
            equipments.len()
        )));
    }
    let mut objects = vec![
        json!({"page": 1, "id": 1, "obj": "label", "x": 10, "y": 5, "w": 300, "h": 30, "text": "Équipements"}),
    ];
    for (i, e) in equipments.iter().enumerate() {
        let y = 45 + 40 * i as i64;
        let (led, label) = status_ids(i);
        objects.push(
            json!({"page": 1, "id": led, "obj": "led", "x": 10, "y": y, "w": 24, "h": 24,
            "bg_color": led_colour(e.measured), "val": 255}),
        );
        objects.push(
            json!({"page": 1, "id": label, "obj": "label", "x": 45, "y": y, "w": 260, "h": 30,
            "text": e.label}),
        );
        objects.extend(equipment_page(i, e));
    }
    Ok(objects)
}

/// The status page's LED and label ids of equipment `i`.
fn status_ids(i: usize) -> (usize, usize) {
    (10 + 2 * i, 11 + 2 * i)
}

/// The objects of equipment `i`'s page.
pub fn equipment_page(i: usize, e: &EquipmentView) -> Vec<Value> {
    let page = 2 + i;
    let (mode, colour) = mode_text(e.mode);
    let mut objects = vec![
        json!({"page": page, "id": 1, "obj": "label", "x": 10, "y": 5, "w": 300, "h": 30, "text": e.label}),
        json!({"page": page, "id": 2, "obj": "label", "x": 10, "y": 40, "w": 300, "h": 30,
            "text": e.state.name()}),
        json!({"page": page, "id": 3, "obj": "btn", "x": 10, "y": 80, "w": 140, "h": 50,
            "text": mode, "bg_color": colour, "toggle": true, "val": i64::from(e.mode == Mode::Piloted)}),
    ];
    if has_deadline(e.kind) {
        let (hour, minute) = e.end_by.unwrap_or((0, 0));
        let hours: Vec<String> = (0..24).map(|h| format!("{h:02} h")).collect();
        objects.push(
            json!({"page": page, "id": 4, "obj": "roller", "x": 160, "y": 80, "w": 70, "h": 100,
            "options": hours.join("\n"), "val": hour}),
        );
        objects.push(
            json!({"page": page, "id": 5, "obj": "roller", "x": 240, "y": 80, "w": 70, "h": 100,
            "options": "00\n15\n30\n45", "val": minute / 15}),
        );
    }
    if e.kind == EquipmentKind::ElectricVehicle {
        let percent = e.target_charge.unwrap_or(80);
        objects.push(
            json!({"page": page, "id": 6, "obj": "slider", "x": 10, "y": 190, "w": 240, "h": 20,
            "min": 0, "max": 100, "val": percent}),
        );
        objects.push(
            json!({"page": page, "id": 7, "obj": "label", "x": 260, "y": 185, "w": 60, "h": 30,
            "text": format!("{percent} %")}),
        );
    }
    objects
}

/// What changes on a plate when equipment `i` changes: its LED, its state,
/// its toggle.
pub fn updates(i: usize, e: &EquipmentView) -> Vec<Value> {
    let (led, _) = status_ids(i);
    let (mode, colour) = mode_text(e.mode);
    vec![
        json!({"page": 1, "id": led, "bg_color": led_colour(e.measured)}),
        json!({"page": 2 + i, "id": 2, "text": e.state.name()}),
        json!({"page": 2 + i, "id": 3, "text": mode, "bg_color": colour, "val": i64::from(e.mode == Mode::Piloted)}),
    ]
}

/// What a touch on a plate showing `equipments` asks for: `None` for a
/// touch that asks nothing (a press not yet released, the status page);
/// an error naming what is wrong for one that cannot be.
pub fn action(equipments: &[EquipmentView], event: &DisplayEvent) -> Result<Option<DisplayAction>> {
    if event.page < 2 {
        return Ok(None);
    }
    let equipment = usize::from(event.page) - 2;
    let Some(e) = equipments.get(equipment) else {
        return Err(Error::Invalid(format!(
            "page {} shows no equipment",
            event.page
        )));
    };
    let val = || {
        event.val.ok_or_else(|| {
            Error::Invalid(format!(
                "p{}b{}: a {} without a value",
                event.page, event.id, event.event
            ))
        })
    };
    match (event.id, event.event.as_str()) {
        (3, "up") => match e.mode {
            Mode::Piloted => Ok(Some(DisplayAction::SetMode {
                equipment,
                mode: Mode::Manual,
            })),
            Mode::Manual => Ok(Some(DisplayAction::SetMode {
                equipment,
                mode: Mode::Piloted,
            })),
            other => Err(Error::Invalid(format!(
                "{} is {other}: the household cannot switch it from its plate",
                e.label
            ))),
        },
        (4, "changed") if has_deadline(e.kind) => match u8::try_from(val()?) {
            Ok(hour) if hour < 24 => Ok(Some(DisplayAction::SetEndByHour { equipment, hour })),
            _ => Err(Error::Invalid(format!(
                "p{}b4: hour {} is not 0 to 23",
                event.page,
                val()?
            ))),
        },
        (5, "changed") if has_deadline(e.kind) => match u8::try_from(val()?) {
            Ok(step) if step < 4 => Ok(Some(DisplayAction::SetEndByMinute {
                equipment,
                minute: step * 15,
            })),
            _ => Err(Error::Invalid(format!(
                "p{}b5: {} is not a quarter (0 to 3)",
                event.page,
                val()?
            ))),
        },
        (6, "changed" | "up") if e.kind == EquipmentKind::ElectricVehicle => {
            match u8::try_from(val()?) {
                Ok(percent) if percent <= 100 => {
                    Ok(Some(DisplayAction::SetTargetCharge { equipment, percent }))
                }
                _ => Err(Error::Invalid(format!(
                    "p{}b6: {} % is not 0 to 100",
                    event.page,
                    val()?
                ))),
            }
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(kind: EquipmentKind, mode: Mode) -> EquipmentView {
        EquipmentView {
            label: "Lave-vaisselle".into(),
            kind,
            mode,
            state: State::StandBy,
            measured: Measured::Off,
            end_by: Some((18, 30)),
            target_charge: None,
        }
    }

    fn touch(page: u8, id: u8, event: &str, val: Option<i64>) -> DisplayEvent {
        DisplayEvent {
            page,
            id,
            event: event.into(),
            val,
            text: None,
        }
    }

    #[test]
    fn the_status_page_has_one_led_per_equipment_and_each_its_page() {
        let plate = [
            view(EquipmentKind::Dishwasher, Mode::Piloted),
            view(EquipmentKind::WaterHeater, Mode::Manual),
            view(EquipmentKind::ElectricVehicle, Mode::Piloted),
        ];
        let objects = pages(&plate).unwrap();
        let leds: Vec<&Value> = objects
            .iter()
            .filter(|o| o["page"] == 1 && o["obj"] == "led")
            .collect();
        assert_eq!(leds.len(), 3);
        let toggle = |page: i64| {
            objects
                .iter()
                .find(|o| o["page"] == page && o["id"] == 3)
                .unwrap()
                .clone()
        };
        assert_eq!(toggle(2)["bg_color"], PILOTED_GREEN);
        assert_eq!(toggle(3)["bg_color"], MANUAL_RED);
        let on_page = |page: i64| objects.iter().filter(|o| o["page"] == page).count();
        assert_eq!(on_page(2), 5, "a dishwasher's page has its end-by rollers");
        assert_eq!(on_page(3), 3, "a water heater's has none");
        assert_eq!(on_page(4), 7, "a car's also has its target charge");
        let roller = objects
            .iter()
            .find(|o| o["page"] == 2 && o["id"] == 5)
            .unwrap();
        assert_eq!(roller["val"], 2, "18:30: the third quarter");
        let too_many = vec![view(EquipmentKind::Dryer, Mode::Manual); 11];
        assert!(pages(&too_many).is_err());
    }

    #[test]
    fn the_toggle_switches_manual_and_piloted() {
        let plate = [
            view(EquipmentKind::Dishwasher, Mode::Piloted),
            view(EquipmentKind::Dryer, Mode::Manual),
        ];
        assert_eq!(
            action(&plate, &touch(2, 3, "up", Some(0))).unwrap(),
            Some(DisplayAction::SetMode {
                equipment: 0,
                mode: Mode::Manual
            })
        );
        assert_eq!(
            action(&plate, &touch(3, 3, "up", Some(1))).unwrap(),
            Some(DisplayAction::SetMode {
                equipment: 1,
                mode: Mode::Piloted
            })
        );
        assert_eq!(
            action(&plate, &touch(2, 3, "down", Some(1))).unwrap(),
            None,
            "only the release counts"
        );
        assert_eq!(action(&plate, &touch(1, 10, "up", None)).unwrap(), None);
        let disabled = [view(EquipmentKind::Dryer, Mode::Disabled)];
        assert_eq!(
            action(&disabled, &touch(2, 3, "up", None))
                .unwrap_err()
                .to_string(),
            "Lave-vaisselle is disabled: the household cannot switch it from its plate"
        );
    }

    #[test]
    fn rollers_and_sliders_set_the_deadline_and_the_target() {
        let plate = [
            view(EquipmentKind::Dishwasher, Mode::Piloted),
            view(EquipmentKind::ElectricVehicle, Mode::Piloted),
        ];
        assert_eq!(
            action(&plate, &touch(2, 4, "changed", Some(7))).unwrap(),
            Some(DisplayAction::SetEndByHour {
                equipment: 0,
                hour: 7
            })
        );
        assert_eq!(
            action(&plate, &touch(2, 5, "changed", Some(3))).unwrap(),
            Some(DisplayAction::SetEndByMinute {
                equipment: 0,
                minute: 45
            })
        );
        assert_eq!(
            action(&plate, &touch(3, 6, "changed", Some(90))).unwrap(),
            Some(DisplayAction::SetTargetCharge {
                equipment: 1,
                percent: 90
            })
        );
        assert_eq!(
            action(&plate, &touch(2, 4, "changed", Some(24)))
                .unwrap_err()
                .to_string(),
            "p2b4: hour 24 is not 0 to 23"
        );
        assert_eq!(
            action(&plate, &touch(2, 4, "changed", None))
                .unwrap_err()
                .to_string(),
            "p2b4: a changed without a value"
        );
        assert_eq!(
            action(&plate, &touch(2, 6, "changed", Some(90))).unwrap(),
            None,
            "a dishwasher has no target"
        );
        assert_eq!(
            action(&plate, &touch(9, 3, "up", None))
                .unwrap_err()
                .to_string(),
            "page 9 shows no equipment"
        );
    }
}
