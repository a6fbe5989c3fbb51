//! Production hardening against a real redis-server: every key carries a TTL, the process's
//! own memory is bounded, damaged entries repair themselves, object fills are fenced.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_aside::{
    Cache, CacheSettings, CacheState, CachedObject, EntryKey, ObjectPolicy, ObjectState, ReadMode,
    MAX_TRACKED_SCOPES,
};
use redis::aio::MultiplexedConnection;
use test_support::RedisServer;

fn cache(redis: &RedisServer) -> Cache {
    // These tests damage Redis behind the cache's back: every read must see it at once.
    let settings = CacheSettings {
        namespace: "hard".into(),
        memory_max_bytes: 0,
        ..CacheSettings::default()
    };
    Cache::connect_lazy(redis.url(), settings).expect("cache builds")
}

async fn raw(redis: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key of the namespace with its PTTL.
async fn keys_and_ttls(conn: &mut MultiplexedConnection) -> Vec<(String, i64)> {
    let keys: Vec<String> = redis::cmd("KEYS").arg("hard:*").query_async(conn).await.unwrap();
    let mut out = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(conn).await.unwrap();
        out.push((key, ttl));
    }
    out
}

fn entity_entry(name: &str) -> EntryKey {
    EntryKey::new("q", "summary", &serde_json::json!({ "name": name }))
        .and_then(|e| e.with_scopes(["query:summary".to_owned(), format!("entity:summary:name:{name}")]))
        .unwrap()
}

async fn read_entity(cache: &Cache, name: &str, value: u32) -> (CacheState, u32) {
    let lookup = cache
        .get_or_load(&entity_entry(name), None, ReadMode::Cached, || async {
            Ok::<_, Infallible>(value)
        })
        .await
        .unwrap();
    (lookup.state, lookup.value)
}

#[tokio::test]
async fn random_entities_leave_no_key_without_a_ttl_and_bounded_process_memory() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    let names = MAX_TRACKED_SCOPES + 2_000;
    for i in 0..names {
        read_entity(&cache, &format!("r{i}-{}", fastrand::u64(..)), 1).await;
        assert!(cache.tracked_scopes() <= MAX_TRACKED_SCOPES);
    }
    cache.invalidate("tag:restaurants").await.unwrap();
    cache.invalidate("entity:summary:name:r1").await.unwrap();
    let mut conn = raw(&redis).await;
    let keys = keys_and_ttls(&mut conn).await;
    assert!(
        keys.len() > names,
        "values and counters are written: {}",
        keys.len()
    );
    let immortal: Vec<&(String, i64)> = keys.iter().filter(|(_, ttl)| *ttl < 0).collect();
    assert!(
        immortal.is_empty(),
        "{} keys without a TTL, e.g. {:?}",
        immortal.len(),
        immortal.first()
    );
}

#[tokio::test]
async fn counters_outlive_the_entries_written_under_them_and_old_ones_get_a_ttl() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    let mut conn = raw(&redis).await;
    // A counter written by an older version, without a TTL.
    let _: () = redis::cmd("SET")
        .arg("hard:gen:{query:summary}")
        .arg(7)
        .query_async(&mut conn)
        .await
        .unwrap();
    let week = Duration::from_secs(7 * 24 * 3600);
    let entry = entity_entry("long");
    cache
        .get_or_load(&entry, Some(week), ReadMode::Cached, || async {
            Ok::<_, Infallible>(1)
        })
        .await
        .unwrap();
    for (key, ttl) in keys_and_ttls(&mut conn).await {
        assert!(ttl > 0, "{key} has no TTL");
        if key.contains(":gen:") {
            assert!(
                ttl as u128 > week.as_millis() * 9 / 10,
                "{key} expires before its entries: {ttl} ms"
            );
        }
    }
}

#[tokio::test]
async fn damaged_entries_and_counters_are_replaced_on_the_next_fill() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    let mut conn = raw(&redis).await;
    assert_eq!(read_entity(&cache, "d", 1).await, (CacheState::Miss, 1));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("hard:v1:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let value_key = keys.first().expect("the entry exists").clone();

    // Another type at the value key.
    let _: () = redis::pipe()
        .cmd("DEL")
        .arg(&value_key)
        .cmd("HSET")
        .arg(&value_key)
        .arg("x")
        .arg("y")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        read_entity(&cache, "d", 2).await,
        (CacheState::Miss, 2),
        "WRONGTYPE: reloaded"
    );
    assert_eq!(
        read_entity(&cache, "d", 3).await,
        (CacheState::Hit, 2),
        "and repaired"
    );

    // Another envelope format at the value key.
    let _: () = redis::cmd("SET")
        .arg(&value_key)
        .arg(r#"{"v":99,"created_ms":1,"fresh_until_ms":99999999999999,"load_ms":0,"value":5}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(read_entity(&cache, "d", 4).await, (CacheState::Miss, 4));
    assert_eq!(read_entity(&cache, "d", 5).await, (CacheState::Hit, 4));

    // A counter that is not an integer, then one of another type.
    for damage in ["SET", "LPUSH"] {
        let counter = "hard:gen:{entity:summary:name:d}";
        let _: () = redis::pipe()
            .cmd("DEL")
            .arg(counter)
            .cmd(damage)
            .arg(counter)
            .arg("garbage")
            .query_async(&mut conn)
            .await
            .unwrap();
        let (state, _) = read_entity(&cache, "d", 6).await;
        assert_eq!(
            state,
            CacheState::Miss,
            "{damage}: a fresh generation, not a bypass"
        );
        assert_eq!(read_entity(&cache, "d", 7).await.0, CacheState::Hit, "{damage}");
        let _: () = redis::cmd("DEL")
            .arg(counter)
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: () = redis::cmd(damage)
            .arg(counter)
            .arg("garbage")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(
            cache.invalidate("entity:summary:name:d").await.is_ok(),
            "{damage}: invalidation repairs"
        );
    }
}

fn policy() -> ObjectPolicy {
    ObjectPolicy {
        ttl: Duration::from_secs(3600),
        missing_ttl: Duration::from_secs(30),
        max_cached_bytes: 1024,
        ..ObjectPolicy::default()
    }
}

fn object(bytes: &[u8]) -> ObjectState {
    ObjectState::Found(CachedObject {
        bytes: bytes.to_vec(),
        content_type: "text/plain".into(),
    })
}

#[tokio::test]
async fn a_thousand_object_fills_racing_an_upload_never_serve_the_old_bytes_after_its_event() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    let mut old_reads = 0;
    for round in 0..1_000u32 {
        let key = format!("obj/{}.txt", round % 7);
        let old = format!("v{round}-old").into_bytes();
        let new = format!("v{round}-new").into_bytes();
        let origin = Arc::new(Mutex::new(Some(old.clone())));
        let _ = cache.drop_object(&key).await;
        let (read_tx, read_rx) = tokio::sync::oneshot::channel();
        let (event_tx, event_rx) = tokio::sync::oneshot::channel::<()>();
        let fill = {
            let origin = Arc::clone(&origin);
            cache.get_or_load_object(&key, policy(), ReadMode::Cached, move || async move {
                // The fill reads the origin, then stalls until the upload and its event are done.
                let seen = origin.lock().unwrap().clone();
                let _ = read_tx.send(());
                let _ = event_rx.await;
                Ok::<_, Infallible>(seen.map_or(ObjectState::Missing, |b| object(&b)))
            })
        };
        let upload_and_event = async {
            read_rx.await.unwrap();
            // Every other round the object did not exist yet: a late upload must not stay "missing".
            *origin.lock().unwrap() = Some(new.clone());
            cache.drop_object(&key).await.unwrap();
            event_tx.send(()).unwrap();
        };
        let (filled, ()) = tokio::join!(fill, upload_and_event);
        assert!(
            !filled.unwrap().cached,
            "round {round}: the fenced write was refused"
        );
        let current = origin.lock().unwrap().clone().unwrap();
        let after = cache
            .get_or_load_object(&key, policy(), ReadMode::Cached, || async {
                Ok::<_, Infallible>(object(&current))
            })
            .await
            .unwrap();
        match after.object {
            ObjectState::Found(o) if o.bytes == new => {}
            other => {
                old_reads += 1;
                eprintln!("round {round}: {other:?}");
            }
        }
    }
    assert_eq!(old_reads, 0, "reads of the old bytes after the event");
}

#[tokio::test]
async fn objects_too_large_to_serve_are_remembered_by_size() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    let big = || async { Ok::<_, Infallible>(ObjectState::TooLarge { size: 9_000_000 }) };
    let first = cache
        .get_or_load_object("big.bin", policy(), ReadMode::Cached, big)
        .await
        .unwrap();
    assert_eq!((first.state, first.cached), (CacheState::Miss, true));
    let never = || async { Err::<ObjectState, _>("the origin is not asked again") };
    let again = cache
        .get_or_load_object("big.bin", policy(), ReadMode::Cached, never)
        .await
        .unwrap();
    assert_eq!(
        (again.object, again.state),
        (ObjectState::TooLarge { size: 9_000_000 }, CacheState::Hit)
    );
}

#[tokio::test]
async fn an_object_fence_starts_at_the_clock_so_an_expired_one_never_repeats_a_value() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    let before_us = cache_aside::unix_now_ms() * 1000;
    cache.drop_object("fenced.txt").await.unwrap();
    let mut conn = raw(&redis).await;
    let fence: u64 = redis::cmd("GET")
        .arg(cache.key_space().object_fence_key("fenced.txt"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        fence > before_us,
        "a new fence starts above every value an expired one had: {fence}"
    );
}

#[tokio::test]
async fn a_bulk_write_that_read_a_fence_before_a_drop_is_refused() {
    let redis = RedisServer::start();
    let cache = cache(&redis);
    let budget = Duration::from_secs(2);
    let fences = cache.object_fences(&["a.txt", "b.txt"], budget).await.unwrap();
    // A newer change of a.txt reached the invalidator after the writer read the fences.
    cache.drop_object("a.txt").await.unwrap();
    let put = |key: &str, fence: &str| {
        (
            key.to_owned(),
            CachedObject {
                bytes: b"bulk".to_vec(),
                content_type: "text/plain".into(),
            },
            fence.to_owned(),
        )
    };
    let written = cache
        .put_objects(
            &[put("a.txt", &fences[0]), put("b.txt", &fences[1])],
            Duration::from_secs(60),
            budget,
        )
        .await
        .unwrap();
    assert_eq!(written, 1, "only the object no drop touched");
    let never = || async { Ok::<_, Infallible>(ObjectState::Missing) };
    let a = cache
        .get_or_load_object("a.txt", policy(), ReadMode::Cached, never)
        .await
        .unwrap();
    assert_eq!(
        a.state,
        CacheState::Miss,
        "a.txt was not re-cached with the old bytes"
    );
    let b = cache
        .get_or_load_object("b.txt", policy(), ReadMode::Cached, never)
        .await
        .unwrap();
    assert_eq!((b.state, b.object), (CacheState::Hit, object(b"bulk")));
}
