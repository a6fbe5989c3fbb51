//! Production hardening of the query API against real Redis and PostgreSQL: hostile names
//! leave no immortal keys, the public cannot push load onto the database, every load ends
//! inside the invocation, and a review's write-through never answers with a stale summary.

use std::time::{Duration, Instant};

use lambda_http::http::StatusCode;
use lambda_http::{Request, RequestExt};
use query_api::App;
use test_support::RedisServer;

use crate::support::{app, call, dead_url, get_query, request, seeded_database, sql, Reply};

/// A catalog with one slow query, `counted(seconds)`, counted by the database.
const COUNTED_CATALOG: &str = "[[query]]
name = 'counted'
sql = 'SELECT counted($1) AS calls'
ttl_seconds = 60
[[query.params]]
name = 'seconds'
type = 'float'
default = 1.0
";

/// `counted(s)` takes a number from a sequence (never rolled back) and sleeps `s` seconds.
fn counted_database() -> String {
    let (name, _) = seeded_database();
    sql(&name, "CREATE SEQUENCE calls");
    sql(
        &name,
        "CREATE FUNCTION counted(s float8) RETURNS bigint LANGUAGE sql VOLATILE AS $$ \
         SELECT pg_sleep(s) FROM (SELECT nextval('calls')) AS counted; SELECT currval('calls') $$",
    );
    name
}

fn executions(db: &str) -> u64 {
    sql(
        db,
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM calls",
    )
    .trim()
    .parse()
    .unwrap()
}

/// The query API over the counted catalog, with `extra` variables.
async fn counted_app(redis_url: &str, db: &str, extra: &[(&str, &str)]) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queries.toml");
    std::fs::write(&path, COUNTED_CATALOG).unwrap();
    let path = path.to_string_lossy().into_owned();
    let url = test_support::Postgres::shared().url(db);
    let mut vars = vec![("QUERY_CATALOG_PATH", path.as_str())];
    vars.extend_from_slice(extra);
    (app(redis_url, &url, &vars).await, dir)
}

/// `req` inside an invocation that ends `budget` from now.
fn within(req: Request, budget: Duration) -> Request {
    let mut context = lambda_http::lambda_runtime::Context::default();
    context.deadline = cache_aside::unix_now_ms() + budget.as_millis() as u64;
    req.with_lambda_context(context)
}

async fn all(app: &App, requests: Vec<Request>) -> Vec<Reply> {
    futures::future::join_all(requests.into_iter().map(|r| call(app, r))).await
}

#[tokio::test]
async fn random_restaurant_names_leave_no_key_without_a_ttl() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    for batch in 0..100 {
        let requests = (0..50)
            .map(|i| {
                let name = format!("nobody-{batch}-{i}-{}", fastrand::u32(..));
                request("GET", &format!("/restaurants/{name}/summary"), &[], &[])
            })
            .collect();
        for reply in all(&app, requests).await {
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
        }
    }
    let mut conn = crate::support::raw_redis(&redis);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("test:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        keys.len() >= 5_000,
        "each name wrote its entry and its counter: {}",
        keys.len()
    );
    let mut immortal = Vec::new();
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap();
        // -2: expired since KEYS listed it (rate buckets live a few seconds).
        if ttl == -1 {
            immortal.push(key.clone());
        }
    }
    assert!(
        immortal.is_empty(),
        "{} keys without a TTL: {:?}",
        immortal.len(),
        &immortal[..immortal.len().min(3)]
    );
    assert!(app.clients().cache().tracked_scopes() <= cache_aside::MAX_TRACKED_SCOPES);
}

#[tokio::test]
async fn without_the_switch_the_public_runs_the_query_at_most_once_per_fill() {
    let redis = RedisServer::start();
    let db = counted_database();
    let (app, _dir) = counted_app(&redis.url(), &db, &[]).await;
    let forced: Vec<Request> = (0..50)
        .map(|_| get_query("counted", &[("source", "database")]))
        .collect();
    for reply in all(&app, forced).await {
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::FORBIDDEN, "bypass_not_allowed")
        );
    }
    assert_eq!(executions(&db), 0, "a refused bypass runs nothing");
    let reloads: Vec<Request> = (0..50)
        .map(|_| request("GET", "/queries/counted", &[], &[("cache-control", "no-cache")]))
        .collect();
    let replies = all(&app, reloads).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    assert_eq!(executions(&db), 1, "50 hard reloads fill the cache once");
    let again = call(
        &app,
        request("GET", "/queries/counted", &[], &[("cache-control", "no-cache")]),
    )
    .await;
    assert_eq!(
        again.cache(),
        "hit",
        "no-cache from the public is served from the cache"
    );
}

#[tokio::test]
async fn with_redis_down_origin_loads_in_flight_never_exceed_the_cap() {
    let db = counted_database();
    let extra = [("CACHE_MAX_ORIGIN_LOADS", "3"), ("DB_MAX_CONNECTIONS", "20")];
    let (app, _dir) = counted_app(&dead_url("redis"), &db, &extra).await;
    let observer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut most = 0;
            let until = Instant::now() + Duration::from_secs(6);
            while Instant::now() < until {
                let active = sql(
                    &db,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND state = 'active' AND query LIKE 'SELECT counted%'",
                );
                most = most.max(active.trim().parse::<u32>().unwrap());
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        })
    };
    let requests = (0..12)
        .map(|_| get_query("counted", &[("seconds", "0.5")]))
        .collect();
    let replies = all(&app, requests).await;
    assert!(replies
        .iter()
        .all(|r| r.status == StatusCode::OK && r.cache() == "bypass"));
    assert_eq!(executions(&db), 12, "Redis down: every request loads");
    let most = observer.join().unwrap();
    assert!((1..=3).contains(&most), "at most 3 loads at once, saw {most}");
}

#[tokio::test]
async fn a_query_slower_than_the_invocation_answers_504_in_time_and_loads_once() {
    let redis = RedisServer::start();
    let db = counted_database();
    // A second kept to answer: loads end 1.5 s in, a full second before the deadline.
    let (app, _dir) = counted_app(&redis.url(), &db, &[("CACHE_ANSWER_RESERVE_MS", "1000")]).await;
    let budget = Duration::from_millis(2_500);
    let started = Instant::now();
    let requests = (0..5)
        .map(|_| within(get_query("counted", &[("seconds", "5")]), budget))
        .collect();
    let replies = all(&app, requests).await;
    let took = started.elapsed();
    for reply in &replies {
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::GATEWAY_TIMEOUT, "origin_timeout"),
            "{}",
            reply.text
        );
    }
    assert!(took < budget, "answered before the deadline: {took:?}");
    assert_eq!(
        executions(&db),
        1,
        "one load while it ran, whatever the waiters' budgets"
    );
}

fn post_review(restaurant: &str, body: &str, headers: &[(&str, &str)]) -> Request {
    let mut req = request(
        "POST",
        &format!("/restaurants/{restaurant}/reviews"),
        &[],
        headers,
    );
    *req.body_mut() = body.into();
    req
}

#[tokio::test]
async fn write_through_refreshes_when_invalidation_fails_and_says_so_when_nothing_works() {
    let mut redis = RedisServer::start();
    let (name, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    let summary = || request("GET", "/restaurants/Juniper/summary", &[], &[]);
    assert_eq!(call(&app, summary()).await.cache(), "miss");
    let mut conn = crate::support::raw_redis(&redis);
    // Invalidation (INCR) fails; reads and writes still work.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-incr")
        .query_async(&mut conn)
        .await
        .unwrap();
    let added = call(
        &app,
        post_review("Juniper", r#"{"author": "a", "rating": 5, "body": "first"}"#, &[]),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(added.body["summary_invalidated"], false);
    let id = added.body["review"]["id"].clone();
    let newest = |reply: &Reply| reply.body["restaurant"]["latest_reviews"][0]["id"].clone();
    let after = call(&app, summary()).await;
    assert_eq!(
        (after.cache(), newest(&after)),
        ("hit", id),
        "the refreshed summary was cached"
    );
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("+incr")
        .query_async(&mut conn)
        .await
        .unwrap();

    // Redis gone: the review is stored, the answer says the summary may be stale.
    redis.stop();
    let blind = call(
        &app,
        post_review(
            "Juniper",
            r#"{"author": "b", "rating": 4, "body": "second"}"#,
            &[],
        ),
    )
    .await;
    assert_eq!(
        (blind.status, blind.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "summary_may_be_stale")
    );
    assert!(blind.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stored"));
    let stored = sql(&name, "SELECT count(*) FROM reviews WHERE body = 'second'");
    assert_eq!(stored.trim(), "1");
}

#[tokio::test]
async fn a_retried_post_with_its_idempotency_key_stores_one_review() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    let body = r#"{"author": "retry", "rating": 3, "body": "once"}"#;
    let key = [("idempotency-key", "client-7f3a")];
    let first = call(&app, post_review("Saffron", body, &key)).await;
    let second = call(&app, post_review("Saffron", body, &key)).await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(first.body["review"]["id"], second.body["review"]["id"]);
    assert_eq!(
        sql(&name, "SELECT count(*) FROM reviews WHERE body = 'once'").trim(),
        "1"
    );
    // The key names one request: another review, or another restaurant, is refused (before,
    // another restaurant got Saffron's review back).
    let other_body = r#"{"author": "retry", "rating": 4, "body": "twice"}"#;
    for (restaurant, body) in [("Saffron", other_body), ("Juniper", body)] {
        let reused = call(&app, post_review(restaurant, body, &key)).await;
        assert_eq!(
            (reused.status, reused.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            "{restaurant}: {}",
            reused.text
        );
    }
    assert_eq!(
        sql(&name, "SELECT count(*) FROM reviews WHERE author = 'retry'").trim(),
        "1",
        "nothing more was stored"
    );
    let without_key = call(&app, post_review("Saffron", body, &[])).await;
    assert_ne!(without_key.body["review"]["id"], first.body["review"]["id"]);
    let long_key = "k".repeat(200);
    let refused = call(
        &app,
        post_review("Saffron", body, &[("idempotency-key", &long_key)]),
    )
    .await;
    assert_eq!(refused.error_code(), "bad_parameter");
    assert!(refused.text.contains("Idempotency-Key"), "{}", refused.text);
}

#[tokio::test]
async fn oversized_results_are_refused_or_served_uncached_and_say_so() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let (_dir, catalog) = crate::support::catalog_file(
        "[[query]]\nname = 'series'\nsql = 'SELECT g FROM generate_series(1, $1) AS g'\n\
         max_rows = 100\nmax_cached_bytes = 300\n\
         [[query.params]]\nname = 'n'\ntype = 'int'\n",
    );
    let app = app(&redis.url(), &db, &[("QUERY_CATALOG_PATH", catalog.as_str())]).await;
    let small = call(&app, get_query("series", &[("n", "3")])).await;
    assert_eq!((small.cache(), small.body.get("cache_skipped")), ("miss", None));
    assert_eq!(
        call(&app, get_query("series", &[("n", "3")])).await.cache(),
        "hit"
    );
    for _ in 0..2 {
        let wide = call(&app, get_query("series", &[("n", "80")])).await;
        assert_eq!(
            (
                wide.status,
                wide.cache(),
                wide.body["cache_skipped"].as_str(),
                wide.body["row_count"].as_u64()
            ),
            (StatusCode::OK, "miss", Some("too_large"), Some(80)),
            "served in full, never stored"
        );
        assert_eq!(wide.headers["x-cache-skipped"], "too-large");
    }
    let too_many = call(&app, get_query("series", &[("n", "5000")])).await;
    assert_eq!(
        (too_many.status, too_many.error_code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "result_too_large")
    );
}

#[tokio::test]
async fn objects_too_large_to_serve_are_a_cached_413_and_never_read() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let vars = crate::support::aws_vars(&crate::support::unique("large"));
    let mut extra = crate::support::pairs(&vars);
    extra.extend([
        ("OBJECTS_MAX_SERVE_BYTES", "2000"),
        ("CACHE_OBJECT_MAX_BYTES", "1000"),
    ]);
    let app = app(&redis.url(), &db, &extra).await;
    let store = app.clients().objects().cloned().unwrap();
    store.ensure_bucket().await.unwrap();
    store
        .put("huge.bin", vec![1u8; 50_000], "application/octet-stream")
        .await
        .unwrap();
    store
        .put("mid.bin", vec![2u8; 1500], "application/octet-stream")
        .await
        .unwrap();
    let get = |path: &str| request("GET", path, &[], &[]);
    let first = call(&app, get("/objects/huge.bin")).await;
    assert_eq!(
        (first.status, first.error_code(), first.x_cache()),
        (StatusCode::PAYLOAD_TOO_LARGE, "object_too_large", "MISS")
    );
    assert!(first.text.contains("50000 bytes"), "{}", first.text);
    let second = call(&app, get("/objects/huge.bin")).await;
    assert_eq!(
        (second.status, second.x_cache()),
        (StatusCode::PAYLOAD_TOO_LARGE, "HIT"),
        "the decision is cached"
    );
    let mid = crate::support::call_raw(&app, get("/objects/mid.bin")).await;
    assert_eq!(
        (mid.status, mid.header("x-cache-skipped")),
        (StatusCode::OK, "too-large"),
        "served, not cached"
    );
    assert_eq!(mid.bytes.len(), 1500);
}

#[tokio::test]
async fn a_cached_summary_that_is_not_a_row_list_is_replaced_not_a_500() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    let summary = || request("GET", "/restaurants/Saffron/summary", &[], &[]);
    assert_eq!(call(&app, summary()).await.cache(), "miss");
    let mut conn = crate::support::raw_redis(&redis);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("test:v1:{q:restaurant_summary:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let now = cache_aside::unix_now_ms();
    let damaged = serde_json::json!({
        "v": 1, "created_ms": now, "fresh_until_ms": now + 900_000, "load_ms": 1,
        "value": {"row_count": 1, "rows": {"not": "a list"}},
    });
    let _: () = redis::cmd("SET")
        .arg(&keys[0])
        .arg(damaged.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    let repaired = call(&app, summary()).await;
    assert_eq!(
        (repaired.status, repaired.cache()),
        (StatusCode::OK, "miss"),
        "{}",
        repaired.text
    );
    assert_eq!(repaired.body["restaurant"]["name"], "Saffron");
    assert_eq!(
        call(&app, summary()).await.cache(),
        "hit",
        "the entry was overwritten"
    );
}

/// A stored review is answered as stored: when its summary cannot be reloaded (here the
/// summary query fails), the answer is 201 with `summary_fresh: false`, never an origin error
/// that would invite the client to post again.
#[tokio::test]
async fn a_stored_review_whose_summary_cannot_be_reloaded_is_still_201() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    let bundled =
        std::fs::read_to_string(test_support::workspace_path("shared/query-catalog/queries.toml")).unwrap();
    let broken = bundled.replace("WHERE r.name = $1", "WHERE r.name = $1 AND no_such_column > 0");
    assert_ne!(broken, bundled, "the summary query was found");
    let (_dir, catalog) = crate::support::catalog_file(&broken);
    let app = app(&redis.url(), &db, &[("QUERY_CATALOG_PATH", catalog.as_str())]).await;
    let posted = call(
        &app,
        post_review("Saffron", r#"{"author": "s", "rating": 5, "body": "kept"}"#, &[]),
    )
    .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    assert_eq!(
        (
            posted.body["summary_invalidated"].as_bool(),
            posted.body["summary_fresh"].as_bool(),
            posted.body["summary"].is_null()
        ),
        (Some(true), Some(false), true),
        "{}",
        posted.text
    );
    assert_eq!(posted.body["review"]["body"], "kept");
    assert_eq!(
        sql(&name, "SELECT count(*) FROM reviews WHERE body = 'kept'").trim(),
        "1"
    );
}
