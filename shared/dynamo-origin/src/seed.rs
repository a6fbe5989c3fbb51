//! Loading sample data: `BatchWriteItem` in chunks of 25, unprocessed items retried with
//! backoff. Running it again writes the same items under the same keys (idempotent); the
//! restaurants' counters are then recounted from the reviews actually stored, so reviews
//! added through the API since are counted too. Meant for a table nobody writes to meanwhile.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use crate::items::{integer, item, n, s, Item};
use crate::keys::{restaurant_partition, review_sort_key, PARTITION_KEY, RESTAURANT_ITEM, SORT_KEY};
use crate::table::build_error;
use crate::{RestaurantTable, TableError};

/// `BatchWriteItem` takes at most this many requests.
const BATCH_SIZE: usize = 25;
/// Tries of one batch before its leftovers are reported.
const BATCH_ATTEMPTS: u32 = 8;

/// A restaurant of the sample data (the tutorial's shape: cuisine and location).
#[derive(Debug, Clone)]
pub struct SeedRestaurant {
    /// Its name (the partition).
    pub name: String,
    /// Cuisine.
    pub cuisine: String,
    /// Location.
    pub city: String,
}

/// A review of the sample data.
#[derive(Debug, Clone)]
pub struct SeedReview {
    /// The restaurant's name.
    pub restaurant: String,
    /// Stable id: with `created_at` it makes the key, so re-seeding overwrites, never adds.
    pub id: String,
    /// Author.
    pub author: String,
    /// 1 to 5.
    pub rating: i64,
    /// Text.
    pub body: String,
    /// RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.000Z`).
    pub created_at: String,
}

/// What a seeding run wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SeedReport {
    /// Restaurant items written.
    pub restaurants: usize,
    /// Review items written.
    pub reviews: usize,
    /// `BatchWriteItem` calls made.
    pub batch_calls: u32,
    /// Items DynamoDB handed back unprocessed and that were sent again.
    pub retried_items: usize,
}

fn put(item: Item) -> Result<WriteRequest, TableError> {
    let request = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| build_error(&e))?;
    Ok(WriteRequest::builder().put_request(request).build())
}

impl RestaurantTable {
    /// Writes `restaurants` and `reviews` (reviews first, then each restaurant with counters
    /// recounted from its stored reviews).
    pub async fn seed(
        &self,
        restaurants: &[SeedRestaurant],
        reviews: &[SeedReview],
    ) -> Result<SeedReport, TableError> {
        let mut report = SeedReport::default();
        let review_writes = reviews
            .iter()
            .map(|r| {
                put(item([
                    (PARTITION_KEY, s(restaurant_partition(&r.restaurant))),
                    (SORT_KEY, s(review_sort_key(&r.created_at, &r.id))),
                    ("id", s(&r.id)),
                    ("author", s(&r.author)),
                    ("rating", n(r.rating)),
                    ("body", s(&r.body)),
                    ("created_at", s(&r.created_at)),
                ]))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write_all(review_writes, &mut report).await?;
        report.reviews = reviews.len();
        let mut restaurant_writes = Vec::with_capacity(restaurants.len());
        for restaurant in restaurants {
            let (count, sum) = self.count_reviews(&restaurant.name).await?;
            restaurant_writes.push(put(item([
                (PARTITION_KEY, s(restaurant_partition(&restaurant.name))),
                (SORT_KEY, s(RESTAURANT_ITEM)),
                ("name", s(&restaurant.name)),
                ("cuisine", s(&restaurant.cuisine)),
                ("city", s(&restaurant.city)),
                ("review_count", n(count)),
                ("rating_sum", n(sum)),
            ]))?);
        }
        self.write_all(restaurant_writes, &mut report).await?;
        report.restaurants = restaurants.len();
        Ok(report)
    }

    /// Sends `writes` in batches of 25; what comes back unprocessed is sent again after a
    /// growing, jittered pause.
    async fn write_all(&self, writes: Vec<WriteRequest>, report: &mut SeedReport) -> Result<(), TableError> {
        for chunk in writes.chunks(BATCH_SIZE) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                if attempt > BATCH_ATTEMPTS {
                    return Err(TableError::Unprocessed {
                        left: pending.len(),
                        attempts: BATCH_ATTEMPTS,
                    });
                }
                if attempt > 1 {
                    report.retried_items += pending.len();
                    let backoff = 50u64 << (attempt - 2).min(5);
                    tokio::time::sleep(Duration::from_millis(backoff + fastrand::u64(..=backoff))).await;
                }
                report.batch_calls += 1;
                let output = Box::pin(
                    self.client
                        .batch_write_item()
                        .request_items(&self.table, pending)
                        .send(),
                )
                .await
                .map_err(|e| TableError::from_sdk("BatchWriteItem", e))?;
                pending = unprocessed(output.unprocessed_items, &self.table);
            }
        }
        Ok(())
    }

    /// How many reviews restaurant `name` has and the sum of their ratings (all pages).
    async fn count_reviews(&self, name: &str) -> Result<(i64, i64), TableError> {
        let (mut count, mut sum) = (0, 0);
        let mut start: Option<Item> = None;
        loop {
            let page = Box::pin(
                self.reviews_of(&restaurant_partition(name))
                    .expression_attribute_names("#rating", "rating")
                    .projection_expression("#rating")
                    .set_exclusive_start_key(start)
                    .send(),
            )
            .await
            .map_err(|e| TableError::from_sdk("Query", e))?;
            for item in page.items() {
                count += 1;
                sum += integer(item, "rating")?;
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok((count, sum)),
            }
        }
    }
}

/// The requests DynamoDB did not process, for `table`.
fn unprocessed(items: Option<HashMap<String, Vec<WriteRequest>>>, table: &str) -> Vec<WriteRequest> {
    items
        .and_then(|mut by_table| by_table.remove(table))
        .unwrap_or_default()
}
