//! Stampede control across OS processes, counted by the database itself.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::RedisServer;

use crate::support::{seeded_database, sql};

/// A catalog with one slow query whose every execution leaves a row behind.
const COUNTED_CATALOG: &str =
    "[[query]]\\nname = 'counted_slow'\\nsql = 'SELECT counted_slow() AS calls'\\nttl_seconds = 60\\n";

fn counted_slow_function(db: &str) {
    sql(
        db,
        "CREATE TABLE origin_calls (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
    );
    sql(
        db,
        "CREATE FUNCTION counted_slow() RETURNS bigint LANGUAGE sql VOLATILE AS $$ \
         INSERT INTO origin_calls DEFAULT VALUES; SELECT pg_sleep(1); SELECT count(*) FROM origin_calls $$",
    );
}

/// Runs `processes` load clients at once, each sending `requests` concurrent requests.
fn race(processes: usize, requests: usize, env: &[(&str, String)]) -> Vec<Value> {
    let children: Vec<_> = (0..processes)
        .map(|_| {
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

#[test]
fn a_hundred_requests_from_four_processes_load_a_cold_slow_key_once() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    counted_slow_function(&name);
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("queries.toml");
    std::fs::write(&catalog, COUNTED_CATALOG.replace("\\n", "\n")).unwrap();
    let env = [
        ("REDIS_URL", redis.url()),
        ("DATABASE_URL", db),
        ("QUERY_CATALOG_PATH", catalog.to_string_lossy().into_owned()),
        ("LOAD_PATH", "/queries/counted_slow".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let results = race(4, 25, &env);
    let (mut hits, mut misses, mut ok) = (0, 0, 0);
    for r in &results {
        hits += r["states"]["HIT"].as_u64().unwrap_or(0);
        misses += r["states"]["MISS"].as_u64().unwrap_or(0);
        ok += r["statuses"]["200"].as_u64().unwrap_or(0);
    }
    assert_eq!(ok, 100, "{results:?}");
    assert_eq!((misses, hits), (1, 99), "{results:?}");
    assert_eq!(
        sql(&name, "SELECT count(*) FROM origin_calls"),
        "1",
        "the database ran the query once"
    );
}
