//! `{"dataset": "restaurants"}`: the restaurant scenario's sample data in the DynamoDB table
//! (`RESTAURANTS_TABLE`): the 10 restaurants and 250 reviews of the demo data file
//! (`use_cases::demo_data`), which the PostgreSQL seed carries too, so both origins answer
//! the same summaries. Idempotent: every item has a fixed key.

use std::time::Instant;

use serde_json::{json, Value};
use use_cases::demo_data::DemoData;
use use_cases::Clients;
use use_cases::{SeedRestaurant, SeedReview};

use crate::IngestError;

/// The payload's dataset name.
pub const RESTAURANTS_DATASET: &str = "restaurants";

/// The demo data file's restaurants and reviews, as the DynamoDB seed takes them.
fn sample() -> Result<(Vec<SeedRestaurant>, Vec<SeedReview>), IngestError> {
    let data = DemoData::bundled().map_err(|e| IngestError::Partial(format!("no sample to seed: {e}")))?;
    let restaurants = data
        .restaurants
        .into_iter()
        .map(|r| SeedRestaurant {
            name: r.name,
            cuisine: r.cuisine,
            city: r.city,
        })
        .collect();
    let reviews = data
        .reviews
        .into_iter()
        .map(|r| SeedReview {
            restaurant: r.restaurant,
            id: r.id,
            author: r.author,
            rating: r.rating,
            body: r.body,
            created_at: r.created_at,
        })
        .collect();
    Ok((restaurants, reviews))
}

/// The sample restaurants (none if the bundled data file were unreadable, which the catalog's
/// tests rule out; seeding reports that case).
pub fn sample_restaurants() -> Vec<SeedRestaurant> {
    sample().map(|(restaurants, _)| restaurants).unwrap_or_default()
}

/// The sample reviews, oldest first (none if the bundled data file were unreadable).
pub fn sample_reviews() -> Vec<SeedReview> {
    sample().map(|(_, reviews)| reviews).unwrap_or_default()
}

/// Seeds the configured table.
pub(crate) async fn run(clients: &Clients) -> Result<Value, IngestError> {
    let table = clients
        .restaurant_table()
        .ok_or(IngestError::NotConfigured("RESTAURANTS_TABLE"))?;
    let (restaurants, reviews) = sample()?;
    let started = Instant::now();
    tracing::info!(table = table.name(), "seeding the restaurants table");
    let report = table
        .seed(&restaurants, &reviews)
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
