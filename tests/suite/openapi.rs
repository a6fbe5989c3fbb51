//! The OpenAPI description against the running API: a request to every documented operation
//! answers with a status it documents, in the shape its schema says.

use lambda_http::http::StatusCode;
use serde_json::Value;
use test_support::RedisServer;

use crate::support::{app, aws_vars, call_raw, pairs, request, seeded_database, unique};

/// `value` against `schema` (types, enums, required properties, items; `$ref`s resolved).
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or_default();
        return conforms(doc, &doc["components"]["schemas"][name], value, at);
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let fits =
        allowed.is_empty() || allowed.contains(&kind) || (kind == "integer" && allowed.contains(&"number"));
    if !fits {
        return Err(format!("{at}: {kind} where the schema says {allowed:?}"));
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            return Err(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if let Value::Object(object) = value {
        for name in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                return Err(format!("{at}: required property {name:?} is missing"));
            }
        }
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(v) = object.get(name) {
                conforms(doc, property, v, &format!("{at}.{name}"))?;
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            conforms(doc, item, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Method and path template (as documented), path, query, body.
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    Option<&'a str>,
);

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let vars = aws_vars(&unique("openapi"));
    let app = app(&redis.url(), &db, &pairs(&vars)).await;
    let store = app.clients().objects().cloned().unwrap();
    store.ensure_bucket().await.unwrap();
    store
        .put("docs/a.txt", b"hello".to_vec(), "text/plain")
        .await
        .unwrap();
    let doc = call_raw(&app, request("GET", "/openapi.json", &[], &[])).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&doc.bytes).unwrap();
    assert_eq!(doc, query_api::openapi::document());

    let review = r#"{"author": "spec", "rating": 4, "body": "conforms"}"#;
    // One request per documented operation, then documented errors of some of them.
    let cases: Vec<Case> = vec![
        ("get", "/", "/", &[], None),
        ("get", "/health", "/health", &[], None),
        ("get", "/cache/health", "/cache/health", &[], None),
        ("get", "/queries", "/queries", &[], None),
        ("get", "/queries/{name}", "/queries/product", &[("id", "3")], None),
        ("get", "/queries/{name}", "/queries/product", &[("id", "3")], None),
        (
            "delete",
            "/cache/queries/{name}",
            "/cache/queries/product",
            &[],
            None,
        ),
        ("delete", "/cache/tags/{tag}", "/cache/tags/products", &[], None),
        (
            "get",
            "/restaurants/{name}/summary",
            "/restaurants/Saffron/summary",
            &[],
            None,
        ),
        (
            "post",
            "/restaurants/{name}/reviews",
            "/restaurants/Saffron/reviews",
            &[],
            Some(review),
        ),
        ("get", "/objects/{key}", "/objects/docs/a.txt", &[], None),
        ("get", "/openapi.json", "/openapi.json", &[], None),
        ("get", "/queries/{name}", "/queries/nope", &[], None),
        ("get", "/queries/{name}", "/queries/product", &[("id", "x")], None),
        (
            "get",
            "/queries/{name}",
            "/queries/product",
            &[("id", "3"), ("source", "database")],
            None,
        ),
        ("delete", "/cache/tags/{tag}", "/cache/tags/nope", &[], None),
        (
            "get",
            "/restaurants/{name}/summary",
            "/restaurants/Nobody/summary",
            &[],
            None,
        ),
        (
            "post",
            "/restaurants/{name}/reviews",
            "/restaurants/Saffron/reviews",
            &[],
            Some("{"),
        ),
        ("get", "/objects/{key}", "/objects/docs/none.txt", &[], None),
    ];
    let mut documented_ops = std::collections::BTreeSet::new();
    for (method, template, path, query, body) in cases {
        let mut req = request(&method.to_ascii_uppercase(), path, query, &[]);
        if let Some(body) = body {
            *req.body_mut() = body.into();
        }
        let reply = call_raw(&app, req).await;
        let operation = &doc["paths"][template][method];
        let status = reply.status.as_u16().to_string();
        let response = &operation["responses"][&status];
        assert!(
            response.is_object(),
            "{method} {path}: status {status} is not documented"
        );
        documented_ops.insert((method, template));
        if let Some(schema) = response["content"]["application/json"].get("schema") {
            let value: Value = serde_json::from_slice(&reply.bytes).unwrap_or_else(|e| {
                panic!(
                    "{method} {path} ({status}): not JSON ({e}): {:?}",
                    reply.header("content-type")
                )
            });
            conforms(&doc, schema, &value, &format!("{method} {path}")).unwrap();
        }
        if response["headers"].get("X-Cache").is_some() {
            assert!(
                ["HIT", "MISS", "STALE", "BYPASS"].contains(&reply.header("x-cache")),
                "{method} {path}: X-Cache {:?}",
                reply.header("x-cache")
            );
        }
    }
    let all: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented_ops.len(),
        all,
        "every documented operation was exercised"
    );
}
