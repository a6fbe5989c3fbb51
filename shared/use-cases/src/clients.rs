//! The clients a function may need, and their builders: built once from the configuration, and
//! put together per function only by the composition root (`compose.rs`). Nothing is connected
//! here; Redis and the databases connect on first use.

use std::sync::Arc;

use aws_clients::{
    load_sdk_config, ElastiCacheIam, ObjectStore, SdkConfig, SecretError, Secrets, TokenError,
};
use cache_aside::{Cache, CacheError, ConnectionCredentials, ObjectPolicy, RedisTarget, RotatingCredentials};
use dynamo_origin::RestaurantTable;
use query_catalog::{Catalog, CatalogError, PlaceholderStyle};
use service_config::InvalidationSource;
use service_config::{DatabaseRoleSecrets, DatabaseSource, DbEndpoint, RestaurantOrigin, ServiceConfig};
use sql_origin::{
    CredentialSource, CredentialsFuture, Database, Databases, DbCredentials, DbError, Engine, RoleLogin,
};

/// Why the function cannot start. Messages name the setting, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The catalog is invalid or does not fit the configured databases.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The cache cannot be built.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The Redis AUTH token cannot be read from its secret.
    #[error("the Redis AUTH token cannot be read: {0}")]
    RedisAuth(#[source] SecretError),
    /// A database role's secret cannot be read.
    #[error("a database role's secret cannot be read: {0}")]
    RoleSecret(#[source] SecretError),
    /// IAM authentication to ElastiCache cannot be set up.
    #[error("ElastiCache IAM authentication: {0}")]
    RedisIam(#[source] TokenError),
    /// A change feed cannot be set up.
    #[error("change feed: {0}")]
    ChangeFeed(#[from] change_feed::FeedError),
    /// A database cannot be set up.
    #[error("database {name:?}: {source}")]
    Database {
        /// The catalog's name for it.
        name: String,
        /// Why.
        #[source]
        source: DbError,
    },
}

/// Reads database credentials from a Secrets Manager secret in the RDS JSON shape.
#[derive(Debug)]
struct SecretCredentials {
    secrets: Secrets,
    id: String,
    /// The configured name of the database (names its fallback settings in errors).
    database: String,
    endpoint: DbEndpoint,
}

impl CredentialSource for SecretCredentials {
    fn fetch(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            let secret = self
                .secrets
                .db_secret(&self.id)
                .await
                .map_err(|e| DbError::Credentials(e.to_string()))?;
            let missing = |field: &str| {
                DbError::Credentials(format!(
                    "secret {:?} has no {field} and {} is not set",
                    self.id,
                    DbEndpoint::variable(field, &self.database)
                ))
            };
            let engine_name = secret
                .engine
                .or_else(|| self.endpoint.engine.clone())
                .ok_or_else(|| missing("engine"))?;
            let engine = Engine::of_secret(&engine_name).ok_or_else(|| {
                DbError::Credentials(format!(
                    "secret {:?} names unsupported engine {engine_name:?}",
                    self.id
                ))
            })?;
            let host = secret
                .host
                .or_else(|| self.endpoint.host.clone())
                .ok_or_else(|| missing("host"))?;
            Ok(DbCredentials {
                engine,
                host,
                port: secret.port.or(self.endpoint.port),
                username: secret.username,
                password: secret.password,
                dbname: secret.dbname.or_else(|| self.endpoint.dbname.clone()),
            })
        })
    }
}

/// Clients of one Lambda instance: built once in `main`, shared by every invocation. The use
/// cases are its methods (see the other modules of this crate).
#[derive(Debug)]
pub struct Clients {
    /// Redis cache.
    pub(crate) cache: Cache,
    /// Named queries.
    pub(crate) catalog: Catalog,
    /// The configured databases.
    pub(crate) databases: Databases,
    /// Logins for the service's statements, where they differ from `databases`'.
    pub(crate) writers: Databases,
    /// The least-privilege roles' logins (the reading one, the writing one), when this
    /// function creates them (the ingester).
    pub(crate) role_logins: Option<RoleLogins>,
    /// The DynamoDB restaurant table, when restaurants live there rather than in SQL.
    pub(crate) restaurant_table: Option<RestaurantTable>,
    /// S3 objects, when a bucket is configured.
    pub(crate) objects: Option<ObjectStore>,
    /// How objects are cached.
    pub(crate) object_policy: ObjectPolicy,
    /// One permit per origin load allowed to run at once.
    pub(crate) origin_permits: tokio::sync::Semaphore,
    /// Kept back from a deadline to answer.
    pub(crate) answer_reserve: std::time::Duration,
    /// Each origin's fleet-wide load budget, unless its query sets one.
    pub(crate) origin_limit: cache_aside::RateLimit,
    /// TTL of negative results, unless their query sets one.
    pub(crate) negative_ttl: std::time::Duration,
    /// Reviews one author may post, across the fleet.
    pub(crate) author_limit: cache_aside::RateLimit,
    /// The last health probes and when they were taken.
    pub(crate) last_health: std::sync::Mutex<Option<(std::time::Instant, crate::Health)>>,
}

impl Clients {
    /// The Redis cache (administration, health, benchmarks).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The named queries.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The S3 bucket, when one is configured.
    pub fn objects(&self) -> Option<&ObjectStore> {
        self.objects.as_ref()
    }

    /// The DynamoDB restaurant table, when restaurants live there.
    pub fn restaurant_table(&self) -> Option<&dynamo_origin::RestaurantTable> {
        self.restaurant_table.as_ref()
    }

    /// The configured databases (bulk loads of demo data).
    pub fn databases(&self) -> &Databases {
        &self.databases
    }

    /// Largest object served; larger ones are never read.
    pub fn max_object_bytes(&self) -> u64 {
        self.object_policy.max_serve_bytes as u64
    }

    /// What the cache did since the last call (Redis operations, loads, waits): read once per
    /// request for its metrics.
    pub fn cache_metrics(&self) -> cache_aside::MetricsSnapshot {
        self.cache.metrics().take()
    }

    /// Builds every client. Redis and the databases are connected lazily (start-up succeeds
    /// while they are down); credentials held in Secrets Manager are read now.
    pub async fn build(config: &ServiceConfig) -> Result<Self, StartupError> {
        log_warnings(config);
        let catalog = Catalog::load(config.catalog_path.as_deref())?;
        let needs_aws = config.objects_bucket.is_some()
            || config.restaurants != RestaurantOrigin::Sql
            || needs_aws_for_redis(config)
            || config.database_roles.is_some()
            || config
                .databases
                .iter()
                .chain(&config.write_databases)
                .any(|(_, s)| matches!(s, DatabaseSource::Secret { .. }));
        let sdk = if needs_aws {
            Some(load_sdk_config(&config.aws).await)
        } else {
            None
        };
        let cache = connect_cache(config, sdk.as_ref()).await?;
        let databases = open_databases(&config.databases, config, sdk.as_ref()).await?;
        let writers = open_databases(&config.write_databases, config, sdk.as_ref()).await?;
        let role_logins = match (&config.database_roles, &sdk) {
            (Some(secrets), Some(sdk)) => Some(read_role_logins(secrets, sdk).await?),
            _ => None,
        };
        let styles: Vec<(&str, PlaceholderStyle)> = databases
            .iter()
            .map(|d| (d.name(), placeholder_style(d.engine())))
            .collect();
        for missing in catalog.check_databases(&styles)? {
            tracing::warn!(database = %missing, "catalog queries use an unconfigured database; they answer 503");
        }
        let objects = match (&config.objects_bucket, &sdk) {
            (Some(bucket), Some(sdk)) => Some(ObjectStore::new(sdk, bucket)),
            _ => None,
        };
        let restaurant_table = match (&config.restaurants, &sdk) {
            (RestaurantOrigin::DynamoDb { table }, Some(sdk)) => Some(RestaurantTable::new(sdk, table)),
            _ => None,
        };
        Ok(Self {
            cache,
            catalog,
            databases: Databases::new(databases),
            writers: Databases::new(writers),
            role_logins,
            restaurant_table,
            objects,
            object_policy: config.objects,
            origin_permits: tokio::sync::Semaphore::new(config.serving.max_origin_loads),
            answer_reserve: config.serving.answer_reserve,
            origin_limit: config.serving.origin_limit,
            negative_ttl: config.serving.negative_ttl,
            author_limit: cache_aside::RateLimit::per_minute(config.serving.reviews_per_author_per_minute),
            last_health: std::sync::Mutex::new(None),
        })
    }
}

/// Opens (lazily) every database of `sources`.
async fn open_databases(
    sources: &[(String, DatabaseSource)],
    config: &ServiceConfig,
    sdk: Option<&SdkConfig>,
) -> Result<Vec<Database>, StartupError> {
    let mut databases = Vec::new();
    for (name, source) in sources {
        let fail = |source: DbError| StartupError::Database {
            name: name.clone(),
            source,
        };
        let database = match (source, sdk) {
            (DatabaseSource::Url(url), _) => {
                Database::connect_lazy(name, url, &config.database).map_err(fail)?
            }
            (DatabaseSource::Secret { id, endpoint }, Some(sdk)) => {
                let source = Arc::new(SecretCredentials {
                    secrets: Secrets::new(sdk),
                    id: id.clone(),
                    database: name.clone(),
                    endpoint: endpoint.clone(),
                });
                Database::from_source(name, source, &config.database)
                    .await
                    .map_err(fail)?
            }
            (DatabaseSource::Secret { .. }, None) => {
                unreachable!("the SDK is loaded whenever a secret is configured")
            }
        };
        databases.push(database);
    }
    Ok(databases)
}

/// The logins of the roles the ingester creates.
#[derive(Debug)]
pub(crate) struct RoleLogins {
    /// Reads the catalog's tables.
    pub query: RoleLogin,
    /// Runs the service's statements.
    pub write: RoleLogin,
    /// Reads committed changes (replication) and the catalog's tables.
    pub invalidator: Option<RoleLogin>,
}

/// The roles' logins, from their secrets.
async fn read_role_logins(
    secrets: &DatabaseRoleSecrets,
    sdk: &SdkConfig,
) -> Result<RoleLogins, StartupError> {
    let client = Secrets::new(sdk);
    let read = |id: String| {
        let client = client.clone();
        async move {
            let secret = client.db_secret(&id).await.map_err(StartupError::RoleSecret)?;
            Ok::<_, StartupError>(RoleLogin {
                username: secret.username,
                password: secret.password,
            })
        }
    };
    Ok(RoleLogins {
        query: read(secrets.query.clone()).await?,
        write: read(secrets.write.clone()).await?,
        invalidator: match &secrets.invalidator {
            Some(id) => Some(read(id.clone()).await?),
            None => None,
        },
    })
}

/// The placeholders `engine` accepts.
fn placeholder_style(engine: Engine) -> PlaceholderStyle {
    match engine {
        Engine::Postgres => PlaceholderStyle::Numbered,
        Engine::MySql => PlaceholderStyle::Positional,
    }
}

/// Settings that work but are probably not meant (see [`ServiceConfig::warnings`]).
fn log_warnings(config: &ServiceConfig) {
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
}

/// Opens the Redis connection now, during Lambda init, instead of in the first request: the
/// TCP + TLS handshake and AUTH (1.3 ms against 0.1 ms for a PING on an open connection, on
/// loopback; more across a VPC) leave the first request's latency, and init is billed like any
/// other time. Bounded by the operation budget; a failure is logged and left to the requests,
/// which reconnect and fall back as usual.
pub async fn open_redis_connection(cache: &Cache) {
    match cache.store().ping().await {
        Ok(rtt) => tracing::debug!(
            rtt_us = rtt.as_micros() as u64,
            "Redis connection opened during init"
        ),
        Err(e) => tracing::warn!(error = %e, "Redis not reachable during init; requests will retry"),
    }
}

/// Where each configured database's committed changes come from, for the invalidator's drains:
/// a logical replication slot on PostgreSQL with `INVALIDATION_SOURCE=logical`, the outbox on
/// MySQL/MariaDB. PostgreSQL in `trigger` mode pushes events instead, and has no source here.
pub async fn change_sources(config: &ServiceConfig) -> Result<Vec<crate::ChangeSource>, StartupError> {
    let sdk = match config
        .databases
        .iter()
        .any(|(_, s)| matches!(s, DatabaseSource::Secret { .. }))
    {
        true => Some(load_sdk_config(&config.aws).await),
        false => None,
    };
    let mut sources = Vec::new();
    for database in open_databases(&config.databases, config, sdk.as_ref()).await? {
        let name = database.name().to_owned();
        match (database.pool(), config.changes.source) {
            (sql_origin::Pool::Postgres(pool), InvalidationSource::Logical) => {
                // Slot names are server-wide: databases other than `main` get their own.
                let slot_name = match name.as_str() {
                    query_catalog::MAIN_DATABASE => config.changes.slot_name.clone(),
                    other => format!("{}_{other}", config.changes.slot_name)
                        .chars()
                        .take(63)
                        .collect(),
                };
                let slot = change_feed::Slot::new(pool, &slot_name)?;
                sources.push(crate::ChangeSource::Slot { database: name, slot });
            }
            (sql_origin::Pool::Postgres(_), InvalidationSource::Trigger) => {}
            (sql_origin::Pool::MySql(pool), _) => sources.push(crate::ChangeSource::Outbox {
                database: name,
                outbox: change_feed::Outbox::new(pool),
            }),
        }
    }
    Ok(sources)
}

/// Only the cache, for functions that need nothing else (the invalidator).
pub async fn cache_only(config: &ServiceConfig) -> Result<Cache, StartupError> {
    log_warnings(config);
    let sdk = match needs_aws_for_redis(config) {
        true => Some(load_sdk_config(&config.aws).await),
        false => None,
    };
    connect_cache(config, sdk.as_ref()).await
}

/// Whether reaching Redis takes AWS calls (an AUTH token secret, IAM tokens).
fn needs_aws_for_redis(config: &ServiceConfig) -> bool {
    config.redis.auth_secret_id.is_some() || config.redis.iam.is_some()
}

/// Renewal of IAM-authenticated connections: well inside the 12 hours after which ElastiCache
/// cuts them, and inside a token's 15 minutes, so a renewal never presents a stale one.
const IAM_RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// A fresh IAM token for every connection ElastiCache sees.
struct IamCredentials(ElastiCacheIam);

impl RotatingCredentials for IamCredentials {
    fn credentials(&self) -> futures::future::BoxFuture<'static, Result<ConnectionCredentials, String>> {
        let iam = self.0.clone();
        Box::pin(async move {
            let password = iam.token().await.map_err(|e| e.to_string())?;
            Ok(ConnectionCredentials {
                username: iam.user().to_owned(),
                password,
            })
        })
    }

    fn renew_every(&self) -> std::time::Duration {
        IAM_RENEW_EVERY
    }
}

/// The cache over the configured Redis, with the AUTH token read from Secrets Manager or IAM
/// tokens signed per connection when configured (`sdk` is then required).
async fn connect_cache(config: &ServiceConfig, sdk: Option<&SdkConfig>) -> Result<Cache, StartupError> {
    let auth_token = match (&config.redis.auth_secret_id, sdk) {
        (Some(id), Some(sdk)) => Some(
            Secrets::new(sdk)
                .redis_auth_token(id)
                .await
                .map_err(StartupError::RedisAuth)?,
        ),
        _ => None,
    };
    let credentials = match (&config.redis.iam, sdk) {
        (Some(iam), Some(sdk)) => {
            let tokens = ElastiCacheIam::new(sdk, &iam.user, &iam.cache_name, config.redis.serverless)
                .map_err(StartupError::RedisIam)?;
            Some(Arc::new(IamCredentials(tokens)) as Arc<dyn RotatingCredentials>)
        }
        _ => None,
    };
    let target = RedisTarget {
        url: config.redis.url.clone(),
        cluster: config.redis.cluster,
        auth_token,
        credentials,
        ca_pem: config.redis.ca_pem.clone(),
        endpoint_only: config.redis.serverless,
    };
    Ok(Cache::connect_lazy(target, config.cache.clone())?)
}
