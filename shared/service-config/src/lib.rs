//! Configuration from the environment, shared by every function. Nothing else reads
//! environment variables.
//!
//! Everything is read and checked once at start-up, so a typo stops the function with a message
//! naming the variable instead of failing requests later. Values of secret-bearing variables
//! (URLs with passwords) are never echoed.

mod databases;
mod vars;

pub use databases::{DatabaseSource, DbEndpoint};

use std::collections::HashMap;
use std::time::Duration;

use cache_aside::CacheSettings;
use sql_origin::{DatabaseSettings, DbTls, DbTlsMode};

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
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"<redacted>")
            .field("cluster", &self.cluster)
            .field("auth_secret_id", &self.auth_secret_id)
            .field("custom_ca", &self.ca_pem.is_some())
            .finish()
    }
}

/// Settings of the object cache (`GET /objects/{key}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSettings {
    /// `OBJECTS_BUCKET`; objects are unavailable without it.
    pub bucket: Option<String>,
    /// Objects larger than this are served but not cached.
    pub max_cached_bytes: usize,
    /// Objects larger than this are not served (413): Lambda answers at most 6 MB, which
    /// base64 for binary bodies shrinks to about 4.5 MB. Their bodies are never read.
    pub max_serve_bytes: usize,
    /// TTL of cached objects.
    pub ttl: Duration,
    /// TTL of "no such object" answers (negative caching).
    pub missing_ttl: Duration,
}

impl Default for ObjectSettings {
    fn default() -> Self {
        Self {
            bucket: None,
            max_cached_bytes: 1024 * 1024,
            max_serve_bytes: 4 * 1024 * 1024,
            ttl: Duration::from_secs(3600),
            missing_ttl: Duration::from_secs(30),
        }
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
    /// their deadline); bounds the database load even while Redis is down.
    pub max_origin_loads: usize,
    /// `CACHE_ANSWER_RESERVE_MS`: time kept back from the invocation's deadline to answer.
    pub answer_reserve: Duration,
    /// `FUNCTION_TIMEOUT_SECONDS`: the function's timeout, when known, to check that every
    /// budget fits inside it.
    pub function_timeout: Option<Duration>,
}

impl Default for ServingSettings {
    fn default() -> Self {
        Self {
            public_bypass: false,
            max_origin_loads: 8,
            answer_reserve: Duration::from_millis(500),
            function_timeout: None,
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

/// Everything a function needs to build its clients.
#[derive(Clone, PartialEq)]
pub struct ServiceConfig {
    /// Redis location, topology and credentials.
    pub redis: RedisSettings,
    /// Databases by catalog name: `main` from `DATABASE_URL` / `DB_SECRET_ID`, others from
    /// `DATABASE_URL_<NAME>` / `DB_SECRET_ID_<NAME>`.
    pub databases: Vec<(String, DatabaseSource)>,
    /// Object cache settings.
    pub objects: ObjectSettings,
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
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs may carry passwords: never print them.
        f.debug_struct("ServiceConfig")
            .field("redis", &self.redis)
            .field("databases", &self.databases)
            .field("objects", &self.objects)
            .field("aws", &self.aws)
            .field("catalog_path", &self.catalog_path)
            .field("cache", &self.cache)
            .field("database", &self.database)
            .field("metrics", &self.metrics)
            .field("serving", &self.serving)
            .field("invalidator_function_arn", &self.invalidator_function_arn)
            .field("invalidation_settle", &self.invalidation_settle)
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
        let serving = serving_settings(&v)?;
        check_budgets(&cache, &database, &serving)?;
        Ok(Self {
            redis: RedisSettings {
                url: v.required(
                    "REDIS_URL",
                    "set it to redis://host:port or rediss://host:port (TLS)",
                )?,
                cluster: v.flag("REDIS_CLUSTER")?,
                auth_secret_id: v.text("REDIS_AUTH_SECRET_ID"),
                ca_pem: v.file("REDIS_CA_PATH")?,
            },
            databases: databases::databases(vars, require_database)?,
            objects: object_settings(&v)?,
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
        })
    }
}

impl ServiceConfig {
    /// Settings that work but are probably not meant: secrets or data crossing the network in
    /// clear. Logged at start-up; never fatal (a local setup runs without TLS on purpose).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let redis_password = self
            .redis
            .url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .is_some_and(|(credentials, _)| credentials.contains(':'));
        if !self.redis.url.starts_with("rediss://") && (redis_password || self.redis.auth_secret_id.is_some())
        {
            warnings.push(
                "REDIS_URL is redis:// but Redis is token-authenticated: the token crosses the \
                 network in clear; use rediss://"
                    .to_owned(),
            );
        }
        if self.database.tls.is_none() {
            for (name, source) in &self.databases {
                let DatabaseSource::Url(url) = source else {
                    continue;
                };
                let query = url.split_once('?').map_or("", |(_, q)| q);
                let sets_tls = query.split('&').any(|p| {
                    p.starts_with("sslmode=") || p.starts_with("ssl-mode=") || p.starts_with("ssl_mode=")
                });
                if !sets_tls {
                    let variable = if name == query_catalog::MAIN_DATABASE {
                        "DATABASE_URL".to_owned()
                    } else {
                        format!("DATABASE_URL_{}", name.to_ascii_uppercase())
                    };
                    warnings.push(format!(
                        "{variable} sets no TLS mode: the connection may be unencrypted; add \
                         sslmode=verify-full (or set DB_SSL_MODE)"
                    ));
                }
            }
        }
        warnings
    }
}

/// `CACHE_*` and `REDIS_*` tunables over [`CacheSettings::default`].
fn cache_settings(v: &Vars) -> Result<CacheSettings, ConfigError> {
    let defaults = CacheSettings::default();
    Ok(CacheSettings {
        namespace: v.text("CACHE_NAMESPACE").unwrap_or(defaults.namespace),
        default_ttl: Duration::from_secs(v.number(
            "CACHE_DEFAULT_TTL_SECONDS",
            defaults.default_ttl.as_secs(),
            1,
            7 * 24 * 3600,
        )?),
        ttl_jitter: v.number(
            "CACHE_TTL_JITTER_PERCENT",
            (defaults.ttl_jitter * 100.0).round() as u64,
            0,
            50,
        )? as f64
            / 100.0,
        op_timeout: v.millis("REDIS_TIMEOUT_MS", defaults.op_timeout, 60_000)?,
        connect_timeout: v.millis("REDIS_CONNECT_TIMEOUT_MS", defaults.connect_timeout, 60_000)?,
        breaker_failures: v.number(
            "REDIS_BREAKER_FAILURES",
            u64::from(defaults.breaker_failures),
            1,
            1000,
        )? as u32,
        breaker_cooldown: v.millis("REDIS_BREAKER_COOLDOWN_MS", defaults.breaker_cooldown, 600_000)?,
        fill_lock_ttl: v.millis("CACHE_FILL_LOCK_TTL_MS", defaults.fill_lock_ttl, 900_000)?,
        fill_wait: v.millis("CACHE_FILL_WAIT_MS", defaults.fill_wait, 900_000)?,
    })
}

/// `CACHE_PUBLIC_BYPASS`, `CACHE_MAX_ORIGIN_LOADS`, `CACHE_ANSWER_RESERVE_MS`,
/// `FUNCTION_TIMEOUT_SECONDS` over [`ServingSettings::default`].
fn serving_settings(v: &Vars) -> Result<ServingSettings, ConfigError> {
    let defaults = ServingSettings::default();
    Ok(ServingSettings {
        public_bypass: v.flag("CACHE_PUBLIC_BYPASS")?,
        max_origin_loads: v.number(
            "CACHE_MAX_ORIGIN_LOADS",
            defaults.max_origin_loads as u64,
            1,
            1000,
        )? as usize,
        answer_reserve: v.millis("CACHE_ANSWER_RESERVE_MS", defaults.answer_reserve, 60_000)?,
        function_timeout: match v.text("FUNCTION_TIMEOUT_SECONDS") {
            None => None,
            Some(_) => Some(Duration::from_secs(v.number(
                "FUNCTION_TIMEOUT_SECONDS",
                0,
                1,
                900,
            )?)),
        },
    })
}

/// Every budget must end before the function is killed, or the fallbacks never get to act:
/// a statement, a wait for another request's fill, and the time kept to answer.
fn check_budgets(
    cache: &CacheSettings,
    database: &DatabaseSettings,
    serving: &ServingSettings,
) -> Result<(), ConfigError> {
    let Some(timeout) = serving.function_timeout else {
        return Ok(());
    };
    let ms = |d: Duration| d.as_millis();
    let too_long = |name: &'static str, value: Duration, what: &str| ConfigError::Invalid {
        name,
        value: ms(value).to_string(),
        problem: format!(
            "{what} must end before the function times out: below FUNCTION_TIMEOUT_SECONDS ({} s) \
             minus CACHE_ANSWER_RESERVE_MS ({} ms)",
            timeout.as_secs(),
            ms(serving.answer_reserve)
        ),
    };
    let usable = timeout.saturating_sub(serving.answer_reserve);
    if usable.is_zero() {
        return Err(too_long(
            "CACHE_ANSWER_RESERVE_MS",
            serving.answer_reserve,
            "the time kept to answer",
        ));
    }
    if database.statement_timeout >= usable {
        return Err(too_long(
            "DB_STATEMENT_TIMEOUT_MS",
            database.statement_timeout,
            "a statement",
        ));
    }
    if cache.fill_wait >= usable {
        return Err(too_long(
            "CACHE_FILL_WAIT_MS",
            cache.fill_wait,
            "a wait for another request's fill",
        ));
    }
    if database.connect_timeout >= usable {
        return Err(too_long(
            "DB_CONNECT_TIMEOUT_MS",
            database.connect_timeout,
            "a database connection attempt",
        ));
    }
    Ok(())
}

/// `DB_*` pool, timeout and TLS settings over [`DatabaseSettings::default`].
fn database_settings(v: &Vars) -> Result<DatabaseSettings, ConfigError> {
    let defaults = DatabaseSettings::default();
    Ok(DatabaseSettings {
        max_connections: v.number("DB_MAX_CONNECTIONS", u64::from(defaults.max_connections), 1, 100)? as u32,
        connect_timeout: v.millis("DB_CONNECT_TIMEOUT_MS", defaults.connect_timeout, 120_000)?,
        statement_timeout: v.millis("DB_STATEMENT_TIMEOUT_MS", defaults.statement_timeout, 900_000)?,
        idle_timeout: defaults.idle_timeout,
        tls: match v.text("DB_SSL_MODE") {
            None if v.text("DB_CA_PATH").is_none() => None,
            mode => Some(DbTls {
                mode: match mode {
                    None => DbTlsMode::VerifyFull,
                    Some(text) => DbTlsMode::parse(&text).ok_or(ConfigError::Invalid {
                        name: "DB_SSL_MODE",
                        value: text,
                        problem: "expected disable, prefer, require, verify-ca or verify-full".into(),
                    })?,
                },
                ca_pem: v.file("DB_CA_PATH")?,
            }),
        },
    })
}

/// `OBJECTS_BUCKET` and `CACHE_OBJECT_*` over [`ObjectSettings::default`].
fn object_settings(v: &Vars) -> Result<ObjectSettings, ConfigError> {
    let defaults = ObjectSettings::default();
    let max_serve_bytes = v.number(
        "OBJECTS_MAX_SERVE_BYTES",
        defaults.max_serve_bytes as u64,
        1,
        MAX_LAMBDA_BINARY_BODY,
    )? as usize;
    let settings = ObjectSettings {
        bucket: v.text("OBJECTS_BUCKET"),
        max_cached_bytes: v.number(
            "CACHE_OBJECT_MAX_BYTES",
            defaults.max_cached_bytes as u64,
            1,
            64 * 1024 * 1024,
        )? as usize,
        ttl: Duration::from_secs(v.number(
            "CACHE_OBJECT_TTL_SECONDS",
            defaults.ttl.as_secs(),
            1,
            7 * 24 * 3600,
        )?),
        missing_ttl: Duration::from_secs(v.number(
            "CACHE_OBJECT_MISSING_TTL_SECONDS",
            defaults.missing_ttl.as_secs(),
            1,
            3600,
        )?),
        max_serve_bytes,
    };
    if settings.max_cached_bytes > settings.max_serve_bytes {
        return Err(ConfigError::Invalid {
            name: "CACHE_OBJECT_MAX_BYTES",
            value: settings.max_cached_bytes.to_string(),
            problem: format!("must not exceed OBJECTS_MAX_SERVE_BYTES ({max_serve_bytes})"),
        });
    }
    Ok(settings)
}

/// The invalidator's default pause between the two bumps of a changed table's tag.
pub const DEFAULT_INVALIDATION_SETTLE: Duration = Duration::from_secs(1);

/// The largest binary body a Lambda response can carry once base64-encoded (6 MB limit).
const MAX_LAMBDA_BINARY_BODY: u64 = 4_500_000;

/// `CACHE_METRICS` (`auto` turns them on inside Lambda, where `AWS_LAMBDA_FUNCTION_NAME` is
/// set) and `METRICS_NAMESPACE`.
fn metrics_settings(v: &Vars) -> Result<MetricsSettings, ConfigError> {
    let defaults = MetricsSettings::default();
    let enabled = match v.text("CACHE_METRICS").map(|m| m.to_ascii_lowercase()).as_deref() {
        Some("on" | "true") => true,
        Some("off" | "false") => false,
        None | Some("auto") => v.text("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "CACHE_METRICS",
                value: other.to_owned(),
                problem: "expected auto, on or off".into(),
            })
        }
    };
    Ok(MetricsSettings {
        enabled,
        namespace: v.text("METRICS_NAMESPACE").unwrap_or(defaults.namespace),
    })
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
        v.insert("CACHE_FILL_WAIT_MS".into(), "28600".into());
        assert!(ServiceConfig::from_map(&v)
            .unwrap_err()
            .to_string()
            .starts_with("CACHE_FILL_WAIT_MS"));
        let c = ServiceConfig::from_map(&vars(&BASE)).unwrap();
        assert_eq!(c.serving, ServingSettings::default());
        assert!(!c.serving.public_bypass, "bypass is opt-in");
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
}
