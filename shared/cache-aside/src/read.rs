//! Reading through the cache: `get_or_load` and its dispatch by read mode, from memory, from
//! Redis, or past both to the origin.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::cache::Cache;
use crate::fill::Loading;
use crate::freshness::{unix_now_ms, Freshness};
use crate::generations::{At, Found};
use crate::key::EntryKey;
use crate::metrics::CacheMetrics;
use crate::outcome::{BypassReason, CacheState, Lookup};

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

impl Cache {
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
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
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
    ///
    /// The memory tier keeps the decoded value and a memory hit hands out a clone of it: make
    /// large values `Arc`-backed (an `Arc<RawValue>`, an `Arc` of rows) so that the clone is a
    /// reference count and a hit costs the same at any size.
    pub async fn get_or_load_with<T, E, F, Fut>(
        &self,
        entry: &EntryKey,
        freshness: Freshness,
        read: impl Into<Read>,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
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
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
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
        let lifetime = policy.lifetime();
        let at = match mode {
            ReadMode::Bypass => return bypass(&self.metrics, load, BypassReason::Requested).await,
            ReadMode::Refresh => {
                self.memory.forget(entry);
                self.generations
                    .current(&self.store, &self.keys, entry.scopes(), lifetime)
                    .await
                    .map(|generations| At::new(&self.keys, entry, generations))
            }
            ReadMode::Cached => match self
                .generations
                .read::<T>(&self.store, &self.keys, entry, lifetime)
                .await
            {
                Ok(Found::Entry { envelope, at, bytes }) => {
                    if self.memory.keeps(&freshness) {
                        self.memory
                            .remember(entry, &at.key, &envelope, bytes, &freshness, marks);
                    }
                    return self
                        .serve_or_refresh(entry, envelope, &at, freshness, how, load)
                        .await;
                }
                Ok(Found::Absent(at)) => Ok(at),
                Err(e) => Err(e),
            },
        };
        match at {
            Ok(at) if mode == ReadMode::Cached => {
                self.fill_once(entry, &at, freshness, how, None, load).await
            }
            Ok(at) => {
                self.load_and_store(entry, &at, &freshness, is_negative, load)
                    .await
            }
            Err(e) => {
                e.log("cache read failed; serving from the origin");
                bypass(&self.metrics, load, BypassReason::RedisUnavailable).await
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CacheSettings;

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
        let envelope = crate::Envelope::new("v", 1_000, Duration::from_secs(10), Duration::from_millis(40));
        let lookup = envelope.into_lookup(CacheState::Hit, 4_000);
        assert_eq!(lookup.ttl_remaining, Some(Duration::from_secs(7)));
        assert_eq!(
            (lookup.loaded_at_ms, lookup.load_duration),
            (1_000, Duration::from_millis(40))
        );
        assert_eq!(lookup.ttl_seconds(), Some(7));
    }
}
