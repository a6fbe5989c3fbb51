//! `GET /restaurants/{name}/summary` and `POST /restaurants/{name}/reviews`.

use std::time::Instant;

use lambda_http::{Body, Request, Response};
use serde_json::json;
use use_cases::Clients;

use crate::http::{iso8601, json_response, millis, read_mode, with_cache_state};
use crate::ApiError;

/// The restaurant's cached summary.
pub(crate) async fn summary(
    clients: &Clients,
    name: &str,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let lookup = clients
        .restaurant_summary(name, read_mode(req, "database")?)
        .await?;
    let body = json!({
        "restaurant": lookup.value,
        "cache": lookup.state.as_str(),
        "elapsed_ms": millis(started.elapsed()),
        "ttl_seconds": lookup.ttl_seconds(),
        "loaded_at": iso8601(lookup.loaded_at_ms),
    });
    Ok(with_cache_state(
        json_response(200, body.to_string()),
        lookup.state,
    ))
}

/// Stores a review (JSON `{author, rating, body}`) and answers with the summary after it.
pub(crate) async fn add_review(
    clients: &Clients,
    name: &str,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let review: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(req.body().as_ref())
        .map_err(|e| ApiError::bad_body(&format!("expected a JSON object {{author, rating, body}}: {e}")))?;
    let added = clients.add_review(name, &review).await?;
    let body = json!({
        "review": added.review,
        "summary": added.summary.value,
        "cache": added.summary.state.as_str(),
        "summary_invalidated": added.summary_invalidated,
    });
    Ok(json_response(201, body.to_string()))
}
