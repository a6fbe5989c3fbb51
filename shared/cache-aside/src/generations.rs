//! Generation bookkeeping: every scope has a counter in Redis whose value takes part in the
//! keys of the entries that depend on it. Reading the counters, seeding missing ones, and
//! bumping one (invalidation) live here.

use serde::de::DeserializeOwned;

use crate::cache::{get, single_replies};
use crate::envelope::Envelope;
use crate::ttl::unix_now_ms;
use crate::{Cache, CacheError, EntryKey, StoreError};

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

    /// One round trip on the common path: the scopes' generations plus the value under the
    /// generations last seen. A second trip only when a generation moved or was never set.
    pub(crate) async fn read<T: DeserializeOwned>(&self, entry: &EntryKey) -> Result<Found<T>, StoreError> {
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
    pub(crate) async fn current_generations(&self, scopes: &[String]) -> Result<Vec<u64>, StoreError> {
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
pub(crate) enum Found<T> {
    /// A readable entry (fresh or not) under these current generations.
    Entry(Envelope<T>, Vec<u64>),
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
    fn counters_must_be_unsigned_integers() {
        assert_eq!(parse_generation(None).unwrap(), None);
        assert_eq!(parse_generation(Some(b"42")).unwrap(), Some(42));
        for bad in [&b"-1"[..], b"4.2", b"x", b""] {
            assert!(matches!(
                parse_generation(Some(bad)),
                Err(StoreError::UnexpectedReply { .. })
            ));
        }
    }
}
