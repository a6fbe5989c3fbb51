//! Invalidator: drops cached query results when their data changes.
//!
//! Direct invoke: `{"queries": ["name", ...], "tags": ["table", ...]}`. S3, database-change and
//! SQS triggers arrive with the concurrency work; until then they are refused with a clear error.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

use cache_aside::Cache;
use query_catalog::{query_scope, tag_scope, Catalog};
use service_config::ServiceConfig;

/// A direct invalidation request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Invalidate {
    #[serde(default)]
    queries: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
}

const ACCEPTED: &str = r#"accepted payloads: {"queries": ["name", ...]} and/or {"tags": ["tag", ...]}"#;

async fn handle(cache: &Cache, catalog: &Catalog, event: Value) -> Result<Value, Error> {
    let request: Invalidate =
        serde_json::from_value(event).map_err(|e| format!("unrecognised payload ({e}); {ACCEPTED}"))?;
    if request.queries.is_empty() && request.tags.is_empty() {
        return Err(format!("nothing to invalidate; {ACCEPTED}").into());
    }
    if let Some(unknown) = request.queries.iter().find(|q| catalog.get(q).is_none()) {
        return Err(format!("unknown query {unknown:?}; nothing was invalidated").into());
    }
    let scopes = request
        .queries
        .iter()
        .map(|q| query_scope(q))
        .chain(request.tags.iter().map(|t| tag_scope(t)));
    let mut generations = serde_json::Map::new();
    for scope in scopes {
        let generation = cache.invalidate(&scope).await?;
        generations.insert(scope, generation.into());
    }
    tracing::info!(scopes = generations.len(), "invalidated");
    Ok(json!({ "invalidated": generations }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = ServiceConfig::from_env()?;
    let catalog = Catalog::load(config.catalog_path.as_deref())?;
    let cache = Cache::connect_lazy(&config.redis_url, config.cache.clone())?;
    let (cache, catalog) = (&cache, &catalog);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(cache, catalog, event.payload).await
    }))
    .await
}
