//! What the public sees: a health route that costs and tells little, pages a browser cannot be
//! turned against, and stored files that never run on the API's origin.

use std::time::Instant;

use lambda_http::http::StatusCode;
use test_support::RedisServer;

use crate::support::{app, aws_vars, call, call_raw, clients, pairs, request, seeded_database, unique};

/// A loopback port that accepts connections and never says a word: a paused database.
fn silent_database() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (
        listener,
        format!("postgres://u:p@127.0.0.1:{port}/db?sslmode=disable"),
    )
}

#[tokio::test]
async fn health_is_bounded_kept_briefly_and_says_only_its_status_in_public() {
    let redis = RedisServer::start();
    let (_listener, db) = silent_database();
    // A pool that would wait 10 s for a connection: the probe gives up long before.
    let app = app(&redis.url(), &db, &[("DB_CONNECT_TIMEOUT_MS", "10000")]).await;

    let started = Instant::now();
    let public = call(&app, request("GET", "/health", &[], &[])).await;
    let took = started.elapsed();
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(
        public.body,
        serde_json::json!({"status": "degraded"}),
        "the status alone"
    );
    assert!(
        took < use_cases::PROBE_BUDGET * 3,
        "a silent database is probed within its budget, not the pool's 10 s: {took:?}"
    );

    app.clients().cache().metrics().take();
    let again = call(&app, request("GET", "/health", &[], &[])).await;
    assert_eq!(again.body["status"], "degraded");
    assert_eq!(
        app.clients().cache().metrics().take().redis_ops,
        0,
        "kept from the last probe: no round trip"
    );

    let detail = call(&app, request("GET", "/cache/health", &[], &[])).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.body["redis"]["ok"], true, "{}", detail.text);
    assert_eq!(detail.body["database"]["ok"], false, "{}", detail.text);
    assert!(!detail.text.contains("bucket") && !detail.text.contains("127.0.0.1"));
}

#[tokio::test]
async fn pages_allow_only_their_own_style_and_script_and_are_never_framed() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    let html = [("accept", "text/html")];
    for path in ["/", "/queries/product"] {
        let page = call_raw(&app, request("GET", path, &[("id", "1")], &html)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let policy = page.header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "script-src 'sha256-",
            "base-uri 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {directive} in {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        assert_eq!(page.header("referrer-policy"), "no-referrer");
        let body = String::from_utf8(page.bytes).unwrap();
        assert!(!body.contains("onclick"), "no inline handlers: {body}");
    }
    let json = call_raw(&app, request("GET", "/queries/product", &[("id", "1")], &[])).await;
    assert_eq!(json.header("x-content-type-options"), "nosniff");

    let slash = call_raw(&app, request("GET", "/queries/product/", &[("id", "2")], &html)).await;
    assert_eq!(
        (slash.status, slash.header("location")),
        (StatusCode::PERMANENT_REDIRECT, "../product?id=2"),
        "a trailing slash redirects, so relative links resolve"
    );
}

#[tokio::test]
async fn objects_a_browser_would_run_are_downloads_in_a_sandbox() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let vars = aws_vars(&unique("active"));
    let app = app(&redis.url(), &db, &pairs(&vars)).await;
    let store = clients(&redis.url(), &db, &pairs(&vars))
        .await
        .objects()
        .cloned()
        .unwrap();
    store.ensure_bucket().await.unwrap();
    let script = b"<script>document.title='owned'</script>".to_vec();
    for (key, kind) in [
        ("x.html", "text/html"),
        ("x.svg", "image/svg+xml"),
        ("x.js", "text/javascript"),
        ("x.txt", "text/plain"),
    ] {
        store.put(key, script.clone(), kind).await.unwrap();
    }
    for round in 0..2 {
        for (key, download) in [
            ("x.html", true),
            ("x.svg", true),
            ("x.js", true),
            ("x.txt", false),
        ] {
            let served = call_raw(&app, request("GET", &format!("/objects/{key}"), &[], &[])).await;
            assert_eq!(served.status, StatusCode::OK, "{key}");
            assert_eq!(served.header("x-content-type-options"), "nosniff", "{key}");
            assert!(
                served.header("content-security-policy").contains("sandbox"),
                "{key}"
            );
            let disposition = served.header("content-disposition");
            assert_eq!(
                disposition == "attachment",
                download,
                "{key} (round {round}, {}): {disposition:?}",
                served.header("x-cache")
            );
        }
    }
}

#[tokio::test]
async fn an_answer_over_the_lambda_response_limit_is_a_413_not_a_502() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let (_dir, catalog) = crate::support::catalog_file(
        "[[query]]\nname = 'wide'\nsql = \"SELECT repeat('x', 1000) AS v FROM generate_series(1, $1)\"\n\
         [[query.params]]\nname = 'n'\ntype = 'int'\n",
    );
    let app = app(&redis.url(), &db, &[("QUERY_CATALOG_PATH", catalog.as_str())]).await;
    let small = call(&app, crate::support::get_query("wide", &[("n", "10")])).await;
    assert_eq!(small.status, StatusCode::OK);
    let huge = call_raw(&app, crate::support::get_query("wide", &[("n", "6000")])).await;
    let body: serde_json::Value = serde_json::from_slice(&huge.bytes).unwrap();
    assert_eq!(
        (huge.status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("result_too_large")),
        "about 6 MB of rows: Lambda would refuse the response"
    );
}

#[tokio::test]
async fn an_object_load_past_the_invocation_budget_is_a_504() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let vars = aws_vars(&unique("late"));
    let app = app(&redis.url(), &db, &pairs(&vars)).await;
    let store = clients(&redis.url(), &db, &pairs(&vars))
        .await
        .objects()
        .cloned()
        .unwrap();
    store.ensure_bucket().await.unwrap();
    store
        .put("late.txt", b"late".to_vec(), "text/plain")
        .await
        .unwrap();
    // An invocation with less time left than the answer reserve: the load is not started.
    let mut context = lambda_http::lambda_runtime::Context::default();
    context.deadline = cache_aside::unix_now_ms() + 100;
    let req =
        lambda_http::RequestExt::with_lambda_context(request("GET", "/objects/late.txt", &[], &[]), context);
    let late = call(&app, req).await;
    assert_eq!(
        (late.status, late.error_code()),
        (StatusCode::GATEWAY_TIMEOUT, "origin_timeout"),
        "{}",
        late.text
    );
}
