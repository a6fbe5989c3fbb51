//! The use cases the functions share, composed once: the one place that puts the catalog, the
//! origins (SQL, S3) and the cache together.
//!
//! [`Clients`] is built once per Lambda instance from the configuration, by the function's
//! builder in [`compose`] (the composition root, the only place clients are assembled); the
//! use cases are its methods: [`Clients::run_named_query`], [`Clients::restaurant_summary`],
//! [`Clients::add_review`], [`Clients::get_object`], [`Clients::health`], and
//! [`Invalidation`] for queries, tags, entities and objects. The functions translate HTTP
//! requests and events into these calls and their results back into responses (a review body
//! into a [`Review`], checked once, whichever origin then stores it).

mod budget;
mod changes;
mod clients;
pub mod compose;
mod error;
mod health;
mod invalidation;
mod objects;
mod queries;
mod restaurants;
mod roles;

/// The lower crates' types that cross this door (answers, parameters, cache states): the
/// functions name them through here and import no other crate of the workspace.
pub use cache_aside::{
    unix_now_ms, BypassReason, CacheState, CachedObject, Lookup, MetricsSnapshot, ObjectState, Read, ReadMode,
};
pub use dynamo_origin::{SeedRestaurant, SeedReview};
pub use query_catalog::{demo_data, demo_sql};
pub use query_catalog::{
    query_scope, tag_scope, Catalog, NamedQuery, ParamError, ParamValue, ResolvedParams, MAIN_DATABASE,
};
pub use sql_origin::{Engine, Pool, QueryRows};

pub use changes::{ChangeSource, DrainReport, DrainSettings};
pub use clients::{cache_only, change_sources, open_redis_connection, Clients, StartupError};
pub use error::{ErrorClass, Failure, UseCaseError, FAILURE_CODES};
pub use health::{DatabaseProbe, Health, Probe, HEALTH_KEPT, PROBE_BUDGET};
pub use invalidation::{restaurant_changed_by, Invalidation, TagInvalidated};
pub use queries::{query_entry, QueryAnswer};
pub use restaurants::{
    Review, ReviewAdded, ReviewError, ReviewWrite, ADD_REVIEW_STATEMENT, REVIEW_FIELDS, SUMMARY_QUERY,
};
