//! The OpenAPI 3.1 description of this API, served at `GET /openapi.json` and committed as
//! `functions/query-api/openapi.json`. Tests keep it from drifting: every route and every error
//! code of the code appears in it, the committed file equals it, and a request to every
//! documented operation answers with a documented status and shape.

use serde_json::{json, Map, Value};

/// Every error the API answers, as (HTTP status, code, when). `error.rs` builds them; a test
/// checks that it builds no other.
pub const ERRORS: &[(u16, &str, &str)] = &[
    (
        400,
        "bad_parameter",
        "a missing, unknown, repeated, ill-typed or out-of-range parameter",
    ),
    (400, "bad_key", "an object key that cannot exist"),
    (
        400,
        "bad_body",
        "a body that is not the JSON object the route takes",
    ),
    (403, "bypass_not_allowed", "?source= while public bypass is off"),
    (404, "not_found", "no such route"),
    (404, "unknown_query", "no query of that name"),
    (404, "unknown_tag", "no query depends on that tag"),
    (404, "restaurant_not_found", "no restaurant of that name"),
    (404, "object_not_found", "no such object (cached briefly)"),
    (
        401,
        "unauthenticated",
        "a review without the identity REVIEWS_AUTH requires",
    ),
    (405, "method_not_allowed", "wrong method (see Allow)"),
    (413, "payload_too_large", "a body over 64 KiB"),
    (413, "result_too_large", "more rows than the query's max_rows"),
    (
        413,
        "object_too_large",
        "an object over the serving limit (cached)",
    ),
    (
        422,
        "idempotency_key_reused",
        "the Idempotency-Key was used for another restaurant or review",
    ),
    (
        429,
        "rate_limited",
        "the author's budget of reviews is spent (see Retry-After)",
    ),
    (500, "origin_error", "the database rejected the query"),
    (500, "internal", "a bug; details in the log"),
    (
        503,
        "origin_unavailable",
        "the origin is down or busy and nothing usable is cached",
    ),
    (
        503,
        "origin_busy",
        "the origin's fleet-wide load budget is spent and nothing usable is cached (see Retry-After)",
    ),
    (503, "objects_unavailable", "no bucket is configured"),
    (503, "cache_unavailable", "Redis is down: nothing was invalidated"),
    (
        503,
        "summary_may_be_stale",
        "the review was stored but the cached summary could not be refreshed",
    ),
    (
        504,
        "origin_timeout",
        "the origin did not answer within the request's budget",
    ),
];

/// One documented operation: method, path template, summary, what it answers.
struct Operation {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    parameters: Vec<Value>,
    body: Option<Value>,
    ok: (u16, Value),
    errors: &'static [&'static str],
}

/// The operations, in the order of the route table in docs/http-api.md.
fn operations() -> Vec<Operation> {
    let path_param = |name: &str, what: &str| json!({"name": name, "in": "path", "required": true, "description": what, "schema": {"type": "string"}});
    let source = |origin: &str| {
        json!({"name": "source", "in": "query", "required": false,
               "description": format!("`{origin}` reads the origin directly (only with CACHE_PUBLIC_BYPASS=true; else 403)"),
               "schema": {"type": "string", "enum": [origin, "cache"]}})
    };
    let no_cache = json!({"name": "Cache-Control", "in": "header", "required": false,
        "description": "`no-cache` reloads the origin and refreshes the cache (only with CACHE_PUBLIC_BYPASS=true; else served from the cache)",
        "schema": {"type": "string"}});
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    vec![
        Operation {
            method: "get",
            path: "/",
            summary: "The demo pages' index: a link to each query's page.",
            parameters: vec![],
            body: None,
            ok: (200, json!({"type": "string"})),
            errors: &[],
        },
        Operation {
            method: "get",
            path: "/health",
            summary: "The service's status alone (always 200; probes kept 5 s per instance).",
            parameters: vec![],
            body: None,
            ok: (200, schema("Health")),
            errors: &[],
        },
        Operation {
            method: "get",
            path: "/cache/health",
            summary: "The state of Redis, of every database and of the restaurant table (admin; IAM-signed in AWS).",
            parameters: vec![],
            body: None,
            ok: (200, schema("HealthDetail")),
            errors: &[],
        },
        Operation {
            method: "get",
            path: "/queries",
            summary: "The catalog: every named query with its parameters, tags and TTL (never its SQL).",
            parameters: vec![],
            body: None,
            ok: (200, schema("Catalog")),
            errors: &[],
        },
        Operation {
            method: "get",
            path: "/queries/{name}",
            summary: "Runs a named query through the cache; its parameters go in the query string. \
                      A browser (Accept: text/html first) gets the same answer as a page.",
            parameters: vec![
                path_param("name", "A query name from GET /queries."),
                json!({"name": "params", "in": "query", "required": false, "style": "form", "explode": true,
                       "description": "The query's own parameters, by name (see GET /queries).",
                       "schema": {"type": "object", "additionalProperties": {"type": "string"}}}),
                source("database"),
                no_cache.clone(),
            ],
            body: None,
            ok: (200, schema("QueryResult")),
            errors: &[
                "bad_parameter",
                "bypass_not_allowed",
                "unknown_query",
                "result_too_large",
                "origin_error",
                "origin_unavailable",
                "origin_busy",
                "origin_timeout",
            ],
        },
        Operation {
            method: "delete",
            path: "/cache/queries/{name}",
            summary: "Drops every cached variant of a query (admin; IAM-signed in AWS).",
            parameters: vec![path_param("name", "A query name.")],
            body: None,
            ok: (200, schema("Invalidated")),
            errors: &["unknown_query", "cache_unavailable"],
        },
        Operation {
            method: "delete",
            path: "/cache/tags/{tag}",
            summary: "Drops every cached result of the queries tagged `tag` (admin; IAM-signed in AWS).",
            parameters: vec![path_param("tag", "A data tag, usually a table.")],
            body: None,
            ok: (200, schema("Invalidated")),
            errors: &["unknown_tag", "cache_unavailable"],
        },
        Operation {
            method: "get",
            path: "/restaurants/{name}/summary",
            summary: "A restaurant with its rating and 5 newest reviews, cached 900 s.",
            parameters: vec![
                path_param("name", "The restaurant's name."),
                source("database"),
                no_cache.clone(),
            ],
            body: None,
            ok: (200, schema("Summary")),
            errors: &[
                "bad_parameter",
                "bypass_not_allowed",
                "restaurant_not_found",
                "origin_unavailable",
                "origin_busy",
                "origin_timeout",
            ],
        },
        Operation {
            method: "post",
            path: "/restaurants/{name}/reviews",
            summary: "Stores a review and refreshes the restaurant's summary (write-through).",
            parameters: vec![
                path_param("name", "The restaurant's name."),
                json!({"name": "Idempotency-Key", "in": "header", "required": false,
                       "description": "A retry with the same key stores nothing new and answers the same review.",
                       "schema": {"type": "string", "maxLength": 128}}),
            ],
            body: Some(schema("ReviewIn")),
            ok: (201, schema("ReviewAdded")),
            errors: &[
                "bad_body",
                "bad_parameter",
                "restaurant_not_found",
                "unauthenticated",
                "idempotency_key_reused",
                "rate_limited",
                "payload_too_large",
                "origin_unavailable",
                "origin_timeout",
                "summary_may_be_stale",
            ],
        },
        Operation {
            method: "get",
            path: "/objects/{key}",
            summary: "An S3 object's exact bytes, from Redis else S3 (then cached).",
            parameters: vec![
                path_param("key", "The object key (may hold /)."),
                source("s3"),
                no_cache,
            ],
            body: None,
            ok: (
                200,
                json!({"type": "string", "contentMediaType": "application/octet-stream"}),
            ),
            errors: &[
                "bad_key",
                "bypass_not_allowed",
                "object_not_found",
                "object_too_large",
                "objects_unavailable",
                "origin_unavailable",
                "origin_busy",
                "origin_timeout",
            ],
        },
        Operation {
            method: "get",
            path: "/openapi.json",
            summary: "This description.",
            parameters: vec![],
            body: None,
            ok: (200, json!({"type": "object"})),
            errors: &[],
        },
    ]
}

/// The statuses an error code answers with.
fn status_of(code: &str) -> u16 {
    ERRORS
        .iter()
        .find(|(_, c, _)| *c == code)
        .map_or(500, |(s, _, _)| *s)
}

fn responses(op: &Operation) -> Value {
    let mut responses = Map::new();
    let cached = op.path.starts_with("/queries/")
        || op.path.starts_with("/restaurants/")
        || op.path.starts_with("/objects/");
    let mut ok = json!({"description": "Success."});
    let media = match op.path {
        "/" => "text/html",
        p if p.starts_with("/objects/") => "*/*",
        _ => "application/json",
    };
    let mut content = Map::new();
    content.insert(media.to_owned(), json!({"schema": op.ok.1}));
    if op.path == "/queries/{name}" {
        content.insert("text/html".to_owned(), json!({"schema": {"type": "string"}}));
    }
    ok["content"] = Value::Object(content);
    if cached && op.method == "get" {
        ok["headers"] = json!({"X-Cache": {"$ref": "#/components/headers/X-Cache"}});
    }
    responses.insert(op.ok.0.to_string(), ok);
    let mut by_status: std::collections::BTreeMap<u16, Vec<&str>> = Default::default();
    let always = ["method_not_allowed", "internal"];
    for code in op.errors.iter().chain(&always) {
        by_status.entry(status_of(code)).or_default().push(code);
    }
    for (status, codes) in by_status {
        let mut error = json!({
            "description": codes.join(", "),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        });
        if codes
            .iter()
            .any(|c| ["object_not_found", "object_too_large"].contains(c))
        {
            error["headers"] = json!({"X-Cache": {"$ref": "#/components/headers/X-Cache"}});
        }
        responses.insert(status.to_string(), error);
    }
    Value::Object(responses)
}

fn schemas() -> Value {
    let cache = json!({"type": "string", "enum": ["hit", "miss", "stale", "bypass"]});
    let seconds = json!({"type": ["integer", "null"], "minimum": 0});
    let tier = json!({"type": ["string", "null"], "enum": ["memory", "redis", null]});
    let codes: Vec<&str> = ERRORS.iter().map(|(_, c, _)| *c).collect();
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "enum": codes}, "message": {"type": "string"}}}},
        },
        "Probe": {"type": "object", "required": ["ok"], "properties": {
            "ok": {"type": "boolean"}, "latency_ms": {"type": "number"}, "name": {"type": "string"}}},
        "Health": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]}}},
        "HealthDetail": {"type": "object", "required": ["status", "redis", "databases", "objects"], "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
            "redis": {"$ref": "#/components/schemas/Probe"},
            "databases": {"type": "array", "items": {"$ref": "#/components/schemas/Probe"}},
            "database": {"$ref": "#/components/schemas/Probe"},
            "restaurant_table": {"$ref": "#/components/schemas/Probe"},
            "objects": {"type": "object", "properties": {"configured": {"type": "boolean"}}}}},
        "Catalog": {"type": "object", "required": ["queries"], "properties": {"queries": {"type": "array", "items": {
            "type": "object", "required": ["name", "ttl_seconds", "tags", "tables", "params"], "properties": {
                "name": {"type": "string"}, "description": {"type": "string"}, "database": {"type": "string"},
                "ttl_seconds": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}},
                "tables": {"type": "array", "items": {"type": "string"},
                           "description": "The tables its SQL reads, derived at start-up (views expanded)."},
                "params": {"type": "array", "items": {"type": "object"}}}}}}},
        "QueryResult": {"type": "object",
            "required": ["query", "params", "rows", "row_count", "cache", "elapsed_ms", "ttl_seconds", "loaded_at", "load_ms"],
            "properties": {
                "query": {"type": "string"}, "params": {"type": "object"},
                "rows": {"type": "array", "items": {"type": "object"}}, "row_count": {"type": "integer"},
                "cache": cache, "tier": tier, "bypass_reason": {"type": "string", "enum": ["requested", "redis_unavailable"]},
                "cache_skipped": {"type": "string", "enum": ["too_large"]},
                "elapsed_ms": {"type": "number"}, "ttl_seconds": seconds, "loaded_at": {"type": "string"},
                "load_ms": {"type": "number"}}},
        "Invalidated": {"type": "object", "required": ["invalidated", "generation"], "properties": {
            "invalidated": {"type": "object"}, "generation": {"type": "integer"}}},
        "Summary": {"type": "object", "required": ["restaurant", "cache", "elapsed_ms", "ttl_seconds", "loaded_at"], "properties": {
            "restaurant": {"type": "object", "required": ["name", "latest_reviews"]},
            "cache": cache, "tier": tier, "elapsed_ms": {"type": "number"}, "ttl_seconds": seconds, "loaded_at": {"type": "string"}}},
        "ReviewIn": {"type": "object", "required": ["author", "rating", "body"], "additionalProperties": false, "properties": {
            "author": {"type": "string", "minLength": 1, "maxLength": 256},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "body": {"type": "string", "minLength": 1, "maxLength": 2000}}},
        "ReviewAdded": {"type": "object", "required": ["review", "summary", "cache", "summary_invalidated", "summary_fresh"], "properties": {
            "review": {"type": "object", "required": ["id", "author", "rating", "body", "created_at"]},
            "summary": {"type": ["object", "null"]},
            "cache": {"type": ["string", "null"], "enum": ["hit", "miss", "stale", "bypass", null]},
            "summary_invalidated": {"type": "boolean"},
            "summary_fresh": {"type": "boolean"}}},
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in operations() {
        let mut operation = json!({"summary": op.summary, "responses": responses(&op)});
        if !op.parameters.is_empty() {
            operation["parameters"] = Value::Array(op.parameters.clone());
        }
        if let Some(body) = &op.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        if op.path.starts_with("/cache/") {
            operation["security"] = json!([{"iam": []}]);
        }
        let item = paths.entry(op.path).or_insert_with(|| json!({}));
        item[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cache-aside query API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Named queries, restaurant summaries and S3 objects through Redis, with cache administration. \
                            Every error is {\"error\": {\"code\", \"message\"}}; X-Cache says where an answer came from.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "headers": {"X-Cache": {"description": "Where the answer came from.",
                "schema": {"type": "string", "enum": ["HIT", "MISS", "STALE", "BYPASS"]}}},
            "securitySchemes": {"iam": {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "AWS SigV4 (API Gateway AWS_IAM authorization)"}},
        },
    })
}

/// The documented (method, path template) pairs, for drift tests.
pub fn documented_operations() -> Vec<(&'static str, &'static str, Vec<u16>)> {
    operations()
        .iter()
        .map(|op| {
            let statuses = responses(op)
                .as_object()
                .map(|r| r.keys().filter_map(|k| k.parse().ok()).collect())
                .unwrap_or_default();
            (op.method, op.path, statuses)
        })
        .collect()
}
