//! IAM authentication to an ElastiCache Serverless look-alike: a TLS cluster endpoint whose
//! proxy accepts the IAM user only with a valid, unexpired SigV4 connect token. Every
//! connection presents a fresh token (also after a restart), open connections authenticate
//! again on schedule, and a token signed with the wrong key degrades to the database.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_clients::{connect_token, ConnectRequest};
use cache_aside::{CacheSettings, ConnectionCredentials, RedisStore, RedisTarget, RotatingCredentials};
use lambda_http::http::StatusCode;
use query_api::App;
use test_support::iam_proxy::{
    IAM_ACCESS_KEY_ID, IAM_CACHE_NAME, IAM_REGION, IAM_SECRET_ACCESS_KEY, IAM_USER,
};
use test_support::{test_ca_path, RedisMode, RedisServer};
use use_cases::Clients;

use crate::support::{call, config, get_query, seeded_database};

/// The query API configured as the template configures it for `CacheMode=serverless`.
async fn serverless_app(redis: &RedisServer, db: &str, secret_key: &str) -> App {
    serverless_app_with(redis, db, secret_key, &[]).await
}

async fn serverless_app_with(redis: &RedisServer, db: &str, secret_key: &str, extra: &[(&str, &str)]) -> App {
    let mut vars = vec![
        ("REDIS_SERVERLESS", "true"),
        ("REDIS_IAM_USER", IAM_USER),
        ("REDIS_IAM_CACHE_NAME", IAM_CACHE_NAME),
        ("AWS_REGION", IAM_REGION),
        ("AWS_ACCESS_KEY_ID", IAM_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", secret_key),
        ("REDIS_TIMEOUT_MS", "1000"),
    ];
    vars.extend_from_slice(extra);
    App::new(
        Clients::build(&config(&redis.url(), db, &vars))
            .await
            .expect("clients build"),
    )
}

#[tokio::test]
async fn every_connection_to_a_serverless_cache_presents_a_fresh_iam_token() {
    let mut redis = RedisServer::start_mode(RedisMode::Serverless);
    let tokens = || redis.iam_tokens().expect("serverless mode has the IAM proxy");
    let (_, db) = seeded_database();
    let app = serverless_app(&redis, &db, IAM_SECRET_ACCESS_KEY).await;
    let product = || get_query("product", &[("id", "3")]);
    assert_eq!(call(&app, product()).await.cache(), "miss");
    assert_eq!(call(&app, product()).await.cache(), "hit");
    let health = call(&app, crate::support::request("GET", "/cache/health", &[], &[])).await;
    assert_eq!(health.body["redis"]["ok"], true, "{}", health.text);
    assert!(tokens().accepted() >= 1);
    assert_eq!(tokens().refused(), 0);
    assert_eq!(
        tokens().accepted(),
        tokens().connections(),
        "one token (and one AUTH) per connection, none sent again straight after it"
    );
    assert!(!health.text.contains("X-Amz-Signature"));

    // A restart (a failover, a thawed sandbox whose socket died): the new connection signs a
    // new token; the old one would be just as valid here, so the count is what shows it.
    let before = redis.iam_tokens().unwrap().accepted();
    redis.restart();
    let mut states = Vec::new();
    for _ in 0..20 {
        let state = call(&app, product()).await.cache().to_owned();
        states.push(state.clone());
        if state == "hit" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(states.last().map(String::as_str), Some("hit"), "{states:?}");
    let tokens = redis.iam_tokens().unwrap();
    assert!(tokens.accepted() > before, "no new token after the restart");
    assert_eq!(tokens.refused(), 0);

    // Signed with the wrong key: refused by the proxy, and the answer comes from the database.
    let wrong = serverless_app(&redis, &db, "not-the-secret-key").await;
    let reply = call(&wrong, product()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        (reply.cache(), reply.body["bypass_reason"].as_str()),
        ("bypass", Some("redis_unavailable"))
    );
    assert!(tokens.refused() >= 1);
}

/// ElastiCache Serverless lists its read port (6380) in the slot map beside the endpoint. Where
/// the functions cannot reach that port, a connection there would hold the slot refresh, and
/// with it the first requests, until the connect timeout: the client connects to the endpoint
/// only. (Before, with a connect timeout longer than the command budget, the first request found
/// Redis "unavailable" and the reader got a connection.)
#[tokio::test]
async fn a_read_port_the_functions_cannot_reach_never_holds_a_request() {
    let redis = RedisServer::start_serverless_with_unreachable_reader();
    let (_, db) = seeded_database();
    let slow_connect = [("REDIS_CONNECT_TIMEOUT_MS", "10000")];
    let app = serverless_app_with(&redis, &db, IAM_SECRET_ACCESS_KEY, &slow_connect).await;
    let product = || get_query("product", &[("id", "3")]);
    let first = call(&app, product()).await;
    assert_eq!(first.cache(), "miss", "{}", first.text);
    assert_eq!(call(&app, product()).await.cache(), "hit");
    assert_eq!(
        redis.reader_connections(),
        Some(0),
        "the read port was connected to"
    );
    assert_eq!(redis.iam_tokens().unwrap().refused(), 0);
}

/// Signs a token on every request, with a short renewal period.
struct QuickRenewal;

impl RotatingCredentials for QuickRenewal {
    fn credentials(&self) -> futures::future::BoxFuture<'static, Result<ConnectionCredentials, String>> {
        Box::pin(async {
            let request = ConnectRequest {
                user: IAM_USER.into(),
                cache_name: IAM_CACHE_NAME.into(),
                serverless: true,
                region: IAM_REGION.into(),
            };
            let keys = aws_credential_types::Credentials::new(
                IAM_ACCESS_KEY_ID,
                IAM_SECRET_ACCESS_KEY,
                None,
                None,
                "test",
            );
            let password = connect_token(&request, &keys, SystemTime::now()).map_err(|e| e.to_string())?;
            Ok(ConnectionCredentials {
                username: IAM_USER.into(),
                password,
            })
        })
    }

    fn renew_every(&self) -> Duration {
        Duration::from_millis(100)
    }
}

#[tokio::test]
async fn open_connections_authenticate_again_on_schedule() {
    let redis = RedisServer::start_mode(RedisMode::Serverless);
    let target = RedisTarget {
        url: redis.url(),
        cluster: true,
        auth_token: None,
        credentials: Some(Arc::new(QuickRenewal)),
        ca_pem: Some(std::fs::read(test_ca_path()).expect("the test CA exists")),
        endpoint_only: true,
    };
    let store = RedisStore::connect_lazy(&target, &CacheSettings::default()).expect("a valid target");
    store.ping().await.expect("the first connection authenticates");
    let tokens = redis.iam_tokens().unwrap();
    let first = tokens.accepted();
    // Renewals arrive every 100 ms on the same connections (the 12-hour cut never comes).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokens.accepted() < first + 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tokens.accepted() >= first + 5,
        "only {} tokens after the first {first}",
        tokens.accepted()
    );
    store.ping().await.expect("still authenticated");
    assert_eq!(tokens.refused(), 0);
}
