//! Safety at fleet scale, from several "Lambda instance" processes at once, counted by the
//! database itself: a fleet-wide origin budget against a flood of distinct parameters, and
//! waiters that never add a statement while another request's load is stuck behind a lock.

use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::{Postgres, RedisServer};

use crate::concurrency::race;
use crate::support::{app, call, get_query, seeded_database, sql};

/// Articles for the PostgreSQL search: two sentences, one with a literal `%`.
fn articles(db: &str) {
    sql(
        db,
        "CREATE TABLE articles (objectid int PRIMARY KEY, sentence text, title text, source text);
         INSERT INTO articles VALUES (1, 'prices cut by 50% today', 't1', 's'), (2, 'delta of the river', 't2', 's');
         CREATE EXTENSION IF NOT EXISTS pg_stat_statements;",
    );
}

/// How many times this database ran the article search (`pg_stat_statements`).
fn search_executions(db: &str) -> u64 {
    sql(
        db,
        "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s
         JOIN pg_database d ON d.oid = s.dbid
         WHERE d.datname = current_database() AND s.query LIKE '%sentence LIKE%'
           AND s.query NOT LIKE '%pg_stat_statements%'",
    )
    .parse()
    .expect("a count")
}

fn sum(results: &[Value], field: &str, key: &str) -> u64 {
    results.iter().map(|r| r[field][key].as_u64().unwrap_or(0)).sum()
}

#[test]
fn a_flood_of_distinct_terms_from_four_processes_stays_within_the_fleet_budget() {
    const RATE: u64 = 10;
    const BURST: u64 = 10;
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    articles(&name);
    sql(&name, "SELECT pg_stat_statements_reset()");
    let env = vec![
        ("REDIS_URL", redis.url()),
        ("DATABASE_URL", db.clone()),
        ("CACHE_ORIGIN_LOADS_PER_SECOND", RATE.to_string()),
        ("CACHE_ORIGIN_BURST", BURST.to_string()),
        ("LOAD_PATH", "/queries/article_search_pg?term=zq{i}".to_owned()),
        ("LOAD_IN_FLIGHT", "4".to_owned()),
        ("RUST_LOG", "error".to_owned()),
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hot = runtime.block_on(async {
        let app = app(&redis.url(), &db, &[]).await;
        let first = call(&app, get_query("product", &[("id", "1")])).await;
        assert_eq!((first.status.as_u16(), first.x_cache()), (200, "MISS"));
        app
    });

    let started = Instant::now();
    let flood = std::thread::spawn(move || race(4, 150, &env));
    // A hot cached key keeps answering from the cache while the flood is shed.
    let mut hot_answers = Vec::new();
    while !flood.is_finished() {
        let reply = runtime.block_on(call(&hot, get_query("product", &[("id", "1")])));
        hot_answers.push((reply.status.as_u16(), reply.x_cache().to_owned()));
        std::thread::sleep(Duration::from_millis(20));
    }
    let results = flood.join().expect("the flood ran");
    let seconds = started.elapsed().as_secs_f64();

    let executions = search_executions(&name);
    let allowed = (RATE as f64 * seconds.ceil()) as u64 + BURST;
    let (ok, busy) = (
        sum(&results, "statuses", "200"),
        sum(&results, "codes", "origin_busy"),
    );
    let retry_after: u64 = results
        .iter()
        .map(|r| r["retry_after"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "600 distinct terms in {seconds:.1} s: {ok} answered 200, {busy} shed (503 origin_busy); \
         the database ran the search {executions} times (budget allows {allowed})"
    );
    assert_eq!(ok + busy, 600, "only 200 or 503 origin_busy: {results:?}");
    assert_eq!(sum(&results, "statuses", "503"), busy, "{results:?}");
    assert_eq!(retry_after, busy, "every shed answer says when to retry");
    assert!(busy > 0, "the flood went over the budget");
    assert!(
        executions <= allowed,
        "{executions} searches ran; the budget allows {allowed} in {seconds:.1} s"
    );
    assert!(!hot_answers.is_empty());
    assert!(
        hot_answers
            .iter()
            .all(|(status, state)| *status == 200 && state == "HIT"),
        "the hot key kept answering from the cache: {hot_answers:?}"
    );
}

#[tokio::test]
async fn a_term_is_text_and_an_empty_result_lives_the_negative_ttl() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    articles(&name);
    let app = app(&redis.url(), &db, &[("CACHE_NEGATIVE_TTL_SECONDS", "5")]).await;
    let percent = call(&app, get_query("article_search_pg", &[("term", "%")])).await;
    assert_eq!(percent.status, 200, "{}", percent.text);
    assert_eq!(
        percent.body["row_count"], 1,
        "only the sentence with a literal %: {}",
        percent.text
    );
    let underscore = call(&app, get_query("article_search_pg", &[("term", "_")])).await;
    assert_eq!(underscore.body["row_count"], 0, "{}", underscore.text);
    let found = call(&app, get_query("article_search_pg", &[("term", "delta")])).await;
    assert_eq!(found.body["row_count"], 1);
    assert!(found.body["ttl_seconds"].as_u64().unwrap() > 30, "{}", found.text);
    let nothing = call(&app, get_query("article_search_pg", &[("term", "zzz-none")])).await;
    assert_eq!(
        (nothing.cache(), nothing.body["row_count"].as_u64()),
        ("miss", Some(0))
    );
    assert!(
        nothing.body["ttl_seconds"].as_u64().unwrap() <= 5,
        "a negative result lives the negative TTL: {}",
        nothing.text
    );
}

/// Statements waiting on a lock on `products`, in this database.
fn statements_waiting_on_products(db: &str) -> u64 {
    sql(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
         AND wait_event_type = 'Lock' AND query LIKE '%FROM products%'",
    )
    .parse()
    .expect("a count")
}

/// With the template's budgets (29 s function timeout, 25 s statement timeout), a table locked
/// for 18 s and 8 cold requests from 8 processes: one statement waits on the lock, the others
/// wait for its value, and every request answers with the row once the lock is gone.
#[test]
fn eight_instances_behind_a_locked_table_put_one_statement_on_the_lock() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    let env = vec![
        ("REDIS_URL", redis.url()),
        ("DATABASE_URL", db),
        ("FUNCTION_TIMEOUT_SECONDS", "29".to_owned()),
        ("DB_STATEMENT_TIMEOUT_MS", "25000".to_owned()),
        ("LOAD_DEADLINE_MS", "29000".to_owned()),
        ("LOAD_PATH", "/queries/product?id=7".to_owned()),
        ("RUST_LOG", "error".to_owned()),
    ];
    let locker_db = name.clone();
    let lock = std::thread::spawn(move || {
        Postgres::shared()
            .psql(
                &locker_db,
                &[
                    "-c",
                    "BEGIN; LOCK TABLE products IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(18); COMMIT;",
                ],
            )
            .expect("the lock session");
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while sql(
        &name,
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         WHERE c.relname = 'products' AND l.mode = 'AccessExclusiveLock' AND l.granted",
    ) != "1"
    {
        assert!(Instant::now() < deadline, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    let requests = std::thread::spawn(move || race(8, 1, &env));
    let mut most_waiting = 0;
    while !requests.is_finished() {
        most_waiting = most_waiting.max(statements_waiting_on_products(&name));
        std::thread::sleep(Duration::from_millis(100));
    }
    let results = requests.join().expect("the requests ran");
    lock.join().expect("the lock session ended");
    println!("at most {most_waiting} statement(s) waited on the lock; answers: {results:?}");
    assert_eq!(most_waiting, 1, "one statement on the lock, never a second");
    assert_eq!(sum(&results, "statuses", "200"), 8, "{results:?}");
}

/// Over its budget, a query with a kept value answers that value (`stale`) instead of 503.
#[tokio::test]
async fn over_budget_a_kept_value_is_served_stale() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let (_dir, catalog) = crate::support::catalog_file(
        "[[query]]\nname = 'brief'\nsql = 'SELECT 1 AS one'\nttl_seconds = 1\n\
         stale_if_error_seconds = 60\norigin_loads_per_second = 0.001\norigin_burst = 1\n",
    );
    let app = app(&redis.url(), &db, &[("QUERY_CATALOG_PATH", catalog.as_str())]).await;
    let first = call(&app, get_query("brief", &[])).await;
    assert_eq!((first.status.as_u16(), first.cache()), (200, "miss"));
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let kept = call(&app, get_query("brief", &[])).await;
    assert_eq!(
        (kept.status.as_u16(), kept.cache()),
        (200, "stale"),
        "the budget's one token is spent: {}",
        kept.text
    );
}
