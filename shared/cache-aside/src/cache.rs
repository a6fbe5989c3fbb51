//! The public face of the cache: construction, `get_or_load` and its dispatch by read mode.
//! Generations live in `generations.rs`, stampede control and early refresh in `fill.rs`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::envelope::Envelope;
use crate::fill::Loading;
use crate::generations::Found;
use crate::memory::MemoryTier;
use crate::metrics::CacheMetrics;
use crate::outcome::{BypassReason, CacheState, Lookup};
use crate::ttl::{unix_now_ms, Freshness, TtlPolicy};
use crate::{CacheError, CacheSettings, EntryKey, KeySpace, RedisStore, RedisTarget, StoreError};

/// How a read uses the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Serve from Redis when fresh, else load and store (the normal path).
    Cached,
    /// Load from the origin and overwrite the cached value (`Cache-Control: no-cache`).
    Refresh,
    /// Load from the origin and leave the cache alone (`?source=database`).
    Bypass,
}

/// How one read uses the cache, and when its caller must have an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Cached, refresh or bypass.
    pub mode: ReadMode,
    /// When the caller's answer is due (a Lambda invocation's deadline, less time to answer):
    /// waits for another request's fill last until then (never a second load while that fill's
    /// lock lives), and a fill lock is held at least that long so no second loader starts while
    /// the first still runs. A loader used with a deadline must refuse to start past it: a
    /// waiter still waiting at its deadline calls the loader once, for its timeout error.
    /// `None`: the configured fill wait and lock TTL alone.
    pub deadline: Option<tokio::time::Instant>,
}

impl Read {
    /// A read in `mode` whose answer is due at `deadline`.
    pub fn until(mode: ReadMode, deadline: Option<tokio::time::Instant>) -> Self {
        Self { mode, deadline }
    }
}

impl From<ReadMode> for Read {
    fn from(mode: ReadMode) -> Self {
        Self { mode, deadline: None }
    }
}

/// The cache-aside front of an origin. Build one per process and share it.
#[derive(Debug)]
pub struct Cache {
    pub(crate) store: RedisStore,
    pub(crate) keys: KeySpace,
    pub(crate) settings: CacheSettings,
    /// What this cache did since the last take; the store adds its Redis timings here.
    pub(crate) metrics: Arc<CacheMetrics>,
    /// Last generation seen per scope: lets a hit read generations and value in one round trip.
    pub(crate) seen_generations: Mutex<HashMap<String, u64>>,
    /// One in-process gate per key being filled: concurrent requests of this process wait here
    /// instead of polling Redis.
    pub(crate) fills: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Values read from Redis moments ago, answered without a round trip.
    pub(crate) memory: MemoryTier,
}

impl Cache {
    /// A cache over `store` with `settings` (validated here).
    pub fn new(store: RedisStore, settings: CacheSettings) -> Result<Self, CacheError> {
        settings.validate()?;
        Ok(Self {
            metrics: store.shared_metrics(),
            memory: MemoryTier::new(
                settings.memory_max_bytes,
                settings.memory_trust,
                store.epoch_handle(),
            ),
            store,
            keys: KeySpace::new(&settings.namespace)?,
            settings,
            seen_generations: Mutex::new(HashMap::new()),
            fills: Mutex::new(HashMap::new()),
        })
    }

    /// Connects lazily to `target` (a URL, or a [`RedisTarget`] with cluster mode, AUTH token
    /// and CA) and builds the cache: the usual start-up call.
    pub fn connect_lazy(target: impl Into<RedisTarget>, settings: CacheSettings) -> Result<Self, CacheError> {
        let store = RedisStore::connect_lazy(&target.into(), &settings)?;
        Self::new(store, settings)
    }

    /// The settings in force.
    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    /// What the cache did since the last [`CacheMetrics::take`]: Redis operations and their
    /// latency, origin loads, lock waits. Read once per request to emit metrics.
    pub fn metrics(&self) -> &CacheMetrics {
        &self.metrics
    }

    /// The Redis handle (health checks, benchmarks).
    pub fn store(&self) -> &RedisStore {
        &self.store
    }

    /// The key layout.
    pub fn key_space(&self) -> &KeySpace {
        &self.keys
    }

    /// Returns the value of `entry`: from Redis when fresh, else from `load` (then stored with
    /// `ttl`, or the default TTL, jittered). Redis trouble never fails the read: the value comes
    /// from the origin with [`CacheState::Bypass`]. Only the origin's error is returned.
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        entry: &EntryKey,
        ttl: Option<Duration>,
        read: impl Into<Read>,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_load_with(entry, Freshness::ttl(ttl), read, load)
            .await
    }

    /// [`Self::get_or_load`] with stale windows and early refresh:
    ///
    /// - fresh, and XFetch says not yet: `hit`;
    /// - fresh but XFetch says refresh, or expired within `stale_while_revalidate`: the one
    ///   request that takes the refresh lock reloads *inside its own invocation* (a Lambda
    ///   sandbox is frozen after the response, so background work would not run) and answers
    ///   `miss`; every other request meanwhile gets the current value (`hit`) or the old one
    ///   (`stale`);
    /// - expired and the origin fails within `stale_if_error`: the old value, `stale`.
    pub async fn get_or_load_with<T, E, F, Fut>(
        &self,
        entry: &EntryKey,
        freshness: Freshness,
        read: impl Into<Read>,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_load_classified(entry, freshness, read, |_| false, load)
            .await
    }

    /// [`Self::get_or_load_with`], where a loaded value `is_negative` says is "nothing found"
    /// (no rows, no such entity) is stored for `freshness.negative_ttl` only, without a stale
    /// window: lookups of things that do not exist leave short-lived keys, and a thing created
    /// later shows up soon.
    pub async fn get_or_load_classified<T, E, F, Fut>(
        &self,
        entry: &EntryKey,
        freshness: Freshness,
        read: impl Into<Read>,
        is_negative: fn(&T) -> bool,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let policy = self.ttl_policy(&freshness);
        let Read { mode, deadline } = read.into();
        let how = Loading {
            deadline,
            is_negative,
        };
        if mode == ReadMode::Cached {
            if let Some(hit) = self.memory.hit::<T>(entry, &freshness) {
                self.metrics.memory_hit();
                return Ok(hit);
            }
        }
        let marks = self.memory.marks();
        let generations = match mode {
            ReadMode::Bypass => return bypass(&self.metrics, load, BypassReason::Requested).await,
            ReadMode::Refresh => {
                self.memory.forget(entry);
                self.current_generations(entry.scopes(), policy.lifetime()).await
            }
            ReadMode::Cached => match self.read::<T>(entry, policy.lifetime()).await {
                Ok(Found::Entry(envelope, generations, json)) => {
                    if self.memory.keeps(&freshness) {
                        let value_key = self.keys.value_key(entry, &generations);
                        self.memory
                            .remember(entry, value_key, &envelope, json, &freshness, marks);
                    }
                    return self
                        .serve_or_refresh(entry, envelope, &generations, freshness, how, load)
                        .await;
                }
                Ok(Found::Absent(generations)) => Ok(generations),
                Err(e) => Err(e),
            },
        };
        match generations {
            Ok(generations) if mode == ReadMode::Cached => {
                self.fill_once(entry, &generations, freshness, how, None, load)
                    .await
            }
            Ok(generations) => {
                self.load_and_store(entry, &generations, &freshness, is_negative, load)
                    .await
            }
            Err(e) => {
                log_store_error(&e, "cache read failed; serving from the origin");
                bypass(&self.metrics, load, BypassReason::RedisUnavailable).await
            }
        }
    }

    /// How long entries written under `freshness` live: fresh for the TTL (the default when the
    /// caller gives none), jittered, then kept for the longer stale window.
    pub(crate) fn ttl_policy(&self, freshness: &Freshness) -> TtlPolicy {
        TtlPolicy {
            ttl: freshness.ttl.unwrap_or(self.settings.default_ttl),
            jitter: self.settings.ttl_jitter,
            keep_stale: freshness.stale_while_revalidate.max(freshness.stale_if_error),
            negative_ttl: freshness.negative_ttl,
        }
    }

    /// The current generations of `entry`'s scopes (seeding missing ones), in scope order.
    pub async fn generations_of(&self, entry: &EntryKey) -> Result<Vec<u64>, StoreError> {
        self.current_generations(entry.scopes(), self.settings.default_ttl)
            .await
    }
}

/// The answer built from a stored envelope.
pub(crate) fn from_envelope<T>(envelope: Envelope<T>, state: CacheState, now: u64) -> Lookup<T> {
    Lookup {
        ttl_remaining: Some(envelope.remaining(now)),
        loaded_at_ms: envelope.created_ms,
        load_duration: Duration::from_millis(envelope.load_ms),
        value: envelope.value,
        state,
        bypass_reason: None,
        too_large_to_store: false,
        from_memory: false,
    }
}

async fn bypass<T, E, F, Fut>(metrics: &CacheMetrics, load: F, reason: BypassReason) -> Result<Lookup<T>, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let loaded = load().await;
    metrics.origin_load(started.elapsed());
    let value = loaded?;
    Ok(Lookup {
        value,
        state: CacheState::Bypass,
        bypass_reason: Some(reason),
        ttl_remaining: None,
        loaded_at_ms: unix_now_ms(),
        load_duration: started.elapsed(),
        too_large_to_store: false,
        from_memory: false,
    })
}

pub(crate) fn log_store_error(e: &StoreError, what: &str) {
    match e {
        // Already reported when the breaker opened; stay quiet while it is open.
        StoreError::CircuitOpen => tracing::debug!(error = %e, "{what}"),
        _ => tracing::warn!(error = %e, "{what}"),
    }
}

/// `GET key`.
pub(crate) fn get(key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache whose Redis is a closed loopback port: every Redis call fails at once.
    fn cache_without_redis() -> Cache {
        let settings = CacheSettings {
            op_timeout: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(100),
            ..CacheSettings::default()
        };
        Cache::connect_lazy("redis://127.0.0.1:1", settings).unwrap()
    }

    fn entry() -> EntryKey {
        EntryKey::new("q", "unit", &())
            .unwrap()
            .with_scope("query:unit")
            .unwrap()
    }

    #[tokio::test]
    async fn redis_down_serves_the_origin_as_a_bypass() {
        let cache = cache_without_redis();
        for mode in [ReadMode::Cached, ReadMode::Refresh] {
            let lookup = cache
                .get_or_load(&entry(), None, mode, || async { Ok::<_, ()>(7) })
                .await
                .unwrap();
            assert_eq!(lookup.value, 7);
            assert_eq!(lookup.state, CacheState::Bypass);
            assert_eq!(lookup.bypass_reason, Some(BypassReason::RedisUnavailable));
            assert_eq!(lookup.ttl_seconds(), None);
        }
        let snapshot = cache.metrics().take();
        assert_eq!(snapshot.origin_loads, 2);
        assert!(snapshot.redis_ops >= 1, "the failed Redis calls are counted");
        assert_eq!(cache.metrics().take().origin_loads, 0, "take resets the counters");
    }

    #[tokio::test]
    async fn a_requested_bypass_never_touches_redis_and_origin_errors_pass_through() {
        let cache = cache_without_redis();
        let lookup = cache
            .get_or_load(&entry(), None, ReadMode::Bypass, || async { Ok::<_, ()>(3u8) })
            .await
            .unwrap();
        assert_eq!(lookup.bypass_reason, Some(BypassReason::Requested));
        assert_eq!(cache.metrics().take().redis_ops, 0);
        let failed = cache
            .get_or_load(&entry(), None, ReadMode::Cached, || async {
                Err::<u8, _>("origin down")
            })
            .await;
        assert_eq!(failed.unwrap_err(), "origin down");
    }

    #[test]
    fn envelopes_become_lookups_with_their_freshness() {
        let envelope = Envelope::new("v", 1_000, Duration::from_secs(10), Duration::from_millis(40));
        let lookup = from_envelope(envelope, CacheState::Hit, 4_000);
        assert_eq!(lookup.ttl_remaining, Some(Duration::from_secs(7)));
        assert_eq!(
            (lookup.loaded_at_ms, lookup.load_duration),
            (1_000, Duration::from_millis(40))
        );
        assert_eq!(lookup.ttl_seconds(), Some(7));
    }
}
