//! Horodates: a season letter and `YYMMDDhhmmss`, in the meter's legal
//! time, turned into UTC by the offset the season letter gives.

use std::fmt;

use crate::Reason;

/// The season a horodate's letter names, which is its UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Season {
    /// `E` (été): summer time, UTC+02:00.
    Summer,
    /// `H` (hiver): winter time, UTC+01:00.
    Winter,
}

impl Season {
    /// The offset from UTC, in seconds: 7,200 in summer, 3,600 in winter.
    pub fn utc_offset_seconds(self) -> i32 {
        match self {
            Season::Summer => 7_200,
            Season::Winter => 3_600,
        }
    }
}

/// A meter's date and time, as its horodate says them.
///
/// The season letter gives the offset, so [`Horodate::unix_seconds`] needs
/// no time-zone database: `E` is +02:00, `H` is +01:00. A lower-case letter
/// means the meter's clock is degraded (not synchronised); the horodate is
/// then kept, with [`Horodate::degraded`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Horodate {
    /// Summer or winter time.
    pub season: Season,
    /// The letter was lower case: the meter's clock is not synchronised.
    pub degraded: bool,
    /// The year, 2000 to 2099.
    pub year: u16,
    /// 1 to 12.
    pub month: u8,
    /// 1 to the month's length.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
    /// 0 to 59.
    pub second: u8,
}

impl Horodate {
    /// Reads `SYYMMDDhhmmss` (13 bytes; S is `E`, `H`, `e` or `h`).
    pub fn parse(text: &[u8]) -> Result<Horodate, Reason> {
        let bad = |why| Reason::Horodate {
            found: String::from_utf8_lossy(text).into_owned(),
            why,
        };
        let [letter, digits @ ..] = text else {
            return Err(bad("empty"));
        };
        let (season, degraded) = match letter {
            b'E' => (Season::Summer, false),
            b'H' => (Season::Winter, false),
            b'e' => (Season::Summer, true),
            b'h' => (Season::Winter, true),
            _ => return Err(bad("the season letter is not E, H, e or h")),
        };
        if digits.len() != 12 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad("not 12 digits YYMMDDhhmmss after the season letter"));
        }
        let two = |i: usize| (digits[i] - b'0') * 10 + (digits[i + 1] - b'0');
        let h = Horodate {
            season,
            degraded,
            year: 2000 + u16::from(two(0)),
            month: two(2),
            day: two(4),
            hour: two(6),
            minute: two(8),
            second: two(10),
        };
        if !(1..=12).contains(&h.month) {
            return Err(bad("month not in 01-12"));
        }
        if h.day < 1 || h.day > days_in_month(h.year, h.month) {
            return Err(bad("no such day in that month"));
        }
        if h.hour > 23 || h.minute > 59 || h.second > 59 {
            return Err(bad("time not in 00:00:00-23:59:59"));
        }
        Ok(h)
    }

    /// The offset from UTC, in seconds, that the season letter gives.
    pub fn utc_offset_seconds(&self) -> i32 {
        self.season.utc_offset_seconds()
    }

    /// The instant, in seconds since 1970-01-01T00:00:00Z.
    pub fn unix_seconds(&self) -> i64 {
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.utc_offset_seconds())
    }

    /// The instant in microseconds since the epoch, fedwatt's time unit.
    pub fn unix_micros(&self) -> i64 {
        self.unix_seconds() * 1_000_000
    }

    /// Writes the horodate as the meter does (13 bytes).
    pub fn write(&self, out: &mut Vec<u8>) {
        let letter = match (self.season, self.degraded) {
            (Season::Summer, false) => b'E',
            (Season::Winter, false) => b'H',
            (Season::Summer, true) => b'e',
            (Season::Winter, true) => b'h',
        };
        out.push(letter);
        let year = (self.year % 100) as u8;
        for n in [
            year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        ] {
            out.push(b'0' + n / 10 % 10);
            out.push(b'0' + n % 10);
        }
    }
}

/// RFC 3339 with the season's offset, e.g. `2024-10-27T02:30:00+02:00`.
impl fmt::Display for Horodate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = match self.season {
            Season::Summer => "+02:00",
            Season::Winter => "+01:00",
        };
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{offset}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn is_leap(year: u16) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_season_letter_gives_the_offset() {
        // 2024-07-01 12:00 summer time is 10:00 UTC.
        let summer = Horodate::parse(b"E240701120000").unwrap();
        assert_eq!(summer.unix_seconds(), 1_719_828_000);
        assert_eq!(summer.to_string(), "2024-07-01T12:00:00+02:00");
        // 2024-01-01 00:00 winter time is 2023-12-31 23:00 UTC.
        let winter = Horodate::parse(b"H240101000000").unwrap();
        assert_eq!(winter.unix_seconds(), 1_704_063_600);
        assert!(!winter.degraded);
    }

    #[test]
    fn lower_case_marks_a_degraded_clock() {
        let h = Horodate::parse(b"h240229235959").unwrap();
        assert!(h.degraded);
        assert_eq!(h.season, Season::Winter);
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(out, b"h240229235959");
    }

    #[test]
    fn the_repeated_hour_of_october_is_told_apart_by_the_letter() {
        // On 2024-10-27, 02:30 happens twice: first in summer time, then
        // an hour later in winter time.
        let first = Horodate::parse(b"E241027023000").unwrap();
        let second = Horodate::parse(b"H241027023000").unwrap();
        assert_eq!(second.unix_seconds() - first.unix_seconds(), 3_600);
    }

    #[test]
    fn impossible_dates_are_refused_with_the_reason() {
        for (text, why) in [
            (&b"X240101000000"[..], "season"),
            (b"E2401010000", "12 digits"),
            (b"E24010100000a", "12 digits"),
            (b"E241301000000", "month"),
            (b"E230229000000", "day"),
            (b"E240431000000", "day"),
            (b"E240101240000", "time"),
            (b"E240101006000", "time"),
            (b"", "empty"),
        ] {
            match Horodate::parse(text) {
                Err(Reason::Horodate { why: said, .. }) => {
                    assert!(said.contains(why), "{text:?}: {said}")
                }
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }
}
