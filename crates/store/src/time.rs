//! [`Time`], an instant to the microsecond: what the store's API takes
//! where it used to take bare `i64` microseconds or `f64` seconds.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::Serialize;

/// An instant, in microseconds since the Unix epoch (UTC): the resolution
/// of SenML records as resolved and of everything the store keeps.
///
/// ```
/// use std::time::Duration;
/// use store::Time;
///
/// let t = Time::from_secs_f64(1_711_839_600.5);
/// assert_eq!(t.as_micros(), 1_711_839_600_500_000);
/// assert_eq!(t.to_string(), "2024-03-30T23:00:00.5+00:00");
/// assert_eq!((t + Duration::from_secs(3600)).as_secs_f64(), 1_711_843_200.5);
/// assert_eq!("2024-03-31T00:00:00.5+01:00".parse::<Time>(), Ok(t));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Time(i64);

impl Time {
    /// The earliest instant, before any point.
    pub const MIN: Time = Time(i64::MIN);
    /// The latest instant, after any point.
    pub const MAX: Time = Time(i64::MAX);

    /// The instant `micros` µs after the epoch.
    pub const fn from_micros(micros: i64) -> Time {
        Time(micros)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The instant `secs` seconds after the epoch, to the nearest µs
    /// (SenML's times are seconds); saturates beyond ±292,000 years, and
    /// NaN is the epoch.
    pub fn from_secs_f64(secs: f64) -> Time {
        Time((secs * 1e6).round() as i64)
    }

    /// Seconds since the epoch (exact to the µs until 2^53 µs, the year 2255).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Now, from the system clock.
    pub fn now() -> Time {
        Time(jiff::Timestamp::now().as_microsecond())
    }
}

/// Saturating: a time plus a duration that would overflow is [`Time::MAX`].
impl Add<Duration> for Time {
    type Output = Time;

    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(micros_of(d)))
    }
}

/// Saturating: a time minus a duration that would overflow is [`Time::MIN`].
impl Sub<Duration> for Time {
    type Output = Time;

    fn sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(micros_of(d)))
    }
}

fn micros_of(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// RFC 3339 in UTC, as the API writes times (`2024-03-30T23:00:00+00:00`, with as many decimals as it
/// takes); the bare µs beyond the years 9999.
impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::format_time(self.0, &jiff::tz::TimeZone::UTC))
    }
}

/// An API time: epoch seconds or RFC 3339 with an offset, as
/// [`parse_time`](crate::parse_time) reads them.
impl std::str::FromStr for Time {
    type Err = String;

    fn from_str(text: &str) -> Result<Time, String> {
        crate::parse_time(text).map(Time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_to_the_nearest_microsecond_and_back() {
        assert_eq!(Time::from_secs_f64(1.000_000_4).as_micros(), 1_000_000);
        assert_eq!(Time::from_secs_f64(-1.5).as_micros(), -1_500_000);
        assert_eq!(Time::from_micros(-1_500_000).as_secs_f64(), -1.5);
        assert_eq!(Time::from_secs_f64(f64::INFINITY), Time::MAX);
    }

    #[test]
    fn durations_saturate_instead_of_wrapping() {
        let t = Time::from_micros(10);
        assert_eq!(t + Duration::from_micros(5), Time::from_micros(15));
        assert_eq!(t - Duration::from_micros(15), Time::from_micros(-5));
        assert_eq!(Time::MAX + Duration::from_secs(1), Time::MAX);
        assert_eq!(Time::MIN - Duration::MAX, Time::MIN);
    }

    #[test]
    fn it_shows_as_rfc_3339_in_utc_and_reads_back() {
        let t = Time::from_micros(1_704_067_200_000_000);
        assert_eq!(t.to_string(), "2024-01-01T00:00:00+00:00");
        assert_eq!("1704067200".parse::<Time>(), Ok(t));
        assert_eq!(t.to_string().parse::<Time>(), Ok(t));
        assert!("yesterday".parse::<Time>().is_err());
        assert!(Time::now() > t);
    }
}
