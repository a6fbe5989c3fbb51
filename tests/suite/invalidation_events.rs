//! The invalidator's triggers with their fixtures: database changes (and the PostgreSQL
//! trigger through a LISTEN forwarder), S3 notifications, SQS batches with partial failures.

use std::time::Duration;

use sqlx::Connection;

use lambda_http::http::StatusCode;
use serde_json::json;
use test_support::RedisServer;

use crate::support::{
    app, aws_vars, call, call_raw, clients, get_query, pairs, payload, request, seeded_database, sql, unique,
};

#[tokio::test]
async fn a_database_change_drops_the_queries_of_its_table() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    let clients = clients(&redis.url(), &db, &[]).await;
    let app = app(&redis.url(), &db, &[]).await;
    let one = [("id", "3")];
    call(&app, get_query("product", &one)).await;
    assert_eq!(call(&app, get_query("product", &one)).await.cache(), "hit");

    // The PostgreSQL trigger, delivered locally by a LISTEN forwarder (RDS invokes the function).
    sql(
        &name,
        &std::fs::read_to_string(test_support::workspace_path(
            query_catalog::demo_sql::POSTGRES_CHANGE_EVENTS_PATH,
        ))
        .unwrap(),
    );
    sql(&name, query_catalog::demo_sql::POSTGRES_DEMO_TRIGGERS);
    let mut listener = sqlx::postgres::PgListener::connect(&db).await.unwrap();
    listener.listen("cache_invalidation").await.unwrap();
    sql(&name, "UPDATE products SET name = 'Changed' WHERE id = 3");
    let notification = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .unwrap()
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(notification.payload()).unwrap();
    assert_eq!(
        event,
        json!({"table": "products", "operation": "UPDATE", "keys": {"id": "3"}})
    );
    let report = invalidator::handle(clients.invalidation(), event).await.unwrap();
    assert!(
        report["queries"].as_array().is_some_and(|q| q.len() >= 3),
        "{report}"
    );

    let after = call(&app, get_query("product", &one)).await;
    assert_eq!(
        (after.cache(), after.body["rows"][0]["name"].as_str()),
        ("miss", Some("Changed"))
    );

    let fixture = invalidator::handle(clients.invalidation(), payload("invalidator/db-change-products"))
        .await
        .unwrap();
    assert!(fixture["invalidated"]["tag:products"].is_u64(), "{fixture}");
    let unrelated = invalidator::handle(
        clients.invalidation(),
        json!({"table": "audit_log", "operation": "INSERT"}),
    )
    .await
    .unwrap();
    assert!(
        unrelated["note"]
            .as_str()
            .is_some_and(|n| n.contains("no query depends")),
        "{unrelated}"
    );
    for bad in [
        json!({"table": "Products; DROP", "operation": "UPDATE"}),
        json!({"table": "products", "operation": "MERGE"}),
    ] {
        assert!(invalidator::handle(clients.invalidation(), bad).await.is_err());
    }
}

#[tokio::test]
async fn s3_notifications_drop_object_entries() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let vars = aws_vars(&unique("events"));
    let clients = clients(&redis.url(), &db, &pairs(&vars)).await;
    let app = app(&redis.url(), &db, &pairs(&vars)).await;
    let store = clients.objects().cloned().unwrap();
    store.ensure_bucket().await.unwrap();
    store
        .put("docs/a b+c.txt", b"v1".to_vec(), "text/plain")
        .await
        .unwrap();
    let get = || request("GET", "/objects/docs/a%20b%2Bc.txt", &[], &[]);
    call_raw(&app, get()).await;
    assert_eq!(call_raw(&app, get()).await.header("x-cache"), "HIT");
    store
        .put("docs/a b+c.txt", b"v2".to_vec(), "text/plain")
        .await
        .unwrap();
    let report = invalidator::handle(clients.invalidation(), payload("invalidator/s3-object-created"))
        .await
        .unwrap();
    assert_eq!(report["dropped"], json!(["docs/a b+c.txt"]), "{report}");
    let fresh = call_raw(&app, get()).await;
    assert_eq!(
        (fresh.status, fresh.header("x-cache"), fresh.bytes.as_slice()),
        (StatusCode::OK, "MISS", b"v2".as_slice())
    );
    let removed = invalidator::handle(clients.invalidation(), payload("invalidator/s3-object-removed"))
        .await
        .unwrap();
    assert_eq!(removed["dropped"], json!(["filename1.txt"]));
}

#[tokio::test]
async fn an_sqs_batch_reports_only_its_bad_message_and_applies_the_good_ones() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let clients = clients(&redis.url(), &db, &[]).await;
    let app = app(&redis.url(), &db, &[]).await;
    call(&app, get_query("category_summary", &[])).await;
    assert_eq!(
        call(&app, get_query("category_summary", &[])).await.cache(),
        "hit"
    );
    let response = invalidator::handle(clients.invalidation(), payload("invalidator/sqs-batch"))
        .await
        .unwrap();
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "msg-broken"}]})
    );
    assert_eq!(
        call(&app, get_query("category_summary", &[])).await.cache(),
        "miss",
        "the good change applied"
    );
}

/// The trigger fires before its transaction commits (on RDS the invalidator may run at once): a
/// read that misses in between stores the old row under the new generation. The invalidator's
/// second bump, after the commit, must drop it.
#[tokio::test]
async fn a_fill_racing_an_uncommitted_write_is_dropped_once_the_write_commits() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let clients = clients(&redis.url(), &db, &[]).await;
    let app = app(&redis.url(), &db, &[]).await;
    let one = [("id", "4")];
    call(&app, get_query("product", &one)).await;
    let before = call(&app, get_query("product", &one)).await;
    let old_name = before.body["rows"][0]["name"].as_str().unwrap().to_owned();

    let mut writer = sqlx::PgConnection::connect(&db).await.unwrap();
    sqlx::query("BEGIN").execute(&mut writer).await.unwrap();
    sqlx::query("UPDATE products SET name = 'Committed later' WHERE id = 4")
        .execute(&mut writer)
        .await
        .unwrap();
    let event = json!({"table": "products", "operation": "UPDATE", "keys": {"id": "4"}});
    let invalidation = clients.invalidation().with_settle(Duration::from_millis(1_500));
    let invalidator = invalidator::handle(invalidation, event);
    let race = async {
        // After the first bump, before the commit: a miss reads the old row (until the first
        // bump lands, reads still hit the old entry).
        let mut racing = call(&app, get_query("product", &one)).await;
        for _ in 0..40 {
            if racing.cache() == "miss" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            racing = call(&app, get_query("product", &one)).await;
        }
        assert_eq!(
            (racing.cache(), racing.body["rows"][0]["name"].as_str()),
            ("miss", Some(old_name.as_str())),
            "the race happened: the old row was filled under the new generation"
        );
        sqlx::query("COMMIT").execute(&mut writer).await.unwrap();
    };
    let (report, ()) = tokio::join!(invalidator, race);
    report.unwrap();
    let after = call(&app, get_query("product", &one)).await;
    assert_eq!(
        (after.cache(), after.body["rows"][0]["name"].as_str()),
        ("miss", Some("Committed later")),
        "the entry filled before the commit is unreachable"
    );
}
