//! Writes need an identity: API Gateway events carrying the JWT claims or the IAM caller its
//! authorizer verified, as the handler receives them. The author is the identity, never the
//! body, and each author has a fleet-wide write budget.

use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use test_support::RedisServer;

use crate::support::{app, call, seeded_database, sql};

/// A review POST whose request context carries `authorizer` (as the HTTP API puts it there).
fn post_as(authorizer: Option<Value>, body: &str) -> lambda_http::Request {
    let text = std::fs::read_to_string(test_support::workspace_path(
        "events/query-api/v2-post-review.json",
    ))
    .unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["rawPath"] = "/restaurants/Saffron/reviews".into();
    event["requestContext"]["http"]["path"] = "/restaurants/Saffron/reviews".into();
    event["body"] = body.into();
    if let Some(authorizer) = authorizer {
        event["requestContext"]["authorizer"] = authorizer;
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn jwt(claims: Value) -> Option<Value> {
    Some(json!({"jwt": {"claims": claims, "scopes": null}}))
}

fn iam(arn: &str) -> Option<Value> {
    Some(
        json!({"iam": {"accessKey": "AKIDEXAMPLE", "accountId": "123456789012", "callerId": "AIDAEXAMPLE",
                        "principalOrgId": null, "userArn": arn, "userId": "AIDAEXAMPLE", "cognitoIdentity": null}}),
    )
}

const BODY: &str = r#"{"author": "mallory", "rating": 5, "body": "signed"}"#;

#[tokio::test]
async fn writes_need_the_identity_the_api_requires_and_are_authored_by_it() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    let stored = || sql(&name, "SELECT count(*) FROM reviews WHERE body = 'signed'");
    let jwt_app = app(&redis.url(), &db, &[("REVIEWS_AUTH", "jwt")]).await;
    for (authorizer, why) in [
        (None, "no identity"),
        (
            iam("arn:aws:iam::123456789012:user/bob"),
            "an IAM caller where a JWT is required",
        ),
        (jwt(json!({"email": "x@example.com"})), "a JWT naming nobody"),
    ] {
        let refused = call(&jwt_app, post_as(authorizer, BODY)).await;
        assert_eq!(
            (refused.status, refused.error_code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{why}: {}",
            refused.text
        );
    }
    assert_eq!(stored(), "0", "nothing was stored without an identity");
    let alice = call(
        &jwt_app,
        post_as(jwt(json!({"cognito:username": "alice", "sub": "s-1"})), BODY),
    )
    .await;
    assert_eq!(alice.status, StatusCode::CREATED, "{}", alice.text);
    assert_eq!(
        alice.body["review"]["author"], "alice",
        "the identity, not the body's mallory"
    );
    let by_sub = call(&jwt_app, post_as(jwt(json!({"sub": "s-2"})), BODY)).await;
    assert_eq!(by_sub.body["review"]["author"], "s-2");

    let iam_app = app(&redis.url(), &db, &[("REVIEWS_AUTH", "iam")]).await;
    let unsigned = call(&iam_app, post_as(jwt(json!({"sub": "s-3"})), BODY)).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED, "{}", unsigned.text);
    let arn = "arn:aws:iam::123456789012:user/bob";
    let bob = call(&iam_app, post_as(iam(arn), BODY)).await;
    assert_eq!(bob.status, StatusCode::CREATED, "{}", bob.text);
    assert_eq!(bob.body["review"]["author"], arn);
    assert_eq!(stored(), "3");
}

#[tokio::test]
async fn an_author_past_the_write_budget_is_told_when_to_retry() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let app = app(
        &redis.url(),
        &db,
        &[("REVIEWS_AUTH", "jwt"), ("REVIEWS_PER_AUTHOR_PER_MINUTE", "2")],
    )
    .await;
    let as_user = |user: &str| post_as(jwt(json!({"cognito:username": user})), BODY);
    for _ in 0..2 {
        assert_eq!(call(&app, as_user("alice")).await.status, StatusCode::CREATED);
    }
    let limited = call(&app, as_user("alice")).await;
    assert_eq!(
        (limited.status, limited.error_code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "{}",
        limited.text
    );
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        call(&app, as_user("bob")).await.status,
        StatusCode::CREATED,
        "another author has a budget of their own"
    );
}
