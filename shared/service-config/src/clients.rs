//! The composition root: every client a function needs, built once from the configuration.

use std::sync::Arc;
use std::time::Duration;

use aws_clients::{load_sdk_config, ObjectStore, Secrets};
use cache_aside::{Cache, CacheError, EntryKey, Freshness, Lookup, ReadMode};
use query_catalog::{
    Catalog, CatalogError, CredentialSource, CredentialsFuture, Database, Databases, DbCredentials, DbError,
    Engine, NamedQuery, QueryRows, ResolvedParams,
};

use crate::{DatabaseSource, ObjectSettings, ServiceConfig};

/// Why the function cannot start. Messages name the setting, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The catalog is invalid or does not fit the configured databases.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The cache cannot be built.
    #[error(transparent)]
    Cache(#[from] CacheError),
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
}

impl CredentialSource for SecretCredentials {
    fn fetch(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            let secret = self
                .secrets
                .db_secret(&self.id)
                .await
                .map_err(|e| DbError::Credentials(e.to_string()))?;
            let engine = Engine::of_secret(&secret.engine).ok_or_else(|| {
                DbError::Credentials(format!(
                    "secret {:?} names unsupported engine {:?}",
                    self.id, secret.engine
                ))
            })?;
            Ok(DbCredentials {
                engine,
                host: secret.host,
                port: secret.port,
                username: secret.username,
                password: secret.password,
                dbname: secret.dbname,
            })
        })
    }
}

/// Clients of one Lambda instance.
#[derive(Debug)]
pub struct Clients {
    /// Redis cache.
    pub cache: Cache,
    /// Named queries.
    pub catalog: Catalog,
    /// The configured databases.
    pub databases: Databases,
    /// S3 objects, when `OBJECTS_BUCKET` is set.
    pub objects: Option<ObjectStore>,
    /// Object cache settings.
    pub object_settings: ObjectSettings,
}

impl Clients {
    /// Builds every client. Redis and the databases are connected lazily (start-up succeeds
    /// while they are down); credentials held in Secrets Manager are read now.
    pub async fn build(config: &ServiceConfig) -> Result<Self, StartupError> {
        let catalog = Catalog::load(config.catalog_path.as_deref())?;
        let cache = Cache::connect_lazy(&config.redis_url, config.cache.clone())?;
        let needs_aws = config.objects.bucket.is_some()
            || config
                .databases
                .iter()
                .any(|(_, s)| matches!(s, DatabaseSource::Secret(_)));
        let sdk = if needs_aws {
            Some(load_sdk_config(&config.aws).await)
        } else {
            None
        };
        let mut databases = Vec::new();
        for (name, source) in &config.databases {
            let fail = |source: DbError| StartupError::Database {
                name: name.clone(),
                source,
            };
            let database = match (source, &sdk) {
                (DatabaseSource::Url(url), _) => {
                    Database::connect_lazy(name, url, &config.database).map_err(fail)?
                }
                (DatabaseSource::Secret(id), Some(sdk)) => {
                    let source = Arc::new(SecretCredentials {
                        secrets: Secrets::new(sdk),
                        id: id.clone(),
                    });
                    Database::from_source(name, source, &config.database)
                        .await
                        .map_err(fail)?
                }
                (DatabaseSource::Secret(_), None) => {
                    unreachable!("the SDK is loaded whenever a secret is configured")
                }
            };
            databases.push(database);
        }
        let engines: Vec<(&str, Engine)> = databases.iter().map(|d| (d.name(), d.engine())).collect();
        for missing in catalog.check_databases(&engines)? {
            tracing::warn!(database = %missing, "catalog queries use an unconfigured database; they answer 503");
        }
        let objects = match (&config.objects.bucket, &sdk) {
            (Some(bucket), Some(sdk)) => Some(ObjectStore::new(sdk, bucket)),
            _ => None,
        };
        Ok(Self {
            cache,
            catalog,
            databases: Databases::new(databases),
            objects,
            object_settings: config.objects.clone(),
        })
    }
}

/// The cache key of `query` with `params`: its name, the hash of the typed parameters, and the
/// scopes (the query's own and its tags') whose invalidation drops it.
pub fn query_entry(query: &NamedQuery, params: &ResolvedParams) -> Result<EntryKey, CacheError> {
    EntryKey::new("q", &query.name, &params.as_map())?.with_scopes(query.scopes_for(params))
}

/// Why a named query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The cache key could not be built (a bug in the catalog's names).
    #[error(transparent)]
    Key(#[from] CacheError),
    /// The database failed and nothing usable was cached.
    #[error(transparent)]
    Origin(#[from] DbError),
}

impl Clients {
    /// Runs `query` with `params` through the cache (`mode` decides how), on its database.
    pub async fn query(
        &self,
        query: &NamedQuery,
        params: &ResolvedParams,
        mode: ReadMode,
    ) -> Result<Lookup<QueryRows>, QueryError> {
        let entry = query_entry(query, params)?;
        let freshness = Freshness {
            ttl: query.ttl(),
            stale_while_revalidate: Duration::from_secs(query.stale_while_revalidate_seconds),
            stale_if_error: Duration::from_secs(query.stale_if_error_seconds),
            early_refresh_beta: query.early_refresh_beta,
        };
        Ok(self
            .cache
            .get_or_load_with::<QueryRows, DbError, _, _>(&entry, freshness, mode, || {
                self.databases.fetch_rows(query, params)
            })
            .await?)
    }

    /// Runs write `statement` with `params` on its database; returns what it RETURNs.
    pub async fn execute(
        &self,
        statement: &NamedQuery,
        params: &ResolvedParams,
    ) -> Result<QueryRows, DbError> {
        self.databases.fetch_rows(statement, params).await
    }

    /// Drops every cached result of `query` whose scope parameter `param` equals `value`
    /// (O(1); fills that started earlier can no longer be read).
    pub async fn invalidate_entity(
        &self,
        query: &NamedQuery,
        param: &str,
        value: &query_catalog::ParamValue,
    ) -> Result<u64, CacheError> {
        self.cache
            .invalidate(&query_catalog::entity_scope(&query.name, param, value))
            .await
    }
}
