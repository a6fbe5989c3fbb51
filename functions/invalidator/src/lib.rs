//! Invalidator: drops cached query results when their data changes.
//!
//! Direct invoke: `{"queries": ["name", ...], "tags": ["tag", ...]}`. S3, database-change and
//! SQS triggers come with the concurrency work; until then they are refused with a clear error.

use cache_aside::Cache;
use query_catalog::{query_scope, tag_scope, Catalog};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the function accepts, quoted in every refusal.
pub const ACCEPTED: &str = r#"accepted payloads: {"queries": ["name", ...]} and/or {"tags": ["tag", ...]}"#;

/// A direct invalidation request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Invalidate {
    #[serde(default)]
    queries: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// Why an event was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum InvalidateError {
    /// The payload is not one the function understands.
    #[error("unrecognised payload: {0}")]
    Payload(String),
    /// A query name is not in the catalog (nothing was invalidated).
    #[error("unknown query {0:?}; nothing was invalidated")]
    UnknownQuery(String),
    /// Redis failed; the scopes listed before it were invalidated.
    #[error("invalidation failed after {done:?}: {source}")]
    Cache {
        /// Scopes already invalidated.
        done: Vec<String>,
        /// The failure.
        #[source]
        source: cache_aside::CacheError,
    },
}

/// Invalidates what `event` names and returns each scope's new generation.
pub async fn handle(cache: &Cache, catalog: &Catalog, event: Value) -> Result<Value, InvalidateError> {
    let request: Invalidate =
        serde_json::from_value(event).map_err(|e| InvalidateError::Payload(format!("{e}; {ACCEPTED}")))?;
    if request.queries.is_empty() && request.tags.is_empty() {
        return Err(InvalidateError::Payload(format!(
            "nothing to invalidate; {ACCEPTED}"
        )));
    }
    if let Some(unknown) = request.queries.iter().find(|q| catalog.get(q).is_none()) {
        return Err(InvalidateError::UnknownQuery(unknown.clone()));
    }
    let scopes = request
        .queries
        .iter()
        .map(|q| query_scope(q))
        .chain(request.tags.iter().map(|t| tag_scope(t)));
    let mut generations = serde_json::Map::new();
    for scope in scopes {
        match cache.invalidate(&scope).await {
            Ok(generation) => generations.insert(scope, generation.into()),
            Err(source) => {
                return Err(InvalidateError::Cache {
                    done: generations.keys().cloned().collect(),
                    source,
                })
            }
        };
    }
    tracing::info!(scopes = generations.len(), "invalidated");
    Ok(json!({ "invalidated": generations }))
}
