//! Counters of what the cache did, read and reset once per request to emit CloudWatch metrics.
//!
//! A Lambda instance serves one request at a time, so the counts taken after a request are
//! that request's. Elsewhere they are the counts since the previous take.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Totals since the last [`CacheMetrics::take`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Redis operations sent (pipelines count once).
    pub redis_ops: u64,
    /// Their total latency, µs.
    pub redis_micros: u64,
    /// Origin loads.
    pub origin_loads: u64,
    /// Their total latency, µs.
    pub origin_micros: u64,
    /// Requests that waited for another request's fill lock.
    pub lock_waits: u64,
    /// Their total wait, µs.
    pub lock_wait_micros: u64,
    /// Hits answered from the process's memory (no Redis round trip).
    pub memory_hits: u64,
    /// Requests refused by a fleet-wide rate limit (origin loads shed, writes limited).
    pub shed: u64,
}

/// Shared, lock-free counters.
#[derive(Debug, Default)]
pub struct CacheMetrics {
    redis_ops: AtomicU64,
    redis_micros: AtomicU64,
    origin_loads: AtomicU64,
    origin_micros: AtomicU64,
    lock_waits: AtomicU64,
    lock_wait_micros: AtomicU64,
    memory_hits: AtomicU64,
    shed: AtomicU64,
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

impl CacheMetrics {
    pub(crate) fn redis_op(&self, took: Duration) {
        self.redis_ops.fetch_add(1, Ordering::Relaxed);
        self.redis_micros.fetch_add(micros(took), Ordering::Relaxed);
    }

    pub(crate) fn origin_load(&self, took: Duration) {
        self.origin_loads.fetch_add(1, Ordering::Relaxed);
        self.origin_micros.fetch_add(micros(took), Ordering::Relaxed);
    }

    pub(crate) fn memory_hit(&self) {
        self.memory_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn lock_wait(&self, took: Duration) {
        self.lock_waits.fetch_add(1, Ordering::Relaxed);
        self.lock_wait_micros.fetch_add(micros(took), Ordering::Relaxed);
    }

    /// Returns the totals and starts counting from zero.
    pub fn take(&self) -> MetricsSnapshot {
        let take = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
        MetricsSnapshot {
            redis_ops: take(&self.redis_ops),
            redis_micros: take(&self.redis_micros),
            origin_loads: take(&self.origin_loads),
            origin_micros: take(&self.origin_micros),
            lock_waits: take(&self.lock_waits),
            lock_wait_micros: take(&self.lock_wait_micros),
            memory_hits: take(&self.memory_hits),
            shed: take(&self.shed),
        }
    }
}

/// Records a lock wait when dropped, if one happened ([`Self::waiting`] was called).
pub(crate) struct LockWaitTimer<'a> {
    metrics: &'a CacheMetrics,
    since: Option<Instant>,
}

impl<'a> LockWaitTimer<'a> {
    pub(crate) fn new(metrics: &'a CacheMetrics) -> Self {
        Self { metrics, since: None }
    }

    /// Another request holds the lock: the wait starts now (if it has not already).
    pub(crate) fn waiting(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }
}

impl Drop for LockWaitTimer<'_> {
    fn drop(&mut self) {
        if let Some(since) = self.since {
            self.metrics.lock_wait(since.elapsed());
        }
    }
}
