//! The ingester and invalidator handlers with the `events/` payloads, against real services.

use cache_aside::{Cache, CacheSettings};
use ingester::Ingester;
use query_catalog::Catalog;
use serde_json::json;
use test_support::RedisServer;
use use_cases::Invalidation;

use crate::support::{app, call, clients, get_query, payload, seeded_database};

fn cache(redis: &RedisServer) -> Cache {
    // Same namespace as the query API built by `support::app`, so both see the same entries.
    let settings = CacheSettings {
        namespace: "test".into(),
        ..CacheSettings::default()
    };
    Cache::connect_lazy(redis.url(), settings).expect("cache")
}

#[tokio::test]
async fn invalidator_drops_queries_and_tags_the_api_then_reloads() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let api = app(&redis.url(), &db, &[]).await;
    let catalog = Catalog::load(None).unwrap();
    let cache = cache(&redis);
    let tools = [("category", "tools")];
    for _ in 0..2 {
        call(&api, get_query("products_by_category", &tools)).await;
        call(&api, get_query("category_summary", &[])).await;
    }
    assert_eq!(
        call(&api, get_query("category_summary", &[])).await.cache(),
        "hit"
    );

    let by_query = invalidator::handle(
        Invalidation::new(&cache, &catalog),
        payload("invalidator/direct-queries"),
    )
    .await
    .unwrap();
    assert!(
        by_query["invalidated"]["query:products_by_category"].is_u64(),
        "{by_query}"
    );
    assert_eq!(
        call(&api, get_query("products_by_category", &tools))
            .await
            .cache(),
        "miss"
    );
    assert_eq!(
        call(&api, get_query("category_summary", &[])).await.cache(),
        "hit"
    );

    invalidator::handle(
        Invalidation::new(&cache, &catalog),
        payload("invalidator/direct-tags"),
    )
    .await
    .unwrap();
    assert_eq!(
        call(&api, get_query("category_summary", &[])).await.cache(),
        "miss",
        "tag products covers it"
    );
    assert_eq!(
        call(&api, get_query("slow_version", &[("source", "cache")]))
            .await
            .status
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn invalidator_refuses_bad_payloads_clearly() {
    let redis = RedisServer::start();
    let catalog = Catalog::load(None).unwrap();
    let cache = cache(&redis);
    let bad = invalidator::handle(
        Invalidation::new(&cache, &catalog),
        payload("invalidator/bad-payload"),
    )
    .await
    .unwrap_err();
    assert!(bad.to_string().contains("accepted events"), "{bad}");
    let empty = invalidator::handle(Invalidation::new(&cache, &catalog), json!({}))
        .await
        .unwrap_err();
    assert!(empty.to_string().contains("nothing to invalidate"), "{empty}");
    let unknown = invalidator::handle(Invalidation::new(&cache, &catalog), json!({"queries": ["nope"]}))
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("\"nope\""), "{unknown}");
    let no_redis = Cache::connect_lazy(crate::support::dead_url("redis"), CacheSettings::default()).unwrap();
    let down = invalidator::handle(
        Invalidation::new(&no_redis, &catalog),
        json!({"tags": ["products"]}),
    )
    .await
    .unwrap_err();
    assert!(down.to_string().contains("invalidation failed"), "{down}");
}

#[tokio::test]
async fn ingester_warms_queries_so_the_first_read_hits() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let api = app(&redis.url(), &db, &[]).await;
    let ingester = Ingester::new(clients(&redis.url(), &db, &[]).await);
    let report = ingester
        .handle(json!({"warm": ["category_summary"]}))
        .await
        .unwrap();
    assert_eq!(report["warmed"][0]["rows"], 5, "{report}");
    assert_eq!(
        call(&api, get_query("category_summary", &[])).await.cache(),
        "hit"
    );

    let needs_params = ingester
        .handle(json!({"warm": ["category_summary", "product"]}))
        .await
        .unwrap_err();
    let text = needs_params.to_string();
    assert!(
        text.contains("\"product\"") && text.contains("\"id\": is required"),
        "{text}"
    );
    assert!(
        text.contains("warmed before it: [\"category_summary\"]"),
        "{text}"
    );
    let bad = ingester
        .handle(payload("ingester/bad-payload"))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("accepted payloads"), "{bad}");
}

#[tokio::test]
async fn the_demo_dataset_seeds_an_empty_postgres_database_and_refuses_mysql() {
    let redis = RedisServer::start();
    let db = crate::support::unique("empty");
    let empty = test_support::Postgres::shared().create_database(&db, &[]);
    let articles = test_support::MariaDb::shared().create_database(&crate::support::unique("demo_my"));
    let extra = [("DATABASE_URL_ARTICLES", articles.as_str())];
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:demo-invalidator";
    let ingester =
        Ingester::new(clients(&redis.url(), &empty, &extra).await).with_invalidator_arn(Some(arn.into()));
    for round in 0..2 {
        let report = ingester.handle(json!({"dataset": "demo"})).await.unwrap();
        assert_eq!(
            report["databases"]["main"]["engine"], "postgres",
            "round {round}: {report}"
        );
    }
    // The triggers are attached and aimed at the invalidator; without the aws_lambda extension
    // (as here) a write still succeeds, its event going out with pg_notify.
    let target = crate::support::sql(&db, "SELECT function_arn FROM cache_invalidation_target");
    assert!(target.contains(arn), "{target}");
    let triggers = crate::support::sql(
        &db,
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%cache_invalidation%'",
    );
    assert_eq!(triggers.trim(), "4", "{triggers}");
    crate::support::sql(&db, "UPDATE products SET stock = stock + 1 WHERE id = 1");
    let app = app(&redis.url(), &empty, &extra).await;
    let products = call(&app, get_query("products_by_category", &[("category", "books")])).await;
    assert_eq!(products.status, 200, "{}", products.text);
    assert!(products.body["row_count"].as_u64() > Some(0), "{}", products.text);
    let refused = ingester
        .handle(json!({"dataset": "demo", "databases": ["articles"]}))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("PostgreSQL only"), "{refused}");
}
