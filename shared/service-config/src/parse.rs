//! Each settings group read from its variables, over its defaults, and the checks across
//! groups (every budget inside the function's timeout).

use std::time::Duration;

use cache_aside::{CacheSettings, Compression};
use sql_origin::{DatabaseSettings, DbTls, DbTlsMode};

use crate::vars::Vars;
use crate::{
    ConfigError, MetricsSettings, ObjectSettings, RedisIam, RedisSettings, RestaurantOrigin, ReviewsAuth,
    ServingSettings,
};

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

/// `CACHE_PUBLIC_BYPASS`, `CACHE_MAX_ORIGIN_LOADS`, `CACHE_ANSWER_RESERVE_MS`,
/// `FUNCTION_TIMEOUT_SECONDS` over [`ServingSettings::default`].
pub(crate) fn serving_settings(
    v: &Vars,
    database: &DatabaseSettings,
) -> Result<ServingSettings, ConfigError> {
    let defaults = ServingSettings::default();
    Ok(ServingSettings {
        public_bypass: v.flag("CACHE_PUBLIC_BYPASS")?,
        max_origin_loads: v.number(
            "CACHE_MAX_ORIGIN_LOADS",
            u64::from(database.max_connections),
            1,
            1000,
        )? as usize,
        origin_limit: cache_aside::RateLimit {
            per_second: v.number(
                "CACHE_ORIGIN_LOADS_PER_SECOND",
                defaults.origin_limit.per_second as u64,
                1,
                100_000,
            )? as f64,
            burst: v.number(
                "CACHE_ORIGIN_BURST",
                u64::from(defaults.origin_limit.burst),
                1,
                100_000,
            )? as u32,
        },
        negative_ttl: Duration::from_secs(v.number(
            "CACHE_NEGATIVE_TTL_SECONDS",
            defaults.negative_ttl.as_secs(),
            1,
            86_400,
        )?),
        reviews_auth: match v.text("REVIEWS_AUTH").map(|a| a.to_ascii_lowercase()).as_deref() {
            None | Some("jwt") => ReviewsAuth::Jwt,
            Some("iam") => ReviewsAuth::Iam,
            Some("none") => ReviewsAuth::None,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "REVIEWS_AUTH",
                    value: other.to_owned(),
                    problem: "expected jwt, iam or none".into(),
                })
            }
        },
        reviews_per_author_per_minute: v.number(
            "REVIEWS_PER_AUTHOR_PER_MINUTE",
            u64::from(defaults.reviews_per_author_per_minute),
            1,
            100_000,
        )? as u32,
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
pub(crate) fn check_budgets(
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
    let budgets = [
        (
            "DB_STATEMENT_TIMEOUT_MS",
            database.statement_timeout,
            "a statement",
        ),
        (
            "DB_STATEMENT_TIMEOUT_MS",
            database.statement_timeout + database.connect_timeout,
            "a statement after the longest wait for a pooled connection (DB_CONNECT_TIMEOUT_MS)",
        ),
        (
            "CACHE_FILL_WAIT_MS",
            cache.fill_wait,
            "a wait for another request's fill",
        ),
        (
            "DB_CONNECT_TIMEOUT_MS",
            database.connect_timeout,
            "a database connection attempt",
        ),
    ];
    for (name, value, what) in budgets {
        if value >= usable {
            return Err(too_long(name, value, what));
        }
    }
    Ok(())
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

/// `OBJECTS_BUCKET` and `CACHE_OBJECT_*` over [`ObjectSettings::default`].
pub(crate) fn object_settings(v: &Vars) -> Result<ObjectSettings, ConfigError> {
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
/// `REDIS_*`: where Redis is and how to authenticate. IAM tokens and Serverless both need TLS;
/// Serverless speaks the cluster protocol whatever `REDIS_CLUSTER` says.
pub(crate) fn redis_settings(v: &Vars) -> Result<RedisSettings, ConfigError> {
    let url = v.required(
        "REDIS_URL",
        "set it to redis://host:port or rediss://host:port (TLS)",
    )?;
    let serverless = v.flag("REDIS_SERVERLESS")?;
    let auth_secret_id = v.text("REDIS_AUTH_SECRET_ID");
    let iam = match (v.text("REDIS_IAM_USER"), v.text("REDIS_IAM_CACHE_NAME")) {
        (None, None) => None,
        (Some(user), Some(cache_name)) => Some(RedisIam { user, cache_name }),
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                name: "REDIS_IAM_CACHE_NAME",
                hint: "IAM authentication signs its tokens for one cache: set the replication group ID or serverless cache name",
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                name: "REDIS_IAM_USER",
                hint: "IAM authentication needs the IAM-enabled ElastiCache user ID",
            })
        }
    };
    let tls_needed = |name: &'static str, value: String| ConfigError::Invalid {
        name,
        value,
        problem: "ElastiCache accepts it only over TLS: REDIS_URL must be rediss://".into(),
    };
    if let Some(iam) = &iam {
        if !url.starts_with("rediss://") {
            return Err(tls_needed("REDIS_IAM_USER", iam.user.clone()));
        }
        if auth_secret_id.is_some() {
            return Err(ConfigError::Invalid {
                name: "REDIS_AUTH_SECRET_ID",
                value: "(set)".into(),
                problem: "choose one of an AUTH token and IAM authentication (REDIS_IAM_USER)".into(),
            });
        }
        let valid_name = !iam.cache_name.is_empty()
            && iam.cache_name.len() <= 63
            && iam
                .cache_name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid_name {
            return Err(ConfigError::Invalid {
                name: "REDIS_IAM_CACHE_NAME",
                value: iam.cache_name.clone(),
                problem: "an ElastiCache cache name is 1 to 63 of a-z, 0-9 and -, lower case".into(),
            });
        }
    }
    if serverless && !url.starts_with("rediss://") {
        return Err(tls_needed("REDIS_SERVERLESS", "true".into()));
    }
    Ok(RedisSettings {
        url,
        cluster: serverless || v.flag("REDIS_CLUSTER")?,
        auth_secret_id,
        ca_pem: v.file("REDIS_CA_PATH")?,
        serverless,
        iam,
    })
}

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
