//! Energy per interval of a stream (kWh), read from the store's aggregates
//! and integrated by `store`'s pure `energy` module.
//!
//! Half-hours and hours are integrated as they are; days and months are the
//! sums of their hours, so that a day with data for part of it counts that
//! part, and a day of 23 or 25 hours counts as many hours.

use axum::http::StatusCode;
use store::{Every, Quantity, Store, Time, TimeZone, buckets, regroup};

use crate::Problem;

/// The interval of a self-consumption or a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    HalfHour,
    Hour,
    Day,
    Month,
}

impl Step {
    /// `30m`, `hour`, `day` or `month`.
    pub(crate) fn parse(text: &str) -> Result<Step, Problem> {
        match text {
            "30m" => Ok(Step::HalfHour),
            "hour" => Ok(Step::Hour),
            "day" => Ok(Step::Day),
            "month" => Ok(Step::Month),
            other => Err(Problem::bad_field(
                "step",
                format!("step={other:?}: give 30m, hour, day or month"),
            )),
        }
    }

    /// Its name in the API.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::HalfHour => "30m",
            Step::Hour => "hour",
            Step::Day => "day",
            Step::Month => "month",
        }
    }

    /// The step for a range, when none is given: half-hours up to a week,
    /// days up to about a year, months beyond.
    pub(crate) fn default_for(from: Time, to: Time) -> Step {
        let days = (to.as_micros() - from.as_micros()) as f64 / 86_400e6;
        if days <= 7.0 {
            Step::HalfHour
        } else if days <= 400.0 {
            Step::Day
        } else {
            Step::Month
        }
    }

    /// The step at which flows are computed for an answer by `self`:
    /// half-hours for half-hours, hours (the store's rollups) otherwise.
    pub(crate) fn finest(self) -> Step {
        match self {
            Step::HalfHour => Step::HalfHour,
            _ => Step::Hour,
        }
    }

    fn every(self) -> Every {
        match self {
            Step::HalfHour => Every::Minutes(30),
            Step::Hour => Every::Minutes(60),
            Step::Day => Every::Days(1),
            Step::Month => Every::Months(1),
        }
    }
}

/// The energy of a stream per interval.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// `n + 1` bounds (µs) of the `n` intervals.
    pub bounds: Vec<i64>,
    /// kWh per interval; `None` for an interval without data.
    pub kwh: Vec<Option<f64>>,
}

/// The energy of stream `name` (named by the query parameter `field`) per
/// `step` of `tz` over `[from, to)`: 404 for an unknown stream, 400 naming
/// `field` for a stream of neither power nor energy.
pub(crate) fn energy(
    store: &Store,
    field: &str,
    name: &str,
    from: Time,
    to: Time,
    step: Step,
    tz: &TimeZone,
) -> Result<Series, Problem> {
    let info = store
        .stream(name)?
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no stream named {name:?}")))?;
    let quantity = Quantity::of_unit(info.unit.as_deref())
        .map_err(|e| Problem::bad_field(field, format!("{field}={name}: {e}")))?;
    let fine = if step == Step::HalfHour {
        Step::HalfHour
    } else {
        Step::Hour
    };
    let names = [name.to_owned()];
    let aggregate = store.aggregate(&names, from, to, fine.every(), tz)?;
    let partials = aggregate
        .series
        .first()
        .map(|(_, p)| p.as_slice())
        .unwrap_or_default();
    let kwh = quantity.series(&aggregate.bounds, partials);
    if step == fine {
        return Ok(Series {
            bounds: aggregate.bounds,
            kwh,
        });
    }
    let coarse = bounds(from, to, step, tz)?;
    Ok(Series {
        kwh: regroup(&aggregate.bounds, &kwh, &coarse),
        bounds: coarse,
    })
}

/// The bounds of the `step` intervals of `tz` covering `[from, to)`.
pub(crate) fn bounds(from: Time, to: Time, step: Step, tz: &TimeZone) -> Result<Vec<i64>, Problem> {
    buckets(from.as_micros(), to.as_micros(), step.every(), tz).map_err(Problem::bad_request)
}
