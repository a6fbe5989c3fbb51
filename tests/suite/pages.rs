//! The demo pages: the same answers as HTML for a browser, every value escaped.

use lambda_http::http::StatusCode;
use test_support::RedisServer;

use crate::support::{app, call, call_raw, request, seeded_database, sql, PUBLIC_BYPASS};

const BROWSER: (&str, &str) = (
    "accept",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
);

#[tokio::test]
async fn a_page_shows_the_run_and_escapes_what_the_database_and_the_request_hold() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    sql(
        &name,
        "UPDATE products SET name = '<script>alert(1)</script>' WHERE id = 5",
    );
    let app = app(&redis.url(), &db, &[PUBLIC_BYPASS]).await;
    let page = |query: &[(&str, &str)]| request("GET", "/queries/product", query, &[BROWSER]);
    let first = call_raw(&app, page(&[("id", "5")])).await;
    let html = String::from_utf8(first.bytes.clone()).unwrap();
    assert_eq!(
        (first.status, first.header("content-type")),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert_eq!(first.header("x-cache"), "MISS");
    assert!(html.contains("id=\"cache\">miss<"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the row is escaped"
    );
    assert!(!html.contains("<script>alert"), "no markup from the database");
    let second = String::from_utf8(call_raw(&app, page(&[("id", "5")])).await.bytes).unwrap();
    assert!(second.contains("id=\"cache\">hit<") && second.contains("id=\"ttl\">"));
    assert!(
        second.contains("href=\"product?id=5&amp;source=database\""),
        "the direct link keeps the parameters"
    );

    let hostile = String::from_utf8(
        call_raw(&app, page(&[("id", "\"><script>x()</script>")]))
            .await
            .bytes,
    )
    .unwrap();
    assert!(hostile.contains("id=\"error\">bad_parameter"), "{hostile}");
    assert!(!hostile.contains("<script>x()"), "request values are escaped too");

    let json = call(
        &app,
        request(
            "GET",
            "/queries/product",
            &[("id", "5")],
            &[("accept", "application/json")],
        ),
    )
    .await;
    assert_eq!(
        json.cache(),
        "hit",
        "Accept: application/json keeps the JSON answer"
    );
    let index = String::from_utf8(call_raw(&app, request("GET", "/", &[], &[BROWSER])).await.bytes).unwrap();
    assert!(index.contains("href=\"queries/slow_version\""));
}
