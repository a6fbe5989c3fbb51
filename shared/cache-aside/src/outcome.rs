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
    /// Loaded but not stored: larger than the caller's limit.
    pub too_large_to_store: bool,
    /// Answered from this instance's memory, without a Redis round trip.
    pub from_memory: bool,
}

impl<T> Lookup<T> {
    /// The same lookup around `f(value)`: callers that narrow a cached value (one row out of
    /// a result) keep where it came from and how fresh it is.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Lookup<U> {
        Lookup {
            value: f(self.value),
            state: self.state,
            bypass_reason: self.bypass_reason,
            ttl_remaining: self.ttl_remaining,
            loaded_at_ms: self.loaded_at_ms,
            load_duration: self.load_duration,
            too_large_to_store: self.too_large_to_store,
            from_memory: self.from_memory,
        }
    }

    /// Where a cached answer came from: `memory` (this instance) or `redis`; `None` for a
    /// load (miss, bypass).
    pub fn tier(&self) -> Option<&'static str> {
        match (self.state, self.from_memory) {
            (CacheState::Hit | CacheState::Stale, true) => Some("memory"),
            (CacheState::Hit | CacheState::Stale, false) => Some("redis"),
            _ => None,
        }
    }

    /// Seconds of freshness left, rounded up, for clients; `None` when the value was not
    /// cached (a bypass).
    pub fn ttl_seconds(&self) -> Option<u64> {
        match self.state {
            CacheState::Bypass => None,
            _ => self.ttl_remaining.map(|d| d.as_millis().div_ceil(1000) as u64),
        }
    }
}
