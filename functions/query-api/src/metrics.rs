//! CloudWatch Embedded Metric Format: one JSON log line per request that CloudWatch turns
//! into metrics (no API calls, no extra latency). Written by hand: the format is a few fields,
//! and the maintained crates for it sit on top of a metrics facade we would not otherwise use.

use std::io::Write;

use serde_json::{json, Map, Value};
use service_config::MetricsSettings;
use use_cases::MetricsSnapshot;

/// Where metric lines go.
#[derive(Debug, Clone)]
pub struct MetricsSink {
    namespace: String,
    service: String,
}

impl MetricsSink {
    /// Metrics for `service` (a dimension) under CloudWatch `namespace`.
    pub fn new(namespace: &str, service: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            service: service.to_owned(),
        }
    }

    /// A sink for `service` when the configuration turns metrics on.
    pub fn from_settings(settings: &MetricsSettings, service: &str) -> Option<Self> {
        settings.enabled.then(|| Self::new(&settings.namespace, service))
    }

    /// The EMF line for one request on `route` that ended in cache state `state`
    /// (`hit`, `miss`, `stale`, `bypass`; `None` when the route does not use the cache).
    pub fn request_line(&self, route: &str, state: Option<&str>, cache: &MetricsSnapshot) -> String {
        let mut metrics: Vec<(&str, f64, &str)> = Vec::new();
        if let Some(state) = state {
            for (name, s) in [
                ("CacheHit", "hit"),
                ("CacheMiss", "miss"),
                ("CacheStale", "stale"),
                ("CacheBypass", "bypass"),
            ] {
                metrics.push((name, f64::from(u8::from(state == s)), "Count"));
            }
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        if cache.origin_loads > 0 {
            metrics.push(("OriginLatency", ms(cache.origin_micros), "Milliseconds"));
        }
        if let Some(mean) = cache.redis_micros.checked_div(cache.redis_ops) {
            metrics.push(("RedisLatency", ms(mean), "Milliseconds"));
            metrics.push(("RedisOps", cache.redis_ops as f64, "Count"));
        }
        metrics.push(("MemoryHits", cache.memory_hits as f64, "Count"));
        metrics.push(("LockWaits", cache.lock_waits as f64, "Count"));
        metrics.push(("Shed", cache.shed as f64, "Count"));
        if cache.lock_waits > 0 {
            metrics.push(("LockWaitTime", ms(cache.lock_wait_micros), "Milliseconds"));
        }
        self.line(route, &metrics)
    }

    /// An EMF line with `metrics` (name, value, unit) and dimensions Service and Service+Route.
    pub fn line(&self, route: &str, metrics: &[(&str, f64, &str)]) -> String {
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit}))
            .collect();
        let timestamp = use_cases::unix_now_ms();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["Service"], ["Service", "Route"]],
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert("Service".into(), self.service.clone().into());
        root.insert("Route".into(), route.into());
        for (name, value, _) in metrics {
            root.insert((*name).into(), json!(value));
        }
        Value::Object(root).to_string()
    }

    /// Writes `line` to stdout, where the Lambda log agent picks it up.
    pub fn emit(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_declare_every_metric_they_carry() {
        let sink = MetricsSink::new("Test", "query-api");
        let snapshot = MetricsSnapshot {
            redis_ops: 2,
            redis_micros: 600,
            origin_loads: 1,
            origin_micros: 5_000_000,
            lock_waits: 0,
            lock_wait_micros: 0,
            memory_hits: 0,
            shed: 1,
        };
        let line: Value = serde_json::from_str(&sink.request_line("query", Some("miss"), &snapshot)).unwrap();
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "Test");
        for metric in declared["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} has no value");
        }
        assert_eq!(
            (line["CacheMiss"].as_f64(), line["CacheHit"].as_f64()),
            (Some(1.0), Some(0.0))
        );
        assert_eq!(line["OriginLatency"].as_f64(), Some(5000.0));
        assert_eq!(line["Shed"].as_f64(), Some(1.0));
        assert_eq!(line["RedisLatency"].as_f64(), Some(0.3));
        assert_eq!(
            (line["Service"].as_str(), line["Route"].as_str()),
            (Some("query-api"), Some("query"))
        );
    }
}
