//! `GET /queries` (the catalog) and `GET /queries/{name}` (a named query through the cache).

use std::collections::BTreeMap;
use std::time::Instant;

use lambda_http::{Body, Request, RequestExt, Response};
use query_catalog::ParamValue;
use serde::Serialize;
use serde_json::value::RawValue;
use use_cases::Clients;

use crate::http::{html_response, iso8601, json_response, millis, wants_html, with_cache_state};
use crate::pages;
use crate::{ApiError, App};

/// Body of `GET /queries/{name}`.
#[derive(Serialize)]
struct QueryResponse<'a> {
    query: &'a str,
    params: BTreeMap<&'a str, &'a ParamValue>,
    rows: &'a RawValue,
    row_count: usize,
    cache: &'static str,
    /// Where a hit came from: `memory` (this instance) or `redis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bypass_reason: Option<&'static str>,
    /// `too_large` when the result was served but not cached (over the query's byte limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_skipped: Option<&'static str>,
    elapsed_ms: f64,
    ttl_seconds: Option<u64>,
    loaded_at: String,
    load_ms: f64,
}

/// `GET /queries`: every query with its parameters, tags, the tables its SQL reads (`tables`,
/// derived at load time) and effective TTL (never its SQL).
pub(crate) fn list(clients: &Clients) -> Response<Body> {
    let default_ttl = clients.cache.settings().default_ttl.as_secs();
    let queries: Vec<serde_json::Value> = clients
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

/// `GET /queries/{name}?p=v...`: the rows, where they came from and how fresh they are; for a
/// browser, the same answer as a page (see [`crate::pages`]).
pub(crate) async fn run(app: &App, name: &str, req: &Request) -> Result<Response<Body>, ApiError> {
    if !wants_html(req) {
        return run_json(app, name, req).await;
    }
    let query = app.clients().named_query(name)?;
    let answer = run_json(app, name, req).await;
    let body: Result<serde_json::Value, ApiError> =
        answer
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|r| match r.body() {
                Body::Text(text) => serde_json::from_str(text).map_err(|e| ApiError::internal(&e)),
                _ => Err(ApiError::internal(&"a query answer is JSON text")),
            });
    let given = req
        .query_string_parameters()
        .iter()
        .filter(|(key, _)| *key != "source")
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let run = pages::Run {
        answer: body.as_ref(),
        given,
        bypass_allowed: app.bypass_allowed(),
    };
    let status = answer
        .as_ref()
        .map_or_else(|e| e.status.as_u16(), |r| r.status().as_u16());
    let mut response = html_response(status, pages::query(query, &run));
    if let Some(state) = answer.as_ref().ok().and_then(|r| r.headers().get("x-cache")) {
        response.headers_mut().insert("x-cache", state.clone());
    }
    Ok(response)
}

async fn run_json(app: &App, name: &str, req: &Request) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let read = app.read(req, "database")?;
    let query_map = req.query_string_parameters();
    let given = query_map.iter().filter(|(key, _)| *key != "source");
    let answer = app.clients().run_named_query(name, given, read).await?;
    let lookup = &answer.lookup;
    let body = QueryResponse {
        query: &answer.query.name,
        params: answer.params.as_map(),
        rows: &lookup.value.rows,
        row_count: lookup.value.row_count,
        cache: lookup.state.as_str(),
        tier: lookup.tier(),
        bypass_reason: lookup.bypass_reason.map(|r| r.as_str()),
        cache_skipped: lookup.too_large_to_store.then_some("too_large"),
        elapsed_ms: millis(started.elapsed()),
        ttl_seconds: lookup.ttl_seconds(),
        loaded_at: iso8601(lookup.loaded_at_ms),
        load_ms: millis(lookup.load_duration),
    };
    let text = serde_json::to_string(&body).map_err(|e| ApiError::internal(&e))?;
    let mut response = with_cache_state(json_response(200, text), lookup.state);
    if lookup.too_large_to_store {
        response.headers_mut().insert(
            "x-cache-skipped",
            lambda_http::http::HeaderValue::from_static("too-large"),
        );
    }
    Ok(response)
}
