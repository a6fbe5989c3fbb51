//! Errors of the cache layer. Reads never fail because of Redis; these surface only where the
//! caller must know (start-up, explicit invalidation, health checks).

use std::time::Duration;

/// Why a Redis operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The operation ran out of its time budget (Redis slow, blocked or unreachable).
    #[error("Redis {op} timed out after {budget:?}")]
    Timeout {
        /// The operation that timed out.
        op: &'static str,
        /// The budget it had.
        budget: Duration,
    },
    /// Recent operations failed, so Redis is skipped until the cool-down ends.
    #[error("Redis skipped: circuit open after repeated failures")]
    CircuitOpen,
    /// Redis answered with an error or the connection failed.
    #[error("Redis {op} failed: {source}")]
    Redis {
        /// The operation that failed.
        op: &'static str,
        /// The client's error (never carries the password).
        #[source]
        source: redis::RedisError,
    },
    /// A command has more arguments than ElastiCache Serverless accepts
    /// (`MAX_COMMAND_ARGS`); it was not sent.
    #[error("Redis {op} not sent: a command has {args} arguments, more than {max}")]
    TooManyArguments {
        /// The operation.
        op: &'static str,
        /// Its longest command's argument count (the command name included).
        args: usize,
        /// The most a command may carry.
        max: usize,
    },
    /// Redis answered with something this library did not write.
    #[error("unexpected Redis reply to {op}: {detail}")]
    UnexpectedReply {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl StoreError {
    /// Logs this failure of `what`, which the cache absorbs (the read goes on without Redis).
    pub(crate) fn log(&self, what: &str) {
        match self {
            // Already reported when the breaker opened; stay quiet while it is open.
            Self::CircuitOpen => tracing::debug!(error = %self, "{what}"),
            _ => tracing::warn!(error = %self, "{what}"),
        }
    }
}

/// Errors from building or administering a cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A setting is out of range or malformed.
    #[error("invalid cache setting: {0}")]
    Settings(String),
    /// The Redis URL could not be used (the URL itself is never echoed: it may hold a password).
    #[error("the Redis URL is not a valid redis:// or rediss:// URL: {0}")]
    InvalidUrl(String),
    /// A key part is not allowed (empty, too long, or with characters that break key layout).
    #[error("invalid cache key part {part:?}: {reason}")]
    InvalidKey {
        /// The offending part.
        part: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// Parameters could not be canonicalised for hashing.
    #[error("cache parameters cannot be encoded: {0}")]
    Params(#[from] serde_json::Error),
    /// Redis could not carry out an operation that must not silently fail.
    #[error(transparent)]
    Store(#[from] StoreError),
}
