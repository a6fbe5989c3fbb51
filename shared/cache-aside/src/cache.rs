//! get-or-load and invalidation.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::envelope::Envelope;
use crate::metrics::{CacheMetrics, LockWaitTimer};
use crate::outcome::{BypassReason, CacheState, Lookup};
use crate::ttl::{unix_now_ms, xfetch_due, Freshness, TtlPolicy};
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

/// The cache-aside front of an origin. Build one per process and share it.
#[derive(Debug)]
pub struct Cache {
    store: RedisStore,
    keys: KeySpace,
    settings: CacheSettings,
    /// Last generation seen per scope: lets a hit read generations and value in one round trip.
    seen_generations: Mutex<HashMap<String, u64>>,
    /// One in-process gate per key being filled: concurrent requests of this process wait here
    /// instead of polling Redis.
    fills: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// Microseconds since the epoch: the first value of a generation counter. A counter lost to
/// eviction or a flush restarts above every value it ever had, so old keys stay unreachable.
fn generation_seed() -> u64 {
    unix_now_ms().saturating_mul(1000) + u64::from(fastrand::u16(..1000))
}

fn parse_generation(reply: Option<&[u8]>) -> Result<Option<u64>, StoreError> {
    reply
        .map(|bytes| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| StoreError::UnexpectedReply {
                    op: "GET generation",
                    detail: "not an unsigned integer".into(),
                })
        })
        .transpose()
}

impl Cache {
    /// A cache over `store` with `settings` (validated here).
    pub fn new(store: RedisStore, settings: CacheSettings) -> Result<Self, CacheError> {
        settings.validate()?;
        Ok(Self {
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
        mode: ReadMode,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_load_with(entry, Freshness::ttl(ttl), mode, load)
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
        mode: ReadMode,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let policy = TtlPolicy {
            ttl: freshness.ttl.unwrap_or(self.settings.default_ttl),
            jitter: self.settings.ttl_jitter,
            keep_stale: freshness.stale_while_revalidate.max(freshness.stale_if_error),
        };
        let generations = match mode {
            ReadMode::Bypass => return bypass(self.store.metrics(), load, BypassReason::Requested).await,
            ReadMode::Refresh => self.current_generations(entry.scopes()).await,
            ReadMode::Cached => match self.read::<T>(entry).await {
                Ok(Found::Entry(envelope, generations)) => {
                    return self
                        .serve_or_refresh(entry, envelope, &generations, freshness, policy, load)
                        .await;
                }
                Ok(Found::Absent(generations)) => Ok(generations),
                Err(e) => Err(e),
            },
        };
        match generations {
            Ok(generations) if mode == ReadMode::Cached => {
                self.fill_once(entry, &generations, policy, load).await
            }
            Ok(generations) => {
                let key = self.keys.value_key(entry, &generations);
                self.load_and_store(&key, policy, load).await
            }
            Err(e) => {
                log_store_error(&e, "cache read failed; serving from the origin");
                bypass(self.store.metrics(), load, BypassReason::RedisUnavailable).await
            }
        }
    }

    /// The current generations of `entry`'s scopes (seeding missing ones), in scope order.
    pub async fn generations_of(&self, entry: &EntryKey) -> Result<Vec<u64>, StoreError> {
        self.current_generations(entry.scopes()).await
    }

    /// Invalidates every entry that depends on `scope`, in O(1), and returns the new generation.
    /// A fill that started earlier writes under the old generation, which no later read uses.
    pub async fn invalidate(&self, scope: &str) -> Result<u64, CacheError> {
        crate::key::check_part(scope)?;
        let key = self.keys.generation_key(scope);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&key)
            .arg(generation_seed())
            .arg("NX")
            .ignore()
            .cmd("INCR")
            .arg(&key);
        let (generation,): (u64,) = self.store.pipeline("invalidate", &pipe).await?;
        self.remember(&[scope.to_owned()], &[generation]);
        Ok(generation)
    }

    /// See [`Self::get_or_load_with`]: what to do with an entry that exists.
    async fn serve_or_refresh<T, E, F, Fut>(
        &self,
        entry: &EntryKey,
        envelope: Envelope<T>,
        generations: &[u64],
        freshness: Freshness,
        policy: TtlPolicy,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let now = unix_now_ms();
        let fresh = envelope.is_fresh(now);
        let ms = |d: Duration| d.as_millis() as u64;
        let revalidating = now < envelope.fresh_until_ms + ms(freshness.stale_while_revalidate);
        let may_serve_on_error = now < envelope.fresh_until_ms + ms(freshness.stale_if_error);
        if fresh
            && !xfetch_due(
                now,
                envelope.fresh_until_ms,
                envelope.load_ms,
                freshness.early_refresh_beta,
                fastrand::f64(),
            )
        {
            return Ok(from_envelope(envelope, CacheState::Hit, now));
        }
        let key = self.keys.value_key(entry, generations);
        if fresh || revalidating {
            let current = if fresh { CacheState::Hit } else { CacheState::Stale };
            let lock_key = self.keys.lock_key(entry, generations);
            let token = lock_token();
            if !matches!(
                self.store
                    .try_lock(&lock_key, &token, self.settings.fill_lock_ttl)
                    .await,
                Ok(true)
            ) {
                return Ok(from_envelope(envelope, current, now));
            }
            // Another request may have refreshed between our read and our lock: use its value.
            if let Ok(Some(bytes)) = self.store.get(&key).await {
                if let Ok(newer) = Envelope::<T>::decode(&bytes) {
                    if newer.created_ms > envelope.created_ms {
                        if let Err(e) = self.store.unlock(&lock_key, &token).await {
                            log_store_error(&e, "refresh lock release failed; it expires by itself");
                        }
                        return Ok(from_envelope(newer, CacheState::Hit, unix_now_ms()));
                    }
                }
            }
            let refreshed = self.load_and_store(&key, policy, load).await;
            if let Err(e) = self.store.unlock(&lock_key, &token).await {
                log_store_error(&e, "refresh lock release failed; it expires by itself");
            }
            return match refreshed {
                Ok(lookup) => Ok(lookup),
                Err(_) if fresh || may_serve_on_error => Ok(from_envelope(envelope, current, unix_now_ms())),
                Err(e) => Err(e),
            };
        }
        match self.fill_once(entry, generations, policy, load).await {
            Err(_) if may_serve_on_error => {
                tracing::warn!(key = %key, "origin failed; serving the stale value (stale-if-error)");
                Ok(from_envelope(envelope, CacheState::Stale, unix_now_ms()))
            }
            other => other,
        }
    }

    /// Stampede control for a cold key: across processes one request holds a Redis fill lock
    /// and loads the origin while the others wait (bounded backoff) for its value; inside a
    /// process, requests for the same key queue on a local gate first. A holder that dies frees
    /// the key when its lock expires; a waiter past `fill_wait` loads the origin itself.
    async fn fill_once<T, E, F, Fut>(
        &self,
        entry: &EntryKey,
        generations: &[u64],
        policy: TtlPolicy,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let key = self.keys.value_key(entry, generations);
        let gate = self.gate(&key);
        let _in_process_turn = gate.lock().await;
        if let Ok(Some(lookup)) = self.read_fresh::<T>(&key).await {
            return Ok(lookup);
        }
        let lock_key = self.keys.lock_key(entry, generations);
        let token = lock_token();
        let deadline = Instant::now() + self.settings.fill_wait;
        let mut pause = Duration::from_millis(10);
        let mut wait = LockWaitTimer::new(self.store.metrics());
        loop {
            match self
                .store
                .try_lock(&lock_key, &token, self.settings.fill_lock_ttl)
                .await
            {
                Ok(true) => {
                    let result = self.load_and_store(&key, policy, load).await;
                    if let Err(e) = self.store.unlock(&lock_key, &token).await {
                        log_store_error(&e, "fill lock release failed; it expires by itself");
                    }
                    return result;
                }
                Ok(false) => wait.waiting(),
                Err(e) => {
                    log_store_error(&e, "fill lock unavailable; loading without it");
                    return self.load_and_store(&key, policy, load).await;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(key = %key, "waited the whole fill budget; loading the origin");
                return self.load_and_store(&key, policy, load).await;
            }
            let jitter = Duration::from_millis(fastrand::u64(0..=pause.as_millis() as u64 / 2));
            tokio::time::sleep((pause + jitter).min(deadline - now)).await;
            pause = (pause * 3 / 2).min(Duration::from_millis(200));
            if let Ok(Some(lookup)) = self.read_fresh::<T>(&key).await {
                return Ok(lookup);
            }
        }
    }

    /// The local gate for `key`, shared by this process's concurrent fills of it.
    fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut fills = self.fills.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(gate) = fills.get(key).and_then(Weak::upgrade) {
            return gate;
        }
        if fills.len() > 1024 {
            fills.retain(|_, g| g.strong_count() > 0);
        }
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        fills.insert(key.to_owned(), Arc::downgrade(&gate));
        gate
    }

    /// The value at `key` if present, readable and fresh.
    async fn read_fresh<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Lookup<T>>, StoreError> {
        let Some(bytes) = self.store.get(key).await? else {
            return Ok(None);
        };
        Ok(fresh_lookup(&bytes, unix_now_ms()))
    }

    /// One round trip on the common path: the scopes' generations plus the value under the
    /// generations last seen. A second trip only when a generation moved or was never set.
    async fn read<T: DeserializeOwned>(&self, entry: &EntryKey) -> Result<Found<T>, StoreError> {
        let scopes = entry.scopes();
        let guessed = self.guess(scopes);
        let mut groups: Vec<Vec<redis::Cmd>> = scopes.iter().map(|s| vec![self.get_generation(s)]).collect();
        groups.push(vec![get(&self.keys.value_key(entry, &guessed))]);
        let mut replies = single_replies("read", self.store.slot_groups("read", &groups, None).await?, 0)?;
        let value = replies.pop().flatten();
        let mut generations = Vec::with_capacity(scopes.len());
        let mut missing = false;
        for reply in &replies {
            match parse_generation(reply.as_deref())? {
                Some(g) => generations.push(g),
                None => {
                    missing = true;
                    generations.push(0);
                }
            }
        }
        if missing {
            generations = self.seed_generations(scopes, &generations).await?;
        }
        let value = if generations == guessed {
            value
        } else {
            self.remember(scopes, &generations);
            self.store.get(&self.keys.value_key(entry, &generations)).await?
        };
        match value.map(|bytes| Envelope::<T>::decode(&bytes)) {
            Some(Ok(envelope)) => Ok(Found::Entry(envelope, generations)),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "unreadable cache entry; reloading");
                Ok(Found::Absent(generations))
            }
            None => Ok(Found::Absent(generations)),
        }
    }

    /// The scopes' current generations, seeding any that do not exist yet.
    async fn current_generations(&self, scopes: &[String]) -> Result<Vec<u64>, StoreError> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let groups: Vec<Vec<redis::Cmd>> = scopes.iter().map(|s| vec![self.get_generation(s)]).collect();
        let replies = self.store.slot_groups("read generations", &groups, None).await?;
        let replies = single_replies("read generations", replies, 0)?;
        let mut generations = Vec::with_capacity(scopes.len());
        for reply in &replies {
            generations.push(parse_generation(reply.as_deref())?.unwrap_or(0));
        }
        if generations.contains(&0) {
            generations = self.seed_generations(scopes, &generations).await?;
        }
        self.remember(scopes, &generations);
        Ok(generations)
    }

    /// Sets missing counters (`0` in `known`) with `SET NX` and reads back what won.
    async fn seed_generations(&self, scopes: &[String], known: &[u64]) -> Result<Vec<u64>, StoreError> {
        let mut groups = Vec::new();
        let mut seeded = Vec::new();
        for (i, scope) in scopes.iter().enumerate() {
            if known[i] == 0 {
                let key = self.keys.generation_key(scope);
                let mut set = redis::cmd("SET");
                set.arg(&key).arg(generation_seed()).arg("NX");
                groups.push(vec![set, get(&key)]);
                seeded.push(i);
            }
        }
        let replies = self.store.slot_groups("seed generations", &groups, None).await?;
        let replies = single_replies("seed generations", replies, 1)?;
        let mut generations = known.to_vec();
        for (i, reply) in seeded.into_iter().zip(&replies) {
            generations[i] = parse_generation(reply.as_deref())?.ok_or(StoreError::UnexpectedReply {
                op: "seed generations",
                detail: "counter vanished right after SET NX".into(),
            })?;
        }
        Ok(generations)
    }

    async fn load_and_store<T, E, F, Fut>(
        &self,
        key: &str,
        policy: TtlPolicy,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let loaded = load().await;
        let load_duration = started.elapsed();
        self.store.metrics().origin_load(load_duration);
        let value = loaded?;
        let ttl = policy.jittered();
        let loaded_at_ms = unix_now_ms();
        let envelope = Envelope::new(&value, loaded_at_ms, ttl, load_duration);
        match envelope.encode() {
            Ok(bytes) => {
                if let Err(e) = self.store.set_px(key, &bytes, ttl + policy.keep_stale).await {
                    log_store_error(&e, "cache write failed; value served uncached");
                }
            }
            Err(e) => tracing::warn!(error = %e, "value cannot be encoded for the cache"),
        }
        Ok(Lookup {
            value,
            state: CacheState::Miss,
            bypass_reason: None,
            ttl_remaining: Some(ttl),
            loaded_at_ms,
            load_duration,
        })
    }

    fn get_generation(&self, scope: &str) -> redis::Cmd {
        get(&self.keys.generation_key(scope))
    }

    fn guess(&self, scopes: &[String]) -> Vec<u64> {
        let seen = self.seen_generations.lock().unwrap_or_else(|p| p.into_inner());
        scopes.iter().map(|s| seen.get(s).copied().unwrap_or(0)).collect()
    }

    fn remember(&self, scopes: &[String], generations: &[u64]) {
        let mut seen = self.seen_generations.lock().unwrap_or_else(|p| p.into_inner());
        for (scope, g) in scopes.iter().zip(generations) {
            seen.insert(scope.clone(), *g);
        }
    }
}

/// A random token identifying one lock holder (released only by compare-and-delete on it).
fn lock_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// The answer built from a stored envelope.
fn from_envelope<T>(envelope: Envelope<T>, state: CacheState, now: u64) -> Lookup<T> {
    Lookup {
        ttl_remaining: Some(envelope.remaining(now)),
        loaded_at_ms: envelope.created_ms,
        load_duration: Duration::from_millis(envelope.load_ms),
        value: envelope.value,
        state,
        bypass_reason: None,
    }
}

/// A hit from stored bytes, if they are a readable envelope still fresh at `now`.
fn fresh_lookup<T: DeserializeOwned>(bytes: &[u8], now: u64) -> Option<Lookup<T>> {
    match Envelope::<T>::decode(bytes) {
        Ok(envelope) if envelope.is_fresh(now) => Some(from_envelope(envelope, CacheState::Hit, now)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable cache entry; reloading");
            None
        }
    }
}

enum Found<T> {
    /// A readable entry (fresh or not) under these current generations.
    Entry(Envelope<T>, Vec<u64>),
    /// Not cached (or expired/unreadable) under these current generations.
    Absent(Vec<u64>),
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
fn get(key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

/// Picks reply `index` of every group of a [`RedisStore::slot_groups`] answer as a string.
fn single_replies(
    op: &'static str,
    groups: Vec<Vec<redis::Value>>,
    index: usize,
) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    groups
        .into_iter()
        .map(|group| {
            let reply = group.into_iter().nth(index).ok_or(StoreError::UnexpectedReply {
                op,
                detail: "fewer replies than commands".into(),
            })?;
            redis::from_redis_value(reply).map_err(|e| StoreError::UnexpectedReply {
                op,
                detail: e.to_string(),
            })
        })
        .collect()
}
