//! The article search of the MySQL demo on real MariaDB (and its PostgreSQL twin), loaded by
//! the ingester's dataset job.

use lambda_http::http::StatusCode;
use serde_json::json;
use test_support::{MariaDb, RedisServer};

use crate::support::{app, call, clients, config, get_query, seeded_database, unique};

#[tokio::test]
async fn article_search_on_mariadb_goes_miss_then_hit_and_the_dataset_load_is_idempotent() {
    let redis = RedisServer::start();
    let (_, pg) = seeded_database();
    let articles = MariaDb::shared().create_database(&unique("articles"));
    let extra = [("DATABASE_URL_ARTICLES", articles.as_str())];

    let ingester = ingester::Ingester::new(clients(&redis.url(), &pg, &extra).await);
    let loaded = ingester
        .handle(crate::support::payload("ingester/dataset-articles"))
        .await
        .unwrap();
    assert_eq!(loaded["databases"]["articles"]["inserted"], 20_000, "{loaded}");
    assert_eq!(loaded["databases"]["articles"]["engine"], "mysql");
    assert_eq!(loaded["databases"]["main"]["inserted"], 20_000, "{loaded}");
    let again = ingester
        .handle(json!({"dataset": "articles", "databases": ["articles"]}))
        .await
        .unwrap();
    assert_eq!(again["databases"]["articles"]["inserted"], 0, "{again}");
    assert_eq!(again["databases"]["articles"]["already_present"], 20_000);

    let with_bypass = [extra[0], crate::support::PUBLIC_BYPASS];
    let app = app(&redis.url(), &pg, &with_bypass).await;
    let miss = call(&app, crate::support::fixture("v2-get-article-search")).await;
    assert_eq!(
        (miss.status, miss.cache()),
        (StatusCode::OK, "miss"),
        "{}",
        miss.text
    );
    assert_eq!(miss.body["row_count"], 500, "LIMIT 500 of about 600 matches");
    assert_eq!(miss.body["ttl_seconds"].as_u64().map(|t| t <= 60), Some(true));
    let row = &miss.body["rows"][0];
    assert!(
        row["objectid"].is_i64() && row["sentence"].as_str().is_some_and(|s| s.contains("delta")),
        "{row}"
    );
    assert_eq!(
        row.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec![
            "objectid".to_owned(),
            "sentence".to_owned(),
            "title".to_owned(),
            "source".to_owned()
        ])
    );
    let hit = call(&app, crate::support::fixture("v1-get-article-search")).await;
    assert_eq!((hit.cache(), hit.x_cache()), ("hit", "HIT"));
    assert_eq!(hit.body["rows"], miss.body["rows"]);
    // Stored LZ4-compressed: at least 3x fewer bytes than its JSON, and nothing lost.
    let mut conn = crate::support::raw_redis(&redis);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("test:v1:{q:article_search:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    let envelope = cache_aside::Envelope::<serde_json::Value>::decode(&stored).unwrap();
    let json = envelope.encode().unwrap();
    assert!(
        stored.len() * 3 <= json.len(),
        "{} bytes of JSON stored in {}",
        json.len(),
        stored.len()
    );
    assert_eq!(envelope.value["rows"], miss.body["rows"]);
    let direct = call(&app, get_query("article_search", &[("source", "database")])).await;
    assert_eq!(direct.cache(), "bypass");
    let none = call(&app, get_query("article_search", &[("term", "zebra")])).await;
    assert_eq!((none.cache(), none.body["row_count"].as_u64()), ("miss", Some(0)));

    let pg_twin = call(&app, get_query("article_search_pg", &[])).await;
    assert_eq!(
        pg_twin.body["rows"], miss.body["rows"],
        "both engines hold the same dataset"
    );

    let health = call(&app, crate::support::request("GET", "/cache/health", &[], &[])).await;
    let names: Vec<&str> = health.body["databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["articles", "main"]);
}

#[tokio::test]
async fn unconfigured_or_mismatched_databases_are_reported_clearly() {
    let redis = RedisServer::start();
    let (_, pg) = seeded_database();
    let app = app(&redis.url(), &pg, &[]).await;
    let reply = call(&app, get_query("article_search", &[])).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "origin_unavailable")
    );
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DATABASE_URL_ARTICLES"),
        "{}",
        reply.text
    );

    // A PostgreSQL catalog query pointed at MySQL is refused at start-up, naming the query.
    let mysql = MariaDb::shared().create_database(&unique("wrong"));
    let e = use_cases::Clients::build(&config(&redis.url(), &mysql, &[]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("query \"products_by_category\": its placeholders are $n (PostgreSQL)")
            && e.contains("database \"main\" takes ? (MySQL)"),
        "{e}"
    );
    assert!(!e.contains(MariaDb::shared().password()), "no password in errors");
}

#[tokio::test]
async fn a_mariadb_statement_past_its_timeout_is_a_504_like_postgresql() {
    let redis = RedisServer::start();
    let (_, pg) = seeded_database();
    let slow = MariaDb::shared().create_database(&unique("slow"));
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("queries.toml");
    std::fs::write(
        &catalog,
        // BENCHMARK and SLEEP return early without an error when interrupted; a long join errs.
        "[[query]]\nname = 'spin'\ndatabase = 'slow'\nsql = \"SELECT sum(a.seq * b.seq) AS spun \
         FROM seq_1_to_100000 a CROSS JOIN seq_1_to_100000 b\"\ntags = ['seq_1_to_100000']\n",
    )
    .unwrap();
    let catalog = catalog.to_string_lossy().into_owned();
    let extra = [
        ("DATABASE_URL_SLOW", slow.as_str()),
        ("QUERY_CATALOG_PATH", catalog.as_str()),
        ("DB_STATEMENT_TIMEOUT_MS", "300"),
    ];
    let app = app(&redis.url(), &pg, &extra).await;
    let started = std::time::Instant::now();
    let reply = call(&app, get_query("spin", &[])).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (StatusCode::GATEWAY_TIMEOUT, "origin_timeout"),
        "{}",
        reply.text
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
