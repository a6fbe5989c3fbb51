//! Redis over TLS with the AUTH token in Secrets Manager: the certificate is verified, a wrong
//! token or an untrusted CA degrades to the database, and no secret reaches a log line or a
//! response.

use std::io::Write;
use std::sync::{Arc, Mutex};

use lambda_http::http::StatusCode;
use query_api::App;
use test_support::{Moto, RedisMode, RedisServer};
use use_cases::Clients;

use crate::support::{app, call, config, fixture, get_query, pairs, seeded_database, unique};

/// Log lines written while a test runs, in the JSON format Lambda uses.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Every log line of this test process from the first call on, at DEBUG, as JSON. A global
/// subscriber: a scoped one misses callsites that other tests' threads registered first.
fn captured_logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        captured
    })
}

/// The query API over TLS Redis with the token stored in a fresh secret holding `token`.
async fn app_with_token(redis: &RedisServer, db: &str, token: &str, trust_test_ca: bool) -> App {
    let secret_id = unique("redis-token-");
    crate::secrets::secrets_client()
        .await
        .create_secret()
        .name(&secret_id)
        .secret_string(token)
        .send()
        .await
        .unwrap();
    let mut vars = Moto::shared().env();
    vars.push(("REDIS_AUTH_SECRET_ID", secret_id));
    vars.push(("REDIS_TIMEOUT_MS", "1000".into()));
    let url = format!("rediss://localhost:{}", redis.port());
    let mut config = config(&url, db, &pairs(&vars));
    if !trust_test_ca {
        config.redis.ca_pem = None;
    }
    App::new(Clients::build(&config).await.expect("clients build"))
}

#[tokio::test]
async fn tls_with_a_verified_certificate_and_the_token_from_secrets_manager() {
    let redis = RedisServer::start_mode(RedisMode::Tls);
    let (_, db) = seeded_database();
    let good = app_with_token(&redis, &db, redis.password(), true).await;
    let product = || get_query("product", &[("id", "3")]);
    assert_eq!(call(&good, product()).await.cache(), "miss");
    assert_eq!(call(&good, product()).await.cache(), "hit");
    let health = call(&good, crate::support::request("GET", "/cache/health", &[], &[])).await;
    assert_eq!(health.body["redis"]["ok"], true, "{}", health.text);

    // An untrusted certificate or a wrong token: served from the database, never an error.
    for (token, trust) in [(redis.password(), false), ("not-the-token", true)] {
        let app = app_with_token(&redis, &db, token, trust).await;
        let reply = call(&app, product()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(
            (reply.cache(), reply.body["bypass_reason"].as_str()),
            ("bypass", Some("redis_unavailable")),
            "trust_ca={trust}"
        );
    }
}

#[tokio::test]
async fn no_secret_reaches_logs_or_responses() {
    let redis = RedisServer::start_mode(RedisMode::Tls);
    let (_, db) = seeded_database();
    let db_password = db
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(credentials, _)| credentials.split_once(':'))
        .map(|(_, pw)| pw.to_owned())
        .expect("the test database URL carries a password");
    let captured = captured_logs();

    let mut responses = Vec::new();
    let good = app(&redis.url(), &db, &[]).await;
    let wrong_token = app_with_token(&redis, &db, "wrong-token-value", true).await;
    let db_down = app(&redis.url(), &crate::support::dead_url("postgres"), &[]).await;
    for (app, req) in [
        (&good, get_query("product", &[("id", "4")])),
        (&good, get_query("product", &[("id", "4")])),
        (&good, get_query("product", &[("id", "not-a-number")])),
        (&good, fixture("v2-health")),
        (&wrong_token, get_query("product", &[("id", "4")])),
        (&wrong_token, fixture("v2-health")),
        (&db_down, get_query("product", &[("id", "5")])),
        (&db_down, fixture("v2-health")),
    ] {
        let reply = call(app, req).await;
        responses.push(format!("{} {:?} {}", reply.status, reply.headers, reply.text));
    }
    let printed = format!(
        "{:?}",
        config(&redis.url(), &db, &[("REDIS_AUTH_SECRET_ID", "id")])
    );
    let logs = captured.text();
    assert!(logs.contains("request"), "logs were captured: {logs}");
    for secret in [redis.password(), db_password.as_str(), "wrong-token-value"] {
        assert!(!logs.contains(secret), "a secret is in the logs:\n{logs}");
        assert!(
            !printed.contains(secret),
            "a secret is in the config's Debug: {printed}"
        );
        for response in &responses {
            assert!(
                !response.contains(secret),
                "a secret is in a response: {response}"
            );
        }
    }
}
