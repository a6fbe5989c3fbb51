//! Objects: the ingester seeds S3 (moto) and Redis; `GET /objects/{key}` serves them cache-aside.

use std::time::Duration;

use lambda_http::http::StatusCode;
use serde_json::json;
use test_support::RedisServer;

use crate::support::{
    app, aws_vars, call, call_raw, clients, pairs, raw_redis, request, seeded_database, unique,
};

async fn redis_bytes(redis: &RedisServer, key: &str) -> Option<Vec<u8>> {
    let mut conn = raw_redis(redis);
    redis::cmd("HGET")
        .arg(format!("test:obj:{{{key}}}"))
        .arg("b")
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn ingested_objects_are_identical_in_s3_and_redis_and_a_rerun_changes_nothing() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let vars = aws_vars(&unique("ingest"));
    let clients = clients(&redis.url(), &db, &pairs(&vars)).await;
    let store = clients.objects().cloned().expect("bucket configured");
    let ingester = ingester::Ingester::new(clients);

    let job = json!({"objects": {"count": 1500, "min_bytes": 200, "max_bytes": 400, "prefix": "filename"}});
    let first = ingester.handle(job.clone()).await.unwrap();
    assert_eq!(first["objects"]["s3_written"], 1500, "{first}");
    assert_eq!(first["objects"]["redis_written"], 1500, "{first}");
    for i in (0..1500).step_by(37).chain([0, 1499]) {
        let key = format!("filename{i}.txt");
        let aws_clients::Fetched::Object(s3) = store.get(&key, u64::MAX).await.unwrap() else {
            panic!("{key} is in S3")
        };
        assert!((200..=400).contains(&s3.bytes.len()));
        assert_eq!(s3.content_type, "text/plain; charset=utf-8");
        assert_eq!(
            redis_bytes(&redis, &key).await.as_deref(),
            Some(s3.bytes.as_slice()),
            "{key}"
        );
    }
    let etags_before = store.etags("filename").await.unwrap();
    assert_eq!(etags_before.len(), 1500, "two listing pages");

    let app = app(&redis.url(), &db, &pairs(&vars)).await;
    let served = call_raw(&app, crate::support::fixture("v2-get-object")).await;
    assert_eq!(
        (served.status, served.header("x-cache")),
        (StatusCode::OK, "HIT"),
        "ingested objects are cached"
    );
    assert_eq!(Some(served.bytes), redis_bytes(&redis, "filename1.txt").await);
    let staged = call_raw(&app, crate::support::fixture("v1-get-object")).await;
    assert_eq!((staged.status, staged.header("x-cache")), (StatusCode::OK, "HIT"));
    let missing = call(&app, crate::support::fixture("v2-get-object-missing")).await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::NOT_FOUND, "object_not_found")
    );

    let again = ingester.handle(job).await.unwrap();
    assert_eq!(
        (
            again["objects"]["s3_written"].as_u64(),
            again["objects"]["s3_unchanged"].as_u64()
        ),
        (Some(0), Some(1500))
    );
    assert_eq!(
        store.etags("filename").await.unwrap(),
        etags_before,
        "nothing rewritten"
    );
}

#[tokio::test]
async fn objects_are_served_from_redis_else_s3_then_cached() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let vars = aws_vars(&unique("serve"));
    let mut extra = pairs(&vars);
    extra.extend([
        ("CACHE_OBJECT_MAX_BYTES", "1000"),
        ("CACHE_OBJECT_MISSING_TTL_SECONDS", "1"),
        crate::support::PUBLIC_BYPASS,
    ]);
    let app = app(&redis.url(), &db, &extra).await;
    let store = clients(&redis.url(), &db, &pairs(&vars))
        .await
        .objects()
        .cloned()
        .unwrap();
    store.ensure_bucket().await.unwrap();
    store
        .put(
            "docs/a b.json",
            br#"{"hello":"world"}"#.to_vec(),
            "application/json",
        )
        .await
        .unwrap();
    store
        .put("big.bin", vec![7u8; 5000], "application/octet-stream")
        .await
        .unwrap();

    let get = |path: &str| request("GET", path, &[], &[]);
    let first = call_raw(&app, get("/objects/docs/a%20b.json")).await;
    assert_eq!((first.status, first.header("x-cache")), (StatusCode::OK, "MISS"));
    assert_eq!(
        (first.header("content-type"), first.bytes.as_slice()),
        ("application/json", br#"{"hello":"world"}"#.as_slice())
    );
    let second = call_raw(&app, get("/objects/docs/a%20b.json")).await;
    assert_eq!(
        (second.header("x-cache"), second.bytes.as_slice()),
        ("HIT", first.bytes.as_slice())
    );
    assert_eq!(second.header("content-type"), "application/json");
    let direct = call_raw(
        &app,
        request("GET", "/objects/docs/a%20b.json", &[("source", "s3")], &[]),
    )
    .await;
    assert_eq!(
        (direct.status, direct.header("x-cache")),
        (StatusCode::OK, "BYPASS")
    );

    // Too large to cache: served every time, never cached.
    for _ in 0..2 {
        let big = call_raw(&app, get("/objects/big.bin")).await;
        assert_eq!(
            (big.status, big.header("x-cache"), big.bytes.len()),
            (StatusCode::OK, "MISS", 5000)
        );
        assert_eq!(big.header("x-cache-skipped"), "too-large");
    }

    // Missing: 404 JSON, negatively cached for a short while.
    let missing = call(&app, get("/objects/late.txt")).await;
    assert_eq!(
        (missing.status, missing.error_code(), missing.x_cache()),
        (StatusCode::NOT_FOUND, "object_not_found", "MISS")
    );
    store
        .put("late.txt", b"now here".to_vec(), "text/plain")
        .await
        .unwrap();
    let cached_missing = call(&app, get("/objects/late.txt")).await;
    assert_eq!(
        (cached_missing.status, cached_missing.x_cache()),
        (StatusCode::NOT_FOUND, "HIT")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let found = call_raw(&app, get("/objects/late.txt")).await;
    assert_eq!(
        (found.status, found.bytes.as_slice()),
        (StatusCode::OK, b"now here".as_slice())
    );

    for bad in ["/objects/a//b", "/objects/%ff", "/objects/../etc/passwd"] {
        let reply = call(&app, get(bad)).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::BAD_REQUEST, "bad_key"),
            "{bad}"
        );
    }
    let post = call(&app, request("POST", "/objects/x.txt", &[], &[])).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn without_a_bucket_objects_are_unavailable_and_bad_ingester_payloads_are_explained() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    let reply = call(&app, request("GET", "/objects/x.txt", &[], &[])).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "objects_unavailable")
    );

    let ingester = ingester::Ingester::new(clients(&redis.url(), &db, &[]).await);
    let cases = [
        (
            json!({"objects": {"count": 5}}),
            "OBJECTS_BUCKET is not configured",
        ),
        (json!({"objects": {"count": 0}}), "count must be 1..=100000"),
        (
            json!({"objects": {"count": 5, "min_bytes": 9, "max_bytes": 3}}),
            "min <= max",
        ),
        (json!({"objects": "two hundred"}), "accepted payloads"),
        (json!({"dataset": "cities"}), "unknown dataset"),
        (json!({"dataset": "articles", "rows": 0}), "rows must be"),
        (
            json!({"warm": ["slow_version"], "objects": {"count": 1}}),
            "exactly one",
        ),
        (json!({}), "nothing to do"),
    ];
    for (payload, expected) in cases {
        let e = ingester.handle(payload.clone()).await.unwrap_err().to_string();
        assert!(e.contains(expected), "{payload}: {e}");
    }
}
