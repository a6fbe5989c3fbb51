//! The API's JSON errors: `{"error": {"code": "...", "message": "..."}}` with the right status.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use use_cases::{ErrorClass, Failure, ParamError, UseCaseError};

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What happened, for humans. Never holds secrets or internals.
    pub message: String,
    /// `Allow` header value for 405.
    pub allow: Option<&'static str>,
    /// `Retry-After` header value, whole seconds (503 busy, 429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
            retry_after: None,
        }
    }

    /// 503 when the origin's load budget is spent and nothing usable is cached: the request
    /// was not tried, and may be sent again after `retry_after`.
    pub fn origin_busy(retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_millis().div_ceil(1000).max(1) as u64;
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "origin_busy",
                format!(
                    "the origin is at its load budget and nothing usable is cached; retry in {seconds} s"
                ),
            )
        }
    }

    /// 429 when the writer's budget of writes is spent.
    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_millis().div_ceil(1000).max(1) as u64;
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many reviews from this author; retry in {seconds} s"),
            )
        }
    }

    /// 401 when a write carries no identity of the kind the API requires.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "this route needs a verified identity (a JWT or a SigV4 signature, as the API is configured)",
        )
    }

    /// 504 when the origin did not answer within the request's time budget.
    pub fn origin_timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "origin_timeout",
            "the origin did not answer within the request's time budget, and nothing usable is cached",
        )
    }

    /// 404 for a route that does not exist.
    pub fn no_route(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no route for {path}"))
    }

    /// 404 for a query name not in the catalog.
    pub fn unknown_query(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_query",
            format!("no query named {name:?}; GET /queries lists them"),
        )
    }

    /// 404 for a restaurant that does not exist.
    pub fn restaurant_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "restaurant_not_found",
            format!("no restaurant named {name:?}"),
        )
    }

    /// 400 for a body that is not what the route takes.
    pub fn bad_body(problem: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_body", problem.to_owned())
    }

    /// 404 for a tag no query depends on (most likely a typo).
    pub fn unknown_tag(tag: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_tag",
            format!("no query depends on tag {tag:?}; GET /queries lists the tags"),
        )
    }

    /// 405 with the methods the route accepts.
    pub fn method_not_allowed(method: &str, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed here; use {allow}"),
            )
        }
    }

    /// 413 for a body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    }

    /// 400 naming the parameter.
    pub fn bad_parameter(param: &str, problem: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            format!("parameter {param:?}: {problem}"),
        )
    }

    /// 400 for an object key that cannot exist.
    pub fn bad_key(problem: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_key",
            format!("invalid object key: {problem}"),
        )
    }

    /// 404 for an object S3 does not have.
    pub fn object_not_found(key: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "object_not_found",
            format!("no object {key:?}"),
        )
    }

    /// 403 for `?source=` when the public may not bypass the cache.
    pub fn bypass_not_allowed(origin: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "bypass_not_allowed",
            format!(
                "reading the {origin} directly is not allowed here; drop ?source= to read through the cache"
            ),
        )
    }

    /// 503 for a review that was stored while its cached summary could not be refreshed.
    pub fn summary_may_be_stale(review: &serde_json::Value) -> Self {
        let id = review.get("id").map(ToString::to_string).unwrap_or_default();
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "summary_may_be_stale",
            format!(
                "the review was stored (id {id}; do not send it again) but the restaurant's cached \
                 summary could not be refreshed: it may not show the review until it expires"
            ),
        )
    }

    /// 413 for an object larger than the API serves (Lambda's response limit).
    pub fn object_too_large(key: &str, size: u64, limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "object_too_large",
            format!(
                "object {key:?} is {size} bytes; this API serves at most {limit}: read it from S3 directly"
            ),
        )
    }

    /// 413 for an answer larger than a Lambda response may be.
    pub fn response_too_large(bytes: usize, limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "result_too_large",
            format!(
                "the answer is {bytes} bytes; a Lambda response holds at most {limit}: narrow it with the query's parameters"
            ),
        )
    }

    /// 503 when no bucket is configured.
    pub fn objects_not_configured() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "objects_unavailable",
            "objects are not configured (OBJECTS_BUCKET is not set)",
        )
    }

    /// 500 for our own bugs; details go to the log only.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// The response.
    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut builder = Response::builder()
            .status(self.status)
            .header("content-type", "application/json");
        if let Some(allow) = self.allow {
            builder = builder.header("allow", allow);
        }
        if let Some(seconds) = self.retry_after {
            builder = builder.header("retry-after", seconds);
        }
        builder
            .body(Body::Text(body.to_string()))
            .unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        Self::bad_parameter(&e.param, &e.problem)
    }
}

impl From<UseCaseError> for ApiError {
    fn from(e: UseCaseError) -> Self {
        match e {
            UseCaseError::UnknownQuery(name) => Self::unknown_query(&name),
            UseCaseError::UnknownTag(tag) => Self::unknown_tag(&tag),
            UseCaseError::BadParameter(e) => Self::from(e),
            UseCaseError::RestaurantNotFound(name) => Self::restaurant_not_found(&name),
            UseCaseError::OriginTimeout => Self::origin_timeout(),
            UseCaseError::OriginBusy { retry_after } => Self::origin_busy(retry_after),
            e @ (UseCaseError::Origin(_)
            | UseCaseError::Table(_)
            | UseCaseError::Cache(_)
            | UseCaseError::ObjectStore(_)) => match e.failure() {
                Some(failure) => Self::from(failure),
                None => Self::internal(&e),
            },
            UseCaseError::ObjectsNotConfigured => Self::objects_not_configured(),
            UseCaseError::RateLimited { retry_after } => Self::rate_limited(retry_after),
            UseCaseError::IdempotencyKeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for another restaurant or another review; use a new key",
            ),
            UseCaseError::SummaryMayBeStale { review } => Self::summary_may_be_stale(&review),
            UseCaseError::Internal(detail) => Self::internal(&detail),
            e @ UseCaseError::RolesNotConfigured => Self::internal(&e),
        }
    }
}

// The statuses of the use cases' failures (their codes are in `use_cases::FAILURE_CODES`).

/// The status that answers a failure of `class`.
pub(crate) fn status_of(class: ErrorClass) -> StatusCode {
    match class {
        ErrorClass::BadInput => StatusCode::BAD_REQUEST,
        ErrorClass::NotFound => StatusCode::NOT_FOUND,
        ErrorClass::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorClass::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorClass::Unavailable | ErrorClass::Busy => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::Conflict => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        Self::new(status_of(failure.class), failure.code, failure.message)
    }
}
