//! How entries age: the TTL policy, the caller's freshness windows, XFetch early refresh and
//! the one draw every reader of a value shares, and the wall clock they are measured on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A TTL with random downward jitter: the configured TTL stays an upper bound on staleness,
/// while entries filled in the same instant spread their expiry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TtlPolicy {
    /// The longest an entry may live.
    pub ttl: Duration,
    /// Fraction of `ttl` that may be taken off (0 = none).
    pub jitter: f64,
    /// How long past its freshness an entry is kept in Redis, to be served stale.
    pub keep_stale: Duration,
    /// TTL of a negative value ("nothing found"), when shorter than `ttl`.
    pub negative_ttl: Option<Duration>,
}

impl TtlPolicy {
    /// The policy for a negative value: its own shorter TTL, and no stale window (an absence
    /// is not worth serving past its time).
    pub fn for_negative(self) -> Self {
        match self.negative_ttl {
            Some(negative) => Self {
                ttl: self.ttl.min(negative),
                keep_stale: Duration::ZERO,
                ..self
            },
            None => self,
        }
    }

    /// The longest an entry written under this policy stays in Redis (fresh, then stale).
    pub fn lifetime(&self) -> Duration {
        self.ttl + self.keep_stale
    }

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

/// How a query's entries age: freshness, stale windows, early refresh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Freshness {
    /// Freshness; the cache's default TTL when `None`.
    pub ttl: Option<Duration>,
    /// After expiry, serve the old value (`stale`) while one request refreshes it.
    pub stale_while_revalidate: Duration,
    /// After expiry, serve the old value (`stale`) when the origin fails.
    pub stale_if_error: Duration,
    /// XFetch's beta: how eagerly to refresh before expiry (0 = never early; 1 = the paper's).
    pub early_refresh_beta: f64,
    /// Values whose stored form is larger are served but not stored (`None`: no limit).
    pub max_stored_bytes: Option<usize>,
    /// How long a value read from Redis may be answered from this instance's memory; `None`:
    /// the cache's setting; zero: never (reads that must see every write at once).
    pub memory_trust: Option<Duration>,
    /// TTL of negative values (no rows, no such entity), when the caller classifies them
    /// ([`crate::Cache::get_or_load_classified`]); `None`: the same TTL as any value.
    pub negative_ttl: Option<Duration>,
}

impl Freshness {
    /// Just a TTL: no stale serving, XFetch with beta 1.
    pub fn ttl(ttl: Option<Duration>) -> Self {
        Self {
            ttl,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            early_refresh_beta: 1.0,
            max_stored_bytes: None,
            memory_trust: None,
            negative_ttl: None,
        }
    }
}

/// XFetch (Vattani et al.): refresh early when `now - delta * beta * ln(rand) >= expiry`, with
/// `delta` the time the last load took. Slow loads and hot keys refresh earlier, one at a time.
pub fn xfetch_due(now_ms: u64, fresh_until_ms: u64, load_ms: u64, beta: f64, draw: f64) -> bool {
    let draw = draw.clamp(f64::MIN_POSITIVE, 1.0);
    let head_start = load_ms as f64 * beta.max(0.0) * -draw.ln();
    now_ms as f64 + head_start >= fresh_until_ms as f64
}

/// The XFetch draw of one stored value, in (0, e^-0.1]: the same for every reader in every
/// process (it depends only on the key and the value's creation time), so all agree on the one
/// instant the value becomes due for refresh, and the first reader past it is the one that
/// tries. Independent draws per read would make a hot key refresh early with many readers,
/// since each read is another chance for an early draw. A new value brings a new draw. The cap
/// below 1 gives every value a head start of at least a tenth of `delta * beta`, so a reader
/// arrives inside it and the refresh starts before expiry.
pub(crate) fn shared_draw(key: &str, created_ms: u64) -> f64 {
    // FNV-1a over the key, then SplitMix64's finalizer over it and the creation time.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ created_ms.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64 * MIN_HEAD_START_DRAW
}

/// `e^-0.1`: the largest shared draw, for a head start of at least `0.1 * delta * beta`.
const MIN_HEAD_START_DRAW: f64 = 0.904_837_418_035_959_6;

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
            keep_stale: Duration::ZERO,
            negative_ttl: None,
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
    fn xfetch_refreshes_earlier_for_slow_loads_and_never_with_beta_zero() {
        // 10 s before expiry: a 5 s load refreshes on an unlucky draw; a 1 ms load does not.
        assert!(xfetch_due(0, 10_000, 5_000, 1.0, 0.1));
        assert!(!xfetch_due(0, 10_000, 1, 1.0, 0.1));
        assert!(!xfetch_due(0, 10_000, 5_000, 0.0, 0.0001));
        assert!(
            xfetch_due(10_000, 10_000, 0, 1.0, 0.5),
            "at expiry it is always due"
        );
    }

    #[test]
    fn every_reader_draws_the_same_for_one_value_and_anew_for_the_next() {
        let key = "ns:v1:{q:hot:g1:abc}";
        assert_eq!(shared_draw(key, 1_000), shared_draw(key, 1_000));
        let draws: Vec<f64> = (0..1000).map(|t| shared_draw(key, 1_000 + t)).collect();
        assert!(draws.iter().all(|d| *d > 0.0 && *d <= MIN_HEAD_START_DRAW));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64 / MIN_HEAD_START_DRAW;
        assert!((0.45..0.55).contains(&mean), "uniform: mean {mean}");
        assert_ne!(
            shared_draw(key, 1_000),
            shared_draw("ns:v1:{q:other:g1:abc}", 1_000)
        );
    }

    #[test]
    fn no_jitter_is_exact_and_tiny_ttls_stay_positive() {
        let p = TtlPolicy {
            ttl: Duration::from_secs(7),
            jitter: 0.0,
            keep_stale: Duration::ZERO,
            negative_ttl: None,
        };
        assert_eq!(p.jittered(), Duration::from_secs(7));
        let tiny = TtlPolicy {
            ttl: Duration::from_micros(10),
            jitter: 0.5,
            keep_stale: Duration::ZERO,
            negative_ttl: None,
        };
        assert_eq!(tiny.jittered_with(1.0), Duration::from_millis(1));
    }
}
