//! Fleet-wide leases with fencing tokens, and a mark only the lease holder may move.
//!
//! Lambda runs one request per instance, so "only one of these at a time" must be decided in
//! Redis. A lease expires on its own when its holder dies; every grant gets a token larger than
//! any before it. The holder's writes are fenced by that token, not by the lease being alive: a
//! holder whose lease lapsed during one slow step still records its progress as long as nobody
//! was granted the lease since, and a holder that was superseded records nothing.

use std::time::Duration;

use crate::{Cache, CacheError};

/// A lease granted to this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    name: String,
    /// The fencing token: larger than that of every earlier grant of this lease.
    pub token: u64,
    /// How long each grant or renewal lasts.
    pub ttl: Duration,
    /// The lease's mark when it was granted.
    pub mark: Mark,
}

impl Lease {
    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A position the lease's holders recorded (a log sequence number, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Never set, or cleared.
    Unset,
    /// The furthest position recorded.
    At(u64),
    /// The position was lost and whatever depends on it must be redone from scratch before
    /// any position is recorded again (see [`Cache::mark_resync`]).
    Resync,
}

/// What [`Cache::raise_mark`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkRaise {
    /// The mark now holds the position.
    Raised,
    /// The mark was already at or past the position (it holds this value): left alone.
    AlreadyPast(u64),
    /// A resynchronisation is pending: nothing was written.
    ResyncPending,
    /// The lease was granted to another holder since: nothing was written, stop.
    LeaseLost,
}

/// Grants the lease if free: `{token, mark}`, or `{0, ms left}` when held.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, tostring(redis.call('PTTL', KEYS[1]))}
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], tostring(token), 'PX', ARGV[1])
return {token, redis.call('GET', KEYS[3]) or ''}
";

/// Extends the lease (taking it back if it lapsed) while no later grant exists.
const RENEW: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Releases the lease if the caller still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Raises the mark (16 hex digits, so string order is number order) for the latest grant.
const RAISE: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return {0, ''}
end
local mark = redis.call('GET', KEYS[3])
if mark == 'resync' then
  return {3, mark}
end
if mark and mark >= ARGV[2] then
  return {2, mark}
end
redis.call('SET', KEYS[3], ARGV[2])
local holder = redis.call('GET', KEYS[1])
if not holder or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
end
return {1, ARGV[2]}
";

/// Sets the mark to `ARGV[2]` (`resync`, or empty to clear) for the latest grant.
const SET_MARK: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[3])
else
  redis.call('SET', KEYS[3], ARGV[2])
end
return 1
";

/// The mark's text for "redo from scratch".
const RESYNC: &str = "resync";

fn script(cell: &'static std::sync::OnceLock<redis::Script>, source: &str) -> &'static redis::Script {
    cell.get_or_init(|| redis::Script::new(source))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Reads a stored mark; one this library did not write counts as unset (and is logged), so a
/// stray value cannot stop every later grant.
fn parse_mark(text: &str) -> Mark {
    match text {
        "" => Mark::Unset,
        RESYNC => Mark::Resync,
        hex => match u64::from_str_radix(hex, 16) {
            Ok(position) => Mark::At(position),
            Err(_) => {
                tracing::warn!(mark = %hex.chars().take(32).collect::<String>(), "lease mark unreadable; taken as unset");
                Mark::Unset
            }
        },
    }
}

impl Cache {
    /// Takes fleet-wide lease `name` for `ttl` if no one holds it; `Ok(None)` when someone
    /// does. Fails when Redis cannot be asked: without Redis, exclusivity cannot be known.
    pub async fn acquire_lease(&self, name: &str, ttl: Duration) -> Result<Option<Lease>, CacheError> {
        static CELL: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        crate::key::check_part(name)?;
        let [lease, fence, mark] = self.keys.lease_keys(name);
        let mut call = script(&CELL, ACQUIRE).key(&lease);
        call.key(&fence).key(&mark).arg(millis(ttl));
        let (token, value): (u64, String) = self.store.invoke("lease", &call).await?;
        if token == 0 {
            return Ok(None);
        }
        Ok(Some(Lease {
            name: name.to_owned(),
            token,
            ttl,
            mark: parse_mark(&value),
        }))
    }

    /// Extends `lease` by its ttl (taking it back if it lapsed unclaimed); `false` when it was
    /// granted to another since.
    pub async fn renew_lease(&self, lease: &Lease) -> Result<bool, CacheError> {
        static CELL: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let [key, fence, _] = self.keys.lease_keys(&lease.name);
        let mut call = script(&CELL, RENEW).key(&key);
        call.key(&fence)
            .arg(lease.token.to_string())
            .arg(millis(lease.ttl));
        let renewed: i64 = self.store.invoke("lease", &call).await?;
        Ok(renewed == 1)
    }

    /// Gives `lease` up so the next caller need not wait for it to expire.
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), CacheError> {
        static CELL: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let [key, _, _] = self.keys.lease_keys(&lease.name);
        let mut call = script(&CELL, RELEASE).key(&key);
        call.arg(lease.token.to_string());
        let _: i64 = self.store.invoke("lease", &call).await?;
        Ok(())
    }

    /// Raises `lease`'s mark to `position` (and renews the lease) if no later grant exists and
    /// the mark is below `position`: progress recorded here never goes backwards, and a holder
    /// that was superseded cannot record any.
    pub async fn raise_mark(&self, lease: &Lease, position: u64) -> Result<MarkRaise, CacheError> {
        static CELL: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let [key, fence, mark] = self.keys.lease_keys(&lease.name);
        let mut call = script(&CELL, RAISE).key(&key);
        call.key(&fence)
            .key(&mark)
            .arg(lease.token.to_string())
            .arg(format!("{position:016x}"))
            .arg(millis(lease.ttl));
        let (status, value): (i64, String) = self.store.invoke("lease", &call).await?;
        Ok(match status {
            1 => MarkRaise::Raised,
            2 => match parse_mark(&value) {
                Mark::At(at) => MarkRaise::AlreadyPast(at),
                _ => MarkRaise::AlreadyPast(0),
            },
            3 => MarkRaise::ResyncPending,
            _ => MarkRaise::LeaseLost,
        })
    }

    /// Records that the position was lost (a change log restarted): until
    /// [`Cache::clear_mark`], every later holder is told [`Mark::Resync`] and no position can
    /// be recorded. `false` when the lease was granted to another since.
    pub async fn mark_resync(&self, lease: &Lease) -> Result<bool, CacheError> {
        self.set_mark(lease, RESYNC).await
    }

    /// Clears the mark once a resynchronisation is done (a new log starts from nothing).
    /// `false` when the lease was granted to another since.
    pub async fn clear_mark(&self, lease: &Lease) -> Result<bool, CacheError> {
        self.set_mark(lease, "").await
    }

    async fn set_mark(&self, lease: &Lease, value: &str) -> Result<bool, CacheError> {
        static CELL: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let [key, fence, mark] = self.keys.lease_keys(&lease.name);
        let mut call = script(&CELL, SET_MARK).key(&key);
        call.key(&fence)
            .key(&mark)
            .arg(lease.token.to_string())
            .arg(value);
        let done: i64 = self.store.invoke("lease", &call).await?;
        Ok(done == 1)
    }

    /// Lease `name`'s mark, for inspection.
    pub async fn lease_mark(&self, name: &str) -> Result<Mark, CacheError> {
        crate::key::check_part(name)?;
        let [_, _, mark] = self.keys.lease_keys(name);
        let value = self.store.get(&mark).await?.unwrap_or_default();
        Ok(parse_mark(&String::from_utf8_lossy(&value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_read_back_and_strays_count_as_unset() {
        assert_eq!(parse_mark(""), Mark::Unset);
        assert_eq!(parse_mark("resync"), Mark::Resync);
        assert_eq!(
            parse_mark(&format!("{:016x}", 0x1_0000_0002u64)),
            Mark::At(0x1_0000_0002)
        );
        assert_eq!(parse_mark("garbage"), Mark::Unset);
        // 16 hex digits order as numbers.
        assert!(format!("{:016x}", 9u64) < format!("{:016x}", 10u64));
    }
}
