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

/// What the node knows of a machine's cycle or a car's charge: how long it
/// takes, and how its end shows in the power it draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cycle {
    /// How long a machine's cycle lasts (µs): it is launched this long
    /// before the household's end-by time at the latest.
    pub duration: i64,
    /// Below this power (W), the load is idle.
    pub idle_below: f64,
    /// Idle this long (µs) after having drawn power: the cycle (or the
    /// charge) is over. Long enough for a machine's quiet phases.
    pub idle_for: i64,
    /// A launched cycle whose end no meter tells is over after this long
    /// (µs).
    pub longest: i64,
    /// A car's battery capacity (Wh).
    pub battery_wh: f64,
    /// A car's charging power (W).
    pub charge_w: f64,
}

impl Default for Cycle {
    /// A 2-hour cycle, idle under 5 W for 10 minutes, 4 hours at most; a
    /// 50 kWh battery charged at 7.4 kW.
    fn default() -> Cycle {
        Cycle {
            duration: 7_200_000_000,
            idle_below: 5.0,
            idle_for: 600_000_000,
            longest: 14_400_000_000,
            battery_wh: 50_000.0,
            charge_w: 7_400.0,
        }
    }
}

/// A running cycle or charge, watched for its end.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    since: i64,
    /// It drew power since it started: an idle load is then done.
    drew: bool,
    idle_since: Option<i64>,
}

/// A car's target charge when the household set none, in %.
pub const DEFAULT_TARGET_CHARGE: u8 = 80;

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
    /// Its cycle or charge.
    pub cycle: Cycle,
    plan: Option<Plan>,
    /// The power the node last gave it (on/off) and since when.
    power: Option<(bool, i64)>,
    /// An effect waiting for a minimum duration to pass.
    held: Option<Effect>,
    shed: Option<(i64, i64)>,
    boost_until: Option<i64>,
    override_until: Option<i64>,
    deadline: Option<i64>,
    end_by: Option<i64>,
    target_charge: u8,
    run: Option<Run>,
    /// What the node decides where no plan does ([`crate::signals`]).
    fallback: Option<bool>,
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
            cycle: Cycle::default(),
            plan: None,
            power: None,
            held: None,
            shed: None,
            boost_until: None,
            override_until: None,
            deadline: None,
            end_by: None,
            target_charge: DEFAULT_TARGET_CHARGE,
            run: None,
            fallback: None,
        }
    }

    /// The same, with its cycle or charge described.
    pub fn with_cycle(mut self, cycle: Cycle) -> Equipment {
        self.cycle = cycle;
        self
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

    /// What to do where no plan decides: on, off, or `None` for the load's
    /// default (see [`crate::signals::fallback`]). Applied at once if it
    /// changes what the equipment does now.
    pub fn set_fallback(&mut self, now: i64, fallback: Option<bool>) -> Vec<Change> {
        if self.fallback == fallback {
            return Vec::new();
        }
        self.fallback = fallback;
        self.follow_plan(now)
    }

    /// The household's end-by time (µs): a machine's cycle is over by then,
    /// a car charged to its target. The deadline follows from it: the
    /// cycle's duration before, or the charging time an empty battery
    /// would need to reach the target (the node does not know the car's
    /// charge, so it starts in time for the worst case).
    pub fn set_end_by(&mut self, end_by: Option<i64>) {
        self.end_by = end_by;
        self.deadline = end_by.and_then(|end| match self.load() {
            Load::OneShot => Some(end - self.cycle.duration),
            Load::Charge => Some(end - self.charging_time()),
            Load::Continuous => None,
        });
    }

    /// The household's end-by time, if any.
    pub fn end_by(&self) -> Option<i64> {
        self.end_by
    }

    /// A car's target charge, in % (at most 100).
    pub fn set_target_charge(&mut self, percent: u8) {
        self.target_charge = percent.min(100);
        self.set_end_by(self.end_by);
    }

    /// A car's target charge, in %.
    pub fn target_charge(&self) -> u8 {
        self.target_charge
    }

    /// How long charging an empty battery to the target takes (µs).
    fn charging_time(&self) -> i64 {
        if self.cycle.charge_w <= 0.0 {
            return 0;
        }
        let wh = self.cycle.battery_wh * f64::from(self.target_charge) / 100.0;
        (wh / self.cycle.charge_w * 3_600_000_000.0) as i64
    }

    /// The power the load draws (W), from its meter: a running cycle or
    /// charge that drew power and stays idle long enough is over.
    pub fn measured_power(&mut self, now: i64, watts: f64) -> Vec<Change> {
        let Some(run) = &mut self.run else {
            return Vec::new();
        };
        if watts >= self.cycle.idle_below {
            run.drew = true;
            run.idle_since = None;
        } else if run.drew && run.idle_since.is_none() {
            run.idle_since = Some(now);
        }
        if self.run_over(now) {
            return self.finished(now);
        }
        Vec::new()
    }

    /// When the running cycle or charge is over, if it runs: idle long
    /// enough after drawing power, or (a machine) its longest duration.
    fn run_ends_at(&self) -> Option<i64> {
        let run = self.run?;
        let idle = run
            .idle_since
            .filter(|_| run.drew)
            .map(|t| t + self.cycle.idle_for);
        let longest = (self.load() == Load::OneShot).then_some(run.since + self.cycle.longest);
        [idle, longest].into_iter().flatten().min()
    }

    fn run_over(&self, now: i64) -> bool {
        self.run_ends_at().is_some_and(|t| t <= now)
    }

    /// Whether `state` is a cycle or a charge under way, watched for its end.
    fn runs(&self, state: State) -> bool {
        match self.load() {
            Load::OneShot => state == State::Running,
            Load::Charge => matches!(state, State::PilotedOn | State::Boosted),
            Load::Continuous => false,
        }
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
            Load::OneShot => {
                // The end-by time was this cycle's.
                self.set_end_by(None);
                self.apply(now, Event::CycleEnded)
            }
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
        if self.run_over(now) {
            changes.extend(self.finished(now));
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
            self.run_ends_at(),
            held,
        ]
        .into_iter()
        .flatten()
        .filter(|&t| t > now)
        .min()
        .or(held.filter(|&t| t <= now))
    }

    /// The plan's decision now (or, where no plan decides, the fallback's)
    /// as a slot event, in the states that follow a plan. A continuous load
    /// with neither is kept on: the household's comfort comes before a
    /// flexibility nobody asked for.
    fn follow_plan(&mut self, now: i64) -> Vec<Change> {
        if !matches!(
            self.state,
            State::PilotedOn | State::PilotedOff | State::StandBy
        ) {
            return Vec::new();
        }
        let decision = self
            .plan
            .as_ref()
            .and_then(|p| p.decision(now))
            .or(self.fallback);
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
        // A slot event that would change nothing is not journaled; but a
        // load the node never switched is switched now, so that the device
        // is known to do what the state says.
        match machine::step(self.load(), self.mode, self.state, event) {
            Step::Go(next, Effect::Nothing) if next == self.state => {
                if self.power.is_some() || self.load() == Load::OneShot {
                    return Vec::new();
                }
                let effect = if on { Effect::On } else { Effect::Off };
                self.powered(now, effect);
                vec![Change::Released(effect)]
            }
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
        if !self.runs(to) {
            self.run = None;
        } else if !self.runs(from) {
            self.run = Some(Run {
                since: now,
                drew: false,
                idle_since: None,
            });
        }
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
mod tests;
