//! What a read tells its caller besides the value.

use std::time::Duration;

/// Where a value came from, as reported to clients (`cache` field, `X-Cache` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    /// Served from Redis, within its TTL.
    Hit,
    /// Loaded from the origin and written to Redis.
    Miss,
    /// Served from Redis past its freshness (stale-while-revalidate / stale-if-error).
    Stale,
    /// Loaded from the origin without the cache (asked for, or Redis unavailable).
    Bypass,
}

impl CacheState {
    /// Lower-case name for JSON bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
            Self::Bypass => "bypass",
        }
    }

    /// Upper-case name for the `X-Cache` header.
    pub fn header_value(self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Miss => "MISS",
            Self::Stale => "STALE",
            Self::Bypass => "BYPASS",
        }
    }
}

/// Why the cache was bypassed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BypassReason {
    /// The caller asked to read the origin directly.
    Requested,
    /// Redis failed, timed out, or the breaker is open.
    RedisUnavailable,
}

impl BypassReason {
    /// Short machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::RedisUnavailable => "redis_unavailable",
        }
    }
}

/// A value with how it was obtained.
#[derive(Debug, Clone)]
pub struct Lookup<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub state: CacheState,
    /// Set when `state` is [`CacheState::Bypass`].
    pub bypass_reason: Option<BypassReason>,
    /// Time left before the entry stops being fresh; `None` when nothing was cached.
    pub ttl_remaining: Option<Duration>,
    /// When the value was loaded from the origin (Unix ms).
    pub loaded_at_ms: u64,
    /// How long the origin took to produce it.
    pub load_duration: Duration,
}
