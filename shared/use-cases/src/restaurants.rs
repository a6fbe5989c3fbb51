//! The restaurant scenario: a cached summary per restaurant (the restaurant, its rating and
//! 5 newest reviews) and a review write path that keeps it current (write-through).
//!
//! The data lives in the SQL database (the catalog's `restaurant_summary` query and
//! `add_review` statement) or in a DynamoDB table, as configured. Either way the catalog query
//! gives the cache entry its TTL, early-refresh and stale settings and its scopes, so the
//! restaurant's entity scope drops its summary whatever the origin, and the statement's
//! parameters validate a review.

use std::time::Duration;

use cache_aside::{Admission, CacheState, Lookup, Read, ReadMode};
use dynamo_origin::{NewReview, RequestKey, RestaurantTable, TableError};
use query_catalog::{NamedQuery, ParamValue, ResolvedParams};
use serde_json::{Map, Value};

use crate::budget::FleetBudget;
use crate::queries::entry_of;
use crate::{Clients, UseCaseError};

/// The catalog query that builds a summary.
pub const SUMMARY_QUERY: &str = "restaurant_summary";
/// The catalog statement that stores a review.
pub const ADD_REVIEW_STATEMENT: &str = "add_review";
/// The fields a review may have.
pub const REVIEW_FIELDS: [&str; 3] = ["author", "rating", "body"];

/// Who writes a review, under which idempotency key, and by when it must be answered.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReviewWrite<'a> {
    /// The author from the caller's verified identity; it replaces any author the body names.
    /// `None`: the body names the author (no identity required).
    pub author: Option<&'a str>,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
    /// The invocation's deadline.
    pub deadline: Option<tokio::time::Instant>,
}

/// A stored review and the summary read right after it.
#[derive(Debug)]
pub struct ReviewAdded {
    /// The review as stored (what the statement RETURNs).
    pub review: Value,
    /// The restaurant's summary after the write; `None` when it could not be reloaded within
    /// the deadline (the next read loads it).
    pub summary: Option<Lookup<Value>>,
    /// False when the restaurant's summaries could not be invalidated (Redis trouble); the
    /// summary above was then reloaded over the cached one instead.
    pub summary_invalidated: bool,
    /// Whether `summary` was read after the write (it includes the review).
    pub summary_fresh: bool,
}

/// A digest of what a review request asks for (the restaurant and the review, as resolved):
/// stored with its idempotency key, so a retry is told apart from another request reusing it.
fn request_digest(params: &ResolvedParams) -> String {
    use sha2::Digest as _;
    let asked: Vec<(&str, &ParamValue)> = params
        .as_map()
        .into_iter()
        .filter(|(name, _)| !matches!(*name, "request_id" | "request_digest"))
        .collect();
    let canonical = serde_json::to_string(&asked).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// The stored `row`, unless the key it was stored under was first used for another request
/// (its digest differs; rows stored before digests were kept have none and are taken as the
/// same). The digest is not part of the answer.
fn same_request(mut row: Value, digest: Option<&str>) -> Result<Value, UseCaseError> {
    let stored = row
        .as_object_mut()
        .and_then(|r| r.remove("request_digest"))
        .and_then(|d| d.as_str().map(str::to_owned));
    match (stored, digest) {
        (Some(stored), Some(digest)) if stored != digest => Err(UseCaseError::IdempotencyKeyReused),
        _ => Ok(row),
    }
}

/// The first row of `rows` (a JSON array), or `None` when it is empty.
fn first_row(rows: &str) -> Result<Option<Value>, UseCaseError> {
    let rows: Vec<Value> = serde_json::from_str(rows).map_err(|e| UseCaseError::Internal(e.to_string()))?;
    Ok(rows.into_iter().next())
}

/// The statement's raw parameters from a review body: `name` plus the known fields, numbers
/// given as text so the catalog's types decide.
fn review_params(
    restaurant: &str,
    review: &Map<String, Value>,
) -> Result<Vec<(String, String)>, UseCaseError> {
    if let Some(unknown) = review.keys().find(|k| !REVIEW_FIELDS.contains(&k.as_str())) {
        return Err(query_catalog::ParamError {
            param: unknown.clone(),
            problem: "unknown field; expected author, rating, body".into(),
        }
        .into());
    }
    let mut given = vec![("name".to_owned(), restaurant.to_owned())];
    for field in REVIEW_FIELDS {
        let text = match review.get(field) {
            None => continue,
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) if field == "rating" => n.to_string(),
            Some(_) => {
                return Err(query_catalog::ParamError {
                    param: field.to_owned(),
                    problem: "has the wrong JSON type".into(),
                }
                .into())
            }
        };
        given.push((field.to_owned(), text));
    }
    Ok(given)
}

impl Clients {
    fn summary_query(&self) -> Result<&NamedQuery, UseCaseError> {
        self.named_query(SUMMARY_QUERY)
    }

    /// The summary of restaurant `name` through the cache (`read` as for any query), from the
    /// configured origin, within the summaries' fleet-wide load budget.
    pub async fn restaurant_summary(&self, name: &str, read: Read) -> Result<Lookup<Value>, UseCaseError> {
        self.summary_within(name, read, true).await
    }

    /// [`Self::restaurant_summary`]; `budgeted: false` for the reload a write causes (the
    /// writer's own budget paid for it).
    async fn summary_within(
        &self,
        name: &str,
        read: Read,
        budgeted: bool,
    ) -> Result<Lookup<Value>, UseCaseError> {
        let query = self.summary_query()?;
        let params = ResolvedParams::resolve(&query.params, [("name", name)])?;
        let fleet = budgeted.then(|| self.fleet_budget(query));
        match &self.restaurant_table {
            Some(table) => self.table_summary(table, query, &params, name, read, fleet).await,
            None => self.sql_summary(query, &params, name, read, fleet).await,
        }
    }

    /// The summary from DynamoDB, cached as the summary itself (`null` for no restaurant).
    async fn table_summary(
        &self,
        table: &RestaurantTable,
        query: &NamedQuery,
        params: &ResolvedParams,
        name: &str,
        read: Read,
        fleet: Option<FleetBudget<'_>>,
    ) -> Result<Lookup<Value>, UseCaseError> {
        // Its own kind, so it never mixes with SQL-loaded entries.
        let entry = entry_of("ddb", query, params).map_err(|e| UseCaseError::Internal(e.to_string()))?;
        let lookup = self
            .cached(&entry, query, read, fleet, Value::is_null, || async {
                Ok::<_, TableError>(table.summary(name).await?.unwrap_or(Value::Null))
            })
            .await?;
        found(lookup, name)
    }

    /// The summary from the catalog query. An entry that is not a summary (damaged, or written
    /// by something else) is replaced once.
    async fn sql_summary(
        &self,
        query: &NamedQuery,
        params: &ResolvedParams,
        name: &str,
        read: Read,
        fleet: Option<FleetBudget<'_>>,
    ) -> Result<Lookup<Value>, UseCaseError> {
        let lookup = self.run_query_within(query, params, read, fleet).await?;
        let row = match first_row(lookup.value.rows.get()) {
            Ok(row) => row,
            Err(e) if read.mode == ReadMode::Cached && lookup.state != CacheState::Miss => {
                tracing::warn!(error = %e, restaurant = name, "cached summary unreadable; reloading it");
                let refreshed = Read::until(ReadMode::Refresh, read.deadline);
                let lookup = self.run_query_within(query, params, refreshed, fleet).await?;
                let row = first_row(lookup.value.rows.get())?;
                return found(lookup.map(|_| row.unwrap_or_default()), name);
            }
            Err(e) => return Err(e),
        };
        found(lookup.map(|_| row.unwrap_or_default()), name)
    }

    /// Stores `review` for restaurant `name` (once per `idempotency_key`), then makes sure the
    /// next read of its summary includes it: the restaurant's summary scope is invalidated
    /// (O(1), fencing any fill that started before the write; retried), else the summary is
    /// reloaded over the cached one. Both are bounded by `deadline`.
    ///
    /// Once the review is stored the answer says so, whatever happens to the summary: a failed
    /// reload leaves `summary` empty (`summary_fresh: false`), never an error that reads as
    /// "not stored" and invites the client to post again. Only when neither the invalidation
    /// nor the reload reached Redis is the answer [`UseCaseError::SummaryMayBeStale`] (which
    /// carries the stored review). A key used before for another restaurant or review is
    /// refused ([`UseCaseError::IdempotencyKeyReused`]).
    pub async fn add_review(
        &self,
        name: &str,
        review: &Map<String, Value>,
        write: ReviewWrite<'_>,
    ) -> Result<ReviewAdded, UseCaseError> {
        let ReviewWrite {
            author,
            idempotency_key,
            deadline,
        } = write;
        let statement = self
            .catalog
            .statement(ADD_REVIEW_STATEMENT)
            .ok_or_else(|| UseCaseError::UnknownQuery(ADD_REVIEW_STATEMENT.to_owned()))?;
        let mut given = review_params(name, review)?;
        if let Some(author) = author {
            given.retain(|(field, _)| field != "author");
            given.push(("author".to_owned(), author.to_owned()));
        }
        if let Some(key) = idempotency_key {
            given.push(("request_id".to_owned(), key.to_owned()));
        }
        let resolve = |given: &[(String, String)]| {
            ResolvedParams::resolve(
                &statement.params,
                given.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .map_err(|mut e| {
                if e.param == "request_id" {
                    e.param = "Idempotency-Key".into();
                }
                e
            })
        };
        let mut params = resolve(&given)?;
        let writer = match params.as_map().get("author") {
            Some(ParamValue::Text(author)) => author.clone(),
            _ => String::new(),
        };
        if let Admission::Refused { retry_after } = self
            .cache
            .take_token(&format!("reviews:author:{writer}"), self.author_limit)
            .await
        {
            return Err(UseCaseError::RateLimited { retry_after });
        }
        let digest = idempotency_key.map(|_| request_digest(&params));
        if let Some(digest) = &digest {
            given.push(("request_digest".to_owned(), digest.clone()));
            params = resolve(&given)?;
        }
        let stored = match &self.restaurant_table {
            Some(table) => {
                self.store_review_in_table(table, name, &params, digest.as_deref(), deadline)
                    .await?
            }
            None => {
                let inserted = self
                    .within_budget(self.due(deadline), None, self.write_rows(statement, &params))
                    .await?;
                first_row(inserted.rows.get())?
                    .map(|row| same_request(row, digest.as_deref()))
                    .transpose()?
            }
        }
        .ok_or_else(|| UseCaseError::RestaurantNotFound(name.to_owned()))?;
        let invalidated = self.invalidate_summary(name, self.due(deadline)).await;
        let mode = if invalidated {
            ReadMode::Cached
        } else {
            ReadMode::Refresh
        };
        let summary = match self
            .summary_within(name, Read::until(mode, deadline), false)
            .await
        {
            Ok(summary) => Some(summary),
            Err(e) => {
                tracing::warn!(error = %e, restaurant = name, "review stored; its summary could not be reloaded");
                None
            }
        };
        let summary_fresh = summary
            .as_ref()
            .is_some_and(|s| matches!(s.state, CacheState::Miss | CacheState::Hit));
        if !invalidated && !summary_fresh {
            tracing::error!(
                restaurant = name,
                "review stored; its cached summary could be neither invalidated nor replaced"
            );
            return Err(UseCaseError::SummaryMayBeStale { review: stored });
        }
        Ok(ReviewAdded {
            review: stored,
            summary,
            summary_invalidated: invalidated,
            summary_fresh,
        })
    }

    /// Stores a review, validated by the catalog statement's parameters, in the table.
    async fn store_review_in_table(
        &self,
        table: &RestaurantTable,
        name: &str,
        params: &ResolvedParams,
        digest: Option<&str>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<Value>, UseCaseError> {
        let values = params.as_map();
        let text = |field: &str| match values.get(field) {
            Some(ParamValue::Text(s)) => Ok(s.as_str()),
            _ => Err(UseCaseError::Internal(format!(
                "statement {ADD_REVIEW_STATEMENT} has no string parameter {field}"
            ))),
        };
        let rating = match values.get("rating") {
            Some(ParamValue::Int(rating)) => *rating,
            _ => {
                return Err(UseCaseError::Internal(format!(
                    "statement {ADD_REVIEW_STATEMENT} has no int parameter rating"
                )))
            }
        };
        let review = NewReview {
            author: text("author")?,
            rating,
            body: text("body")?,
        };
        let request = text("request_id")
            .ok()
            .filter(|k| !k.is_empty())
            .zip(digest)
            .map(|(key, digest)| RequestKey { key, digest });
        Ok(self
            .within_budget(self.due(deadline), None, table.add_review(name, review, request))
            .await?)
    }

    /// Drops restaurant `name`'s cached summaries; three tries, a short pause between them,
    /// none started past `due`.
    async fn invalidate_summary(&self, name: &str, due: Option<tokio::time::Instant>) -> bool {
        for attempt in 1..=INVALIDATION_TRIES {
            if due.is_some_and(|due| tokio::time::Instant::now() >= due) {
                break;
            }
            match self.invalidation().restaurant(name).await {
                Ok(_) => return true,
                Err(e) => {
                    tracing::warn!(error = %e, restaurant = name, attempt, "summary invalidation failed");
                    if attempt < INVALIDATION_TRIES {
                        let pause =
                            tokio::time::Instant::now() + Duration::from_millis(50 * u64::from(attempt));
                        tokio::time::sleep_until(due.map_or(pause, |due| pause.min(due))).await;
                    }
                }
            }
        }
        false
    }
}

/// Tries of an invalidation after a write.
const INVALIDATION_TRIES: u32 = 3;

/// The summary, or "no such restaurant" when the query found no row.
fn found(lookup: Lookup<Value>, name: &str) -> Result<Lookup<Value>, UseCaseError> {
    if lookup.value.is_null() {
        return Err(UseCaseError::RestaurantNotFound(name.to_owned()));
    }
    Ok(lookup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn review_fields_become_statement_parameters() {
        let given = review_params("Saffron", &body(r#"{"author": "A", "rating": 4, "body": "ok"}"#)).unwrap();
        assert_eq!(
            given,
            [
                ("name", "Saffron"),
                ("author", "A"),
                ("rating", "4"),
                ("body", "ok")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn unknown_or_mistyped_fields_are_refused_by_name() {
        let refused = |json: &str| match review_params("x", &body(json)) {
            Err(UseCaseError::BadParameter(e)) => e.param,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(r#"{"stars": 5}"#), "stars");
        assert_eq!(refused(r#"{"author": 7}"#), "author");
        assert_eq!(refused(r#"{"rating": [5]}"#), "rating");
    }

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
