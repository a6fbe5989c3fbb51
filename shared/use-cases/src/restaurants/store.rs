//! The seam between the restaurant use cases and where restaurants live: a
//! [`RestaurantStore`] reads a summary (through the cache, the way its origin caches it) and
//! stores a review. The SQL database ([`SqlStore`]) and the DynamoDB table ([`TableStore`])
//! implement it here; [`ConfiguredStore`] is the one this instance's configuration picks, so
//! the use cases never ask which origin they run on.

use cache_aside::{CacheState, Lookup, Read, ReadMode};
use dynamo_origin::{RequestKey, RestaurantTable, TableError};
use query_catalog::{NamedQuery, ParamError, ResolvedParams};
use serde_json::Value;
use tokio::time::Instant;

use super::{Review, ADD_REVIEW_STATEMENT};
use crate::budget::FleetBudget;
use crate::queries::entry_of;
use crate::{Clients, UseCaseError};

/// One summary read: the restaurant, the catalog query whose settings and scopes its cache
/// entry takes (whatever the origin, so the restaurant's entity scope drops it), and how to
/// read it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SummaryRead<'a> {
    /// The restaurant.
    pub(crate) name: &'a str,
    /// The catalog's summary query.
    pub(crate) query: &'a NamedQuery,
    /// Its parameters (the name), resolved.
    pub(crate) params: &'a ResolvedParams,
    /// Cached, refreshed or bypassed, and by when.
    pub(crate) read: Read,
    /// The fleet-wide load budget a load draws from; `None` for the reload a write caused
    /// (the writer's own budget paid for it).
    pub(crate) fleet: Option<FleetBudget<'a>>,
}

/// One review write as a store takes it.
#[derive(Debug, Clone)]
pub(crate) struct ReviewRequest<'a> {
    /// The restaurant.
    pub(crate) restaurant: &'a str,
    /// The review, checked.
    pub(crate) review: &'a Review,
    /// The client's idempotency key and the request's digest, when it sent a key.
    pub(crate) idempotency: Option<Idempotency<'a>>,
}

/// A client's idempotency key and the digest of what its request asks for (the restaurant and
/// the review): a retry has the same key and digest, another request reusing the key does not.
#[derive(Debug, Clone)]
pub(crate) struct Idempotency<'a> {
    /// The client's `Idempotency-Key` (never empty).
    pub(crate) key: &'a str,
    /// The request's digest.
    pub(crate) digest: String,
}

impl ReviewRequest<'_> {
    /// The key and digest as the DynamoDB table takes them.
    pub(crate) fn request_key(&self) -> Option<RequestKey<'_>> {
        self.idempotency.as_ref().map(|i| RequestKey {
            key: i.key,
            digest: i.digest.as_str(),
        })
    }
}

/// A review as a store answers a write.
#[derive(Debug)]
pub(crate) struct StoredReview {
    /// The review as stored (what the client is answered).
    pub(crate) review: Value,
    /// The digest kept with the key the review was stored under, when the store answers it:
    /// by it the use case tells a retry (same digest) from another request reusing the key.
    /// `None` without a key, for reviews stored before digests were kept, and from a store
    /// that compares digests itself.
    pub(crate) digest: Option<String>,
}

/// Where restaurants live.
pub(crate) trait RestaurantStore {
    /// Restaurant `at.name`'s summary, read as `at.read` asks; the value is `null` when there
    /// is no such restaurant (a negative result: cached briefly, as the query says).
    async fn summary(&self, at: SummaryRead<'_>) -> Result<Lookup<Value>, UseCaseError>;

    /// Stores `write.review` for restaurant `write.restaurant`, within the instance's load
    /// budget and by `due`. `None` when there is no such restaurant (nothing is stored). With
    /// a key the store has seen before, nothing is stored and the review first stored under it
    /// is answered, or [`UseCaseError::IdempotencyKeyReused`] from a store that compares the
    /// digests itself.
    async fn add_review(
        &self,
        write: &ReviewRequest<'_>,
        due: Option<Instant>,
    ) -> Result<Option<StoredReview>, UseCaseError>;
}

/// Restaurants in the SQL database: the catalog's summary query (its cache entry is the one
/// `GET /queries/restaurant_summary` reads) and its `add_review` statement, every value bound
/// as a parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqlStore<'a> {
    clients: &'a Clients,
}

impl RestaurantStore for SqlStore<'_> {
    /// The summary is the query's first row. An entry that is not a row list (damaged, or
    /// written by something else) is replaced once.
    async fn summary(&self, at: SummaryRead<'_>) -> Result<Lookup<Value>, UseCaseError> {
        let SummaryRead {
            name,
            query,
            params,
            read,
            fleet,
        } = at;
        let lookup = self.clients.run_query_within(query, params, read, fleet).await?;
        let row = match first_row(lookup.value.rows.get()) {
            Ok(row) => row,
            Err(e) if read.mode == ReadMode::Cached && lookup.state != CacheState::Miss => {
                tracing::warn!(error = %e, restaurant = name, "cached summary unreadable; reloading it");
                let refreshed = Read::until(ReadMode::Refresh, read.deadline);
                let lookup = self
                    .clients
                    .run_query_within(query, params, refreshed, fleet)
                    .await?;
                let row = first_row(lookup.value.rows.get())?;
                return Ok(lookup.map(|_| row.unwrap_or_default()));
            }
            Err(e) => return Err(e),
        };
        Ok(lookup.map(|_| row.unwrap_or_default()))
    }

    /// Runs the statement on the writing login. The row a key stored keeps the request's
    /// digest, answered (and dropped from the review) here.
    async fn add_review(
        &self,
        write: &ReviewRequest<'_>,
        due: Option<Instant>,
    ) -> Result<Option<StoredReview>, UseCaseError> {
        let statement = self
            .clients
            .catalog
            .statement(ADD_REVIEW_STATEMENT)
            .ok_or_else(|| UseCaseError::UnknownQuery(ADD_REVIEW_STATEMENT.to_owned()))?;
        let params = statement_params(statement, write)?;
        let inserted = self
            .clients
            .within_budget(due, None, self.clients.write_rows(statement, &params))
            .await?;
        let Some(mut review) = first_row(inserted.rows.get())? else {
            return Ok(None);
        };
        let digest = review
            .as_object_mut()
            .and_then(|r| r.remove("request_digest"))
            .and_then(|d| d.as_str().map(str::to_owned));
        Ok(Some(StoredReview { review, digest }))
    }
}

/// `write` as the parameters of the catalog's `add_review` `statement`. The review is checked
/// already; a catalog of its own may still be stricter, and refuses it here.
pub(crate) fn statement_params(
    statement: &NamedQuery,
    write: &ReviewRequest<'_>,
) -> Result<ResolvedParams, ParamError> {
    let rating = write.review.rating().to_string();
    let mut given = vec![
        ("name", write.restaurant),
        ("author", write.review.author()),
        ("rating", rating.as_str()),
        ("body", write.review.body()),
    ];
    if let Some(idempotency) = &write.idempotency {
        given.push(("request_id", idempotency.key));
        given.push(("request_digest", idempotency.digest.as_str()));
    }
    ResolvedParams::resolve(&statement.params, given).map_err(|mut e| {
        if e.param == "request_id" {
            e.param = "Idempotency-Key".into();
        }
        e
    })
}

/// Restaurants in the DynamoDB table. Summaries are cached as the summary itself (`null` for
/// no restaurant), under an entry kind of their own so they never mix with SQL-loaded entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableStore<'a> {
    clients: &'a Clients,
    table: &'a RestaurantTable,
}

impl RestaurantStore for TableStore<'_> {
    async fn summary(&self, at: SummaryRead<'_>) -> Result<Lookup<Value>, UseCaseError> {
        let SummaryRead {
            name,
            query,
            params,
            read,
            fleet,
        } = at;
        let table = self.table;
        let entry = entry_of("ddb", query, params).map_err(|e| UseCaseError::Internal(e.to_string()))?;
        Ok(self
            .clients
            .cached(&entry, query, read, fleet, Value::is_null, || async {
                Ok::<_, TableError>(table.summary(name).await?.unwrap_or(Value::Null))
            })
            .await?)
    }

    /// One transaction; the table keeps a key's digest and compares it itself.
    async fn add_review(
        &self,
        write: &ReviewRequest<'_>,
        due: Option<Instant>,
    ) -> Result<Option<StoredReview>, UseCaseError> {
        let stored = self
            .clients
            .within_budget(
                due,
                None,
                self.table.add_review(
                    write.restaurant,
                    write.review.as_new_review(),
                    write.request_key(),
                ),
            )
            .await?;
        Ok(stored.map(|review| StoredReview { review, digest: None }))
    }
}

/// The store this instance's configuration picks (`RESTAURANT_ORIGIN`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConfiguredStore<'a> {
    /// The SQL database.
    Sql(SqlStore<'a>),
    /// The DynamoDB table.
    Table(TableStore<'a>),
}

impl RestaurantStore for ConfiguredStore<'_> {
    async fn summary(&self, at: SummaryRead<'_>) -> Result<Lookup<Value>, UseCaseError> {
        match self {
            Self::Sql(store) => store.summary(at).await,
            Self::Table(store) => store.summary(at).await,
        }
    }

    async fn add_review(
        &self,
        write: &ReviewRequest<'_>,
        due: Option<Instant>,
    ) -> Result<Option<StoredReview>, UseCaseError> {
        match self {
            Self::Sql(store) => store.add_review(write, due).await,
            Self::Table(store) => store.add_review(write, due).await,
        }
    }
}

impl Clients {
    /// The store of this instance's restaurants: the table when they live in DynamoDB, else
    /// the SQL database.
    pub(crate) fn restaurant_store(&self) -> ConfiguredStore<'_> {
        match &self.restaurant_table {
            Some(table) => ConfiguredStore::Table(TableStore { clients: self, table }),
            None => ConfiguredStore::Sql(SqlStore { clients: self }),
        }
    }
}

/// The first row of `rows` (a JSON array), or `None` when it is empty.
fn first_row(rows: &str) -> Result<Option<Value>, UseCaseError> {
    let rows: Vec<Value> = serde_json::from_str(rows).map_err(|e| UseCaseError::Internal(e.to_string()))?;
    Ok(rows.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_row_of_an_array() {
        assert_eq!(
            first_row(r#"[{"a": 1}, {"a": 2}]"#).unwrap(),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(first_row("[]").unwrap(), None);
        assert!(matches!(first_row("{}"), Err(UseCaseError::Internal(_))));
    }
}
