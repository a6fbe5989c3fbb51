//! Byte objects (S3 objects) cached as Redis hashes: `b` = the exact bytes, `t` = content type,
//! or `m` = "the origin has no such object" (a short negative entry).
//!
//! Bytes are stored as they are, not in the JSON envelope: no base64 growth, and Redis holds
//! byte-for-byte what S3 holds.

use std::future::Future;
use std::time::Duration;

use crate::cache::log_store_error;
use crate::{Cache, CacheState, ReadMode, StoreError};

/// An object's bytes and content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedObject {
    /// Content.
    pub bytes: Vec<u8>,
    /// `Content-Type`.
    pub content_type: String,
}

/// How objects are cached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectPolicy {
    /// TTL of a cached object.
    pub ttl: Duration,
    /// TTL of a negative entry.
    pub missing_ttl: Duration,
    /// Larger objects are served but not cached.
    pub max_cached_bytes: usize,
}

/// The outcome of an object read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLookup {
    /// The object, or `None` when the origin has none.
    pub object: Option<CachedObject>,
    /// Where the answer came from.
    pub state: CacheState,
    /// False when the object was too large to cache.
    pub cached: bool,
}

impl Cache {
    /// Object `key` from Redis, else from `load` (then cached, including "missing").
    /// Redis trouble never fails the read; only `load`'s error is returned.
    pub async fn get_or_load_object<E, F, Fut>(
        &self,
        key: &str,
        policy: ObjectPolicy,
        mode: ReadMode,
        load: F,
    ) -> Result<ObjectLookup, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<CachedObject>, E>>,
    {
        let redis_key = self.keys.object_key(key);
        let mut state = CacheState::Miss;
        match mode {
            ReadMode::Bypass => state = CacheState::Bypass,
            ReadMode::Refresh => {}
            ReadMode::Cached => match self.read_object(&redis_key).await {
                Ok(Some(object)) => {
                    return Ok(ObjectLookup {
                        object,
                        state: CacheState::Hit,
                        cached: true,
                    })
                }
                Ok(None) => {}
                Err(e) => {
                    log_store_error(&e, "object read failed; serving from the origin");
                    state = CacheState::Bypass;
                }
            },
        }
        let object = load().await?;
        let mut cached = state != CacheState::Bypass;
        if cached {
            let written = match &object {
                Some(o) if o.bytes.len() > policy.max_cached_bytes => {
                    cached = false;
                    Ok(())
                }
                Some(o) => self.write_object(&redis_key, Some(o), policy.ttl).await,
                None => self.write_object(&redis_key, None, policy.missing_ttl).await,
            };
            if let Err(e) = written {
                log_store_error(&e, "object write failed; served uncached");
            }
        }
        Ok(ObjectLookup {
            object,
            state,
            cached,
        })
    }

    /// `Ok(None)`: not cached; `Ok(Some(None))`: cached as missing.
    async fn read_object(&self, redis_key: &str) -> Result<Option<Option<CachedObject>>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(redis_key).arg("b").arg("t").arg("m");
        let (fields,): (Vec<Option<Vec<u8>>>,) = self.store.pipeline("read object", &pipe).await?;
        Ok(match fields.as_slice() {
            [_, _, Some(_)] => Some(None),
            [Some(bytes), content_type, None] => Some(Some(CachedObject {
                bytes: bytes.clone(),
                content_type: content_type
                    .as_deref()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .unwrap_or_else(|| "application/octet-stream".into()),
            })),
            _ => None,
        })
    }

    /// Replaces the entry atomically (MULTI on one key: one slot).
    async fn write_object(
        &self,
        redis_key: &str,
        object: Option<&CachedObject>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for cmd in object_write(redis_key, object, ttl) {
            pipe.add_command(cmd).ignore();
        }
        self.store.pipeline::<()>("write object", &pipe).await
    }

    /// Writes many objects (the ingester's bulk load) within `budget`: one pipeline on a single
    /// node, one concurrent pipeline per object on a cluster.
    pub async fn put_objects(
        &self,
        objects: &[(String, CachedObject)],
        ttl: Duration,
        budget: Duration,
    ) -> Result<(), StoreError> {
        let groups: Vec<Vec<redis::Cmd>> = objects
            .iter()
            .map(|(key, object)| object_write(&self.keys.object_key(key), Some(object), ttl))
            .collect();
        self.store
            .slot_groups("write objects", &groups, Some(budget))
            .await
            .map(drop)
    }

    /// Drops object `key` from the cache.
    pub async fn drop_object(&self, key: &str) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(self.keys.object_key(key)).ignore();
        self.store.pipeline::<()>("drop object", &pipe).await
    }
}

/// The commands that replace one object entry (all on `redis_key`, so one hash slot).
fn object_write(redis_key: &str, object: Option<&CachedObject>, ttl: Duration) -> Vec<redis::Cmd> {
    let mut del = redis::cmd("DEL");
    del.arg(redis_key);
    let mut hset = redis::cmd("HSET");
    hset.arg(redis_key);
    match object {
        Some(o) => hset.arg("b").arg(&o.bytes).arg("t").arg(&o.content_type),
        None => hset.arg("m").arg(1),
    };
    let mut expire = redis::cmd("PEXPIRE");
    expire.arg(redis_key).arg(ttl.as_millis().max(1) as u64);
    vec![del, hset, expire]
}
