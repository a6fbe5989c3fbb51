//! A minimal circuit breaker: after repeated failures, skip Redis for a cool-down so requests
//! stop paying the timeout, then let one probe through.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown_ms: u64,
    base: Instant,
    failures: AtomicU32,
    /// Monotonic ms (since `base`, plus one) until which calls are refused; 0 = closed.
    open_until: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown_ms: cooldown.as_millis() as u64,
            base: Instant::now(),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }

    /// Whether a call may go to Redis now. When the cool-down has passed, exactly one caller
    /// wins the probe (the others keep being refused for another cool-down).
    pub(crate) fn allow(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= until
            && self
                .open_until
                .compare_exchange(until, now + self.cooldown_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    pub(crate) fn record_success(&self) {
        self.failures.store(0, Ordering::Release);
        self.open_until.store(0, Ordering::Release);
    }

    pub(crate) fn record_failure(&self) {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= self.threshold {
            self.open_until
                .store(self.now_ms() + self.cooldown_ms, Ordering::Release);
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Acquire) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert!(b.allow());
        b.record_failure();
        assert!(b.allow(), "one failure is below the threshold");
        b.record_failure();
        assert!(!b.allow(), "open after two failures");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one probe after the cool-down");
        assert!(!b.allow(), "only one probe");
        b.record_success();
        assert!(b.allow() && !b.is_open());
    }
}
