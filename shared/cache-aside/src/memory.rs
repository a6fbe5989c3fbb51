//! The in-process tier: values this instance read from Redis moments ago, answered without a
//! round trip. A value is trusted for `memory_trust` after Redis last confirmed it together with
//! its scopes' generations (one pipelined read, as every Redis hit does); after that the next
//! read goes to Redis again. So an invalidation made in another instance is seen here within
//! that bound, and one made in this instance at once (it clears this tier).
//!
//! Values are kept decoded, behind an `Arc`: a hit clones the caller's type (a reference count
//! for `Arc`-backed values) and parses nothing, so it costs the same at any size.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache as Moka;
use moka::Expiry;

use crate::envelope::Envelope;
use crate::freshness::{shared_draw, unix_now_ms, xfetch_due, Freshness};
use crate::key::EntryKey;
use crate::outcome::{CacheState, Lookup};

/// One value as Redis confirmed it.
pub(crate) struct Remembered {
    /// The decoded value, of the type the caller read it as.
    value: Arc<dyn Any + Send + Sync>,
    /// What it weighs against the tier's budget: its stored JSON's length.
    bytes: usize,
    /// The XFetch draw every reader of this value shares.
    draw: f64,
    fresh_until_ms: u64,
    created_ms: u64,
    load_ms: u64,
    /// When the read that Redis confirmed it with started.
    confirmed: Instant,
    /// The same on the wall clock: a sandbox frozen between invocations may not advance the
    /// monotonic clock, so the trust must also hold by the wall clock.
    confirmed_unix_ms: u64,
    /// The connection epoch it was read under; a replaced connection forgets everything.
    epoch: u64,
    /// How long it may be kept: its trust, or less when its freshness ends sooner.
    keep: Duration,
}

struct KeepFor;

impl Expiry<String, Arc<Remembered>> for KeepFor {
    fn expire_after_create(&self, _: &String, value: &Arc<Remembered>, _: Instant) -> Option<Duration> {
        Some(value.keep)
    }
}

/// The tier: bounded by bytes, each value kept at most for its trust and never past its
/// freshness.
pub(crate) struct MemoryTier {
    values: Moka<String, Arc<Remembered>>,
    /// Bumped when the Redis connection may have been replaced (a dropped socket, a timeout):
    /// values read before it are not trusted after it.
    epoch: Arc<AtomicU64>,
    /// Bumped by every invalidation made in this instance: a read that started before one
    /// is not remembered.
    clears: AtomicU64,
    /// Trust when the caller's [`Freshness`] says nothing.
    default_trust: Duration,
}

/// The tier's counters, and the time, when a Redis read started; see [`MemoryTier::marks`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marks {
    epoch: u64,
    clears: u64,
    /// The trust counts from here, before Redis answered: never from after an invalidation
    /// that the read may have missed.
    taken: Instant,
    /// The same instant on the wall clock.
    taken_unix_ms: u64,
}

impl std::fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("entries", &self.values.entry_count())
            .field("bytes", &self.values.weighted_size())
            .finish()
    }
}

/// Bytes an entry costs besides its JSON (key strings, bookkeeping).
const OVERHEAD_BYTES: usize = 160;

impl MemoryTier {
    /// A tier of at most `max_bytes` (0: off), sharing `epoch` with the Redis handle.
    pub(crate) fn new(max_bytes: u64, default_trust: Duration, epoch: Arc<AtomicU64>) -> Self {
        let values = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, value: &Arc<Remembered>| {
                let bytes = key.len() + value.bytes + OVERHEAD_BYTES;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .expire_after(KeepFor)
            .build();
        Self {
            values,
            epoch,
            clears: AtomicU64::new(0),
            default_trust: if max_bytes == 0 {
                Duration::ZERO
            } else {
                default_trust
            },
        }
    }

    /// Whether values under `freshness` are kept at all.
    pub(crate) fn keeps(&self, freshness: &Freshness) -> bool {
        !self.trust(freshness).is_zero()
    }

    fn trust(&self, freshness: &Freshness) -> Duration {
        if self.default_trust.is_zero() {
            return Duration::ZERO;
        }
        freshness.memory_trust.unwrap_or(self.default_trust)
    }

    /// A fresh hit from memory, if `entry` was confirmed by Redis within its trust, under the
    /// current connection, and is neither expired nor due for early refresh (that decision
    /// needs Redis, where the refresh lock lives).
    pub(crate) fn hit<T: Clone + 'static>(
        &self,
        entry: &EntryKey,
        freshness: &Freshness,
    ) -> Option<Lookup<T>> {
        let trust = self.trust(freshness);
        if trust.is_zero() {
            return None;
        }
        let value = self.values.get(&entry.identity())?;
        let now = unix_now_ms();
        let wall_elapsed = Duration::from_millis(now.saturating_sub(value.confirmed_unix_ms));
        if value.epoch != self.epoch.load(Ordering::Acquire)
            || value.confirmed.elapsed() >= trust
            || wall_elapsed >= trust
            || now < value.confirmed_unix_ms
        {
            return None;
        }
        if now >= value.fresh_until_ms
            || xfetch_due(
                now,
                value.fresh_until_ms,
                value.load_ms,
                freshness.early_refresh_beta,
                value.draw,
            )
        {
            return None;
        }
        // Another type under the same entry (a caller reading it differently): not a hit.
        let decoded = value.value.downcast_ref::<T>()?.clone();
        Some(Lookup {
            value: decoded,
            state: CacheState::Hit,
            bypass_reason: None,
            ttl_remaining: Some(Duration::from_millis(value.fresh_until_ms - now)),
            loaded_at_ms: value.created_ms,
            load_duration: Duration::from_millis(value.load_ms),
            too_large_to_store: false,
            from_memory: true,
        })
    }

    /// Keeps what Redis just confirmed: `envelope` of `entry`, read from `value_key` where its
    /// JSON is `bytes` long, by a request that took `marks` before it started. Nothing is kept
    /// when the connection was replaced or this instance invalidated anything since.
    pub(crate) fn remember<T: Clone + Send + Sync + 'static>(
        &self,
        entry: &EntryKey,
        value_key: &str,
        envelope: &Envelope<T>,
        bytes: usize,
        freshness: &Freshness,
        marks: Marks,
    ) {
        let trust = self.trust(freshness);
        let fresh_left = envelope.remaining(unix_now_ms());
        let now = self.marks();
        if trust.is_zero() || fresh_left.is_zero() || (marks.epoch, marks.clears) != (now.epoch, now.clears) {
            return;
        }
        self.values.insert(
            entry.identity(),
            Arc::new(Remembered {
                value: Arc::new(envelope.value.clone()),
                bytes: bytes + value_key.len(),
                draw: shared_draw(value_key, envelope.created_ms),
                fresh_until_ms: envelope.fresh_until_ms,
                created_ms: envelope.created_ms,
                load_ms: envelope.load_ms,
                confirmed: marks.taken,
                confirmed_unix_ms: marks.taken_unix_ms,
                epoch: marks.epoch,
                keep: trust.min(fresh_left),
            }),
        );
    }

    /// Forgets `entry` (this instance is about to replace it).
    pub(crate) fn forget(&self, entry: &EntryKey) {
        self.values.invalidate(&entry.identity());
    }

    /// Forgets everything: an invalidation here may concern any of it. Reads in flight that
    /// started before it will not be remembered either.
    pub(crate) fn clear(&self) {
        self.clears.fetch_add(1, Ordering::AcqRel);
        self.values.invalidate_all();
    }

    /// Taken before a Redis read, handed to [`Self::remember`] after it.
    pub(crate) fn marks(&self) -> Marks {
        Marks {
            epoch: self.epoch.load(Ordering::Acquire),
            clears: self.clears.load(Ordering::Acquire),
            taken: Instant::now(),
            taken_unix_ms: unix_now_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_shares_the_decoded_value_instead_of_copying_it() {
        let tier = MemoryTier::new(1 << 20, Duration::from_secs(5), Arc::new(AtomicU64::new(0)));
        let entry = EntryKey::new("q", "shared", &()).unwrap();
        let rows: Arc<Vec<u32>> = Arc::new((0..500).collect());
        let envelope = Envelope::new(
            Arc::clone(&rows),
            unix_now_ms(),
            Duration::from_secs(60),
            Duration::ZERO,
        );
        let freshness = Freshness::ttl(Some(Duration::from_secs(60)));
        tier.remember(&entry, "k", &envelope, 2_000, &freshness, tier.marks());
        let hit = tier.hit::<Arc<Vec<u32>>>(&entry, &freshness).unwrap();
        assert!(Arc::ptr_eq(&hit.value, &rows), "the same allocation, not a copy");
        assert!(hit.from_memory && hit.state == CacheState::Hit);
    }

    #[test]
    fn a_value_is_trusted_only_while_both_clocks_agree_it_is_recent() {
        let tier = MemoryTier::new(1 << 20, Duration::from_secs(5), Arc::new(AtomicU64::new(0)));
        let entry = EntryKey::new("q", "memory", &()).unwrap();
        let envelope = Envelope::new(7u8, unix_now_ms(), Duration::from_secs(60), Duration::ZERO);
        let freshness = Freshness::ttl(Some(Duration::from_secs(60)));
        tier.remember(&entry, "k", &envelope, 40, &freshness, tier.marks());
        assert!(tier.hit::<u8>(&entry, &freshness).is_some(), "just confirmed");
        assert!(
            tier.hit::<u16>(&entry, &freshness).is_none(),
            "read as another type"
        );
        // The monotonic clock says a moment ago; the wall clock says 10 s (a frozen sandbox).
        let mut thawed = tier.marks();
        thawed.taken_unix_ms -= 10_000;
        tier.remember(&entry, "k", &envelope, 40, &freshness, thawed);
        assert!(
            tier.hit::<u8>(&entry, &freshness).is_none(),
            "past the trust by the wall clock"
        );
    }
}
