//! Fleet-wide rate limits: a token bucket per name, kept in Redis and taken in one Lua call,
//! so every process (every Lambda instance) draws from the same budget.
//!
//! A Lambda instance serves one request at a time, so a per-instance cap never bites; a budget
//! the whole fleet shares is what keeps the public from deciding how much work an origin does.
//! The bucket's clock is the Redis server's (`TIME`), so instances with skewed clocks agree.

use std::time::Duration;

use crate::{Cache, StoreError};

/// A token bucket: `per_second` tokens flow in, up to `burst` kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained rate, tokens per second (above zero).
    pub per_second: f64,
    /// Tokens kept at most: how many may be taken at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl RateLimit {
    /// `per_minute` tokens a minute, all of them available at once.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            per_second: f64::from(per_minute.max(1)) / 60.0,
            burst: per_minute.max(1),
        }
    }
}

/// What a bucket said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A token was taken: go ahead.
    Granted,
    /// The bucket is empty: the next token comes in `retry_after`.
    Refused {
        /// Until a token is available (at least 1 ms).
        retry_after: Duration,
    },
    /// Redis could not be asked (down, slow, breaker open): the caller's own local guard
    /// decides. Limits fail open so a Redis outage slows the service instead of stopping it.
    Unchecked,
}

/// Refills the bucket from the server's clock, takes one token if there is one, and returns
/// `{granted, ms until the next token}`. The bucket expires once it would be full again.
const TAKE_TOKEN: &str = r"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
end
local granted = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  granted = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {granted, wait}
";

impl Cache {
    /// Takes one token from the fleet-wide bucket `name` (any text; kept in its own hash slot,
    /// so it works on a cluster). Never fails: Redis trouble answers [`Admission::Unchecked`].
    pub async fn take_token(&self, name: &str, limit: RateLimit) -> Admission {
        match self.try_take_token(name, limit).await {
            Ok(admission) => {
                if matches!(admission, Admission::Refused { .. }) {
                    self.metrics.shed();
                }
                admission
            }
            Err(e) => {
                e.log("rate limit unavailable; the local guard decides");
                Admission::Unchecked
            }
        }
    }

    async fn try_take_token(&self, name: &str, limit: RateLimit) -> Result<Admission, StoreError> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let script = SCRIPT.get_or_init(|| redis::Script::new(TAKE_TOKEN));
        let key = self.keys.rate_key(name);
        let per_second = if limit.per_second.is_finite() && limit.per_second > 0.0 {
            limit.per_second
        } else {
            1e-3
        };
        let mut invocation = script.key(&key);
        invocation.arg(per_second).arg(limit.burst.max(1));
        let (granted, wait_ms): (i64, i64) = self.store.invoke("rate limit", &invocation).await?;
        Ok(if granted == 1 {
            Admission::Granted
        } else {
            Admission::Refused {
                retry_after: Duration::from_millis(wait_ms.max(1) as u64),
            }
        })
    }
}
