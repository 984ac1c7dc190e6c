//! Energy per calendar interval, from the partial aggregates of a power or
//! an energy stream. Pure: the store's aggregates come in, kWh go out.
//!
//! A power stream (`W`, `kW`) gives the energy of an interval as its mean
//! power times the interval's length: an interval of 25 hours (the last
//! Sunday of October in Europe/Paris) holds 25 hours of energy. An energy
//! stream (`Wh`, `kWh`) holds the energy of each reading's period: its sum.
//!
//! Mean power times length assumes the points cover the interval. Callers
//! that want coarse intervals (days, months) integrate fine ones (hours)
//! and add them up with [`regroup`], so that a day with six hours of data
//! counts those six hours, not a day at their mean.

use crate::rollup::Partial;

/// What a stream measures, for energy: power or energy, with the factor
/// that brings its unit to kW or kWh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantity {
    /// Power; the factor to kW (`W`: 0.001).
    Power(f64),
    /// Energy; the factor to kWh (`Wh`: 0.001).
    Energy(f64),
}

impl Quantity {
    /// The quantity of a stream of `unit`; an error naming the units that
    /// are understood otherwise.
    pub fn of_unit(unit: Option<&str>) -> Result<Quantity, String> {
        match unit {
            Some("W") => Ok(Quantity::Power(0.001)),
            Some("kW") => Ok(Quantity::Power(1.0)),
            Some("MW") => Ok(Quantity::Power(1000.0)),
            Some("Wh") => Ok(Quantity::Energy(0.001)),
            Some("kWh") => Ok(Quantity::Energy(1.0)),
            Some("MWh") => Ok(Quantity::Energy(1000.0)),
            // RFC 8428's unit for energy is the joule.
            Some("J") => Ok(Quantity::Energy(1.0 / 3.6e6)),
            Some(other) => Err(format!(
                "unit {other:?} is neither power (W, kW, MW) nor energy (Wh, kWh, MWh, J)"
            )),
            None => {
                Err("the stream has no unit: power (W, kW) or energy (Wh, kWh) is needed".into())
            }
        }
    }

    /// The energy (kWh) of `[start, end)` (µs) whose points aggregate to
    /// `partial`; `None` for an interval without points.
    pub fn kwh(self, partial: Option<&Partial>, start: i64, end: i64) -> Option<f64> {
        let p = partial.filter(|p| p.count > 0)?;
        Some(match self {
            Quantity::Power(to_kw) => {
                let hours = (end - start) as f64 / 3.6e9;
                p.sum / p.count as f64 * to_kw * hours
            }
            Quantity::Energy(to_kwh) => p.sum * to_kwh,
        })
    }

    /// The energy (kWh) of each interval between `bounds` (`n + 1`
    /// instants for `n` intervals), one partial per interval.
    pub fn series(self, bounds: &[i64], partials: &[Option<Partial>]) -> Vec<Option<f64>> {
        bounds
            .windows(2)
            .zip(partials)
            .map(|(w, p)| self.kwh(p.as_ref(), w[0], w[1]))
            .collect()
    }
}

/// Adds up the values of fine intervals (between `fine`, `n + 1` bounds for
/// `n` values) into the coarse intervals between `coarse`. A fine interval
/// counts in the coarse interval where it starts; one that starts outside
/// every coarse interval counts nowhere. A coarse interval without a value
/// among its fine ones is `None`.
pub fn regroup(fine: &[i64], values: &[Option<f64>], coarse: &[i64]) -> Vec<Option<f64>> {
    let n = coarse.len().saturating_sub(1);
    let mut out = vec![None; n];
    let mut at = 0;
    for (start, value) in fine.iter().zip(values) {
        while at < n && *start >= coarse[at + 1] {
            at += 1;
        }
        if at == n {
            break;
        }
        if *start < coarse[at] {
            continue;
        }
        if let Some(v) = value {
            *out[at].get_or_insert(0.0) += v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    fn partial(values: &[f64]) -> Partial {
        let mut p = Partial::of(0, values[0]);
        for (i, v) in values.iter().enumerate().skip(1) {
            p.add(i as i64, *v);
        }
        p
    }

    #[test]
    fn power_is_mean_times_length_and_energy_is_summed() {
        // 1000 W and 3000 W over two hours: a mean of 2 kW, 4 kWh.
        let p = partial(&[1000.0, 3000.0]);
        let w = Quantity::of_unit(Some("W")).unwrap();
        assert_eq!(w.kwh(Some(&p), 0, 2 * HOUR), Some(4.0));
        // The same mean over a 25-hour day: 50 kWh, not 48.
        assert_eq!(w.kwh(Some(&p), 0, 25 * HOUR), Some(50.0));
        // Readings of 250 Wh and 750 Wh: 1 kWh whatever the length.
        let wh = Quantity::of_unit(Some("Wh")).unwrap();
        assert_eq!(wh.kwh(Some(&partial(&[250.0, 750.0])), 0, HOUR), Some(1.0));
        let kwh = Quantity::of_unit(Some("kWh")).unwrap();
        assert_eq!(kwh.kwh(Some(&partial(&[1.5])), 0, HOUR), Some(1.5));
        assert_eq!(w.kwh(None, 0, HOUR), None);
        assert!(Quantity::of_unit(Some("Cel")).unwrap_err().contains("Cel"));
        assert!(Quantity::of_unit(None).is_err());
    }

    #[test]
    fn fine_intervals_add_up_into_the_coarse_interval_they_start_in() {
        let fine = [0, 1, 2, 3, 4, 5];
        let values = [Some(1.0), None, Some(2.0), None, None];
        // Coarse [0,2) [2,4) [4,5): 1, 2, and nothing.
        assert_eq!(
            regroup(&fine, &values, &[0, 2, 4, 5]),
            [Some(1.0), Some(2.0), None]
        );
        // Fine intervals before and after the coarse range count nowhere.
        assert_eq!(regroup(&fine, &values, &[1, 3]), [Some(2.0)]);
    }
}
