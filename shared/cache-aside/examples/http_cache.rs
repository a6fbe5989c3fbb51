//! Caches a slow HTTP call in Redis behind a tagged key, then invalidates the tag.
//!
//! The example starts its own origin, a tiny HTTP/1.1 server on `127.0.0.1` (a free port) that
//! answers a JSON weather report after a short sleep and counts how often it was called. It
//! fetches from it with a minimal HTTP/1.1 client over a `TcpStream`, through
//! `Cache::get_or_load_with` under an `EntryKey` tagged `tag:weather`:
//!
//! 1. first read: a miss, the origin is called (milliseconds);
//! 2. second read: a hit from Redis, the origin is not called (microseconds);
//! 3. `Cache::invalidate("tag:weather")`, then a third read: a miss again, the origin is called.
//!
//! It exits with a failure status unless the origin's call count is 1, 1, 2 after the three
//! reads (for instance when Redis is unreachable: every read then goes to the origin).
//!
//! Run it against a Redis server (the first argument, else `REDIS_URL`, else
//! `redis://127.0.0.1:6379`):
//!
//! ```text
//! cargo run -p cache-aside --example http_cache -- redis://127.0.0.1:PORT
//! ```
//!
//! A local server will do: `redis-server --port 6390 --save ''`, then
//! `cargo run -p cache-aside --example http_cache -- redis://127.0.0.1:6390`.

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_aside::{unix_now_ms, Cache, CacheSettings, CacheState, EntryKey, Freshness, Lookup, ReadMode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the origin takes to answer.
const ORIGIN_DELAY: Duration = Duration::from_millis(200);
/// The city asked for.
const CITY: &str = "paris";
/// The scope (tag) of every weather entry: invalidating it drops them all.
const TAG: &str = "tag:weather";

/// What the origin answers, and what is cached.
#[derive(Clone, Serialize, Deserialize)]
struct Weather {
    city: String,
    temperature_c: f64,
    /// How many requests the origin had answered when it produced this report.
    origin_calls: u64,
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn Error>> {
    let redis_url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("REDIS_URL").ok())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());

    // The origin: its own server on a free port, counting its calls.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let origin = listener.local_addr()?;
    let calls = Arc::new(AtomicU64::new(0));
    tokio::spawn(serve(listener, Arc::clone(&calls)));
    println!(
        "origin: http://{origin}/weather?city={CITY} ({} ms per answer)",
        ORIGIN_DELAY.as_millis()
    );

    // The cache: lazy, so this succeeds even if Redis is down (reads then bypass it).
    let settings = CacheSettings {
        namespace: "http-cache-example".into(),
        ..CacheSettings::default()
    };
    let cache = Cache::connect_lazy(redis_url, settings)?;

    // The entry: what is asked (hashed into the key) and the tag that drops it. The run's start
    // time is a parameter too, so running the example again within the TTL starts cold.
    let params = serde_json::json!({ "city": CITY, "run": unix_now_ms() });
    let entry = EntryKey::new("http", "weather", &params)?.with_scope(TAG)?;
    // Fresh for a minute, then served stale for 30 s while one request refreshes it.
    let freshness = Freshness {
        stale_while_revalidate: Duration::from_secs(30),
        ..Freshness::ttl(Some(Duration::from_secs(60)))
    };

    let first = timed_read(&cache, &entry, freshness, origin).await?;
    let after_first = report("1st read", &first, &calls, 0);

    let second = timed_read(&cache, &entry, freshness, origin).await?;
    let after_second = report("2nd read", &second, &calls, after_first);

    match cache.invalidate(TAG).await {
        Ok(generation) => println!("invalidated {TAG}: now at generation {generation}"),
        Err(e) => {
            eprintln!("invalidating {TAG} failed: {e}");
            eprintln!("is Redis reachable at the URL given?");
            return Ok(ExitCode::FAILURE);
        }
    }

    let third = timed_read(&cache, &entry, freshness, origin).await?;
    let after_third = report("3rd read", &third, &calls, after_second);

    let counts = [after_first, after_second, after_third];
    if counts != [1, 1, 2] {
        eprintln!("FAILED: origin calls after each read were {counts:?}, expected [1, 1, 2]");
        if [first.0.state, second.0.state, third.0.state].contains(&CacheState::Bypass) {
            eprintln!("reads bypassed the cache: is Redis reachable at the URL given?");
        }
        return Ok(ExitCode::FAILURE);
    }
    println!("OK: origin calls after each read were {counts:?}");
    Ok(ExitCode::SUCCESS)
}

/// One read through the cache, and how long it took.
async fn timed_read(
    cache: &Cache,
    entry: &EntryKey,
    freshness: Freshness,
    origin: SocketAddr,
) -> io::Result<(Lookup<Weather>, Duration)> {
    let started = Instant::now();
    let lookup = cache
        .get_or_load_with(entry, freshness, ReadMode::Cached, || fetch_weather(origin, CITY))
        .await?;
    Ok((lookup, started.elapsed()))
}

/// Prints one read and returns the origin's call count after it (`previous`: the count before).
fn report(label: &str, read: &(Lookup<Weather>, Duration), calls: &AtomicU64, previous: u64) -> u64 {
    let (lookup, took) = read;
    let count = calls.load(Ordering::SeqCst);
    let origin = if count > previous {
        "origin called"
    } else {
        "origin not called"
    };
    let took = if *took >= Duration::from_millis(1) {
        format!("{:.1} ms", took.as_secs_f64() * 1e3)
    } else {
        format!("{} µs", took.as_micros())
    };
    let from = match (lookup.state, lookup.tier()) {
        (CacheState::Bypass, _) => format!(
            " (bypass: {})",
            lookup.bypass_reason.map_or("unknown", |r| r.as_str())
        ),
        (_, Some(tier)) => format!(" (from {tier})"),
        (_, None) => String::new(),
    };
    let weather = &lookup.value;
    println!(
        "{label}: {}{from}, {origin} (calls so far: {count}), {took}; value: {} {} °C, \
         made by origin call #{}",
        lookup.state.as_str(),
        weather.city,
        weather.temperature_c,
        weather.origin_calls
    );
    count
}

/// GET `/weather?city=<city>` from `origin` with a minimal HTTP/1.1 client.
async fn fetch_weather(origin: SocketAddr, city: &str) -> io::Result<Weather> {
    let mut stream = TcpStream::connect(origin).await?;
    let request = format!(
        "GET /weather?city={city} HTTP/1.1\r\nHost: {origin}\r\nAccept: application/json\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    // `Connection: close`: the response ends when the server closes the connection.
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let head_end = find(&response, b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of the response head"))?;
    let head = String::from_utf8_lossy(&response[..head_end]);
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(io::Error::other(format!("the origin answered {status:?}")));
    }
    serde_json::from_slice(&response[head_end + 4..]).map_err(io::Error::from)
}

/// The origin: answers every request with the weather and the number of calls so far, slowly.
async fn serve(listener: TcpListener, calls: Arc<AtomicU64>) {
    while let Ok((socket, _)) = listener.accept().await {
        let calls = Arc::clone(&calls);
        tokio::spawn(async move {
            if let Err(e) = answer(socket, &calls).await {
                eprintln!("origin: {e}");
            }
        });
    }
}

async fn answer(mut socket: TcpStream, calls: &AtomicU64) -> io::Result<()> {
    // Read the request head; this origin needs nothing from it.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while find(&head, b"\r\n\r\n").is_none() {
        let read = socket.read(&mut buf).await?;
        if read == 0 {
            return Ok(()); // closed before a whole request
        }
        head.extend_from_slice(&buf[..read]);
        if head.len() > 16 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
    }
    let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(ORIGIN_DELAY).await;
    let body = serde_json::json!({
        "city": CITY,
        "temperature_c": 21.5,
        "origin_calls": call,
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
