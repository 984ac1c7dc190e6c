//! Every state × every event of every load, checked against the rules the
//! tables must hold; then whole stories.

use super::*;
use crate::driver::Order;
use crate::model::{Load, Mode, Typology};

const LOADS: [Load; 3] = [Load::OneShot, Load::Continuous, Load::Charge];
const MODES: [Mode; 4] = [
    Mode::NotPiloted,
    Mode::Manual,
    Mode::Piloted,
    Mode::Disabled,
];

/// The states a load can be in.
fn reachable(load: Load) -> Vec<State> {
    State::ALL
        .into_iter()
        .filter(|s| match load {
            Load::OneShot => !matches!(s, S::PilotedOn | S::PilotedOff | S::Shed | S::Boosted),
            Load::Continuous => !matches!(s, S::StandBy | S::Running),
            Load::Charge => *s != S::Running,
        })
        .collect()
}

fn each_cell(mut check: impl FnMut(Load, Mode, State, Event, Step)) {
    for load in LOADS {
        for mode in MODES {
            for state in State::ALL {
                for event in Event::ALL {
                    check(load, mode, state, event, step(load, mode, state, event));
                }
            }
        }
    }
}

#[test]
fn every_transition_stays_among_the_states_of_its_load() {
    each_cell(|load, _, state, event, outcome| {
        if let Step::Go(next, _) = outcome
            && reachable(load).contains(&state)
        {
            assert!(
                reachable(load).contains(&next),
                "{load:?}: {state:?} + {event:?} leads to {next:?}, which it never is in"
            );
        }
    });
}

#[test]
fn the_household_override_wins_in_every_commanded_state() {
    each_cell(|load, _, state, event, outcome| {
        if state == S::NotCommanded || !reachable(load).contains(&state) {
            return;
        }
        match event {
            V::OverrideOn => assert_eq!(
                outcome,
                Step::Go(S::Overridden, E::On),
                "{load:?} {state:?}"
            ),
            V::OverrideOff => assert_eq!(
                outcome,
                Step::Go(S::Overridden, E::Off),
                "{load:?} {state:?}"
            ),
            _ => {}
        }
    });
}

#[test]
fn nothing_but_the_household_moves_an_overridden_load() {
    each_cell(|load, _, state, event, outcome| {
        if state != S::Overridden {
            return;
        }
        let household = matches!(
            event,
            V::SetManual
                | V::SetPiloted
                | V::SetNotCommanded
                | V::OverrideOn
                | V::OverrideOff
                | V::OverrideExpired
        );
        if !household {
            assert_eq!(
                outcome,
                Step::Ignored,
                "{load:?}: {event:?} moved an overridden load"
            );
        }
    });
}

#[test]
fn plans_and_stimulations_do_nothing_in_manual_and_when_not_commanded() {
    each_cell(|load, _, state, event, outcome| {
        let from_outside = matches!(
            event,
            V::SlotOn
                | V::SlotOff
                | V::DeadlineReached
                | V::ShedStart
                | V::ShedEnd
                | V::ConsumeNowStart
                | V::ConsumeNowEnd
                | V::CycleEnded
                | V::TargetReached
        );
        if from_outside && matches!(state, S::Manual | S::NotCommanded) {
            assert_eq!(outcome, Step::Ignored, "{load:?}: {event:?} in {state:?}");
        }
    });
}

#[test]
fn a_load_not_commanded_is_sent_nothing_until_the_household_says() {
    each_cell(|load, _, state, event, outcome| {
        if let Step::Go(next, effect) = outcome
            && next == S::NotCommanded
        {
            assert_eq!(
                effect,
                E::Nothing,
                "{load:?}: {state:?} + {event:?} sends an order on its way out"
            );
        }
        if state == S::NotCommanded && !matches!(event, V::SetManual | V::SetPiloted) {
            assert_eq!(
                outcome,
                Step::Ignored,
                "{load:?}: {event:?} moved a load not commanded"
            );
        }
    });
}

#[test]
fn a_launched_cycle_is_never_cut_but_by_the_household() {
    for event in Event::ALL {
        let outcome = step(Load::OneShot, Mode::Piloted, S::Running, event);
        if let Step::Go(_, effect) = outcome
            && matches!(effect, E::Off)
        {
            assert_eq!(event, V::OverrideOff, "{event:?} cut a running cycle");
        }
    }
    assert_eq!(
        step(Load::OneShot, Mode::Piloted, S::Running, V::ShedStart),
        Step::Ignored
    );
    assert_eq!(
        step(Load::OneShot, Mode::Piloted, S::Running, V::SlotOff),
        Step::Ignored
    );
}

#[test]
fn a_shed_cuts_every_piloted_continuous_load_and_a_charge_at_once() {
    for load in [Load::Continuous, Load::Charge] {
        for state in [S::PilotedOn, S::PilotedOff] {
            assert_eq!(
                step(load, Mode::Piloted, state, V::ShedStart),
                Step::Go(S::Shed, E::Off)
            );
        }
        assert_eq!(
            step(load, Mode::Piloted, S::Shed, V::ShedEnd),
            Step::Go(S::PilotedOff, E::FollowPlan),
            "the end of a shed gives the load back to its plan"
        );
        assert_eq!(
            step(load, Mode::Piloted, S::Shed, V::SlotOn),
            Step::Ignored,
            "a slot does not end a shed"
        );
    }
}

#[test]
fn an_override_ends_in_the_mode_the_equipment_has() {
    for load in LOADS {
        let end = |mode| step(load, mode, S::Overridden, V::OverrideExpired);
        assert_eq!(end(Mode::Manual), Step::Go(S::Manual, E::On));
        assert_eq!(end(Mode::Disabled), Step::Go(S::NotCommanded, E::Nothing));
        let piloted = end(Mode::Piloted);
        match load {
            Load::OneShot => assert_eq!(piloted, Step::Go(S::StandBy, E::Off)),
            _ => assert_eq!(piloted, Step::Go(S::PilotedOff, E::FollowPlan)),
        }
    }
}

/// Runs `events` from `start`, returning each state and effect.
fn story(load: Load, start: State, events: &[Event]) -> Vec<(State, Effect)> {
    let mut state = start;
    let mut seen = Vec::new();
    for event in events {
        if let Step::Go(next, effect) = step(load, Mode::Piloted, state, *event) {
            state = next;
            seen.push((next, effect));
        }
    }
    seen
}

#[test]
fn a_dishwasher_waits_launches_in_its_slot_and_returns_to_manual() {
    assert_eq!(
        story(
            Load::OneShot,
            S::Manual,
            &[
                V::SetPiloted,
                V::SlotOff,
                V::SlotOn,
                V::ShedStart,
                V::CycleEnded
            ]
        ),
        [
            (S::StandBy, E::Off),
            (S::Running, E::Launch),
            (S::Manual, E::Nothing),
        ]
    );
    assert_eq!(
        story(Load::OneShot, S::StandBy, &[V::DeadlineReached]),
        [(S::Running, E::Launch)],
        "launched at its deadline at the latest"
    );
}

#[test]
fn an_ev_charges_late_when_its_deadline_comes_and_stops_at_its_target() {
    assert_eq!(
        story(
            Load::Charge,
            S::PilotedOff,
            &[V::SlotOff, V::DeadlineReached, V::SlotOff, V::TargetReached]
        ),
        [
            (S::PilotedOff, E::Nothing),
            (S::Boosted, E::On),
            (S::StandBy, E::Off)
        ],
        "late, it charges whatever the plan says, until its target"
    );
}

#[test]
fn each_typology_turns_effects_into_its_devices_orders() {
    assert_eq!(orders(Typology::Plug, E::On), [(Part::Switch, Order::On)]);
    assert_eq!(
        orders(Typology::InvertedRelay, E::On),
        [(Part::Switch, Order::Off)]
    );
    assert_eq!(
        orders(Typology::InvertedRelay, E::Off),
        [(Part::Switch, Order::On)]
    );
    assert_eq!(
        orders(Typology::PlugAndFinger, E::Launch),
        [(Part::Switch, Order::On), (Part::Finger, Order::Press)],
        "the plug is powered before the finger presses"
    );
    assert_eq!(
        orders(Typology::Plug, E::Launch),
        [(Part::Switch, Order::On)]
    );
    assert_eq!(
        orders(Typology::TwoRelays, E::Off),
        [(Part::Switch, Order::Off), (Part::SecondRelay, Order::On)]
    );
    for t in Typology::ALL {
        assert!(orders(*t, E::Nothing).is_empty());
        assert!(orders(*t, E::FollowPlan).is_empty());
    }
}
