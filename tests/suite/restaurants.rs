//! The restaurant summary (purpose-built-databases tutorial, on SQL) with a write path that
//! never leaves the old summary readable.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use query_api::App;
use test_support::RedisServer;

use crate::support::{app, call, request, seeded_database};

pub(crate) fn post_review(restaurant: &str, body: &str) -> Request {
    let text = std::fs::read_to_string(test_support::workspace_path(
        "events/query-api/v2-post-review.json",
    ))
    .unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&text).unwrap();
    let path = format!("/restaurants/{}/reviews", restaurant.replace(' ', "%20"));
    event["rawPath"] = path.clone().into();
    event["requestContext"]["http"]["path"] = path.into();
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

pub(crate) fn summary(restaurant: &str) -> Request {
    request(
        "GET",
        &format!("/restaurants/{}/summary", restaurant.replace(' ', "%20")),
        &[],
        &[],
    )
}

/// `trials` times: POST a review to Blue Fig (25 reviews before), then read its summary, which
/// must show that review first. Saffron's summary, read before, must stay cached throughout.
pub(crate) async fn post_then_read(app: &App, trials: u64) {
    let mut missing = 0;
    for trial in 0..trials {
        let text = format!("trial {trial}");
        let body = format!(r#"{{"author": "t", "rating": 4, "body": "{text}"}}"#);
        let posted = call(app, post_review("Blue Fig", &body)).await;
        assert_eq!(
            posted.status,
            StatusCode::CREATED,
            "trial {trial}: {}",
            posted.text
        );
        let read = call(app, summary("Blue Fig")).await;
        if read.body["restaurant"]["latest_reviews"][0]["body"] != text.as_str() {
            missing += 1;
        }
    }
    assert_eq!(missing, 0, "every summary read after a POST includes the review");
    let last = call(app, summary("Blue Fig")).await;
    assert_eq!(
        (last.cache(), last.body["restaurant"]["review_count"].as_u64()),
        ("hit", Some(25 + trials))
    );
    assert_eq!(
        call(app, summary("Saffron")).await.cache(),
        "hit",
        "other restaurants keep their summaries"
    );
}

/// A review for, and the summary of, a restaurant that does not exist answer 404.
pub(crate) async fn unknown_restaurants_are_404(app: &App) {
    let review = r#"{"author": "a", "rating": 3, "body": "b"}"#;
    for req in [post_review("Nowhere", review), summary("Nowhere")] {
        let reply = call(app, req).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::NOT_FOUND, "restaurant_not_found"),
            "{}",
            reply.text
        );
    }
}

#[tokio::test]
async fn a_posted_review_is_in_the_next_summary_in_every_one_of_1000_trials() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    let first = call(&app, summary("Blue Fig")).await;
    assert_eq!(
        (first.status, first.cache()),
        (StatusCode::OK, "miss"),
        "{}",
        first.text
    );
    assert_eq!(first.body["restaurant"]["review_count"], 25);
    assert_eq!(
        first.body["restaurant"]["latest_reviews"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    assert_eq!(call(&app, summary("Blue Fig")).await.cache(), "hit");
    let other = call(&app, summary("Saffron")).await;
    assert_eq!(other.cache(), "miss");

    post_then_read(&app, 1000).await;
}

#[tokio::test]
async fn bad_reviews_and_unknown_restaurants_are_refused_clearly() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    let app = app(&redis.url(), &db, &[]).await;
    let cases = [
        (
            r#"{"author": "a", "rating": 6, "body": "b"}"#,
            "bad_parameter",
            "\"rating\": must be between 1 and 5",
        ),
        (
            r#"{"rating": 3, "body": "b"}"#,
            "bad_parameter",
            "\"author\": is required",
        ),
        (
            r#"{"author": "a", "rating": "three", "body": "b"}"#,
            "bad_parameter",
            "\"rating\": must be an integer",
        ),
        (
            r#"{"author": "a", "rating": 3, "body": ""}"#,
            "bad_parameter",
            "\"body\": must be at least 1",
        ),
        (
            r#"{"author": "a", "rating": 3, "body": "b", "stars": 5}"#,
            "bad_parameter",
            "\"stars\": unknown field",
        ),
        (
            r#"{"author": ["a"], "rating": 3, "body": "b"}"#,
            "bad_parameter",
            "\"author\": has the wrong JSON type",
        ),
        ("not json", "bad_body", "expected a JSON object"),
    ];
    for (body, code, message) in cases {
        let reply = call(&app, post_review("Juniper", body)).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::BAD_REQUEST, code),
            "{body}: {}",
            reply.text
        );
        let text = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{body}: {text}");
    }
    assert_eq!(
        crate::support::sql(&name, "SELECT count(*) FROM reviews"),
        "250",
        "nothing was stored"
    );
    unknown_restaurants_are_404(&app).await;
    let wrong = call(&app, request("GET", "/restaurants/Juniper/reviews", &[], &[])).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        call(&app, request("GET", "/queries/add_review", &[], &[]))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "writes are not queries"
    );
}
