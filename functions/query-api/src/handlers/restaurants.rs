//! `GET /restaurants/{name}/summary` and `POST /restaurants/{name}/reviews`.

use std::time::Instant;

use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{deadline, iso8601, json_response, millis, Answer};
use crate::{ApiError, App};

/// The restaurant's cached summary.
pub(crate) async fn summary(app: &App, name: &str, req: &Request) -> Result<Answer, ApiError> {
    let started = Instant::now();
    let lookup = app
        .clients()
        .restaurant_summary(name, app.read(req, "database")?)
        .await?;
    let body = json!({
        "restaurant": lookup.value,
        "cache": lookup.state.as_str(),
        "tier": lookup.tier(),
        "elapsed_ms": millis(started.elapsed()),
        "ttl_seconds": lookup.ttl_seconds(),
        "loaded_at": iso8601(lookup.loaded_at_ms),
    });
    Ok(Answer::cached(json_response(200, body.to_string()), lookup.state))
}

/// Stores a review (JSON `{author, rating, body}`) and answers with the summary after it.
pub(crate) async fn add_review(app: &App, name: &str, req: &Request) -> Result<Response<Body>, ApiError> {
    let author =
        crate::identity::author(req, app.reviews_auth()).map_err(|()| ApiError::unauthenticated())?;
    let clients = app.clients();
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(req.body().as_ref())
        .map_err(|e| ApiError::bad_body(&format!("expected a JSON object {{author, rating, body}}: {e}")))?;
    let idempotency_key = req
        .headers()
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_parameter("Idempotency-Key", "must be visible ASCII"))
        })
        .transpose()?;
    let review =
        use_cases::Review::parse(&fields, author.as_deref()).map_err(use_cases::UseCaseError::from)?;
    let write = use_cases::ReviewWrite {
        idempotency_key,
        deadline: deadline(req),
    };
    let added = clients.add_review(name, &review, write).await?;
    let body = json!({
        "review": added.review,
        "summary": added.summary.as_ref().map(|s| &s.value),
        "cache": added.summary.as_ref().map(|s| s.state.as_str()),
        "summary_invalidated": added.summary_invalidated,
        "summary_fresh": added.summary_fresh,
    });
    Ok(json_response(201, body.to_string()))
}
