//! The application: clients built once, requests handled many times.

use std::time::Instant;

use cache_aside::{Cache, CacheState, CachedObject, ObjectPolicy, ReadMode};
use lambda_http::http::{HeaderMap, Method};
use lambda_http::{Body, Request, RequestExt, Response};
use query_catalog::{Catalog, ResolvedParams};
use serde::Serialize;
use serde_json::value::RawValue;
use service_config::{Clients, MetricsSink, ServiceConfig, StartupError};
use tracing::Instrument;

use crate::routes::{route, Route};
use crate::ApiError;

/// Largest request body accepted; the read API takes none, admin routes take small JSON.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Clients and catalog of one Lambda instance.
#[derive(Debug)]
pub struct App {
    clients: Clients,
    object_policy: ObjectPolicy,
    metrics: Option<MetricsSink>,
}

/// Body of `GET /queries/{name}`.
#[derive(Serialize)]
struct QueryResponse<'a> {
    query: &'a str,
    params: std::collections::BTreeMap<&'a str, &'a query_catalog::ParamValue>,
    rows: &'a RawValue,
    row_count: usize,
    cache: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bypass_reason: Option<&'static str>,
    elapsed_ms: f64,
    ttl_seconds: Option<u64>,
    loaded_at: String,
    load_ms: f64,
}

fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn json_response(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// `Bypass` when the client asked for the origin, `Refresh` on `Cache-Control: no-cache`,
/// else the normal cached read.
fn read_mode(origin_requested: bool, headers: &HeaderMap) -> ReadMode {
    if origin_requested {
        ReadMode::Bypass
    } else if wants_refresh(headers) {
        ReadMode::Refresh
    } else {
        ReadMode::Cached
    }
}

fn wants_refresh(headers: &HeaderMap) -> bool {
    headers.get_all("cache-control").iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|d| d.trim().eq_ignore_ascii_case("no-cache")))
            .unwrap_or(false)
    })
}

fn iso8601(unix_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl App {
    /// Builds every client from `config` (see [`Clients::build`]): start-up succeeds while
    /// Redis or a database is down, and the first request that needs them connects.
    pub async fn from_config(config: &ServiceConfig) -> Result<Self, StartupError> {
        Ok(Self::new(Clients::build(config).await?))
    }

    /// An app over already built clients.
    pub fn new(clients: Clients) -> Self {
        let settings = &clients.object_settings;
        Self {
            object_policy: ObjectPolicy {
                ttl: settings.ttl,
                missing_ttl: settings.missing_ttl,
                max_cached_bytes: settings.max_cached_bytes,
            },
            clients,
            metrics: MetricsSink::from_env("query-api"),
        }
    }

    /// Emits a CloudWatch EMF line per request to `sink` (on by default inside Lambda).
    pub fn with_metrics(mut self, sink: Option<MetricsSink>) -> Self {
        self.metrics = sink;
        self
    }

    /// The cache (tests and tools).
    pub fn cache(&self) -> &Cache {
        &self.clients.cache
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.clients.catalog
    }

    /// Answers one request. Never fails and never panics on input: errors are JSON responses.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = request_path(&req);
        let route = route(&path).kind();
        // Inside the runtime's span, which carries the Lambda request id.
        let span = tracing::info_span!("request", route, method = %method);
        let response = match self.dispatch(&req, &path).instrument(span.clone()).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        };
        let cache = response.headers().get("x-cache").and_then(|v| v.to_str().ok());
        span.in_scope(|| {
            tracing::info!(
                path = %path,
                status = response.status().as_u16(),
                cache = cache.unwrap_or("-"),
                elapsed_ms = millis(started.elapsed()),
                "request"
            )
        });
        let counts = self.clients.cache.store().metrics().take();
        if let Some(sink) = &self.metrics {
            let state = cache.map(str::to_ascii_lowercase);
            sink.emit(&sink.request_line(route, state.as_deref(), &counts));
        }
        response
    }

    async fn dispatch(&self, req: &Request, path: &str) -> Result<Response<Body>, ApiError> {
        if req.body().len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(MAX_BODY_BYTES));
        }
        let method = req.method();
        match (route(path), method) {
            (Route::Health, &Method::GET) => Ok(self.health().await),
            (Route::Catalog, &Method::GET) => Ok(self.list_queries()),
            (Route::Query(name), &Method::GET) => self.run_query(&name, req).await,
            (Route::QueryCache(name), &Method::DELETE) => self.invalidate_query(&name).await,
            (Route::Object(key), &Method::GET) => self.get_object(&key, req).await,
            (Route::RestaurantSummary(name), &Method::GET) => self.restaurant_summary(&name, req).await,
            (Route::RestaurantReviews(name), &Method::POST) => self.add_review(&name, req).await,
            (Route::RestaurantSummary(_), m) => Err(ApiError::method_not_allowed(m.as_str(), "GET")),
            (Route::RestaurantReviews(_), m) => Err(ApiError::method_not_allowed(m.as_str(), "POST")),
            (Route::Health | Route::Catalog | Route::Query(_) | Route::Object(_), m) => {
                Err(ApiError::method_not_allowed(m.as_str(), "GET"))
            }
            (Route::TagCache(tag), &Method::DELETE) => self.invalidate_tag(&tag).await,
            (Route::QueryCache(_) | Route::TagCache(_), m) => {
                Err(ApiError::method_not_allowed(m.as_str(), "DELETE"))
            }
            (Route::BadObjectKey(problem), _) => Err(ApiError::bad_key(&problem)),
            (Route::NotFound, _) => Err(ApiError::no_route(path)),
        }
    }
}

/// Runs futures one after another; there are only a few databases, and `futures` is not worth
/// a dependency here.
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await);
    }
    out
}

/// The request path without an API Gateway stage prefix (`/prod/queries/x` -> `/queries/x`).
fn request_path(req: &Request) -> String {
    let raw = req.raw_http_path();
    let path = if raw.is_empty() { req.uri().path() } else { raw };
    let stage = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.stage.clone(),
        _ => None,
    };
    if let Some(stage) = stage.filter(|s| s != "$default") {
        let prefix = format!("/{stage}");
        if let Some(rest) = path.strip_prefix(&prefix) {
            if rest.starts_with('/') {
                return rest.to_owned();
            }
        }
    }
    path.to_owned()
}

impl App {
    async fn health(&self) -> Response<Body> {
        let probe = |r: Result<std::time::Duration, String>| match r {
            Ok(d) => serde_json::json!({"ok": true, "latency_ms": millis(d)}),
            Err(e) => serde_json::json!({"ok": false, "error": e}),
        };
        let databases = self.clients.databases.iter().map(|d| async move {
            let result = d.ping().await.map_err(|e| e.to_string());
            let mut state = probe(result);
            state["name"] = d.name().into();
            state
        });
        let (redis, databases) = tokio::join!(self.clients.cache.store().ping(), futures_join_all(databases));
        let redis = probe(redis.map_err(|e| e.to_string()));
        let up = std::iter::once(&redis)
            .chain(&databases)
            .filter(|s| s["ok"] == true)
            .count();
        let status = match up {
            n if n == 1 + databases.len() => "ok",
            0 => "down",
            _ => "degraded",
        };
        let mut body = serde_json::json!({ "status": status, "redis": redis, "databases": databases });
        if let Some(main) = databases
            .iter()
            .find(|d| d["name"] == query_catalog::MAIN_DATABASE)
        {
            body["database"] = main.clone();
        }
        body["objects"] = match &self.clients.objects {
            Some(store) => serde_json::json!({"bucket": store.bucket()}),
            None => serde_json::Value::Null,
        };
        json_response(200, body.to_string())
    }

    fn list_queries(&self) -> Response<Body> {
        let default_ttl = self.clients.cache.settings().default_ttl.as_secs();
        let queries: Vec<serde_json::Value> = self
            .clients
            .catalog
            .queries()
            .iter()
            .map(|q| {
                let mut v = serde_json::to_value(q).unwrap_or_default();
                v["ttl_seconds"] = q.ttl_seconds.unwrap_or(default_ttl).into();
                v
            })
            .collect();
        json_response(200, serde_json::json!({ "queries": queries }).to_string())
    }

    async fn run_query(&self, name: &str, req: &Request) -> Result<Response<Body>, ApiError> {
        let started = Instant::now();
        let query = self
            .clients
            .catalog
            .get(name)
            .ok_or_else(|| ApiError::unknown_query(name))?;
        let query_map = req.query_string_parameters();
        let mut from_database = false;
        let mut given = Vec::new();
        for (key, value) in query_map.iter() {
            if key == "source" {
                from_database = match value {
                    "database" => true,
                    "cache" => false,
                    _ => return Err(ApiError::bad_parameter("source", "must be database or cache")),
                };
            } else {
                given.push((key, value));
            }
        }
        let params = ResolvedParams::resolve(&query.params, given)?;
        let mode = read_mode(from_database, req.headers());
        let lookup = self.clients.query(query, &params, mode).await?;
        let body = QueryResponse {
            query: &query.name,
            params: params.as_map(),
            rows: &lookup.value.rows,
            row_count: lookup.value.row_count,
            cache: lookup.state.as_str(),
            bypass_reason: lookup.bypass_reason.map(|r| r.as_str()),
            elapsed_ms: millis(started.elapsed()),
            ttl_seconds: match lookup.state {
                CacheState::Bypass => None,
                _ => lookup.ttl_remaining.map(|d| d.as_millis().div_ceil(1000) as u64),
            },
            loaded_at: iso8601(lookup.loaded_at_ms),
            load_ms: millis(lookup.load_duration),
        };
        let text = serde_json::to_string(&body).map_err(|e| ApiError::internal(&e))?;
        let mut response = json_response(200, text);
        if let Ok(v) = lookup.state.header_value().parse() {
            response.headers_mut().insert("x-cache", v);
        }
        Ok(response)
    }

    async fn invalidate_tag(&self, tag: &str) -> Result<Response<Body>, ApiError> {
        let dependents: Vec<&str> = self
            .clients
            .catalog
            .queries()
            .iter()
            .filter(|q| q.tags.iter().any(|t| t == tag))
            .map(|q| q.name.as_str())
            .collect();
        if dependents.is_empty() {
            return Err(ApiError::unknown_tag(tag));
        }
        let scope = query_catalog::tag_scope(tag);
        let generation = self.invalidate_scope(&scope).await?;
        tracing::info!(tag, generation, "tag invalidated");
        let body =
            serde_json::json!({"invalidated": {"tag": tag, "queries": dependents}, "generation": generation});
        Ok(json_response(200, body.to_string()))
    }

    /// Bumps `scope`'s generation; Redis trouble is a 503 (nothing was invalidated).
    async fn invalidate_scope(&self, scope: &str) -> Result<u64, ApiError> {
        self.clients
            .cache
            .invalidate(scope)
            .await
            .map_err(|e| ApiError::cache_unavailable(&e))
    }

    async fn invalidate_query(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let query = self
            .clients
            .catalog
            .get(name)
            .ok_or_else(|| ApiError::unknown_query(name))?;
        let scope = query_catalog::query_scope(&query.name);
        let generation = self.invalidate_scope(&scope).await?;
        tracing::info!(query = %query.name, generation, "query cache invalidated");
        let body = serde_json::json!({"invalidated": {"query": query.name}, "generation": generation});
        Ok(json_response(200, body.to_string()))
    }
}

/// The summary query and the review statement of the restaurant scenario.
const SUMMARY: &str = "restaurant_summary";
const ADD_REVIEW: &str = "add_review";

impl App {
    fn summary_query(&self) -> Result<&query_catalog::NamedQuery, ApiError> {
        self.clients
            .catalog
            .get(SUMMARY)
            .ok_or_else(|| ApiError::unknown_query(SUMMARY))
    }

    /// The cached summary of restaurant `name` (`mode` as for any query).
    async fn summary(
        &self,
        name: &str,
        mode: ReadMode,
    ) -> Result<(serde_json::Value, cache_aside::Lookup<query_catalog::QueryRows>), ApiError> {
        let query = self.summary_query()?;
        let params = ResolvedParams::resolve(&query.params, [("name", name)])?;
        let lookup = self.clients.query(query, &params, mode).await?;
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(lookup.value.rows.get()).map_err(|e| ApiError::internal(&e))?;
        let row = rows
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::restaurant_not_found(name))?;
        Ok((row, lookup))
    }

    async fn restaurant_summary(&self, name: &str, req: &Request) -> Result<Response<Body>, ApiError> {
        let started = Instant::now();
        let mode = read_mode(
            req.query_string_parameters().first("source") == Some("database"),
            req.headers(),
        );
        let (row, lookup) = self.summary(name, mode).await?;
        let body = serde_json::json!({
            "restaurant": row,
            "cache": lookup.state.as_str(),
            "elapsed_ms": millis(started.elapsed()),
            "ttl_seconds": lookup.ttl_remaining.filter(|_| lookup.state != CacheState::Bypass)
                .map(|d| d.as_millis().div_ceil(1000) as u64),
            "loaded_at": iso8601(lookup.loaded_at_ms),
        });
        let mut response = json_response(200, body.to_string());
        if let Ok(v) = lookup.state.header_value().parse() {
            response.headers_mut().insert("x-cache", v);
        }
        Ok(response)
    }

    /// Stores a review, then drops the restaurant's cached summary (O(1), fencing any fill that
    /// started before the write) and fills it again: the next read includes the review.
    async fn add_review(&self, name: &str, req: &Request) -> Result<Response<Body>, ApiError> {
        let statement = self
            .clients
            .catalog
            .statement(ADD_REVIEW)
            .ok_or_else(|| ApiError::unknown_query(ADD_REVIEW))?;
        let review: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(req.body().as_ref())
            .map_err(|e| {
                ApiError::bad_body(&format!("expected a JSON object {{author, rating, body}}: {e}"))
            })?;
        if let Some(unknown) = review
            .keys()
            .find(|k| !["author", "rating", "body"].contains(&k.as_str()))
        {
            return Err(ApiError::bad_parameter(
                unknown,
                "unknown field; expected author, rating, body",
            ));
        }
        let text = |field: &str| match review.get(field) {
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) if field == "rating" => Ok(Some(n.to_string())),
            None => Ok(None),
            Some(_) => Err(ApiError::bad_parameter(field, "has the wrong JSON type")),
        };
        let mut given = vec![("name".to_owned(), name.to_owned())];
        for field in ["author", "rating", "body"] {
            if let Some(value) = text(field)? {
                given.push((field.to_owned(), value));
            }
        }
        let params = ResolvedParams::resolve(
            &statement.params,
            given.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        let inserted = self.clients.execute(statement, &params).await?;
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(inserted.rows.get()).map_err(|e| ApiError::internal(&e))?;
        let stored = rows
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::restaurant_not_found(name))?;

        let summary_query = self.summary_query()?;
        let invalidated = self
            .clients
            .invalidate_entity(
                summary_query,
                "name",
                &query_catalog::ParamValue::Text(name.to_owned()),
            )
            .await;
        if let Err(e) = &invalidated {
            tracing::error!(error = %e, restaurant = name, "review stored but its cached summary could not be invalidated");
        }
        let (summary, lookup) = self.summary(name, ReadMode::Cached).await?;
        let body = serde_json::json!({
            "review": stored,
            "summary": summary,
            "cache": lookup.state.as_str(),
            "summary_invalidated": invalidated.is_ok(),
        });
        Ok(json_response(201, body.to_string()))
    }

    async fn get_object(&self, key: &str, req: &Request) -> Result<Response<Body>, ApiError> {
        let store = self
            .clients
            .objects
            .as_ref()
            .ok_or_else(ApiError::objects_not_configured)?;
        let mode = read_mode(
            req.query_string_parameters().first("source") == Some("s3"),
            req.headers(),
        );
        let lookup = self
            .clients
            .cache
            .get_or_load_object(key, self.object_policy, mode, || async {
                let stored = store.get(key).await?;
                Ok::<_, aws_clients::ObjectStoreError>(stored.map(|o| CachedObject {
                    bytes: o.bytes,
                    content_type: o.content_type,
                }))
            })
            .await
            .map_err(ApiError::object_store)?;
        let Some(object) = lookup.object else {
            let mut response = ApiError::object_not_found(key).into_response();
            if let Ok(v) = lookup.state.header_value().parse() {
                response.headers_mut().insert("x-cache", v);
            }
            return Ok(response);
        };
        let mut builder = Response::builder()
            .status(200)
            .header("content-type", object.content_type)
            .header("content-length", object.bytes.len())
            .header("x-cache", lookup.state.header_value());
        if !lookup.cached {
            builder = builder.header("x-cache-skipped", "too-large");
        }
        builder
            .body(Body::Binary(object.bytes))
            .map_err(|e| ApiError::internal(&e))
    }
}
