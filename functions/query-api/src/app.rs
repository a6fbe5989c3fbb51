//! The application: clients built once, requests handled many times.

use std::time::Instant;

use lambda_http::{Body, Request, Response};
use service_config::{ReviewsAuth, ServiceConfig};
use tracing::Instrument;
use use_cases::Catalog;
use use_cases::{CacheState, Read};
use use_cases::{Clients, StartupError};

use crate::handlers::{health, invalidation, objects, queries, restaurants};
use crate::http::{self, json_response, millis, request_path, Answer};
use crate::metrics::MetricsSink;
use crate::routes::{route, Route};
use crate::ApiError;

/// Largest request body accepted; the read API takes none, admin routes take small JSON.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest body answered, as it travels: JSON-escaped inside the invoke payload (every `"`
/// and `\` gains a byte), base64 for binary. Lambda refuses a response over 6 MB (6,291,456
/// bytes, the whole payload) and API Gateway then answers a bare 502; this keeps room for the
/// status and headers.
pub const MAX_RESPONSE_BYTES: usize = 6_000_000;

/// Clients and catalog of one Lambda instance.
#[derive(Debug)]
pub struct App {
    clients: Clients,
    metrics: Option<MetricsSink>,
    /// Whether any caller may bypass the cache or force a refresh (`CACHE_PUBLIC_BYPASS`).
    public_bypass: bool,
    /// The identity a review needs (`REVIEWS_AUTH`).
    reviews_auth: ReviewsAuth,
}

impl App {
    /// Builds every client from `config` through the composition root
    /// ([`use_cases::compose::query_api`]): start-up succeeds while Redis or a database is
    /// down, and the first request that needs them connects.
    pub async fn from_config(config: &ServiceConfig) -> Result<Self, StartupError> {
        Ok(Self::new(use_cases::compose::query_api(config).await?)
            .with_public_bypass(config.serving.public_bypass)
            .with_reviews_auth(config.serving.reviews_auth)
            .with_metrics(MetricsSink::from_settings(&config.metrics, "query-api")))
    }

    /// An app over already built clients, without metrics, public bypass refused, reviews
    /// needing a JWT identity.
    pub fn new(clients: Clients) -> Self {
        Self {
            clients,
            metrics: None,
            public_bypass: false,
            reviews_auth: ReviewsAuth::default(),
        }
    }

    /// Sets the identity a review needs.
    pub fn with_reviews_auth(mut self, auth: ReviewsAuth) -> Self {
        self.reviews_auth = auth;
        self
    }

    /// The identity a review needs.
    pub(crate) fn reviews_auth(&self) -> ReviewsAuth {
        self.reviews_auth
    }

    /// Lets every caller bypass the cache (`?source=`) and force refreshes (`no-cache`).
    pub fn with_public_bypass(mut self, allowed: bool) -> Self {
        self.public_bypass = allowed;
        self
    }

    /// Whether any caller may bypass the cache.
    pub(crate) fn bypass_allowed(&self) -> bool {
        self.public_bypass
    }

    /// The read `req` asks for on a route whose origin is `origin` (see [`http::read`]).
    pub(crate) fn read(&self, req: &Request, origin: &'static str) -> Result<Read, ApiError> {
        http::read(req, origin, self.public_bypass)
    }

    /// Emits a CloudWatch EMF line per request to `sink`.
    pub fn with_metrics(mut self, sink: Option<MetricsSink>) -> Self {
        self.metrics = sink;
        self
    }

    /// The clients (tests and tools).
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        self.clients.catalog()
    }

    /// Answers one request. Never fails and never panics on input: errors are JSON responses.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let started = Instant::now();
        let path = request_path(&req);
        let route = route(&path);
        let kind = route.kind();
        // Inside the runtime's span, which carries the Lambda request id.
        let span = tracing::info_span!("request", route = kind, method = %req.method());
        let answer = self
            .dispatch(route, &req, &path)
            .instrument(span.clone())
            .await
            .unwrap_or_else(|e| e.into_response().into());
        let Answer { response, cache } = within_response_limit(answer);
        span.in_scope(|| {
            tracing::info!(
                path = %path,
                status = response.status().as_u16(),
                cache = cache.map_or("-", CacheState::header_value),
                elapsed_ms = millis(started.elapsed()),
                "request"
            )
        });
        let counts = self.clients.cache_metrics();
        if let Some(sink) = &self.metrics {
            sink.emit(&sink.request_line(kind, cache.map(CacheState::as_str), &counts));
        }
        response
    }

    /// Routing in one place: the route decides the method it takes, then its handler runs.
    async fn dispatch(&self, route: Route, req: &Request, path: &str) -> Result<Answer, ApiError> {
        if req.body().len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(MAX_BODY_BYTES));
        }
        if let Some(allow) = route.method().filter(|m| *m != req.method().as_str()) {
            return Err(ApiError::method_not_allowed(req.method().as_str(), allow));
        }
        if let Some(redirect) = http::without_trailing_slash(path, req.uri().query().unwrap_or_default()) {
            return Ok(redirect.into());
        }
        let c = &self.clients;
        match route {
            Route::Index => Ok(http::html_response(200, crate::pages::index(c.catalog())).into()),
            Route::Health => Ok(health::get(c).await.into()),
            Route::HealthDetail => Ok(health::detail(c).await.into()),
            Route::OpenApi => Ok(json_response(200, crate::openapi::document().to_string()).into()),
            Route::Catalog => Ok(queries::list(c).into()),
            Route::Query(name) => queries::run(self, &name, req).await,
            Route::QueryCache(name) => invalidation::query(c, &name).await.map(Answer::from),
            Route::TagCache(tag) => invalidation::tag(c, &tag).await.map(Answer::from),
            Route::RestaurantSummary(name) => restaurants::summary(self, &name, req).await,
            Route::RestaurantReviews(name) => {
                restaurants::add_review(self, &name, req).await.map(Answer::from)
            }
            Route::Object(key) => objects::get(self, &key, req).await,
            Route::BadObjectKey(problem) => Err(ApiError::bad_key(&problem)),
            Route::NotFound => Err(ApiError::no_route(path)),
        }
    }
}

/// `answer`, or 413 `result_too_large` when its body is over [`MAX_RESPONSE_BYTES`] (Lambda
/// would refuse it and the client would see a 502 that says nothing); no cached read made
/// that 413, so it carries no cache state.
fn within_response_limit(answer: Answer) -> Answer {
    let bytes = match answer.response.body() {
        Body::Text(text) => text.len() + text.bytes().filter(|b| matches!(b, b'"' | b'\\')).count(),
        // Sent base64-encoded.
        Body::Binary(bytes) => bytes.len().div_ceil(3) * 4,
        _ => 0,
    };
    if bytes <= MAX_RESPONSE_BYTES {
        return answer;
    }
    tracing::warn!(bytes, "answer over the Lambda response limit; refused");
    ApiError::response_too_large(bytes, MAX_RESPONSE_BYTES)
        .into_response()
        .into()
}
