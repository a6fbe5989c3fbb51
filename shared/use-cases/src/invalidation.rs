//! Invalidation: drop every cached result of a query, of a data tag, or of one entity, and
//! drop cached objects. Each is O(1) in Redis (a generation bump or one DEL), whatever is
//! cached, and a fill that started before it can no longer be read.

use std::time::Duration;

use cache_aside::{Cache, CacheError};
use query_catalog::{entity_scope, query_scope, tag_scope, Catalog, NamedQuery, ParamValue};

use crate::{Clients, UseCaseError};

/// What a tag invalidation dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInvalidated<'a> {
    /// The queries depending on the tag, in catalog order.
    pub queries: Vec<&'a str>,
    /// The tag's new generation.
    pub generation: u64,
}

/// The invalidation use cases over a cache and the catalog: all the invalidator needs, and
/// the query API's admin routes.
#[derive(Debug, Clone, Copy)]
pub struct Invalidation<'a> {
    cache: &'a Cache,
    catalog: &'a Catalog,
    settle: Duration,
}

impl<'a> Invalidation<'a> {
    /// Invalidation through `cache` of the queries in `catalog`.
    pub fn new(cache: &'a Cache, catalog: &'a Catalog) -> Self {
        Self {
            cache,
            catalog,
            settle: service_config::DEFAULT_INVALIDATION_SETTLE,
        }
    }

    /// Sets the pause between the two bumps of [`Self::table_changed`].
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// A row of `table` changed: its tag is invalidated now and again after the settle pause.
    /// The change trigger fires while its transaction commits, so the first bump can precede
    /// the commit: a miss in between reads the old rows and stores them under the new
    /// generation. The second bump, once the commit is visible, makes that entry unreachable
    /// too. (Events delivered after commit, like `pg_notify`, only pay the pause.) Returns the
    /// generation after the second bump.
    pub async fn table_changed(&self, table: &str) -> Result<u64, CacheError> {
        self.tag(table).await?;
        tokio::time::sleep(self.settle).await;
        self.tag(table).await
    }

    /// The cache bumps go to.
    pub(crate) fn cache(&self) -> &'a Cache {
        self.cache
    }

    /// The catalog whose queries are invalidated.
    pub(crate) fn catalog(&self) -> &'a Catalog {
        self.catalog
    }

    /// Whether the catalog has query `name`.
    pub fn knows_query(&self, name: &str) -> bool {
        self.catalog.get(name).is_some()
    }

    /// Drops every cached result of query `name`; returns the query's new generation.
    pub async fn query(&self, name: &str) -> Result<u64, UseCaseError> {
        let query = self
            .catalog
            .get(name)
            .ok_or_else(|| UseCaseError::UnknownQuery(name.to_owned()))?;
        Ok(self.cache.invalidate(&query_scope(&query.name)).await?)
    }

    /// Drops every cached result of the queries depending on `tag`; a tag no query declares is
    /// refused (most likely a typo), and nothing is written.
    pub async fn known_tag(&self, tag: &str) -> Result<TagInvalidated<'a>, UseCaseError> {
        let queries = self.catalog.dependents(tag);
        if queries.is_empty() {
            return Err(UseCaseError::UnknownTag(tag.to_owned()));
        }
        let generation = self.tag(tag).await?;
        Ok(TagInvalidated { queries, generation })
    }

    /// Bumps `tag`'s generation whether or not a query declares it today (an event source
    /// may name tags a newer catalog uses).
    pub async fn tag(&self, tag: &str) -> Result<u64, CacheError> {
        self.cache.invalidate(&tag_scope(tag)).await
    }

    /// The queries that a change to `tag` (usually a table) affects.
    pub fn dependents(&self, tag: &str) -> Vec<&'a str> {
        self.catalog.dependents(tag)
    }

    /// Drops every cached result of `query` whose scope parameter `param` equals `value`
    /// (one restaurant's summary, say).
    pub async fn entity(
        &self,
        query: &NamedQuery,
        param: &str,
        value: &ParamValue,
    ) -> Result<u64, CacheError> {
        self.cache
            .invalidate(&entity_scope(&query.name, param, value))
            .await
    }

    /// Drops restaurant `name`'s cached summaries, whatever their origin.
    pub async fn restaurant(&self, name: &str) -> Result<u64, UseCaseError> {
        let query = self
            .catalog
            .get(crate::SUMMARY_QUERY)
            .ok_or_else(|| UseCaseError::UnknownQuery(crate::SUMMARY_QUERY.to_owned()))?;
        Ok(self
            .entity(query, "name", &ParamValue::Text(name.to_owned()))
            .await?)
    }

    /// Drops cached object `key`.
    pub async fn object(&self, key: &str) -> Result<(), CacheError> {
        Ok(self.cache.drop_object(key).await?)
    }
}

impl Clients {
    /// The invalidation use cases over this instance's cache and catalog.
    pub fn invalidation(&self) -> Invalidation<'_> {
        Invalidation::new(&self.cache, &self.catalog)
    }
}
/// The restaurant whose summary a DynamoDB stream record changed, from the record's keys
/// (`{"PK": {"S": "..."}, "SK": {"S": "..."}}`, the table's key schema); `None` for records
/// that no summary reads.
pub fn restaurant_changed_by(keys: &serde_json::Value) -> Option<String> {
    let string_key = |name: &str| keys.get(name)?.get("S")?.as_str();
    let partition = string_key(dynamo_origin::PARTITION_KEY).unwrap_or_default();
    let sort = string_key(dynamo_origin::SORT_KEY).unwrap_or_default();
    dynamo_origin::summary_affected_by(partition, sort).map(str::to_owned)
}
