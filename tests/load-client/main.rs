//! One "Lambda instance" for the concurrency tests: builds the query API from the environment
//! like `main` does, sends `LOAD_REQUESTS` concurrent `GET LOAD_PATH` requests through its
//! handler, and prints `{"states": {...}, "statuses": {...}, "codes": {...}}` on one line
//! (`codes`: error codes of non-200 answers; `retry_after` counts the answers that had one).
//!
//! `{i}` in `LOAD_PATH` becomes a number unique to each request of every client (with
//! `LOAD_ID` set per client); `LOAD_IN_FLIGHT` caps the requests in flight at once;
//! `LOAD_DEADLINE_MS` gives each request an invocation deadline that far ahead of its start.
//!
//! With `LOAD_WATCH_SECONDS` it instead reads `GET LOAD_PATH` one request at a time for that
//! long (or until the file `LOAD_STOP_FILE` exists) and prints
//! `{"reads": [[start_unix_us, rows[0].v, tier], ...]}` (tier 2: memory, 1: Redis, 0: a load).

use std::collections::BTreeMap;
use std::sync::Arc;

use lambda_http::RequestExt;
use query_api::App;
use service_config::ServiceConfig;

fn event(path: &str) -> String {
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    serde_json::json!({
        "version": "2.0", "routeKey": "$default", "rawPath": raw_path, "rawQueryString": query,
        "headers": {"host": "localhost"},
        "requestContext": {"accountId": "1", "apiId": "load", "domainName": "localhost", "domainPrefix": "localhost",
            "http": {"method": "GET", "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "load"},
            "requestId": "load", "routeKey": "$default", "stage": "$default", "time": "", "timeEpoch": 0},
        "isBase64Encoded": false
    })
    .to_string()
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let config = ServiceConfig::from_env().map_err(|e| e.to_string())?;
    let app = Arc::new(App::from_config(&config).await.map_err(|e| e.to_string())?);
    let path = std::env::var("LOAD_PATH").map_err(|_| "LOAD_PATH is not set")?;
    if let Some(seconds) = std::env::var("LOAD_WATCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return watch(&app, &event(&path), std::time::Duration::from_secs(seconds)).await;
    }
    let requests: usize = std::env::var("LOAD_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(25);
    let number = |name: &str| std::env::var(name).ok().and_then(|n| n.parse::<u64>().ok());
    let client = number("LOAD_ID").unwrap_or(0);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(
        number("LOAD_IN_FLIGHT").map_or(requests, |n| n as usize),
    ));
    let deadline_ms = number("LOAD_DEADLINE_MS");
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let app = Arc::clone(&app);
            let path = path.replace("{i}", &(client * requests as u64 + i as u64).to_string());
            let request = lambda_http::request::from_str(&event(&path)).map_err(|e| e.to_string());
            let in_flight = Arc::clone(&in_flight);
            tokio::spawn(async move {
                let _turn = in_flight.acquire().await.map_err(|e| e.to_string())?;
                let mut request = request?;
                if let Some(ms) = deadline_ms {
                    let mut context = lambda_http::lambda_runtime::Context::default();
                    context.deadline = cache_aside::unix_now_ms() + ms;
                    request = request.with_lambda_context(context);
                }
                let response = app.handle(request).await;
                let status = response.status().as_u16();
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let state = header("x-cache").unwrap_or_else(|| "-".to_owned());
                let retry_after = header("retry-after").is_some();
                let code = match response.body() {
                    lambda_http::Body::Text(text) if status != 200 => {
                        serde_json::from_str::<serde_json::Value>(text)
                            .ok()
                            .and_then(|b| b["error"]["code"].as_str().map(str::to_owned))
                    }
                    _ => None,
                };
                Ok::<_, String>((status, state, code, retry_after))
            })
        })
        .collect();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut with_retry_after = 0;
    for task in tasks {
        let (status, state, code, retry_after) = task.await.map_err(|e| e.to_string())??;
        *states.entry(state).or_default() += 1;
        *statuses.entry(status).or_default() += 1;
        if let Some(code) = code {
            *codes.entry(code).or_default() += 1;
        }
        with_retry_after += usize::from(retry_after);
    }
    println!(
        "{}",
        serde_json::json!({"states": states, "statuses": statuses, "codes": codes, "retry_after": with_retry_after})
    );
    Ok(())
}

/// Reads one request at a time for `how_long`, noting when each read started and what it saw.
async fn watch(app: &App, event: &str, how_long: std::time::Duration) -> Result<(), String> {
    let until = std::time::Instant::now() + how_long;
    let stop = std::env::var_os("LOAD_STOP_FILE").map(std::path::PathBuf::from);
    let mut reads = Vec::new();
    while std::time::Instant::now() < until && !stop.as_ref().is_some_and(|f| f.exists()) {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_micros() as u64;
        let request = lambda_http::request::from_str(event).map_err(|e| e.to_string())?;
        let response = app.handle(request).await;
        let body: serde_json::Value = match response.into_body() {
            lambda_http::Body::Text(text) => serde_json::from_str(&text).map_err(|e| e.to_string())?,
            _ => return Err("a non-text body".into()),
        };
        let tier = match body["tier"].as_str() {
            Some("memory") => 2,
            Some("redis") => 1,
            _ => 0,
        };
        reads.push(serde_json::json!([started, body["rows"][0]["v"], tier]));
        tokio::time::sleep(std::time::Duration::from_micros(500)).await;
    }
    println!("{}", serde_json::json!({ "reads": reads }));
    Ok(())
}
