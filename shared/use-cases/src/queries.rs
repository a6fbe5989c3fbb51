//! Named queries through the cache: resolve the request's parameters against the catalog, key
//! the entry by name, scopes and parameter digest, and load the origin on a miss.

use std::time::Duration;

use cache_aside::{CacheError, EntryKey, Freshness, Lookup, RateLimit, Read};
use query_catalog::{escape_like, NamedQuery, ParamSpec, ParamValue, ResolvedParams};
use sql_origin::{DbError, QueryRows, SqlValue};

use crate::budget::{FleetBudget, LoadError};
use crate::{Clients, UseCaseError};

/// The answer to a named query: which query, with which parameters, and the rows with where
/// they came from.
#[derive(Debug)]
pub struct QueryAnswer<'a> {
    /// The catalog entry.
    pub query: &'a NamedQuery,
    /// The parameters after parsing, limits and defaults.
    pub params: ResolvedParams,
    /// The rows, and their cache state and freshness.
    pub lookup: Lookup<QueryRows>,
}

/// The cache entry of `query` with `params`: its name, the digest of the typed parameters,
/// and the scopes (the query's own, its tags', its entities') whose invalidation drops it.
pub fn query_entry(query: &NamedQuery, params: &ResolvedParams) -> Result<EntryKey, CacheError> {
    entry_of("q", query, params)
}

/// The entry of `query` with `params` loaded by the origin `kind` names: the same scopes, so
/// the same invalidations drop it, whatever origin loads it.
pub(crate) fn entry_of(
    kind: &str,
    query: &NamedQuery,
    params: &ResolvedParams,
) -> Result<EntryKey, CacheError> {
    EntryKey::new(kind, &query.name, &params.as_map())?.with_scopes(query.scopes_for(params))
}

/// How long `query`'s results stay fresh and how stale they may be served; a negative result
/// lives `negative_ttl` unless the query gives its own.
pub(crate) fn freshness(query: &NamedQuery, negative_ttl: Duration) -> Freshness {
    Freshness {
        ttl: query.ttl(),
        stale_while_revalidate: Duration::from_secs(query.stale_while_revalidate_seconds),
        stale_if_error: Duration::from_secs(query.stale_if_error_seconds),
        early_refresh_beta: query.early_refresh_beta,
        max_stored_bytes: Some(query.cached_bytes_limit()),
        memory_trust: query.memory_trust_ms.map(Duration::from_millis),
        negative_ttl: Some(
            query
                .negative_ttl_seconds
                .map_or(negative_ttl, Duration::from_secs),
        ),
    }
}

/// The parameters as the SQL origin binds them, in placeholder order; `escaped` holds the
/// replacement of each text bound into a `LIKE` pattern ([`like_escaped`]).
fn sql_values<'a>(params: &'a ResolvedParams, escaped: &'a [Option<String>]) -> Vec<SqlValue<'a>> {
    params
        .values()
        .zip(escaped.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(value, escaped)| match (value, escaped) {
            (_, Some(Some(text))) => SqlValue::Text(text),
            (ParamValue::Int(i), _) => SqlValue::Int(*i),
            (ParamValue::Float(f), _) => SqlValue::Float(*f),
            (ParamValue::Text(s), _) => SqlValue::Text(s),
            (ParamValue::Bool(b), _) => SqlValue::Bool(*b),
        })
        .collect()
}

/// For each parameter, its text with `LIKE` metacharacters escaped when its spec says the
/// value is bound into a pattern (a term is text, never a pattern).
fn like_escaped(specs: &[ParamSpec], params: &ResolvedParams) -> Vec<Option<String>> {
    params
        .values()
        .zip(specs)
        .map(|(value, spec)| match value {
            ParamValue::Text(s) if spec.escape_like => Some(escape_like(s)),
            _ => None,
        })
        .collect()
}

/// Whether a query result is negative: no rows.
fn no_rows(rows: &QueryRows) -> bool {
    rows.row_count == 0
}

impl Clients {
    /// The catalog query called `name`.
    pub fn named_query(&self, name: &str) -> Result<&NamedQuery, UseCaseError> {
        self.catalog
            .get(name)
            .ok_or_else(|| UseCaseError::UnknownQuery(name.to_owned()))
    }

    /// Runs query `name` with the request's raw parameters (`given`), through the cache as
    /// `read` says.
    pub async fn run_named_query<'q, 'p>(
        &'q self,
        name: &str,
        given: impl IntoIterator<Item = (&'p str, &'p str)>,
        read: Read,
    ) -> Result<QueryAnswer<'q>, UseCaseError> {
        let query = self.named_query(name)?;
        let params = ResolvedParams::resolve(&query.params, given)?;
        let lookup = self.run_query(query, &params, read).await?;
        Ok(QueryAnswer {
            query,
            params,
            lookup,
        })
    }

    /// Runs `query` with `params` through the cache (`read` decides how, and by when), on its
    /// database, within the load budget.
    pub async fn run_query(
        &self,
        query: &NamedQuery,
        params: &ResolvedParams,
        read: Read,
    ) -> Result<Lookup<QueryRows>, UseCaseError> {
        self.run_query_within(query, params, read, Some(self.fleet_budget(query)))
            .await
    }

    /// [`Self::run_query`] drawing loads from `fleet` (`None`: a reload a write caused, which
    /// the writer's own budget already paid for).
    pub(crate) async fn run_query_within(
        &self,
        query: &NamedQuery,
        params: &ResolvedParams,
        read: Read,
        fleet: Option<FleetBudget<'_>>,
    ) -> Result<Lookup<QueryRows>, UseCaseError> {
        let entry = query_entry(query, params).map_err(|e| UseCaseError::Internal(e.to_string()))?;
        Ok(self
            .cached(&entry, query, read, fleet, no_rows, || {
                self.fetch_rows(query, params)
            })
            .await?)
    }

    /// The fleet-wide origin budget of `query`: its own limits, else the configured ones.
    pub(crate) fn fleet_budget<'q>(&self, query: &'q NamedQuery) -> FleetBudget<'q> {
        FleetBudget {
            name: &query.name,
            limit: RateLimit {
                per_second: query
                    .origin_loads_per_second
                    .unwrap_or(self.origin_limit.per_second),
                burst: query.origin_burst.unwrap_or(self.origin_limit.burst),
            },
        }
    }

    /// `entry` through the cache with `query`'s freshness, `read` as asked; on a miss `load`
    /// runs within the load budget (the deadline, the `fleet` budget when given, the
    /// instance's cap). A result `is_negative` says is empty lives the negative TTL.
    pub(crate) async fn cached<T, E, Fut>(
        &self,
        entry: &EntryKey,
        query: &NamedQuery,
        read: Read,
        fleet: Option<FleetBudget<'_>>,
        is_negative: fn(&T) -> bool,
        load: impl FnOnce() -> Fut,
    ) -> Result<Lookup<T>, LoadError<E>>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let read = Read::until(read.mode, self.due(read.deadline));
        self.cache
            .get_or_load_classified(
                entry,
                freshness(query, self.negative_ttl),
                read,
                is_negative,
                || self.within_budget(read.deadline, fleet, load()),
            )
            .await
    }

    /// Runs write `statement` with `params` on its database's writing login (its reading one
    /// when none is configured); returns what it RETURNs.
    pub async fn write_rows(
        &self,
        statement: &NamedQuery,
        params: &ResolvedParams,
    ) -> Result<QueryRows, DbError> {
        let database = match self.writers.get(&statement.database) {
            Some(writer) => writer,
            None => self.databases.require(&statement.database)?,
        };
        run_on(database, statement, params).await
    }

    /// Runs `query` (or a write statement) with `params` on its database, without the cache;
    /// returns its rows (what a write RETURNs).
    pub async fn fetch_rows(
        &self,
        query: &NamedQuery,
        params: &ResolvedParams,
    ) -> Result<QueryRows, DbError> {
        run_on(self.databases.require(&query.database)?, query, params).await
    }
}

/// Runs `query` with `params` on `database`.
async fn run_on(
    database: &sql_origin::Database,
    query: &NamedQuery,
    params: &ResolvedParams,
) -> Result<QueryRows, DbError> {
    database
        .fetch_rows(
            &query.sql,
            &sql_values(params, &like_escaped(&query.params, params)),
            query.row_limit(),
        )
        .await
}

impl Clients {
    /// Warm-up: loads named query `name` with its default parameters from its origin and
    /// overwrites its cached entry.
    pub async fn warm(&self, name: &str) -> Result<Lookup<QueryRows>, UseCaseError> {
        let query = self
            .catalog
            .get(name)
            .ok_or_else(|| UseCaseError::UnknownQuery(name.to_owned()))?;
        let params = ResolvedParams::resolve(&query.params, [])?;
        self.run_query(query, &params, cache_aside::ReadMode::Refresh.into())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use query_catalog::Catalog;

    #[test]
    fn values_bind_in_placeholder_order_with_their_types() {
        let catalog = Catalog::load(None).unwrap();
        let query = catalog.get("products_by_category").unwrap();
        let given = [("limit", "7"), ("category", "tools"), ("max_price", "9.5")];
        let params = ResolvedParams::resolve(&query.params, given).unwrap();
        assert_eq!(
            sql_values(&params, &like_escaped(&query.params, &params)),
            [SqlValue::Text("tools"), SqlValue::Float(9.5), SqlValue::Int(7)]
        );
        let search = catalog.get("article_search_pg").unwrap();
        let term = ResolvedParams::resolve(&search.params, [("term", "50%_")]).unwrap();
        let escaped = like_escaped(&search.params, &term);
        assert_eq!(
            sql_values(&term, &escaped),
            [SqlValue::Text("50\\%\\_")],
            "a term is text, never a pattern"
        );
    }

    #[test]
    fn entries_differ_by_parameters_and_carry_every_scope() {
        let catalog = Catalog::load(None).unwrap();
        let query = catalog.get("restaurant_summary").unwrap();
        let a = ResolvedParams::resolve(&query.params, [("name", "Saffron")]).unwrap();
        let b = ResolvedParams::resolve(&query.params, [("name", "Blue Fig")]).unwrap();
        let (ea, eb) = (query_entry(query, &a).unwrap(), query_entry(query, &b).unwrap());
        assert_ne!(ea.digest(), eb.digest());
        assert_eq!(ea.scopes().len(), 1 + query.tags.len() + query.scope_params.len());
        assert_ne!(
            ea.scopes().last(),
            eb.scopes().last(),
            "each restaurant has its own scope"
        );
        let fresh = freshness(query, Duration::from_secs(10));
        assert_eq!(fresh.ttl, query.ttl());
        assert_eq!(
            fresh.negative_ttl,
            Some(Duration::from_secs(30)),
            "the query's own"
        );
    }
}
