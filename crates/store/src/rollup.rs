//! Partial aggregates: what hourly and daily rollups hold, and how they merge.

/// count, sum, min, max, first and last of the points of a period. Two
/// partials of disjoint periods merge into the partial of their union.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partial {
    /// Number of points.
    pub count: u64,
    /// Sum of their values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Time (µs) and value of the earliest point.
    pub first: (i64, f64),
    /// Time (µs) and value of the latest point.
    pub last: (i64, f64),
}

impl Partial {
    /// The partial of one point.
    pub fn of(time: i64, value: f64) -> Partial {
        Partial {
            count: 1,
            sum: value,
            min: value,
            max: value,
            first: (time, value),
            last: (time, value),
        }
    }

    /// Adds a point.
    pub fn add(&mut self, time: i64, value: f64) {
        self.merge(&Partial::of(time, value));
    }

    /// Merges the partial of another period.
    pub fn merge(&mut self, other: &Partial) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.first.0 < self.first.0 {
            self.first = other.first;
        }
        if other.last.0 >= self.last.0 {
            self.last = other.last;
        }
    }

    /// Merges into an optional partial.
    pub fn merge_into(slot: &mut Option<Partial>, other: &Partial) {
        match slot {
            Some(p) => p.merge(other),
            None => *slot = Some(*other),
        }
    }

    /// The value of an aggregate function over the period.
    pub fn get(&self, function: Function) -> f64 {
        match function {
            Function::Mean => self.sum / self.count as f64,
            Function::Min => self.min,
            Function::Max => self.max,
            Function::Sum => self.sum,
            Function::Count => self.count as f64,
            Function::First => self.first.1,
            Function::Last => self.last.1,
        }
    }
}

/// An aggregate function of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// Arithmetic mean of the values.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Sum of the values.
    Sum,
    /// Number of points.
    Count,
    /// Value of the earliest point.
    First,
    /// Value of the latest point.
    Last,
}

impl Function {
    /// Every function, in the API's order.
    pub const ALL: [Function; 7] = [
        Function::Mean,
        Function::Min,
        Function::Max,
        Function::Sum,
        Function::Count,
        Function::First,
        Function::Last,
    ];

    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Function::Mean => "mean",
            Function::Min => "min",
            Function::Max => "max",
            Function::Sum => "sum",
            Function::Count => "count",
            Function::First => "first",
            Function::Last => "last",
        }
    }

    /// Parses a comma-separated list (`mean,max`).
    pub fn parse_list(text: &str) -> Result<Vec<Function>, String> {
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim) {
            let f = Function::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .ok_or_else(|| {
                    format!("unknown function {name:?} (expected mean, min, max, sum, count, first or last)")
                })?;
            if !out.contains(&f) {
                out.push(f);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_partials_equals_the_partial_of_all_points() {
        let points = [(5, 2.0), (1, 7.0), (9, -1.0), (3, 4.0)];
        let mut whole = Partial::of(points[0].0, points[0].1);
        for &(t, v) in &points[1..] {
            whole.add(t, v);
        }
        let mut left = Partial::of(5, 2.0);
        left.add(1, 7.0);
        let mut right = Partial::of(9, -1.0);
        right.add(3, 4.0);
        right.merge(&left);
        assert_eq!(right, whole);
        assert_eq!(
            (whole.count, whole.sum, whole.min, whole.max),
            (4, 12.0, -1.0, 7.0)
        );
        assert_eq!((whole.first, whole.last), ((1, 7.0), (9, -1.0)));
        assert_eq!(whole.get(Function::Mean), 3.0);
    }

    #[test]
    fn function_lists_parse_and_name_the_unknown_one() {
        assert_eq!(
            Function::parse_list("mean,max,mean").unwrap(),
            [Function::Mean, Function::Max]
        );
        assert!(
            Function::parse_list("mean,avg")
                .unwrap_err()
                .contains("\"avg\"")
        );
    }
}
