//! The Redis handle: one auto-reconnecting connection per process, a time budget on every
//! operation, one retry on a dropped connection, and a circuit breaker.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Pipeline, RedisError, RedisResult};

use crate::breaker::Breaker;
use crate::{CacheError, CacheSettings, StoreError};

/// A cheap-to-clone handle to Redis, built once per Lambda instance and reused.
///
/// The connection is established lazily, so start-up succeeds while Redis is down, and
/// re-established in the background when it drops (after a Lambda thaw, a failover, a restart).
/// The command that meets a dead socket is retried once on the fresh connection, within the
/// same budget, so callers rarely see the reconnect at all.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    op_timeout: Duration,
    breaker: Arc<Breaker>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("op_timeout", &self.op_timeout)
            .field("breaker_open", &self.breaker.is_open())
            .finish_non_exhaustive()
    }
}

/// Errors that say the connection (not the command) failed: they count against the breaker.
fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// Worth one more try on a fresh connection: a socket that died under us (Lambda thaw,
/// failover). A refused connection is not: nobody is listening, retrying only adds latency.
fn is_retryable(e: &RedisError) -> bool {
    is_connection_error(e) && !e.is_connection_refusal()
}

impl RedisStore {
    /// Builds the handle without connecting. Must run inside a Tokio runtime.
    pub fn connect_lazy(url: &str, settings: &CacheSettings) -> Result<Self, CacheError> {
        settings.validate()?;
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(CacheError::InvalidUrl(
                "the scheme must be redis:// or rediss://".into(),
            ));
        }
        let client =
            redis::Client::open(url).map_err(|e| CacheError::InvalidUrl(format!("{:?}", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.op_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| CacheError::InvalidUrl(format!("{:?}", e.kind())))?;
        Ok(Self {
            conn,
            op_timeout: settings.op_timeout,
            breaker: Arc::new(Breaker::new(settings.breaker_failures, settings.breaker_cooldown)),
        })
    }

    /// A clone of the underlying connection, for benchmarks that compare against raw commands.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Whether Redis is currently being skipped after failures.
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Runs `op` under the budget, retrying once on a connection error, and feeds the breaker.
    async fn run<T, F, Fut>(&self, name: &'static str, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_within(name, self.op_timeout, op).await
    }

    async fn run_within<T, F, Fut>(
        &self,
        name: &'static str,
        budget: Duration,
        op: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return Err(StoreError::CircuitOpen);
        }
        let deadline = tokio::time::Instant::now() + budget;
        let mut retried = false;
        let result = loop {
            match tokio::time::timeout_at(deadline, op(self.conn.clone())).await {
                Err(_) => {
                    break Err(StoreError::Timeout {
                        op: name,
                        budget: self.op_timeout,
                    });
                }
                Ok(Ok(value)) => break Ok(value),
                Ok(Err(e)) if !retried && is_retryable(&e) => {
                    tracing::debug!(op = name, error = %e, "Redis connection lost; retrying once");
                    retried = true;
                }
                Ok(Err(e)) => break Err(StoreError::Redis { op: name, source: e }),
            }
        };
        match &result {
            Err(StoreError::Timeout { .. }) => self.breaker.record_failure(),
            Err(StoreError::Redis { source, .. }) if is_connection_error(source) || source.is_timeout() => {
                self.breaker.record_failure()
            }
            // Anything else means Redis answered.
            _ => self.breaker.record_success(),
        }
        result
    }

    /// Sends a pipeline (or a MULTI/EXEC transaction) and converts the replies to `T`.
    pub async fn pipeline<T: FromRedisValue>(
        &self,
        name: &'static str,
        pipe: &Pipeline,
    ) -> Result<T, StoreError> {
        self.run(name, |mut c| async move { pipe.query_async(&mut c).await })
            .await
    }

    /// [`Self::pipeline`] with its own budget, for bulk writes larger than one request's.
    /// The connection's per-reply timeout still applies to each reply.
    pub async fn pipeline_within<T: FromRedisValue>(
        &self,
        name: &'static str,
        pipe: &Pipeline,
        budget: Duration,
    ) -> Result<T, StoreError> {
        self.run_within(
            name,
            budget,
            |mut c| async move { pipe.query_async(&mut c).await },
        )
        .await
    }

    /// `GET key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run("GET", |mut c| async move {
            redis::cmd("GET").arg(key).query_async(&mut c).await
        })
        .await
    }

    /// `SET key value PX ttl`.
    pub async fn set_px(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        self.run("SET", |mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// `SET key token NX PX ttl`: whether the lock was taken.
    pub async fn try_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let reply: Option<String> = self
            .run("SET NX", |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(reply.is_some())
    }

    /// Deletes `key` only if it still holds `token` (a lock that expired and was taken by
    /// someone else is left alone).
    pub async fn unlock(&self, key: &str, token: &str) -> Result<bool, StoreError> {
        static RELEASE: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        let script = RELEASE.get_or_init(|| {
            redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
            )
        });
        let deleted: i64 = self
            .run("unlock", |mut c| async move {
                script.key(key).arg(token).invoke_async(&mut c).await
            })
            .await?;
        Ok(deleted == 1)
    }

    /// `PING`, returning the round-trip time. Bypasses the breaker so health checks always
    /// report the truth.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        let ping = async {
            let mut c = self.conn.clone();
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        match tokio::time::timeout(self.op_timeout, ping).await {
            Err(_) => Err(StoreError::Timeout {
                op: "PING",
                budget: self.op_timeout,
            }),
            Ok(Err(source)) => Err(StoreError::Redis { op: "PING", source }),
            Ok(Ok(_)) => Ok(started.elapsed()),
        }
    }
}
