//! `{"dataset": "restaurants"}`: the restaurant scenario's sample data in the DynamoDB table
//! (`RESTAURANTS_TABLE`): the same 10 restaurants and 250 reviews as the PostgreSQL seed, so
//! both origins answer the same summaries. Idempotent: every item has a fixed key.

use std::time::Instant;

use dynamo_origin::{SeedRestaurant, SeedReview};
use serde_json::{json, Value};
use use_cases::Clients;

use crate::IngestError;

/// The payload's dataset name.
pub const RESTAURANTS_DATASET: &str = "restaurants";

const NAMES: [&str; 10] = [
    "Blue Fig",
    "Casa Luna",
    "Golden Wok",
    "Harbor Grill",
    "Juniper",
    "Little Saigon",
    "Olive Tree",
    "Saffron",
    "The Copper Pot",
    "Umami House",
];
const CUISINES: [&str; 10] = [
    "mediterranean",
    "mexican",
    "chinese",
    "seafood",
    "nordic",
    "vietnamese",
    "greek",
    "indian",
    "bistro",
    "japanese",
];
const CITIES: [&str; 10] = [
    "Lisbon", "Austin", "Osaka", "Perth", "Oslo", "Hanoi", "Athens", "Delhi", "Lyon", "Kyoto",
];
/// Reviews in the sample.
const REVIEWS: usize = 250;

/// The sample restaurants.
pub fn sample_restaurants() -> Vec<SeedRestaurant> {
    (0..NAMES.len())
        .map(|i| SeedRestaurant {
            name: NAMES[i].to_owned(),
            cuisine: CUISINES[i].to_owned(),
            city: CITIES[i].to_owned(),
        })
        .collect()
}

/// The sample reviews: review `i` (1-based) goes to restaurant `1 + i % 10`, is rated
/// `1 + 7i % 5` and was written `i` hours into 2026, as in the PostgreSQL seed.
pub fn sample_reviews() -> Vec<SeedReview> {
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|t| t.to_utc())
        .unwrap_or_default();
    (1..=REVIEWS)
        .map(|i| SeedReview {
            restaurant: NAMES[i % NAMES.len()].to_owned(),
            id: format!("seed-{i:04}"),
            author: format!("reviewer {i}"),
            rating: 1 + (i as i64 * 7) % 5,
            body: format!("Seed review {i}"),
            created_at: (start + chrono::Duration::hours(i as i64))
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
        })
        .collect()
}

/// Seeds the configured table.
pub(crate) async fn run(clients: &Clients) -> Result<Value, IngestError> {
    let table = clients
        .restaurant_table
        .as_ref()
        .ok_or(IngestError::NotConfigured("RESTAURANTS_TABLE"))?;
    let started = Instant::now();
    tracing::info!(table = table.name(), "seeding the restaurants table");
    let report = table
        .seed(&sample_restaurants(), &sample_reviews())
        .await
        .map_err(|e| IngestError::Partial(format!("seeding table {:?} failed: {e}", table.name())))?;
    tracing::info!(table = table.name(), ?report, "restaurants table seeded");
    Ok(json!({
        "table": table.name(),
        "restaurants": report.restaurants,
        "reviews": report.reviews,
        "batch_calls": report.batch_calls,
        "retried_items": report.retried_items,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_matches_the_postgres_seed() {
        let reviews = sample_reviews();
        assert_eq!(sample_restaurants().len(), 10);
        assert_eq!(reviews.len(), 250);
        assert_eq!(reviews[0].restaurant, "Casa Luna");
        assert_eq!(reviews[0].rating, 3);
        assert_eq!(reviews[0].created_at, "2026-01-01T01:00:00.000Z");
        assert_eq!(reviews[249].restaurant, "Blue Fig");
        assert_eq!(reviews[249].created_at, "2026-01-11T10:00:00.000Z");
    }
}
