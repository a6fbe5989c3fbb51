//! Generation bookkeeping: every scope has a counter in Redis whose value takes part in the
//! keys of the entries that depend on it. Reading the counters, seeding missing ones, and
//! bumping one (invalidation) live here.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::cache::get;
use crate::envelope::Envelope;
use crate::ttl::unix_now_ms;
use crate::{Cache, CacheError, EntryKey, StoreError};

/// Microseconds since the epoch: the first value of a generation counter. A counter lost to
/// eviction, expiry or a flush restarts above every value it ever had, so old keys stay
/// unreachable. That is also why a counter may carry a TTL: its expiry costs misses, never
/// stale reads.
pub(crate) fn generation_seed() -> u64 {
    unix_now_ms().saturating_mul(1000) + u64::from(fastrand::u16(..1000))
}

/// Most scopes whose last generation this process remembers; past it the memory starts over
/// (the cost is one extra round trip per scope on its next read).
pub const MAX_TRACKED_SCOPES: usize = 10_000;

/// Extends a counter's TTL to at least `ARGV[1]` ms (a counter without a TTL, written by an
/// older version, gets one). Never shortens it.
const EXTEND_SCRIPT: &str = "local t = redis.call('PTTL', KEYS[1]) \
if t == -1 or (t >= 0 and t < tonumber(ARGV[1])) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
return t";

/// What Redis holds for one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    /// No counter yet (or it expired, or was evicted).
    Missing,
    /// A generation.
    At(u64),
    /// Something this library did not write: another type (WRONGTYPE) or not an integer.
    Damaged,
}

impl Counter {
    fn of(reply: &redis::Value) -> Self {
        match reply {
            redis::Value::Nil => Self::Missing,
            redis::Value::BulkString(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|g| *g > 0)
                .map_or(Self::Damaged, Self::At),
            _ => Self::Damaged,
        }
    }

    fn generation(self) -> Option<u64> {
        match self {
            Self::At(g) => Some(g),
            _ => None,
        }
    }
}

/// `EVAL` of [`EXTEND_SCRIPT`] on counter `key` for `lifetime`.
pub(crate) fn extend_counter(key: &str, lifetime: Duration) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(EXTEND_SCRIPT).arg(1).arg(key).arg(millis(lifetime));
    cmd
}

fn millis(d: Duration) -> u64 {
    d.as_millis().clamp(1, u128::from(u64::MAX)) as u64
}

impl Cache {
    /// Invalidates every entry that depends on `scope`, in O(1), and returns the new generation.
    /// A fill that started earlier writes under the old generation, which no later read uses.
    /// The counter's TTL is re-armed to at least the default entry lifetime; fills extend it
    /// further to outlive every entry written under it.
    pub async fn invalidate(&self, scope: &str) -> Result<u64, CacheError> {
        crate::key::check_part(scope)?;
        let key = self.keys.generation_key(scope);
        let lifetime = self.settings.default_ttl;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&key)
            .arg(generation_seed())
            .arg("NX")
            .arg("PX")
            .arg(millis(lifetime))
            .ignore()
            .cmd("INCR")
            .arg(&key)
            .add_command(extend_counter(&key, lifetime))
            .ignore();
        let (generation,): (u64,) = match self.store.pipeline("invalidate", &pipe).await {
            Err(StoreError::Redis { source, .. }) if is_damage(&source) => {
                // Not a counter (another type, or not an integer): replace it by a fresh seed,
                // which is above every generation it could have held.
                self.repair_counter(&key, lifetime).await?
            }
            other => other?,
        };
        self.remember(&[scope.to_owned()], &[generation]);
        // After the bump: a read of this instance that starts now sees the new generation, and
        // one in flight is not remembered.
        self.memory.clear();
        Ok(generation)
    }

    async fn repair_counter(&self, key: &str, lifetime: Duration) -> Result<(u64,), StoreError> {
        tracing::warn!(key, "damaged generation counter replaced");
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(key)
            .arg(generation_seed())
            .arg("PX")
            .arg(millis(lifetime))
            .ignore()
            .cmd("INCR")
            .arg(key);
        self.store.pipeline("repair generation", &pipe).await
    }

    /// One round trip on the common path: the scopes' generations plus the value under the
    /// generations last seen. A second trip only when a generation moved, was never set, or is
    /// damaged; missing and damaged counters are (re)seeded to live `lifetime`.
    pub(crate) async fn read<T: DeserializeOwned>(
        &self,
        entry: &EntryKey,
        lifetime: Duration,
    ) -> Result<Found<T>, StoreError> {
        let scopes = entry.scopes();
        let guessed = self.guess(scopes);
        let mut groups: Vec<Vec<redis::Cmd>> = scopes.iter().map(|s| vec![self.get_generation(s)]).collect();
        groups.push(vec![get(&self.keys.value_key(entry, &guessed))]);
        let mut replies = self.store.slot_groups("read", &groups, None).await?;
        let value = replies.pop().and_then(|g| g.into_iter().next());
        let counters: Vec<Counter> = replies
            .iter()
            .map(|g| g.first().map_or(Counter::Damaged, Counter::of))
            .collect();
        let generations = self.settle(scopes, &counters, lifetime).await?;
        let value = if generations == guessed {
            value_bytes(value)
        } else {
            self.remember(scopes, &generations);
            match self.store.get(&self.keys.value_key(entry, &generations)).await {
                Err(StoreError::Redis { source, .. }) if is_damage(&source) => None,
                other => other?,
            }
        };
        let Some(bytes) = value else {
            return Ok(Found::Absent(generations));
        };
        let decoded = crate::codec::into_json(bytes).and_then(|json| {
            let envelope = Envelope::<T>::decode_json(&json)?;
            Ok((envelope, json))
        });
        match decoded {
            Ok((envelope, json)) => Ok(Found::Entry(envelope, generations, json)),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable cache entry; reloading");
                Ok(Found::Absent(generations))
            }
        }
    }

    /// The scopes' current generations, seeding missing ones and repairing damaged ones.
    pub(crate) async fn current_generations(
        &self,
        scopes: &[String],
        lifetime: Duration,
    ) -> Result<Vec<u64>, StoreError> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let groups: Vec<Vec<redis::Cmd>> = scopes.iter().map(|s| vec![self.get_generation(s)]).collect();
        let replies = self.store.slot_groups("read generations", &groups, None).await?;
        let counters: Vec<Counter> = replies
            .iter()
            .map(|g| g.first().map_or(Counter::Damaged, Counter::of))
            .collect();
        let generations = self.settle(scopes, &counters, lifetime).await?;
        self.remember(scopes, &generations);
        Ok(generations)
    }

    /// The generations of `counters`, after seeding the missing ones (`SET NX`, so a racing
    /// seeder's value wins and is read back) and overwriting the damaged ones.
    async fn settle(
        &self,
        scopes: &[String],
        counters: &[Counter],
        lifetime: Duration,
    ) -> Result<Vec<u64>, StoreError> {
        let mut groups = Vec::new();
        let mut settled = Vec::new();
        for (i, (scope, counter)) in scopes.iter().zip(counters).enumerate() {
            if counter.generation().is_some() {
                continue;
            }
            let key = self.keys.generation_key(scope);
            let mut group = Vec::with_capacity(3);
            if *counter == Counter::Damaged {
                tracing::warn!(key = %key, "damaged generation counter replaced");
                let mut del = redis::cmd("DEL");
                del.arg(&key);
                group.push(del);
            }
            let mut set = redis::cmd("SET");
            set.arg(&key)
                .arg(generation_seed())
                .arg("NX")
                .arg("PX")
                .arg(millis(lifetime));
            group.extend([set, get(&key)]);
            groups.push(group);
            settled.push(i);
        }
        let mut generations: Vec<u64> = counters.iter().map(|c| c.generation().unwrap_or(0)).collect();
        if settled.is_empty() {
            return Ok(generations);
        }
        let replies = self.store.slot_groups("seed generations", &groups, None).await?;
        for (i, group) in settled.into_iter().zip(&replies) {
            generations[i] = group
                .last()
                .map(Counter::of)
                .and_then(Counter::generation)
                .ok_or(StoreError::UnexpectedReply {
                    op: "seed generations",
                    detail: "counter unreadable right after SET".into(),
                })?;
        }
        Ok(generations)
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
        if seen.len() + scopes.len() > MAX_TRACKED_SCOPES {
            seen.clear();
        }
        for (scope, g) in scopes.iter().zip(generations) {
            seen.insert(scope.clone(), *g);
        }
    }

    /// How many scopes this process remembers a generation for (at most
    /// [`MAX_TRACKED_SCOPES`]).
    pub fn tracked_scopes(&self) -> usize {
        self.seen_generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// The bytes of a `GET` reply; an error reply (the key holds another type) counts as absent:
/// the next fill's `SET` replaces it.
fn value_bytes(reply: Option<redis::Value>) -> Option<Vec<u8>> {
    match reply? {
        redis::Value::BulkString(bytes) => Some(bytes),
        redis::Value::ServerError(e) => {
            tracing::warn!(error = ?e, "cache entry of the wrong type; it will be overwritten");
            None
        }
        _ => None,
    }
}

/// A reply that says the key holds something this library did not write.
pub(crate) fn is_damage(e: &redis::RedisError) -> bool {
    // Inside MULTI/EXEC the command's error is wrapped, so look at the whole text too.
    let text = e.to_string();
    e.code() == Some("WRONGTYPE")
        || text.contains("WRONGTYPE")
        || text.contains("not an integer")
        || matches!(
            e.kind(),
            redis::ErrorKind::UnexpectedReturnType | redis::ErrorKind::Parse
        )
}

pub(crate) enum Found<T> {
    /// A readable entry (fresh or not) under these current generations, and its JSON.
    Entry(Envelope<T>, Vec<u64>, Vec<u8>),
    /// Not cached (or expired/unreadable) under these current generations.
    Absent(Vec<u64>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_start_above_every_earlier_counter() {
        let now_micros = unix_now_ms() * 1000;
        let seed = generation_seed();
        assert!(
            seed >= now_micros && seed < now_micros + 1_000_000,
            "{seed} vs {now_micros}"
        );
    }

    #[test]
    fn counters_must_be_positive_integers() {
        use redis::Value;
        assert_eq!(Counter::of(&Value::Nil), Counter::Missing);
        assert_eq!(Counter::of(&Value::BulkString(b"42".to_vec())), Counter::At(42));
        for bad in [&b"-1"[..], b"4.2", b"x", b"", b"0"] {
            assert_eq!(
                Counter::of(&Value::BulkString(bad.to_vec())),
                Counter::Damaged,
                "{bad:?}"
            );
        }
        assert_eq!(Counter::of(&Value::Okay), Counter::Damaged);
    }
}
