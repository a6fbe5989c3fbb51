//! Ingester: pre-fills caches (write-ahead caching) and, later, seeds S3 and the demo datasets.
//!
//! Direct or scheduled invoke: `{"warm": ["query-name", ...]}` refreshes each named query with
//! its default parameters, so the first user read is a hit.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

use cache_aside::{Cache, EntryKey, ReadMode};
use query_catalog::{Catalog, Database, DbError, QueryRows, ResolvedParams};
use service_config::ServiceConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Warm {
    warm: Vec<String>,
}

const ACCEPTED: &str = r#"accepted payloads: {"warm": ["query-name", ...]}"#;

struct Ingester {
    cache: Cache,
    catalog: Catalog,
    db: Database,
}

impl Ingester {
    async fn warm(&self, names: &[String]) -> Result<Value, Error> {
        let mut warmed = Vec::new();
        for name in names {
            let query = self
                .catalog
                .get(name)
                .ok_or_else(|| format!("unknown query {name:?}; warmed so far: {warmed:?}"))?;
            let params = ResolvedParams::resolve(&query.params, [])
                .map_err(|e| format!("query {name:?} cannot be warmed with defaults: {e}"))?;
            let entry = EntryKey::new("q", &query.name, &params.as_map())?.with_scopes(query.scopes())?;
            let lookup = self
                .cache
                .get_or_load::<QueryRows, DbError, _, _>(&entry, query.ttl(), ReadMode::Refresh, || {
                    self.db.fetch_rows(query, &params)
                })
                .await?;
            warmed.push(json!({
                "query": name,
                "rows": lookup.value.row_count,
                "cache": lookup.state.as_str(),
                "load_ms": lookup.load_duration.as_millis() as u64,
            }));
        }
        Ok(json!({ "warmed": warmed }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = ServiceConfig::from_env()?;
    let ingester = Ingester {
        catalog: Catalog::load(config.catalog_path.as_deref())?,
        cache: Cache::connect_lazy(&config.redis_url, config.cache.clone())?,
        db: Database::connect_lazy(&config.database_url, &config.database)?,
    };
    let ingester = &ingester;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request: Warm = serde_json::from_value(event.payload)
            .map_err(|e| format!("unrecognised payload ({e}); {ACCEPTED}"))?;
        ingester.warm(&request.warm).await
    }))
    .await
}
