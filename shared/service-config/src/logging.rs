//! The functions' log subscriber, configured by Lambda's advanced logging controls.
//!
//! Replaces `lambda_runtime::tracing::init_default_subscriber`, whose `EnvFilter` brings the
//! regex engine (about 0.3 MB of the bootstrap) for directive syntax the functions never need:
//! a level, or `target=level` pairs, which [`Targets`] parses without it.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The level when neither `AWS_LAMBDA_LOG_LEVEL` nor `RUST_LOG` is set.
const DEFAULT_LEVEL: LevelFilter = LevelFilter::INFO;

/// Installs the global subscriber, writing to stdout (CloudWatch in Lambda).
///
/// The filter is `AWS_LAMBDA_LOG_LEVEL` (set by the function's logging config) or else `RUST_LOG`
/// (`debug`, or `info,cache_aside=debug`); an unreadable value falls back to INFO and says so.
/// `AWS_LAMBDA_LOG_FORMAT=JSON` writes one JSON object per line. Later calls do nothing.
pub fn init_logging() {
    let spec = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let (filter, unreadable) = log_filter(spec.as_deref());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer().with_target(false).without_time();
    let installed = if json {
        tracing_subscriber::registry()
            .with(fmt.json())
            .with(filter)
            .try_init()
    } else {
        tracing_subscriber::registry().with(fmt).with(filter).try_init()
    };
    if installed.is_ok() {
        if let Some(spec) = unreadable {
            tracing::warn!(filter = %spec, "log filter not understood; logging at INFO");
        }
    }
}

/// The filter for `spec`, and the spec itself when it could not be read.
fn log_filter(spec: Option<&str>) -> (Targets, Option<&str>) {
    let default = Targets::new().with_default(DEFAULT_LEVEL);
    match spec.map(str::trim).filter(|s| !s.is_empty()) {
        None => (default, None),
        // Lambda spells levels in capitals, and adds FATAL.
        Some(s) if s.eq_ignore_ascii_case("fatal") => (Targets::new().with_default(LevelFilter::ERROR), None),
        Some(s) => match Targets::from_str(&s.to_ascii_lowercase()) {
            Ok(targets) => (targets, None),
            Err(_) => (default, Some(s)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lambda_levels_and_rust_log_directives() {
        let level = |spec| log_filter(spec).0.default_level();
        assert_eq!(level(None), Some(LevelFilter::INFO));
        assert_eq!(level(Some("")), Some(LevelFilter::INFO));
        assert_eq!(level(Some("DEBUG")), Some(LevelFilter::DEBUG));
        assert_eq!(level(Some("FATAL")), Some(LevelFilter::ERROR));
        let (targets, unreadable) = log_filter(Some("warn,cache_aside=trace"));
        assert!(unreadable.is_none());
        assert!(targets.would_enable("cache_aside::store", &tracing::Level::TRACE));
        assert!(!targets.would_enable("sqlx::query", &tracing::Level::INFO));
        let (targets, unreadable) = log_filter(Some("cache_aside=loud"));
        assert_eq!(unreadable, Some("cache_aside=loud"));
        assert_eq!(targets.default_level(), Some(LevelFilter::INFO));
    }
}
