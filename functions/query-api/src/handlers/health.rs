//! `GET /health` (public: the status alone) and `GET /cache/health` (admin, IAM-signed in AWS:
//! the state of Redis, of every database and of the restaurant table).
//!
//! Both answer from the instance's last probes for a few seconds (`use_cases::HEALTH_KEPT`),
//! and every probe is bounded (`use_cases::PROBE_BUDGET`), so calling health in a loop costs
//! the dependencies nothing and never outlasts the function.

use lambda_http::{Body, Response};
use serde_json::json;
use use_cases::Clients;

use crate::http::json_response;

/// Always 200; the body is the status alone (`ok`, `degraded`, `down`): which dependency is
/// down, and what the stack is made of, is not for the public.
pub(crate) async fn get(clients: &Clients) -> Response<Body> {
    let health = clients.health().await;
    json_response(200, json!({ "status": health.status }).to_string())
}

/// Always 200; the status and each dependency's state and round-trip time.
pub(crate) async fn detail(clients: &Clients) -> Response<Body> {
    let health = clients.health().await;
    let main = health
        .databases
        .iter()
        .find(|d| d.name == use_cases::MAIN_DATABASE);
    let mut body = json!({
        "status": health.status,
        "redis": health.redis,
        "databases": health.databases,
        "objects": {"configured": health.objects_configured},
    });
    if let Some(table) = &health.restaurant_table {
        body["restaurant_table"] = json!(table);
    }
    if let Some(main) = main {
        body["database"] = json!(main);
    }
    json_response(200, body.to_string())
}
