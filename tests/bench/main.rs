//! Latency report, reproducing the reference S3-vs-Redis scripts and going past them: object
//! reads from S3, from Redis (raw HGET) and through the cache-aside library (hit); the slow query
//! and the article search, miss vs hit. Starts every service it needs on loopback, prints
//! percentiles, and writes `latency.md` and `latency.svg` into the output folder.
//!
//! cargo run --release -p integration-tests --bin bench -- [--n 200] [--origin-samples 30]
//!     [--slow-misses 2] [--fresh-samples 50] [--out results] [--seed-python PYTHON] [--cpu-quota D]
//!
//! `--fresh-samples` commits timed from commit to first fresh read through the logical source
//! (a drain polling a replication slot every 200 ms, then every 50 ms).
//!
//! `--seed-python` also times a seed-style Python handler (`seed_handler.py`) on the same services.
//!
//! `--cpu-quota D` (1..=64, needs root) times the hit paths (object, query from Redis and from
//! memory, the Python handler's hits) a second time under a cgroup CPU quota of 1/D of a core, as
//! extra rows: Lambda gives 128 MB about 1/14 of a vCPU, so `--cpu-quota 14` measures what the
//! full-core rows leave to an estimate. Misses and ingest stay at full speed.
//!
//! `bench init` measures cold starts instead (see `init.rs`).

mod cost;
mod freshness;
mod init;
mod seed;
mod svg;

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use cache_aside::{ObjectState, ReadMode};
use indicatif::{ProgressBar, ProgressStyle};
use query_catalog::ResolvedParams;
use serde_json::json;
use service_config::ServiceConfig;
use test_support::stats::{summarize, table_row, Summary, TABLE_HEADER};
use test_support::{CpuQuota, MariaDb, Moto, Postgres, RedisServer};
use use_cases::Clients;

struct Args {
    n: usize,
    origin_samples: usize,
    slow_misses: usize,
    /// Commits timed from commit to first fresh read, per poll interval.
    fresh_samples: usize,
    out: std::path::PathBuf,
    /// A Python with `redis` and `pymysql`: also time the seed-style handler.
    seed_python: Option<std::path::PathBuf>,
    /// Also time the hits at 1/D of a core.
    cpu_quota: Option<u32>,
}

const USAGE: &str =
    "usage: bench [--n N (200)] [--origin-samples N (30)] [--slow-misses N (2)] [--fresh-samples N (50)] \
     [--out DIR (results)] [--seed-python PYTHON (with redis and pymysql)] \
     [--cpu-quota D (1..=64: hits again at 1/D of a core; needs root)]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        n: 200,
        origin_samples: 30,
        slow_misses: 2,
        fresh_samples: 50,
        out: "results".into(),
        seed_python: None,
        cpu_quota: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{name} needs a value; {USAGE}"))?;
            v.parse()
                .map_err(|_| format!("{name} must be a whole number, got {v:?}; {USAGE}"))
        };
        match flag.as_str() {
            "--n" => args.n = number("--n")?,
            "--origin-samples" => args.origin_samples = number("--origin-samples")?,
            "--slow-misses" => args.slow_misses = number("--slow-misses")?,
            "--fresh-samples" => args.fresh_samples = number("--fresh-samples")?,
            "--out" => args.out = it.next().ok_or(format!("--out needs a value; {USAGE}"))?.into(),
            "--seed-python" => {
                args.seed_python = Some(
                    it.next()
                        .ok_or(format!("--seed-python needs a value; {USAGE}"))?
                        .into(),
                )
            }
            "--cpu-quota" => {
                let d = number("--cpu-quota")?;
                if !(1..=64).contains(&d) {
                    return Err(format!("--cpu-quota must be 1..=64, got {d}; {USAGE}"));
                }
                args.cpu_quota = Some(d as u32);
            }
            "--bench" => {} // passed by `cargo bench`
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    if !(1..=10_000).contains(&args.fresh_samples) {
        return Err(format!("--fresh-samples must be 1..=10000; {USAGE}"));
    }
    if !(1..=100_000).contains(&args.n) {
        return Err(format!("--n must be 1..=100000; {USAGE}"));
    }
    Ok(args)
}

/// Redis's `total_net_output_bytes` and `total_net_input_bytes`.
async fn traffic(raw: &mut cache_aside::RedisConnection) -> Result<(u64, u64), String> {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(raw)
        .await
        .map_err(|e| e.to_string())?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(':')?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .ok_or(format!("INFO stats has no {name}"))
    };
    Ok((field("total_net_output_bytes")?, field("total_net_input_bytes")?))
}

/// Average bytes Redis sent per `hit()` over `n` calls and received during one `miss()`, net of
/// the INFO calls themselves.
async fn redis_bytes<H, HF, M, MF>(
    raw: &mut cache_aside::RedisConnection,
    n: usize,
    mut hit: H,
    mut miss: M,
) -> Result<(u64, u64), String>
where
    H: FnMut() -> HF,
    HF: std::future::Future<Output = ()>,
    M: FnMut() -> MF,
    MF: std::future::Future<Output = ()>,
{
    let (out0, in0) = traffic(raw).await?;
    let (out1, in1) = traffic(raw).await?;
    let (info_out, info_in) = (out1 - out0, in1 - in0);
    miss().await;
    let (out2, in2) = traffic(raw).await?;
    let received = (in2 - in1).saturating_sub(info_in);
    for _ in 0..n {
        hit().await;
    }
    let (out3, _) = traffic(raw).await?;
    let sent = (out3 - out2).saturating_sub(info_out) / n as u64;
    Ok((sent, received))
}

/// Times `count` calls of `op(i)`, advancing `bar`.
async fn sample<F, Fut>(bar: &ProgressBar, label: &str, count: usize, mut op: F) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    bar.set_message(label.to_owned());
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        op(i).await;
        samples.push(started.elapsed());
        bar.inc(1);
    }
    samples
}

/// `--cpu-quota D`: hit paths timed a second time at 1/D of a core, one fresh cgroup per section
/// so each section's throttling counters are its own. Entering failing once (not root, no cpu
/// controller) is reported and the bench goes on without quota rows.
struct QuotaSections {
    /// `None` without the flag, or once entering failed.
    denominator: Option<u32>,
    /// The denominator once a section ran under the quota, for the cost table's note.
    measured: Option<u32>,
    /// How often the quota stopped each section, for the report.
    notes: Vec<String>,
}

impl QuotaSections {
    /// Enters the quota for one section: its guard, and the suffix of the section's row labels.
    fn enter(&mut self) -> Option<(CpuQuota, String)> {
        let d = self.denominator?;
        match CpuQuota::enter(d) {
            Ok(guard) => {
                self.measured = Some(d);
                Some((guard, format!(", 1/{d} core")))
            }
            Err(e) => {
                eprintln!("bench: --cpu-quota {d}: {e}; going on without the 1/{d} core rows");
                self.denominator = None;
                None
            }
        }
    }

    /// Leaves the quota (dropping `guard`) and returns, and keeps, how often it stopped `section`:
    /// no throttling means the section never used up its share, so the quota did not bite.
    fn leave(&mut self, section: &str, guard: CpuQuota) -> String {
        let note = match guard.throttled() {
            Some((count, time)) => format!(
                "{section}: throttled {count} times, {:.1} ms in all",
                time.as_secs_f64() * 1e3
            ),
            None => format!("{section}: no throttling counters (cpu.stat unreadable)"),
        };
        drop(guard);
        self.notes.push(note.clone());
        note
    }
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let outcome = match argv.get(1).map(String::as_str) {
        Some("init") => init::run(&argv[2..]).await,
        _ => run().await,
    };
    if let Err(e) = outcome {
        eprintln!("bench: {e}");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    eprintln!("starting redis-server, PostgreSQL, MariaDB and moto_server on loopback ...");
    let redis = RedisServer::start();
    let postgres = Postgres::start();
    let maria = MariaDb::start();
    let moto = Moto::start();
    let main_url = postgres.create_database("bench", &[query_catalog::demo_sql::POSTGRES_SEED_PATH]);
    let articles_url = maria.create_database("bench");

    let mut vars: HashMap<String, String> = moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    for (k, v) in [
        ("REDIS_URL", redis.url()),
        ("DATABASE_URL", main_url.clone()),
        ("DATABASE_URL_ARTICLES", articles_url.clone()),
        ("OBJECTS_BUCKET", "bench-objects".to_owned()),
        ("CACHE_NAMESPACE", "bench".to_owned()),
    ] {
        vars.insert(k.to_owned(), v);
    }
    let config = ServiceConfig::from_map(&vars).map_err(|e| e.to_string())?;
    let clients = Clients::build(&config).await.map_err(|e| e.to_string())?;
    // The same service with the memory tier off: every hit is a Redis round trip.
    vars.insert("CACHE_MEMORY_TRUST_MS".to_owned(), "0".to_owned());
    let redis_only = Clients::build(&ServiceConfig::from_map(&vars).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    let ingester = ingester::Ingester::new(Clients::build(&config).await.map_err(|e| e.to_string())?);

    eprintln!(
        "ingesting {} objects into S3 and Redis, and 20,000 articles into both databases ...",
        args.n
    );
    let report = ingester
        .handle(
            json!({"objects": {"count": args.n, "min_bytes": 200, "max_bytes": 400, "prefix": "filename"}}),
        )
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("  {}", report["objects"]);
    ingester
        .handle(json!({"dataset": "articles"}))
        .await
        .map_err(|e| e.to_string())?;

    let store = clients.objects().ok_or("objects are not configured")?;
    let key = |i: usize| format!("filename{}.txt", i % args.n);
    let mut raw = clients.cache().store().connection();
    let policy = config.objects;
    let catalog = clients.catalog();
    let query = |name: &str| catalog.get(name).ok_or(format!("{name} is not in the catalog"));
    let (slow, articles, articles_pg) = (
        query("slow_version")?,
        query("article_search")?,
        query("article_search_pg")?,
    );
    let defaults =
        |q: &query_catalog::NamedQuery| ResolvedParams::resolve(&q.params, []).map_err(|e| e.to_string());
    let (slow_params, article_params, article_pg_params) =
        (defaults(slow)?, defaults(articles)?, defaults(articles_pg)?);

    eprintln!("verifying every object is byte-identical in S3 and Redis ...");
    let mut mismatched = Vec::new();
    for i in 0..args.n {
        let s3 = match store.get(&key(i), u64::MAX).await.map_err(|e| e.to_string())? {
            aws_clients::Fetched::Object(o) => Some(o.bytes),
            _ => None,
        };
        let cached: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(clients.cache().key_space().object_key(&key(i)))
            .arg("b")
            .query_async(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        if s3.is_none() || s3 != cached {
            mismatched.push(key(i));
        }
    }
    if !mismatched.is_empty() {
        return Err(format!(
            "{} objects differ between S3 and Redis: {:?}",
            mismatched.len(),
            &mismatched[..mismatched.len().min(10)]
        ));
    }
    eprintln!("  all {} objects identical", args.n);

    let slow_misses = args.slow_misses.max(1);
    // Three object rows, then per route its origin reads and two hit rows.
    let total = 3 * args.n + slow_misses + 2 * args.origin_samples + 3 * 2 * args.n;
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?,
    );

    let mut quota = QuotaSections {
        denominator: args.cpu_quota,
        measured: None,
        notes: Vec::new(),
    };
    let mut rows: Vec<(String, Summary)> = Vec::new();
    let mut record =
        |label: &str, mut samples: Vec<Duration>| rows.push((label.to_owned(), summarize(&mut samples)));

    record(
        "S3 GetObject",
        sample(&bar, "S3 GetObject", args.n, |i| {
            let key = key(i);
            async move {
                let fetched = store.get(&key, u64::MAX).await.expect("S3 answers");
                assert!(matches!(fetched, aws_clients::Fetched::Object(_)), "object in S3");
            }
        })
        .await,
    );
    let raw_samples = {
        let mut samples = Vec::with_capacity(args.n);
        bar.set_message("Redis HGET (raw)");
        for i in 0..args.n {
            let started = Instant::now();
            let bytes: Option<Vec<u8>> = redis::cmd("HGET")
                .arg(clients.cache().key_space().object_key(&key(i)))
                .arg("b")
                .query_async(&mut raw)
                .await
                .map_err(|e| e.to_string())?;
            samples.push(started.elapsed());
            bytes.ok_or("object missing from Redis")?;
            bar.inc(1);
        }
        samples
    };
    record("Redis HGET (raw)", raw_samples);
    let object_hit = |i: usize| {
        let key = key(i);
        let cache = clients.cache();
        async move {
            let lookup = cache
                .get_or_load_object(&key, policy, ReadMode::Cached, || async {
                    Ok::<ObjectState, String>(ObjectState::Missing)
                })
                .await
                .expect("no origin error");
            assert_eq!(lookup.state.as_str(), "hit", "ingested objects are cached");
        }
    };
    record(
        "cache-aside object hit",
        sample(&bar, "cache-aside object hit", args.n, &object_hit).await,
    );
    // The same hits again at the `--cpu-quota` share of a core.
    if let Some((guard, suffix)) = quota.enter() {
        let label = format!("cache-aside object hit{suffix}");
        bar.inc_length(args.n as u64);
        record(&label, sample(&bar, &label, args.n, &object_hit).await);
        let note = quota.leave(&label, guard);
        bar.suspend(|| eprintln!("  {note}"));
    }

    let run_on = |clients, q, p, mode: ReadMode| async move {
        let clients: &Clients = clients;
        clients.run_query(q, p, mode.into()).await.expect("query answers");
    };
    let run_query = |q, p, mode| run_on(&clients, q, p, mode);
    // Per route: a forced origin read, then the same request answered by Redis alone and by memory.
    let routes = [
        ("slow_version", "PostgreSQL, 5 s", slow, &slow_params, slow_misses),
        (
            "article_search",
            "MariaDB",
            articles,
            &article_params,
            args.origin_samples,
        ),
        (
            "article_search_pg",
            "PostgreSQL",
            articles_pg,
            &article_pg_params,
            args.origin_samples,
        ),
    ];
    for (name, origin, q, params, misses) in routes {
        let miss = format!("{name} miss");
        record(
            &format!("{miss} ({origin})"),
            sample(&bar, &miss, misses, |_| run_query(q, params, ReadMode::Refresh)).await,
        );
        let redis_hit = format!("{name} hit (Redis)");
        record(
            &redis_hit,
            sample(&bar, &redis_hit, args.n, |_| {
                run_on(&redis_only, q, params, ReadMode::Cached)
            })
            .await,
        );
        let memory_hit = format!("{name} hit (memory)");
        record(
            &memory_hit,
            sample(&bar, &memory_hit, args.n, |_| {
                run_query(q, params, ReadMode::Cached)
            })
            .await,
        );
        // Both hits again at the `--cpu-quota` share of a core; the misses stay at full speed.
        if let Some((guard, suffix)) = quota.enter() {
            bar.inc_length(2 * args.n as u64);
            let redis_hit = format!("{redis_hit}{suffix}");
            record(
                &redis_hit,
                sample(&bar, &redis_hit, args.n, |_| {
                    run_on(&redis_only, q, params, ReadMode::Cached)
                })
                .await,
            );
            let memory_hit = format!("{memory_hit}{suffix}");
            record(
                &memory_hit,
                sample(&bar, &memory_hit, args.n, |_| {
                    run_query(q, params, ReadMode::Cached)
                })
                .await,
            );
            let note = quota.leave(&format!("{name} hits{suffix}"), guard);
            bar.suspend(|| eprintln!("  {note}"));
        }
    }
    bar.finish_and_clear();
    if let Some(python) = &args.seed_python {
        eprintln!("timing the seed-style Python handler ({}) ...", python.display());
        for (label, samples) in seed::run(python, &redis.url(), &articles_url, args.n, args.origin_samples)? {
            record(&label, samples);
        }
        // Its hits again at the `--cpu-quota` share: the Python process, spawned inside, starts in
        // the quota's cgroup.
        if let Some((guard, suffix)) = quota.enter() {
            eprintln!("timing its hits again{suffix} ...");
            let hits = seed::hits(python, &redis.url(), &articles_url, args.n);
            let note = quota.leave(&format!("Python seed handler hits{suffix}"), guard);
            eprintln!("  {note}");
            match hits {
                Ok((label, samples)) => record(&format!("{label}{suffix}"), samples),
                Err(e) => eprintln!("bench: the Python seed handler failed under the CPU quota: {e}"),
            }
        }
    }

    // Commit to first fresh read through the logical source, at two poll intervals.
    for poll_ms in [200u64, 50] {
        let label = format!("commit to first fresh read (logical, poll {poll_ms} ms)");
        eprintln!("measuring {label}, {} commits ...", args.fresh_samples);
        let lags = freshness::commit_to_fresh_read(
            &vars,
            &main_url,
            Duration::from_millis(poll_ms),
            args.fresh_samples,
        )
        .await?;
        record(&label, lags);
    }

    // Bytes Redis sends per article_search hit and receives per miss, with and without LZ4.
    vars.insert("CACHE_COMPRESSION".to_owned(), "off".to_owned());
    vars.insert("CACHE_NAMESPACE".to_owned(), "bench-uncompressed".to_owned());
    let uncompressed = Clients::build(&ServiceConfig::from_map(&vars).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    let mut bytes_table = String::from(
        "Redis traffic per article_search request (500 rows), from INFO stats\n\n\
         | values | bytes sent per hit | bytes received per miss |\n|---|---:|---:|\n",
    );
    let mut sent = Vec::new();
    for (label, service) in [("LZ4 (default)", &redis_only), ("uncompressed", &uncompressed)] {
        let (hit, miss) = redis_bytes(
            &mut raw,
            args.n,
            || run_on(service, articles, &article_params, ReadMode::Cached),
            || run_on(service, articles, &article_params, ReadMode::Refresh),
        )
        .await?;
        bytes_table.push_str(&format!("| {label} | {hit} | {miss} |\n"));
        sent.push(hit);
    }
    if let [compressed, plain] = sent[..] {
        bytes_table.push_str(&format!(
            "\nLZ4 cuts the bytes of an article_search hit {:.1}x.\n",
            plain as f64 / compressed.max(1) as f64
        ));
    }

    let mut table = format!(
        "Latency, {} objects of 200-400 bytes, {} origin samples per query miss, loopback services\n\n{TABLE_HEADER}\n",
        args.n, args.origin_samples
    );
    for (label, summary) in &rows {
        table.push_str(&table_row(label, summary));
        table.push('\n');
    }
    table.push('\n');
    if !quota.notes.is_empty() {
        table.push_str("Throttling under the CPU quota, per section (cgroup cpu.stat):\n\n");
        for note in &quota.notes {
            table.push_str(&format!("- {note}\n"));
        }
        table.push('\n');
    }
    table.push_str(&bytes_table);
    table.push('\n');
    // Freshness lags are no request's duration: they have no price.
    let priced: Vec<(String, Summary)> = rows
        .iter()
        .filter(|(label, _)| !label.starts_with("commit to"))
        .cloned()
        .collect();
    table.push_str(&cost::table(&priced, quota.measured));
    println!("\n{table}");
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let md = args.out.join("latency.md");
    let plot = args.out.join("latency.svg");
    std::fs::write(&md, &table).map_err(|e| format!("cannot write {}: {e}", md.display()))?;
    std::fs::write(&plot, svg::latency_chart(&rows))
        .map_err(|e| format!("cannot write {}: {e}", plot.display()))?;
    println!("wrote {} and {}", md.display(), plot.display());
    Ok(())
}
