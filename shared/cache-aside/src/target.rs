//! Where Redis is and how to reach it: URL, topology, credentials and trusted CA.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::Stream;
use redis::{BasicAuth, RedisError, RedisResult, StreamingCredentialsProvider};

/// A username and password valid for a connection opened now.
#[derive(Clone)]
pub struct ConnectionCredentials {
    /// The ACL user (ElastiCache user ID).
    pub username: String,
    /// Its password, or a short-lived token standing for one.
    pub password: String,
}

impl std::fmt::Debug for ConnectionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Credentials that change over time, such as ElastiCache IAM tokens (valid 15 minutes, and a
/// connection authenticated with one is cut after 12 hours unless it authenticates again).
///
/// Asked once for every connection when it opens, so a reconnect after a Lambda thaw or a
/// failover always presents fresh credentials: no timer has to run in a frozen sandbox. An
/// open connection asks again every [`renew_every`](Self::renew_every) and re-authenticates.
pub trait RotatingCredentials: Send + Sync + 'static {
    /// Credentials for a connection being opened or renewed now. The error is a message that
    /// names no secret.
    fn credentials(&self) -> BoxFuture<'static, Result<ConnectionCredentials, String>>;

    /// How long an open connection keeps its credentials before authenticating again.
    fn renew_every(&self) -> Duration;
}

/// Adapts a [`RotatingCredentials`] to redis-rs, with one set of credentials per connection
/// and then one per `renew_every`.
///
/// redis-rs (1.8) subscribes twice for every connection it opens: once for the handshake, whose
/// `AUTH` takes the first item at once, polled in the task that subscribed; and once for the
/// connection's re-authentication loop, a task of its own that sends `AUTH` for every item. So
/// a first item is immediate only for the subscribing task: the loop's first is due after
/// `renew_every`, since the handshake has just authenticated. (A stream that always waited
/// first would hold the handshake until its connect timeout.)
pub(crate) struct StreamingSource(pub(crate) Arc<dyn RotatingCredentials>);

impl StreamingCredentialsProvider for StreamingSource {
    fn subscribe(&self) -> Pin<Box<dyn Stream<Item = RedisResult<BasicAuth>> + Send + 'static>> {
        let source = Arc::clone(&self.0);
        let subscriber = tokio::task::try_id();
        Box::pin(futures::stream::unfold(
            (source, true),
            move |(source, first)| async move {
                let handshake = first && tokio::task::try_id() == subscriber;
                if !handshake {
                    tokio::time::sleep(source.renew_every()).await;
                }
                let item = source
                    .credentials()
                    .await
                    .map(|c| BasicAuth::new(c.username, c.password))
                    .map_err(|message| {
                        RedisError::from((
                            redis::ErrorKind::AuthenticationFailed,
                            "connection credentials unavailable",
                            message,
                        ))
                    });
                Some((item, (source, false)))
            },
        ))
    }
}

/// Everything needed to open a Redis connection.
///
/// Built from configuration at start-up. The AUTH token and any password in the URL are
/// never printed by `Debug`.
#[derive(Clone, Default)]
pub struct RedisTarget {
    /// `redis://host:port` or `rediss://host:port` (TLS). For a cluster, any node or the
    /// configuration endpoint: the others are discovered.
    pub url: String,
    /// Talk the Redis Cluster protocol (slot map, MOVED/ASK redirects).
    pub cluster: bool,
    /// AUTH token (ElastiCache) or `requirepass` password; replaces any password in the URL.
    pub auth_token: Option<String>,
    /// Credentials fetched for each connection (ElastiCache IAM); exclusive with `auth_token`.
    pub credentials: Option<Arc<dyn RotatingCredentials>>,
    /// PEM bundle of the CAs to trust for `rediss://` instead of the public web roots
    /// (a private CA, or a self-signed one in tests).
    pub ca_pem: Option<Vec<u8>>,
    /// Connect only on the URL's port, whatever else the slot map lists (cluster only).
    /// ElastiCache Serverless is one endpoint, and its slot map also names its read port (6380)
    /// as a replica: this client never reads from replicas (a read there could miss an
    /// invalidation), and connecting there costs a handshake and a token per slot refresh, or,
    /// where that port is blocked, holds every refresh until the connect timeout.
    pub endpoint_only: bool,
}

impl RedisTarget {
    /// A single-node target with no extra credentials.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Whether the connection is encrypted.
    pub fn tls(&self) -> bool {
        self.url.starts_with("rediss://")
    }
}

impl From<&str> for RedisTarget {
    fn from(url: &str) -> Self {
        Self::from_url(url)
    }
}

impl From<&String> for RedisTarget {
    fn from(url: &String) -> Self {
        Self::from_url(url.as_str())
    }
}

impl From<String> for RedisTarget {
    fn from(url: String) -> Self {
        Self::from_url(url)
    }
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("tls", &self.tls())
            .field("cluster", &self.cluster)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<redacted>"))
            .field("rotating_credentials", &self.credentials.is_some())
            .field("custom_ca", &self.ca_pem.is_some())
            .field("endpoint_only", &self.endpoint_only)
            .finish_non_exhaustive()
    }
}
