//! Latency percentiles for benchmarks.

use std::time::Duration;

/// Summary of a set of latency samples.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Samples.
    pub count: usize,
    /// Mean, µs.
    pub avg_us: f64,
    /// Median, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Slowest, µs.
    pub max_us: f64,
    /// Operations per second over the summed latencies.
    pub ops_per_sec: f64,
}

/// Nearest-rank percentiles of `samples` (sorted here).
pub fn summarize(samples: &mut [Duration]) -> Summary {
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let n = samples.len().max(1);
    let rank = |p: f64| {
        let i = ((p / 100.0) * n as f64).ceil() as usize;
        samples
            .get(i.saturating_sub(1).min(n - 1))
            .copied()
            .map_or(0.0, us)
    };
    let total: f64 = samples.iter().copied().map(us).sum();
    Summary {
        count: samples.len(),
        avg_us: total / n as f64,
        p50_us: rank(50.0),
        p90_us: rank(90.0),
        p99_us: rank(99.0),
        max_us: samples.last().copied().map_or(0.0, us),
        ops_per_sec: if total > 0.0 {
            samples.len() as f64 / (total / 1e6)
        } else {
            0.0
        },
    }
}

/// One row of a markdown latency table.
pub fn table_row(label: &str, s: &Summary) -> String {
    format!(
        "| {label} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
        s.count, s.avg_us, s.p50_us, s.p90_us, s.p99_us, s.max_us, s.ops_per_sec
    )
}

/// Header of the markdown latency table.
pub const TABLE_HEADER: &str = "| path | n | avg µs | p50 µs | p90 µs | p99 µs | max µs | ops/s |\n|---|---:|---:|---:|---:|---:|---:|---:|";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = summarize(&mut v);
        assert_eq!(
            (s.p50_us, s.p90_us, s.p99_us, s.max_us),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(s.avg_us, 50.5);
    }
}
