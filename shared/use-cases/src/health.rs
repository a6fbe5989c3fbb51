//! Health: a round trip to Redis, to every database and to the restaurant table, all at once,
//! each bounded by [`PROBE_BUDGET`], and the result kept for [`HEALTH_KEPT`] per instance: a
//! public health route must cost the dependencies nothing when it is called in a loop.

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
    /// Whether an object bucket is configured (its name is not handed out).
    pub objects_configured: bool,
}

/// Longest wait for any one probe: health must answer fast even when a dependency does not.
pub const PROBE_BUDGET: Duration = Duration::from_secs(2);
/// How long one instance answers health from its last probes.
pub const HEALTH_KEPT: Duration = Duration::from_secs(5);

/// A probe's outcome, or a timeout after [`PROBE_BUDGET`].
async fn bounded<E: std::fmt::Display>(
    probe: impl std::future::Future<Output = Result<Duration, E>>,
) -> Result<Duration, String> {
    match tokio::time::timeout(PROBE_BUDGET, probe).await {
        Ok(answered) => answered.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {PROBE_BUDGET:?}")),
    }
}

impl Clients {
    /// The state of every dependency: the last probes when they are under [`HEALTH_KEPT`]
    /// old, else new ones ([`Self::probe_health`]).
    pub async fn health(&self) -> Health {
        if let Some((at, health)) = self
            .last_health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if at.elapsed() < HEALTH_KEPT {
                return health.clone();
            }
        }
        let health = self.probe_health().await;
        *self.last_health.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), health.clone()));
        health
    }

    /// Probes Redis, every database and the restaurant table concurrently, each within
    /// [`PROBE_BUDGET`].
    pub async fn probe_health(&self) -> Health {
        let table = async {
            let table = self.restaurant_table.as_ref()?;
            Some(Probe::of("restaurant table", bounded(table.ping()).await))
        };
        let databases = futures::future::join_all(self.databases.iter().map(|d| async move {
            DatabaseProbe {
                name: d.name().to_owned(),
                probe: Probe::of(d.name(), bounded(d.ping()).await),
            }
        }));
        let (redis, databases, restaurant_table) =
            tokio::join!(bounded(self.cache.store().ping()), databases, table);
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
            objects_configured: self.objects.is_some(),
        }
    }
}
