//! Configuration from the environment, shared by every function. Nothing else reads
//! environment variables.
//!
//! Everything is read and checked once at start-up, so a typo stops the function with a message
//! naming the variable instead of failing requests later. Values of secret-bearing variables
//! (URLs with passwords) are never echoed.

mod changes;
mod databases;
mod logging;
mod parse;
mod settings;
mod vars;
mod warnings;

pub use changes::{ChangeSettings, InvalidationSource, DEFAULT_SLOT_NAME};
pub use databases::{database_variable, DatabaseSource, DbEndpoint};

pub use logging::init_logging;
pub use parse::DEFAULT_INVALIDATION_SETTLE;
pub use settings::{
    MetricsSettings, ObjectSettings, RedisIam, RedisSettings, RestaurantOrigin, ReviewsAuth, ServingSettings,
};

use std::collections::HashMap;
use std::time::Duration;

use cache_aside::CacheSettings;
use sql_origin::DatabaseSettings;

use crate::parse::{
    cache_settings, check_budgets, database_settings, metrics_settings, object_settings, redis_settings,
    restaurant_origin, serving_settings,
};
use crate::vars::Vars;

/// A variable that is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or empty).
    #[error("{name} is not set: {hint}")]
    Missing {
        /// Variable name.
        name: &'static str,
        /// What it should hold.
        hint: &'static str,
    },
    /// A variable does not parse or is out of range.
    #[error("{name}={value:?} is invalid: {problem}")]
    Invalid {
        /// Variable name.
        name: &'static str,
        /// The value (only for non-secret variables).
        value: String,
        /// What is expected.
        problem: String,
    },
    /// The cache settings as a whole are inconsistent.
    #[error("cache settings (CACHE_*, REDIS_*): {0}")]
    Cache(#[from] cache_aside::CacheError),
}

/// The secrets of the two least-privilege database roles (JSON with `username` and
/// `password`, as the template generates them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRoleSecrets {
    /// The role the catalog's queries read with.
    pub query: String,
    /// The role the service's statements write with.
    pub write: String,
    /// `DB_INVALIDATOR_ROLE_SECRET_ID`: the role the invalidator reads committed changes with
    /// (`REPLICATION`, or `rds_replication` on RDS, and `SELECT` on the catalog's tables).
    pub invalidator: Option<String>,
}

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
    /// Object cache settings.
    pub objects: ObjectSettings,
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
            database_roles: match (
                v.text("DB_QUERY_ROLE_SECRET_ID"),
                v.text("DB_WRITE_ROLE_SECRET_ID"),
            ) {
                (Some(query), Some(write)) => Some(DatabaseRoleSecrets {
                    query,
                    write,
                    invalidator: v.text("DB_INVALIDATOR_ROLE_SECRET_ID"),
                }),
                (None, None) => None,
                _ => {
                    return Err(ConfigError::Missing {
                        name: "DB_QUERY_ROLE_SECRET_ID",
                        hint: "set both DB_QUERY_ROLE_SECRET_ID and DB_WRITE_ROLE_SECRET_ID, or neither",
                    })
                }
            },
            objects: object_settings(&v)?,
            restaurants: restaurant_origin(&v)?,
            aws: aws_clients::AwsSettings {
                endpoint_url: v.text("AWS_ENDPOINT_URL"),
                region: v.text("AWS_REGION").or_else(|| v.text("AWS_DEFAULT_REGION")),
                static_credentials: v
                    .text("AWS_ACCESS_KEY_ID")
                    .zip(v.text("AWS_SECRET_ACCESS_KEY"))
                    .map(|(key, secret)| (key, secret, v.text("AWS_SESSION_TOKEN"))),
            },
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

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const BASE: [(&str, &str); 2] = [
        ("REDIS_URL", "redis://:pw@127.0.0.1:1"),
        ("DATABASE_URL", "postgres://u:db-pass-value@h/db"),
    ];

    #[test]
    fn defaults_apply() {
        let c = ServiceConfig::from_map(&vars(&BASE)).unwrap();
        assert_eq!(c.cache, CacheSettings::default());
        assert_eq!(c.database, DatabaseSettings::default());
        assert_eq!(c.objects, ObjectSettings::default());
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
    fn databases_come_from_urls_and_secrets() {
        let mut more = vars(&BASE);
        more.insert("DB_SECRET_ID_ARTICLES".into(), "arn:aws:secretsmanager:x".into());
        more.insert("DB_HOST_ARTICLES".into(), "db.internal".into());
        more.insert("DB_PORT_ARTICLES".into(), "5433".into());
        more.insert("DATABASE_URL_REPORTS".into(), "mysql://r@h/db".into());
        let c = ServiceConfig::from_map(&more).unwrap();
        let names: Vec<&str> = c.databases.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["articles", "main", "reports"]);
        let DatabaseSource::Secret { endpoint, .. } = &c.databases[0].1 else {
            panic!("articles comes from a secret")
        };
        assert_eq!(
            (
                endpoint.host.as_deref(),
                endpoint.port,
                endpoint.engine.as_deref()
            ),
            (Some("db.internal"), Some(5433), None)
        );
        more.insert("DB_SECRET_ID".into(), "also-main".into());
        assert!(ServiceConfig::from_map(&more)
            .unwrap_err()
            .to_string()
            .contains("both a URL and a secret"));
        more.remove("DATABASE_URL");
        assert!(
            ServiceConfig::from_map(&more).is_ok(),
            "a secret alone is enough for main"
        );
    }

    #[test]
    fn budgets_must_fit_inside_the_function_timeout() {
        let mut v = vars(&BASE);
        v.insert("FUNCTION_TIMEOUT_SECONDS".into(), "29".into());
        let e = ServiceConfig::from_map(&v).unwrap_err().to_string();
        assert!(
            e.starts_with("DB_STATEMENT_TIMEOUT_MS=\"30000\""),
            "the old defaults do not fit: {e}"
        );
        assert!(e.contains("FUNCTION_TIMEOUT_SECONDS (29 s)"), "{e}");
        v.insert("DB_STATEMENT_TIMEOUT_MS".into(), "25000".into());
        assert!(ServiceConfig::from_map(&v).is_ok());
        // Each fits alone, but a statement that first waited the whole acquire timeout for a
        // pooled connection would still be running when the function is killed.
        v.insert("DB_STATEMENT_TIMEOUT_MS".into(), "26000".into());
        let e = ServiceConfig::from_map(&v).unwrap_err().to_string();
        assert!(e.contains("DB_CONNECT_TIMEOUT_MS"), "{e}");
        v.insert("DB_STATEMENT_TIMEOUT_MS".into(), "25000".into());
        v.insert("CACHE_FILL_WAIT_MS".into(), "28600".into());
        assert!(ServiceConfig::from_map(&v)
            .unwrap_err()
            .to_string()
            .starts_with("CACHE_FILL_WAIT_MS"));
        let c = ServiceConfig::from_map(&vars(&BASE)).unwrap();
        assert_eq!(c.serving, ServingSettings::default());
        assert!(!c.serving.public_bypass, "bypass is opt-in");
        assert_eq!(
            c.serving.max_origin_loads, c.database.max_connections as usize,
            "one origin permit per pooled connection: a load waits for a permit, within its deadline"
        );
        assert_eq!(
            c.serving.reviews_auth,
            ReviewsAuth::Jwt,
            "writes need an identity by default"
        );
        let mut loose = vars(&BASE);
        loose.insert("REVIEWS_AUTH".into(), "open".into());
        assert!(ServiceConfig::from_map(&loose)
            .unwrap_err()
            .to_string()
            .starts_with("REVIEWS_AUTH"));
    }

    #[test]
    fn clear_text_secrets_and_data_are_warned_about() {
        let warnings = ServiceConfig::from_map(&vars(&BASE)).unwrap().warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("rediss://") && warnings[1].starts_with("DATABASE_URL sets no TLS"));
        let mut safe = vars(&[
            ("REDIS_URL", "rediss://default:pw@host:1"),
            ("DATABASE_URL", "postgres://u:p@h/db?sslmode=verify-full"),
        ]);
        assert!(ServiceConfig::from_map(&safe).unwrap().warnings().is_empty());
        safe.insert("DATABASE_URL_ARTICLES".into(), "mysql://u:p@h/db".into());
        let warnings = ServiceConfig::from_map(&safe).unwrap().warnings();
        assert!(warnings[0].starts_with("DATABASE_URL_ARTICLES"), "{warnings:?}");
        safe.insert("DB_SSL_MODE".into(), "require".into());
        assert!(ServiceConfig::from_map(&safe).unwrap().warnings().is_empty());
        assert!(!format!("{warnings:?}").contains(":p@"), "no URL is echoed");
    }

    #[test]
    fn iam_authentication_and_serverless_need_tls_and_name_their_cache() {
        let with = |extra: &[(&str, &str)]| {
            let mut v = vars(&BASE);
            v.insert("REDIS_URL".into(), "rediss://cache.example:6379".into());
            for (k, val) in extra {
                v.insert((*k).into(), (*val).into());
            }
            ServiceConfig::from_map(&v)
        };
        let iam = [("REDIS_IAM_USER", "app"), ("REDIS_IAM_CACHE_NAME", "ca-1")];
        let c = with(&[iam[0], iam[1], ("REDIS_SERVERLESS", "true")]).unwrap();
        assert!(
            c.redis.serverless && c.redis.cluster,
            "serverless speaks the cluster protocol"
        );
        assert_eq!(
            c.redis.iam,
            Some(RedisIam {
                user: "app".into(),
                cache_name: "ca-1".into()
            })
        );
        let refused = |extra: &[(&str, &str)]| with(extra).unwrap_err().to_string();
        assert!(refused(&iam[..1]).contains("REDIS_IAM_CACHE_NAME"));
        assert!(refused(&iam[1..]).contains("REDIS_IAM_USER"));
        assert!(refused(&[iam[0], ("REDIS_IAM_CACHE_NAME", "Upper")]).contains("lower case"));
        assert!(refused(&[iam[0], iam[1], ("REDIS_AUTH_SECRET_ID", "s")]).contains("choose one"));
        let mut plain = vars(&BASE);
        plain.insert("REDIS_SERVERLESS".into(), "true".into());
        assert!(ServiceConfig::from_map(&plain)
            .unwrap_err()
            .to_string()
            .contains("rediss://"));
        plain.remove("REDIS_SERVERLESS");
        plain.extend(iam.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        assert!(ServiceConfig::from_map(&plain)
            .unwrap_err()
            .to_string()
            .contains("rediss://"));
    }

    #[test]
    fn endpoint_variables_carry_the_database_suffix() {
        assert_eq!(DbEndpoint::variable("host", "main"), "DB_HOST");
        assert_eq!(DbEndpoint::variable("dbname", "articles"), "DB_NAME_ARTICLES");
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

    #[test]
    fn metrics_follow_the_switch_and_the_lambda_environment() {
        let mut v = vars(&BASE);
        v.insert("AWS_LAMBDA_FUNCTION_NAME".into(), "f".into());
        assert!(ServiceConfig::from_map(&v).unwrap().metrics.enabled);
        v.insert("CACHE_METRICS".into(), "off".into());
        assert!(!ServiceConfig::from_map(&v).unwrap().metrics.enabled);
        v.insert("CACHE_METRICS".into(), "sometimes".into());
        assert!(ServiceConfig::from_map(&v)
            .unwrap_err()
            .to_string()
            .starts_with("CACHE_METRICS"));
    }

    #[test]
    fn the_change_source_and_its_slot_are_checked() {
        let c = ServiceConfig::from_map(&vars(&BASE)).unwrap();
        assert_eq!(c.changes, ChangeSettings::default());
        let mut more = vars(&BASE);
        more.insert("INVALIDATION_SOURCE".into(), "Logical".into());
        more.insert("CACHE_SLOT_NAME".into(), "cache_slot_2".into());
        more.insert("INVALIDATOR_POLL_MS".into(), "50".into());
        let c = ServiceConfig::from_map(&more).unwrap();
        assert_eq!(
            (c.changes.source, c.changes.slot_name.as_str(), c.changes.poll),
            (
                InvalidationSource::Logical,
                "cache_slot_2",
                Duration::from_millis(50)
            )
        );
        for (name, value) in [
            ("INVALIDATION_SOURCE", "binlog"),
            ("CACHE_SLOT_NAME", "Cache-Slot"),
            ("CACHE_SLOT_NAME", "2slot"),
            ("INVALIDATOR_DRAIN_SECONDS", "900"),
        ] {
            let mut bad = vars(&BASE);
            bad.insert(name.into(), value.into());
            let e = ServiceConfig::from_map(&bad).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn errors_name_the_variable() {
        let e = ServiceConfig::from_map(&vars(&BASE[..1]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("DATABASE_URL is not set"), "{e}");
        let mut bad = vars(&BASE);
        bad.insert("CACHE_TTL_JITTER_PERCENT".into(), "80".into());
        let e = ServiceConfig::from_map(&bad).unwrap_err().to_string();
        assert!(
            e.contains("CACHE_TTL_JITTER_PERCENT=\"80\"") && e.contains("0 to 50"),
            "{e}"
        );
        bad.insert("CACHE_TTL_JITTER_PERCENT".into(), "5".into());
        bad.insert("REDIS_TIMEOUT_MS".into(), "fast".into());
        assert!(ServiceConfig::from_map(&bad)
            .unwrap_err()
            .to_string()
            .contains("REDIS_TIMEOUT_MS"));
        bad.remove("REDIS_TIMEOUT_MS");
        for (name, value) in [
            ("REDIS_CLUSTER", "maybe"),
            ("DB_SSL_MODE", "strict"),
            ("REDIS_CA_PATH", "/nonexistent/ca.pem"),
        ] {
            bad.insert(name.into(), value.into());
            let e = ServiceConfig::from_map(&bad).unwrap_err().to_string();
            assert!(e.starts_with(name), "{e}");
            bad.remove(name);
        }
        bad.insert("CACHE_NAMESPACE".into(), "has space".into());
        assert!(ServiceConfig::from_map(&bad)
            .unwrap_err()
            .to_string()
            .contains("has space"));
    }

    #[test]
    fn a_restaurants_table_selects_dynamodb_unless_sql_is_asked_for() {
        let with = |extra: &[(&str, &str)]| {
            let mut all = vars(&BASE);
            all.extend(vars(extra));
            ServiceConfig::from_map(&all).map(|c| c.restaurants)
        };
        let table = RestaurantOrigin::DynamoDb {
            table: "restaurants-demo".into(),
        };
        assert_eq!(with(&[("RESTAURANTS_TABLE", "restaurants-demo")]).unwrap(), table);
        assert_eq!(
            with(&[
                ("RESTAURANTS_TABLE", "restaurants-demo"),
                ("RESTAURANT_ORIGIN", "DynamoDB")
            ])
            .unwrap(),
            table
        );
        assert_eq!(
            with(&[
                ("RESTAURANTS_TABLE", "restaurants-demo"),
                ("RESTAURANT_ORIGIN", "sql")
            ])
            .unwrap(),
            RestaurantOrigin::Sql
        );
        let refused = |extra: &[(&str, &str)]| with(extra).unwrap_err().to_string();
        assert!(refused(&[("RESTAURANT_ORIGIN", "dynamodb")]).contains("RESTAURANTS_TABLE is not set"));
        assert!(refused(&[("RESTAURANT_ORIGIN", "mongo")]).contains("expected sql or dynamodb"));
        assert!(refused(&[("RESTAURANTS_TABLE", "a b")]).contains("3 to 255"));
    }

    #[test]
    fn compression_is_lz4_above_a_threshold_or_off() {
        let with = |extra: &[(&str, &str)]| {
            let mut all = vars(&BASE);
            all.extend(vars(extra));
            ServiceConfig::from_map(&all).map(|c| c.cache.compression)
        };
        assert_eq!(with(&[]).unwrap(), cache_aside::Compression::default());
        assert_eq!(
            with(&[("CACHE_COMPRESS_MIN_BYTES", "4096")]).unwrap().min_bytes,
            Some(4096)
        );
        assert_eq!(with(&[("CACHE_COMPRESSION", "off")]).unwrap().min_bytes, None);
        assert!(with(&[("CACHE_COMPRESSION", "zstd")])
            .unwrap_err()
            .to_string()
            .contains("expected lz4 or off"));
        assert!(with(&[("CACHE_COMPRESS_MIN_BYTES", "1")]).is_err());
    }
}
