//! Fleet-wide leases with fencing tokens, and a mark only the lease holder may raise.
//!
//! Lambda runs one request per instance, so "only one of these at a time" must be decided in
//! Redis. A lease expires on its own when its holder dies; every grant gets a token larger than
//! any before it, and the mark (a position in some log) moves only forward and only for the
//! current token, so a holder that stalled past its lease can no longer record progress.

use std::time::Duration;

use crate::{Cache, CacheError, StoreError};

/// A lease held by this process until it expires or is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    name: String,
    /// The fencing token: larger than that of every earlier grant of this lease.
    pub token: u64,
    /// How long each grant or renewal lasts.
    pub ttl: Duration,
    /// The lease's mark when it was granted (`None`: never set).
    pub mark: Option<u64>,
}

impl Lease {
    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What [`Cache::raise_mark`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkRaise {
    /// The mark now holds the position.
    Raised,
    /// The mark was already at or past the position (it holds this value): left alone.
    AlreadyPast(u64),
    /// The lease expired or went to another holder: nothing was written, stop.
    LeaseLost,
}

/// Grants the lease if free: `{token, mark}`, or `{0, ms left}` when held.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1])}
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], tostring(token), 'PX', ARGV[1])
return {token, redis.call('GET', KEYS[3]) or ''}
";

/// Extends the lease if the caller still holds it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Releases the lease if the caller still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Raises the mark (16 hex digits, so string order is number order) for the current holder.
const RAISE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, ''}
end
local mark = redis.call('GET', KEYS[2])
if mark and mark >= ARGV[2] then
  return {2, mark}
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, ARGV[2]}
";

fn script(cell: &'static std::sync::OnceLock<redis::Script>, source: &str) -> &'static redis::Script {
    cell.get_or_init(|| redis::Script::new(source))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn parse_mark(text: &str) -> Result<Option<u64>, StoreError> {
    if text.is_empty() {
        return Ok(None);
    }
    u64::from_str_radix(text, 16)
        .map(Some)
        .map_err(|_| StoreError::UnexpectedReply {
            op: "lease",
            detail: format!("mark {text:?} is not 16 hex digits"),
        })
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
            mark: parse_mark(&value)?,
        }))
    }

    /// Extends `lease` by its ttl; `false` when it was lost (expired, or taken by another).
    pub async fn renew_lease(&self, lease: &Lease) -> Result<bool, CacheError> {
        static CELL: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let [key, _, _] = self.keys.lease_keys(&lease.name);
        let mut call = script(&CELL, RENEW).key(&key);
        call.arg(lease.token.to_string()).arg(millis(lease.ttl));
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

    /// Raises `lease`'s mark to `position` (and renews the lease) if the lease is still held
    /// and the mark is below `position`: progress recorded here never goes backwards, and a
    /// holder that lost its lease cannot record any.
    pub async fn raise_mark(&self, lease: &Lease, position: u64) -> Result<MarkRaise, CacheError> {
        static CELL: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let [key, _, mark] = self.keys.lease_keys(&lease.name);
        let mut call = script(&CELL, RAISE).key(&key);
        call.key(&mark)
            .arg(lease.token.to_string())
            .arg(format!("{position:016x}"))
            .arg(millis(lease.ttl));
        let (status, value): (i64, String) = self.store.invoke("lease", &call).await?;
        Ok(match status {
            1 => MarkRaise::Raised,
            2 => MarkRaise::AlreadyPast(parse_mark(&value)?.unwrap_or(0)),
            _ => MarkRaise::LeaseLost,
        })
    }

    /// Lease `name`'s mark, for inspection (`None`: never set).
    pub async fn lease_mark(&self, name: &str) -> Result<Option<u64>, CacheError> {
        crate::key::check_part(name)?;
        let [_, _, mark] = self.keys.lease_keys(name);
        let value = self.store.get(&mark).await?.unwrap_or_default();
        Ok(parse_mark(&String::from_utf8_lossy(&value))?)
    }
}
