//! TTL policy and time helpers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A TTL with random downward jitter: the configured TTL stays an upper bound on staleness,
/// while entries filled in the same instant spread their expiry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TtlPolicy {
    /// The longest an entry may live.
    pub ttl: Duration,
    /// Fraction of `ttl` that may be taken off (0 = none).
    pub jitter: f64,
}

impl TtlPolicy {
    /// The TTL to use for one write, in `[ttl * (1 - jitter), ttl]`, never below 1 ms.
    pub fn jittered(&self) -> Duration {
        self.jittered_with(fastrand::f64())
    }

    /// [`Self::jittered`] with the random draw given (0..1), for deterministic tests.
    pub fn jittered_with(&self, draw: f64) -> Duration {
        let cut = self.ttl.as_secs_f64() * self.jitter.clamp(0.0, 1.0) * draw.clamp(0.0, 1.0);
        let ttl = self.ttl.saturating_sub(Duration::from_secs_f64(cut));
        ttl.max(Duration::from_millis(1))
    }
}

/// Milliseconds since the Unix epoch. Envelopes use wall time because they are read by other
/// processes (other Lambda instances), where a monotonic clock means nothing.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds() {
        let p = TtlPolicy {
            ttl: Duration::from_secs(100),
            jitter: 0.1,
        };
        assert_eq!(p.jittered_with(0.0), Duration::from_secs(100));
        assert_eq!(p.jittered_with(1.0), Duration::from_secs(90));
        for _ in 0..1000 {
            let t = p.jittered();
            assert!(
                t <= Duration::from_secs(100) && t >= Duration::from_secs(90),
                "{t:?}"
            );
        }
    }

    #[test]
    fn no_jitter_is_exact_and_tiny_ttls_stay_positive() {
        let p = TtlPolicy {
            ttl: Duration::from_secs(7),
            jitter: 0.0,
        };
        assert_eq!(p.jittered(), Duration::from_secs(7));
        let tiny = TtlPolicy {
            ttl: Duration::from_micros(10),
            jitter: 0.5,
        };
        assert_eq!(tiny.jittered_with(1.0), Duration::from_millis(1));
    }
}
