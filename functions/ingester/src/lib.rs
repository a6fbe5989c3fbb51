//! Ingester: pre-fills caches (write-ahead caching); seeding S3 and datasets comes later.
//!
//! Direct or scheduled invoke: `{"warm": ["query-name", ...]}` refreshes each named query with
//! its default parameters, so the first user read is a hit.

use cache_aside::{Cache, EntryKey, ReadMode};
use query_catalog::{Catalog, Database, DbError, QueryRows, ResolvedParams};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the function accepts, quoted in every refusal.
pub const ACCEPTED: &str = r#"accepted payloads: {"warm": ["query-name", ...]}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Warm {
    warm: Vec<String>,
}

/// Why a payload was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The payload is not one the function understands.
    #[error("unrecognised payload: {0}")]
    Payload(String),
    /// A query cannot be warmed (unknown, or needs parameters); earlier ones were warmed.
    #[error("query {query:?} cannot be warmed: {problem}; warmed before it: {warmed:?}")]
    Query {
        /// The query.
        query: String,
        /// Why.
        problem: String,
        /// Queries already warmed.
        warmed: Vec<String>,
    },
}

/// The clients of one instance.
#[derive(Debug)]
pub struct Ingester {
    /// The cache.
    pub cache: Cache,
    /// The named queries.
    pub catalog: Catalog,
    /// The database.
    pub db: Database,
}

impl Ingester {
    /// Carries out one payload.
    pub async fn handle(&self, event: Value) -> Result<Value, IngestError> {
        let request: Warm =
            serde_json::from_value(event).map_err(|e| IngestError::Payload(format!("{e}; {ACCEPTED}")))?;
        if request.warm.is_empty() {
            return Err(IngestError::Payload(format!("no queries to warm; {ACCEPTED}")));
        }
        let mut warmed = Vec::new();
        let mut report = Vec::new();
        for name in &request.warm {
            let fail = |problem: String| IngestError::Query {
                query: name.clone(),
                problem,
                warmed: warmed.clone(),
            };
            let query = self
                .catalog
                .get(name)
                .ok_or_else(|| fail("not in the catalog".into()))?;
            let params = ResolvedParams::resolve(&query.params, []).map_err(|e| fail(e.to_string()))?;
            let entry = EntryKey::new("q", &query.name, &params.as_map())
                .and_then(|e| e.with_scopes(query.scopes()))
                .map_err(|e| fail(e.to_string()))?;
            let lookup = self
                .cache
                .get_or_load::<QueryRows, DbError, _, _>(&entry, query.ttl(), ReadMode::Refresh, || {
                    self.db.fetch_rows(query, &params)
                })
                .await
                .map_err(|e| fail(e.to_string()))?;
            report.push(json!({
                "query": name,
                "rows": lookup.value.row_count,
                "cache": lookup.state.as_str(),
                "load_ms": lookup.load_duration.as_millis() as u64,
            }));
            warmed.push(name.clone());
        }
        Ok(json!({ "warmed": report }))
    }
}
