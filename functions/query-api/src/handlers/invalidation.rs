//! `DELETE /cache/queries/{name}` and `DELETE /cache/tags/{tag}` (admin; IAM-authorized in AWS).

use lambda_http::{Body, Response};
use serde_json::json;
use use_cases::Clients;

use crate::http::json_response;
use crate::ApiError;

/// Drops every cached result of query `name`.
pub(crate) async fn query(clients: &Clients, name: &str) -> Result<Response<Body>, ApiError> {
    let generation = clients.invalidation().query(name).await?;
    tracing::info!(query = name, generation, "query cache invalidated");
    let body = json!({"invalidated": {"query": name}, "generation": generation});
    Ok(json_response(200, body.to_string()))
}

/// Drops every cached result of the queries depending on `tag`.
pub(crate) async fn tag(clients: &Clients, tag: &str) -> Result<Response<Body>, ApiError> {
    let done = clients.invalidation().known_tag(tag).await?;
    tracing::info!(tag, generation = done.generation, "tag invalidated");
    let body = json!({"invalidated": {"tag": tag, "queries": done.queries}, "generation": done.generation});
    Ok(json_response(200, body.to_string()))
}
