//! Byte objects (S3 objects) cached as Redis hashes: `b` = the exact bytes, `t` = content type;
//! or `m` = "the origin has no such object"; or `l` = "too large to serve", with its size.
//!
//! Bytes are stored as they are, not in the JSON envelope: no base64 growth, and Redis holds
//! byte-for-byte what S3 holds.
//!
//! Fills are fenced: beside each entry lives a counter (same hash slot) that every drop
//! increments. A fill reads it before loading and writes only if it is unchanged, so a load
//! that started before an upload's event can never store (or keep serving) the old bytes.

use std::future::Future;
use std::time::Duration;

use crate::cache::Cache;
use crate::error::StoreError;
use crate::outcome::CacheState;
use crate::read::ReadMode;

/// How long a drop's fence outlives it: longer than any fill can run (a Lambda invocation
/// lasts at most 15 minutes), so every fill that started before the drop sees it moved.
pub const OBJECT_FENCE_TTL: Duration = Duration::from_secs(3600);

/// Writes an entry only if the fence still holds what the fill read (`''` when absent).
/// KEYS: entry, fence. ARGV: fence seen, kind (`b`, `m`, `l`), ttl ms, then bytes and type
/// (`b`) or the size (`l`).
const FENCED_WRITE: &str = "if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end \
redis.call('DEL', KEYS[1]) \
if ARGV[2] == 'b' then redis.call('HSET', KEYS[1], 'b', ARGV[4], 't', ARGV[5]) \
elseif ARGV[2] == 'l' then redis.call('HSET', KEYS[1], 'l', ARGV[4]) \
else redis.call('HSET', KEYS[1], 'm', '1') end \
redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1";

/// An object's bytes and content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedObject {
    /// Content.
    pub bytes: Vec<u8>,
    /// `Content-Type`.
    pub content_type: String,
}

/// What the origin has at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectState {
    /// The object.
    Found(CachedObject),
    /// No such object.
    Missing,
    /// An object too large to serve; its size in bytes. Its bytes were never read.
    TooLarge {
        /// Size in bytes.
        size: u64,
    },
}

/// How objects are served and cached: one description, read from the configuration and used
/// as it is by the reads and by the ingester's seeding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectPolicy {
    /// TTL of a cached object (and of a "too large" answer).
    pub ttl: Duration,
    /// TTL of a negative entry ("no such object").
    pub missing_ttl: Duration,
    /// Larger objects are served but not cached.
    pub max_cached_bytes: usize,
    /// Larger objects are not served (their bodies are never read): Lambda answers at most
    /// 6 MB, which base64 for binary bodies shrinks to about 4.5 MB.
    pub max_serve_bytes: usize,
}

impl Default for ObjectPolicy {
    /// An hour for objects, 30 s for absences, up to 1 MiB cached and 4 MiB served.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            missing_ttl: Duration::from_secs(30),
            max_cached_bytes: 1024 * 1024,
            max_serve_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The outcome of an object read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLookup {
    /// What the origin has.
    pub object: ObjectState,
    /// Where the answer came from.
    pub state: CacheState,
    /// False when the object was too large to cache, or a newer drop fenced the write out.
    pub cached: bool,
}

/// A cached entry and the fence counter read with it.
struct Read {
    entry: Option<ObjectState>,
    fence: String,
}

impl Cache {
    /// Object `key` from Redis, else from `load` (then cached, including "missing" and "too
    /// large"). Redis trouble never fails the read; only `load`'s error is returned.
    pub async fn get_or_load_object<E, F, Fut>(
        &self,
        key: &str,
        policy: ObjectPolicy,
        mode: ReadMode,
        load: F,
    ) -> Result<ObjectLookup, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ObjectState, E>>,
    {
        let mut fence = None;
        let state = match mode {
            ReadMode::Bypass => CacheState::Bypass,
            ReadMode::Cached | ReadMode::Refresh => match self.read_object(key).await {
                Ok(Read {
                    entry: Some(object), ..
                }) if mode == ReadMode::Cached => {
                    return Ok(ObjectLookup {
                        object,
                        state: CacheState::Hit,
                        cached: true,
                    })
                }
                Ok(read) => {
                    fence = Some(read.fence);
                    CacheState::Miss
                }
                Err(e) => {
                    e.log("object read failed; serving from the origin");
                    CacheState::Bypass
                }
            },
        };
        let object = load().await?;
        let mut cached = false;
        if let Some(fence) = fence {
            let ttl = match &object {
                ObjectState::Found(o) if o.bytes.len() > policy.max_cached_bytes => None,
                ObjectState::Missing => Some(policy.missing_ttl),
                _ => Some(policy.ttl),
            };
            if let Some(ttl) = ttl {
                match self.write_object_fenced(key, &fence, &object, ttl).await {
                    Ok(written) => cached = written,
                    Err(e) => e.log("object write failed; served uncached"),
                }
            }
        }
        Ok(ObjectLookup {
            object,
            state,
            cached,
        })
    }

    /// The entry and its fence, in one round trip (both in the object's slot). An entry of the
    /// wrong type reads as absent, so the next fill replaces it.
    async fn read_object(&self, key: &str) -> Result<Read, StoreError> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors()
            .cmd("HMGET")
            .arg(self.keys.object_key(key))
            .arg("b")
            .arg("t")
            .arg("m")
            .arg("l")
            .cmd("GET")
            .arg(self.keys.object_fence_key(key));
        let replies: Vec<redis::Value> = self.store.pipeline("read object", &pipe).await?;
        let (fields, fence) = match replies.as_slice() {
            [fields, fence] => (fields, fence),
            _ => {
                return Err(StoreError::UnexpectedReply {
                    op: "read object",
                    detail: "not two replies".into(),
                })
            }
        };
        let fields: Vec<Option<Vec<u8>>> = match fields {
            redis::Value::ServerError(e) => {
                tracing::warn!(error = ?e, "object entry of the wrong type; it will be replaced");
                Vec::new()
            }
            other => redis::from_redis_value(other.clone()).unwrap_or_default(),
        };
        let fence = match fence {
            redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        };
        Ok(Read {
            entry: entry_of(&fields),
            fence,
        })
    }

    /// Replaces the entry if the fence still reads `fence`; whether it was written.
    async fn write_object_fenced(
        &self,
        key: &str,
        fence: &str,
        object: &ObjectState,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let script = SCRIPT.get_or_init(|| redis::Script::new(FENCED_WRITE));
        let mut invocation = script.key(self.keys.object_key(key));
        invocation.key(self.keys.object_fence_key(key)).arg(fence);
        let ttl_ms = ttl.as_millis().max(1) as u64;
        match object {
            ObjectState::Found(o) => invocation.arg("b").arg(ttl_ms).arg(&o.bytes).arg(&o.content_type),
            ObjectState::TooLarge { size } => invocation.arg("l").arg(ttl_ms).arg(*size),
            ObjectState::Missing => invocation.arg("m").arg(ttl_ms),
        };
        let written: i64 = self.store.invoke("fenced object write", &invocation).await?;
        Ok(written == 1)
    }

    /// The fences of `keys` as they are now (`''` when absent), in order: read before writing
    /// the objects' origin, then handed to [`Self::put_objects`], so a drop made in between
    /// (another writer's change reached the invalidator) keeps its effect.
    pub async fn object_fences(&self, keys: &[&str], budget: Duration) -> Result<Vec<String>, StoreError> {
        let groups: Vec<Vec<redis::Cmd>> = keys
            .iter()
            .map(|key| vec![crate::store::get(&self.keys.object_fence_key(key))])
            .collect();
        let replies = self
            .store
            .slot_groups("read fences", &groups, Some(budget))
            .await?;
        Ok(replies
            .iter()
            .map(|group| match group.first() {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(redis::Value::Int(n)) => n.to_string(),
                _ => String::new(),
            })
            .collect())
    }

    /// Writes many objects (the ingester's bulk load, which writes S3 at the same time) within
    /// `budget`: one pipeline on a single node, one concurrent pipeline per object on a cluster.
    /// Each is written only if its fence still reads what [`Self::object_fences`] returned
    /// (given beside it); returns how many were written.
    pub async fn put_objects(
        &self,
        objects: &[(String, CachedObject, String)],
        ttl: Duration,
        budget: Duration,
    ) -> Result<usize, StoreError> {
        let groups: Vec<Vec<redis::Cmd>> = objects
            .iter()
            .map(|(key, object, fence)| {
                let mut eval = redis::cmd("EVAL");
                eval.arg(FENCED_WRITE)
                    .arg(2)
                    .arg(self.keys.object_key(key))
                    .arg(self.keys.object_fence_key(key))
                    .arg(fence)
                    .arg("b")
                    .arg(ttl.as_millis().max(1) as u64)
                    .arg(&object.bytes)
                    .arg(&object.content_type);
                vec![eval]
            })
            .collect();
        let replies = self
            .store
            .slot_groups("write objects", &groups, Some(budget))
            .await?;
        match replies
            .iter()
            .flatten()
            .find(|v| matches!(v, redis::Value::ServerError(_)))
        {
            Some(e) => Err(StoreError::UnexpectedReply {
                op: "write objects",
                detail: format!("{e:?}"),
            }),
            None => Ok(replies
                .iter()
                .flatten()
                .filter(|v| matches!(v, redis::Value::Int(1)))
                .count()),
        }
    }

    /// Drops object `key` from the cache and moves its fence, so a fill that read the object
    /// before this drop cannot store it afterwards. A missing fence starts at the current time
    /// in microseconds, like generation counters: one that expired restarts above every value
    /// it had, so a fill that read an old value can never see it again.
    pub async fn drop_object(&self, key: &str) -> Result<(), StoreError> {
        let fence = self.keys.object_fence_key(key);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&fence)
            .arg(crate::generations::generation_seed())
            .arg("NX")
            .arg("PX")
            .arg(OBJECT_FENCE_TTL.as_millis() as u64)
            .ignore()
            .cmd("INCR")
            .arg(&fence)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&fence)
            .arg(OBJECT_FENCE_TTL.as_millis() as u64)
            .ignore()
            .cmd("DEL")
            .arg(self.keys.object_key(key))
            .ignore();
        self.store.pipeline::<()>("drop object", &pipe).await
    }
}

/// The entry an `HMGET b t m l` reply describes, if it is one this library wrote.
fn entry_of(fields: &[Option<Vec<u8>>]) -> Option<ObjectState> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match fields {
        [_, _, Some(_), _] => Some(ObjectState::Missing),
        [_, _, None, Some(size)] => text(size).parse().ok().map(|size| ObjectState::TooLarge { size }),
        [Some(bytes), content_type, None, None] => Some(ObjectState::Found(CachedObject {
            bytes: bytes.clone(),
            content_type: content_type
                .as_deref()
                .map_or_else(|| "application/octet-stream".into(), text),
        })),
        _ => None,
    }
}
