//! Prometheus metrics, kept in atomics and rendered in the text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The node's counters.
#[derive(Default)]
pub struct Metrics {
    ingested: AtomicU64,
    refused: Mutex<BTreeMap<String, u64>>,
    latencies: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    /// Records stored.
    pub fn ingested(&self, records: u64) {
        self.ingested.fetch_add(records, Ordering::Relaxed);
    }

    /// Records refused, by reason.
    pub fn refused(&self, reason: &str, records: u64) {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        *refused.entry(reason.to_owned()).or_default() += records;
    }

    /// One request answered.
    pub fn request(&self, route: &str, method: &str, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut latencies = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        let h = latencies
            .entry((route.to_owned(), method.to_owned()))
            .or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        node::describe_metric(
            &mut out,
            "fedwatt_ingested_records_total",
            "counter",
            "Records stored.",
        );
        let _ = writeln!(
            out,
            "fedwatt_ingested_records_total {}",
            self.ingested.load(Ordering::Relaxed)
        );
        node::describe_metric(
            &mut out,
            "fedwatt_refused_records_total",
            "counter",
            "Records of refused packs, by the reason the pack was refused.",
        );
        for (reason, n) in self
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "fedwatt_refused_records_total{{reason=\"{reason}\"}} {n}"
            );
        }
        node::describe_metric(
            &mut out,
            "fedwatt_http_request_duration_seconds",
            "histogram",
            "Time to answer HTTP requests.",
        );
        for ((route, method), h) in self
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let labels = format!("route=\"{route}\",method=\"{method}\"");
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "fedwatt_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "fedwatt_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "fedwatt_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "fedwatt_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}
