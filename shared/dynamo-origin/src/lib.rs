//! The restaurant scenario's DynamoDB origin, modelled as the purpose-built-databases tutorial
//! does: one table, a restaurant item and its review items under one partition key
//! (`RESTAURANT#<name>`), reviews sorted by creation time (a summary reads the newest first).
//!
//! It knows nothing about the cache: [`RestaurantTable::summary`] reads (strongly consistent,
//! so a read right after a write sees it), [`RestaurantTable::add_review`] writes a review and
//! the restaurant's counters in one transaction (idempotent per request key), and
//! [`RestaurantTable::seed`] loads sample data with `BatchWriteItem`. For the invalidator,
//! [`summary_affected_by`] turns a stream record's keys into the restaurant whose summary the
//! change affects (none for an idempotency record); [`restaurant_of_key`] reads the restaurant
//! name out of a partition key.

mod error;
mod items;
mod keys;
mod seed;
mod table;

pub use error::TableError;
pub use keys::{restaurant_of_key, summary_affected_by, KEY_SCHEMA, PARTITION_KEY, SORT_KEY};
pub use seed::{SeedReport, SeedRestaurant, SeedReview};
pub use table::{NewReview, RequestKey, RestaurantTable};
