//! Reads and writes of one restaurant's partition.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use serde_json::Value;

use crate::items::{item, n, review_json, s, summary_json, text, Item};
use crate::keys::{
    request_partition, restaurant_partition, review_sort_key, PARTITION_KEY, REQUEST_ITEM, RESTAURANT_ITEM,
    REVIEW_PREFIX, SORT_KEY,
};
use crate::TableError;

/// Reviews in a summary, newest first.
pub const LATEST_REVIEWS: i32 = 5;
/// How long a request key is remembered (the table's TTL attribute `expires_at` ends it).
const REQUEST_MEMORY_SECONDS: i64 = 24 * 3600;

/// The key the health probe reads (no item has it).
const HEALTH_PROBE_KEY: &str = "HEALTH#probe";

/// A review to store; already validated by the caller.
#[derive(Debug, Clone, Copy)]
pub struct NewReview<'a> {
    /// Who wrote it.
    pub author: &'a str,
    /// 1 to 5.
    pub rating: i64,
    /// The text.
    pub body: &'a str,
}

/// A write's idempotency key and the digest of what it asked for (restaurant and review): a
/// retry with the same key and digest answers the first review; the same key with another
/// digest is refused ([`TableError::IdempotencyKeyReused`]).
#[derive(Debug, Clone, Copy)]
pub struct RequestKey<'a> {
    /// The client's `Idempotency-Key`.
    pub key: &'a str,
    /// A digest of the restaurant and the review.
    pub digest: &'a str,
}

/// The restaurants table. Built once per instance; cheap to share.
#[derive(Debug, Clone)]
pub struct RestaurantTable {
    pub(crate) client: Client,
    pub(crate) table: String,
}

/// Tries of a review write whose transaction lost a race with another write to the same
/// restaurant (`TransactionConflict`: concurrent reviews of a popular restaurant).
const CONFLICT_ATTEMPTS: u32 = 4;

/// Where a transaction's cancellation came from, by item position.
const RESTAURANT_UPDATE: usize = 0;
const REQUEST_PUT: usize = 2;

impl RestaurantTable {
    /// The table called `table`, through the shared SDK configuration (timeouts, endpoint).
    pub fn new(sdk: &SdkConfig, table: &str) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.to_owned(),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.table
    }

    /// One eventually consistent read of a key that never exists: proves the table answers
    /// (and this role may read it) at the cost of half a read unit. Returns the round trip.
    pub async fn ping(&self) -> Result<std::time::Duration, TableError> {
        let started = std::time::Instant::now();
        Box::pin(
            self.client
                .get_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, s(HEALTH_PROBE_KEY))
                .key(SORT_KEY, s(HEALTH_PROBE_KEY))
                .send(),
        )
        .await
        .map_err(|e| TableError::from_sdk("GetItem", e))?;
        Ok(started.elapsed())
    }

    /// Restaurant `name`'s summary, or `None` when there is no such restaurant. Both reads are
    /// strongly consistent and run at once: a summary loaded right after a write includes it,
    /// so a fill that follows an invalidation never re-caches the old state.
    pub async fn summary(&self, name: &str) -> Result<Option<Value>, TableError> {
        let partition = restaurant_partition(name);
        let restaurant = Box::pin(
            self.client
                .get_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, s(&partition))
                .key(SORT_KEY, s(RESTAURANT_ITEM))
                .consistent_read(true)
                .send(),
        );
        let latest = Box::pin(
            self.reviews_of(&partition)
                .scan_index_forward(false)
                .limit(LATEST_REVIEWS)
                .send(),
        );
        let (restaurant, latest) = tokio::join!(restaurant, latest);
        let restaurant = restaurant.map_err(|e| TableError::from_sdk("GetItem", e))?;
        let Some(item) = restaurant.item() else {
            return Ok(None);
        };
        let latest = latest.map_err(|e| TableError::from_sdk("Query", e))?;
        summary_json(item, latest.items()).map(Some)
    }

    /// Stores `review` for restaurant `name` and returns it as stored, or `None` when there is
    /// no such restaurant. One transaction adds the review item and the restaurant's counters;
    /// with `request_key`, a request record (kept a day) makes a retry return the first
    /// review instead of storing a second one.
    pub async fn add_review(
        &self,
        name: &str,
        review: NewReview<'_>,
        request: Option<RequestKey<'_>>,
    ) -> Result<Option<Value>, TableError> {
        let partition = restaurant_partition(name);
        let now = chrono::Utc::now();
        let created_at = now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let id = format!("{:016x}", fastrand::u64(..));
        let sort_key = review_sort_key(&created_at, &id);
        let stored = item([
            (PARTITION_KEY, s(&partition)),
            (SORT_KEY, s(&sort_key)),
            ("id", s(&id)),
            ("author", s(review.author)),
            ("rating", n(review.rating)),
            ("body", s(review.body)),
            ("created_at", s(&created_at)),
        ]);
        let mut writes = vec![
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .key(PARTITION_KEY, s(&partition))
                        .key(SORT_KEY, s(RESTAURANT_ITEM))
                        .update_expression("ADD review_count :one, rating_sum :rating")
                        .condition_expression("attribute_exists(#pk)")
                        .expression_attribute_names("#pk", PARTITION_KEY)
                        .expression_attribute_values(":one", n(1))
                        .expression_attribute_values(":rating", n(review.rating))
                        .build()
                        .map_err(|e| build_error(&e))?,
                )
                .build(),
            TransactWriteItem::builder()
                .put(new_item(&self.table, stored.clone())?)
                .build(),
        ];
        if let Some(request) = request {
            let record = item([
                (PARTITION_KEY, s(request_partition(request.key))),
                (SORT_KEY, s(REQUEST_ITEM)),
                ("restaurant", s(&partition)),
                ("review_key", s(&sort_key)),
                ("digest", s(request.digest)),
                ("expires_at", n(now.timestamp() + REQUEST_MEMORY_SECONDS)),
            ]);
            writes.push(
                TransactWriteItem::builder()
                    .put(new_item(&self.table, record)?)
                    .build(),
            );
        }
        for attempt in 1..=CONFLICT_ATTEMPTS {
            let written = Box::pin(
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(writes.clone()))
                    .send(),
            )
            .await;
            let failure = match written {
                Ok(_) => return review_json(&stored).map(Some),
                Err(SdkError::ServiceError(failure)) => failure,
                Err(e) => return Err(TableError::from_sdk("TransactWriteItems", e)),
            };
            let TransactWriteItemsError::TransactionCanceledException(cancelled) = failure.err() else {
                return Err(TableError::from_sdk(
                    "TransactWriteItems",
                    SdkError::ServiceError(failure),
                ));
            };
            let reasons: Vec<&str> = cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect();
            let failed = |position: usize| reasons.get(position) == Some(&"ConditionalCheckFailed");
            if failed(RESTAURANT_UPDATE) {
                return Ok(None);
            }
            if let (Some(request), true) = (request, failed(REQUEST_PUT)) {
                return self.earlier_review(request).await.map(Some);
            }
            if !reasons.contains(&"TransactionConflict") || attempt == CONFLICT_ATTEMPTS {
                return Err(TableError::Unavailable {
                    operation: "TransactWriteItems",
                    detail: format!("transaction cancelled; reasons by item: {}", reasons.join(", ")),
                });
            }
            // Another write to the restaurant's counters won the race: try again shortly.
            let pause = 10 * u64::from(attempt);
            tokio::time::sleep(std::time::Duration::from_millis(pause + fastrand::u64(..=pause))).await;
        }
        unreachable!("the last attempt returns")
    }

    /// The review stored by an earlier request with the same key, if it asked for the same
    /// (records written before digests were kept are taken as the same).
    async fn earlier_review(&self, request: RequestKey<'_>) -> Result<Value, TableError> {
        let record = self.get(&request_partition(request.key), REQUEST_ITEM).await?;
        if record
            .get("digest")
            .and_then(|d| d.as_s().ok())
            .is_some_and(|digest| digest != request.digest)
        {
            return Err(TableError::IdempotencyKeyReused);
        }
        let partition = text(&record, "restaurant")?;
        let review_key = text(&record, "review_key")?;
        let review = self.get(&partition, &review_key).await?;
        review_json(&review)
    }

    /// A query of the reviews in `partition` (strongly consistent), oldest first.
    pub(crate) fn reviews_of(&self, partition: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :review)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_values(":pk", s(partition))
            .expression_attribute_values(":review", s(REVIEW_PREFIX))
            .consistent_read(true)
    }

    /// One item that must exist (strongly consistent).
    async fn get(&self, partition: &str, sort_key: &str) -> Result<Item, TableError> {
        let found = Box::pin(
            self.client
                .get_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, s(partition))
                .key(SORT_KEY, s(sort_key))
                .consistent_read(true)
                .send(),
        )
        .await
        .map_err(|e| TableError::from_sdk("GetItem", e))?;
        found.item.ok_or_else(|| TableError::Malformed {
            key: sort_key.to_owned(),
            problem: "is referenced but missing".into(),
        })
    }
}

/// A put that never overwrites an item.
fn new_item(table: &str, item: Item) -> Result<Put, TableError> {
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PARTITION_KEY)
        .build()
        .map_err(|e| build_error(&e))
}

/// A request that could not be built (a bug: every required field is set here).
pub(crate) fn build_error(error: &dyn std::error::Error) -> TableError {
    TableError::Unavailable {
        operation: "request building",
        detail: error.to_string(),
    }
}
