//! Filling an entry: stampede control for a cold key (one origin load across processes) and
//! early refresh of a warm one (XFetch, stale-while-revalidate, stale-if-error), all inside
//! the caller's invocation.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::cache::Cache;
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::freshness::{shared_draw, unix_now_ms, xfetch_due, Freshness};
use crate::generations::{extend_counter, At};
use crate::key::EntryKey;
use crate::lock::FillLock;
use crate::metrics::LockWaitTimer;
use crate::outcome::{CacheState, Lookup};

/// How a load that a read may start is bounded and judged.
pub(crate) struct Loading<T> {
    /// When the reader's answer is due (see [`crate::Read::deadline`]).
    pub(crate) deadline: Option<tokio::time::Instant>,
    /// Whether a loaded value is negative (stored for the negative TTL).
    pub(crate) is_negative: fn(&T) -> bool,
}

impl<T> Clone for Loading<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Loading<T> {}

/// Kept on a deadline-sized lock beyond the deadline: the holder's release, or its death.
const LOCK_SLACK: Duration = Duration::from_secs(1);
/// No lock outlives the longest Lambda invocation (15 minutes).
const MAX_LOCK_TTL: Duration = Duration::from_secs(900);

impl Cache {
    /// See [`Self::get_or_load_with`]: what to do with an entry that exists.
    pub(crate) async fn serve_or_refresh<T, E, F, Fut>(
        &self,
        entry: &EntryKey,
        envelope: Envelope<T>,
        at: &At,
        freshness: Freshness,
        how: Loading<T>,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let Loading {
            deadline,
            is_negative,
        } = how;
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
                shared_draw(&at.key, envelope.created_ms),
            )
        {
            return Ok(envelope.into_lookup(CacheState::Hit, now));
        }
        if fresh || revalidating {
            let current = if fresh { CacheState::Hit } else { CacheState::Stale };
            // One refresh per process: the others keep serving the current value.
            let gate = self.gate(&at.key);
            let Ok(_refreshing_here) = gate.try_lock() else {
                return Ok(envelope.into_lookup(current, now));
            };
            let lock_key = self.keys.lock_key(entry, &at.generations);
            let Ok(Some(lock)) = FillLock::try_take(&self.store, &lock_key, self.lock_ttl(deadline)).await
            else {
                return Ok(envelope.into_lookup(current, now));
            };
            // Another request may have refreshed between our read and our lock: use its value.
            if let Ok(Some(bytes)) = self.store.get(&at.key).await {
                if let Ok(newer) = Envelope::<T>::decode(&bytes) {
                    if newer.created_ms > envelope.created_ms {
                        lock.release().await;
                        return Ok(newer.into_lookup(CacheState::Hit, unix_now_ms()));
                    }
                }
            }
            let refreshed = self
                .load_and_store(entry, at, &freshness, is_negative, load)
                .await;
            lock.release().await;
            return match refreshed {
                Ok(lookup) => Ok(lookup),
                Err(_) if fresh || may_serve_on_error => Ok(envelope.into_lookup(current, unix_now_ms())),
                Err(e) => Err(e),
            };
        }
        self.fill_once(
            entry,
            at,
            freshness,
            how,
            may_serve_on_error.then_some(envelope),
            load,
        )
        .await
    }

    /// Stampede control for a cold key: across processes one request holds a Redis fill lock
    /// and loads the origin while the others wait (bounded backoff) for its value; inside a
    /// process, requests for the same key queue on a local gate first.
    ///
    /// A waiter never starts a second load while the holder's lock lives: when the origin is
    /// slow (the moment it matters) a second statement would only queue behind the first. It
    /// waits for the value until its own deadline, then calls `load` once for its answer, which
    /// a loader bound to that deadline refuses at once (see [`crate::Read::deadline`]). A lock
    /// that disappears without a value (its holder failed or died) is taken by one waiter.
    /// Without a deadline, a waiter past `fill_wait` loads the origin itself.
    ///
    /// With a `stale` value that may be served (stale-if-error), nobody waits: while another
    /// request holds the lock the old value is answered at once, and it is also the answer when
    /// this request's own load fails.
    pub(crate) async fn fill_once<T, E, F, Fut>(
        &self,
        entry: &EntryKey,
        at: &At,
        freshness: Freshness,
        how: Loading<T>,
        stale: Option<Envelope<T>>,
        load: F,
    ) -> Result<Lookup<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let Loading {
            deadline,
            is_negative,
        } = how;
        let old = |stale: Envelope<T>| stale.into_lookup(CacheState::Stale, unix_now_ms());
        // A failed load answers the stale value when there is one.
        let or_stale = |result: Result<Lookup<T>, E>, stale: Option<Envelope<T>>| match (result, stale) {
            (Err(_), Some(stale)) => {
                tracing::warn!("origin failed; serving the stale value (stale-if-error)");
                Ok(old(stale))
            }
            (result, _) => result,
        };
        let key = &at.key;
        let wait_until = match deadline {
            Some(deadline) => deadline.into_std(),
            None => Instant::now() + self.settings.fill_wait,
        };
        let gate = self.gate(key);
        // Past the wait, go on without the turn: the Redis lock still elects one loader.
        // With a stale value to give, another fill of this process in flight means: give it.
        let (_in_process_turn, stale) = match stale {
            Some(stale) => match gate.try_lock() {
                Ok(turn) => (Some(turn), Some(stale)),
                Err(_) => return Ok(old(stale)),
            },
            None => (
                tokio::time::timeout_at(wait_until.into(), gate.lock()).await.ok(),
                None,
            ),
        };
        if let Ok(Some(lookup)) = self.read_fresh::<T>(key).await {
            return Ok(lookup);
        }
        let lock_key = self.keys.lock_key(entry, &at.generations);
        let lock_ttl = self.lock_ttl(deadline);
        let mut pause = Duration::from_millis(10);
        let mut wait = LockWaitTimer::new(&self.metrics);
        loop {
            match FillLock::try_take(&self.store, &lock_key, lock_ttl).await {
                Ok(Some(lock)) => {
                    // Its holder may have stored the value and let go between our last read
                    // and this lock: read once more before loading.
                    if let Ok(Some(lookup)) = self.read_fresh::<T>(key).await {
                        lock.release().await;
                        return Ok(lookup);
                    }
                    let result = self
                        .load_and_store(entry, at, &freshness, is_negative, load)
                        .await;
                    lock.release().await;
                    return or_stale(result, stale);
                }
                Ok(None) => match stale {
                    Some(stale) => return Ok(old(stale)),
                    None => wait.waiting(),
                },
                Err(e) => {
                    e.log("fill lock unavailable; loading without it");
                    return or_stale(
                        self.load_and_store(entry, at, &freshness, is_negative, load)
                            .await,
                        stale,
                    );
                }
            }
            let now = Instant::now();
            if now >= wait_until {
                if deadline.is_some() {
                    tracing::warn!(key = %key, "another request is still loading at this request's deadline");
                } else {
                    tracing::warn!(key = %key, "waited the whole fill budget; loading the origin");
                }
                return self
                    .load_and_store(entry, at, &freshness, is_negative, load)
                    .await;
            }
            let jitter = Duration::from_millis(fastrand::u64(0..=pause.as_millis() as u64 / 2));
            tokio::time::sleep((pause + jitter).min(wait_until - now)).await;
            pause = (pause * 3 / 2).min(Duration::from_millis(200));
            if let Ok(Some(lookup)) = self.read_fresh::<T>(key).await {
                return Ok(lookup);
            }
        }
    }

    /// A fill lock's lifetime: the configured TTL, or longer when the caller may still be
    /// loading past it (its deadline is later), so a slow load never lets a second loader in.
    fn lock_ttl(&self, deadline: Option<tokio::time::Instant>) -> Duration {
        let until_deadline = deadline.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(tokio::time::Instant::now()) + LOCK_SLACK
        });
        self.settings.fill_lock_ttl.max(until_deadline).min(MAX_LOCK_TTL)
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

    /// Loads the origin and stores the value under `entry` `at` its generations; in the same
    /// round trip, extends each scope's counter to outlive the entry. A failed write is logged:
    /// the value is still served.
    pub(crate) async fn load_and_store<T, E, F, Fut>(
        &self,
        entry: &EntryKey,
        at: &At,
        freshness: &Freshness,
        is_negative: fn(&T) -> bool,
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
        self.metrics.origin_load(load_duration);
        let value = loaded?;
        let policy = self.ttl_policy(freshness);
        let policy = if is_negative(&value) {
            policy.for_negative()
        } else {
            policy
        };
        let max_bytes = freshness.max_stored_bytes;
        let ttl = policy.jittered();
        let loaded_at_ms = unix_now_ms();
        let envelope = Envelope::new(&value, loaded_at_ms, ttl, load_duration);
        let mut too_large_to_store = false;
        match envelope.encode() {
            Ok(json) if max_bytes.is_some_and(|max| json.len() > max) => {
                tracing::warn!(
                    bytes = json.len(),
                    "value larger than its storage limit; served uncached"
                );
                too_large_to_store = true;
            }
            Ok(json) => {
                let bytes = self.settings.compression.pack(json);
                let lifetime = ttl + policy.keep_stale;
                if let Err(e) = self.write_entry(&at.key, entry.scopes(), &bytes, lifetime).await {
                    e.log("cache write failed; value served uncached");
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
            too_large_to_store,
            from_memory: false,
        })
    }
}

impl Cache {
    /// `SET key bytes PX lifetime`, plus a TTL extension of each scope's counter to at least
    /// `lifetime`, in one round trip (one pipeline per slot on a cluster).
    async fn write_entry(
        &self,
        key: &str,
        scopes: &[String],
        bytes: &[u8],
        lifetime: Duration,
    ) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(key)
            .arg(bytes)
            .arg("PX")
            .arg(lifetime.as_millis().max(1) as u64);
        let groups: Vec<Vec<redis::Cmd>> = std::iter::once(vec![set])
            .chain(
                scopes
                    .iter()
                    .map(|s| vec![extend_counter(&self.keys.generation_key(s), lifetime)]),
            )
            .collect();
        let replies = self.store.slot_groups("write entry", &groups, None).await?;
        match replies.first().and_then(|g| g.first()) {
            Some(redis::Value::ServerError(e)) => Err(StoreError::UnexpectedReply {
                op: "SET entry",
                detail: format!("{e:?}"),
            }),
            _ => Ok(()),
        }
    }
}

/// A hit from stored bytes, if they are a readable envelope still fresh at `now`.
fn fresh_lookup<T: DeserializeOwned>(bytes: &[u8], now: u64) -> Option<Lookup<T>> {
    match Envelope::<T>::decode(bytes) {
        Ok(envelope) if envelope.is_fresh(now) => Some(envelope.into_lookup(CacheState::Hit, now)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable cache entry; reloading");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_readable_fresh_entries_count_as_hits() {
        let envelope = Envelope::new(5u8, 1_000, Duration::from_secs(1), Duration::ZERO);
        let bytes = envelope.encode().unwrap();
        let hit = fresh_lookup::<u8>(&bytes, 1_500).unwrap();
        assert_eq!((hit.value, hit.state), (5, CacheState::Hit));
        assert!(fresh_lookup::<u8>(&bytes, 2_000).is_none(), "expired");
        assert!(fresh_lookup::<u8>(b"not json", 1_500).is_none(), "unreadable");
        assert!(fresh_lookup::<String>(&bytes, 1_500).is_none(), "another type");
    }
}
