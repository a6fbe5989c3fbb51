//! The query API's HTTP contract against real Redis and PostgreSQL.

use std::time::{Duration, Instant};

use lambda_http::http::StatusCode;
use test_support::RedisServer;

use crate::support::{app, call, dead_url, fixture, get_query, request, seeded_database, sql};

const TOOLS: &[(&str, &str)] = &[("category", "tools"), ("limit", "5")];

#[tokio::test]
async fn miss_then_hit_with_the_same_rows() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;

    let first = call(&app, get_query("products_by_category", TOOLS)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!((first.cache(), first.x_cache()), ("miss", "MISS"));
    assert_eq!(first.body["row_count"], 5);
    assert_eq!(
        first.body["ttl_seconds"].as_u64().map(|t| (54..=60).contains(&t)),
        Some(true)
    );

    let second = call(&app, get_query("products_by_category", TOOLS)).await;
    assert_eq!((second.cache(), second.x_cache()), ("hit", "HIT"));
    assert_eq!(second.body["rows"], first.body["rows"]);
    assert!(second.body["elapsed_ms"].is_number() && second.body["ttl_seconds"].as_u64() <= Some(60));

    // Faithful types: integers, numerics as numbers, timestamps ISO 8601, NULL as null.
    let row = &first.body["rows"][0];
    assert!(row["id"].is_i64() && row["stock"].is_i64(), "{row}");
    assert!(row["price"].is_f64(), "{row}");
    assert!(row["discontinued"].is_boolean());
    assert!(row["created_at"]
        .as_str()
        .is_some_and(|t| t.starts_with("2026-") && t.ends_with('Z')));
    assert_eq!(
        first.body["params"],
        serde_json::json!({"category": "tools", "limit": 5, "max_price": 1000.0})
    );
    let with_null = call(&app, get_query("product", &[("id", "4")])).await;
    assert!(with_null.body["rows"][0]["notes"].is_null(), "{}", with_null.text);

    // Parameters are canonical: the same values spelled differently share the entry.
    let respelled = call(
        &app,
        get_query("products_by_category", &[("limit", "05"), ("category", "tools")]),
    )
    .await;
    assert_eq!(respelled.cache(), "hit");
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("queries.toml");
    std::fs::write(
        &catalog,
        "[[query]]\nname = 'short'\nsql = 'SELECT name FROM products WHERE id = $1'\nttl_seconds = 1\ntags = ['products']\n\
         [[query.params]]\nname = 'id'\ntype = 'int'\n",
    )
    .unwrap();
    let path = catalog.to_string_lossy().into_owned();
    let app = app(
        &redis.url(),
        &db,
        &[("QUERY_CATALOG_PATH", &path), ("CACHE_TTL_JITTER_PERCENT", "0")],
    )
    .await;

    assert_eq!(
        call(&app, get_query("short", &[("id", "1")])).await.cache(),
        "miss"
    );
    let hit = call(&app, get_query("short", &[("id", "1")])).await;
    assert_eq!(hit.cache(), "hit");
    assert_eq!(hit.body["ttl_seconds"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        call(&app, get_query("short", &[("id", "1")])).await.cache(),
        "miss"
    );
}

#[tokio::test]
async fn delete_invalidates_every_parameter_variant() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    let toys = [("category", "toys")];
    call(&app, get_query("products_by_category", TOOLS)).await;
    call(&app, get_query("products_by_category", &toys)).await;
    call(&app, get_query("product", &[("id", "1")])).await;
    assert_eq!(
        call(&app, get_query("products_by_category", TOOLS)).await.cache(),
        "hit"
    );

    let deleted = call(&app, fixture("v2-delete-cache-products")).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(deleted.body["invalidated"]["query"], "products_by_category");

    assert_eq!(
        call(&app, get_query("products_by_category", TOOLS)).await.cache(),
        "miss"
    );
    assert_eq!(
        call(&app, get_query("products_by_category", &toys)).await.cache(),
        "miss"
    );
    assert_eq!(
        call(&app, get_query("product", &[("id", "1")])).await.cache(),
        "hit",
        "other queries keep their entries"
    );

    // A tag drops every query that depends on it, whatever its parameters.
    let by_tag = call(&app, request("DELETE", "/cache/tags/products", &[], &[])).await;
    assert_eq!(by_tag.status, StatusCode::OK, "{}", by_tag.text);
    assert!(
        by_tag.body["invalidated"]["queries"]
            .as_array()
            .is_some_and(|q| q.len() >= 3),
        "{}",
        by_tag.text
    );
    assert_eq!(
        call(&app, get_query("product", &[("id", "1")])).await.cache(),
        "miss"
    );
    let no_tag = call(&app, request("DELETE", "/cache/tags/nothing_here", &[], &[])).await;
    assert_eq!(
        (no_tag.status, no_tag.error_code()),
        (StatusCode::NOT_FOUND, "unknown_tag")
    );

    let unknown = call(&app, request("DELETE", "/cache/queries/nope", &[], &[])).await;
    assert_eq!(
        (unknown.status, unknown.error_code()),
        (StatusCode::NOT_FOUND, "unknown_query")
    );
}

#[tokio::test]
async fn source_database_bypasses_and_no_cache_refreshes() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    let app = app(&redis.url(), &db, &[crate::support::PUBLIC_BYPASS]).await;
    let one = [("id", "3")];
    let first = call(&app, get_query("product", &one)).await;
    assert_eq!(first.cache(), "miss");
    sql(&name, "UPDATE products SET name = 'Renamed' WHERE id = 3");

    let cached = call(&app, get_query("product", &one)).await;
    assert_eq!(
        (cached.cache(), cached.body["rows"][0]["name"].as_str()),
        ("hit", Some("Product 3"))
    );

    let direct = call(&app, get_query("product", &[("id", "3"), ("source", "database")])).await;
    assert_eq!((direct.cache(), direct.x_cache()), ("bypass", "BYPASS"));
    assert_eq!(direct.body["rows"][0]["name"], "Renamed");
    assert!(direct.body["ttl_seconds"].is_null());
    assert_eq!(
        call(&app, get_query("product", &one)).await.cache(),
        "hit",
        "bypass writes nothing"
    );

    let refreshed = call(
        &app,
        request("GET", "/queries/product", &one, &[("cache-control", "no-cache")]),
    )
    .await;
    assert_eq!(
        (refreshed.cache(), refreshed.body["rows"][0]["name"].as_str()),
        ("miss", Some("Renamed"))
    );
    let after = call(&app, get_query("product", &one)).await;
    assert_eq!(
        (after.cache(), after.body["rows"][0]["name"].as_str()),
        ("hit", Some("Renamed"))
    );

    let bad_source = call(&app, get_query("product", &[("id", "3"), ("source", "disk")])).await;
    assert_eq!(
        (bad_source.status, bad_source.error_code()),
        (StatusCode::BAD_REQUEST, "bad_parameter")
    );
}

#[tokio::test]
async fn bad_requests_get_json_errors_naming_the_problem() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    /// (query, parameters, status, error code, text the message must hold)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], StatusCode, &'a str, &'a str);
    let cases: &[Case] = &[
        (
            "no_such_query",
            &[],
            StatusCode::NOT_FOUND,
            "unknown_query",
            "no_such_query",
        ),
        (
            "products_by_category",
            &[],
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            "\"category\": is required",
        ),
        (
            "products_by_category",
            &[("category", "tools"), ("limit", "many")],
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            "\"limit\": must be an integer",
        ),
        (
            "products_by_category",
            &[("category", "tools"), ("limit", "500")],
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            "\"limit\": must be between 1 and 100",
        ),
        (
            "products_by_category",
            &[("category", "food")],
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            "\"category\": must be one of",
        ),
        (
            "products_by_category",
            &[("category", "tools"), ("max_price", "-3")],
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            "\"max_price\"",
        ),
        (
            "product",
            &[("id", "1"), ("sql", "drop table products")],
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            "\"sql\": unknown parameter",
        ),
        (
            "product",
            &[("id", "1"), ("id", "2")],
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            "\"id\": given more than once",
        ),
    ];
    for (name, query, status, code, message) in cases {
        let reply = call(&app, get_query(name, query)).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (*status, *code),
            "{name} {query:?}: {}",
            reply.text
        );
        let text = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{name} {query:?}: {text}");
    }

    let wrong = call(&app, fixture("v2-wrong-method")).await;
    assert_eq!(
        (wrong.status, wrong.error_code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    assert_eq!(
        wrong.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
    let wrong = call(&app, request("GET", "/cache/queries/product", &[], &[])).await;
    assert_eq!(
        wrong.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("DELETE")
    );
    let nowhere = call(&app, request("GET", "/nowhere", &[], &[])).await;
    assert_eq!(
        (nowhere.status, nowhere.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn redis_unreachable_from_the_start_serves_from_the_database() {
    let (_, db) = seeded_database();
    let app = app(&dead_url("redis"), &db, &[]).await;
    for _ in 0..3 {
        let reply = call(&app, get_query("products_by_category", TOOLS)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(
            (reply.cache(), reply.body["bypass_reason"].as_str()),
            ("bypass", Some("redis_unavailable"))
        );
        assert_eq!(reply.body["row_count"], 5);
    }
    let health = call(&app, crate::support::request("GET", "/cache/health", &[], &[])).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(
        (
            health.body["status"].as_str(),
            health.body["redis"]["ok"].as_bool()
        ),
        (Some("degraded"), Some(false))
    );
    assert_eq!(health.body["database"]["ok"], true);
    let delete = call(&app, fixture("v2-delete-cache-products")).await;
    assert_eq!(
        (delete.status, delete.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "cache_unavailable")
    );
}

#[tokio::test]
async fn redis_restart_between_requests_reconnects() {
    let mut redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    assert_eq!(
        call(&app, get_query("product", &[("id", "1")])).await.cache(),
        "miss"
    );
    assert_eq!(
        call(&app, get_query("product", &[("id", "1")])).await.cache(),
        "hit"
    );
    redis.restart();
    // The restarted server is empty: the next read reconnects and misses, it does not bypass.
    let after = call(&app, get_query("product", &[("id", "1")])).await;
    assert_eq!(after.cache(), "miss", "{}", after.text);
    assert_eq!(
        call(&app, get_query("product", &[("id", "1")])).await.cache(),
        "hit"
    );
}

#[tokio::test]
async fn slow_redis_does_not_hold_requests_past_the_budget() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(
        &redis.url(),
        &db,
        &[("REDIS_TIMEOUT_MS", "200"), ("REDIS_BREAKER_COOLDOWN_MS", "500")],
    )
    .await;
    assert_eq!(
        call(&app, get_query("product", &[("id", "2")])).await.cache(),
        "miss"
    );

    let blocked_at = Instant::now();
    let sleepers = redis.block(3);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let slow = call(&app, get_query("product", &[("id", "2")])).await;
    let waited = started.elapsed();
    assert_eq!(slow.status, StatusCode::OK, "{}", slow.text);
    assert_eq!(slow.cache(), "bypass");
    // Redis is blocked for 3 s; the request must come back long before that.
    assert!(waited < Duration::from_millis(2500), "waited {waited:?}");

    for mut sleeper in sleepers {
        let _ = tokio::task::spawn_blocking(move || sleeper.wait()).await;
    }
    tokio::time::sleep((blocked_at + Duration::from_millis(3600)).saturating_duration_since(Instant::now()))
        .await;
    assert_eq!(
        call(&app, get_query("product", &[("id", "2")])).await.cache(),
        "hit",
        "recovers by itself"
    );
}

#[tokio::test]
async fn database_down_with_nothing_cached_is_503_and_cached_results_still_serve() {
    let redis = RedisServer::start();
    let app = app(
        &redis.url(),
        &dead_url("postgres"),
        &[("DB_CONNECT_TIMEOUT_MS", "500")],
    )
    .await;
    let reply = call(&app, get_query("product", &[("id", "1")])).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "origin_unavailable")
    );
    assert!(
        !reply.text.contains("nopassword") && !reply.text.contains("postgres://"),
        "{}",
        reply.text
    );
    let health = call(&app, crate::support::request("GET", "/cache/health", &[], &[])).await;
    assert_eq!(
        (
            health.body["status"].as_str(),
            health.body["database"]["ok"].as_bool()
        ),
        (Some("degraded"), Some(false))
    );

    // Fill the cache through a working database, then read it through the broken one.
    let (_, db) = seeded_database();
    let good = app_for(&redis, &db).await;
    assert_eq!(
        call(&good, get_query("product", &[("id", "1")])).await.cache(),
        "miss"
    );
    let served = call(&app, get_query("product", &[("id", "1")])).await;
    assert_eq!((served.status, served.cache()), (StatusCode::OK, "hit"));
}

async fn app_for(redis: &RedisServer, db: &str) -> query_api::App {
    app(&redis.url(), db, &[]).await
}

#[tokio::test]
async fn every_fixture_gets_its_documented_answer_including_the_slow_query() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    // As the demo runs them: the source-database fixture reads the database directly.
    let app = app(&redis.url(), &db, &[crate::support::PUBLIC_BYPASS]).await;
    let dir = test_support::workspace_path("events/query-api");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    // Reads first (the slow query misses once, then hits), invalidations last.
    names.sort_by_key(|n| (n.contains("delete"), n.clone()));
    let mut slow_states = Vec::new();
    for name in &names {
        // Objects and the MySQL article search need S3 and MariaDB: their own suites use them.
        if (name.contains("object") && !name.contains("bad")) || name.contains("article") {
            continue;
        }
        let reply = call(&app, fixture(name)).await;
        let expected = if name.contains("bad-") {
            StatusCode::BAD_REQUEST
        } else if name.contains("unknown") {
            StatusCode::NOT_FOUND
        } else if name.contains("wrong-method") {
            StatusCode::METHOD_NOT_ALLOWED
        } else if name.contains("-post-") {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        assert_eq!(reply.status, expected, "{name}: {}", reply.text);
        if name.contains("get-slow-version") {
            assert!(reply.body["rows"][0]["version"]
                .as_str()
                .is_some_and(|v| v.starts_with("PostgreSQL")));
            slow_states.push((
                reply.cache().to_owned(),
                reply.body["load_ms"].as_f64().unwrap_or(0.0),
            ));
        }
    }
    assert_eq!(slow_states.len(), 2);
    assert_eq!(slow_states[0].0, "miss");
    assert!(
        slow_states[0].1 >= 5000.0,
        "slow_version loads in 5 s: {slow_states:?}"
    );
    assert_eq!(
        slow_states[1].0, "hit",
        "the second fixture (v2) hits what the first (v1, staged) filled"
    );
}

#[tokio::test]
async fn catalog_and_health_describe_the_service() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    let catalog = call(&app, fixture("v1-list-queries")).await;
    let queries = catalog.body["queries"].as_array().expect("a list");
    let products = queries
        .iter()
        .find(|q| q["name"] == "products_by_category")
        .expect("listed");
    assert_eq!(products["ttl_seconds"], 60);
    assert_eq!(products["params"][2]["name"], "limit");
    assert!(
        queries.iter().all(|q| q.get("sql").is_none()),
        "SQL is never sent to clients"
    );
    let health = call(&app, fixture("v1-health")).await;
    assert_eq!(
        health.body,
        serde_json::json!({"status": "ok"}),
        "{}",
        health.text
    );
    let detail = call(&app, crate::support::request("GET", "/cache/health", &[], &[])).await;
    assert!(detail.body["redis"]["latency_ms"].is_number(), "{}", detail.text);
}
