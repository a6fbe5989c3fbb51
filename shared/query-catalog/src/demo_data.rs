//! The demo's restaurants and reviews, in one data file (`demo/restaurants.json`) that both
//! origins are seeded from, so the PostgreSQL tables and the DynamoDB table cannot hold different
//! names or reviews: the PostgreSQL seed script carries the file verbatim and reads it with
//! `jsonb` functions (`psql -f` and the ingester run the script as it is, so it cannot include
//! the file; a test below keeps the two byte-identical), and the ingester's DynamoDB seed parses
//! it here.

use std::collections::HashSet;

use serde::Deserialize;

/// The data file, compiled in.
pub const RESTAURANTS_JSON: &str = include_str!("../demo/restaurants.json");

/// Path of [`RESTAURANTS_JSON`] inside the repository.
pub const RESTAURANTS_JSON_PATH: &str = "shared/query-catalog/demo/restaurants.json";

/// A restaurant of the demo.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoRestaurant {
    /// Its key in PostgreSQL (`restaurants.id`).
    pub id: i32,
    /// Its name: unique, what the API and the DynamoDB partition name it by.
    pub name: String,
    /// Cuisine.
    pub cuisine: String,
    /// Location.
    pub city: String,
}

/// A review of the demo.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoReview {
    /// Stable id: with `created_at`, the review's DynamoDB sort key (PostgreSQL numbers the
    /// reviews in file order instead).
    pub id: String,
    /// The name of the restaurant reviewed.
    pub restaurant: String,
    /// Author.
    pub author: String,
    /// 1 to 5.
    pub rating: i64,
    /// Text.
    pub body: String,
    /// RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.000Z`).
    pub created_at: String,
}

/// The whole data file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoData {
    /// The restaurants, in id order.
    pub restaurants: Vec<DemoRestaurant>,
    /// The reviews, oldest first.
    pub reviews: Vec<DemoReview>,
}

impl DemoData {
    /// The bundled file, parsed and checked; the error names the file and what is wrong.
    pub fn bundled() -> Result<Self, String> {
        let data: Self =
            serde_json::from_str(RESTAURANTS_JSON).map_err(|e| format!("{RESTAURANTS_JSON_PATH}: {e}"))?;
        data.check()
            .map_err(|problem| format!("{RESTAURANTS_JSON_PATH}: {problem}"))?;
        Ok(data)
    }

    /// Restaurants unique by id and by name; every review of a listed restaurant, rated 1 to 5,
    /// with an id of its own (the PostgreSQL seed would drop a review of an unknown restaurant
    /// that DynamoDB keeps).
    fn check(&self) -> Result<(), String> {
        let (mut ids, mut names) = (HashSet::new(), HashSet::new());
        for r in &self.restaurants {
            if !ids.insert(r.id) || !names.insert(r.name.as_str()) {
                return Err(format!("restaurant {:?} (id {}) is listed twice", r.name, r.id));
            }
        }
        let mut review_ids = HashSet::new();
        for review in &self.reviews {
            if !names.contains(review.restaurant.as_str()) {
                return Err(format!(
                    "review {:?} is of {:?}, which is not a listed restaurant",
                    review.id, review.restaurant
                ));
            }
            if !(1..=5).contains(&review.rating) {
                return Err(format!(
                    "review {:?} is rated {}, not 1 to 5",
                    review.id, review.rating
                ));
            }
            if !review_ids.insert(review.id.as_str()) {
                return Err(format!("review id {:?} is used twice", review.id));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_sql::POSTGRES_SEED;

    #[test]
    fn the_postgres_seed_carries_the_data_file_verbatim() {
        assert!(
            POSTGRES_SEED.contains(&format!("$demo$\n{RESTAURANTS_JSON}$demo$")),
            "sql/postgres-seed.sql must hold {RESTAURANTS_JSON_PATH} unchanged between its $demo$ \
             quotes: paste the file there"
        );
    }

    #[test]
    fn the_data_is_ten_restaurants_and_their_250_reviews() {
        let data = DemoData::bundled().unwrap();
        assert_eq!(data.restaurants.len(), 10);
        assert_eq!(data.reviews.len(), 250);
        assert!(data
            .restaurants
            .iter()
            .enumerate()
            .all(|(i, r)| r.id == i as i32 + 1));
        // Review i (1-based) is of restaurant 1 + i % 10, rated 1 + 7i % 5, written i hours
        // into 2026.
        for (n, review) in data.reviews.iter().enumerate() {
            let i = n + 1;
            assert_eq!(review.id, format!("seed-{i:04}"));
            assert_eq!(review.restaurant, data.restaurants[i % 10].name, "{i}");
            assert_eq!(review.rating, 1 + (i as i64 * 7) % 5, "{i}");
            assert_eq!(review.author, format!("reviewer {i}"));
            assert_eq!(review.body, format!("Seed review {i}"));
        }
        assert_eq!(data.reviews[0].created_at, "2026-01-01T01:00:00.000Z");
        assert_eq!(data.reviews[249].created_at, "2026-01-11T10:00:00.000Z");
    }

    #[test]
    fn inconsistent_data_is_refused() {
        let data = DemoData::bundled().unwrap();
        let mut orphan = data.clone();
        orphan.reviews[0].restaurant = "Nowhere".into();
        assert!(orphan.check().unwrap_err().contains("not a listed restaurant"));
        let mut twice = data.clone();
        twice.restaurants[1].name = twice.restaurants[0].name.clone();
        assert!(twice.check().unwrap_err().contains("listed twice"));
        let mut rated = data;
        rated.reviews[3].rating = 6;
        assert!(rated.check().unwrap_err().contains("not 1 to 5"));
    }
}
