//! Health: a round trip to Redis, to every database and to the restaurant table, all at once.

use std::time::Duration;

use serde::Serialize;

use crate::Clients;

/// One dependency's state. Why a dependency is down goes to the log only: error texts name
/// hosts, node addresses and ARNs, which a public health route must not hand out.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Whether it answered.
    pub ok: bool,
    /// Its round-trip time, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

impl Probe {
    fn of<E: std::fmt::Display>(what: &str, result: Result<Duration, E>) -> Self {
        match result {
            Ok(d) => Self {
                ok: true,
                latency_ms: Some((d.as_secs_f64() * 1_000_000.0).round() / 1000.0),
            },
            Err(e) => {
                tracing::warn!(dependency = what, error = %e, "health probe failed");
                Self {
                    ok: false,
                    latency_ms: None,
                }
            }
        }
    }
}

/// One database's state, by configured name.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseProbe {
    /// The configured name.
    pub name: String,
    /// Its state.
    #[serde(flatten)]
    pub probe: Probe,
}

/// The state of every dependency.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// `ok` (all up), `degraded` (some), or `down` (none).
    pub status: &'static str,
    /// Redis.
    pub redis: Probe,
    /// Every configured database.
    pub databases: Vec<DatabaseProbe>,
    /// The DynamoDB restaurant table, when restaurants live there.
    pub restaurant_table: Option<Probe>,
    /// The configured object bucket, if any.
    pub bucket: Option<String>,
}

/// Longest wait for the table's answer: health must answer fast even when DynamoDB does not.
const TABLE_PROBE_BUDGET: Duration = Duration::from_secs(2);

impl Clients {
    /// Probes Redis, every database and the restaurant table concurrently.
    pub async fn health(&self) -> Health {
        let table = async {
            let table = self.restaurant_table.as_ref()?;
            let answered = tokio::time::timeout(TABLE_PROBE_BUDGET, table.ping())
                .await
                .unwrap_or(Err(dynamo_origin::TableError::Timeout { operation: "GetItem" }));
            Some(Probe::of("restaurant table", answered))
        };
        let databases = futures::future::join_all(self.databases.iter().map(|d| async move {
            DatabaseProbe {
                name: d.name().to_owned(),
                probe: Probe::of(d.name(), d.ping().await),
            }
        }));
        let (redis, databases, restaurant_table) = tokio::join!(self.cache.store().ping(), databases, table);
        let redis = Probe::of("redis", redis);
        let probes = 1 + databases.len() + usize::from(restaurant_table.is_some());
        let up = usize::from(redis.ok)
            + databases.iter().filter(|d| d.probe.ok).count()
            + usize::from(restaurant_table.as_ref().is_some_and(|t| t.ok));
        let status = match up {
            n if n == probes => "ok",
            0 => "down",
            _ => "degraded",
        };
        Health {
            status,
            redis,
            databases,
            restaurant_table,
            bucket: self.objects.as_ref().map(|o| o.bucket().to_owned()),
        }
    }
}
