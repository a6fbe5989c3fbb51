//! Cache-aside over Redis for slow origins.
//!
//! [`Cache::get_or_load`] reads a value from Redis and, on a miss, loads it from the origin and
//! stores it in a versioned [`Envelope`] (LZ4-compressed when large) with a jittered TTL. Every Redis call has a time budget;
//! when Redis errors, times out or is known to be down (a small circuit breaker), the read goes
//! to the origin and reports [`CacheState::Bypass`] instead of failing.
//!
//! Invalidation is O(1): every entry belongs to one or more *scopes* (its query, the tables it
//! depends on) whose generation numbers take part in the Redis key. Bumping a generation makes
//! every dependent key unreachable at once, and a fill that started before the bump writes under
//! the old generation, where no later read looks.

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
