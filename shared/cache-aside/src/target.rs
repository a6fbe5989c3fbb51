//! Where Redis is and how to reach it: URL, topology, AUTH token and trusted CA.

/// Everything needed to open a Redis connection.
///
/// Built from configuration at start-up. The AUTH token and any password in the URL are
/// never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisTarget {
    /// `redis://host:port` or `rediss://host:port` (TLS). For a cluster, any node or the
    /// configuration endpoint: the others are discovered.
    pub url: String,
    /// Talk the Redis Cluster protocol (slot map, MOVED/ASK redirects).
    pub cluster: bool,
    /// AUTH token (ElastiCache) or `requirepass` password; replaces any password in the URL.
    pub auth_token: Option<String>,
    /// PEM bundle of the CAs to trust for `rediss://` instead of the public web roots
    /// (a private CA, or a self-signed one in tests).
    pub ca_pem: Option<Vec<u8>>,
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
            .field("custom_ca", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}
