//! The cache against a real redis-server.

#[path = "redis/hardening.rs"]
mod hardening;

use std::convert::Infallible;
use std::time::Duration;

use cache_aside::{Cache, CacheSettings, CacheState, EntryKey, ReadMode};
use test_support::RedisServer;

fn cache(redis: &RedisServer) -> Cache {
    let settings = CacheSettings {
        namespace: "lib".into(),
        ..CacheSettings::default()
    };
    Cache::connect_lazy(redis.url(), settings).expect("cache builds")
}

fn entry(name: &str) -> EntryKey {
    EntryKey::new("q", name, &serde_json::json!({"p": 1}))
        .and_then(|e| e.with_scopes(["query:x", "tag:t"]))
        .expect("valid key")
}

async fn read(cache: &Cache, name: &str, value: u32) -> (CacheState, u32) {
    let lookup = cache
        .get_or_load(&entry(name), None, ReadMode::Cached, || async {
            Ok::<_, Infallible>(value)
        })
        .await
        .unwrap();
    (lookup.state, lookup.value)
}

#[tokio::test]
async fn a_fill_that_started_before_an_invalidation_is_never_read_after_it() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
    let key = entry("race");
    let slow_fill = cache.get_or_load(&key, None, ReadMode::Cached, || async move {
        let _ = started_tx.send(());
        let _ = finish_rx.await;
        Ok::<_, Infallible>(1u32)
    });
    let invalidate_mid_fill = async {
        started_rx.await.unwrap();
        cache.invalidate("tag:t").await.unwrap();
        finish_tx.send(()).unwrap();
    };
    let (filled, ()) = tokio::join!(slow_fill, invalidate_mid_fill);
    assert_eq!(filled.unwrap().state, CacheState::Miss);
    // The old fill landed under the old generation: a read now must load the new value.
    assert_eq!(read(&cache, "race", 2).await, (CacheState::Miss, 2));
    assert_eq!(read(&cache, "race", 3).await, (CacheState::Hit, 2));
}

#[tokio::test]
async fn invalidation_reaches_other_processes_caches() {
    let redis = RedisServer::start();
    let (a, b) = (cache(&redis), cache(&redis));
    assert_eq!(read(&a, "shared", 1).await, (CacheState::Miss, 1));
    assert_eq!(read(&b, "shared", 9).await, (CacheState::Hit, 1));
    b.invalidate("query:x").await.unwrap();
    assert_eq!(
        read(&a, "shared", 2).await,
        (CacheState::Miss, 2),
        "a's remembered generation is stale"
    );
    assert_eq!(read(&b, "shared", 9).await, (CacheState::Hit, 2));
}

#[tokio::test]
async fn a_lost_generation_counter_never_resurrects_old_entries() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    assert_eq!(read(&cache, "lost", 1).await, (CacheState::Miss, 1));
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // Simulate eviction or a flush of the counters only.
    let _: () = redis::cmd("DEL")
        .arg("lib:gen:{tag:t}")
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(read(&cache, "lost", 2).await, (CacheState::Miss, 2));
}

#[tokio::test]
async fn an_unreadable_entry_is_reloaded_not_an_error() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    assert_eq!(read(&cache, "corrupt", 1).await, (CacheState::Miss, 1));
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("lib:v1:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    let _: () = redis::cmd("SET")
        .arg(&keys[0])
        .arg("{not an envelope")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(read(&cache, "corrupt", 2).await, (CacheState::Miss, 2));
    assert_eq!(read(&cache, "corrupt", 3).await, (CacheState::Hit, 2));
}

#[tokio::test]
async fn refresh_overwrites_and_bypass_leaves_the_cache_alone() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    assert_eq!(read(&cache, "modes", 1).await, (CacheState::Miss, 1));
    let load = |v: u32| move || async move { Ok::<_, Infallible>(v) };
    let bypass = cache
        .get_or_load(&entry("modes"), None, ReadMode::Bypass, load(5))
        .await
        .unwrap();
    assert_eq!((bypass.state, bypass.value), (CacheState::Bypass, 5));
    assert_eq!(read(&cache, "modes", 9).await, (CacheState::Hit, 1));
    let refresh = cache
        .get_or_load(&entry("modes"), None, ReadMode::Refresh, load(7))
        .await
        .unwrap();
    assert_eq!((refresh.state, refresh.value), (CacheState::Miss, 7));
    assert_eq!(read(&cache, "modes", 9).await, (CacheState::Hit, 7));
}

mod stampede {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    fn settings(lock_ms: u64, wait_ms: u64) -> CacheSettings {
        CacheSettings {
            namespace: "lib".into(),
            fill_lock_ttl: Duration::from_millis(lock_ms),
            fill_wait: Duration::from_millis(wait_ms),
            ..CacheSettings::default()
        }
    }

    async fn slow_counted(loads: Arc<AtomicUsize>, pause: Duration) -> Result<u32, Infallible> {
        loads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(pause).await;
        Ok(42)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_cold_key_is_loaded_once_across_instances_and_requests() {
        let redis = RedisServer::start();
        let caches: Vec<Arc<Cache>> = (0..4)
            .map(|_| Arc::new(Cache::connect_lazy(redis.url(), settings(5_000, 8_000)).unwrap()))
            .collect();
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..100 {
            let cache = Arc::clone(&caches[i % 4]);
            let loads = Arc::clone(&loads);
            tasks.push(tokio::spawn(async move {
                let lookup = cache
                    .get_or_load(&entry("cold"), None, ReadMode::Cached, || {
                        slow_counted(loads, Duration::from_millis(300))
                    })
                    .await
                    .unwrap();
                (lookup.state, lookup.value)
            }));
        }
        let mut states = std::collections::HashMap::new();
        for task in tasks {
            let (state, value) = task.await.unwrap();
            assert_eq!(value, 42);
            *states.entry(state.as_str()).or_insert(0) += 1;
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one origin load: {states:?}");
        assert_eq!(states.get("miss"), Some(&1), "{states:?}");
        assert_eq!(states.get("hit"), Some(&99), "{states:?}");
    }

    #[tokio::test]
    async fn a_dead_lock_holder_frees_the_key_when_its_lock_expires() {
        let redis = RedisServer::start();
        let cache = Cache::connect_lazy(redis.url(), settings(800, 3_000)).unwrap();
        // A holder that took the lock and died: nobody will release it.
        let generations = cache.generations_of(&entry("orphan")).await.unwrap();
        let lock = cache.key_space().lock_key(&entry("orphan"), &generations);
        let client = redis::Client::open(redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SET")
            .arg(&lock)
            .arg("dead-holder")
            .arg("PX")
            .arg(800)
            .query_async(&mut conn)
            .await
            .unwrap();

        let loads = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let lookup = cache
            .get_or_load(&entry("orphan"), None, ReadMode::Cached, || {
                slow_counted(Arc::clone(&loads), Duration::from_millis(10))
            })
            .await
            .unwrap();
        let waited = started.elapsed();
        assert_eq!(
            (lookup.state, loads.load(Ordering::SeqCst)),
            (CacheState::Miss, 1)
        );
        assert!(
            waited >= Duration::from_millis(600),
            "it waited for the lock to expire: {waited:?}"
        );
        assert!(
            waited < Duration::from_millis(3_000),
            "within its fill budget: {waited:?}"
        );
    }
}

#[tokio::test]
async fn a_thousand_fills_racing_invalidations_never_expose_pre_invalidation_data() {
    let redis = RedisServer::start();
    let (writer, reader) = (cache(&redis), cache(&redis));
    let key = entry("raced");
    let mut stale_reads = 0;
    for round in 0u32..1000 {
        writer.invalidate("query:x").await.unwrap(); // each round starts cold
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
        // A fill that read the origin before the write ("old" = round) and stores after it.
        let fill = writer.get_or_load(&key, None, ReadMode::Cached, || async move {
            let _ = started_tx.send(());
            let _ = finish_rx.await;
            Ok::<_, Infallible>(round)
        });
        let write_then_invalidate = async {
            started_rx.await.unwrap();
            reader.invalidate("tag:t").await.unwrap();
            finish_tx.send(()).unwrap();
        };
        let (filled, ()) = tokio::join!(fill, write_then_invalidate);
        assert_eq!(
            filled.unwrap().value,
            round,
            "the racing fill did load the old value"
        );
        // After the invalidation returned, the origin holds round + 1_000_000.
        let after = reader
            .get_or_load(&key, None, ReadMode::Cached, || async move {
                Ok::<_, Infallible>(round + 1_000_000)
            })
            .await
            .unwrap();
        if after.value != round + 1_000_000 {
            stale_reads += 1;
        }
    }
    assert_eq!(stale_reads, 0);
}

mod freshness {
    use super::*;
    use cache_aside::Freshness;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn policy(ttl_ms: u64, swr_ms: u64, sie_ms: u64, beta: f64) -> Freshness {
        Freshness {
            ttl: Some(Duration::from_millis(ttl_ms)),
            stale_while_revalidate: Duration::from_millis(swr_ms),
            stale_if_error: Duration::from_millis(sie_ms),
            early_refresh_beta: beta,
            max_stored_bytes: None,
            memory_trust: None,
            negative_ttl: None,
        }
    }

    fn no_jitter(redis: &RedisServer) -> Arc<Cache> {
        let settings = CacheSettings {
            namespace: "lib".into(),
            ttl_jitter: 0.0,
            ..CacheSettings::default()
        };
        Arc::new(Cache::connect_lazy(redis.url(), settings).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn expired_within_swr_one_request_refreshes_while_the_others_get_stale() {
        let redis = RedisServer::start();
        let cache = no_jitter(&redis);
        let fresh = policy(300, 5_000, 0, 0.0);
        let key = entry("swr");
        cache
            .get_or_load_with(&key, fresh, ReadMode::Cached, || async {
                Ok::<_, Infallible>(1u32)
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(350)).await;

        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (cache, loads, key) = (Arc::clone(&cache), Arc::clone(&loads), key.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load_with(&key, fresh, ReadMode::Cached, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Ok::<_, Infallible>(2u32)
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            let lookup = task.await.unwrap();
            seen.push((lookup.state, lookup.value));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "{seen:?}");
        assert_eq!(
            seen.iter().filter(|s| **s == (CacheState::Miss, 2)).count(),
            1,
            "{seen:?}"
        );
        assert_eq!(
            seen.iter().filter(|s| **s == (CacheState::Stale, 1)).count(),
            9,
            "{seen:?}"
        );
        let after = cache
            .get_or_load_with(&key, fresh, ReadMode::Cached, || async {
                Ok::<_, Infallible>(3u32)
            })
            .await
            .unwrap();
        assert_eq!((after.state, after.value), (CacheState::Hit, 2));
    }

    #[tokio::test]
    async fn stale_if_error_serves_the_old_value_only_within_its_window() {
        let redis = RedisServer::start();
        let cache = no_jitter(&redis);
        let sie = policy(200, 0, 800, 0.0);
        let key = entry("sie");
        cache
            .get_or_load_with(&key, sie, ReadMode::Cached, || async { Ok::<_, &str>(1u32) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let served = cache
            .get_or_load_with(&key, sie, ReadMode::Cached, || async {
                Err::<u32, _>("origin down")
            })
            .await;
        assert_eq!(served.map(|l| (l.state, l.value)), Ok((CacheState::Stale, 1)));
        tokio::time::sleep(Duration::from_millis(800)).await;
        let gone = cache
            .get_or_load_with(&key, sie, ReadMode::Cached, || async {
                Err::<u32, _>("origin down")
            })
            .await;
        assert_eq!(
            gone.map(|l| l.value),
            Err("origin down"),
            "past the window the error is returned"
        );
    }

    /// Past the TTL, with a stale value that may be served and another request loading it,
    /// a reader answers the stale value at once instead of waiting out its deadline.
    #[tokio::test]
    async fn with_a_holder_loading_a_reader_gets_the_stale_value_at_once() {
        let redis = RedisServer::start();
        let cache = no_jitter(&redis);
        let sie = policy(200, 0, 60_000, 0.0);
        let key = entry("held");
        cache
            .get_or_load_with(&key, sie, ReadMode::Cached, || async { Ok::<_, &str>(1u32) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Another instance holds the fill lock of the current generations.
        let generations = cache.generations_of(&key).await.unwrap();
        let lock = cache.key_space().lock_key(&key, &generations);
        let mut raw = redis::Client::open(redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(&lock)
            .arg("someone-else")
            .arg("PX")
            .arg(60_000)
            .query_async(&mut raw)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let started = std::time::Instant::now();
        let served = cache
            .get_or_load_with(
                &key,
                sie,
                cache_aside::Read::until(ReadMode::Cached, Some(deadline)),
                || async { Err::<u32, _>("a second load while the holder loads") },
            )
            .await;
        assert_eq!(served.map(|l| (l.state, l.value)), Ok((CacheState::Stale, 1)));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered without waiting for the deadline: {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn xfetch_refreshes_a_fresh_hot_key_early_and_beta_zero_never_does() {
        let redis = RedisServer::start();
        let cache = no_jitter(&redis);
        let key = entry("xfetch");
        // The load took 200 ms and the entry lives 60 s: with beta 0 nothing refreshes early.
        let slow_load = || async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, Infallible>(1u32)
        };
        cache
            .get_or_load_with(&key, policy(60_000, 0, 0, 0.0), ReadMode::Cached, slow_load)
            .await
            .unwrap();
        for _ in 0..20 {
            let l = cache
                .get_or_load_with(&key, policy(60_000, 0, 0, 0.0), ReadMode::Cached, || async {
                    Ok::<_, Infallible>(9u32)
                })
                .await
                .unwrap();
            assert_eq!((l.state, l.value), (CacheState::Hit, 1));
        }
        // With a huge beta the next reads are due long before expiry: one of them refreshes.
        let mut refreshed = 0;
        for _ in 0..20 {
            let l = cache
                .get_or_load_with(&key, policy(60_000, 0, 0, 1e6), ReadMode::Cached, || async {
                    Ok::<_, Infallible>(2u32)
                })
                .await
                .unwrap();
            if l.state == CacheState::Miss {
                refreshed += 1;
                assert_eq!(l.value, 2);
            }
        }
        assert!(refreshed >= 1, "early refresh happened");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_value_due_for_early_refresh_is_refreshed_once_whatever_the_readers() {
        let redis = RedisServer::start();
        let key = entry("due-once");
        // A 300 ms load and beta 2000: the value's head start (at least 0.1 x 300 ms x 2000)
        // covers its whole 60 s life, so every reader finds it due at once. Its refresh loads
        // instantly, so the new value is never due early.
        let due = policy(60_000, 0, 0, 2_000.0);
        let first = no_jitter(&redis);
        first
            .get_or_load_with(&key, due, ReadMode::Cached, || async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, Infallible>(1u32)
            })
            .await
            .unwrap();
        let loads = Arc::new(AtomicUsize::new(0));
        // Two caches stand for two processes, 32 readers each.
        let (a, b) = (no_jitter(&redis), no_jitter(&redis));
        let readers = (0..64).map(|i| {
            let cache = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let (key, loads) = (key.clone(), Arc::clone(&loads));
            tokio::spawn(async move {
                cache
                    .get_or_load_with(&key, due, ReadMode::Cached, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(2u32)
                    })
                    .await
                    .unwrap()
                    .value
            })
        });
        let values = futures::future::join_all(readers).await;
        assert!(values.iter().all(|v| matches!(v, Ok(1 | 2))), "{values:?}");
        assert_eq!(
            loads.load(Ordering::SeqCst),
            1,
            "one refresh for 64 readers in 2 processes"
        );
    }
}

mod memory {
    use super::*;
    use cache_aside::Freshness;

    fn trusting(redis: &RedisServer, trust_ms: u64) -> Cache {
        let settings = CacheSettings {
            namespace: "mem".into(),
            memory_trust: Duration::from_millis(trust_ms),
            ..CacheSettings::default()
        };
        Cache::connect_lazy(redis.url(), settings).expect("cache builds")
    }

    async fn get(cache: &Cache, freshness: Freshness, value: u32) -> (CacheState, Option<&'static str>, u32) {
        let lookup = cache
            .get_or_load_with(&entry("m"), freshness, ReadMode::Cached, || async {
                Ok::<_, Infallible>(value)
            })
            .await
            .unwrap();
        (lookup.state, lookup.tier(), lookup.value)
    }

    #[tokio::test]
    async fn a_redis_hit_is_then_answered_from_memory_without_a_round_trip() {
        let redis = RedisServer::start();
        let cache = trusting(&redis, 60_000);
        let f = Freshness::ttl(Some(Duration::from_secs(60)));
        assert_eq!(get(&cache, f, 1).await, (CacheState::Miss, None, 1));
        assert_eq!(get(&cache, f, 2).await, (CacheState::Hit, Some("redis"), 1));
        cache.metrics().take();
        assert_eq!(get(&cache, f, 3).await, (CacheState::Hit, Some("memory"), 1));
        let taken = cache.metrics().take();
        assert_eq!((taken.redis_ops, taken.memory_hits), (0, 1));
        let off = Freshness {
            memory_trust: Some(Duration::ZERO),
            ..f
        };
        assert_eq!(
            get(&cache, off, 4).await,
            (CacheState::Hit, Some("redis"), 1),
            "trust 0: Redis every time"
        );
    }

    #[tokio::test]
    async fn an_invalidation_elsewhere_is_seen_once_the_trust_runs_out_and_here_at_once() {
        let redis = RedisServer::start();
        let (here, elsewhere) = (trusting(&redis, 300), trusting(&redis, 300));
        let f = Freshness::ttl(Some(Duration::from_secs(60)));
        get(&here, f, 1).await;
        get(&here, f, 1).await;
        assert_eq!(get(&here, f, 9).await.1, Some("memory"));
        elsewhere.invalidate("query:x").await.unwrap();
        assert_eq!(
            get(&here, f, 2).await.2,
            1,
            "within the trust, memory still answers"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            get(&here, f, 2).await,
            (CacheState::Miss, None, 2),
            "past it, Redis says invalidated"
        );
        get(&here, f, 2).await;
        assert_eq!(get(&here, f, 9).await.1, Some("memory"));
        here.invalidate("tag:t").await.unwrap();
        assert_eq!(
            get(&here, f, 3).await,
            (CacheState::Miss, None, 3),
            "a local invalidation clears memory"
        );
    }
}
