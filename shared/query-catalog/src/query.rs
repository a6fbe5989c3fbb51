//! One named query as the catalog file declares it: its fields, their defaults, and the limits
//! that apply when a query does not set its own. Checking a query is `validate.rs`'s job, its
//! invalidation scopes `scopes.rs`'s, its placeholders `placeholders.rs`'s.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::params::ParamSpec;

/// Where a changed row names a query's entity (see [`NamedQuery::scope_columns`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ScopeColumn {
    /// The column holds the entity's value (`restaurants = "name"`).
    Column(String),
    /// The column holds a key, and `lookup` (one parameter, bound as text: cast it, e.g.
    /// `$1::int`; one text column out) finds the entity's value from it when the change is
    /// applied. No row found: the whole tag is dropped instead.
    Lookup {
        /// The column holding the key.
        column: String,
        /// The query from key to entity value.
        lookup: String,
    },
}

impl ScopeColumn {
    /// The changed row's column to read.
    pub fn column(&self) -> &str {
        match self {
            Self::Column(column) | Self::Lookup { column, .. } => column,
        }
    }
}

/// One named query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedQuery {
    /// Name used in `/queries/{name}`: lower-case letters, digits and `_`.
    pub name: String,
    /// What it returns, for the catalog listing.
    #[serde(default)]
    pub description: String,
    /// Which configured database runs it (`main` unless given).
    #[serde(default = "main_database")]
    pub database: String,
    /// SQL with placeholders bound from `params` in order: `$1..$n` (PostgreSQL) or `?`
    /// (MySQL). Never sent to clients.
    #[serde(skip_serializing)]
    pub sql: String,
    /// Freshness of cached results; the cache default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// After expiry, serve the old result (`stale`) while one request refreshes it.
    #[serde(default)]
    pub stale_while_revalidate_seconds: u64,
    /// After expiry, serve the old result (`stale`) when the database fails.
    #[serde(default)]
    pub stale_if_error_seconds: u64,
    /// XFetch early-refresh eagerness (0 = only at expiry; 1, the default, per the paper).
    #[serde(default = "default_beta")]
    pub early_refresh_beta: f64,
    /// How long a result read from Redis may be answered from an instance's memory (ms); the
    /// cache's `CACHE_MEMORY_TRUST_MS` when absent; 0 for results that must reflect every
    /// write at once, in every instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_trust_ms: Option<u64>,
    /// The data this query depends on (usually table names); invalidating a tag drops it.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Parameters, in placeholder order.
    #[serde(default)]
    pub params: Vec<ParamSpec>,
    /// Most rows a result may have; a larger one is refused, not truncated (the default,
    /// [`DEFAULT_MAX_ROWS`], when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u32>,
    /// Largest result, in stored bytes, that is cached; larger ones are served uncached (the
    /// default, [`DEFAULT_MAX_CACHED_BYTES`], when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cached_bytes: Option<usize>,
    /// Parameters whose value names an entity with its own invalidation scope (e.g. the
    /// restaurant `name`): a write to that entity drops just its entries, in O(1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope_params: Vec<String>,
    /// Per table, the column naming this query's entity (the value of its one scope
    /// parameter): a committed change to such a row drops that entity's results only, not
    /// every result of the table's tag (`scope_columns = { restaurants = "name" }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scope_columns: BTreeMap<String, ScopeColumn>,
    /// How long a negative result (no rows) stays cached; `CACHE_NEGATIVE_TTL_SECONDS` when
    /// absent, and never longer than `ttl_seconds`. Lookups of things that do not exist then
    /// leave short-lived keys, and a thing created later shows up soon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_ttl_seconds: Option<u64>,
    /// Origin loads per second this query may cause across every instance
    /// (`CACHE_ORIGIN_LOADS_PER_SECOND` when absent). Past it, a load is shed: the stale value
    /// when one exists, else 503 `origin_busy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_loads_per_second: Option<f64>,
    /// Loads that may run at once after a quiet spell (`CACHE_ORIGIN_BURST` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_burst: Option<u32>,
    /// The tables its SQL reads, sorted: derived from the SQL when the catalog is loaded (a
    /// view read counts as the view and its `[views]` tables), never written in the file. Each
    /// is one of `tags`, so every write to a table it reads drops it. Empty for statements.
    #[serde(skip_deserializing)]
    pub tables: Vec<String>,
}

/// Rows a result may have when its query does not say.
pub const DEFAULT_MAX_ROWS: u32 = 10_000;
/// Bytes of a result that may be cached when its query does not say.
pub const DEFAULT_MAX_CACHED_BYTES: usize = 1024 * 1024;

/// The database a query uses when it names none.
pub const MAIN_DATABASE: &str = "main";

fn default_beta() -> f64 {
    1.0
}

fn main_database() -> String {
    MAIN_DATABASE.to_owned()
}

impl NamedQuery {
    /// The declared TTL, if any.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl_seconds.map(Duration::from_secs)
    }

    /// Most rows a result may have.
    pub fn row_limit(&self) -> u32 {
        self.max_rows.unwrap_or(DEFAULT_MAX_ROWS)
    }

    /// Largest result, in stored bytes, that is cached.
    pub fn cached_bytes_limit(&self) -> usize {
        self.max_cached_bytes.unwrap_or(DEFAULT_MAX_CACHED_BYTES)
    }

    /// Whether invalidating data tag `tag` drops this query's results.
    pub fn depends_on(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}
