//! Configuration from the environment, shared by every function, and the clients built from it.
//!
//! Everything is read and checked once at start-up, so a typo stops the function with a message
//! naming the variable instead of failing requests later. Values of secret-bearing variables
//! (URLs with passwords) are never echoed.

mod clients;
mod emf;

pub use clients::{query_entry, Clients, QueryError, StartupError};
pub use emf::MetricsSink;

use std::collections::HashMap;
use std::time::Duration;

use cache_aside::CacheSettings;
use query_catalog::{DatabaseSettings, DbTls, DbTlsMode};

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
    #[error(transparent)]
    Cache(#[from] cache_aside::CacheError),
}

/// Where a database is when its secret does not say (RDS-managed master secrets hold only
/// the user name and password): `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_ENGINE`, with a
/// `_<NAME>` suffix for databases other than `main`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbEndpoint {
    /// Host name.
    pub host: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Database name.
    pub dbname: Option<String>,
    /// Engine (`postgres`, `mysql`, `mariadb`).
    pub engine: Option<String>,
}

/// How to reach one named database: a URL, or a Secrets Manager secret (RDS JSON shape).
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseSource {
    /// `postgres://` or `mysql://` URL (may hold a password).
    Url(String),
    /// Secret id or ARN, and where the database is if the secret does not say.
    Secret {
        /// Secret id or ARN.
        id: String,
        /// Fallbacks for fields the secret lacks.
        endpoint: DbEndpoint,
    },
}

impl std::fmt::Debug for DatabaseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(_) => f.write_str("Url(<redacted>)"),
            Self::Secret { id, endpoint } => write!(f, "Secret({id:?}, {endpoint:?})"),
        }
    }
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
    /// TTL of cached objects.
    pub ttl: Duration,
    /// TTL of "no such object" answers (negative caching).
    pub missing_ttl: Duration,
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
            .finish()
    }
}

/// Reads typed values from a variable map, with the variable named in every error.
struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn text(&self, name: &'static str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        self.text(name).ok_or(ConfigError::Missing { name, hint })
    }

    fn number(&self, name: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let Some(value) = self.text(name) else {
            return Ok(default);
        };
        match value.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError::Invalid {
                name,
                value,
                problem: format!("expected a whole number from {min} to {max}"),
            }),
        }
    }

    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.text(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(ConfigError::Invalid {
                name,
                value: other.to_owned(),
                problem: "expected true or false".into(),
            }),
        }
    }

    /// The contents of the file named by variable `name`, if set.
    fn file(&self, name: &'static str) -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(path) = self.text(name) else {
            return Ok(None);
        };
        std::fs::read(&path).map(Some).map_err(|e| ConfigError::Invalid {
            name,
            value: path,
            problem: format!("cannot read the file: {e}"),
        })
    }

    fn millis(&self, name: &'static str, default: Duration, max: u64) -> Result<Duration, ConfigError> {
        let ms = self.number(name, default.as_millis() as u64, 1, max)?;
        Ok(Duration::from_millis(ms))
    }
}

/// `DB_HOST{suffix}` and friends, `suffix` being `""` or `_<NAME>`.
fn db_endpoint(vars: &HashMap<String, String>, suffix: &str) -> Result<DbEndpoint, ConfigError> {
    let get = |base: &str| {
        vars.get(&format!("{base}{suffix}"))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let port = match get("DB_PORT") {
        None => None,
        Some(text) => Some(text.parse::<u16>().map_err(|_| ConfigError::Invalid {
            name: "DB_PORT",
            value: text,
            problem: "expected a port number".into(),
        })?),
    };
    Ok(DbEndpoint {
        host: get("DB_HOST"),
        port,
        dbname: get("DB_NAME"),
        engine: get("DB_ENGINE"),
    })
}

/// Collects `DATABASE_URL[_<NAME>]` and `DB_SECRET_ID[_<NAME>]`; `main` is required.
fn databases(vars: &HashMap<String, String>) -> Result<Vec<(String, DatabaseSource)>, ConfigError> {
    let mut found: Vec<(String, DatabaseSource)> = Vec::new();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for var in names {
        let value = vars[var].trim();
        let (name, source) = if let Some(rest) = var.strip_prefix("DATABASE_URL") {
            (rest, DatabaseSource::Url(value.to_owned()))
        } else if let Some(rest) = var.strip_prefix("DB_SECRET_ID") {
            (
                rest,
                DatabaseSource::Secret {
                    id: value.to_owned(),
                    endpoint: db_endpoint(vars, rest)?,
                },
            )
        } else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let name = match name.strip_prefix('_') {
            None if name.is_empty() => "main".to_owned(),
            Some(n) if !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                n.to_ascii_lowercase()
            }
            _ => continue,
        };
        if found.iter().any(|(n, _)| *n == name) {
            return Err(ConfigError::Invalid {
                name: "DB_SECRET_ID",
                value: name,
                problem: "this database has both a URL and a secret; set only one".into(),
            });
        }
        found.push((name, source));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if !found.iter().any(|(n, _)| n == "main") {
        return Err(ConfigError::Missing {
            name: "DATABASE_URL",
            hint: "set it to postgres://user:password@host:port/db (or DB_SECRET_ID to a secret)",
        });
    }
    Ok(found)
}

impl ServiceConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads the given variables (tests pass their own map).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let v = Vars(vars);
        let cache_defaults = CacheSettings::default();
        let db_defaults = DatabaseSettings::default();
        let cache = CacheSettings {
            namespace: v.text("CACHE_NAMESPACE").unwrap_or(cache_defaults.namespace),
            default_ttl: Duration::from_secs(v.number(
                "CACHE_DEFAULT_TTL_SECONDS",
                cache_defaults.default_ttl.as_secs(),
                1,
                7 * 24 * 3600,
            )?),
            ttl_jitter: v.number("CACHE_TTL_JITTER_PERCENT", 10, 0, 50)? as f64 / 100.0,
            op_timeout: v.millis("REDIS_TIMEOUT_MS", cache_defaults.op_timeout, 60_000)?,
            connect_timeout: v.millis("REDIS_CONNECT_TIMEOUT_MS", cache_defaults.connect_timeout, 60_000)?,
            breaker_failures: v.number("REDIS_BREAKER_FAILURES", 2, 1, 1000)? as u32,
            breaker_cooldown: v.millis(
                "REDIS_BREAKER_COOLDOWN_MS",
                cache_defaults.breaker_cooldown,
                600_000,
            )?,
            fill_lock_ttl: v.millis("CACHE_FILL_LOCK_TTL_MS", cache_defaults.fill_lock_ttl, 900_000)?,
            fill_wait: v.millis("CACHE_FILL_WAIT_MS", cache_defaults.fill_wait, 900_000)?,
        };
        cache.validate()?;
        let database = DatabaseSettings {
            max_connections: v.number("DB_MAX_CONNECTIONS", 2, 1, 100)? as u32,
            connect_timeout: v.millis("DB_CONNECT_TIMEOUT_MS", db_defaults.connect_timeout, 120_000)?,
            statement_timeout: v.millis("DB_STATEMENT_TIMEOUT_MS", db_defaults.statement_timeout, 900_000)?,
            idle_timeout: db_defaults.idle_timeout,
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
        };
        let objects = ObjectSettings {
            bucket: v.text("OBJECTS_BUCKET"),
            max_cached_bytes: v.number("CACHE_OBJECT_MAX_BYTES", 1024 * 1024, 1, 64 * 1024 * 1024)? as usize,
            ttl: Duration::from_secs(v.number("CACHE_OBJECT_TTL_SECONDS", 3600, 1, 7 * 24 * 3600)?),
            missing_ttl: Duration::from_secs(v.number("CACHE_OBJECT_MISSING_TTL_SECONDS", 30, 1, 3600)?),
        };
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
            databases: databases(vars)?,
            objects,
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
        assert_eq!(
            c.databases,
            [(
                "main".to_owned(),
                DatabaseSource::Url("postgres://u:db-pass-value@h/db".into())
            )]
        );
        assert_eq!(c.objects.bucket, None);
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
