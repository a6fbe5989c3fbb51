//! `GET /health`: the state of Redis, of every database and of the restaurant table.

use lambda_http::{Body, Response};
use serde_json::json;
use use_cases::Clients;

use crate::http::json_response;

/// Always 200; the body says what is up (`ok`, `degraded`, `down`).
pub(crate) async fn get(clients: &Clients) -> Response<Body> {
    let health = clients.health().await;
    let main = health
        .databases
        .iter()
        .find(|d| d.name == query_catalog::MAIN_DATABASE);
    let mut body = json!({
        "status": health.status,
        "redis": health.redis,
        "databases": health.databases,
        "objects": health.bucket.as_ref().map(|bucket| json!({"bucket": bucket})),
    });
    if let Some(table) = &health.restaurant_table {
        body["restaurant_table"] = json!(table);
    }
    if let Some(main) = main {
        body["database"] = json!(main);
    }
    json_response(200, body.to_string())
}
