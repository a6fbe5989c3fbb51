//! Configuration from the environment, shared by every function. Nothing else reads
//! environment variables.
//!
//! Everything is read and checked once at start-up, so a typo stops the function with a message
//! naming the variable instead of failing requests later. Values of secret-bearing variables
//! (URLs with passwords) are never echoed.

mod changes;
mod databases;
mod error;
mod logging;
mod parse;
mod redis;
mod roles;
mod serving;
mod settings;
#[cfg(test)]
mod testing;
mod vars;
mod warnings;

pub use changes::{ChangeSettings, InvalidationSource, DEFAULT_SLOT_NAME};
pub use databases::{database_variable, DatabaseSource, DbEndpoint};
pub use error::ConfigError;
pub use logging::init_logging;
pub use parse::DEFAULT_INVALIDATION_SETTLE;
pub use roles::DatabaseRoleSecrets;
pub use settings::{
    MetricsSettings, RedisIam, RedisSettings, RestaurantOrigin, ReviewsAuth, ServingSettings,
};

use std::collections::HashMap;
use std::time::Duration;

use cache_aside::CacheSettings;
use sql_origin::DatabaseSettings;

use crate::parse::{
    aws_settings, cache_settings, database_settings, metrics_settings, object_policy, restaurant_origin,
};
use crate::redis::redis_settings;
use crate::roles::database_roles;
use crate::serving::{check_budgets, serving_settings};
use crate::vars::Vars;

/// Everything a function needs to build its clients.
#[derive(Clone, PartialEq)]
pub struct ServiceConfig {
    /// Redis location, topology and credentials.
    pub redis: RedisSettings,
    /// Databases by catalog name: `main` from `DATABASE_URL` / `DB_SECRET_ID`, others from
    /// `DATABASE_URL_<NAME>` / `DB_SECRET_ID_<NAME>`.
    pub databases: Vec<(String, DatabaseSource)>,
    /// Logins for the service's statements (writes), by database: `DATABASE_WRITE_URL[_<NAME>]`
    /// or `DB_WRITE_SECRET_ID[_<NAME>]`. A database without one writes with its reading login.
    pub write_databases: Vec<(String, DatabaseSource)>,
    /// `DB_QUERY_ROLE_SECRET_ID` and `DB_WRITE_ROLE_SECRET_ID`: the secrets of the reading and
    /// writing roles the ingester creates (it alone; the other functions log in as them).
    pub database_roles: Option<DatabaseRoleSecrets>,
    /// `OBJECTS_BUCKET`: the S3 bucket of `GET /objects/{key}`; objects are unavailable without
    /// it.
    pub objects_bucket: Option<String>,
    /// How objects are served and cached (`CACHE_OBJECT_*`, `OBJECTS_MAX_SERVE_BYTES`).
    pub objects: cache_aside::ObjectPolicy,
    /// Where restaurants and reviews live (`RESTAURANT_ORIGIN`, `RESTAURANTS_TABLE`).
    pub restaurants: RestaurantOrigin,
    /// AWS endpoint, region and credentials as found in the environment.
    pub aws: aws_clients::AwsSettings,
    /// `QUERY_CATALOG_PATH`: a catalog file replacing the bundled one.
    pub catalog_path: Option<String>,
    /// Cache behaviour (`CACHE_*`, `REDIS_*`).
    pub cache: CacheSettings,
    /// Pool behaviour (`DB_*`).
    pub database: DatabaseSettings,
    /// Per-request metrics.
    pub metrics: MetricsSettings,
    /// Public switches and per-request budgets.
    pub serving: ServingSettings,
    /// `INVALIDATOR_FUNCTION_ARN`: where the demo database's change triggers send events.
    pub invalidator_function_arn: Option<String>,
    /// `INVALIDATION_SETTLE_MS`: the invalidator's pause between the two bumps of a table's tag
    /// on a database change event; longer than a commit takes after its trigger fired.
    pub invalidation_settle: Duration,
    /// `INVALIDATION_SOURCE` and the invalidator's scheduled drains of committed changes.
    pub changes: ChangeSettings,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs may carry passwords: never print them.
        f.debug_struct("ServiceConfig")
            .field("redis", &self.redis)
            .field("databases", &self.databases)
            .field("write_databases", &self.write_databases)
            .field("database_roles", &self.database_roles)
            .field("objects", &self.objects)
            .field("restaurants", &self.restaurants)
            .field("aws", &self.aws)
            .field("catalog_path", &self.catalog_path)
            .field("cache", &self.cache)
            .field("database", &self.database)
            .field("metrics", &self.metrics)
            .field("serving", &self.serving)
            .field("invalidator_function_arn", &self.invalidator_function_arn)
            .field("invalidation_settle", &self.invalidation_settle)
            .field("changes", &self.changes)
            .finish()
    }
}

impl ServiceConfig {
    /// Reads the process environment; the `main` database is required.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads the given variables (tests pass their own map); the `main` database is required.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::parse(vars, true)
    }

    /// Reads the process environment for a function that opens no database (the
    /// invalidator): database variables are optional and, when present, still checked.
    pub fn cache_only_from_env() -> Result<Self, ConfigError> {
        Self::cache_only_from_map(&std::env::vars().collect())
    }

    /// [`Self::cache_only_from_env`] over the given variables.
    pub fn cache_only_from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::parse(vars, false)
    }

    fn parse(vars: &HashMap<String, String>, require_database: bool) -> Result<Self, ConfigError> {
        let v = Vars(vars);
        let cache = cache_settings(&v)?;
        cache.validate()?;
        let database = database_settings(&v)?;
        let serving = serving_settings(&v, &database)?;
        check_budgets(&cache, &database, &serving)?;
        Ok(Self {
            redis: redis_settings(&v)?,
            databases: databases::databases(vars, require_database)?,
            write_databases: databases::write_databases(vars)?,
            database_roles: database_roles(&v)?,
            objects_bucket: v.text("OBJECTS_BUCKET"),
            objects: object_policy(&v)?,
            restaurants: restaurant_origin(&v)?,
            aws: aws_settings(&v),
            catalog_path: v.text("QUERY_CATALOG_PATH"),
            cache,
            database,
            metrics: metrics_settings(&v)?,
            serving,
            invalidator_function_arn: v.text("INVALIDATOR_FUNCTION_ARN"),
            invalidation_settle: v.millis("INVALIDATION_SETTLE_MS", DEFAULT_INVALIDATION_SETTLE, 60_000)?,
            changes: changes::change_settings(&v)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{vars, BASE};

    #[test]
    fn defaults_apply() {
        let c = ServiceConfig::from_map(&vars(&BASE)).unwrap();
        assert_eq!(c.cache, CacheSettings::default());
        assert_eq!(c.database, DatabaseSettings::default());
        assert_eq!(c.objects, cache_aside::ObjectPolicy::default());
        assert_eq!(c.objects_bucket, None);
        assert_eq!(c.metrics, MetricsSettings::default());
        assert!(c.invalidator_function_arn.is_none());
        assert_eq!(
            c.databases,
            [(
                "main".to_owned(),
                DatabaseSource::Url("postgres://u:db-pass-value@h/db".into())
            )]
        );
        assert!(c.catalog_path.is_none());
        assert_eq!(c.restaurants, RestaurantOrigin::Sql);
        let printed = format!("{c:?}");
        assert!(
            !printed.contains("db-pass-value") && !printed.contains(":pw@"),
            "{printed}"
        );
    }

    #[test]
    fn a_cache_only_function_needs_no_database() {
        let redis_only = vars(&BASE[..1]);
        assert!(ServiceConfig::from_map(&redis_only).is_err());
        let c = ServiceConfig::cache_only_from_map(&redis_only).unwrap();
        assert!(c.databases.is_empty());
        let mut bad = redis_only.clone();
        bad.insert("DB_PORT".into(), "not-a-port".into());
        bad.insert("DB_SECRET_ID".into(), "s".into());
        assert!(
            ServiceConfig::cache_only_from_map(&bad).is_err(),
            "present variables are still checked"
        );
    }
}
