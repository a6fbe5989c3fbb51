//! The settings groups a function reads, each with its defaults stated once.

use sql_origin::DatabaseSettings;
use std::time::Duration;

/// Where Redis is and how to authenticate to it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `REDIS_URL`: `redis://` or `rediss://` (TLS); may hold the AUTH password.
    pub url: String,
    /// `REDIS_CLUSTER`: speak the cluster protocol (ElastiCache cluster mode).
    pub cluster: bool,
    /// `REDIS_AUTH_SECRET_ID`: a Secrets Manager secret holding the AUTH token.
    pub auth_secret_id: Option<String>,
    /// `REDIS_CA_PATH`: PEM file of CAs to trust instead of the public roots.
    pub ca_pem: Option<Vec<u8>>,
    /// `REDIS_SERVERLESS`: ElastiCache Serverless (cluster protocol, TLS, IAM tokens name the
    /// serverless resource type).
    pub serverless: bool,
    /// `REDIS_IAM_USER` + `REDIS_IAM_CACHE_NAME`: authenticate with IAM tokens.
    pub iam: Option<RedisIam>,
}

/// IAM authentication to ElastiCache: which user, on which cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisIam {
    /// The IAM-enabled ElastiCache user's ID (equal to its user name).
    pub user: String,
    /// The replication group ID or serverless cache name the tokens are signed for.
    pub cache_name: String,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"<redacted>")
            .field("cluster", &self.cluster)
            .field("auth_secret_id", &self.auth_secret_id)
            .field("custom_ca", &self.ca_pem.is_some())
            .field("serverless", &self.serverless)
            .field("iam", &self.iam)
            .finish()
    }
}

/// How requests are served: what the public may ask for, and the time and load budgets every
/// request lives within.
#[derive(Debug, Clone, PartialEq)]
pub struct ServingSettings {
    /// `CACHE_PUBLIC_BYPASS`: honour `?source=database` / `?source=s3` and
    /// `Cache-Control: no-cache` from any caller. Off by default: on public routes they would
    /// let anyone push load onto the origin.
    pub public_bypass: bool,
    /// `CACHE_MAX_ORIGIN_LOADS`: origin loads one instance runs at once (more wait, within
    /// their deadline); bounds the database load even while Redis is down. Defaults to the
    /// pool's size (`DB_MAX_CONNECTIONS`), so a load waits for a permit (until its deadline)
    /// rather than for a pooled connection (only the acquire timeout).
    pub max_origin_loads: usize,
    /// `CACHE_ANSWER_RESERVE_MS`: time kept back from the invocation's deadline to answer.
    pub answer_reserve: Duration,
    /// `FUNCTION_TIMEOUT_SECONDS`: the function's timeout, when known, to check that every
    /// budget fits inside it.
    pub function_timeout: Option<Duration>,
    /// `CACHE_ORIGIN_LOADS_PER_SECOND` / `CACHE_ORIGIN_BURST`: origin loads per second (and
    /// at once after a quiet spell) per query, per object store and per restaurant origin,
    /// across every instance; a query may set its own in the catalog.
    pub origin_limit: cache_aside::RateLimit,
    /// `CACHE_NEGATIVE_TTL_SECONDS`: how long a result with no rows stays cached, for queries
    /// that do not say (never longer than the query's TTL).
    pub negative_ttl: Duration,
    /// `REVIEWS_AUTH`: the identity a review needs.
    pub reviews_auth: ReviewsAuth,
    /// `REVIEWS_PER_AUTHOR_PER_MINUTE`: reviews one author may post a minute, across the fleet.
    pub reviews_per_author_per_minute: u32,
}

/// Who may post reviews (`REVIEWS_AUTH`). Each write drops a summary for everyone, so by
/// default a write needs an identity, and its author is that identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReviewsAuth {
    /// A JWT the API's authorizer verified (Cognito or another issuer); the author is its
    /// `cognito:username`, else its `sub`.
    #[default]
    Jwt,
    /// A SigV4-signed caller; the author is its IAM ARN.
    Iam,
    /// Anyone, under the author the body names (local runs and the demo).
    None,
}

impl Default for ServingSettings {
    fn default() -> Self {
        Self {
            public_bypass: false,
            max_origin_loads: DatabaseSettings::default().max_connections as usize,
            answer_reserve: Duration::from_millis(500),
            function_timeout: None,
            origin_limit: cache_aside::RateLimit {
                per_second: 50.0,
                burst: 100,
            },
            negative_ttl: Duration::from_secs(10),
            reviews_auth: ReviewsAuth::Jwt,
            reviews_per_author_per_minute: 10,
        }
    }
}

/// CloudWatch metrics in Embedded Metric Format, one log line per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `CACHE_METRICS`: `on`, `off`, or `auto` (the default: on inside Lambda).
    pub enabled: bool,
    /// `METRICS_NAMESPACE`: the CloudWatch namespace.
    pub namespace: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            namespace: "CacheAside".to_owned(),
        }
    }
}

/// Where the restaurant scenario (`/restaurants/...`) keeps its data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RestaurantOrigin {
    /// The catalog's `restaurant_summary` query and `add_review` statement (PostgreSQL).
    #[default]
    Sql,
    /// A DynamoDB table in the tutorial's single-table shape.
    DynamoDb {
        /// `RESTAURANTS_TABLE`.
        table: String,
    },
}
