//! The cache itself: what one process holds (the Redis handle, the key layout, the
//! generations it saw, its fill gates and memory tier), how it is built, and invalidation.
//! Reads are in `read.rs`, filling and early refresh in `fill.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::error::{CacheError, StoreError};
use crate::freshness::{Freshness, TtlPolicy};
use crate::generations::Generations;
use crate::key::{EntryKey, KeySpace};
use crate::memory::MemoryTier;
use crate::metrics::CacheMetrics;
use crate::settings::CacheSettings;
use crate::store::RedisStore;
use crate::target::RedisTarget;

/// The cache-aside front of an origin. Build one per process and share it.
#[derive(Debug)]
pub struct Cache {
    pub(crate) store: RedisStore,
    pub(crate) keys: KeySpace,
    pub(crate) settings: CacheSettings,
    /// What this cache did since the last take; the store adds its Redis timings here.
    pub(crate) metrics: Arc<CacheMetrics>,
    /// Last generation seen per scope: lets a hit read generations and value in one round trip.
    pub(crate) generations: Generations,
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
            generations: Generations::default(),
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
        self.generations
            .current(&self.store, &self.keys, entry.scopes(), self.settings.default_ttl)
            .await
    }

    /// Invalidates every entry that depends on `scope`, in O(1), and returns the new generation.
    /// A fill that started earlier writes under the old generation, which no later read uses.
    /// The counter's TTL is re-armed to at least the default entry lifetime; fills extend it
    /// further to outlive every entry written under it.
    pub async fn invalidate(&self, scope: &str) -> Result<u64, CacheError> {
        let generation = self
            .generations
            .bump(&self.store, &self.keys, scope, self.settings.default_ttl)
            .await?;
        // After the bump: a read of this instance that starts now sees the new generation, and
        // one in flight is not remembered.
        self.memory.clear();
        Ok(generation)
    }

    /// How many scopes this process remembers a generation for (at most
    /// [`crate::MAX_TRACKED_SCOPES`]).
    pub fn tracked_scopes(&self) -> usize {
        self.generations.tracked()
    }
}
