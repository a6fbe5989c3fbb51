//! Invalidation from PostgreSQL's committed change stream: a logical replication slot read by
//! the invalidator's drains, with no trigger on any table (`wal_level=logical` on the test
//! server). Also the MySQL/MariaDB outbox.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use test_support::RedisServer;
use use_cases::{ChangeSource, Clients, DrainReport, DrainSettings};

use crate::support::{
    app, call, catalog_file, clients, config, get_query, request, seeded_database, sql, unique,
};

/// The variables of the logical source with its own slot (slots are per server, not per
/// database, and tests share the server).
fn logical(slot: &str) -> [(&'static str, &str); 2] {
    [("INVALIDATION_SOURCE", "logical"), ("CACHE_SLOT_NAME", slot)]
}

/// The change sources the invalidator builds from the same configuration.
async fn sources(redis_url: &str, db: &str, extra: &[(&str, &str)]) -> Vec<ChangeSource> {
    use_cases::change_sources(&config(redis_url, db, extra))
        .await
        .expect("change sources")
}

/// One poll of `source`.
async fn drain_once(clients: &Clients, source: &ChangeSource) -> DrainReport {
    clients
        .invalidation()
        .drain(source, &DrainSettings::default(), Instant::now())
        .await
        .expect("drain")
}

/// Polls until a poll finds nothing new (one poll reads about `DrainSettings::batch` lines,
/// and never splits a transaction).
async fn drain_all(clients: &Clients, source: &ChangeSource) -> DrainReport {
    let mut total = drain_once(clients, source).await;
    loop {
        let next = drain_once(clients, source).await;
        assert!(next.errors.is_empty(), "{next:?}");
        if next.transactions == 0 {
            return total;
        }
        total.transactions += next.transactions;
        total.bumps += next.bumps;
    }
}

/// Polls until the slot exists (its creation waits for transactions running anywhere on the
/// shared server to end); returns the creating drain's report.
async fn open_slot(clients: &Clients, source: &ChangeSource) -> DrainReport {
    let started = Instant::now();
    loop {
        let report = drain_once(clients, source).await;
        if report.slot_created == 1 && report.errors.is_empty() {
            return report;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no slot: {report:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn drop_slot(slot: &str) {
    sql("postgres", &format!("SELECT pg_drop_replication_slot('{slot}')"));
}

/// A seeded database on the shared server with a slot name of its own, the invalidator's
/// clients and change source, and a query API, over one Redis; the slot is dropped at the end.
struct Logical {
    redis: RedisServer,
    name: String,
    db: String,
    slot: String,
    clients: Clients,
    app: query_api::App,
    source: ChangeSource,
}

impl Logical {
    /// With `catalog` (a file) for both functions when given; no slot made yet.
    async fn new(catalog: Option<&str>) -> Self {
        let redis = RedisServer::start();
        let (name, db) = seeded_database();
        Self::on(redis, name, db, catalog).await
    }

    /// Over database `name` (at `db`) and `redis`.
    async fn on(redis: RedisServer, name: String, db: String, catalog: Option<&str>) -> Self {
        let slot = unique("slot_");
        let mut extra = logical(&slot).to_vec();
        let mut api = Vec::new();
        if let Some(path) = catalog {
            extra.push(("QUERY_CATALOG_PATH", path));
            api.push(("QUERY_CATALOG_PATH", path));
        }
        let clients = clients(&redis.url(), &db, &extra).await;
        let app = app(&redis.url(), &db, &api).await;
        let mut sources = sources(&redis.url(), &db, &extra).await;
        assert_eq!(sources.len(), 1, "one PostgreSQL database, one slot");
        let source = sources.remove(0);
        Self {
            redis,
            name,
            db,
            slot,
            clients,
            app,
            source,
        }
    }

    /// [`Self::new`], with the slot made.
    async fn opened(catalog: Option<&str>) -> Self {
        let fixture = Self::new(catalog).await;
        open_slot(&fixture.clients, &fixture.source).await;
        fixture
    }

    /// One poll.
    async fn drain(&self) -> DrainReport {
        drain_once(&self.clients, &self.source).await
    }

    /// `product` `id`'s cache state and name, through the query API.
    async fn product(&self, id: &str) -> (String, String) {
        product_name(&self.app, id).await
    }
}

impl Drop for Logical {
    fn drop(&mut self) {
        // A slot nobody drains holds WAL for the rest of the run.
        let statement = format!("SELECT pg_drop_replication_slot('{}')", self.slot);
        let _ = test_support::Postgres::shared().psql("postgres", &["-c", &statement]);
    }
}

async fn product_name(app: &query_api::App, id: &str) -> (String, String) {
    let reply = call(app, get_query("product", &[("id", id)])).await;
    let name = reply.body["rows"][0]["name"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned();
    (reply.cache().to_owned(), name)
}

#[tokio::test]
async fn committed_changes_reach_the_cache_through_a_wal2json_slot_and_rollbacks_do_not() {
    committed_changes_reach_the_cache("wal2json").await;
}

#[tokio::test]
async fn committed_changes_reach_the_cache_through_a_test_decoding_slot_and_rollbacks_do_not() {
    committed_changes_reach_the_cache("test_decoding").await;
}

/// With a slot of `plugin` made beforehand (the drain reads whichever plugin its slot has).
async fn committed_changes_reach_the_cache(plugin: &str) {
    let t = Logical::new(None).await;
    let (name, slot, clients, app, source) = (&t.name, &t.slot, &t.clients, &t.app, &t.source);
    sql(
        name,
        &format!("SELECT pg_create_logical_replication_slot('{slot}', '{plugin}')"),
    );
    let opened = drain_once(clients, source).await;
    assert_eq!((opened.slot_created, opened.errors.len()), (0, 0), "{opened:?}");
    let triggers = sql(name, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal");
    assert!(
        triggers.split_whitespace().any(|w| w == "0"),
        "no trigger on any table: {triggers}"
    );

    assert_eq!(product_name(app, "3").await.0, "miss");
    assert_eq!(product_name(app, "3").await.0, "hit");

    sql(
        name,
        "BEGIN; UPDATE products SET name = 'Rolled back' WHERE id = 3; ROLLBACK;",
    );
    let report = drain_once(clients, source).await;
    assert_eq!((report.transactions, report.bumps), (0, 0), "{report:?}");
    assert_eq!(product_name(app, "3").await, ("hit".into(), "Product 3".into()));

    sql(name, "UPDATE products SET name = 'Committed' WHERE id = 3");
    let report = drain_once(clients, source).await;
    assert_eq!((report.transactions, report.changes), (1, 1), "{report:?}");
    assert_eq!(product_name(app, "3").await, ("miss".into(), "Committed".into()));

    // The last LSN applied is in Redis, and drains never apply below it.
    let mark = clients.cache().lease_mark(&source.lease_name()).await.unwrap();
    let applied: change_feed::Lsn = report.last_lsn.as_deref().unwrap().parse().unwrap();
    assert_eq!(mark, cache_aside::Mark::At(applied.0));

    // A restaurants row names its summary's entity: only that restaurant's summary drops.
    let summary = |n: &str| request("GET", &format!("/restaurants/{n}/summary"), &[], &[]);
    for n in ["Blue%20Fig", "Casa%20Luna"] {
        call(app, summary(n)).await;
        assert_eq!(call(app, summary(n)).await.cache(), "hit");
    }
    sql(
        name,
        "UPDATE restaurants SET cuisine = 'fusion' WHERE name = 'Blue Fig'",
    );
    let report = drain_once(clients, source).await;
    assert_eq!(report.bumps, 1, "one entity scope: {report:?}");
    let blue = call(app, summary("Blue%20Fig")).await;
    assert_eq!(
        (blue.cache(), blue.body["restaurant"]["cuisine"].as_str()),
        ("miss", Some("fusion")),
        "{}",
        blue.text
    );
    assert_eq!(call(app, summary("Casa%20Luna")).await.cache(), "hit");
    // A review names its restaurant by id: the catalog's lookup finds the name, and only
    // that restaurant's summary drops.
    sql(
        name,
        "INSERT INTO reviews (restaurant_id, author, rating, body) VALUES (2, 'psql', 5, 'direct')",
    );
    let report = drain_once(clients, source).await;
    assert_eq!(report.bumps, 1, "one entity scope: {report:?}");
    let casa = call(app, summary("Casa%20Luna")).await;
    assert_eq!(
        (
            casa.cache(),
            casa.body["restaurant"]["latest_reviews"][0]["body"].as_str()
        ),
        ("miss", Some("direct")),
        "{}",
        casa.text
    );
    assert_eq!(call(app, summary("Blue%20Fig")).await.cache(), "hit");
    // A review moved to another restaurant drops both (the old row is logged in full).
    sql(name, "UPDATE reviews SET restaurant_id = 3 WHERE body = 'direct'");
    let report = drain_once(clients, source).await;
    assert_eq!(report.bumps, 2, "both restaurants: {report:?}");
    assert_eq!(call(app, summary("Casa%20Luna")).await.cache(), "miss");
    assert_eq!(call(app, summary("Blue%20Fig")).await.cache(), "hit");
}

/// (a) The race the settle pause was for: a fill reads the old row while a transaction that
/// changes it commits. The slot hands the change out only after its commit, and the fill's
/// write lands under the generation it started with, so the next read is fresh: no pause.
#[tokio::test]
async fn a_fill_racing_a_slow_commit_never_outlives_the_commit() {
    let (_dir, catalog) = catalog_file(
        "[[query]]\nname = 'slow_product'\nsql = 'SELECT name, pg_sleep(0.6)::text AS slept FROM products WHERE id = $1'\n\
         ttl_seconds = 300\ntags = ['products']\n[[query.params]]\nname = 'id'\ntype = 'int'\n",
    );
    let t = Logical::opened(Some(&catalog)).await;
    let (db, clients, app, source) = (&t.db, &t.clients, &t.app, &t.source);
    let read = || async { call(app, get_query("slow_product", &[("id", "7")])).await };

    let mut writer = sqlx::PgConnection::connect(db).await.unwrap();
    sqlx::query("BEGIN").execute(&mut writer).await.unwrap();
    sqlx::query("UPDATE products SET name = 'After' WHERE id = 7")
        .execute(&mut writer)
        .await
        .unwrap();
    // The fill starts before the commit (it reads the old row), the commit lands while it
    // runs, and a drain applies the commit before the fill stores its result.
    let fill = read();
    let commit_and_drain = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("COMMIT").execute(&mut writer).await.unwrap();
        drain_once(clients, source).await
    };
    let (raced, report) = tokio::join!(fill, commit_and_drain);
    assert_eq!(
        raced.body["rows"][0]["name"], "Product 7",
        "the fill read before the commit"
    );
    assert_eq!(report.transactions, 1, "{report:?}");
    let after = read().await;
    assert_eq!(
        (after.cache(), after.body["rows"][0]["name"].as_str()),
        ("miss", Some("After")),
        "the racing fill's old row is unreachable"
    );
}

/// (b) 1,000 random transactions over the demo tables, a fifth rolled back, while readers
/// run: once a drain completes, no read returns anything older than the last commit, and
/// rolled-back transactions cost no misses.
#[tokio::test]
async fn a_thousand_random_transactions_leave_no_stale_read_after_each_drain() {
    let t = Logical::opened(None).await;
    let mut writer = sqlx::PgConnection::connect(&t.db).await.unwrap();
    let mut rng = fastrand::Rng::with_seed(21);
    let ids = ["1", "2", "3", "4", "5"];
    let mut committed: HashMap<&str, String> = ids.iter().map(|id| (*id, format!("Product {id}"))).collect();
    let (mut commits, mut rollbacks, mut stale, mut reads, mut rollback_misses) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut applied = 0u64;
    for round in 0..100 {
        // Ten transactions, a reader after each; every fifth round only rolls back.
        let rollback_round = round % 5 == 4;
        for _ in 0..10 {
            let id = ids[rng.usize(..ids.len())];
            let value = format!("v{round}-{}", rng.u32(..));
            let mut tx = writer.begin().await.unwrap();
            sqlx::query("UPDATE products SET name = $1 WHERE id = $2::int")
                .bind(&value)
                .bind(id)
                .execute(&mut *tx)
                .await
                .unwrap();
            if rng.bool() {
                sqlx::query("UPDATE restaurants SET city = $1 WHERE id = $2")
                    .bind(&value)
                    .bind(rng.i32(1..=10))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            if rollback_round {
                tx.rollback().await.unwrap();
                rollbacks += 1;
            } else {
                tx.commit().await.unwrap();
                committed.insert(id, value);
                commits += 1;
            }
            // A reader between transactions: it may see the old value until a drain ran.
            let _ = t.product(ids[rng.usize(..ids.len())]).await;
        }
        let changed = !rollback_round;
        let report = t.drain().await;
        assert!(report.errors.is_empty(), "{report:?}");
        applied += report.transactions;
        for id in ids {
            let (state, name) = t.product(id).await;
            reads += 1;
            if name != committed[id] {
                stale += 1;
            }
            if !changed && state == "miss" {
                rollback_misses += 1;
            }
        }
    }
    println!(
        "{commits} commits, {rollbacks} rollbacks, {applied} transactions applied; \
         {reads} reads after drains: {stale} stale, {rollback_misses} misses after rolled-back rounds"
    );
    assert_eq!(
        applied, commits,
        "every commit, and nothing rolled back, came through the slot"
    );
    assert_eq!(stale, 0);
    assert_eq!(rollback_misses, 0);
    assert_eq!(rollbacks, 200, "a fifth rolled back");
}

/// (c) The slot is dropped under the invalidator (a failover without it, an operator): the
/// next poll recreates it, drops everything once (changes in between were lost), and goes on.
#[tokio::test]
async fn a_lost_slot_is_recreated_and_everything_dropped_once() {
    let t = Logical::opened(None).await;
    t.product("4").await;
    assert_eq!(t.product("4").await.0, "hit");

    drop_slot(&t.slot);
    // Lost with the slot: no stream will ever carry this change.
    sql(&t.name, "UPDATE products SET name = 'While lost' WHERE id = 4");
    let report = open_slot(&t.clients, &t.source).await;
    assert!(
        report.bumps >= 2,
        "every tag and query of the database: {report:?}"
    );
    assert_eq!(t.product("4").await, ("miss".into(), "While lost".into()));
    assert_eq!(t.product("4").await.0, "hit");

    sql(&t.name, "UPDATE products SET name = 'After' WHERE id = 4");
    let report = t.drain().await;
    assert_eq!((report.slot_created, report.transactions), (0, 1), "{report:?}");
    assert_eq!(t.product("4").await, ("miss".into(), "After".into()));
}

/// (c) The server invalidates a slot that fell behind `max_slot_wal_keep_size` (its own
/// server: the setting is server-wide): the next drain drops it, makes a new one, drops
/// everything once, and changes after that flow again.
#[tokio::test]
async fn a_slot_the_server_invalidated_is_replaced() {
    let server = test_support::Postgres::start();
    let db_name = unique("lost");
    let db = server.create_database(&db_name, &[crate::support::SEED]);
    let psql = |statement: &str| {
        server
            .psql(&db_name, &["-c", statement])
            .unwrap_or_else(|e| panic!("{statement}: {e}"))
    };
    let redis = RedisServer::start();
    let slot = unique("slot_");
    let extra = logical(&slot);
    let clients = clients(&redis.url(), &db, &extra).await;
    let app = app(&redis.url(), &db, &[]).await;
    let source = &sources(&redis.url(), &db, &extra).await[0];
    open_slot(&clients, source).await;
    product_name(&app, "5").await;
    assert_eq!(product_name(&app, "5").await.0, "hit");

    psql("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
    psql("SELECT pg_reload_conf()");
    psql("UPDATE products SET name = 'Behind' WHERE id = 5");
    // Several WAL segments past the slot, then a checkpoint: the server gives up on it.
    for _ in 0..4 {
        psql("CREATE TABLE IF NOT EXISTS filler (x int); INSERT INTO filler SELECT generate_series(1, 1000); SELECT pg_switch_wal();");
    }
    psql("CHECKPOINT");
    let status = psql(&format!(
        "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{slot}'"
    ));
    assert!(
        status.contains("lost"),
        "the server invalidated the slot: {status}"
    );
    let plugin = server
        .psql(
            &db_name,
            &[
                "-tAc",
                &format!("SELECT plugin FROM pg_replication_slots WHERE slot_name = '{slot}'"),
            ],
        )
        .unwrap();
    let plugin = change_feed::Plugin::from_name(plugin.trim()).expect("a plugin the reader knows");
    let ChangeSource::Slot { slot: reader, .. } = source else {
        unreachable!("PostgreSQL in logical mode")
    };
    let lost = reader.peek(plugin, 10).await.unwrap_err();
    assert!(matches!(lost, change_feed::FeedError::SlotLost(_)), "{lost}");

    let report = drain_once(&clients, source).await;
    println!("after invalidation: {report:?}");
    assert_eq!(report.slot_created, 1, "{report:?}");
    assert!(report.bumps >= 2, "everything dropped: {report:?}");
    assert_eq!(product_name(&app, "5").await, ("miss".into(), "Behind".into()));
    psql("UPDATE products SET name = 'Flowing' WHERE id = 5");
    let report = drain_once(&clients, source).await;
    assert_eq!(report.transactions, 1, "{report:?}");
    assert_eq!(product_name(&app, "5").await, ("miss".into(), "Flowing".into()));
    server.stop();
}

/// (d) Two drains at once (two instances started by overlapping schedules): one runs, the
/// other returns at once; a drain whose lease went to another cannot record progress.
#[tokio::test]
async fn two_drains_at_once_one_runs_and_the_other_exits() {
    let t = Logical::opened(None).await;
    let (name, first, source) = (&t.name, &t.clients, &t.source);
    // Another instance of the invalidator.
    let second = clients(&t.redis.url(), &t.db, &logical(&t.slot)).await;
    sql(name, "UPDATE products SET stock = stock + 1 WHERE id = 1");
    let settings = DrainSettings::default();
    let until = Instant::now() + Duration::from_secs(1);
    let started = Instant::now();
    let (a, b) = tokio::join!(first.invalidation().drain(source, &settings, until), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        second.invalidation().drain(source, &settings, until).await
    });
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.stopped, b.stopped), ("time", "busy"), "{a:?} {b:?}");
    assert_eq!(a.transactions, 1);
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "the first drain ran its time"
    );

    // Fencing: a holder whose lease expired and went to another cannot raise the mark.
    let cache = first.cache();
    let stale = cache
        .acquire_lease("fence-test", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let current = cache
        .acquire_lease("fence-test", Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert!(current.token > stale.token);
    assert_eq!(
        cache.raise_mark(&stale, 10).await.unwrap(),
        cache_aside::MarkRaise::LeaseLost
    );
    assert_eq!(
        cache.raise_mark(&current, 10).await.unwrap(),
        cache_aside::MarkRaise::Raised
    );
    assert_eq!(
        cache.raise_mark(&current, 5).await.unwrap(),
        cache_aside::MarkRaise::AlreadyPast(10),
        "the mark never goes back"
    );
    assert!(!cache.renew_lease(&stale).await.unwrap());
    // A holder whose lease lapsed during one slow step, with nobody granted it since, still
    // records its progress (and holds the lease again).
    cache.release_lease(&current).await.unwrap();
    let slow = cache
        .acquire_lease("fence-test-slow", Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        cache.raise_mark(&slow, 7).await.unwrap(),
        cache_aside::MarkRaise::Raised
    );
    assert!(
        cache
            .acquire_lease("fence-test-slow", Duration::from_secs(1))
            .await
            .unwrap()
            .is_none(),
        "held again"
    );
    // A resynchronisation recorded by a holder blocks progress until it is cleared.
    assert!(cache.mark_resync(&slow).await.unwrap());
    assert_eq!(
        cache.raise_mark(&slow, 8).await.unwrap(),
        cache_aside::MarkRaise::ResyncPending
    );
    assert!(cache.clear_mark(&slow).await.unwrap());
    assert_eq!(
        cache.raise_mark(&slow, 8).await.unwrap(),
        cache_aside::MarkRaise::Raised
    );
}

/// The invalidator's entry point: a scheduled event starts a drain, the reply lists it.
#[tokio::test]
async fn a_scheduled_event_starts_a_drain() {
    let t = Logical::opened(None).await;
    let (name, clients) = (&t.name, &t.clients);
    let drains = invalidator::Drains {
        sources: vec![t.source.clone()],
        settings: DrainSettings::default(),
        drain_for: Duration::from_millis(300),
    };
    sql(name, "DELETE FROM products WHERE id = 60");
    let event = crate::support::payload("invalidator/scheduled-drain");
    let reply = invalidator::handle_with_drains(clients.invalidation(), &drains, event, None)
        .await
        .unwrap();
    let drained = &reply["drained"][0];
    assert_eq!(
        (
            drained["source"].as_str(),
            drained["transactions"].as_u64(),
            drained["stopped"].as_str()
        ),
        (Some("slot"), Some(1), Some("time")),
        "{reply}"
    );
    assert!(drained["polls"].as_u64().unwrap() >= 2, "{reply}");
    let direct = invalidator::handle_with_drains(
        clients.invalidation(),
        &drains,
        json!({"drain": {"seconds": 0}}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(direct["drained"][0]["polls"], 1, "{direct}");
    let bad = invalidator::handle_with_drains(
        clients.invalidation(),
        &drains,
        json!({"drain": {"second": 1}}),
        None,
    )
    .await;
    assert!(bad.is_err());
}

/// What the database sees at 3 a.m.: a transaction left open blocks creating a slot (it waits
/// for running transactions), so creation gives up after `SLOT_CREATE_TIMEOUT` and each poll
/// drops everything until a slot exists; a table locked exclusively does not stop decoding.
#[tokio::test]
async fn open_transactions_and_locked_tables_never_wedge_a_drain() {
    let t = Logical::new(None).await;
    let (name, db, clients, app, source) = (&t.name, &t.db, &t.clients, &t.app, &t.source);

    let mut open = sqlx::PgConnection::connect(db).await.unwrap();
    sqlx::query("BEGIN").execute(&mut open).await.unwrap();
    sqlx::query("UPDATE products SET stock = stock WHERE id = 8")
        .execute(&mut open)
        .await
        .unwrap();
    let started = Instant::now();
    let blocked = drain_once(clients, source).await;
    let waited = started.elapsed();
    println!("slot creation with a transaction open: {waited:?}, {blocked:?}");
    assert_eq!(blocked.slot_created, 0, "{blocked:?}");
    assert!(blocked.errors[0].contains("timed out"), "{blocked:?}");
    assert!(
        waited < Duration::from_secs(5),
        "bounded by the creation timeout: {waited:?}"
    );
    assert!(
        blocked.bumps > 0,
        "no slot yet: everything dropped each poll: {blocked:?}"
    );
    assert_eq!(product_name(app, "9").await.0, "miss", "reads go on meanwhile");
    // A change committed while no slot can be made is still never served stale after a poll.
    sql(name, "UPDATE products SET name = 'While blocked' WHERE id = 9");
    let again = drain_once(clients, source).await;
    assert_eq!(again.slot_created, 0, "{again:?}");
    assert_eq!(
        product_name(app, "9").await,
        ("miss".into(), "While blocked".into())
    );
    sqlx::query("ROLLBACK").execute(&mut open).await.unwrap();
    open_slot(clients, source).await;

    // Committed, then the table locked in ACCESS EXCLUSIVE mode by a transaction that stays.
    product_name(app, "9").await;
    sql(name, "UPDATE products SET name = 'Before the lock' WHERE id = 9");
    sqlx::query("BEGIN").execute(&mut open).await.unwrap();
    sqlx::query("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        .execute(&mut open)
        .await
        .unwrap();
    sql(name, "UPDATE restaurants SET city = 'Porto' WHERE id = 1");
    let started = Instant::now();
    let report = drain_once(clients, source).await;
    println!("drain with products locked: {:?}, {report:?}", started.elapsed());
    assert_eq!((report.transactions, report.errors.len()), (2, 0), "{report:?}");
    sqlx::query("ROLLBACK").execute(&mut open).await.unwrap();
    assert_eq!(
        product_name(app, "9").await,
        ("miss".into(), "Before the lock".into())
    );
}

/// The invalidator logs in as its own role (`DB_INVALIDATOR_ROLE_SECRET_ID`, created by the
/// ingester with `REPLICATION` where no `rds_replication` exists): it drains the slot and runs
/// the catalog's lookups, and cannot change a row.
#[tokio::test]
async fn the_invalidator_drains_as_a_role_that_can_change_nothing() {
    // Its own server: roles are server-wide, and the roles test makes an `rds_replication`.
    let server = test_support::Postgres::start();
    let name = unique("inv");
    let db = server.create_database(&name, &[crate::support::SEED]);
    let redis = RedisServer::start();
    let login = unique("inv");
    let password = "inv-Pass-0123456789";
    let secret = crate::roles::role_secret(&login, password).await;
    let mut vars = test_support::Moto::shared().env();
    vars.push((
        "DB_QUERY_ROLE_SECRET_ID",
        crate::roles::role_secret(&unique("rd"), "read-Pass-0123456789").await,
    ));
    vars.push((
        "DB_WRITE_ROLE_SECRET_ID",
        crate::roles::role_secret(&unique("wr"), "write-Pass-0123456789").await,
    ));
    vars.push(("DB_INVALIDATOR_ROLE_SECRET_ID", secret));
    let ingester = ingester::Ingester::new(clients(&redis.url(), &db, &crate::support::pairs(&vars)).await);
    let roles = ingester.handle(json!({"roles": true})).await.unwrap();
    assert_eq!(roles["roles"]["main"]["invalidate"]["created"], true, "{roles}");

    let url = format!("postgres://{login}:{password}@127.0.0.1:{}/{name}", server.port());
    let slot = unique("slot_");
    let extra = logical(&slot);
    let clients = clients(&redis.url(), &url, &extra).await;
    let app = app(&redis.url(), &db, &[]).await;
    let source = &sources(&redis.url(), &url, &extra).await[0];
    open_slot(&clients, source).await;
    let summary = || request("GET", "/restaurants/Saffron/summary", &[], &[]);
    call(&app, summary()).await;
    server
        .psql(&name, &["-c", "INSERT INTO reviews (restaurant_id, author, rating, body) VALUES (8, 'psql', 2, 'as a role')"])
        .unwrap();
    let report = drain_once(&clients, source).await;
    assert_eq!(
        (report.transactions, report.bumps, report.errors.len()),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(call(&app, summary()).await.cache(), "miss");
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let refused = sqlx::query("UPDATE products SET stock = 0")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(
        refused.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501"),
        "{refused}"
    );
    server.stop();
}

/// MySQL/MariaDB: the articles load installs triggers that append to an outbox in the writing
/// transaction; a drain bumps the named tables' tags and removes the rows it applied. A
/// rolled-back write leaves no outbox row.
#[tokio::test]
async fn mariadb_changes_reach_the_cache_through_the_outbox() {
    let redis = RedisServer::start();
    let (_, db) = seeded_database();
    let maria = test_support::MariaDb::shared();
    let schema = unique("outbox");
    let articles = maria.create_database(&schema);
    let extra = [("DATABASE_URL_ARTICLES", articles.as_str())];
    let clients = clients(&redis.url(), &db, &extra).await;
    let app = app(&redis.url(), &db, &extra).await;
    let loaded = ingester::Ingester::new(crate::support::clients(&redis.url(), &db, &extra).await)
        .handle(json!({"dataset": "articles", "rows": 200, "databases": ["articles"]}))
        .await
        .unwrap();
    assert_eq!(
        loaded["databases"]["articles"]["change_events"], "outbox",
        "{loaded}"
    );
    let in_db = |statement: &str| maria.root_sql(&format!("USE `{schema}`; {statement}")).unwrap();
    assert_eq!(
        in_db("SELECT count(*) FROM cache_invalidation_outbox"),
        "0",
        "the load itself adds none"
    );
    // Trigger mode on PostgreSQL: only the MariaDB database has a drain.
    let sources = sources(&redis.url(), &db, &extra).await;
    let [source] = sources.as_slice() else {
        panic!("one outbox: {sources:?}")
    };
    let search = || get_query("article_search", &[("term", "zebra")]);
    assert_eq!(call(&app, search()).await.body["row_count"], 0);
    assert_eq!(call(&app, search()).await.cache(), "hit");

    in_db("START TRANSACTION; UPDATE articles SET sentence = 'a zebra, rolled back' WHERE objectid = 2; ROLLBACK;");
    assert_eq!(in_db("SELECT count(*) FROM cache_invalidation_outbox"), "0");
    in_db("UPDATE articles SET sentence = 'a zebra crossing' WHERE objectid = 1");
    assert_eq!(in_db("SELECT count(*) FROM cache_invalidation_outbox"), "1");
    let report = drain_once(&clients, source).await;
    assert_eq!(
        (report.source, report.transactions, report.bumps),
        ("outbox", 1, 1),
        "{report:?}"
    );
    assert_eq!(
        in_db("SELECT count(*) FROM cache_invalidation_outbox"),
        "0",
        "applied rows removed"
    );
    let fresh = call(&app, search()).await;
    assert_eq!(
        (fresh.cache(), fresh.body["row_count"].as_u64()),
        ("miss", Some(1)),
        "{}",
        fresh.text
    );
}

/// What decoding hands out beyond single rows: a bulk statement past the per-transaction cap
/// and several tables truncated at once (kept by table), a partition's change (its partitioned
/// table's tag too), a mixed-case table; and a watched table without a replica identity is
/// reported, and a new slot then decodes with test_decoding (wal2json would drop its updates).
#[tokio::test]
async fn bulk_statements_truncates_partitions_and_unkeyed_tables_still_invalidate() {
    let redis = RedisServer::start();
    let (name, db) = seeded_database();
    sql(
        &name,
        "CREATE TABLE events (id int, day date NOT NULL, kind text) PARTITION BY RANGE (day);
         CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         CREATE TABLE \"Audit\" (note text);",
    );
    let (_dir, catalog) = catalog_file(
        "[[query]]\nname = 'event_count'\nsql = 'SELECT count(*) AS n FROM events'\nttl_seconds = 300\ntags = ['events']\n\
         [[query]]\nname = 'audit_count'\nsql = 'SELECT count(*) AS n FROM \"Audit\"'\nttl_seconds = 300\ntags = ['audit']\n\
         [[query]]\nname = 'product_count'\nsql = 'SELECT count(*) AS n FROM products'\nttl_seconds = 300\ntags = ['products']\n",
    );
    let t = Logical::on(redis, name, db, Some(&catalog)).await;
    let (name, slot, clients, app, source) = (&t.name, &t.slot, &t.clients, &t.app, &t.source);
    let created = open_slot(clients, source).await;
    assert!(
        created
            .warnings
            .iter()
            .any(|w| w.starts_with("audit: no replica identity")),
        "{created:?}"
    );
    let plugin = sql(
        "postgres",
        &format!("SELECT plugin FROM pg_replication_slots WHERE slot_name = '{slot}'"),
    );
    assert!(plugin.contains("test_decoding"), "{plugin}");
    let app = &app;
    let count = |query: &'static str| async move {
        let reply = call(app, get_query(query, &[])).await;
        (
            reply.cache().to_owned(),
            reply.body["rows"][0]["n"].as_i64().unwrap_or(-1),
        )
    };
    for query in ["event_count", "audit_count", "product_count"] {
        count(query).await;
        assert_eq!(count(query).await.0, "hit", "{query}");
    }
    sql(
        name,
        "INSERT INTO events SELECT i, '2026-03-01', 'x' FROM generate_series(1, 12000) i",
    );
    sql(
        name,
        "INSERT INTO \"Audit\" VALUES ('a'); UPDATE \"Audit\" SET note = 'b'",
    );
    let report = drain_all(clients, source).await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(
        count("event_count").await,
        ("miss".into(), 12000),
        "through the partition"
    );
    assert_eq!(count("audit_count").await.0, "miss", "a quoted mixed-case table");
    assert_eq!(count("product_count").await.0, "hit");
    sql(name, "TRUNCATE events, products CASCADE");
    let report = drain_all(clients, source).await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(count("event_count").await, ("miss".into(), 0));
    assert_eq!(
        count("product_count").await,
        ("miss".into(), 0),
        "the second table of one TRUNCATE"
    );
}
