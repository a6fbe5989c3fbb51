//! Cache hit through the library, from Redis and from the process's memory, vs a raw Redis GET
//! of the same bytes, same connection type, against a real redis-server on loopback,
//! interleaved so all three see the same conditions.
//!
//! cargo bench -p cache-aside --bench hit_latency -- [--iterations N]   (default 10000)

use std::convert::Infallible;
use std::time::{Duration, Instant};

use cache_aside::{Cache, CacheSettings, EntryKey, ReadMode};
use serde_json::value::RawValue;
use test_support::stats::{summarize, table_row, TABLE_HEADER};
use test_support::RedisServer;

fn iterations() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// About 1 KB of rows, the size of a small query result.
fn sample_rows() -> Box<RawValue> {
    let rows: Vec<_> = (1..=8)
        .map(|i| {
            serde_json::json!({"id": i, "name": format!("Product {i}"), "category": "tools",
                "price": 10.99 + i as f64, "stock": i * 3, "created_at": "2026-01-02T00:00:00Z"})
        })
        .collect();
    serde_json::value::to_raw_value(&rows).expect("rows encode")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n = iterations();
    let redis = RedisServer::start();
    let settings = CacheSettings {
        namespace: "bench".into(),
        memory_max_bytes: 0,
        ..CacheSettings::default()
    };
    let cache = Cache::connect_lazy(redis.url(), settings.clone()).expect("cache");
    // The same entries, with the memory tier trusted for the whole run.
    let remembering = Cache::connect_lazy(
        redis.url(),
        CacheSettings {
            memory_max_bytes: 16 * 1024 * 1024,
            memory_trust: Duration::from_secs(600),
            ..settings
        },
    )
    .expect("cache");
    let entry = EntryKey::new("q", "bench", &serde_json::json!({"limit": 8}))
        .and_then(|e| e.with_scopes(["query:bench", "tag:products"]))
        .expect("key");
    let value = sample_rows();
    let load = || async { Ok::<_, Infallible>(value.clone()) };
    let fill = cache
        .get_or_load(&entry, None, ReadMode::Cached, load)
        .await
        .expect("fill");
    assert_eq!(fill.state.as_str(), "miss");

    // The raw path reads the exact bytes the library reads, on the same kind of connection.
    let mut raw = cache.store().connection();
    let generations = cache.generations_of(&entry).await.expect("generations");
    let key = cache.key_space().value_key(&entry, &generations);
    let bytes: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .expect("bytes");

    let mut hits = Vec::with_capacity(n);
    let mut gets = Vec::with_capacity(n);
    let mut memory_hits = Vec::with_capacity(n);
    for round in 0..(n + n / 10) {
        let t = Instant::now();
        let got: Vec<u8> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .expect("raw GET");
        let raw_time = t.elapsed();
        assert_eq!(got.len(), bytes.len());

        let t = Instant::now();
        let hit = cache
            .get_or_load(&entry, None, ReadMode::Cached, load)
            .await
            .expect("hit");
        let hit_time = t.elapsed();
        assert_eq!(hit.tier(), Some("redis"));

        let t = Instant::now();
        let hit = remembering
            .get_or_load(&entry, None, ReadMode::Cached, load)
            .await
            .expect("hit");
        let memory_time = t.elapsed();
        if round > 0 {
            assert_eq!(hit.tier(), Some("memory"));
        }
        if round >= n / 10 {
            gets.push(raw_time);
            hits.push(hit_time);
            memory_hits.push(memory_time);
        }
    }
    // Memory hits back to back, with no network I/O between them to disturb the CPU caches.
    let mut back_to_back = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let hit = remembering
            .get_or_load(&entry, None, ReadMode::Cached, load)
            .await
            .expect("hit");
        back_to_back.push(t.elapsed());
        assert_eq!(hit.tier(), Some("memory"));
    }
    let back_to_back = summarize(&mut back_to_back);
    let raw_summary = summarize(&mut gets);
    let hit_summary = summarize(&mut hits);
    let memory_summary = summarize(&mut memory_hits);
    println!(
        "\nCache hit vs raw GET, {n} interleaved rounds after {} warm-up, value {} bytes\n",
        n / 10,
        bytes.len()
    );
    println!("{TABLE_HEADER}");
    println!("{}", table_row("raw Redis GET (baseline)", &raw_summary));
    println!("{}", table_row("cache-aside hit (Redis)", &hit_summary));
    println!("{}", table_row("cache-aside hit (memory)", &memory_summary));
    println!("{}", table_row("memory hit, back to back", &back_to_back));
    let overhead = |a: f64, b: f64| Duration::from_nanos(((a - b) * 1000.0).max(0.0) as u64);
    println!(
        "\nhit overhead over raw GET: p50 +{:?} ({:.2}x), p99 +{:?} ({:.2}x)",
        overhead(hit_summary.p50_us, raw_summary.p50_us),
        hit_summary.p50_us / raw_summary.p50_us,
        overhead(hit_summary.p99_us, raw_summary.p99_us),
        hit_summary.p99_us / raw_summary.p99_us,
    );
}
