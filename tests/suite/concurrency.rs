//! Stampede control across OS processes, counted by the database itself.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::RedisServer;

use crate::support::{seeded_database, sql};

/// A catalog with one slow query whose every execution is counted by the database.
const COUNTED_CATALOG: &str = "[[query]]
name = 'counted_slow'
sql = 'SELECT counted_slow() AS calls'
ttl_seconds = 60
";

/// `counted_slow()` takes a number from a sequence (never rolled back, even when the client is
/// killed mid-query) and sleeps a second.
fn counted_slow_function(db: &str) {
    sql(db, "CREATE SEQUENCE origin_calls");
    sql(
        db,
        "CREATE FUNCTION counted_slow() RETURNS bigint LANGUAGE sql VOLATILE AS $$ \
         SELECT pg_sleep(1) FROM (SELECT nextval('origin_calls')) AS counted; \
         SELECT currval('origin_calls') $$",
    );
}

/// How many times the database ran `counted_slow()`.
fn origin_executions(db: &str) -> String {
    sql(
        db,
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM origin_calls",
    )
}

fn catalog_file(dir: &tempfile::TempDir) -> String {
    let catalog = dir.path().join("queries.toml");
    std::fs::write(&catalog, COUNTED_CATALOG).unwrap();
    catalog.to_string_lossy().into_owned()
}

/// One "Lambda instance" sending `requests` concurrent requests.
pub(crate) fn load_client(requests: usize, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_load-client"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOAD_REQUESTS", requests.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("load-client starts")
}

/// Runs `processes` load clients at once, each sending `requests` concurrent requests (each
/// client with its own `LOAD_ID`).
pub(crate) fn race(processes: usize, requests: usize, env: &[(&str, String)]) -> Vec<Value> {
    let children: Vec<Child> = (0..processes)
        .map(|i| {
            let mut env = env.to_vec();
            env.push(("LOAD_ID", i.to_string()));
            load_client(requests, &env)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    children
        .into_iter()
        .map(|mut child| {
            while child.try_wait().expect("wait").is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("a load client ran past 60 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = child.wait_with_output().expect("output");
            assert!(
                out.status.success(),
                "load-client failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).expect("one JSON line")
        })
        .collect()
}

/// (200s, misses, hits) over all clients' reports.
fn totals(results: &[Value]) -> (u64, u64, u64) {
    let sum = |f: &dyn Fn(&Value) -> &Value| results.iter().map(|r| f(r).as_u64().unwrap_or(0)).sum::<u64>();
    (
        sum(&|r| &r["statuses"]["200"]),
        sum(&|r| &r["states"]["MISS"]),
        sum(&|r| &r["states"]["HIT"]),
    )
}

fn environment(
    redis: &RedisServer,
    db: String,
    catalog: String,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("REDIS_URL", redis.url()),
        ("DATABASE_URL", db),
        ("QUERY_CATALOG_PATH", catalog),
        ("LOAD_PATH", "/queries/counted_slow".to_owned()),
        ("RUST_LOG", "error".to_owned()),
        // Invalidated every 8 ms: more reloads than the default budget; not what is tested here.
        ("CACHE_ORIGIN_LOADS_PER_SECOND", "100000".to_owned()),
        ("CACHE_ORIGIN_BURST", "100000".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

#[test]
fn a_hundred_requests_from_four_processes_load_a_cold_slow_key_once() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    counted_slow_function(&name);
    let dir = tempfile::tempdir().unwrap();
    let env = environment(&redis, db, catalog_file(&dir), &[]);
    let results = race(4, 25, &env);
    assert_eq!(totals(&results), (100, 1, 99), "{results:?}");
    assert_eq!(origin_executions(&name), "1", "the database ran the query once");
}

#[test]
fn a_lock_holder_killed_mid_fill_frees_the_key_within_the_lock_ttl() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    counted_slow_function(&name);
    let dir = tempfile::tempdir().unwrap();
    let env = environment(
        &redis,
        db,
        catalog_file(&dir),
        &[("CACHE_FILL_LOCK_TTL_MS", "2000"), ("CACHE_FILL_WAIT_MS", "5000")],
    );
    // The holder takes the lock and starts the origin query, then dies.
    let mut holder = load_client(1, &env);
    let deadline = Instant::now() + Duration::from_secs(15);
    while origin_executions(&name) != "1" {
        assert!(Instant::now() < deadline, "the holder never reached the origin");
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.kill().expect("kill the holder");
    let _ = holder.wait();

    let started = Instant::now();
    let results = race(4, 5, &env);
    let waited = started.elapsed();
    assert_eq!(totals(&results), (20, 1, 19), "{results:?}");
    assert_eq!(
        origin_executions(&name),
        "2",
        "the dead holder's load and exactly one more"
    );
    // Lock TTL (2 s) + one load (1 s) + process start-up, inside the 5 s fill budget.
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
}

/// A catalog with one query over a value the test changes.
const PROBE_CATALOG: &str = "[[query]]
name = 'probe'
sql = 'SELECT v FROM probe'
ttl_seconds = 300
tags = ['probe']
";

/// The memory tier's promise across instances: once `CACHE_MEMORY_TRUST_MS` has passed since
/// an invalidation returned, no instance answers with what it replaced. Four processes read
/// continuously while 1,000 rounds each change the value and invalidate its tag; every read
/// that started a trust or more after round i's invalidation must show i or later.
#[test]
fn an_invalidation_reaches_every_instance_within_the_memory_trust() {
    const TRUST_MS: u64 = 50;
    const ROUNDS: u64 = 1000;
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    sql(
        &name,
        "CREATE TABLE probe (v bigint NOT NULL); INSERT INTO probe VALUES (0)",
    );
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("queries.toml");
    std::fs::write(&catalog, PROBE_CATALOG).unwrap();
    let trust = TRUST_MS.to_string();
    let mut env = environment(
        &redis,
        db.clone(),
        catalog.to_string_lossy().into_owned(),
        &[("CACHE_MEMORY_TRUST_MS", &trust), ("LOAD_WATCH_SECONDS", "60")],
    );
    let stop_file = dir.path().join("stop");
    env.push(("LOAD_STOP_FILE", stop_file.to_string_lossy().into_owned()));
    env.retain(|(k, _)| *k != "LOAD_PATH");
    env.push(("LOAD_PATH", "/queries/probe".to_owned()));
    let watchers: Vec<Child> = (0..4).map(|_| load_client(1, &env)).collect();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let invalidated_at: Vec<u64> = runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&db).await.unwrap();
        let cache =
            cache_aside::Cache::connect_lazy(redis.url(), cache_aside::CacheSettings::default()).unwrap();
        let scope = query_catalog::tag_scope("probe");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut at = Vec::new();
        for round in 1..=ROUNDS as i64 {
            sqlx::query("UPDATE probe SET v = $1")
                .bind(round)
                .execute(&pool)
                .await
                .unwrap();
            cache.invalidate(&scope).await.unwrap();
            at.push(now_us());
            tokio::time::sleep(Duration::from_millis(8)).await;
        }
        // Reads after the last round check it too.
        tokio::time::sleep(Duration::from_millis(2 * TRUST_MS)).await;
        at
    });
    std::fs::write(&stop_file, b"").unwrap();
    let trust_us = TRUST_MS * 1000;
    let (mut reads, mut from_memory, mut violations, mut worst_us) = (0usize, 0usize, Vec::new(), 0u64);
    for watcher in watchers {
        let out = watcher.wait_with_output().expect("watcher output");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
        for read in report["reads"].as_array().unwrap() {
            let (started, seen, tier) = (
                read[0].as_u64().unwrap(),
                read[1].as_u64().unwrap(),
                read[2].as_u64().unwrap(),
            );
            reads += 1;
            from_memory += usize::from(tier == 2);
            // Rounds whose invalidation returned a trust or more before this read started.
            let settled = invalidated_at.partition_point(|t| t + trust_us <= started) as u64;
            if seen < settled {
                violations.push((started, seen, settled));
            }
            // How long after the next round's invalidation this read still saw the old value.
            if let Some(next) = invalidated_at.get(seen as usize) {
                worst_us = worst_us.max(started.saturating_sub(*next));
            }
        }
    }
    println!(
        "{reads} reads, {from_memory} from memory; the oldest value was seen {:.1} ms after its invalidation",
        worst_us as f64 / 1000.0
    );
    assert!(
        violations.is_empty(),
        "reads past the trust saw old values: {:?}",
        &violations[..violations.len().min(5)]
    );
    assert!(
        from_memory * 2 > reads,
        "the memory tier answered most reads: {from_memory} of {reads}"
    );
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}
