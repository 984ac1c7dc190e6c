//! One equipment's rules that need a clock, story by story.

use serde_json::json;

use super::*;

const Q: i64 = crate::plan::SLOT;
const T0: i64 = 1_700_000_100 * 1_000_000;

fn effects(changes: &[Change]) -> Vec<Effect> {
    changes
        .iter()
        .map(|c| match c {
            Change::Moved { effect, .. } | Change::Released(effect) => *effect,
        })
        .filter(|e| !matches!(e, Effect::Nothing | Effect::FollowPlan))
        .collect()
}

fn water_heater(safety: Safety) -> Equipment {
    let mut e = Equipment::new(
        EquipmentKind::WaterHeater,
        Typology::Plug,
        Mode::Piloted,
        safety,
    );
    let plan =
        Plan::from_json(&json!({"start": T0 / 1_000_000, "decisions": [1, 1, 0, 1, 0]})).unwrap();
    e.plan = Some(plan);
    e
}

#[test]
fn a_water_heater_follows_its_plan_slot_by_slot() {
    let mut e = water_heater(Safety::default());
    assert_eq!(effects(&e.start(T0)), [Effect::On]);
    assert_eq!(e.state, State::PilotedOn);
    assert!(
        effects(&e.tick(T0 + Q)).is_empty(),
        "on again: nothing to send"
    );
    assert_eq!(e.next_wake(T0 + Q), Some(T0 + 2 * Q));
    assert_eq!(effects(&e.tick(T0 + 2 * Q)), [Effect::Off]);
    assert_eq!(effects(&e.tick(T0 + 3 * Q)), [Effect::On]);
    assert_eq!(effects(&e.tick(T0 + 4 * Q)), [Effect::Off]);
    // Past its plan, a water heater is kept on.
    assert_eq!(effects(&e.tick(T0 + 5 * Q)), [Effect::On]);
}

#[test]
fn a_minimum_on_duration_holds_the_load_on() {
    let safety = Safety {
        min_on: 20 * 60_000_000,
        ..Safety::default()
    };
    let mut e = water_heater(safety);
    e.plan =
        Some(Plan::from_json(&json!({"start": T0 / 1_000_000, "decisions": [1, 0, 0]})).unwrap());
    assert_eq!(effects(&e.start(T0)), [Effect::On]);
    // The plan says off after 15 minutes; 20 are due.
    assert!(effects(&e.tick(T0 + Q)).is_empty());
    assert_eq!(e.state, State::PilotedOff);
    assert_eq!(e.next_wake(T0 + Q), Some(T0 + 20 * 60_000_000));
    assert_eq!(
        e.tick(T0 + 20 * 60_000_000),
        [Change::Released(Effect::Off)]
    );
    // The household is not held: its override applies at once.
    let mut e = water_heater(safety);
    e.start(T0);
    assert_eq!(
        effects(&e.override_until(T0 + 60_000_000, false, T0 + Q)),
        [Effect::Off]
    );
}

#[test]
fn a_shed_cuts_at_once_and_gives_the_load_back_to_its_plan_at_its_end() {
    let mut e = water_heater(Safety {
        min_on: 0,
        min_off: 0,
        ..Safety::default()
    });
    e.start(T0);
    assert_eq!(
        effects(&e.shed_until(T0 + 60_000_000, T0 + Q + 60_000_000)),
        [Effect::Off]
    );
    assert!(
        effects(&e.tick(T0 + Q)).is_empty(),
        "a slot does not end a shed"
    );
    assert_eq!(e.next_wake(T0 + Q), Some(T0 + Q + 60_000_000));
    assert_eq!(
        effects(&e.tick(T0 + Q + 60_000_000)),
        [Effect::On],
        "the plan says on in slot 1"
    );
    assert_eq!(e.state, State::PilotedOn);
}

#[test]
fn a_shed_ends_at_its_maximum_duration() {
    let safety = Safety {
        min_on: 0,
        min_off: 0,
        max_shed: Q,
    };
    let mut e = water_heater(safety);
    e.start(T0);
    e.shed_until(T0, T0 + 10 * Q);
    assert_eq!(e.next_wake(T0), Some(T0 + Q));
    e.tick(T0 + Q);
    assert_eq!(e.state, State::PilotedOn);
}

#[test]
fn the_household_override_holds_until_it_expires() {
    let mut e = water_heater(Safety {
        min_on: 0,
        min_off: 0,
        ..Safety::default()
    });
    e.start(T0);
    assert_eq!(
        effects(&e.override_until(T0, false, T0 + 3 * Q + 1)),
        [Effect::Off]
    );
    for slot in 1..=3 {
        assert!(
            effects(&e.tick(T0 + slot * Q)).is_empty(),
            "slot {slot} moved an overridden load"
        );
    }
    // It expires: back to the plan, which says on in slot 3.
    assert_eq!(effects(&e.tick(T0 + 3 * Q + 1)), [Effect::On]);
}

#[test]
fn a_dishwasher_launches_at_its_deadline_if_no_slot_came() {
    let mut e = Equipment::new(
        EquipmentKind::Dishwasher,
        Typology::PlugAndFinger,
        Mode::Piloted,
        Safety::default(),
    );
    assert_eq!(effects(&e.start(T0)), [Effect::Off]);
    assert_eq!(e.state, State::StandBy);
    e.set_deadline(Some(T0 + 8 * Q));
    assert!(effects(&e.tick(T0 + Q)).is_empty());
    assert_eq!(e.next_wake(T0 + Q), Some(T0 + 8 * Q));
    assert_eq!(effects(&e.tick(T0 + 8 * Q)), [Effect::Launch]);
    assert_eq!(e.state, State::Running);
    assert!(
        effects(&e.shed_until(T0 + 9 * Q, T0 + 10 * Q)).is_empty(),
        "a running cycle is not cut"
    );
    e.finished(T0 + 12 * Q);
    assert_eq!(e.state, State::Manual);
}

#[test]
fn a_dishwasher_launches_in_its_plans_slot() {
    let mut e = Equipment::new(
        EquipmentKind::Dishwasher,
        Typology::Plug,
        Mode::Piloted,
        Safety::default(),
    );
    e.start(T0);
    let plan = Plan::from_json(&json!({"start": T0 / 1_000_000, "decisions": [0, 0, 1]})).unwrap();
    assert!(effects(&e.set_plan(T0, plan)).is_empty());
    assert!(effects(&e.tick(T0 + Q)).is_empty());
    assert_eq!(effects(&e.tick(T0 + 2 * Q)), [Effect::Launch]);
}

fn states(changes: &[Change]) -> Vec<State> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Moved { to, .. } => Some(*to),
            Change::Released(_) => None,
        })
        .collect()
}

const MINUTE: i64 = 60_000_000;

#[test]
fn a_cycle_ends_when_the_machine_stays_idle_after_drawing_power() {
    let mut e = Equipment::new(
        EquipmentKind::Dishwasher,
        Typology::RelayAndMeter,
        Mode::Piloted,
        Safety::default(),
    );
    e.start(T0);
    assert!(e.measured_power(T0, 0.0).is_empty(), "not running: nothing");
    e.set_end_by(Some(T0 + 12 * Q));
    assert_eq!(
        e.next_wake(T0),
        Some(T0 + 12 * Q - e.cycle.duration),
        "launched a cycle's duration before its end-by time"
    );
    assert_eq!(effects(&e.consume_now_until(T0, T0 + Q)), [Effect::Launch]);
    // Idle before it drew anything: the machine is still filling.
    assert!(e.measured_power(T0 + MINUTE, 1.0).is_empty());
    assert!(e.measured_power(T0 + 20 * MINUTE, 1.0).is_empty());
    assert!(e.measured_power(T0 + 21 * MINUTE, 1800.0).is_empty());
    // A quiet phase shorter than the idle time does not end it.
    assert!(e.measured_power(T0 + 30 * MINUTE, 2.0).is_empty());
    assert!(e.measured_power(T0 + 35 * MINUTE, 900.0).is_empty());
    assert!(e.measured_power(T0 + 80 * MINUTE, 2.0).is_empty());
    assert_eq!(e.next_wake(T0 + 80 * MINUTE), Some(T0 + 90 * MINUTE));
    assert_eq!(states(&e.tick(T0 + 90 * MINUTE)), [State::Manual]);
    assert_eq!(e.end_by(), None, "the end-by time was this cycle's");
    assert!(e.measured_power(T0 + 91 * MINUTE, 1800.0).is_empty());
}

#[test]
fn a_cycle_no_meter_watches_ends_at_its_longest() {
    let mut e = Equipment::new(
        EquipmentKind::WashingMachine,
        Typology::Plug,
        Mode::Piloted,
        Safety::default(),
    );
    e.start(T0);
    e.consume_now_until(T0, T0 + Q);
    assert_eq!(e.state, State::Running);
    assert!(
        effects(&e.tick(T0 + Q)).is_empty(),
        "a launched cycle runs on"
    );
    assert_eq!(e.next_wake(T0 + Q), Some(T0 + e.cycle.longest));
    assert_eq!(states(&e.tick(T0 + e.cycle.longest)), [State::Manual]);
}

#[test]
fn a_car_charges_by_its_departure_and_stops_when_it_stops_drawing() {
    let mut e = Equipment::new(
        EquipmentKind::ElectricVehicle,
        Typology::Plug,
        Mode::Piloted,
        Safety {
            min_on: 0,
            min_off: 0,
            ..Safety::default()
        },
    )
    .with_cycle(Cycle {
        battery_wh: 40_000.0,
        charge_w: 8_000.0,
        ..Cycle::default()
    });
    e.set_plan(
        T0,
        Plan::from_json(&json!({"start": T0 / 1_000_000, "decisions": vec![0; 96]})).unwrap(),
    );
    e.start(T0);
    assert_eq!(e.state, State::PilotedOff);
    // 50 % of 40 kWh at 8 kW: 2.5 h before departure.
    e.set_target_charge(50);
    e.set_end_by(Some(T0 + 40 * Q));
    assert_eq!(e.next_wake(T0), Some(T0 + Q), "the plan's next slot first");
    assert_eq!(e.deadline, Some(T0 + 40 * Q - 150 * MINUTE));
    e.set_target_charge(100);
    assert_eq!(e.deadline, Some(T0 + 40 * Q - 300 * MINUTE));
    let late = T0 + 40 * Q - 300 * MINUTE;
    assert_eq!(
        effects(&e.tick(late)),
        [Effect::On],
        "charging, plan or not"
    );
    assert_eq!(e.state, State::Boosted);
    assert!(e.measured_power(late + MINUTE, 7400.0).is_empty());
    assert!(e.measured_power(late + 200 * MINUTE, 0.0).is_empty());
    let done = e.tick(late + 210 * MINUTE);
    assert_eq!(states(&done), [State::StandBy]);
    assert_eq!(effects(&done), [Effect::Off]);
}

#[test]
fn where_no_plan_decides_the_fallback_does() {
    let mut e = Equipment::new(
        EquipmentKind::WaterHeater,
        Typology::Plug,
        Mode::Piloted,
        Safety {
            min_on: 0,
            min_off: 0,
            ..Safety::default()
        },
    );
    assert_eq!(effects(&e.start(T0)), [Effect::On], "kept on by default");
    assert_eq!(effects(&e.set_fallback(T0, Some(false))), [Effect::Off]);
    assert!(
        e.set_fallback(T0, Some(false)).is_empty(),
        "no change, nothing"
    );
    // A plan comes first where it decides; past its end, the fallback.
    let plan = Plan::from_json(&json!({"start": T0 / 1_000_000, "decisions": [1]})).unwrap();
    assert_eq!(effects(&e.set_plan(T0, plan)), [Effect::On]);
    assert_eq!(effects(&e.tick(T0 + Q)), [Effect::Off]);
    assert_eq!(effects(&e.set_fallback(T0 + Q, None)), [Effect::On]);
    // A machine in stand-by is launched by a favourable moment.
    // Off from the start: the device is told so.
    let mut off = water_heater(Safety::default());
    off.plan = None;
    off.set_fallback(T0, Some(false));
    assert_eq!(effects(&off.start(T0)), [Effect::Off]);
    assert_eq!(off.state, State::PilotedOff);
    let mut m = Equipment::new(
        EquipmentKind::Dishwasher,
        Typology::Plug,
        Mode::Piloted,
        Safety::default(),
    );
    m.start(T0);
    assert_eq!(effects(&m.set_fallback(T0, Some(true))), [Effect::Launch]);
}
