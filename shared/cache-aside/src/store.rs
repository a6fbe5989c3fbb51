//! The Redis handle: one auto-reconnecting connection per process (opened by
//! `connection.rs`), a time budget on every operation, one retry on a dropped connection, and
//! a circuit breaker. The commands the cache sends are built here too.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisResult, Value};

use crate::breaker::Breaker;
use crate::connection::RedisConnection;
use crate::error::{CacheError, StoreError};
use crate::metrics::CacheMetrics;
use crate::settings::CacheSettings;
use crate::target::RedisTarget;

/// A cheap-to-clone handle to Redis, built once per Lambda instance and reused.
///
/// The connection is established lazily, so start-up succeeds while Redis is down, and
/// re-established in the background when it drops (after a Lambda thaw, a failover, a restart).
/// The command that meets a dead socket is retried once on the fresh connection, within the
/// same budget, so callers rarely see the reconnect at all.
#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConnection,
    op_timeout: Duration,
    breaker: Arc<Breaker>,
    metrics: Arc<CacheMetrics>,
    /// Bumped whenever the connection may have been replaced (a dropped socket, a timeout);
    /// what was read from Redis before is then not trusted in memory.
    epoch: Arc<AtomicU64>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &self.is_cluster())
            .field("op_timeout", &self.op_timeout)
            .field("breaker_open", &self.breaker.is_open())
            .finish_non_exhaustive()
    }
}

/// Most arguments (the command name included) one command may carry: ElastiCache Serverless
/// refuses more than 3,999. Every command built here is far below it; batches are split by the
/// callers (the ingester writes 200 objects per batch).
pub const MAX_COMMAND_ARGS: usize = 3_999;

/// Errors that say the connection (not the command) failed: they count against the breaker.
fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        // A cluster whose node connections all died: the client reconnects on this error.
        || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
}

/// Worth one more try on a fresh connection: a socket that died under us (Lambda thaw,
/// failover). A refused connection is not: nobody is listening, retrying only adds latency.
fn is_retryable(e: &RedisError) -> bool {
    is_connection_error(e) && !e.is_connection_refusal()
}

impl RedisStore {
    /// Builds the handle without connecting. Must run inside a Tokio runtime.
    pub fn connect_lazy(target: &RedisTarget, settings: &CacheSettings) -> Result<Self, CacheError> {
        settings.validate()?;
        let conn = crate::connection::open(target, settings)?;
        Ok(Self {
            conn,
            op_timeout: settings.op_timeout,
            breaker: Arc::new(Breaker::new(settings.breaker_failures, settings.breaker_cooldown)),
            metrics: Arc::default(),
            epoch: Arc::default(),
        })
    }

    /// The connection epoch shared with the in-process tier.
    pub(crate) fn epoch_handle(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.epoch)
    }

    /// The counters this handle adds its Redis timings to; the [`crate::Cache`] built over it
    /// shares and exposes them.
    pub(crate) fn shared_metrics(&self) -> Arc<CacheMetrics> {
        Arc::clone(&self.metrics)
    }

    /// A clone of the underlying connection, for benchmarks and tests that send raw commands.
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// Whether this handle talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, RedisConnection::Cluster(_))
    }

    /// Whether Redis is currently being skipped after failures.
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Runs `op` under the budget, retrying once on a connection error, and feeds the breaker.
    async fn run<T, F, Fut>(&self, name: &'static str, op: F) -> Result<T, StoreError>
    where
        F: Fn(RedisConnection) -> Fut,
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
        F: Fn(RedisConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return Err(StoreError::CircuitOpen);
        }
        let started = Instant::now();
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
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    retried = true;
                }
                Ok(Err(e)) => break Err(StoreError::Redis { op: name, source: e }),
            }
        };
        self.metrics.redis_op(started.elapsed());
        match &result {
            Err(StoreError::Timeout { .. }) => {
                self.epoch.fetch_add(1, Ordering::AcqRel);
                self.breaker.record_failure()
            }
            Err(StoreError::Redis { source, .. }) if is_connection_error(source) || source.is_timeout() => {
                self.epoch.fetch_add(1, Ordering::AcqRel);
                self.breaker.record_failure()
            }
            // Anything else means Redis answered.
            _ => self.breaker.record_success(),
        }
        result
    }

    /// Sends a pipeline (or a MULTI/EXEC transaction) and converts the replies to `T`.
    /// Every command must touch the same hash slot (Redis Cluster rejects anything else); see
    /// [`Self::slot_groups`] for commands spread over several slots.
    pub async fn pipeline<T: FromRedisValue>(
        &self,
        name: &'static str,
        pipe: &Pipeline,
    ) -> Result<T, StoreError> {
        self.run(name, |mut c| async move { pipe.query_async(&mut c).await })
            .await
    }

    /// Runs groups of commands where each group touches one hash slot, returning every reply
    /// of every group in order. An error reply of one command (a key of the wrong type) comes
    /// back as [`Value::ServerError`] in its place instead of failing the whole call. On a single node this is one pipeline (one round trip); on a
    /// cluster each group is its own pipeline, all sent concurrently, so the latency is still
    /// about one round trip to the slowest node involved.
    pub async fn slot_groups(
        &self,
        name: &'static str,
        groups: &[Vec<Cmd>],
        budget: Option<Duration>,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let budget = budget.unwrap_or(self.op_timeout);
        let longest = groups
            .iter()
            .flatten()
            .map(|c| c.args_iter().count())
            .max()
            .unwrap_or(0);
        if longest > MAX_COMMAND_ARGS {
            return Err(StoreError::TooManyArguments {
                op: name,
                args: longest,
                max: MAX_COMMAND_ARGS,
            });
        }
        if self.is_cluster() {
            let pipes: Vec<Pipeline> = groups.iter().map(pipeline_of).collect();
            let pipes = &pipes;
            self.run_within(name, budget, |conn| async move {
                let sends = pipes.iter().map(|pipe| {
                    let mut conn = conn.clone();
                    async move { pipe.query_async::<Vec<Value>>(&mut conn).await }
                });
                futures::future::try_join_all(sends).await
            })
            .await
        } else {
            let pipe = pipeline_of(groups.iter().flatten());
            let pipe = &pipe;
            let flat: Vec<Value> = self
                .run_within(name, budget, |mut conn| async move {
                    pipe.query_async(&mut conn).await
                })
                .await?;
            let mut flat = flat.into_iter();
            Ok(groups
                .iter()
                .map(|g| flat.by_ref().take(g.len()).collect())
                .collect())
        }
    }

    /// `GET key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run("GET", |mut c| async move {
            redis::cmd("GET").arg(key).query_async(&mut c).await
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

    /// Runs a Lua script invocation (its keys must share a hash slot).
    pub async fn invoke<T: FromRedisValue>(
        &self,
        name: &'static str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.run(name, |mut c| async move { invocation.invoke_async(&mut c).await })
            .await
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

/// A plain pipeline of `cmds`, every reply kept, error replies included.
fn pipeline_of<'a>(cmds: impl IntoIterator<Item = &'a Cmd>) -> Pipeline {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for cmd in cmds {
        pipe.add_command(cmd.clone());
    }
    pipe
}

/// `GET key`, for pipelines.
pub(crate) fn get(key: &str) -> Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error(kind: std::io::ErrorKind) -> RedisError {
        RedisError::from(std::io::Error::new(kind, "test"))
    }

    fn closed_port_settings() -> CacheSettings {
        CacheSettings {
            op_timeout: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(100),
            breaker_failures: 2,
            breaker_cooldown: Duration::from_secs(60),
            ..CacheSettings::default()
        }
    }

    #[test]
    fn only_dropped_sockets_are_retried() {
        let reset = io_error(std::io::ErrorKind::ConnectionReset);
        assert!(is_connection_error(&reset) && is_retryable(&reset));
        let refused = io_error(std::io::ErrorKind::ConnectionRefused);
        assert!(is_connection_error(&refused) && !is_retryable(&refused));
        let answered = RedisError::from((redis::ErrorKind::UnexpectedReturnType, "not a string"));
        assert!(!is_connection_error(&answered) && !is_retryable(&answered));
    }

    #[tokio::test]
    async fn urls_are_checked_without_echoing_them() {
        let settings = CacheSettings::default();
        let refuse = |target: RedisTarget| match RedisStore::connect_lazy(&target, &settings) {
            Err(CacheError::InvalidUrl(problem)) => problem,
            other => panic!("expected InvalidUrl, got {other:?}"),
        };
        let scheme = refuse(RedisTarget::from_url("http://user:secret@host:1"));
        assert!(
            scheme.contains("redis://") && !scheme.contains("secret"),
            "{scheme}"
        );
        let ca_without_tls = refuse(RedisTarget {
            ca_pem: Some(b"pem".to_vec()),
            ..RedisTarget::from_url("redis://127.0.0.1:1")
        });
        assert!(ca_without_tls.contains("not rediss://"), "{ca_without_tls}");
        let store =
            RedisStore::connect_lazy(&RedisTarget::from_url("redis://127.0.0.1:1"), &settings).unwrap();
        assert!(!store.is_cluster() && !format!("{store:?}").contains("127.0.0.1"));
    }

    #[tokio::test]
    async fn failures_open_the_breaker_and_ping_still_reports_the_truth() {
        let target = RedisTarget::from_url("redis://127.0.0.1:1");
        let store = RedisStore::connect_lazy(&target, &closed_port_settings()).unwrap();
        for _ in 0..2 {
            assert!(matches!(
                store.get("k").await,
                Err(StoreError::Redis { .. } | StoreError::Timeout { .. })
            ));
        }
        assert!(store.breaker_open());
        assert!(matches!(store.get("k").await, Err(StoreError::CircuitOpen)));
        assert!(
            !matches!(store.ping().await, Err(StoreError::CircuitOpen)),
            "health checks bypass the breaker"
        );
    }

    #[test]
    fn pipelines_keep_every_command() {
        let cmds = [redis::cmd("PING"), redis::cmd("TIME")];
        let pipe = pipeline_of(&cmds);
        assert_eq!(pipe.cmd_iter().count(), 2);
    }

    #[tokio::test]
    async fn commands_longer_than_serverless_accepts_are_not_sent() {
        let store = RedisStore::connect_lazy(
            &RedisTarget::from_url("redis://127.0.0.1:1"),
            &closed_port_settings(),
        )
        .unwrap();
        let mut del = redis::cmd("DEL");
        for i in 0..MAX_COMMAND_ARGS {
            del.arg(i);
        }
        match store.slot_groups("delete", &[vec![del]], None).await {
            Err(StoreError::TooManyArguments { args, .. }) => assert_eq!(args, MAX_COMMAND_ARGS + 1),
            other => panic!("expected TooManyArguments, got {other:?}"),
        }
    }
}
