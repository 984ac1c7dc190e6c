//! The state machines that drive equipments, one table per kind of load,
//! and what each typology's devices are told for each effect.
//!
//! A machine is a table of `(state, event) → (next state, effect)` rows.
//! An event with no row in a state is ignored in that state, explicitly:
//! [`step`] says so, and the tests walk every state × every event.
//!
//! The rules the tables hold:
//! - the household wins: an override applies at once and holds until it
//!   expires, whatever plans and stimulations say; in manual mode plans and
//!   stimulations do nothing;
//! - a one-shot machine (dishwasher…) waits in stand-by, off, until its
//!   slot, a "consume now", or its deadline; once launched it is never cut
//!   (a shed does not stop a cycle), and it returns to manual at the end of
//!   its cycle;
//! - a continuous load (water heater, heater) follows the plan slot by
//!   slot, is cut at once by a shed and forced on by a "consume now", and
//!   goes back to the plan when they end;
//! - a charge (EV) follows the plan, is forced on when its deadline comes,
//!   and stops when its target is reached.
//!
//! Timing rules (minimum on and off durations, maximum shedding duration,
//! override expiry) need a clock, so they are not in these tables: the
//! control loop that feeds them events applies them (it holds back a
//! `SlotOff` until the minimum on duration has passed, sends `ShedEnd` when
//! a shed reaches its maximum duration, `OverrideExpired` when the
//! household's override ends).

use crate::model::{Load, Mode, Typology};

/// The command state of an equipment: what the node is doing with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not piloted, or disabled: the node sends nothing.
    NotCommanded,
    /// The household is in charge; the load is kept powered.
    Manual,
    /// Piloted, off, waiting for its launch (one-shot) or a new target
    /// (charge).
    StandBy,
    /// A one-shot cycle launched; it runs to its end.
    Running,
    /// Piloted, on in this slot.
    PilotedOn,
    /// Piloted, off in this slot.
    PilotedOff,
    /// Cut by a shed stimulation.
    Shed,
    /// Forced on by a "consume now" stimulation.
    Boosted,
    /// The household forced it on or off for a while.
    Overridden,
}

impl State {
    /// Every state.
    pub const ALL: [State; 9] = [
        State::NotCommanded,
        State::Manual,
        State::StandBy,
        State::Running,
        State::PilotedOn,
        State::PilotedOff,
        State::Shed,
        State::Boosted,
        State::Overridden,
    ];

    /// Its name, in the journal and the state stream.
    pub fn name(self) -> &'static str {
        match self {
            State::NotCommanded => "not-commanded",
            State::Manual => "manual",
            State::StandBy => "stand-by",
            State::Running => "running",
            State::PilotedOn => "piloted-on",
            State::PilotedOff => "piloted-off",
            State::Shed => "shed",
            State::Boosted => "boosted",
            State::Overridden => "overridden",
        }
    }
}

/// What happens to an equipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The household (display, API) sets it manual.
    SetManual,
    /// The household sets it piloted.
    SetPiloted,
    /// Piloting is turned off (not piloted, disabled).
    SetNotCommanded,
    /// The plan says on for the slot starting now (the launch slot of a
    /// one-shot machine).
    SlotOn,
    /// The plan says off for the slot starting now.
    SlotOff,
    /// The last moment to start and still finish (or charge) in time.
    DeadlineReached,
    /// A one-shot cycle finished (its power fell, or its duration passed).
    CycleEnded,
    /// An EV reached its target charge.
    TargetReached,
    /// A shed stimulation starts.
    ShedStart,
    /// The shed ends (or reached its maximum duration).
    ShedEnd,
    /// A "consume now" stimulation starts.
    ConsumeNowStart,
    /// The "consume now" ends.
    ConsumeNowEnd,
    /// The household forces it on for a while.
    OverrideOn,
    /// The household forces it off for a while.
    OverrideOff,
    /// The override ends.
    OverrideExpired,
}

impl Event {
    /// Every event.
    pub const ALL: [Event; 15] = [
        Event::SetManual,
        Event::SetPiloted,
        Event::SetNotCommanded,
        Event::SlotOn,
        Event::SlotOff,
        Event::DeadlineReached,
        Event::CycleEnded,
        Event::TargetReached,
        Event::ShedStart,
        Event::ShedEnd,
        Event::ConsumeNowStart,
        Event::ConsumeNowEnd,
        Event::OverrideOn,
        Event::OverrideOff,
        Event::OverrideExpired,
    ];
}

/// What a transition does to the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Nothing to send.
    Nothing,
    /// Power the load.
    On,
    /// Cut the load.
    Off,
    /// Start a one-shot cycle: power it, and press start where a finger
    /// does it.
    Launch,
    /// Back to the plan: the controller applies the current slot's
    /// decision (a `SlotOn` or `SlotOff` event).
    FollowPlan,
}

/// Where a transition leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// To this state.
    To(State),
    /// To the state of the equipment's mode: manual, or piloted (stand-by
    /// for a one-shot machine or a charge, the plan for a continuous
    /// load), or not commanded.
    ModeBase,
}

/// The outcome of an event in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A transition.
    Go(State, Effect),
    /// The event does not apply in this state.
    Ignored,
}

type Row = (State, Event, Next, Effect);

use Effect as E;
use Event as V;
use Next::{ModeBase, To};
use State as S;

/// Rows every load shares: modes and the household override.
const COMMON: &[Row] = &[
    (S::NotCommanded, V::SetManual, To(S::Manual), E::On),
    (
        S::Manual,
        V::SetNotCommanded,
        To(S::NotCommanded),
        E::Nothing,
    ),
    (S::Manual, V::OverrideOn, To(S::Overridden), E::On),
    (S::Manual, V::OverrideOff, To(S::Overridden), E::Off),
    (S::Overridden, V::OverrideOn, To(S::Overridden), E::On),
    (S::Overridden, V::OverrideOff, To(S::Overridden), E::Off),
    (S::Overridden, V::OverrideExpired, ModeBase, E::Nothing),
    (S::Overridden, V::SetManual, To(S::Manual), E::On),
    (
        S::Overridden,
        V::SetNotCommanded,
        To(S::NotCommanded),
        E::Nothing,
    ),
];

const ONE_SHOT: &[Row] = &[
    (S::NotCommanded, V::SetPiloted, To(S::StandBy), E::Off),
    (S::Manual, V::SetPiloted, To(S::StandBy), E::Off),
    (S::Overridden, V::SetPiloted, To(S::StandBy), E::Off),
    (S::StandBy, V::SetManual, To(S::Manual), E::On),
    (
        S::StandBy,
        V::SetNotCommanded,
        To(S::NotCommanded),
        E::Nothing,
    ),
    (S::StandBy, V::SlotOn, To(S::Running), E::Launch),
    (S::StandBy, V::DeadlineReached, To(S::Running), E::Launch),
    (S::StandBy, V::ConsumeNowStart, To(S::Running), E::Launch),
    (S::StandBy, V::OverrideOn, To(S::Overridden), E::On),
    (S::StandBy, V::OverrideOff, To(S::Overridden), E::Off),
    // A launched cycle is never cut: neither a slot nor a shed stops it.
    (S::Running, V::CycleEnded, To(S::Manual), E::Nothing),
    (S::Running, V::SetManual, To(S::Manual), E::Nothing),
    (
        S::Running,
        V::SetNotCommanded,
        To(S::NotCommanded),
        E::Nothing,
    ),
    (S::Running, V::OverrideOff, To(S::Overridden), E::Off),
    (S::Running, V::OverrideOn, To(S::Overridden), E::On),
];

/// Rows a continuous load and a charge share: they follow the plan slot by
/// slot, are cut by a shed and powered by a "consume now".
const SLOTS: &[Row] = &[
    (
        S::NotCommanded,
        V::SetPiloted,
        To(S::PilotedOff),
        E::FollowPlan,
    ),
    (S::Manual, V::SetPiloted, To(S::PilotedOff), E::FollowPlan),
    (
        S::Overridden,
        V::SetPiloted,
        To(S::PilotedOff),
        E::FollowPlan,
    ),
    (S::PilotedOn, V::SlotOff, To(S::PilotedOff), E::Off),
    (S::PilotedOff, V::SlotOn, To(S::PilotedOn), E::On),
    (S::PilotedOn, V::SlotOn, To(S::PilotedOn), E::Nothing),
    (S::PilotedOff, V::SlotOff, To(S::PilotedOff), E::Nothing),
    (S::PilotedOn, V::ShedStart, To(S::Shed), E::Off),
    (S::PilotedOff, V::ShedStart, To(S::Shed), E::Off),
    (S::Shed, V::ShedEnd, To(S::PilotedOff), E::FollowPlan),
    (S::PilotedOn, V::ConsumeNowStart, To(S::Boosted), E::On),
    (S::PilotedOff, V::ConsumeNowStart, To(S::Boosted), E::On),
    (S::Shed, V::ConsumeNowStart, To(S::Boosted), E::On),
];

/// A continuous load's own rows, beside [`SLOTS`].
const CONTINUOUS: &[Row] = &[
    (S::Boosted, V::ShedStart, To(S::Shed), E::Off),
    (
        S::Boosted,
        V::ConsumeNowEnd,
        To(S::PilotedOff),
        E::FollowPlan,
    ),
];

/// A charge's own rows, beside [`SLOTS`].
const CHARGE: &[Row] = &[
    // Late: charge from now on, whatever the plan says.
    (S::PilotedOff, V::DeadlineReached, To(S::Boosted), E::On),
    (S::PilotedOn, V::DeadlineReached, To(S::Boosted), E::Nothing),
    (S::PilotedOn, V::TargetReached, To(S::StandBy), E::Off),
    (S::Boosted, V::TargetReached, To(S::StandBy), E::Off),
    (S::StandBy, V::SetPiloted, To(S::PilotedOff), E::FollowPlan),
    (S::StandBy, V::SetManual, To(S::Manual), E::On),
    (
        S::StandBy,
        V::SetNotCommanded,
        To(S::NotCommanded),
        E::Nothing,
    ),
    (S::StandBy, V::OverrideOn, To(S::Overridden), E::On),
    (S::StandBy, V::OverrideOff, To(S::Overridden), E::Off),
];

/// States in which a continuous load or a charge is piloted: the household
/// can take over from each.
const PILOTED_SLOTS: [State; 4] = [S::PilotedOn, S::PilotedOff, S::Shed, S::Boosted];

/// Rows every piloted state of a continuous load or a charge shares: the
/// household takes over.
fn household_takes_over(event: Event) -> Option<(Next, Effect)> {
    match event {
        V::SetManual => Some((To(S::Manual), E::On)),
        V::SetNotCommanded => Some((To(S::NotCommanded), E::Nothing)),
        V::OverrideOn => Some((To(S::Overridden), E::On)),
        V::OverrideOff => Some((To(S::Overridden), E::Off)),
        _ => None,
    }
}

/// The outcome of `event` in `state` for a `load` whose equipment is in
/// `mode` (for [`Next::ModeBase`]).
pub fn step(load: Load, mode: Mode, state: State, event: Event) -> Step {
    let (own, shared): (&[Row], &[Row]) = match load {
        Load::OneShot => (ONE_SHOT, &[]),
        Load::Continuous => (CONTINUOUS, SLOTS),
        Load::Charge => (CHARGE, SLOTS),
    };
    let found = COMMON
        .iter()
        .chain(own)
        .chain(shared)
        .find(|(s, e, _, _)| *s == state && *e == event)
        .map(|&(_, _, next, effect)| (next, effect))
        .or_else(|| {
            let slots = matches!(load, Load::Continuous | Load::Charge);
            (slots && PILOTED_SLOTS.contains(&state))
                .then(|| household_takes_over(event))
                .flatten()
        });
    match found {
        None => Step::Ignored,
        Some((To(next), effect)) => Step::Go(next, effect),
        Some((ModeBase, _)) => match (mode, load) {
            (Mode::Manual, _) => Step::Go(S::Manual, E::On),
            (Mode::Piloted, Load::OneShot) => Step::Go(S::StandBy, E::Off),
            (Mode::Piloted, _) => Step::Go(S::PilotedOff, E::FollowPlan),
            (Mode::NotPiloted | Mode::Disabled, _) => Step::Go(S::NotCommanded, E::Nothing),
        },
    }
}

/// Which of an equipment's devices an order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The device that switches the load (plug, relay; a heater's comfort
    /// relay).
    Switch,
    /// A heater's second (eco) relay.
    SecondRelay,
    /// The finger that presses the start button.
    Finger,
}

impl Part {
    /// Every part.
    pub const ALL: [Part; 3] = [Part::Switch, Part::SecondRelay, Part::Finger];

    /// Its name in configuration files and stream names.
    pub fn name(self) -> &'static str {
        match self {
            Part::Switch => "switch",
            Part::SecondRelay => "second-relay",
            Part::Finger => "finger",
        }
    }
}

impl std::str::FromStr for Part {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Part> {
        Part::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            crate::Error::Invalid(format!(
                "{s:?} is not a known device part; expected one of: switch, second-relay, finger"
            ))
        })
    }
}

/// The device orders that carry out `effect` for a `typology`, in the
/// order to send them (a plug is powered before its finger presses).
pub fn orders(typology: Typology, effect: Effect) -> Vec<(Part, crate::driver::Order)> {
    use crate::driver::Order::{Off, On, Press};
    let power = |on: bool| match typology {
        // Closed cuts the load.
        Typology::InvertedRelay => vec![(Part::Switch, if on { Off } else { On })],
        // Comfort wire on and eco wire off, or the other way.
        Typology::TwoRelays => vec![
            (Part::Switch, if on { On } else { Off }),
            (Part::SecondRelay, if on { Off } else { On }),
        ],
        Typology::Plug | Typology::PlugAndFinger | Typology::RelayAndMeter => {
            vec![(Part::Switch, if on { On } else { Off })]
        }
    };
    match effect {
        Effect::Nothing | Effect::FollowPlan => Vec::new(),
        Effect::On => power(true),
        Effect::Off => power(false),
        Effect::Launch => {
            let mut o = power(true);
            if typology == Typology::PlugAndFinger {
                o.push((Part::Finger, Press));
            }
            o
        }
    }
}

#[cfg(test)]
mod tests;
