//! One equipment under control: its state machine ([`crate::machine`])
//! with the rules that need a clock around it — the plan's slots, the
//! minimum on and off durations, the maximum shedding duration, the end of
//! stimulations and of the household's override, the deadline.
//!
//! Pure: the control loop calls [`Equipment::tick`] at every moment
//! [`Equipment::next_wake`] names (quarter-hour boundaries among them) and
//! the other methods when something happens, and carries out the effects
//! they return through [`crate::machine::orders`].

use crate::machine::{self, Effect, Event, State, Step};
use crate::model::{EquipmentKind, Load, Mode, Typology};
use crate::plan::Plan;

/// Timing rules that protect the equipment and the household.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Safety {
    /// A continuous load or a charge switched on stays on at least this
    /// long (µs), unless the household says otherwise.
    pub min_on: i64,
    /// Switched off, it stays off at least this long (µs).
    pub min_off: i64,
    /// A shed ends after this long (µs), whatever its stimulation said.
    pub max_shed: i64,
}

impl Default for Safety {
    /// 5 minutes on, 5 minutes off, 2 hours of shedding at most.
    fn default() -> Safety {
        Safety {
            min_on: 300_000_000,
            min_off: 300_000_000,
            max_shed: 7_200_000_000,
        }
    }
}

/// What happened to an equipment, for the journal and the state stream,
/// and the effect to carry out now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// A transition of its state machine.
    Moved {
        /// Its state before.
        from: State,
        /// Its state after.
        to: State,
        /// What moved it.
        event: Event,
        /// What to do now (`Nothing` when a minimum duration holds the
        /// load as it is; the effect comes later as `Released`).
        effect: Effect,
    },
    /// An effect held back by a minimum on or off duration, due now.
    Released(Effect),
}

/// An equipment and what drives it.
#[derive(Debug, Clone)]
pub struct Equipment {
    /// What it is.
    pub kind: EquipmentKind,
    /// How it is wired.
    pub typology: Typology,
    /// Who is in charge of it.
    pub mode: Mode,
    /// Its command state.
    pub state: State,
    /// Its timing rules.
    pub safety: Safety,
    plan: Option<Plan>,
    /// The power the node last gave it (on/off) and since when.
    power: Option<(bool, i64)>,
    /// An effect waiting for a minimum duration to pass.
    held: Option<Effect>,
    shed: Option<(i64, i64)>,
    boost_until: Option<i64>,
    override_until: Option<i64>,
    deadline: Option<i64>,
}

impl Equipment {
    /// An equipment in `mode`, not commanded yet: call
    /// [`Equipment::start`] to bring it to its mode.
    pub fn new(kind: EquipmentKind, typology: Typology, mode: Mode, safety: Safety) -> Equipment {
        Equipment {
            kind,
            typology,
            mode,
            state: State::NotCommanded,
            safety,
            plan: None,
            power: None,
            held: None,
            shed: None,
            boost_until: None,
            override_until: None,
            deadline: None,
        }
    }

    fn load(&self) -> Load {
        self.kind.load()
    }

    /// Brings it to its mode's state (at start-up).
    pub fn start(&mut self, now: i64) -> Vec<Change> {
        let mode = self.mode;
        self.set_mode(now, mode)
    }

    /// The household (or the operator) sets its mode.
    pub fn set_mode(&mut self, now: i64, mode: Mode) -> Vec<Change> {
        self.mode = mode;
        let event = match mode {
            Mode::Manual => Event::SetManual,
            Mode::Piloted => Event::SetPiloted,
            Mode::NotPiloted | Mode::Disabled => Event::SetNotCommanded,
        };
        self.apply(now, event)
    }

    /// A new plan; applied at once to a piloted continuous load.
    pub fn set_plan(&mut self, now: i64, plan: Plan) -> Vec<Change> {
        self.plan = Some(plan);
        self.follow_plan(now)
    }

    /// The household's deadline: the last moment to launch the cycle, or to
    /// start charging and still be ready in time.
    pub fn set_deadline(&mut self, deadline: Option<i64>) {
        self.deadline = deadline;
    }

    /// The household forces the load on or off until `until`.
    pub fn override_until(&mut self, now: i64, on: bool, until: i64) -> Vec<Change> {
        self.override_until = Some(until);
        self.apply(
            now,
            if on {
                Event::OverrideOn
            } else {
                Event::OverrideOff
            },
        )
    }

    /// A shed stimulation until `until` (cut short at the maximum shedding
    /// duration).
    pub fn shed_until(&mut self, now: i64, until: i64) -> Vec<Change> {
        self.shed = Some((now, until));
        self.apply(now, Event::ShedStart)
    }

    /// A "consume now" stimulation until `until`.
    pub fn consume_now_until(&mut self, now: i64, until: i64) -> Vec<Change> {
        self.boost_until = Some(until);
        self.apply(now, Event::ConsumeNowStart)
    }

    /// A one-shot cycle finished, or a charge reached its target.
    pub fn finished(&mut self, now: i64) -> Vec<Change> {
        match self.load() {
            Load::OneShot => self.apply(now, Event::CycleEnded),
            _ => self.apply(now, Event::TargetReached),
        }
    }

    /// Everything due at `now`: ends of override, shed and "consume now",
    /// the deadline, the plan's slot, held effects.
    pub fn tick(&mut self, now: i64) -> Vec<Change> {
        let mut changes = Vec::new();
        if self.override_until.is_some_and(|t| t <= now) {
            self.override_until = None;
            changes.extend(self.apply(now, Event::OverrideExpired));
        }
        if let Some((since, until)) = self.shed
            && (until <= now || now - since >= self.safety.max_shed)
        {
            self.shed = None;
            changes.extend(self.apply(now, Event::ShedEnd));
        }
        if self.boost_until.is_some_and(|t| t <= now) {
            self.boost_until = None;
            changes.extend(self.apply(now, Event::ConsumeNowEnd));
        }
        if self.deadline.is_some_and(|t| t <= now) {
            self.deadline = None;
            changes.extend(self.apply(now, Event::DeadlineReached));
        }
        changes.extend(self.follow_plan(now));
        if let Some(effect) = self.held
            && self.may_switch(now, effect)
        {
            self.held = None;
            self.powered(now, effect);
            changes.push(Change::Released(effect));
        }
        changes
    }

    /// The next moment [`Equipment::tick`] has something to do, if any.
    pub fn next_wake(&self, now: i64) -> Option<i64> {
        let held = self.held.and_then(|effect| {
            let (on, since) = self.power?;
            let wait = if on {
                self.safety.min_on
            } else {
                self.safety.min_off
            };
            matches!(effect, Effect::On | Effect::Off).then_some(since + wait)
        });
        [
            self.plan.as_ref().and_then(|p| p.next_change(now)),
            self.override_until,
            self.shed
                .map(|(since, until)| until.min(since + self.safety.max_shed)),
            self.boost_until,
            self.deadline,
            held,
        ]
        .into_iter()
        .flatten()
        .filter(|&t| t > now)
        .min()
        .or(held.filter(|&t| t <= now))
    }

    /// The plan's decision now as a slot event, in the states that follow
    /// a plan. A continuous load with no plan is kept on: the household's
    /// comfort comes before a flexibility nobody asked for.
    fn follow_plan(&mut self, now: i64) -> Vec<Change> {
        if !matches!(
            self.state,
            State::PilotedOn | State::PilotedOff | State::StandBy
        ) {
            return Vec::new();
        }
        let decision = self.plan.as_ref().and_then(|p| p.decision(now));
        let on = match (decision, self.load()) {
            (Some(on), _) => on,
            (None, Load::Continuous) => true,
            // A machine or a car waits for its slot or its deadline.
            (None, _) => return Vec::new(),
        };
        if self.state == State::StandBy && !on {
            return Vec::new();
        }
        let event = if on { Event::SlotOn } else { Event::SlotOff };
        // A slot event that would change nothing is not journaled.
        match machine::step(self.load(), self.mode, self.state, event) {
            Step::Go(next, Effect::Nothing) if next == self.state => Vec::new(),
            _ => self.apply(now, event),
        }
    }

    fn may_switch(&self, now: i64, effect: Effect) -> bool {
        let Some((on, since)) = self.power else {
            return true;
        };
        match effect {
            Effect::Off if on => now - since >= self.safety.min_on,
            Effect::On if !on => now - since >= self.safety.min_off,
            _ => true,
        }
    }

    fn powered(&mut self, now: i64, effect: Effect) {
        let on = match effect {
            Effect::On | Effect::Launch => true,
            Effect::Off => false,
            Effect::Nothing | Effect::FollowPlan => return,
        };
        if self.power.map(|(was, _)| was) != Some(on) {
            self.power = Some((on, now));
        }
    }

    /// Runs `event` through the state machine, with the timing rules.
    fn apply(&mut self, now: i64, event: Event) -> Vec<Change> {
        let Step::Go(to, effect) = machine::step(self.load(), self.mode, self.state, event) else {
            return Vec::new();
        };
        let from = self.state;
        self.state = to;
        // The household wins at once; minimum durations protect a load the
        // node switches on its own.
        let household = matches!(
            event,
            Event::OverrideOn | Event::OverrideOff | Event::SetManual | Event::SetNotCommanded
        );
        let timed = matches!(self.load(), Load::Continuous | Load::Charge)
            && matches!(effect, Effect::On | Effect::Off);
        let effect = if timed && !household && !self.may_switch(now, effect) {
            self.held = Some(effect);
            Effect::Nothing
        } else {
            if matches!(effect, Effect::On | Effect::Off | Effect::Launch) {
                self.held = None;
            }
            self.powered(now, effect);
            effect
        };
        let mut changes = vec![Change::Moved {
            from,
            to,
            event,
            effect,
        }];
        if effect == Effect::FollowPlan {
            changes.extend(self.follow_plan(now));
        }
        changes
    }
}

#[cfg(test)]
mod tests {
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
        let plan = Plan::from_json(&json!({"start": T0 / 1_000_000, "decisions": [1, 1, 0, 1, 0]}))
            .unwrap();
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
        e.plan = Some(
            Plan::from_json(&json!({"start": T0 / 1_000_000, "decisions": [1, 0, 0]})).unwrap(),
        );
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
        let plan =
            Plan::from_json(&json!({"start": T0 / 1_000_000, "decisions": [0, 0, 1]})).unwrap();
        assert!(effects(&e.set_plan(T0, plan)).is_empty());
        assert!(effects(&e.tick(T0 + Q)).is_empty());
        assert_eq!(effects(&e.tick(T0 + 2 * Q)), [Effect::Launch]);
    }
}
