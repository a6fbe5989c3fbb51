//! Helpers: a fresh database per test, an App wired to real services, requests from fixtures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Request};
use query_api::App;
use serde_json::Value;
use service_config::ServiceConfig;
use test_support::{test_ca_path, workspace_path, Moto, Postgres, RedisMode, RedisServer};
use use_cases::Clients;

/// The demo schema and seed.
pub const SEED: &str = query_catalog::demo_sql::POSTGRES_SEED_PATH;

/// A new seeded database on the shared server; returns (name, url).
pub fn seeded_database() -> (String, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let url = Postgres::shared().create_database(&name, &[SEED]);
    (name, url)
}

/// Runs SQL in database `db`.
pub fn sql(db: &str, statement: &str) -> String {
    Postgres::shared()
        .psql(db, &["-c", statement])
        .unwrap_or_else(|e| panic!("{statement}: {e}"))
}

/// The payload of fixture `events/<path>.json`.
pub fn payload(path: &str) -> Value {
    let file = workspace_path(&format!("events/{path}.json"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The configuration a function would read: Redis, the main database, extra variables.
pub fn config(redis_url: &str, database_url: &str, extra: &[(&str, &str)]) -> ServiceConfig {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("REDIS_URL".into(), redis_url.into());
    vars.insert("DATABASE_URL".into(), database_url.into());
    vars.insert("CACHE_NAMESPACE".into(), "test".into());
    // Each App or Clients here stands for another instance, and most tests check what the
    // next read sees at once; the memory tier's own tests turn it on.
    vars.insert("CACHE_MEMORY_TRUST_MS".into(), "0".into());
    // Most tests run many loads in a few seconds; the fleet budget's own tests set theirs.
    vars.insert("CACHE_ORIGIN_LOADS_PER_SECOND".into(), "100000".into());
    vars.insert("CACHE_ORIGIN_BURST".into(), "100000".into());
    // Reviews from the body's author (the identity tests set jwt or iam) and no write budget.
    vars.insert("REVIEWS_AUTH".into(), "none".into());
    vars.insert("REVIEWS_PER_AUTHOR_PER_MINUTE".into(), "100000".into());
    if redis_url.starts_with("rediss://") {
        vars.insert("REDIS_CA_PATH".into(), test_ca_path().display().to_string());
    }
    match RedisMode::from_env() {
        RedisMode::Cluster => {
            vars.insert("REDIS_CLUSTER".into(), "true".into());
        }
        // ElastiCache Serverless with IAM authentication, as the template deploys it (unless
        // the test points at an unreachable plain URL).
        RedisMode::Serverless if redis_url.starts_with("rediss://") => {
            use test_support::iam_proxy::{
                IAM_ACCESS_KEY_ID, IAM_CACHE_NAME, IAM_REGION, IAM_SECRET_ACCESS_KEY, IAM_USER,
            };
            for (k, v) in [
                ("REDIS_SERVERLESS", "true"),
                ("REDIS_IAM_USER", IAM_USER),
                ("REDIS_IAM_CACHE_NAME", IAM_CACHE_NAME),
                ("AWS_REGION", IAM_REGION),
                ("AWS_ACCESS_KEY_ID", IAM_ACCESS_KEY_ID),
                ("AWS_SECRET_ACCESS_KEY", IAM_SECRET_ACCESS_KEY),
            ] {
                vars.insert(k.into(), v.into());
            }
        }
        _ => {}
    }
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    ServiceConfig::from_map(&vars).expect("test configuration is valid")
}

/// A raw connection to `redis` (any mode), for checking what the functions wrote.
pub fn raw_redis(redis: &RedisServer) -> cache_aside::RedisConnection {
    let target = cache_aside::RedisTarget {
        url: redis.url(),
        cluster: matches!(redis.mode(), RedisMode::Cluster | RedisMode::Serverless),
        auth_token: (redis.mode() == RedisMode::Serverless).then(|| redis.password().to_owned()),
        credentials: None,
        ca_pem: matches!(redis.mode(), RedisMode::Tls | RedisMode::Serverless)
            .then(|| std::fs::read(test_ca_path()).expect("the test CA exists")),
        endpoint_only: redis.mode() == RedisMode::Serverless,
    };
    cache_aside::RedisStore::connect_lazy(&target, &cache_aside::CacheSettings::default())
        .expect("raw Redis connection")
        .connection()
}

/// Every client, as a function builds them at start-up. A password in a `rediss://` URL moves
/// into a Secrets Manager secret (moto), read through `REDIS_AUTH_SECRET_ID` as in AWS.
pub async fn clients(redis_url: &str, database_url: &str, extra: &[(&str, &str)]) -> Clients {
    let mut extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut redis_url = redis_url.to_owned();
    if let Some((credentials, host)) = redis_url
        .strip_prefix("rediss://")
        .and_then(|rest| rest.split_once('@'))
    {
        let token = credentials
            .split_once(':')
            .map_or(credentials, |(_, pw)| pw)
            .to_owned();
        let secret_id = unique("redis-auth-");
        crate::secrets::secrets_client()
            .await
            .create_secret()
            .name(&secret_id)
            .secret_string(serde_json::json!({ "username": "default", "token": token }).to_string())
            .send()
            .await
            .expect("moto stores the AUTH token");
        redis_url = format!("rediss://{host}");
        extra.extend(Moto::shared().env().into_iter().map(|(k, v)| (k.to_owned(), v)));
        extra.push(("REDIS_AUTH_SECRET_ID".into(), secret_id));
    }
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Clients::build(&config(&redis_url, database_url, &extra))
        .await
        .expect("clients build")
}

/// The query API over `redis_url` and `database_url` with optional extra variables.
/// The query API as `main` builds it (public bypass as `CACHE_PUBLIC_BYPASS` in `extra` says).
pub async fn app(redis_url: &str, database_url: &str, extra: &[(&str, &str)]) -> App {
    let serving = config(redis_url, database_url, extra).serving;
    App::new(clients(redis_url, database_url, extra).await)
        .with_public_bypass(serving.public_bypass)
        .with_reviews_auth(serving.reviews_auth)
}

/// Lets the test's callers bypass the cache, as `CACHE_PUBLIC_BYPASS=true` does.
pub const PUBLIC_BYPASS: (&str, &str) = ("CACHE_PUBLIC_BYPASS", "true");

/// The request of fixture `events/query-api/<name>.json`.
pub fn fixture(name: &str) -> Request {
    let path = workspace_path(&format!("events/query-api/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name} is not an event: {e}"))
}

/// A v2 (HTTP API) request built from the GET fixture with another method, path, query, headers.
pub fn request(method: &str, path: &str, query: &[(&str, &str)], headers: &[(&str, &str)]) -> Request {
    let text = std::fs::read_to_string(workspace_path("events/query-api/v2-health.json")).expect("fixture");
    let mut event: Value = serde_json::from_str(&text).expect("fixture JSON");
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["http"]["method"] = method.into();
    let raw_query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    event["rawQueryString"] = raw_query.join("&").into();
    for (k, v) in headers {
        event["headers"][k] = (*v).into();
    }
    lambda_http::request::from_str(&event.to_string()).expect("valid v2 event")
}

/// Percent-encodes everything but unreserved characters, as API Gateway's rawQueryString is.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A GET of a named query.
pub fn get_query(name: &str, query: &[(&str, &str)]) -> Request {
    request("GET", &format!("/queries/{name}"), query, &[])
}

/// What came back.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The `cache` field.
    pub fn cache(&self) -> &str {
        self.body["cache"].as_str().unwrap_or("<none>")
    }

    /// The `X-Cache` header.
    pub fn x_cache(&self) -> &str {
        self.headers
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("<none>")
    }

    /// The error code of a JSON error.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }
}

/// Sends `req` through the handler.
pub async fn call(app: &App, req: Request) -> Reply {
    let response = app.handle(req).await;
    let status = response.status();
    let headers = response.headers().clone();
    let text = match response.into_body() {
        Body::Text(t) => t,
        Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        Body::Empty => String::new(),
        _ => String::new(),
    };
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("response is not JSON ({e}): {text}"));
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{text}"
    );
    Reply {
        status,
        headers,
        body,
        text,
    }
}

/// A loopback URL where nothing listens.
pub fn dead_url(scheme: &str) -> String {
    let port = test_support::free_port();
    match scheme {
        "redis" => format!("redis://127.0.0.1:{port}"),
        _ => format!("postgres://postgres:nopassword@127.0.0.1:{port}/none"),
    }
}

/// A name no other test in this process uses (buckets, databases, secrets, users).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Variables pointing the AWS clients at the shared moto_server, with `bucket` for objects.
pub fn aws_vars(bucket: &str) -> Vec<(&'static str, String)> {
    let mut vars = test_support::Moto::shared().env();
    vars.push(("OBJECTS_BUCKET", bucket.to_owned()));
    vars
}

/// `(name, value)` pairs as the `&[(&str, &str)]` the helpers take.
pub fn pairs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A raw (non-JSON) reply.
pub struct RawReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl RawReply {
    /// A header's value.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("<none>")
    }
}

/// Sends `req` through the handler and keeps the body as bytes.
pub async fn call_raw(app: &App, req: Request) -> RawReply {
    let response = app.handle(req).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = match response.into_body() {
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    RawReply {
        status,
        headers,
        bytes,
    }
}

/// A catalog file holding `toml` (kept while the returned directory lives) and its path.
pub fn catalog_file(toml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queries.toml");
    std::fs::write(&path, toml).unwrap();
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}
