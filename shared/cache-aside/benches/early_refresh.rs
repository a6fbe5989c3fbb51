//! A hot key across several expiries: origin loads and read latency without early refresh,
//! with XFetch, and with XFetch plus stale-while-revalidate. Real redis-server on loopback;
//! the "origin" sleeps 200 ms.
//!
//! cargo bench -p cache-aside --bench early_refresh -- [--seconds 20] [--readers 16]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_aside::{Cache, CacheSettings, EntryKey, Freshness, ReadMode};
use test_support::stats::{summarize, table_row, TABLE_HEADER};
use test_support::RedisServer;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const LOAD: Duration = Duration::from_millis(200);
const TTL: Duration = Duration::from_secs(2);

async fn run(label: &str, redis: &RedisServer, freshness: Freshness, seconds: u64, readers: u64) {
    let settings = CacheSettings {
        namespace: label.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
        ttl_jitter: 0.0,
        ..CacheSettings::default()
    };
    let cache = Arc::new(Cache::connect_lazy(redis.url(), settings).expect("cache"));
    let key = EntryKey::new("q", "hot", &serde_json::json!({})).expect("key");
    let loads = Arc::new(AtomicUsize::new(0));
    // When each load started and ended (ms since the run began), in start order.
    let spans: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let began = Instant::now();
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..readers {
        let (cache, key, loads, spans) = (
            Arc::clone(&cache),
            key.clone(),
            Arc::clone(&loads),
            Arc::clone(&spans),
        );
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut stale = 0;
            while Instant::now() < until {
                let started = Instant::now();
                let lookup = cache
                    .get_or_load_with(&key, freshness, ReadMode::Cached, || {
                        let (loads, spans) = (Arc::clone(&loads), Arc::clone(&spans));
                        async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            let start = began.elapsed().as_millis() as u64;
                            tokio::time::sleep(LOAD).await;
                            let end = began.elapsed().as_millis() as u64;
                            spans.lock().expect("spans").push((start, end));
                            Ok::<_, Infallible>(42u32)
                        }
                    })
                    .await
                    .expect("origin never fails here");
                samples.push(started.elapsed());
                stale += usize::from(lookup.state.as_str() == "stale");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (samples, stale)
        }));
    }
    let (mut samples, mut stale) = (Vec::new(), 0);
    for task in tasks {
        let (s, st) = task.await.expect("reader");
        samples.extend(s);
        stale += st;
    }
    let slow = samples.iter().filter(|d| **d > Duration::from_millis(50)).count();
    let summary = summarize(&mut samples);
    let mut spans = spans.lock().expect("spans").clone();
    spans.sort_unstable();
    let windows = seconds as f64 / TTL.as_secs_f64();
    // After the cold fill, each load replaces the value of the one before it: it came before
    // that value's expiry or not.
    let refreshes = spans.len().saturating_sub(1);
    let early = spans
        .windows(2)
        .filter(|pair| pair[1].0 < pair[0].1 + TTL.as_millis() as u64)
        .count();
    println!(
        "{}  origin loads: {} ({:.2} per TTL window after the cold fill, {} of {refreshes} before expiry), \
         requests over 50 ms: {slow}, stale answers: {stale}",
        table_row(label, &summary),
        loads.load(Ordering::SeqCst),
        refreshes as f64 / windows,
        early,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (seconds, readers) = (arg("--seconds", 20), arg("--readers", 16));
    let redis = RedisServer::start();
    println!(
        "\nHot key, TTL {TTL:?}, origin load {LOAD:?}, {readers} readers for {seconds} s ({} expiries)\n\n{TABLE_HEADER}",
        seconds / TTL.as_secs()
    );
    let base = Freshness {
        ttl: Some(TTL),
        ..Freshness::ttl(None)
    };
    run(
        "no early refresh",
        &redis,
        Freshness {
            early_refresh_beta: 0.0,
            ..base
        },
        seconds,
        readers,
    )
    .await;
    run(
        "XFetch beta 1",
        &redis,
        Freshness {
            early_refresh_beta: 1.0,
            ..base
        },
        seconds,
        readers,
    )
    .await;
    let swr = Freshness {
        early_refresh_beta: 1.0,
        stale_while_revalidate: Duration::from_secs(1),
        ..base
    };
    run("XFetch + SWR 1 s", &redis, swr, seconds, readers).await;
}
