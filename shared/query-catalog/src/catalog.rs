//! The catalog file: which queries exist, their SQL, parameters, TTLs and tags.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::params::{kind_name, ParamSpec};
use crate::{tables_read, CatalogError, ParamValue, ResolvedParams};

/// The catalog shipped in the repository, compiled into every function so a Lambda package
/// needs no extra file. `QUERY_CATALOG_PATH` may point at another file.
pub const BUNDLED_CATALOG: &str = include_str!("../queries.toml");

/// Longest TTL a query may declare (one week).
const MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;

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

/// How a query's SQL marks its parameters; each database engine accepts one style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceholderStyle {
    /// `$1, $2, ...` (PostgreSQL).
    Numbered,
    /// `?` (MySQL, MariaDB).
    Positional,
}

/// Rows a result may have when its query does not say.
pub const DEFAULT_MAX_ROWS: u32 = 10_000;
/// Bytes of a result that may be cached when its query does not say.
pub const DEFAULT_MAX_CACHED_BYTES: usize = 1024 * 1024;
/// Upper bound of `max_rows`.
const MAX_ROWS_LIMIT: u32 = 1_000_000;
/// Upper bound of `max_cached_bytes` (Redis values over a few MB hurt every client).
const MAX_CACHED_BYTES_LIMIT: usize = 16 * 1024 * 1024;

/// The database a query uses when it names none.
pub const MAIN_DATABASE: &str = "main";

fn default_beta() -> f64 {
    1.0
}

fn main_database() -> String {
    MAIN_DATABASE.to_owned()
}

/// The invalidation scope every result of query `name` belongs to.
pub fn query_scope(name: &str) -> String {
    format!("query:{name}")
}

/// The scope of the entity named by `value` of parameter `param` of `query`. Values may hold
/// any text, so they are hashed into the scope name.
pub fn entity_scope(query: &str, param: &str, value: &ParamValue) -> String {
    use sha2::Digest;
    let canonical = serde_json::to_vec(value).unwrap_or_default();
    let digest = sha2::Sha256::digest(&canonical);
    format!("entity:{query}:{param}:{}", hex::encode(&digest[..8]))
}

/// The invalidation scope of data tag `tag` (usually a table).
pub fn tag_scope(tag: &str) -> String {
    format!("tag:{tag}")
}

impl NamedQuery {
    /// The scopes whose invalidation drops this query's cached results: its own, then its tags'.
    pub fn scopes(&self) -> Vec<String> {
        std::iter::once(query_scope(&self.name))
            .chain(self.tags.iter().map(|t| tag_scope(t)))
            .collect()
    }

    /// [`Self::scopes`] plus one entity scope per `scope_params` entry, for these parameters.
    pub fn scopes_for(&self, params: &ResolvedParams) -> Vec<String> {
        let mut scopes = self.scopes();
        for param in &self.scope_params {
            if let Some(value) = params.as_map().get(param.as_str()) {
                scopes.push(entity_scope(&self.name, param, value));
            }
        }
        scopes
    }

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

    fn validate(&self) -> Result<(), String> {
        if !is_identifier(&self.name, 64) {
            return Err("name must be 1-64 lower-case letters, digits or _, starting with a letter".into());
        }
        if self.sql.trim().is_empty() {
            return Err("sql is empty".into());
        }
        if let Some(ttl) = self.ttl_seconds {
            if ttl == 0 || ttl > MAX_TTL_SECONDS {
                return Err(format!(
                    "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}, got {ttl}"
                ));
            }
        }
        if self.max_rows.is_some_and(|n| !(1..=MAX_ROWS_LIMIT).contains(&n)) {
            return Err(format!("max_rows must be between 1 and {MAX_ROWS_LIMIT}"));
        }
        if self
            .max_cached_bytes
            .is_some_and(|n| !(1..=MAX_CACHED_BYTES_LIMIT).contains(&n))
        {
            return Err(format!(
                "max_cached_bytes must be between 1 and {MAX_CACHED_BYTES_LIMIT}"
            ));
        }
        if self
            .negative_ttl_seconds
            .is_some_and(|t| !(1..=MAX_TTL_SECONDS).contains(&t))
        {
            return Err(format!(
                "negative_ttl_seconds must be between 1 and {MAX_TTL_SECONDS}"
            ));
        }
        if self
            .origin_loads_per_second
            .is_some_and(|r| !(r.is_finite() && (0.001..=100_000.0).contains(&r)))
        {
            return Err("origin_loads_per_second must be between 0.001 and 100000".into());
        }
        if self.origin_burst.is_some_and(|b| !(1..=100_000).contains(&b)) {
            return Err("origin_burst must be between 1 and 100000".into());
        }
        if !(0.0..=10.0).contains(&self.early_refresh_beta) {
            return Err(format!(
                "early_refresh_beta must be between 0 and 10, got {}",
                self.early_refresh_beta
            ));
        }
        if self.stale_while_revalidate_seconds > MAX_TTL_SECONDS
            || self.stale_if_error_seconds > MAX_TTL_SECONDS
        {
            return Err(format!("stale windows must be at most {MAX_TTL_SECONDS} seconds"));
        }
        for tag in &self.tags {
            if !is_identifier(tag, 64) {
                return Err(format!("tag {tag:?} must be lower-case letters, digits or _"));
            }
        }
        let mut names = HashSet::new();
        for p in &self.params {
            if !is_identifier(&p.name, 64) {
                return Err(format!(
                    "parameter {:?} must be lower-case letters, digits or _",
                    p.name
                ));
            }
            if p.name == "source" {
                return Err("parameter name \"source\" is reserved for ?source=database".into());
            }
            if !names.insert(p.name.as_str()) {
                return Err(format!("parameter {:?} is declared twice", p.name));
            }
            if let Some(default) = &p.default {
                p.check(default).map_err(|e| format!("default of {e}"))?;
            }
            if p.min.into_iter().chain(p.max).any(|b| !b.is_finite()) {
                return Err(format!(
                    "parameter {:?}: min and max must be finite numbers",
                    p.name
                ));
            }
            if let (Some(min), Some(max)) = (p.min, p.max) {
                if min > max {
                    return Err(format!("parameter {:?}: min {min} is above max {max}", p.name));
                }
            }
            if let (Some(min), Some(max)) = (p.min_length, p.max_length) {
                if min > max {
                    return Err(format!(
                        "parameter {:?}: min_length {min} is above max_length {max}",
                        p.name
                    ));
                }
            }
            if (p.min.is_some() || p.max.is_some())
                && !matches!(p.kind, crate::ParamType::Int | crate::ParamType::Float)
            {
                return Err(format!(
                    "parameter {:?}: min/max apply to numbers, not {}",
                    p.name,
                    kind_name(p.kind)
                ));
            }
        }
        if let Some(unknown) = self
            .scope_params
            .iter()
            .find(|p| !self.params.iter().any(|s| &s.name == *p))
        {
            return Err(format!(
                "scope_params names {unknown:?}, which is not a parameter"
            ));
        }
        if !self.scope_columns.is_empty() && self.scope_params.len() != 1 {
            return Err(
                "scope_columns needs exactly one scope_params entry: the entity its columns name".into(),
            );
        }
        if let Some((table, _)) = self.scope_columns.iter().find(|(t, _)| !self.depends_on(t)) {
            return Err(format!(
                "scope_columns names table {table:?}, which is not one of its tags {:?}",
                self.tags
            ));
        }
        for (table, scope) in &self.scope_columns {
            if let ScopeColumn::Lookup { lookup, .. } = scope {
                let (numbered, positional) = placeholders(lookup);
                if !(numbered == [1] && positional == 0 || numbered.is_empty() && positional == 1) {
                    return Err(format!(
                        "scope_columns.{table}.lookup must take exactly one parameter ($1 or ?)"
                    ));
                }
                // Its tables must be this query's: a change to them reaches the query anyway,
                // so a lookup racing a later change never leaves an entity stale.
                let read = tables_read(lookup)
                    .map_err(|e| format!("scope_columns.{table}.lookup cannot be read: {e}"))?;
                if let Some(other) = read.iter().find(|t| !self.depends_on(t)) {
                    return Err(format!(
                        "scope_columns.{table}.lookup reads table {other:?}, which its tags {:?} do not declare",
                        self.tags
                    ));
                }
            }
        }
        if !is_identifier(&self.database, 64) {
            return Err(format!(
                "database {:?} must be lower-case letters, digits or _",
                self.database
            ));
        }
        let (numbered, positional) = placeholders(&self.sql);
        if !numbered.is_empty() && positional > 0 {
            return Err("sql mixes $n and ? placeholders; use $n for PostgreSQL, ? for MySQL".into());
        }
        let expected: Vec<usize> = (1..=self.params.len()).collect();
        if positional > 0 && positional != self.params.len() {
            return Err(format!(
                "sql has {positional} ? placeholder(s) but {} parameter(s) are declared",
                self.params.len()
            ));
        }
        if positional == 0 && numbered != expected {
            return Err(format!(
                "sql uses placeholders {:?} but {} parameter(s) are declared; they must be $1..${} each used",
                numbered.iter().map(|n| format!("${n}")).collect::<Vec<_>>(),
                self.params.len(),
                self.params.len()
            ));
        }
        Ok(())
    }

    /// The placeholder style the SQL is written in, if it has any placeholders.
    pub fn placeholder_style(&self) -> Option<PlaceholderStyle> {
        match placeholders(&self.sql) {
            (_, n) if n > 0 => Some(PlaceholderStyle::Positional),
            (numbered, _) if !numbered.is_empty() => Some(PlaceholderStyle::Numbered),
            _ => None,
        }
    }

    /// Whether invalidating data tag `tag` drops this query's results.
    pub fn depends_on(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The tables the SQL reads, views expanded, sorted; an error when the SQL cannot be read
    /// or reads a table its tags do not declare (a write to it would leave this query stale).
    fn derive_tables(&self, views: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, String> {
        let direct = tables_read(&self.sql).map_err(|e| format!("its sql cannot be read: {e}"))?;
        let tables = expand_views(&direct, views);
        if let Some(missing) = tables.iter().find(|t| !self.depends_on(t)) {
            let kind = if views.contains_key(missing) {
                "view"
            } else {
                "table"
            };
            let through = views
                .iter()
                .find(|(view, read)| tables.contains(*view) && read.contains(missing))
                .filter(|_| !direct.contains(missing))
                .map(|(view, _)| format!(" (through view {view:?})"))
                .unwrap_or_default();
            return Err(format!(
                "reads {kind} {missing:?}{through}, which its tags {:?} do not declare: add it to \
                 tags (every write to it must drop this query)",
                self.tags
            ));
        }
        Ok(tables.into_iter().collect())
    }
}

/// `read` with each view in it joined by the tables the view reads, and theirs in turn (a view
/// may read views).
fn expand_views(read: &BTreeSet<String>, views: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut tables = BTreeSet::new();
    let mut pending: Vec<&String> = read.iter().collect();
    while let Some(table) = pending.pop() {
        if tables.insert(table.clone()) {
            if let Some(view_reads) = views.get(table) {
                pending.extend(view_reads);
            }
        }
    }
    tables
}

/// Checks the `[views]` table: view and table names are bare lower-case names, like tags.
fn check_views(views: &BTreeMap<String, Vec<String>>) -> Result<(), CatalogError> {
    for (view, tables) in views {
        if let Some(bad) = std::iter::once(view)
            .chain(tables)
            .find(|name| !is_identifier(name, 64))
        {
            return Err(CatalogError::Invalid {
                query: "-".into(),
                problem: format!(
                    "[views] {view:?}: {bad:?} must be a bare table name of lower-case letters, \
                     digits or _ (as tags are)"
                ),
            });
        }
    }
    Ok(())
}

impl PlaceholderStyle {
    fn describe(self) -> &'static str {
        match self {
            Self::Numbered => "$n (PostgreSQL)",
            Self::Positional => "? (MySQL)",
        }
    }
}

fn is_identifier(s: &str, max: usize) -> bool {
    s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Distinct `$n` placeholders in `sql` (sorted) and the number of `?` placeholders. Text inside
/// single quotes is skipped.
fn placeholders(sql: &str) -> (Vec<usize>, usize) {
    let mut found = std::collections::BTreeSet::new();
    let mut positional = 0;
    let bytes = sql.as_bytes();
    let (mut i, mut quoted) = (0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'?' if !quoted => positional += 1,
            b'$' if !quoted => {
                let digits = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                if digits > 0 {
                    if let Ok(n) = sql[i + 1..i + 1 + digits].parse() {
                        found.insert(n);
                    }
                    i += digits;
                }
            }
            _ => {}
        }
        i += 1;
    }
    (found.into_iter().collect(), positional)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default, rename = "query")]
    queries: Vec<NamedQuery>,
    /// Writes used by the service's own routes; never served by `GET /queries/{name}`.
    #[serde(default, rename = "statement")]
    statements: Vec<NamedQuery>,
    /// The database views queries may read, each with the tables (or views) it reads.
    #[serde(default)]
    views: BTreeMap<String, Vec<String>>,
}

/// All named queries, validated.
#[derive(Debug, Clone)]
pub struct Catalog {
    queries: Vec<NamedQuery>,
    by_name: HashMap<String, usize>,
    statements: Vec<NamedQuery>,
}

impl Catalog {
    /// Parses and validates catalog TOML; the error names the query and what is wrong.
    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let mut file: CatalogFile = toml::from_str(text)?;
        check_views(&file.views)?;
        let mut by_name = HashMap::new();
        for (i, q) in file.queries.iter_mut().enumerate() {
            let label = if q.name.is_empty() {
                format!("#{}", i + 1)
            } else {
                q.name.clone()
            };
            q.tables = q
                .validate()
                .and_then(|()| q.derive_tables(&file.views))
                .map_err(|problem| CatalogError::Invalid {
                    query: label.clone(),
                    problem,
                })?;
            if by_name.insert(q.name.clone(), i).is_some() {
                return Err(CatalogError::Invalid {
                    query: label,
                    problem: "declared twice".into(),
                });
            }
        }
        for st in &file.statements {
            st.validate().map_err(|problem| CatalogError::Invalid {
                query: st.name.clone(),
                problem,
            })?;
            if by_name.contains_key(&st.name)
                || file.statements.iter().filter(|o| o.name == st.name).count() > 1
            {
                return Err(CatalogError::Invalid {
                    query: st.name.clone(),
                    problem: "declared twice".into(),
                });
            }
        }
        if file.queries.is_empty() {
            return Err(CatalogError::Invalid {
                query: "-".into(),
                problem: "the catalog declares no [[query]]".into(),
            });
        }
        Ok(Self {
            queries: file.queries,
            by_name,
            statements: file.statements,
        })
    }

    /// Loads `path`, or the bundled catalog when `None`.
    pub fn load(path: Option<&str>) -> Result<Self, CatalogError> {
        match path {
            None => Self::from_toml(BUNDLED_CATALOG),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::from_toml(&text)
            }
        }
    }

    /// The query called `name`.
    pub fn get(&self, name: &str) -> Option<&NamedQuery> {
        self.by_name.get(name).map(|&i| &self.queries[i])
    }

    /// The write statement called `name`.
    pub fn statement(&self, name: &str) -> Option<&NamedQuery> {
        self.statements.iter().find(|s| s.name == name)
    }

    /// Every query, in file order.
    pub fn queries(&self) -> &[NamedQuery] {
        &self.queries
    }

    /// The names of the queries that depend on data tag `tag`, in file order: what an
    /// invalidation of the tag drops. Empty for a tag no query declares.
    pub fn dependents(&self, tag: &str) -> Vec<&str> {
        self.queries
            .iter()
            .filter(|q| q.depends_on(tag))
            .map(|q| q.name.as_str())
            .collect()
    }

    /// Checks each query against the configured databases (name, placeholder style its engine
    /// accepts): a mismatch is an error. Returns the names of databases the catalog uses but
    /// that are not configured (their queries answer 503 until they are).
    pub fn check_databases(
        &self,
        configured: &[(&str, PlaceholderStyle)],
    ) -> Result<Vec<String>, CatalogError> {
        let mut missing = Vec::new();
        for q in self.queries.iter().chain(&self.statements) {
            match configured.iter().find(|(name, _)| *name == q.database) {
                None => {
                    if !missing.contains(&q.database) {
                        missing.push(q.database.clone());
                    }
                }
                Some((_, accepted)) => {
                    if let Some(written) = q.placeholder_style().filter(|s| s != accepted) {
                        return Err(CatalogError::Invalid {
                            query: q.name.clone(),
                            problem: format!(
                                "its placeholders are {} but database {:?} takes {}",
                                written.describe(),
                                q.database,
                                accepted.describe()
                            ),
                        });
                    }
                }
            }
        }
        Ok(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_catalog_is_valid() {
        let c = Catalog::load(None).unwrap();
        assert!(c.get("slow_version").is_some());
        assert!(c.queries().iter().filter(|q| !q.params.is_empty()).count() >= 2);
        assert!(c.get("slow_version").unwrap().tables.is_empty());
        assert_eq!(
            c.get("restaurant_summary").unwrap().tables,
            ["restaurants", "reviews"]
        );
        assert_eq!(c.get("article_search").unwrap().tables, ["articles"]);
        assert!(c
            .queries()
            .iter()
            .all(|q| q.tables.iter().all(|t| q.depends_on(t))));
        // The listing (`GET /queries`) shows them.
        let listed = serde_json::to_value(c.get("product").unwrap()).unwrap();
        assert_eq!(listed["tables"], serde_json::json!(["products"]));
    }

    #[test]
    fn scope_columns_name_tagged_tables_and_their_lookups_read_only_tags() {
        let q = |scope: &str| {
            format!(
                "[[query]]\nname = 's'\nsql = 'SELECT name FROM restaurants WHERE name = $1'\n\
                 tags = ['restaurants', 'reviews']\nscope_params = ['name']\nscope_columns = {{ {scope} }}\n\
                 [[query.params]]\nname = 'name'\ntype = 'string'\n"
            )
        };
        assert!(Catalog::from_toml(&q("restaurants = 'name'")).is_ok());
        assert!(Catalog::from_toml(&q(
            "reviews = { column = 'restaurant_id', lookup = 'SELECT name FROM restaurants WHERE id = $1::int' }"
        ))
        .is_ok());
        assert!(problem(&q("products = 'name'")).contains("scope_columns names table \"products\""));
        let other = problem(&q(
            "reviews = { column = 'restaurant_id', lookup = 'SELECT name FROM owners WHERE id = $1::int' }",
        ));
        assert!(other.contains("lookup reads table \"owners\""), "{other}");
        let two = problem(&q(
            "reviews = { column = 'restaurant_id', lookup = 'SELECT name FROM restaurants WHERE id = $1 AND city = $2' }",
        ));
        assert!(two.contains("exactly one parameter"), "{two}");
        let write = problem(&q(
            "reviews = { column = 'restaurant_id', lookup = 'DELETE FROM restaurants WHERE id = $1::int' }",
        ));
        assert!(write.contains("lookup cannot be read"), "{write}");
    }

    #[test]
    fn a_query_must_tag_every_table_its_sql_reads() {
        let q = |tags: &str| {
            format!(
                "[[query]]\nname = 'x'\nsql = 'SELECT r.name FROM restaurants r \
                 JOIN reviews v ON v.restaurant_id = r.id'\ntags = [{tags}]"
            )
        };
        assert_eq!(
            problem(&q("'restaurants'")),
            "x: reads table \"reviews\", which its tags [\"restaurants\"] do not declare: \
             add it to tags (every write to it must drop this query)"
        );
        // Tags may name more than tables.
        let c = Catalog::from_toml(&q("'restaurants', 'reviews', 'server'")).unwrap();
        assert_eq!(c.get("x").unwrap().tables, ["restaurants", "reviews"]);
        let unparsable = problem("[[query]]\nname = 'bad'\nsql = 'SELEC 1'");
        assert!(
            unparsable.starts_with("bad: its sql cannot be read: sql parser error"),
            "{unparsable}"
        );
        // Derived, never declared.
        assert!(matches!(
            Catalog::from_toml("[[query]]\nname = 'a'\nsql = 'select 1'\ntables = ['t']"),
            Err(CatalogError::Parse(_))
        ));
        // Statements are writes: not checked.
        let with_statement = "[[query]]\nname = 'a'\nsql = 'select 1'\n\
                              [[statement]]\nname = 'w'\nsql = 'DELETE FROM logs'";
        assert!(Catalog::from_toml(with_statement).is_ok());
    }

    #[test]
    fn a_view_counts_as_the_tables_it_reads() {
        let text = |tags: &str| {
            format!(
                "[views]\nrestaurant_ratings = ['restaurants', 'reviews']\n\
                 [[query]]\nname = 'top'\n\
                 sql = 'SELECT name FROM public.restaurant_ratings ORDER BY rating DESC LIMIT 10'\n\
                 tags = [{tags}]"
            )
        };
        let c = Catalog::from_toml(&text("'restaurant_ratings', 'restaurants', 'reviews'")).unwrap();
        assert_eq!(
            c.get("top").unwrap().tables,
            ["restaurant_ratings", "restaurants", "reviews"]
        );
        let missing = problem(&text("'restaurant_ratings', 'restaurants'"));
        assert!(
            missing.contains("reads table \"reviews\" (through view \"restaurant_ratings\")"),
            "{missing}"
        );
        let view_untagged = problem(&text("'restaurants', 'reviews'"));
        assert!(
            view_untagged.contains("reads view \"restaurant_ratings\", which"),
            "{view_untagged}"
        );
        let bad = problem("[views]\nBad = ['x']\n[[query]]\nname = 'q'\nsql = 'select 1'");
        assert!(bad.contains("[views] \"Bad\""), "{bad}");
    }

    #[test]
    fn checks_engines_and_reports_unconfigured_databases() {
        let c = Catalog::load(None).unwrap();
        let (pg, my) = (PlaceholderStyle::Numbered, PlaceholderStyle::Positional);
        let missing = c.check_databases(&[("main", pg)]).unwrap();
        assert_eq!(missing, ["articles"]);
        assert!(c
            .check_databases(&[("main", pg), ("articles", my)])
            .unwrap()
            .is_empty());
        let e = c.check_databases(&[("main", my)]).unwrap_err().to_string();
        assert!(e.contains("placeholders are $n (PostgreSQL)"), "{e}");
    }

    #[test]
    fn lists_the_dependents_of_a_tag() {
        let c = Catalog::load(None).unwrap();
        let products = c.dependents("products");
        assert!(!products.is_empty());
        assert!(products.iter().all(|q| c.get(q).unwrap().depends_on("products")));
        assert!(c.dependents("no_such_tag").is_empty());
    }

    #[test]
    fn refuses_mixed_or_miscounted_question_marks() {
        let q = |sql: &str| {
            format!("[[query]]\nname = 'm'\nsql = '{sql}'\n[[query.params]]\nname = 'n'\ntype = 'int'")
        };
        assert!(problem(&q("select $1, ?")).contains("mixes"));
        assert!(problem(&q("select ?, ?")).contains("2 ? placeholder(s) but 1"));
        assert!(Catalog::from_toml(&q("select ?")).is_ok());
    }

    #[test]
    fn finds_placeholders_outside_quotes() {
        assert_eq!(
            placeholders("select $1, '$2', $3::int, $$x$$ where a=$10"),
            (vec![1, 3, 10], 0)
        );
        assert_eq!(placeholders("select ? where a = '?' and b like ?"), (vec![], 2));
    }

    fn problem(toml_text: &str) -> String {
        match Catalog::from_toml(toml_text) {
            Err(CatalogError::Invalid { query, problem }) => format!("{query}: {problem}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn explains_what_is_wrong() {
        let q = |extra: &str| format!("[[query]]\nname = 'q'\nsql = 'select $1'\n{extra}");
        assert!(problem(&q("")).contains("placeholders [\"$1\"] but 0 parameter"));
        assert!(problem(&q("ttl_seconds = 0")).contains("ttl_seconds"));
        let p = "[[query.params]]\nname = 'n'\ntype = 'int'\nmin = 1\nmax = 5\ndefault = 9";
        assert!(problem(&q(p)).contains("default of parameter \"n\""));
        for (bounds, expected) in [
            ("min = nan", "finite"),
            ("max = inf", "finite"),
            ("min = -inf", "finite"),
            ("min = 5\nmax = 1", "min 5 is above max 1"),
        ] {
            let p = format!("[[query.params]]\nname = 'n'\ntype = 'float'\n{bounds}");
            assert!(
                problem(&q(&p)).contains(expected),
                "{bounds}: {}",
                problem(&q(&p))
            );
        }
        let lengths = "[[query.params]]\nname = 's'\ntype = 'string'\nmin_length = 9\nmax_length = 3";
        assert!(problem(&q(lengths)).contains("min_length 9 is above max_length 3"));
        let dup = "[[query]]\nname = 'a'\nsql = 'select 1'\n[[query]]\nname = 'a'\nsql = 'select 2'";
        assert_eq!(problem(dup), "a: declared twice");
        assert!(problem("[[query]]\nname = 'Bad Name'\nsql = 'select 1'").contains("name must be"));
        assert!(matches!(
            Catalog::from_toml("[[query]]\nname = 'a'\nsql = 1"),
            Err(CatalogError::Parse(_))
        ));
        assert!(matches!(
            Catalog::from_toml("[[query]]\nname='a'\nsql='x'\nsqll='y'"),
            Err(CatalogError::Parse(_))
        ));
    }
}
