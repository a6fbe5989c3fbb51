//! Cache-aside over Redis for slow origins: a database, an HTTP API, anything you can call
//! with an async function.
//!
//! [`Cache::get_or_load`] reads a value from Redis and, on a miss, loads it from the origin and
//! stores it in a versioned [`Envelope`] (LZ4-compressed when large) with a jittered TTL. The
//! crate knows nothing about the origin: the loader is any closure returning a future of
//! `Result<T, E>`, where `T` is `Serialize + DeserializeOwned + Clone + Send + Sync + 'static`
//! (the in-memory tier keeps decoded values and hands out clones, which for an `Arc`-backed
//! value is a reference count); `E` is the only error a read returns. It was written
//! for AWS Lambda next to ElastiCache (many short-lived instances, each serving one request at
//! a time, frozen between requests) and works the same in any Tokio program.
//!
//! # What it does, and why
//!
//! - **One load per cold key, across instances.** When a key is missing, one request takes a
//!   fill lock in Redis and calls the origin; the other requests (in this process they queue on a
//!   local gate, in other processes they poll Redis with bounded backoff) wait for its value
//!   instead of each sending the same slow query: no stampede when a hot key expires or is
//!   invalidated. [`Read::deadline`] (else [`CacheSettings::fill_wait`]) bounds the wait.
//! - **Early refresh and stale serving.** [`Freshness`] sets, per call, the TTL, a
//!   stale-while-revalidate window (after expiry one request refreshes while the others get the
//!   old value, `stale`), a stale-if-error window (the old value when the origin fails), and the
//!   beta of XFetch ([`xfetch_due`]): a hot key whose load is slow is refreshed a little *before*
//!   it expires, by one request. Refreshes run inside the caller's request, never in the
//!   background, since a Lambda sandbox is frozen once it has answered.
//! - **Invalidation by tags, in O(1).** Every entry belongs to one or more *scopes* (say
//!   `query:top_products` and `tag:products`, see [`EntryKey::with_scope`]) whose generation
//!   numbers take part in the Redis key. [`Cache::invalidate`] bumps a generation, which makes
//!   every dependent key unreachable at once, however many there are (they expire by themselves).
//!   A fill that started before the bump writes under the old generation, where no later read
//!   looks, so a slow load can never bring back a value older than the invalidation.
//! - **Redis down is not an outage.** Every Redis call has a time budget, a dropped connection is
//!   retried once on a fresh one, and after repeated failures a small circuit breaker skips Redis
//!   for a cool-down. A read never fails because of Redis: the value comes from the origin and the
//!   answer says [`CacheState::Bypass`] with [`BypassReason::RedisUnavailable`]. Only start-up
//!   ([`CacheError`]) and explicit administration such as [`Cache::invalidate`] report Redis
//!   errors.
//! - **An in-memory tier.** A value read from Redis is kept in the process (bounded by bytes,
//!   [`CacheSettings::memory_max_bytes`]) and answered from there without a round trip for a
//!   short trust ([`CacheSettings::memory_trust`], 100 ms by default, or per call
//!   [`Freshness::memory_trust`]): the bound on how late this instance sees an invalidation made
//!   in another one. An invalidation made in this instance clears it at once.
//!
//! Connecting is lazy (start-up succeeds while Redis is down) and the connection reconnects by
//! itself; single node or Redis Cluster, plain or TLS (`rediss://`), with an AUTH token or
//! rotating credentials such as ElastiCache IAM tokens ([`RedisTarget`]).
//!
//! # Main types
//!
//! - [`Cache`]: the cache; build one per process with [`Cache::connect_lazy`] (inside a Tokio
//!   runtime) and share it. Reads: [`Cache::get_or_load`] (a TTL),
//!   [`Cache::get_or_load_with`] (a [`Freshness`]), [`Cache::get_or_load_classified`]
//!   (negative results, such as "no rows", kept for a shorter TTL). Invalidation:
//!   [`Cache::invalidate`].
//! - [`CacheSettings`]: namespace (the prefix of every key), default TTL and jitter, Redis time
//!   budgets, breaker, fill lock, compression, in-memory tier; every field has a default.
//! - [`RedisTarget`]: where Redis is (a URL converts into one) and how to authenticate.
//! - [`EntryKey`]: what is cached: a family (`kind`), a name, the typed parameters (hashed from
//!   their canonical JSON, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are one key) and the scopes
//!   whose invalidation drops it. [`KeySpace`] turns it into Redis keys.
//! - [`Freshness`]: how one call's entries age (TTL, stale windows, early refresh, size limit,
//!   memory trust); [`Freshness::ttl`] is the plain case.
//! - [`Read`] and [`ReadMode`]: [`ReadMode::Cached`] (the normal path), [`ReadMode::Refresh`]
//!   (reload and overwrite) or [`ReadMode::Bypass`] (origin only); [`Read::until`] adds the
//!   deadline of the caller's answer. A `ReadMode` converts into a `Read`.
//! - [`Lookup`]: the value and how it was obtained: [`CacheState`] (`hit`, `miss`, `stale`,
//!   `bypass`), the tier that answered ([`Lookup::tier`]), freshness left, load time.
//! - [`CacheMetrics`] ([`Cache::metrics`]): Redis operations, origin loads and lock waits since
//!   the last [`CacheMetrics::take`], for per-request metrics.
//! - Also here: byte objects cached as they are ([`Cache::get_or_load_object`]), fleet-wide
//!   token buckets ([`Cache::take_token`]) and leases with fencing tokens
//!   ([`Cache::acquire_lease`]), all kept in the same Redis.
//!
//! # Example
//!
//! Caching an arbitrary async loader, then invalidating by tag (needs a Redis server, so it
//! is compiled but not run here; `examples/http_cache.rs` is a complete program around an HTTP
//! origin):
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cache_aside::{Cache, CacheSettings, EntryKey, Freshness, ReadMode};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct Profile {
//!     id: u64,
//!     name: String,
//! }
//!
//! /// The slow origin: any async function returning a `Result`.
//! async fn load_profile(id: u64) -> Result<Profile, std::io::Error> {
//!     Ok(Profile { id, name: format!("user {id}") })
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Once per process (in a Lambda, before the handler loop). Lazy: this succeeds even
//!     // while Redis is down, and reads then go to the origin.
//!     let settings = CacheSettings {
//!         namespace: "profiles".into(),
//!         ..CacheSettings::default()
//!     };
//!     let cache = Cache::connect_lazy("redis://127.0.0.1:6379", settings)?;
//!
//!     // What is cached, and which scopes' invalidation drops it.
//!     let id: u64 = 42;
//!     let entry = EntryKey::new("api", "profile", &serde_json::json!({ "id": id }))?
//!         .with_scope("tag:profiles")?;
//!
//!     // Fresh for a minute; then served stale for 30 s while one request refreshes it, and
//!     // for 10 minutes if the origin fails.
//!     let freshness = Freshness {
//!         stale_while_revalidate: Duration::from_secs(30),
//!         stale_if_error: Duration::from_secs(600),
//!         ..Freshness::ttl(Some(Duration::from_secs(60)))
//!     };
//!
//!     // Only the loader's error comes back: Redis trouble turns the read into a bypass.
//!     let lookup = cache
//!         .get_or_load_with(&entry, freshness, ReadMode::Cached, || load_profile(id))
//!         .await?;
//!     println!(
//!         "{:?}: {} from {}",
//!         lookup.value,
//!         lookup.state.as_str(),
//!         lookup.tier().unwrap_or("the origin")
//!     );
//!
//!     // After a write to the origin: every entry tagged `tag:profiles` is gone at once.
//!     let generation = cache.invalidate("tag:profiles").await?;
//!     println!("tag:profiles is at generation {generation}");
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

mod breaker;
mod cache;
mod codec;
mod connection;
mod envelope;
mod error;
mod fill;
mod freshness;
mod generations;
mod key;
mod lease;
mod lock;
mod memory;
mod metrics;
mod objects;
mod outcome;
mod rate;
mod read;
mod settings;
mod store;
mod target;

pub use cache::Cache;
pub use codec::{CodecError, Compression, MAX_DECOMPRESSED_BYTES};
pub use connection::RedisConnection;
pub use envelope::{Envelope, EnvelopeError, ENVELOPE_VERSION};
pub use error::{CacheError, StoreError};
pub use freshness::{unix_now_ms, xfetch_due, Freshness, TtlPolicy};
pub use generations::MAX_TRACKED_SCOPES;
pub use key::{params_digest, EntryKey, KeySpace};
pub use lease::{Lease, Mark, MarkRaise};
pub use metrics::{CacheMetrics, MetricsSnapshot};
pub use objects::{CachedObject, ObjectLookup, ObjectPolicy, ObjectState, OBJECT_FENCE_TTL};
pub use outcome::{BypassReason, CacheState, Lookup};
pub use rate::{Admission, RateLimit};
pub use read::{Read, ReadMode};
pub use settings::CacheSettings;
pub use store::{RedisStore, MAX_COMMAND_ARGS};
pub use target::{ConnectionCredentials, RedisTarget, RotatingCredentials};
