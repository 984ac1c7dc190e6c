//! Calendar arithmetic in a time zone: bucket boundaries for aggregates,
//! slots for profiles, and the time formats the API accepts. Pure.
//!
//! Buckets of a day or longer follow the local calendar, so that a daily
//! bucket in Europe/Paris spans 23 hours on the last Sunday of March and 25
//! on the last Sunday of October. Buckets shorter than a day are cut from
//! each local day, so that they start on the local clock's round times.

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan, Zoned, civil::Date};

/// µs in an hour.
pub const HOUR: i64 = 3_600_000_000;

/// The most buckets one query may ask for.
pub const MAX_BUCKETS: usize = 200_000;

/// The width of aggregate buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// A fixed number of minutes that divides a day (`PT15M`, `PT1H`…).
    Minutes(u32),
    /// `PnD`.
    Days(u32),
    /// `PnW`, weeks starting on Monday.
    Weeks(u32),
    /// `PnM`.
    Months(u32),
    /// `PnY`.
    Years(u32),
}

impl Every {
    /// Parses an ISO 8601 duration of a single unit.
    pub fn parse(text: &str) -> Result<Every, String> {
        let span: Span = text.parse().map_err(|_| {
            format!("every={text:?} is not an ISO 8601 duration (PT15M, PT1H, P1D, P1W, P1M, P1Y)")
        })?;
        let units = [
            span.get_years() as i64,
            span.get_months() as i64,
            span.get_weeks() as i64,
            span.get_days() as i64,
            span.get_hours() as i64,
            span.get_minutes(),
            span.get_seconds(),
            span.get_milliseconds(),
            span.get_microseconds(),
            span.get_nanoseconds(),
        ];
        let nonzero: Vec<usize> = (0..units.len()).filter(|&i| units[i] != 0).collect();
        let one_unit =
            || format!("every={text:?}: give one unit (PT15M, PT1H, P1D, P1W, P1M, P1Y)");
        let [unit] = nonzero[..] else {
            return Err(one_unit());
        };
        let n =
            u32::try_from(units[unit]).map_err(|_| format!("every={text:?} must be positive"))?;
        let minutes = match unit {
            0 => return Ok(Every::Years(n)),
            1 => return Ok(Every::Months(n)),
            2 => return Ok(Every::Weeks(n)),
            3 => return Ok(Every::Days(n)),
            4 => n.checked_mul(60),
            5 => Some(n),
            _ => return Err(format!("every={text:?}: the shortest bucket is a minute")),
        };
        match minutes {
            Some(m) if m > 0 && 1440 % m == 0 => Ok(Every::Minutes(m)),
            _ => Err(format!(
                "every={text:?}: a bucket shorter than a day must divide the day (PT15M, PT1H, PT6H…)"
            )),
        }
    }

    /// Whether buckets are whole local days or longer.
    pub fn is_calendar(self) -> bool {
        !matches!(self, Every::Minutes(_))
    }
}

/// A time zone by IANA name (`Europe/Paris`) or `UTC`.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!("unknown time zone {name:?} (an IANA name such as Europe/Paris, or UTC)")
    })
}

/// Parses an API time: epoch seconds (`1711839600`, `1711839600.5`) or
/// ISO 8601 with an offset (`2024-03-31T00:00:00+01:00`, `…Z`). µs.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        let micros = (seconds * 1e6).round();
        if micros.is_finite() && micros.abs() < 8.2e18 {
            return Ok(micros as i64);
        }
        return Err(format!("{text:?} is out of range"));
    }
    let ts: Timestamp = text.parse().map_err(|_| {
        format!("{text:?} is neither epoch seconds nor ISO 8601 with an offset (2024-03-31T00:00:00+01:00)")
    })?;
    Ok(ts.as_microsecond())
}

/// Formats µs as RFC 3339 in `tz` (`2024-03-31T00:00:00+01:00`).
pub fn format_time(micros: i64, tz: &TimeZone) -> String {
    match Timestamp::from_microsecond(micros) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .timestamp()
            .display_with_offset(tz.to_offset(ts))
            .to_string(),
        Err(_) => micros.to_string(),
    }
}

fn zoned(micros: i64, tz: &TimeZone) -> Result<Zoned, String> {
    Timestamp::from_microsecond(micros)
        .map(|ts| ts.to_zoned(tz.clone()))
        .map_err(|_| format!("time {micros} µs is out of range"))
}

fn start_of(date: Date, tz: &TimeZone) -> Result<i64, String> {
    date.to_zoned(tz.clone())
        .and_then(|z| z.start_of_day())
        .map(|z| z.timestamp().as_microsecond())
        .map_err(|e| format!("{date}: {e}"))
}

fn add(date: Date, span: Span) -> Result<Date, String> {
    date.checked_add(span).map_err(|e| format!("{date}: {e}"))
}

/// Boundaries of the buckets that cover `[from, to)`: `n + 1` instants (µs)
/// for `n` buckets, the first at or before `from`, the last at or after `to`.
pub fn buckets(from: i64, to: i64, every: Every, tz: &TimeZone) -> Result<Vec<i64>, String> {
    if from >= to {
        return Err("`from` must be before `to`".into());
    }
    let local = zoned(from, tz)?;
    let day = local.date();
    let (mut date, step) = match every {
        Every::Minutes(_) | Every::Days(_) => (day, 1.days()),
        Every::Weeks(n) => (
            add(
                day,
                (-i64::from(day.weekday().to_monday_zero_offset())).days(),
            )?,
            (n as i64).weeks(),
        ),
        Every::Months(n) => (day.first_of_month(), (n as i64).months()),
        Every::Years(n) => (day.first_of_year(), (n as i64).years()),
    };
    let step = match every {
        Every::Days(n) => (n as i64).days(),
        _ => step,
    };
    let mut bounds = Vec::new();
    let mut end = to;
    let mut start = start_of(date, tz)?;
    loop {
        let next_date = add(date, step)?;
        let next = start_of(next_date, tz)?;
        if let Every::Minutes(m) = every {
            // Cut the local day [start, next) into m-minute buckets; on a
            // 23-hour day the last one may be short.
            let width = i64::from(m) * 60_000_000;
            let mut b = start;
            while b < next && b < to {
                let e = (b + width).min(next);
                if e > from {
                    bounds.push(b);
                    end = e;
                }
                b = e;
            }
        } else if next > from {
            bounds.push(start);
            end = next;
        }
        if bounds.len() > MAX_BUCKETS {
            return Err(format!(
                "more than {MAX_BUCKETS} buckets: choose a longer `every` or a shorter range"
            ));
        }
        if next >= to {
            break;
        }
        date = next_date;
        start = next;
    }
    bounds.push(end);
    Ok(bounds)
}

/// The local day of `tz` that contains `time`: its start and end (µs).
pub fn day_around(time: i64, tz: &TimeZone) -> Result<(i64, i64), String> {
    let date = zoned(time, tz)?.date();
    Ok((start_of(date, tz)?, start_of(add(date, 1.days())?, tz)?))
}

/// How a profile folds time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileBy {
    /// 24 slots, 0 = midnight to 1 am, local time.
    HourOfDay,
    /// 7 slots, 0 = Monday.
    DayOfWeek,
    /// 168 slots, 0 = Monday midnight to 1 am.
    HourOfWeek,
}

impl ProfileBy {
    /// Parses the API's name.
    pub fn parse(text: &str) -> Result<ProfileBy, String> {
        match text {
            "hour-of-day" => Ok(ProfileBy::HourOfDay),
            "day-of-week" => Ok(ProfileBy::DayOfWeek),
            "hour-of-week" => Ok(ProfileBy::HourOfWeek),
            _ => Err(format!(
                "by={text:?}: expected hour-of-day, day-of-week or hour-of-week"
            )),
        }
    }

    /// The API's name.
    pub fn name(self) -> &'static str {
        match self {
            ProfileBy::HourOfDay => "hour-of-day",
            ProfileBy::DayOfWeek => "day-of-week",
            ProfileBy::HourOfWeek => "hour-of-week",
        }
    }

    /// Number of slots.
    pub fn slots(self) -> usize {
        match self {
            ProfileBy::HourOfDay => 24,
            ProfileBy::DayOfWeek => 7,
            ProfileBy::HourOfWeek => 168,
        }
    }

    /// The slot of an instant at a given UTC offset (µs).
    pub fn slot(self, micros: i64, offset: i64) -> usize {
        let hours = (micros + offset).div_euclid(HOUR);
        (match self {
            ProfileBy::HourOfDay => hours.rem_euclid(24),
            ProfileBy::DayOfWeek => (hours.div_euclid(24) + 3).rem_euclid(7),
            ProfileBy::HourOfWeek => (hours + 72).rem_euclid(168),
        }) as usize
    }
}

/// `[from, to)` cut where the UTC offset of `tz` changes: (start, end,
/// offset in µs) for each piece.
pub fn offset_intervals(from: i64, to: i64, tz: &TimeZone) -> Result<Vec<(i64, i64, i64)>, String> {
    let start =
        Timestamp::from_microsecond(from).map_err(|_| format!("time {from} µs is out of range"))?;
    let mut out = Vec::new();
    let mut a = from;
    let mut offset = i64::from(tz.to_offset(start).seconds()) * 1_000_000;
    for transition in tz.following(start) {
        let at = transition.timestamp().as_microsecond();
        if at >= to {
            break;
        }
        if at > a {
            out.push((a, at, offset));
            a = at;
        }
        offset = i64::from(transition.offset().seconds()) * 1_000_000;
    }
    out.push((a, to, offset));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> TimeZone {
        time_zone("Europe/Paris").unwrap()
    }

    fn t(text: &str) -> i64 {
        parse_time(text).unwrap()
    }

    #[test]
    fn daily_buckets_follow_daylight_saving_in_paris() {
        let tz = paris();
        let b = buckets(
            t("2024-03-30T00:00:00+01:00"),
            t("2024-04-01T00:00:00+02:00"),
            Every::Days(1),
            &tz,
        )
        .unwrap();
        let hours: Vec<i64> = b.windows(2).map(|w| (w[1] - w[0]) / HOUR).collect();
        assert_eq!(hours, [24, 23]);
        let b = buckets(
            t("2024-10-27T00:00:00+02:00"),
            t("2024-10-28T00:00:00+01:00"),
            Every::Days(1),
            &tz,
        )
        .unwrap();
        assert_eq!((b[1] - b[0]) / HOUR, 25);
        assert_eq!(format_time(b[1], &tz), "2024-10-28T00:00:00+01:00");
    }

    #[test]
    fn hourly_buckets_count_the_repeated_hour() {
        let tz = paris();
        let b = buckets(
            t("2024-10-27T00:00:00+02:00"),
            t("2024-10-28T00:00:00+01:00"),
            Every::Minutes(60),
            &tz,
        )
        .unwrap();
        assert_eq!(b.len() - 1, 25);
        let b = buckets(
            t("2024-03-31T00:00:00+01:00"),
            t("2024-04-01T00:00:00+02:00"),
            Every::Minutes(15),
            &tz,
        )
        .unwrap();
        assert_eq!(b.len() - 1, 23 * 4);
    }

    #[test]
    fn buckets_cover_the_range_and_align_on_the_calendar() {
        let tz = paris();
        // From mid-month to mid-month: three months, starting on the 1st.
        let b = buckets(
            t("2024-01-15T12:00:00Z"),
            t("2024-03-10T00:00:00Z"),
            Every::Months(1),
            &tz,
        )
        .unwrap();
        assert_eq!(
            b.iter().map(|&x| format_time(x, &tz)).collect::<Vec<_>>(),
            [
                "2024-01-01T00:00:00+01:00",
                "2024-02-01T00:00:00+01:00",
                "2024-03-01T00:00:00+01:00",
                "2024-04-01T00:00:00+02:00",
            ]
        );
        // Weeks start on Monday; 2024-01-03 is a Wednesday.
        let b = buckets(
            t("2024-01-03T00:00:00Z"),
            t("2024-01-04T00:00:00Z"),
            Every::Weeks(1),
            &TimeZone::UTC,
        )
        .unwrap();
        assert_eq!(
            format_time(b[0], &TimeZone::UTC),
            "2024-01-01T00:00:00+00:00"
        );
        let b = buckets(
            t("2024-01-01T00:10:00Z"),
            t("2024-01-01T00:40:00Z"),
            Every::Minutes(15),
            &TimeZone::UTC,
        )
        .unwrap();
        assert_eq!(
            b,
            [
                t("2024-01-01T00:00:00Z"),
                t("2024-01-01T00:15:00Z"),
                t("2024-01-01T00:30:00Z"),
                t("2024-01-01T00:45:00Z")
            ]
        );
    }

    #[test]
    fn every_accepts_one_unit_that_fits_a_day() {
        assert_eq!(Every::parse("PT15M"), Ok(Every::Minutes(15)));
        assert_eq!(Every::parse("PT1H"), Ok(Every::Minutes(60)));
        assert_eq!(Every::parse("P1W"), Ok(Every::Weeks(1)));
        assert!(
            Every::parse("PT7M").is_err()
                && Every::parse("P1DT1H").is_err()
                && Every::parse("daily").is_err()
        );
    }

    #[test]
    fn times_parse_as_epoch_seconds_or_iso_with_offset() {
        assert_eq!(t("1711839600"), 1_711_839_600_000_000);
        assert_eq!(t("2024-03-31T00:00:00+01:00"), 1_711_839_600_000_000);
        assert!(
            parse_time("2024-03-31T00:00:00").is_err(),
            "an offset is required"
        );
    }

    #[test]
    fn slots_agree_with_the_local_calendar() {
        let tz = paris();
        for text in [
            "2024-03-31T01:30:00Z",
            "2024-07-01T22:15:00Z",
            "1969-12-31T23:00:00Z",
            "2024-10-27T00:30:00Z",
        ] {
            let micros = t(text);
            let z = zoned(micros, &tz).unwrap();
            let offset = i64::from(tz.to_offset(z.timestamp()).seconds()) * 1_000_000;
            assert_eq!(
                ProfileBy::HourOfDay.slot(micros, offset),
                z.hour() as usize,
                "{text}"
            );
            assert_eq!(
                ProfileBy::DayOfWeek.slot(micros, offset),
                z.weekday().to_monday_zero_offset() as usize
            );
            assert_eq!(
                ProfileBy::HourOfWeek.slot(micros, offset),
                z.weekday().to_monday_zero_offset() as usize * 24 + z.hour() as usize
            );
        }
    }

    #[test]
    fn offset_intervals_split_at_transitions() {
        let tz = paris();
        let pieces =
            offset_intervals(t("2024-01-01T00:00:00Z"), t("2025-01-01T00:00:00Z"), &tz).unwrap();
        let offsets: Vec<i64> = pieces.iter().map(|p| p.2 / 3_600_000_000).collect();
        assert_eq!(offsets, [1, 2, 1]);
        assert_eq!(pieces[1].0, t("2024-03-31T01:00:00Z"));
        assert_eq!(pieces[2].1, t("2025-01-01T00:00:00Z"));
    }
}
