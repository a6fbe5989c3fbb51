//! The remaining settings groups, each read from its variables over its defaults: the cache,
//! the database pools, objects, metrics, the restaurants' origin and AWS. Redis and serving
//! budgets have their own modules.

use std::time::Duration;

use cache_aside::{CacheSettings, Compression};
use sql_origin::{DatabaseSettings, DbTls, DbTlsMode};

use crate::vars::Vars;
use cache_aside::ObjectPolicy;

use crate::{ConfigError, MetricsSettings, RestaurantOrigin};

/// `CACHE_*` and `REDIS_*` tunables over [`CacheSettings::default`].
pub(crate) fn cache_settings(v: &Vars) -> Result<CacheSettings, ConfigError> {
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
        compression: compression(v, defaults.compression)?,
        memory_max_bytes: v.number(
            "CACHE_MEMORY_MAX_BYTES",
            defaults.memory_max_bytes,
            0,
            1024 * 1024 * 1024,
        )?,
        memory_trust: Duration::from_millis(v.number(
            "CACHE_MEMORY_TRUST_MS",
            defaults.memory_trust.as_millis() as u64,
            0,
            60_000,
        )?),
    })
}

/// `CACHE_COMPRESSION` (`lz4` or `off`) and `CACHE_COMPRESS_MIN_BYTES`.
fn compression(v: &Vars, defaults: Compression) -> Result<Compression, ConfigError> {
    let threshold = v.number(
        "CACHE_COMPRESS_MIN_BYTES",
        defaults.min_bytes.unwrap_or(1024) as u64,
        64,
        cache_aside::MAX_DECOMPRESSED_BYTES as u64,
    )? as usize;
    match v
        .text("CACHE_COMPRESSION")
        .map(|c| c.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("lz4") => Ok(Compression {
            min_bytes: Some(threshold),
        }),
        Some("off") => Ok(Compression { min_bytes: None }),
        Some(other) => Err(ConfigError::Invalid {
            name: "CACHE_COMPRESSION",
            value: other.to_owned(),
            problem: "expected lz4 or off".into(),
        }),
    }
}
/// `DB_*` pool, timeout and TLS settings over [`DatabaseSettings::default`].
pub(crate) fn database_settings(v: &Vars) -> Result<DatabaseSettings, ConfigError> {
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

/// `CACHE_OBJECT_*` and `OBJECTS_MAX_SERVE_BYTES` over [`ObjectPolicy::default`].
pub(crate) fn object_policy(v: &Vars) -> Result<ObjectPolicy, ConfigError> {
    let defaults = ObjectPolicy::default();
    let max_serve_bytes = v.number(
        "OBJECTS_MAX_SERVE_BYTES",
        defaults.max_serve_bytes as u64,
        1,
        MAX_LAMBDA_BINARY_BODY,
    )? as usize;
    let settings = ObjectPolicy {
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
pub(crate) fn metrics_settings(v: &Vars) -> Result<MetricsSettings, ConfigError> {
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

/// `RESTAURANT_ORIGIN` (`sql` or `dynamodb`) and `RESTAURANTS_TABLE`. Naming a table alone
/// selects DynamoDB; `dynamodb` without a table is refused.
pub(crate) fn restaurant_origin(v: &Vars) -> Result<RestaurantOrigin, ConfigError> {
    let table = v.text("RESTAURANTS_TABLE");
    if let Some(name) = &table {
        let valid = (3..=255).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(ConfigError::Invalid {
                name: "RESTAURANTS_TABLE",
                value: name.clone(),
                problem: "a DynamoDB table name is 3 to 255 of a-z, A-Z, 0-9, _, -, .".into(),
            });
        }
    }
    let origin = v.text("RESTAURANT_ORIGIN").map(|o| o.to_ascii_lowercase());
    match (origin.as_deref(), table) {
        (None | Some("dynamodb"), Some(table)) => Ok(RestaurantOrigin::DynamoDb { table }),
        (None | Some("sql"), _) => Ok(RestaurantOrigin::Sql),
        (Some("dynamodb"), None) => Err(ConfigError::Missing {
            name: "RESTAURANTS_TABLE",
            hint: "RESTAURANT_ORIGIN=dynamodb needs the table's name",
        }),
        (Some(other), _) => Err(ConfigError::Invalid {
            name: "RESTAURANT_ORIGIN",
            value: other.to_owned(),
            problem: "expected sql or dynamodb".into(),
        }),
    }
}

/// `AWS_ENDPOINT_URL`, `AWS_REGION` (or `AWS_DEFAULT_REGION`) and static credentials, as found.
pub(crate) fn aws_settings(v: &Vars) -> aws_clients::AwsSettings {
    aws_clients::AwsSettings {
        endpoint_url: v.text("AWS_ENDPOINT_URL"),
        region: v.text("AWS_REGION").or_else(|| v.text("AWS_DEFAULT_REGION")),
        static_credentials: v
            .text("AWS_ACCESS_KEY_ID")
            .zip(v.text("AWS_SECRET_ACCESS_KEY"))
            .map(|(key, secret)| (key, secret, v.text("AWS_SESSION_TOKEN"))),
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{vars, BASE};
    use crate::{RestaurantOrigin, ServiceConfig};

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
