//! The restaurant scenario: a cached summary per restaurant (the restaurant, its rating and
//! 5 newest reviews) and a review write path that keeps it current (write-through).
//!
//! The data lives in the SQL database (the catalog's `restaurant_summary` query and
//! `add_review` statement) or in a DynamoDB table, as configured: each is a
//! [`RestaurantStore`], and the use cases here call the one configured without asking which.
//! Either way the catalog query gives the cache entry its TTL, early-refresh and stale settings
//! and its scopes, so the restaurant's entity scope drops its summary whatever the origin. A
//! review is parsed once into a [`Review`] (every field checked) and reaches either store as
//! that typed value.

mod review;
mod store;

#[cfg(test)]
mod memory;

pub use review::{Review, ReviewError, REVIEW_FIELDS};

use std::time::Duration;

use cache_aside::{Admission, CacheState, Lookup, Read, ReadMode};
use query_catalog::{NamedQuery, ParamError, ResolvedParams};
use serde_json::Value;
use tokio::time::Instant;

use self::review::{KEY_LENGTH, RESTAURANT_LENGTH};
use self::store::{Idempotency, RestaurantStore, ReviewRequest, SummaryRead};
use crate::{Clients, UseCaseError};

/// The catalog query that builds a summary.
pub const SUMMARY_QUERY: &str = "restaurant_summary";
/// The catalog statement that stores a review.
pub const ADD_REVIEW_STATEMENT: &str = "add_review";

/// How a review is written: under which idempotency key, and by when it must be answered.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReviewWrite<'a> {
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
    /// The invocation's deadline.
    pub deadline: Option<Instant>,
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

/// A digest of what a review request asks for (the restaurant and the review): stored with its
/// idempotency key, so a retry is told apart from another request reusing it. The text hashed
/// is the `add_review` statement's parameters by name, as digests were first computed: rows
/// and items stored under a key keep theirs, and a retry across a deploy must still match.
fn request_digest(restaurant: &str, review: &Review) -> String {
    use sha2::Digest as _;
    let asked = serde_json::json!([
        ["author", review.author()],
        ["body", review.body()],
        ["name", restaurant],
        ["rating", review.rating()],
    ]);
    hex::encode(sha2::Sha256::digest(asked.to_string().as_bytes()))
}

/// A review write, checked: the restaurant's name and the idempotency key (an empty key is
/// none: it never matched another request), with the request's digest when a key came.
fn review_request<'a>(
    restaurant: &'a str,
    review: &'a Review,
    key: Option<&'a str>,
) -> Result<ReviewRequest<'a>, ParamError> {
    RESTAURANT_LENGTH.check("name", restaurant)?;
    if let Some(key) = key {
        KEY_LENGTH.check("Idempotency-Key", key)?;
    }
    Ok(ReviewRequest {
        restaurant,
        review,
        idempotency: key.filter(|k| !k.is_empty()).map(|key| Idempotency {
            key,
            digest: request_digest(restaurant, review),
        }),
    })
}

/// Restaurant `at.name`'s summary from `store`, or "no such restaurant".
async fn summary_from<S: RestaurantStore>(
    store: &S,
    at: SummaryRead<'_>,
) -> Result<Lookup<Value>, UseCaseError> {
    found(store.summary(at).await?, at.name)
}

/// Stores `request`'s review in `store` by `due`: the review as stored, or for a retry (same
/// key, same digest) the review its first request stored. A key first used for another
/// restaurant or review is refused ([`UseCaseError::IdempotencyKeyReused`]).
async fn store_review<S: RestaurantStore>(
    store: &S,
    request: &ReviewRequest<'_>,
    due: Option<Instant>,
) -> Result<Value, UseCaseError> {
    let stored = store
        .add_review(request, due)
        .await?
        .ok_or_else(|| UseCaseError::RestaurantNotFound(request.restaurant.to_owned()))?;
    let asked = request.idempotency.as_ref().map(|i| i.digest.as_str());
    let reused = matches!((stored.digest.as_deref(), asked), (Some(kept), Some(asked)) if kept != asked);
    if reused {
        return Err(UseCaseError::IdempotencyKeyReused);
    }
    Ok(stored.review)
}

/// The answer to a stored `review`, given whether the restaurant's summaries were invalidated
/// and the summary reloaded after the write: [`UseCaseError::SummaryMayBeStale`] (carrying the
/// review) only when neither reached Redis, since nothing then keeps the old summary from
/// being read.
fn review_added(
    name: &str,
    review: Value,
    invalidated: bool,
    summary: Option<Lookup<Value>>,
) -> Result<ReviewAdded, UseCaseError> {
    let summary_fresh = summary
        .as_ref()
        .is_some_and(|s| matches!(s.state, CacheState::Miss | CacheState::Hit));
    if !invalidated && !summary_fresh {
        tracing::error!(
            restaurant = name,
            "review stored; its cached summary could be neither invalidated nor replaced"
        );
        return Err(UseCaseError::SummaryMayBeStale { review });
    }
    Ok(ReviewAdded {
        review,
        summary,
        summary_invalidated: invalidated,
        summary_fresh,
    })
}

impl Clients {
    fn summary_query(&self) -> Result<&NamedQuery, UseCaseError> {
        self.named_query(SUMMARY_QUERY)
    }

    /// The summary of restaurant `name` through the cache (`read` as for any query), from the
    /// configured origin, within the summaries' fleet-wide load budget.
    pub async fn restaurant_summary(&self, name: &str, read: Read) -> Result<Lookup<Value>, UseCaseError> {
        let store = self.restaurant_store();
        self.summary_within(&store, name, read, true).await
    }

    /// [`Self::restaurant_summary`] from `store`; `budgeted: false` for the reload a write
    /// causes (the writer's own budget paid for it).
    async fn summary_within<S: RestaurantStore>(
        &self,
        store: &S,
        name: &str,
        read: Read,
        budgeted: bool,
    ) -> Result<Lookup<Value>, UseCaseError> {
        let query = self.summary_query()?;
        let params = ResolvedParams::resolve(&query.params, [("name", name)])?;
        let fleet = budgeted.then(|| self.fleet_budget(query));
        let at = SummaryRead {
            name,
            query,
            params: &params,
            read,
            fleet,
        };
        summary_from(store, at).await
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
        review: &Review,
        write: ReviewWrite<'_>,
    ) -> Result<ReviewAdded, UseCaseError> {
        let ReviewWrite {
            idempotency_key,
            deadline,
        } = write;
        let request = review_request(name, review, idempotency_key)?;
        // A catalog of its own may limit the statement's parameters more strictly: that holds
        // for every origin, and refuses before the author's write token is spent.
        if let Some(statement) = self.catalog.statement(ADD_REVIEW_STATEMENT) {
            store::statement_params(statement, &request)?;
        }
        if let Admission::Refused { retry_after } = self
            .cache
            .take_token(&format!("reviews:author:{}", review.author()), self.author_limit)
            .await
        {
            return Err(UseCaseError::RateLimited { retry_after });
        }
        let store = self.restaurant_store();
        let stored = store_review(&store, &request, self.due(deadline)).await?;
        let invalidated = self.invalidate_summary(name, self.due(deadline)).await;
        let mode = if invalidated {
            ReadMode::Cached
        } else {
            ReadMode::Refresh
        };
        let summary = match self
            .summary_within(&store, name, Read::until(mode, deadline), false)
            .await
        {
            Ok(summary) => Some(summary),
            Err(e) => {
                tracing::warn!(error = %e, restaurant = name, "review stored; its summary could not be reloaded");
                None
            }
        };
        review_added(name, stored, invalidated, summary)
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
    use super::memory::MemoryStore;
    use super::*;
    use query_catalog::{Catalog, ParamValue};
    use serde_json::{json, Map};

    fn review(fields: Value) -> Review {
        Review::parse(fields.as_object().unwrap(), None).unwrap()
    }

    /// Restaurant `name`'s summary from `store`, read as the use case reads it.
    async fn summary(store: &MemoryStore, name: &str) -> Result<Lookup<Value>, UseCaseError> {
        let catalog = Catalog::load(None).unwrap();
        let query = catalog.get(SUMMARY_QUERY).unwrap();
        let params = ResolvedParams::resolve(&query.params, [("name", name)]).unwrap();
        let at = SummaryRead {
            name,
            query,
            params: &params,
            read: Read::from(ReadMode::Cached),
            fleet: None,
        };
        summary_from(store, at).await
    }

    /// Posts `review` for `restaurant` to `store` as the use case does, under `key`.
    async fn post(
        store: &MemoryStore,
        restaurant: &str,
        review: &Review,
        key: Option<&str>,
    ) -> Result<Value, UseCaseError> {
        let request = review_request(restaurant, review, key)?;
        store_review(store, &request, None).await
    }

    #[tokio::test]
    async fn the_summary_of_no_restaurant_is_not_found() {
        let store = MemoryStore::with_restaurants(&["Saffron"]);
        assert!(matches!(
            summary(&store, "Nowhere").await,
            Err(UseCaseError::RestaurantNotFound(name)) if name == "Nowhere"
        ));
        let saffron = summary(&store, "Saffron").await.unwrap();
        assert_eq!(saffron.value["review_count"], 0);
    }

    #[tokio::test]
    async fn a_stored_review_is_in_the_next_summary() {
        let store = MemoryStore::with_restaurants(&["Saffron", "Juniper"]);
        let great = review(json!({"author": "a", "rating": 5, "body": "great"}));
        let stored = post(&store, "Saffron", &great, None).await.unwrap();
        assert_eq!(
            (
                stored["author"].as_str(),
                stored["rating"].as_i64(),
                stored["body"].as_str()
            ),
            (Some("a"), Some(5), Some("great"))
        );
        let after = summary(&store, "Saffron").await.unwrap();
        assert_eq!(after.value["review_count"], 1);
        assert_eq!(after.value["latest_reviews"][0], stored);
        assert_eq!(
            store.review_count("Juniper"),
            Some(0),
            "other restaurants are untouched"
        );
    }

    #[tokio::test]
    async fn a_review_of_no_restaurant_stores_nothing() {
        let store = MemoryStore::with_restaurants(&["Saffron"]);
        let great = review(json!({"author": "a", "rating": 5, "body": "great"}));
        assert!(matches!(
            post(&store, "Nowhere", &great, Some("k")).await,
            Err(UseCaseError::RestaurantNotFound(_))
        ));
        assert_eq!(store.review_count("Nowhere"), None);
        assert!(
            post(&store, "Saffron", &great, Some("k")).await.is_ok(),
            "the key was not taken"
        );
    }

    #[tokio::test]
    async fn a_retry_answers_the_first_review_and_a_reused_key_is_refused() {
        let store = MemoryStore::with_restaurants(&["Saffron", "Juniper"]);
        let once = review(json!({"author": "a", "rating": 3, "body": "once"}));
        let first = post(&store, "Saffron", &once, Some("client-7f3a")).await.unwrap();
        let retry = post(&store, "Saffron", &once, Some("client-7f3a")).await.unwrap();
        assert_eq!(retry, first, "the retry answers the first review");
        assert_eq!(store.review_count("Saffron"), Some(1), "stored once");
        let twice = review(json!({"author": "a", "rating": 4, "body": "twice"}));
        for (restaurant, reused) in [("Saffron", &twice), ("Juniper", &once)] {
            assert!(
                matches!(
                    post(&store, restaurant, reused, Some("client-7f3a")).await,
                    Err(UseCaseError::IdempotencyKeyReused)
                ),
                "{restaurant}"
            );
        }
        assert_eq!(
            (store.review_count("Saffron"), store.review_count("Juniper")),
            (Some(1), Some(0)),
            "nothing more was stored"
        );
        let unkeyed = post(&store, "Saffron", &once, None).await.unwrap();
        assert_ne!(unkeyed["id"], first["id"], "without a key a review is a new one");
        let empty = post(&store, "Saffron", &once, Some("")).await.unwrap();
        assert_ne!(empty["id"], unkeyed["id"], "an empty key is none");
    }

    #[test]
    fn a_bad_name_or_key_is_refused_by_name() {
        let great = review(json!({"author": "a", "rating": 5, "body": "great"}));
        let refused = |name: &str, key: Option<&str>| review_request(name, &great, key).unwrap_err().param;
        assert_eq!(refused("n".repeat(101).as_str(), None), "name");
        assert_eq!(
            refused("Saffron", Some("k".repeat(129).as_str())),
            "Idempotency-Key"
        );
        assert_eq!(refused("Saffron", Some("k\0")), "Idempotency-Key");
        assert!(review_request("Saffron", &great, Some("k".repeat(128).as_str())).is_ok());
        let empty = review_request("Saffron", &great, Some("")).unwrap();
        assert!(empty.idempotency.is_none(), "an empty key is none");
    }

    #[test]
    fn a_review_is_stale_only_when_neither_invalidated_nor_reloaded() {
        let stored = json!({"id": 1});
        assert!(matches!(
            review_added("Saffron", stored.clone(), false, None),
            Err(UseCaseError::SummaryMayBeStale { review }) if review == stored
        ));
        let added = review_added("Saffron", stored.clone(), true, None).unwrap();
        assert_eq!(
            (added.review, added.summary_invalidated, added.summary_fresh),
            (stored, true, false)
        );
    }

    #[test]
    fn the_digest_is_the_one_stored_keys_keep() {
        // As digests were first computed: the statement's resolved parameters by name, less
        // the key and the digest.
        use sha2::Digest as _;
        let catalog = Catalog::load(None).unwrap();
        let statement = catalog.statement(ADD_REVIEW_STATEMENT).unwrap();
        let author = "A \"quoted\" é";
        let given = [
            ("name", "Blue Fig"),
            ("author", author),
            ("rating", "4"),
            ("body", "ok\n"),
            ("request_id", "k"),
        ];
        let params = ResolvedParams::resolve(&statement.params, given).unwrap();
        let asked: Vec<(&str, &ParamValue)> = params
            .as_map()
            .into_iter()
            .filter(|(name, _)| !matches!(*name, "request_id" | "request_digest"))
            .collect();
        let before = hex::encode(sha2::Sha256::digest(
            serde_json::to_string(&asked).unwrap().as_bytes(),
        ));
        let asked = review(json!({"author": author, "rating": 4, "body": "ok\n"}));
        assert_eq!(request_digest("Blue Fig", &asked), before);
        assert_ne!(
            request_digest("Saffron", &asked),
            before,
            "the restaurant is part of it"
        );
    }

    /// A review checked as it was before it was parsed into a [`Review`]: its fields became
    /// the `add_review` statement's raw parameters, which the catalog resolved.
    fn checked_by_the_statement(
        fields: &Map<String, Value>,
        identity: Option<&str>,
    ) -> Result<(String, i64, String), ParamError> {
        let fail = |param: &str, problem: &str| ParamError {
            param: param.to_owned(),
            problem: problem.to_owned(),
        };
        if let Some(unknown) = fields.keys().find(|k| !REVIEW_FIELDS.contains(&k.as_str())) {
            return Err(fail(
                unknown.as_str(),
                "unknown field; expected author, rating, body",
            ));
        }
        let mut given = vec![("name".to_owned(), "Saffron".to_owned())];
        for field in REVIEW_FIELDS {
            let text = match fields.get(field) {
                None => continue,
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) if field == "rating" => n.to_string(),
                Some(_) => return Err(fail(field, "has the wrong JSON type")),
            };
            given.push((field.to_owned(), text));
        }
        if let Some(author) = identity {
            given.retain(|(field, _)| field != "author");
            given.push(("author".to_owned(), author.to_owned()));
        }
        let catalog = Catalog::load(None).unwrap();
        let statement = catalog.statement(ADD_REVIEW_STATEMENT).unwrap();
        let params = ResolvedParams::resolve(
            &statement.params,
            given.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        let values = params.as_map();
        match (values["author"], values["rating"], values["body"]) {
            (ParamValue::Text(author), ParamValue::Int(rating), ParamValue::Text(body)) => {
                Ok((author.clone(), *rating, body.clone()))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reviews_are_refused_as_the_statement_refused_them() {
        let long_author = format!(r#"{{"author": "{}", "rating": 3, "body": "b"}}"#, "a".repeat(257));
        let long_body = format!(
            r#"{{"author": "a", "rating": 3, "body": "{}"}}"#,
            "b".repeat(2001)
        );
        let longest_body = format!(
            r#"{{"author": "a", "rating": 3, "body": "{}"}}"#,
            "b".repeat(2000)
        );
        let mut bodies = vec![
            r#"{"author": "a", "rating": 5, "body": "b"}"#,
            r#"{"author": "a", "rating": "5", "body": "b"}"#,
            r#"{"author": "a", "rating": "+5", "body": "b"}"#,
            r#"{"author": "a", "rating": 6, "body": "b"}"#,
            r#"{"author": "a", "rating": 0, "body": "b"}"#,
            r#"{"author": "a", "rating": -1, "body": "b"}"#,
            r#"{"author": "a", "rating": "three", "body": "b"}"#,
            r#"{"author": "a", "rating": 4.5, "body": "b"}"#,
            r#"{"author": "a", "rating": 4.0, "body": "b"}"#,
            r#"{"author": "a", "rating": 1e2, "body": "b"}"#,
            r#"{"author": "a", "rating": 99999999999999999999, "body": "b"}"#,
            r#"{"author": "a", "rating": true, "body": "b"}"#,
            r#"{"rating": 3, "body": "b"}"#,
            r#"{"author": "a", "body": "b"}"#,
            r#"{"author": "a", "rating": 3}"#,
            r#"{"author": "", "rating": 3, "body": "b"}"#,
            r#"{"author": "a\u0000", "rating": 3, "body": "b"}"#,
            r#"{"author": "a", "rating": 3, "body": ""}"#,
            r#"{"author": "a", "rating": 3, "body": "b\u0000"}"#,
            r#"{"author": "a", "rating": 3, "body": null}"#,
            r#"{"author": ["a"], "rating": 3, "body": "b"}"#,
            r#"{"stars": 5}"#,
            r#"{"author": "a", "rating": 3, "body": "b", "stars": 5}"#,
            r#"{"rating": "x"}"#,
            r#"{}"#,
        ];
        bodies.extend([long_author.as_str(), long_body.as_str(), longest_body.as_str()]);
        for identity in [None, Some("alice"), Some("")] {
            for body in &bodies {
                let fields: Map<String, Value> = serde_json::from_str(body).unwrap();
                let parsed = Review::parse(&fields, identity)
                    .map(|r| (r.author().to_owned(), r.rating(), r.body().to_owned()))
                    .map_err(ParamError::from);
                assert_eq!(
                    parsed,
                    checked_by_the_statement(&fields, identity),
                    "{body} by {identity:?}"
                );
            }
        }
    }
}
