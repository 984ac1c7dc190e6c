//! Self-consumption of local production, individual and collective. Pure.
//!
//! In one interval, with `solar` produced and `use` consumed (kWh):
//! `direct = min(use, solar)` is consumed as it is produced, `export =
//! solar − direct` leaves for the grid, `import = use − direct` comes from
//! it (as emoncms' MySolar app counts). Self-consumption is `direct /
//! production`; self-sufficiency is `1 − min(1, import / use)`, as Home
//! Assistant's energy dashboard counts, which is `direct / use`. Rates are
//! in [0, 1], and `None` when their denominator is 0.
//!
//! Collective self-consumption (French "autoconsommation collective")
//! splits each interval's production between consumers by a key: in
//! proportion to their consumption (the default key), equally, or by
//! static shares. No one is allocated more than they consumed; what a
//! consumer cannot take goes to the others by the same key, round after
//! round, until the production is used up or everyone is served.
//!
//! Negative values (a meter that reads a little below zero at night)
//! count as 0.

/// The flows of one interval (kWh).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Flows {
    /// Produced.
    pub production: f64,
    /// Consumed.
    pub consumption: f64,
    /// Consumed as it was produced.
    pub direct: f64,
    /// Produced and not consumed: sent to the grid.
    pub export: f64,
    /// Consumed and not produced: taken from the grid.
    pub import: f64,
}

impl Flows {
    /// The flows of an interval where `production` was produced and
    /// `consumption` consumed.
    pub fn of(production: f64, consumption: f64) -> Flows {
        let production = non_negative(production);
        let consumption = non_negative(consumption);
        let direct = production.min(consumption);
        Flows {
            production,
            consumption,
            direct,
            export: production - direct,
            import: consumption - direct,
        }
    }

    /// The flows of two periods together.
    pub fn add(&mut self, other: &Flows) {
        self.production += other.production;
        self.consumption += other.consumption;
        self.direct += other.direct;
        self.export += other.export;
        self.import += other.import;
    }

    /// `direct / production`, in [0, 1]; `None` without production.
    pub fn self_consumption(&self) -> Option<f64> {
        rate(self.direct, self.production)
    }

    /// `1 − min(1, import / consumption)`, in [0, 1]; `None` without
    /// consumption.
    pub fn self_sufficiency(&self) -> Option<f64> {
        rate(self.import, self.consumption).map(|r| 1.0 - r)
    }
}

fn non_negative(v: f64) -> f64 {
    if v > 0.0 { v } else { 0.0 }
}

/// `part / whole` held in [0, 1]; `None` when `whole` is not above 0.
pub fn rate(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| (part / whole).clamp(0.0, 1.0))
}

/// How a collective's production is split between its consumers.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// In proportion to each consumer's consumption in the interval.
    Proportional,
    /// In equal parts.
    Equal,
    /// By fixed weights, one per consumer, each ≥ 0 (they need not add up
    /// to 1: they are normalised among the consumers still served).
    Static(Vec<f64>),
}

/// Splits `production` between consumers who consumed `consumption` (one
/// value per consumer) by `key`: the energy allocated to each, never more
/// than they consumed, adding up to at most `production`. A consumer with
/// a static weight of 0 gets nothing.
pub fn allocate(production: f64, consumption: &[f64], key: &Key) -> Vec<f64> {
    let need: Vec<f64> = consumption.iter().map(|c| non_negative(*c)).collect();
    let weight = |k: usize| match key {
        Key::Proportional => need[k],
        Key::Equal => 1.0,
        Key::Static(w) => w.get(k).copied().map_or(0.0, non_negative),
    };
    let mut allocated = vec![0.0; need.len()];
    let mut left = non_negative(production);
    // Each round either serves a consumer fully or hands out all that is
    // left, so there are at most as many rounds as consumers.
    for _ in 0..=need.len() {
        let open: Vec<usize> = (0..need.len())
            .filter(|&k| allocated[k] < need[k] && weight(k) > 0.0)
            .collect();
        let total: f64 = open.iter().map(|&k| weight(k)).sum();
        if left <= 0.0 || total <= 0.0 {
            break;
        }
        let offered = left;
        for &k in &open {
            let room = need[k] - allocated[k];
            let give = (offered * weight(k) / total).min(left);
            if give >= room {
                // Served: exactly what they consumed, not a rounding above.
                allocated[k] = need[k];
                left -= room;
            } else {
                allocated[k] += give;
                left -= give;
            }
        }
        if left <= offered * 1e-12 {
            break;
        }
    }
    allocated
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flows_and_rates_of_an_interval() {
        // 3 kWh produced, 5 consumed: 3 direct, nothing exported, 2 imported.
        let f = Flows::of(3.0, 5.0);
        assert_eq!((f.direct, f.export, f.import), (3.0, 0.0, 2.0), "{f:?}");
        assert_eq!(f.self_consumption(), Some(1.0));
        assert_eq!(f.self_sufficiency(), Some(0.6));
        // 4 produced, 1 consumed: a quarter self-consumed, all covered.
        let f = Flows::of(4.0, 1.0);
        assert_eq!((f.direct, f.export, f.import), (1.0, 3.0, 0.0));
        assert_eq!(f.self_consumption(), Some(0.25));
        assert_eq!(f.self_sufficiency(), Some(1.0));
        // Nothing produced at night: no self-consumption rate at all.
        let f = Flows::of(-0.01, 2.0);
        assert_eq!((f.production, f.direct, f.import), (0.0, 0.0, 2.0));
        assert_eq!(f.self_consumption(), None);
        assert_eq!(f.self_sufficiency(), Some(0.0));
        assert_eq!(Flows::of(0.0, 0.0).self_sufficiency(), None);
        // Over two intervals, totals are summed before dividing.
        let mut day = Flows::of(3.0, 5.0);
        day.add(&Flows::of(4.0, 1.0));
        assert_eq!(
            (day.direct, day.production, day.consumption),
            (4.0, 7.0, 6.0)
        );
        assert_eq!(day.self_consumption(), Some(4.0 / 7.0));
    }

    #[test]
    fn the_default_key_splits_by_consumption() {
        // 6 kWh for consumers of 2 and 8: 1.2 and 4.8.
        let a = allocate(6.0, &[2.0, 8.0], &Key::Proportional);
        assert!(
            (a[0] - 1.2).abs() < 1e-12 && (a[1] - 4.8).abs() < 1e-12,
            "{a:?}"
        );
        // More production than consumption: everyone is served, the rest is left.
        assert_eq!(allocate(20.0, &[2.0, 8.0], &Key::Proportional), [2.0, 8.0]);
    }

    #[test]
    fn what_one_cannot_take_goes_to_the_others() {
        // Equal key, 9 kWh for 1, 5 and 10: 3 each offered; the first takes
        // 1, and the 2 it leaves are split between the others: 1, 4, 4.
        assert_eq!(
            allocate(9.0, &[1.0, 5.0, 10.0], &Key::Equal),
            [1.0, 4.0, 4.0]
        );
        // 12 kWh: 4 each; the first leaves 3, offered 1.5 to each other;
        // the second is served at 5 and leaves 0.5, which the third takes:
        // 4 + 1.5 + 0.5 = 6.
        assert_eq!(
            allocate(12.0, &[1.0, 5.0, 10.0], &Key::Equal),
            [1.0, 5.0, 6.0]
        );
        // Static shares 3:1 of 8 kWh for 2 and 10: 6 offered to the first,
        // who takes 2; the second takes 2 + 4.
        assert_eq!(
            allocate(8.0, &[2.0, 10.0], &Key::Static(vec![0.75, 0.25])),
            [2.0, 6.0]
        );
        // A weight of 0 gets nothing, even with production to spare.
        assert_eq!(
            allocate(8.0, &[2.0, 10.0], &Key::Static(vec![1.0, 0.0])),
            [2.0, 0.0]
        );
    }

    fn key() -> impl Strategy<Value = Key> {
        prop_oneof![
            Just(Key::Proportional),
            Just(Key::Equal),
            prop::collection::vec(0.0f64..1.0, 0..6).prop_map(Key::Static),
        ]
    }

    proptest! {
        #[test]
        fn flows_add_up_and_rates_stay_in_bounds(p in -1.0f64..1e4, c in -1.0f64..1e4) {
            let f = Flows::of(p, c);
            prop_assert!((f.direct + f.export - f.production).abs() <= 1e-9 * f.production.max(1.0));
            prop_assert!((f.direct + f.import - f.consumption).abs() <= 1e-9 * f.consumption.max(1.0));
            prop_assert!(f.direct >= 0.0 && f.export >= 0.0 && f.import >= 0.0);
            for r in [f.self_consumption(), f.self_sufficiency()].into_iter().flatten() {
                prop_assert!((0.0..=1.0).contains(&r));
            }
        }

        #[test]
        fn no_one_gets_more_than_they_consumed_nor_all_more_than_produced(
            p in 0.0f64..1e4,
            c in prop::collection::vec(-1.0f64..1e4, 0..6),
            key in key(),
        ) {
            let a = allocate(p, &c, &key);
            prop_assert_eq!(a.len(), c.len());
            let sum: f64 = a.iter().sum();
            prop_assert!(sum <= p * (1.0 + 1e-12) + 1e-12, "{sum} > {p}");
            for (got, consumed) in a.iter().zip(&c) {
                prop_assert!(*got >= 0.0 && *got <= consumed.max(0.0), "{got} of {consumed}");
            }
            // Whoever may receive is either served, or the production is used up.
            let weighted: Vec<usize> = (0..c.len())
                .filter(|&k| match &key {
                    Key::Static(w) => w.get(k).is_some_and(|w| *w > 0.0),
                    _ => c[k] > 0.0,
                })
                .collect();
            let unserved = weighted.iter().any(|&k| a[k] < c[k] * (1.0 - 1e-9));
            if unserved {
                prop_assert!(sum >= p * (1.0 - 1e-9), "{sum} of {p} with {a:?} for {c:?}");
            }
            // The default key gives the interval's direct energy in all.
            if key == Key::Proportional {
                let used: f64 = c.iter().map(|c| c.max(0.0)).sum();
                prop_assert!((sum - p.min(used)).abs() <= 1e-9 * p.max(1.0));
            }
        }
    }
}
