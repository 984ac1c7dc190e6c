//! What the node decides for a piloted equipment that has no plan (none
//! yet, or past its end): from the off-peak windows of its site and the
//! signals it was given (the five-level local signal, RTE Ecowatt, EDF
//! Tempo). A plan, when there is one, always comes first.
//!
//! - A moment is **favourable** in an off-peak window of the site, or when
//!   the local signal says surplus (`+`, `++`).
//! - The grid is on **alert** when the local signal says `--` or Ecowatt
//!   says 3 (red) for this hour: short moments, when every load that can
//!   wait should.
//! - A Tempo red day is **dear** outside the off-peak windows.
//!
//! What each load does with that ([`fallback`]):
//! - a water heater heats when favourable, not on alert nor dear; with no
//!   window and no signal, it is kept on, as before;
//! - a heater is kept on, except on alert (comfort first: a red Tempo day
//!   lasts 16 hours);
//! - a car charges when favourable, not on alert nor dear (its deadline
//!   still forces it);
//! - a machine waiting in stand-by is launched at a favourable moment, not
//!   on alert nor dear (or at its deadline).
//!
//! Pure: the control loop gives the time and the site's windows, at each
//! of its ticks (every second at least), so that a window's start or a
//! signal's end takes effect within a second.

use jiff::Timestamp;
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;

use crate::model::{EquipmentKind, Load, SignalLevel, TempoColour};
use crate::stimulation::{Ask, HOUR, Stimulation};
use crate::{Error, Result};

/// The signals given to the node, each over its own time span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// `(from, until, level)`, in the order received: the last that covers
    /// a moment holds.
    local: Vec<(i64, i64, SignalLevel)>,
    /// `(hour start, level)`: the last given for an hour holds.
    ecowatt: Vec<(i64, u8)>,
    /// `(from, until, colour)`.
    tempo: Vec<(i64, i64, TempoColour)>,
}

impl Signals {
    /// Takes the signal a stimulation gives; `false` if it gives none.
    pub fn take(&mut self, s: &Stimulation) -> bool {
        match &s.ask {
            Ask::Signal(level) => self.local.push((s.from, s.until, *level)),
            Ask::Ecowatt(levels) => {
                let hours = (0..).map(|h| s.from + h * HOUR);
                let new: Vec<(i64, u8)> = hours.zip(levels.iter().copied()).collect();
                self.ecowatt
                    .retain(|(hour, _)| !new.iter().any(|(h, _)| h == hour));
                self.ecowatt.extend(new);
            }
            Ask::Tempo(colour) => self.tempo.push((s.from, s.until, *colour)),
            Ask::Shed(_) | Ask::ConsumeNow(_) => return false,
        }
        true
    }

    /// Forgets what ended before `now`.
    pub fn prune(&mut self, now: i64) {
        self.local.retain(|(_, until, _)| *until > now);
        self.ecowatt.retain(|(hour, _)| hour + HOUR > now);
        self.tempo.retain(|(_, until, _)| *until > now);
    }

    /// The local signal's level at `now`, if one was given for it.
    pub fn local(&self, now: i64) -> Option<SignalLevel> {
        self.local
            .iter()
            .rev()
            .find(|(from, until, _)| (*from..*until).contains(&now))
            .map(|(_, _, level)| *level)
    }

    /// Ecowatt's level for the hour of `now`.
    pub fn ecowatt(&self, now: i64) -> Option<u8> {
        self.ecowatt
            .iter()
            .find(|(hour, _)| (*hour..hour + HOUR).contains(&now))
            .map(|(_, level)| *level)
    }

    /// The Tempo day's colour at `now`.
    pub fn tempo(&self, now: i64) -> Option<TempoColour> {
        self.tempo
            .iter()
            .rev()
            .find(|(from, until, _)| (*from..*until).contains(&now))
            .map(|(_, _, colour)| *colour)
    }
}

/// A site's off-peak windows, in its local time, per weekday.
#[derive(Debug, Clone, PartialEq)]
pub struct OffPeak {
    /// `(days, start, end)`: a window that ends before it starts runs past
    /// midnight, and belongs to the day it starts on.
    windows: Vec<([bool; 7], Time, Time)>,
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn day_index(name: &str) -> Option<usize> {
    DAYS.iter().position(|(n, _)| *n == name)
}

fn time_of(text: &str, window: &str) -> Result<Time> {
    if text == "24:00" {
        return Ok(Time::MAX);
    }
    let (h, m) = text.split_once(':').unwrap_or(("", ""));
    match (
        h.len() == 2 && m.len() == 2,
        h.parse::<i8>(),
        m.parse::<i8>(),
    ) {
        (true, Ok(h), Ok(m)) => Time::new(h, m, 0, 0).map_err(|_| {
            Error::Invalid(format!(
                "off-peak window {window:?}: {text} is not a time of day"
            ))
        }),
        _ => Err(Error::Invalid(format!(
            "off-peak window {window:?}: {text:?} is not HH:MM"
        ))),
    }
}

impl OffPeak {
    /// Reads windows written `22:00-06:00` (every day), `mon-fri
    /// 22:00-06:00`, `sat,sun 00:00-24:00`; an error names the window and
    /// what is wrong in it.
    pub fn parse(windows: &[String]) -> Result<OffPeak> {
        let mut parsed = Vec::new();
        for window in windows {
            let (days, times) = match window.trim().split_once(' ') {
                Some((days, times)) => (Some(days), times.trim()),
                None => (None, window.trim()),
            };
            let mut on = [days.is_none(); 7];
            for part in days.into_iter().flat_map(|d| d.split(',')) {
                let bad = || {
                    Error::Invalid(format!(
                        "off-peak window {window:?}: {part:?} is not a day (mon…sun) or a range of days (mon-fri)"
                    ))
                };
                match part.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (day_index(a).ok_or_else(bad)?, day_index(b).ok_or_else(bad)?);
                        let mut d = a;
                        loop {
                            on[d] = true;
                            if d == b {
                                break;
                            }
                            d = (d + 1) % 7;
                        }
                    }
                    None => on[day_index(part).ok_or_else(bad)?] = true,
                }
            }
            let Some((start, end)) = times.split_once('-') else {
                return Err(Error::Invalid(format!(
                    "off-peak window {window:?}: expected [DAYS] HH:MM-HH:MM"
                )));
            };
            let (start, end) = (time_of(start, window)?, time_of(end, window)?);
            if start == end {
                return Err(Error::Invalid(format!(
                    "off-peak window {window:?}: it starts and ends at the same time"
                )));
            }
            parsed.push((on, start, end));
        }
        Ok(OffPeak { windows: parsed })
    }

    /// Whether `now` is in a window, in time zone `tz`.
    pub fn contains(&self, now: i64, tz: &TimeZone) -> bool {
        let Ok(at) = Timestamp::from_microsecond(now) else {
            return false;
        };
        let local = at.to_zoned(tz.clone());
        let (time, today) = (
            local.time(),
            local.weekday().to_monday_zero_offset() as usize,
        );
        let yesterday = (today + 6) % 7;
        self.windows.iter().any(|(days, start, end)| {
            if start < end {
                days[today] && (*start..*end).contains(&time)
            } else {
                // Past midnight: this evening's, or last evening's.
                (days[today] && time >= *start) || (days[yesterday] && time < *end)
            }
        })
    }
}

/// What the windows and the signals say of a moment, for a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outlook {
    /// A good moment to consume (`None`: nothing says either way).
    pub favourable: Option<bool>,
    /// The grid is on alert (local `--`, Ecowatt red).
    pub alert: bool,
    /// A Tempo red day, outside the off-peak windows.
    pub dear: bool,
}

/// The outlook at `now` for a site with `off_peak` windows.
pub fn outlook(signals: &Signals, off_peak: Option<&OffPeak>, now: i64, tz: &TimeZone) -> Outlook {
    let local = signals.local(now);
    let in_off_peak = off_peak.map(|w| w.contains(now, tz));
    let favourable = match (local, in_off_peak) {
        (Some(SignalLevel::High | SignalLevel::VeryHigh), _) => Some(true),
        (_, Some(inside)) => Some(inside),
        _ => None,
    };
    Outlook {
        favourable,
        alert: local == Some(SignalLevel::VeryLow) || signals.ecowatt(now) == Some(3),
        dear: signals.tempo(now) == Some(TempoColour::Red) && in_off_peak != Some(true),
    }
}

/// What a piloted equipment of `kind` with no plan does under `outlook`:
/// on, off, or `None` for its default (a continuous load kept on, a
/// machine or a car waiting).
pub fn fallback(kind: EquipmentKind, outlook: Outlook) -> Option<bool> {
    let held_back = outlook.alert || outlook.dear;
    match kind.load() {
        Load::Continuous if kind == EquipmentKind::Heater => outlook.alert.then_some(false),
        Load::Continuous | Load::Charge => {
            if held_back {
                Some(false)
            } else {
                outlook.favourable
            }
        }
        Load::OneShot => (outlook.favourable == Some(true) && !held_back).then_some(true),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_microsecond()
    }

    fn stimulation(value: serde_json::Value) -> Stimulation {
        Stimulation::from_json(&value, at("2026-11-23T00:00:00Z")).unwrap()
    }

    #[test]
    fn off_peak_windows_follow_local_days_and_run_past_midnight() {
        let w =
            OffPeak::parse(&["mon-fri 22:00-06:00".into(), "sat,sun 00:00-24:00".into()]).unwrap();
        let tz = paris();
        // Monday 23 November 2026, Paris is UTC+1.
        assert!(!w.contains(at("2026-11-23T12:00:00Z"), &tz));
        assert!(w.contains(at("2026-11-23T21:30:00Z"), &tz), "22:30 Monday");
        assert!(w.contains(at("2026-11-24T04:59:00Z"), &tz), "05:59 Tuesday");
        assert!(
            !w.contains(at("2026-11-24T05:00:00Z"), &tz),
            "06:00 Tuesday"
        );
        // Friday night runs into Saturday, which is off-peak all day.
        assert!(w.contains(at("2026-11-28T12:00:00Z"), &tz));
        // Sunday 23:30: Sunday's window; Monday 05:00: Sunday's ended, and
        // no window started Sunday evening.
        assert!(w.contains(at("2026-11-29T22:30:00Z"), &tz));
        assert!(!w.contains(at("2026-11-30T04:00:00Z"), &tz));
        let every_day = OffPeak::parse(&["12:30-14:00".into()]).unwrap();
        assert!(every_day.contains(at("2026-11-25T12:00:00Z"), &tz));
    }

    #[test]
    fn malformed_windows_are_refused_by_name() {
        let refuse = |w: &str| OffPeak::parse(&[w.into()]).unwrap_err().to_string();
        assert_eq!(
            refuse("mon-fry 22:00-06:00"),
            "off-peak window \"mon-fry 22:00-06:00\": \"mon-fry\" is not a day (mon…sun) or a range of days (mon-fri)"
        );
        assert_eq!(
            refuse("22:00"),
            "off-peak window \"22:00\": expected [DAYS] HH:MM-HH:MM"
        );
        assert_eq!(
            refuse("22:00-6:00"),
            "off-peak window \"22:00-6:00\": \"6:00\" is not HH:MM"
        );
        assert_eq!(
            refuse("25:00-06:00"),
            "off-peak window \"25:00-06:00\": 25:00 is not a time of day"
        );
        assert_eq!(
            refuse("06:00-06:00"),
            "off-peak window \"06:00-06:00\": it starts and ends at the same time"
        );
    }

    #[test]
    fn signals_hold_over_their_span_the_last_given_winning() {
        let mut s = Signals::default();
        assert!(s.take(&stimulation(
            json!({"kind": "signal", "level": "+", "from": 1_795_400_000, "until": 1_795_410_000})
        )));
        assert!(s.take(&stimulation(
            json!({"kind": "signal", "level": "--", "from": 1_795_405_000, "until": 1_795_406_000})
        )));
        let t = |s: i64| s * 1_000_000;
        assert_eq!(s.local(t(1_795_401_000)), Some(SignalLevel::High));
        assert_eq!(s.local(t(1_795_405_500)), Some(SignalLevel::VeryLow));
        assert_eq!(s.local(t(1_795_410_000)), None);
        assert!(s.take(&stimulation(
            json!({"kind": "ecowatt", "from": 1_795_402_800, "levels": [1, 3]})
        )));
        assert!(s.take(&stimulation(
            json!({"kind": "ecowatt", "from": 1_795_406_400, "levels": [2]})
        )));
        assert_eq!(s.ecowatt(t(1_795_402_800)), Some(1));
        assert_eq!(
            s.ecowatt(t(1_795_406_400)),
            Some(2),
            "the later forecast wins"
        );
        s.prune(t(1_795_410_001));
        assert_eq!(s, Signals::default());
        assert!(!s.take(&stimulation(
            json!({"kind": "shed", "group": "g", "until": 1_795_420_000})
        )));
    }

    #[test]
    fn each_load_does_what_the_outlook_allows() {
        use EquipmentKind::{Dishwasher, ElectricVehicle, Heater, WaterHeater};
        let nothing = Outlook::default();
        let cheap = Outlook {
            favourable: Some(true),
            ..nothing
        };
        let peak = Outlook {
            favourable: Some(false),
            ..nothing
        };
        let alert = Outlook {
            alert: true,
            ..cheap
        };
        let dear = Outlook { dear: true, ..peak };
        for (kind, expected) in [
            (
                WaterHeater,
                [None, Some(true), Some(false), Some(false), Some(false)],
            ),
            (Heater, [None, None, None, Some(false), None]),
            (
                ElectricVehicle,
                [None, Some(true), Some(false), Some(false), Some(false)],
            ),
            (Dishwasher, [None, Some(true), None, None, None]),
        ] {
            let got = [nothing, cheap, peak, alert, dear].map(|o| fallback(kind, o));
            assert_eq!(got, expected, "{kind}");
        }
        // Surplus beats a peak hour; a red Tempo day is not dear off-peak.
        let mut signals = Signals::default();
        signals.take(&stimulation(
            json!({"kind": "tempo", "colour": "red", "from": 1_795_392_000, "until": 1_795_478_400}),
        ));
        let windows = OffPeak::parse(&["22:00-06:00".into()]).unwrap();
        let tz = paris();
        let noon = outlook(&signals, Some(&windows), at("2026-11-23T11:00:00Z"), &tz);
        assert_eq!((noon.favourable, noon.dear), (Some(false), true));
        let night = outlook(&signals, Some(&windows), at("2026-11-23T22:00:00Z"), &tz);
        assert_eq!((night.favourable, night.dear), (Some(true), false));
    }
}
