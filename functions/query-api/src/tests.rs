//! Unit tests of routing and the handlers' own checks, over clients whose Redis and database
//! are closed loopback ports: everything here is answered before, or despite, the services.

use std::collections::HashMap;

use lambda_http::http::{Method, Request as HttpRequest};
use lambda_http::{Body, Request, RequestExt};
use serde_json::Value;
use service_config::ServiceConfig;

use crate::{App, MAX_BODY_BYTES};

async fn app() -> App {
    let vars: HashMap<String, String> = [
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("REDIS_TIMEOUT_MS", "100"),
        ("DATABASE_URL", "postgres://u:p@127.0.0.1:1/db"),
        ("DB_CONNECT_TIMEOUT_MS", "300"),
        ("REVIEWS_AUTH", "none"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    App::from_config(&ServiceConfig::from_map(&vars).unwrap())
        .await
        .unwrap()
}

fn request(method: Method, path: &str, query: &[(&str, &str)], body: Body) -> Request {
    let params: HashMap<String, String> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    HttpRequest::builder()
        .method(method)
        .uri(path)
        .body(body)
        .unwrap()
        .with_query_string_parameters(params)
}

/// Status, error code (when an error) and the whole body.
async fn call(app: &App, req: Request) -> (u16, String, Value) {
    let response = app.handle(req).await;
    let body: Value = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("expected a JSON body, got {other:?}"),
    };
    let code = body["error"]["code"].as_str().unwrap_or_default().to_owned();
    (response.status().as_u16(), code, body)
}

#[tokio::test]
async fn unknown_routes_queries_and_methods() {
    let app = app().await;
    let get = |path: &str| request(Method::GET, path, &[], Body::Empty);
    assert_eq!(call(&app, get("/nope")).await.1, "not_found");
    assert_eq!(call(&app, get("/queries/nope")).await.1, "unknown_query");
    let (status, code, _) = call(
        &app,
        request(Method::POST, "/queries/slow_version", &[], Body::Empty),
    )
    .await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
    let response = app
        .handle(request(
            Method::GET,
            "/cache/queries/slow_version",
            &[],
            Body::Empty,
        ))
        .await;
    assert_eq!(response.headers()["allow"], "DELETE");
    assert_eq!(call(&app, get("/objects/a//b")).await.1, "bad_key");
}

#[tokio::test]
async fn parameters_and_bodies_are_refused_before_any_origin_work() {
    let app = app().await;
    let bad_limit = request(
        Method::GET,
        "/queries/products_by_category",
        &[("category", "tools"), ("limit", "500")],
        Body::Empty,
    );
    let (status, code, body) = call(&app, bad_limit).await;
    assert_eq!((status, code.as_str()), (400, "bad_parameter"));
    assert!(body["error"]["message"].as_str().unwrap().contains("limit"));
    let bad_source = request(
        Method::GET,
        "/queries/slow_version",
        &[("source", "s3")],
        Body::Empty,
    );
    assert_eq!(call(&app, bad_source).await.1, "bad_parameter");
    let huge = Body::Text("x".repeat(MAX_BODY_BYTES + 1));
    assert_eq!(
        call(&app, request(Method::POST, "/restaurants/a/reviews", &[], huge))
            .await
            .0,
        413
    );
    let not_json = Body::Text("{".into());
    assert_eq!(
        call(
            &app,
            request(Method::POST, "/restaurants/a/reviews", &[], not_json)
        )
        .await
        .1,
        "bad_body"
    );
    let unknown_field = Body::Text(r#"{"stars": 5}"#.into());
    let (_, code, body) = call(
        &app,
        request(Method::POST, "/restaurants/a/reviews", &[], unknown_field),
    )
    .await;
    assert_eq!(code, "bad_parameter");
    assert!(body["error"]["message"].as_str().unwrap().contains("stars"));
    let unknown_tag = request(Method::DELETE, "/cache/tags/nope", &[], Body::Empty);
    assert_eq!(
        call(&app, unknown_tag).await.1,
        "unknown_tag",
        "refused before Redis is asked"
    );
}

#[tokio::test]
async fn services_down_are_errors_of_the_contract() {
    let app = app().await;
    let (status, code, _) = call(
        &app,
        request(Method::GET, "/queries/slow_version", &[], Body::Empty),
    )
    .await;
    assert_eq!((status, code.as_str()), (503, "origin_unavailable"));
    let (status, code, _) = call(
        &app,
        request(Method::DELETE, "/cache/queries/slow_version", &[], Body::Empty),
    )
    .await;
    assert_eq!((status, code.as_str()), (503, "cache_unavailable"));
    let (status, code, _) = call(&app, request(Method::GET, "/objects/a.txt", &[], Body::Empty)).await;
    assert_eq!((status, code.as_str()), (503, "objects_unavailable"));
    let (status, _, health) = call(&app, request(Method::GET, "/health", &[], Body::Empty)).await;
    assert_eq!((status, health), (200, serde_json::json!({"status": "down"})));
    let (status, _, detail) = call(&app, request(Method::GET, "/cache/health", &[], Body::Empty)).await;
    assert_eq!((status, detail["status"].as_str()), (200, Some("down")));
    assert_eq!(detail["database"]["name"], "main");
    assert_eq!(detail["objects"]["configured"], false);
}

#[tokio::test]
async fn the_catalog_lists_queries_without_their_sql() {
    let app = app().await;
    let (status, _, body) = call(&app, request(Method::GET, "/queries", &[], Body::Empty)).await;
    assert_eq!(status, 200);
    let queries = body["queries"].as_array().unwrap();
    assert_eq!(queries.len(), app.catalog().queries().len());
    assert!(queries
        .iter()
        .all(|q| q.get("sql").is_none() && q["ttl_seconds"].is_u64() && q["tables"].is_array()));
    let summary = queries
        .iter()
        .find(|q| q["name"] == "restaurant_summary")
        .unwrap();
    assert_eq!(summary["tables"], serde_json::json!(["restaurants", "reviews"]));
}

/// Every (status, code) pair `error.rs` can build, read from its source, and those of the use
/// cases' failures.
fn errors_built_by_the_code() -> std::collections::BTreeSet<(u16, String)> {
    let whole = include_str!("error.rs");
    let source = whole
        .split("// The statuses of the use cases' failures")
        .next()
        .unwrap_or(whole);
    let mut found: std::collections::BTreeSet<(u16, String)> = use_cases::FAILURE_CODES
        .iter()
        .map(|(class, code)| (crate::error::status_of(*class).as_u16(), (*code).to_owned()))
        .collect();
    for (at, _) in source.match_indices("StatusCode::") {
        let rest = &source[at + "StatusCode::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        let status = match name.as_str() {
            "BAD_REQUEST" => 400,
            "UNAUTHORIZED" => 401,
            "UNPROCESSABLE_ENTITY" => 422,
            "TOO_MANY_REQUESTS" => 429,
            "FORBIDDEN" => 403,
            "NOT_FOUND" => 404,
            "METHOD_NOT_ALLOWED" => 405,
            "PAYLOAD_TOO_LARGE" => 413,
            "INTERNAL_SERVER_ERROR" => 500,
            "SERVICE_UNAVAILABLE" => 503,
            "GATEWAY_TIMEOUT" => 504,
            other => panic!("error.rs uses status {other}: add it here and to openapi::ERRORS"),
        };
        let code = rest.split('"').nth(1).expect("a code follows each status");
        found.insert((status, code.to_owned()));
    }
    found
}

#[test]
fn the_openapi_description_lists_exactly_the_errors_the_code_builds() {
    let documented: std::collections::BTreeSet<(u16, String)> = crate::openapi::ERRORS
        .iter()
        .map(|(status, code, _)| (*status, (*code).to_owned()))
        .collect();
    assert_eq!(errors_built_by_the_code(), documented);
}

#[test]
fn every_route_is_documented_with_its_method_and_nothing_else_is() {
    let documented = crate::openapi::documented_operations();
    let sample = |template: &str| {
        template
            .replace("{name}", "x")
            .replace("{tag}", "t")
            .replace("{key}", "dir/k.txt")
    };
    for (method, template, statuses) in &documented {
        let route = crate::routes::route(&sample(template));
        assert_eq!(
            route.method(),
            Some(method.to_ascii_uppercase().as_str()),
            "{template}"
        );
        assert!(
            statuses.contains(&405),
            "{template}: every route answers 405 to other methods"
        );
    }
    let every_route = [
        "/",
        "/health",
        "/openapi.json",
        "/queries",
        "/queries/x",
        "/cache/queries/x",
        "/cache/health",
        "/cache/tags/t",
        "/restaurants/x/summary",
        "/restaurants/x/reviews",
        "/objects/k",
    ];
    for path in every_route {
        let kind = crate::routes::route(path).kind();
        let covered = documented
            .iter()
            .any(|(_, template, _)| crate::routes::route(&sample(template)).kind() == kind);
        assert!(covered, "{path} ({kind}) is not in the OpenAPI description");
    }
}

#[test]
fn the_committed_openapi_json_is_the_generated_one() {
    let committed: Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    assert!(
        committed == crate::openapi::document(),
        "functions/query-api/openapi.json is stale: cargo run -q -p query-api --example openapi > functions/query-api/openapi.json"
    );
}
