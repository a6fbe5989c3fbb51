//! What a request may do and how long it may take: the public switches, the per-request budgets,
//! and the check that every budget ends before the function is killed (or the fallbacks never
//! get to act).

use std::time::Duration;

use cache_aside::CacheSettings;
use sql_origin::DatabaseSettings;

use crate::vars::Vars;
use crate::{ConfigError, ReviewsAuth, ServingSettings};

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

#[cfg(test)]
mod tests {
    use crate::testing::{vars, BASE};
    use crate::{ReviewsAuth, ServiceConfig, ServingSettings};

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
}
