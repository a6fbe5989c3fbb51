//! Tunables of the cache, with defaults suited to Lambda next to ElastiCache.

use std::time::Duration;

use crate::{CacheError, Compression};

/// How the cache behaves; every field has a sensible default.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSettings {
    /// Prefix of every key, so several apps or stages can share one Redis.
    pub namespace: String,
    /// TTL for entries whose caller does not give one.
    pub default_ttl: Duration,
    /// Fraction (0..=0.5) by which TTLs are randomly shortened, so keys filled together do
    /// not all expire together.
    pub ttl_jitter: f64,
    /// Budget for one Redis operation, retry included. Past it the read goes to the origin.
    pub op_timeout: Duration,
    /// Budget for establishing a connection (TCP + TLS + AUTH).
    pub connect_timeout: Duration,
    /// Consecutive failed operations after which Redis is skipped for `breaker_cooldown`.
    pub breaker_failures: u32,
    /// How long Redis is skipped once the breaker opens; then one probe goes through.
    pub breaker_cooldown: Duration,
    /// Lifetime of a fill lock: longer than the slowest origin load, so one process loads a
    /// cold key while the others wait; short enough that a dead holder frees the key soon.
    pub fill_lock_ttl: Duration,
    /// How long a request waits for another's fill before loading the origin itself. Longer
    /// than `fill_lock_ttl`, so a dead holder's lock expires and one waiter takes over first.
    pub fill_wait: Duration,
    /// When stored values are compressed.
    pub compression: Compression,
    /// Bytes of values kept in the process (0: no in-process tier).
    pub memory_max_bytes: u64,
    /// How long a value read from Redis is answered from memory, for entries whose
    /// [`crate::Freshness`] does not say: the bound on how late this instance sees an
    /// invalidation made elsewhere.
    pub memory_trust: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            namespace: "cache-aside".to_owned(),
            default_ttl: Duration::from_secs(300),
            ttl_jitter: 0.1,
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(500),
            breaker_failures: 2,
            breaker_cooldown: Duration::from_millis(1000),
            fill_lock_ttl: Duration::from_secs(10),
            fill_wait: Duration::from_secs(12),
            compression: Compression::default(),
            memory_max_bytes: 16 * 1024 * 1024,
            memory_trust: Duration::from_millis(100),
        }
    }
}

impl CacheSettings {
    /// Checks ranges, so a typo in the environment fails at start-up, not under load.
    pub fn validate(&self) -> Result<(), CacheError> {
        crate::key::check_part(&self.namespace)?;
        if self.default_ttl.is_zero() {
            return Err(CacheError::Settings("default TTL must be at least 1 s".into()));
        }
        if !(0.0..=0.5).contains(&self.ttl_jitter) {
            return Err(CacheError::Settings(format!(
                "TTL jitter must be between 0 and 0.5, got {}",
                self.ttl_jitter
            )));
        }
        if self.op_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(CacheError::Settings("Redis timeouts must be above zero".into()));
        }
        if self.fill_lock_ttl.is_zero() || self.fill_wait.is_zero() {
            return Err(CacheError::Settings(
                "fill lock TTL and fill wait must be above zero".into(),
            ));
        }
        if self.breaker_failures == 0 {
            return Err(CacheError::Settings("breaker failures must be at least 1".into()));
        }
        Ok(())
    }
}
