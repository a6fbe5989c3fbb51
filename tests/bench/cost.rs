//! What a request costs on Lambda (arm64) at the measured durations: billed in 1 ms steps,
//! memory × time at the published arm64 price, plus the per-request charge.

use std::time::Duration;

use test_support::stats::Summary;

/// arm64 compute price, USD per GB-second (us-east-1, first 7.5 billion GB-seconds a month).
pub const ARM64_USD_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// Request charge, USD per million requests.
pub const USD_PER_MILLION_REQUESTS: f64 = 0.20;
/// The memory sizes compared.
pub const MEMORY_MB: [u32; 3] = [128, 256, 512];
/// Lambda's memory per vCPU: CPU is given in proportion to memory, one vCPU at 1,769 MB.
pub const MB_PER_VCPU: u32 = 1769;

/// USD per million requests lasting `duration` each at `memory_mb`.
pub fn per_million(duration: Duration, memory_mb: u32) -> f64 {
    let billed_ms = (duration.as_secs_f64() * 1000.0).ceil().max(1.0);
    let gb_seconds = billed_ms / 1000.0 * f64::from(memory_mb) / 1024.0;
    1e6 * gb_seconds * ARM64_USD_PER_GB_SECOND + USD_PER_MILLION_REQUESTS
}

/// The cost table for the measured rows, from their p50 and p99 server times. `quota` is the D of
/// rows measured at 1/D of a core (`--cpu-quota`), priced as measured; the note says what they are.
pub fn table(rows: &[(String, Summary)], quota: Option<u32>) -> String {
    let mut out = format!(
        "Lambda cost per million requests (arm64, ${ARM64_USD_PER_GB_SECOND}/GB-s, 1 ms billing, \
         ${USD_PER_MILLION_REQUESTS:.2}/M requests), if each request took the p50 (p99) server time above\n\n\
         | path | p50 µs | p99 µs |"
    );
    for mb in MEMORY_MB {
        out.push_str(&format!(" {mb} MB $/M |"));
    }
    out.push_str("\n|---|---:|---:|");
    out.push_str(&"---:|".repeat(MEMORY_MB.len()));
    out.push('\n');
    for (label, s) in rows {
        out.push_str(&format!("| {label} | {:.0} | {:.0} |", s.p50_us, s.p99_us));
        for mb in MEMORY_MB {
            let at = |us: f64| per_million(Duration::from_secs_f64(us / 1e6), mb);
            out.push_str(&format!(" {:.4} ({:.4}) |", at(s.p50_us), at(s.p99_us)));
        }
        out.push('\n');
    }
    out.push_str(
        "\nServer time is measured in-process on this machine with a full core. Lambda gives 128 MB \
         about 1/14 of a vCPU (a full one at 1,769 MB), so CPU-bound time grows at small sizes; a \
         cache hit here is mostly waiting on Redis, which does not.\n",
    );
    if let Some(d) = quota {
        out.push_str(&format!(
            "\nRows ending in \", 1/{d} core\" were measured under a cgroup CPU quota of 1/{d} of a core, \
             the share of about {:.0} MB: at that size their price needs no CPU estimate; at larger \
             sizes, which get more CPU, it is an upper bound.\n",
            f64::from(MB_PER_VCPU) / f64::from(d)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_rounds_up_to_whole_milliseconds() {
        let one_ms = per_million(Duration::from_micros(40), 128);
        assert_eq!(one_ms, per_million(Duration::from_millis(1), 128));
        assert!((one_ms - (0.20 + 0.125 * 0.001 * ARM64_USD_PER_GB_SECOND * 1e6)).abs() < 1e-9);
        assert!(per_million(Duration::from_micros(1001), 128) > one_ms);
        assert!((per_million(Duration::from_millis(1), 256) - 0.20 - 2.0 * (one_ms - 0.20)).abs() < 1e-9);
    }
}
