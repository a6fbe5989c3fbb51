//! Cache hit through the library, from Redis and from the process's memory, against its own
//! floor: a raw Redis `GET` of the same stored bytes on the same kind of connection, against a
//! real redis-server on loopback, interleaved so all three see the same conditions. Two sizes:
//! a small result (8 rows, ~1 KB, stored plain) and a 500-row search (~93 KB of JSON, stored
//! LZ4-compressed). Values are `Arc<RawValue>`, as the query API caches its rows.
//!
//! cargo bench -p cache-aside --bench hit_latency -- [--iterations N]   (default 10000)

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_aside::{Cache, CacheSettings, EntryKey, ReadMode};
use serde_json::value::RawValue;
use test_support::stats::{summarize, table_row, Summary, TABLE_HEADER};
use test_support::RedisServer;

fn iterations() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// `n` rows shaped like the demo's query results: 8 is a small result (about 1 KB), 500 the
/// article search (about 93 KB).
fn sample_rows(n: usize) -> Arc<RawValue> {
    let rows: Vec<_> = (1..=n)
        .map(|i| {
            serde_json::json!({"id": i, "name": format!("Product {i}"), "category": "tools",
                "title": "A survey of the northern valley and its rivers", "source": "archive",
                "price": 10.99 + i as f64, "stock": i * 3, "created_at": "2026-01-02T00:00:00Z"})
        })
        .collect();
    serde_json::value::to_raw_value(&rows)
        .expect("rows encode")
        .into()
}

/// The figures of one entry size.
struct Measured {
    rows: usize,
    stored_bytes: usize,
    raw: Summary,
    redis: Summary,
    memory: Summary,
    back_to_back: Summary,
}

async fn measure(cache: &Cache, remembering: &Cache, rows: usize, n: usize) -> Measured {
    let entry = EntryKey::new("q", &format!("bench{rows}"), &serde_json::json!({"limit": rows}))
        .and_then(|e| e.with_scopes(["query:bench", "tag:products"]))
        .expect("key");
    let value = sample_rows(rows);
    let load = || async { Ok::<_, Infallible>(Arc::clone(&value)) };
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
        assert_eq!(hit.value.get().len(), value.get().len());

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
    Measured {
        rows,
        stored_bytes: bytes.len(),
        raw: summarize(&mut gets),
        redis: summarize(&mut hits),
        memory: summarize(&mut memory_hits),
        back_to_back: summarize(&mut back_to_back),
    }
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
            memory_max_bytes: 64 * 1024 * 1024,
            memory_trust: Duration::from_secs(600),
            ..settings
        },
    )
    .expect("cache");
    println!(
        "\nCache hit vs raw GET, {n} interleaved rounds after {} warm-up per size\n",
        n / 10
    );
    println!("{TABLE_HEADER}");
    let mut measured = Vec::new();
    for rows in [8, 500] {
        let m = measure(&cache, &remembering, rows, n).await;
        let label = |what: &str| format!("{} rows ({} B stored): {what}", m.rows, m.stored_bytes);
        println!("{}", table_row(&label("raw Redis GET (floor)"), &m.raw));
        println!("{}", table_row(&label("cache-aside hit (Redis)"), &m.redis));
        println!("{}", table_row(&label("cache-aside hit (memory)"), &m.memory));
        println!(
            "{}",
            table_row(&label("memory hit, back to back"), &m.back_to_back)
        );
        measured.push(m);
    }
    println!();
    let overhead = |a: f64, b: f64| Duration::from_nanos(((a - b) * 1000.0).max(0.0) as u64);
    for m in &measured {
        println!(
            "{} rows: Redis hit over its raw GET: p50 +{:?} ({:.2}x), p99 +{:?} ({:.2}x); memory hit p50 {:.1} µs",
            m.rows,
            overhead(m.redis.p50_us, m.raw.p50_us),
            m.redis.p50_us / m.raw.p50_us,
            overhead(m.redis.p99_us, m.raw.p99_us),
            m.redis.p99_us / m.raw.p99_us,
            m.back_to_back.p50_us,
        );
    }
}
