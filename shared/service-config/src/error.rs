//! The one error of configuration: a variable missing or malformed, always named (its value only
//! when it holds no secret), or cache settings that do not fit together.

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

#[cfg(test)]
mod tests {
    use crate::testing::{vars, BASE};
    use crate::ServiceConfig;

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
