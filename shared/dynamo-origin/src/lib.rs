//! The restaurant scenario's DynamoDB origin, modelled as the purpose-built-databases tutorial
//! does: one table, a restaurant item and its review items under one partition key
//! (`RESTAURANT#<name>`), reviews sorted by creation time so the newest come first.
//!
//! It knows nothing about the cache: [`RestaurantTable::summary`] reads (strongly consistent,
//! so a read right after a write sees it), [`RestaurantTable::add_review`] writes a review and
//! the restaurant's counters in one transaction (idempotent per request key), and
//! [`RestaurantTable::seed`] loads sample data with `BatchWriteItem`. [`restaurant_of_key`]
//! turns a stream record's key back into a restaurant name for the invalidator.

mod error;
mod items;
mod keys;
mod seed;
mod table;

pub use error::TableError;
pub use keys::{restaurant_of_key, summary_affected_by, KEY_SCHEMA, PARTITION_KEY, SORT_KEY};
pub use seed::{SeedReport, SeedRestaurant, SeedReview};
pub use table::{NewReview, RequestKey, RestaurantTable};
