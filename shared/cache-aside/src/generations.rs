//! Generation bookkeeping: every scope has a counter in Redis whose value takes part in the
//! keys of the entries that depend on it. Reading the counters (with the value, in one round
//! trip), seeding missing ones, and bumping one (invalidation) live here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::envelope::Envelope;
use crate::error::{CacheError, StoreError};
use crate::freshness::unix_now_ms;
use crate::key::{EntryKey, KeySpace};
use crate::store::{get, RedisStore};

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

/// Where an entry lives at its scopes' current generations: worked out once per read and
/// carried to every step of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct At {
    /// The scopes' generations, in scope order.
    pub(crate) generations: Vec<u64>,
    /// The value's Redis key at those generations.
    pub(crate) key: String,
}

impl At {
    pub(crate) fn new(keys: &KeySpace, entry: &EntryKey, generations: Vec<u64>) -> Self {
        let key = keys.value_key(entry, &generations);
        Self { generations, key }
    }
}

/// The generations this process last saw per scope: they let a hit read generations and value
/// in one round trip, by guessing the value's key.
#[derive(Debug, Default)]
pub(crate) struct Generations {
    seen: Mutex<HashMap<String, u64>>,
}

impl Generations {
    /// Bumps `scope`'s counter (invalidating every entry that depends on it, in O(1)) and
    /// returns the new generation. The counter's TTL is re-armed to at least `lifetime`.
    pub(crate) async fn bump(
        &self,
        store: &RedisStore,
        keys: &KeySpace,
        scope: &str,
        lifetime: Duration,
    ) -> Result<u64, CacheError> {
        crate::key::check_part(scope)?;
        let key = keys.generation_key(scope);
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
        let (generation,): (u64,) = match store.pipeline("invalidate", &pipe).await {
            Err(StoreError::Redis { source, .. }) if is_damage(&source) => {
                // Not a counter (another type, or not an integer): replace it by a fresh seed,
                // which is above every generation it could have held.
                repair_counter(store, &key, lifetime).await?
            }
            other => other?,
        };
        self.remember(&[scope.to_owned()], &[generation]);
        Ok(generation)
    }
}

async fn repair_counter(store: &RedisStore, key: &str, lifetime: Duration) -> Result<(u64,), StoreError> {
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
    store.pipeline("repair generation", &pipe).await
}

impl Generations {
    /// One round trip on the common path: the scopes' generations plus the value under the
    /// generations last seen. A second trip only when a generation moved, was never set, or is
    /// damaged; missing and damaged counters are (re)seeded to live `lifetime`.
    pub(crate) async fn read<T: DeserializeOwned>(
        &self,
        store: &RedisStore,
        keys: &KeySpace,
        entry: &EntryKey,
        lifetime: Duration,
    ) -> Result<Found<T>, StoreError> {
        let scopes = entry.scopes();
        let guessed = At::new(keys, entry, self.guess(scopes));
        let mut groups: Vec<Vec<redis::Cmd>> = scopes
            .iter()
            .map(|s| vec![get(&keys.generation_key(s))])
            .collect();
        groups.push(vec![get(&guessed.key)]);
        let mut replies = store.slot_groups("read", &groups, None).await?;
        let value = replies.pop().and_then(|g| g.into_iter().next());
        let counters: Vec<Counter> = replies
            .iter()
            .map(|g| g.first().map_or(Counter::Damaged, Counter::of))
            .collect();
        let generations = settle(store, keys, scopes, &counters, lifetime).await?;
        let (at, value) = if generations == guessed.generations {
            (guessed, value_bytes(value))
        } else {
            self.remember(scopes, &generations);
            let at = At::new(keys, entry, generations);
            let value = match store.get(&at.key).await {
                Err(StoreError::Redis { source, .. }) if is_damage(&source) => None,
                other => other?,
            };
            (at, value)
        };
        let Some(bytes) = value else {
            return Ok(Found::Absent(at));
        };
        let decoded = crate::codec::into_json(bytes)
            .map_err(crate::envelope::EnvelopeError::from)
            .and_then(|json| Ok((Envelope::<T>::decode_json(&json)?, json.len())));
        match decoded {
            Ok((envelope, bytes)) => Ok(Found::Entry { envelope, at, bytes }),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable cache entry; reloading");
                Ok(Found::Absent(at))
            }
        }
    }

    /// The scopes' current generations, seeding missing ones and repairing damaged ones.
    pub(crate) async fn current(
        &self,
        store: &RedisStore,
        keys: &KeySpace,
        scopes: &[String],
        lifetime: Duration,
    ) -> Result<Vec<u64>, StoreError> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let groups: Vec<Vec<redis::Cmd>> = scopes
            .iter()
            .map(|s| vec![get(&keys.generation_key(s))])
            .collect();
        let replies = store.slot_groups("read generations", &groups, None).await?;
        let counters: Vec<Counter> = replies
            .iter()
            .map(|g| g.first().map_or(Counter::Damaged, Counter::of))
            .collect();
        let generations = settle(store, keys, scopes, &counters, lifetime).await?;
        self.remember(scopes, &generations);
        Ok(generations)
    }
}

/// The generations of `counters`, after seeding the missing ones (`SET NX`, so a racing
/// seeder's value wins and is read back) and overwriting the damaged ones.
async fn settle(
    store: &RedisStore,
    keys: &KeySpace,
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
        let key = keys.generation_key(scope);
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
    let replies = store.slot_groups("seed generations", &groups, None).await?;
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

impl Generations {
    fn guess(&self, scopes: &[String]) -> Vec<u64> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        scopes.iter().map(|s| seen.get(s).copied().unwrap_or(0)).collect()
    }

    fn remember(&self, scopes: &[String], generations: &[u64]) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() + scopes.len() > MAX_TRACKED_SCOPES {
            seen.clear();
        }
        for (scope, g) in scopes.iter().zip(generations) {
            seen.insert(scope.clone(), *g);
        }
    }

    /// How many scopes this process remembers a generation for.
    pub(crate) fn tracked(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
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
    /// A readable entry (fresh or not) at the current generations, and its JSON's length.
    Entry {
        envelope: Envelope<T>,
        at: At,
        bytes: usize,
    },
    /// Not cached (or expired/unreadable) at the current generations.
    Absent(At),
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
