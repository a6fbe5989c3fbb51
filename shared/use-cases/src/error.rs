//! Why a use case could not be carried out, in terms a caller can map onto its own protocol
//! (HTTP statuses, event replies).

use aws_clients::ObjectStoreError;
use cache_aside::CacheError;
use dynamo_origin::TableError;
use query_catalog::ParamError;
use sql_origin::DbError;

/// A use case's failure.
#[derive(Debug, thiserror::Error)]
pub enum UseCaseError {
    /// No query (or write statement) of that name is in the catalog.
    #[error("no query named {0:?}")]
    UnknownQuery(String),
    /// No catalog query depends on that tag.
    #[error("no query depends on tag {0:?}")]
    UnknownTag(String),
    /// A request parameter was refused; names it.
    #[error(transparent)]
    BadParameter(#[from] ParamError),
    /// The restaurant does not exist.
    #[error("no restaurant named {0:?}")]
    RestaurantNotFound(String),
    /// The database failed and nothing usable was cached.
    #[error(transparent)]
    Origin(#[from] DbError),
    /// The origin did not answer within the request's time budget (or another request was
    /// still loading it at the deadline), and nothing usable was cached.
    #[error("the origin did not answer within the request's time budget")]
    OriginTimeout,
    /// The origin's load budget is spent (fleet-wide, or every load slot of this instance is
    /// taken) and nothing usable was cached: not tried; retry after `retry_after`.
    #[error("the origin's load budget is spent; retry in {retry_after:?}")]
    OriginBusy {
        /// When the budget allows a load again.
        retry_after: std::time::Duration,
    },
    /// The DynamoDB restaurant table failed and nothing usable was cached.
    #[error(transparent)]
    Table(TableError),
    /// Redis had to work (an invalidation) and did not.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A review was stored, but its restaurant's cached summary could be neither invalidated
    /// nor replaced: it may not show the review until its TTL ends.
    #[error("the review was stored, but the cached summary may be stale")]
    SummaryMayBeStale {
        /// The review as stored.
        review: serde_json::Value,
    },
    /// The idempotency key was used before for another restaurant or another review.
    #[error("the idempotency key was used for another request")]
    IdempotencyKeyReused,
    /// The writer's budget of writes is spent; retry after `retry_after`.
    #[error("too many writes; retry in {retry_after:?}")]
    RateLimited {
        /// When the budget allows a write again.
        retry_after: std::time::Duration,
    },
    /// The database roles' secrets are not configured (`DB_QUERY_ROLE_SECRET_ID`,
    /// `DB_WRITE_ROLE_SECRET_ID`).
    #[error("database roles are not configured (DB_QUERY_ROLE_SECRET_ID, DB_WRITE_ROLE_SECRET_ID)")]
    RolesNotConfigured,
    /// No object store is configured.
    #[error("objects are not configured")]
    ObjectsNotConfigured,
    /// S3 failed and the object is not cached.
    #[error(transparent)]
    ObjectStore(#[from] ObjectStoreError),
    /// A bug: data this service wrote or configured is not what it expects.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<TableError> for UseCaseError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            other => Self::Table(other),
        }
    }
}
