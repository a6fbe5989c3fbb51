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

/// What a caller can do about a failure: the classes a protocol maps onto its own answers
/// (HTTP statuses, event replies) without knowing the origins behind the use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request is wrong (a parameter, a body); sending it again will not help.
    BadInput,
    /// What was asked for does not exist.
    NotFound,
    /// The answer would be larger than allowed; narrow the request.
    TooLarge,
    /// The origin did not answer in time; a retry may succeed.
    Timeout,
    /// A dependency (database, table, S3, Redis) is down or not configured; retry later.
    Unavailable,
    /// A budget is spent (origin loads, writes); retry after the time given.
    Busy,
    /// The request conflicts with an earlier one (an idempotency key reused).
    Conflict,
    /// Not the caller's fault: a bug or a configuration error.
    Internal,
}

/// A failure as a caller may show it: its class, a stable code and a message that holds no
/// secrets or internals. Only for the origin and cache failures, whose detail stays here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What the caller can do.
    pub class: ErrorClass,
    /// A stable machine-readable code (`origin_unavailable`, `origin_timeout`, ...).
    pub code: &'static str,
    /// For humans.
    pub message: String,
}

/// Every (class, code) a [`Failure`] can carry, for callers that document their answers.
pub const FAILURE_CODES: &[(ErrorClass, &str)] = &[
    (ErrorClass::Unavailable, "origin_unavailable"),
    (ErrorClass::Timeout, "origin_timeout"),
    (ErrorClass::Internal, "origin_error"),
    (ErrorClass::TooLarge, "result_too_large"),
    (ErrorClass::Internal, "internal"),
    (ErrorClass::Unavailable, "cache_unavailable"),
];

impl Failure {
    fn new(class: ErrorClass, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            class,
            code,
            message: message.into(),
        }
    }
}

impl UseCaseError {
    /// The class of this failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::UnknownQuery(_) | Self::UnknownTag(_) | Self::RestaurantNotFound(_) => ErrorClass::NotFound,
            Self::BadParameter(_) => ErrorClass::BadInput,
            Self::OriginTimeout => ErrorClass::Timeout,
            Self::OriginBusy { .. } | Self::RateLimited { .. } => ErrorClass::Busy,
            Self::IdempotencyKeyReused => ErrorClass::Conflict,
            Self::SummaryMayBeStale { .. } | Self::ObjectsNotConfigured => ErrorClass::Unavailable,
            Self::RolesNotConfigured | Self::Internal(_) => ErrorClass::Internal,
            Self::Origin(_) | Self::Table(_) | Self::ObjectStore(_) | Self::Cache(_) => {
                self.describe().map_or(ErrorClass::Internal, |f| f.class)
            }
        }
    }

    /// When a retry may succeed, for the busy classes.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::OriginBusy { retry_after } | Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// An origin's or the cache's failure as callers may see it, logged here in full (once:
    /// call it once per failure); `None` for the failures a caller words itself.
    pub fn failure(&self) -> Option<Failure> {
        let failure = self.describe()?;
        match failure.code {
            "internal" => tracing::error!(error = %self, "internal error"),
            code => tracing::warn!(error = %self, "{code}"),
        }
        Some(failure)
    }

    /// [`Self::failure`] without logging.
    fn describe(&self) -> Option<Failure> {
        use ErrorClass::*;
        let failure = match self {
            Self::Origin(e) => match e {
                DbError::Unavailable(_) | DbError::AuthFailed | DbError::Credentials(_) => Failure::new(
                    Unavailable,
                    "origin_unavailable",
                    "the database is unavailable and no cached result exists",
                ),
                DbError::Timeout => Failure::new(
                    Timeout,
                    "origin_timeout",
                    "the database did not answer within the request's time budget, and nothing usable is cached",
                ),
                DbError::Rejected { code } => Failure::new(
                    Internal,
                    "origin_error",
                    format!("the database rejected the query (SQLSTATE {code})"),
                ),
                DbError::TooManyRows { limit } => Failure::new(
                    TooLarge,
                    "result_too_large",
                    format!("the result has more than {limit} rows, this query's limit; narrow it with its parameters"),
                ),
                DbError::NotConfigured(name) => Failure::new(
                    Unavailable,
                    "origin_unavailable",
                    format!(
                        "database {name:?} is not configured (set {})",
                        service_config::database_variable("DATABASE_URL", name)
                    ),
                ),
                _ => Failure::new(Internal, "internal", "internal error"),
            },
            Self::Table(e) => match e {
                TableError::Timeout { .. } => Failure::new(
                    Timeout,
                    "origin_timeout",
                    "the restaurant table did not answer within the request's time budget, and nothing usable is cached",
                ),
                TableError::Throttled { .. } | TableError::Unavailable { .. } => Failure::new(
                    Unavailable,
                    "origin_unavailable",
                    "the restaurant table is unavailable and no cached result exists",
                ),
                _ => Failure::new(Internal, "internal", "internal error"),
            },
            Self::ObjectStore(_) => Failure::new(
                Unavailable,
                "origin_unavailable",
                "S3 is unavailable and the object is not cached",
            ),
            Self::Cache(_) => Failure::new(
                Unavailable,
                "cache_unavailable",
                "Redis is unavailable; nothing was invalidated, retry later",
            ),
            _ => return None,
        };
        Some(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `FAILURE_CODES` lists exactly the (class, code) pairs `failure()` builds.
    #[test]
    fn the_failure_codes_are_those_built() {
        let source = include_str!("error.rs");
        let body = source
            .split("fn describe(&self)")
            .nth(1)
            .and_then(|rest| rest.split("#[cfg(test)]").next())
            .unwrap_or_default();
        let mut built = std::collections::BTreeSet::new();
        for (at, _) in body.match_indices("Failure::new(") {
            let call = &body[at + "Failure::new(".len()..];
            let class = call.split(',').next().unwrap_or_default().trim().to_owned();
            let code = call.split('"').nth(1).unwrap_or_default().to_owned();
            built.insert((class, code));
        }
        let listed: std::collections::BTreeSet<(String, String)> = FAILURE_CODES
            .iter()
            .map(|(class, code)| (format!("{class:?}"), (*code).to_owned()))
            .collect();
        assert_eq!(built, listed);
    }
}
