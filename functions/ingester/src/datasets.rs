//! `{"dataset": "articles"}`: the article table of the MySQL database-caching demo, as a
//! deterministic synthetic set, loaded in batches into PostgreSQL and/or MySQL, idempotently.
//! `{"dataset": "demo"}`: the PostgreSQL schema and seed the bundled catalog queries (and the
//! change-trigger function), for a deployed database that only the functions can reach.

use std::time::Instant;

use chrono::NaiveDate;
use serde_json::{json, Value};
use service_config::InvalidationSource;
use sqlx::QueryBuilder;
use use_cases::demo_sql::{
    mysql_change_outbox, POSTGRES_CHANGE_EVENTS, POSTGRES_DEMO_TRIGGERS, POSTGRES_DEMO_TRIGGERS_DROP,
    POSTGRES_SEED,
};
use use_cases::{Clients, Pool};

use crate::IngestError;

/// Rows per INSERT (13 binds each, far below both engines' limits).
const BATCH: usize = 500;
/// Default size of the set.
const DEFAULT_ROWS: u32 = 20_000;

/// The datasets the ingester can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// Synthetic articles, any engine.
    Articles,
    /// The catalog's PostgreSQL schema and seed.
    Demo,
}

/// Which dataset, how many rows, into which databases (all configured ones by default; `main`
/// for the demo schema).
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetJob {
    /// The dataset.
    pub dataset: Dataset,
    /// Rows to ensure exist.
    pub rows: u32,
    /// Catalog names of the target databases; empty = all configured.
    pub databases: Vec<String>,
}

impl DatasetJob {
    /// Validates a request.
    pub fn new(name: &str, rows: Option<u32>, databases: Option<Vec<String>>) -> Result<Self, IngestError> {
        let dataset = match name {
            "articles" => Dataset::Articles,
            "demo" if rows.is_none() => Dataset::Demo,
            "demo" => {
                return Err(IngestError::Payload(
                    "the demo dataset has a fixed size; drop rows".into(),
                ))
            }
            crate::RESTAURANTS_DATASET => {
                return Err(IngestError::Payload(
                    "the restaurants dataset has a fixed size and goes to RESTAURANTS_TABLE; drop rows and databases"
                        .into(),
                ))
            }
            _ => {
                return Err(IngestError::Payload(format!(
                    "unknown dataset {name:?}; available: articles, demo, restaurants"
                )))
            }
        };
        let rows = rows.unwrap_or(DEFAULT_ROWS);
        if !(1..=1_000_000).contains(&rows) {
            return Err(IngestError::Payload(format!(
                "rows must be 1..=1000000, got {rows}"
            )));
        }
        let databases = match (dataset, databases) {
            (Dataset::Demo, None) => vec!["main".to_owned()],
            (_, databases) => databases.unwrap_or_default(),
        };
        Ok(Self {
            dataset,
            rows,
            databases,
        })
    }
}

/// One row of `articles` (the columns of the reference demo).
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    pub objectid: i32,
    pub sha: String,
    pub possibleplace: String,
    pub sentence: String,
    pub matchedplace: String,
    pub doi: String,
    pub title: String,
    pub r#abstract: String,
    pub publisheddate: NaiveDate,
    pub authors: String,
    pub journal: String,
    pub source: String,
    pub license: String,
}

const WORDS: &[&str] = &[
    "river",
    "coastal",
    "survey",
    "mountain",
    "analysis",
    "village",
    "harbour",
    "climate",
    "northern",
    "valley",
    "island",
    "urban",
    "forest",
    "plain",
    "estuary",
    "sediment",
    "population",
    "trade",
    "route",
    "archive",
];
const PLACES: &[&str] = &[
    "Lisbon", "Nairobi", "Osaka", "Lima", "Oslo", "Hanoi", "Quito", "Perth", "Cairo", "Austin",
];
const SOURCES: &[&str] = &["pubmed", "arxiv", "crossref", "doaj"];

/// Article `objectid`: the same every time. One in 33 sentences mentions "delta" (about 3 %).
pub fn article(objectid: i32) -> Article {
    let mut rng = fastrand::Rng::with_seed(0x5eed_0000 + objectid as u64);
    let mut words = |n: usize| {
        (0..n)
            .map(|_| WORDS[rng.usize(..WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let place = PLACES[objectid as usize % PLACES.len()];
    let mut sentence = format!("The {} near {place} was {}", words(3), words(4));
    if objectid % 33 == 0 {
        sentence.push_str(" along the river delta");
    }
    let title = format!("{} of {place}", words(3));
    let r#abstract = format!("{}. {}.", words(12), words(10));
    let authors = format!("Author {}; Author {}", objectid % 97, objectid % 89);
    Article {
        objectid,
        sha: format!(
            "{:040x}",
            (objectid as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
        ),
        possibleplace: place.to_owned(),
        sentence,
        matchedplace: place.to_owned(),
        doi: format!("10.5555/demo.{objectid}"),
        title,
        r#abstract,
        publisheddate: NaiveDate::from_ymd_opt(
            2000 + objectid % 25,
            1 + (objectid % 12) as u32,
            1 + (objectid % 28) as u32,
        )
        .unwrap_or_default(),
        authors,
        journal: format!("Journal of {}", WORDS[objectid as usize % WORDS.len()]),
        source: SOURCES[objectid as usize % SOURCES.len()].to_owned(),
        license: "CC-BY-4.0".to_owned(),
    }
}

const COLUMNS: &str =
    "objectid, sha, possibleplace, sentence, matchedplace, doi, title, abstract, publisheddate, authors, journal, source, license";

const PG_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS articles (
  objectid integer PRIMARY KEY, sha text NOT NULL, possibleplace text, sentence text NOT NULL,
  matchedplace text, doi text, title text, abstract text, publisheddate date, authors text,
  journal text, source text, license text)";

const MYSQL_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS articles (
  objectid INT PRIMARY KEY, sha VARCHAR(64) NOT NULL, possibleplace VARCHAR(255), sentence TEXT NOT NULL,
  matchedplace VARCHAR(255), doi VARCHAR(255), title TEXT, abstract TEXT, publisheddate DATE,
  authors TEXT, journal VARCHAR(255), source VARCHAR(64), license VARCHAR(64)) CHARACTER SET utf8mb4";

/// Appends one INSERT of `rows` with bind parameters (both engines share the builder API).
fn push_rows<DB: sqlx::Database>(builder: &mut QueryBuilder<'_, DB>, rows: &[Article])
where
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> NaiveDate: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    builder.push_values(rows, |mut b, a| {
        b.push_bind(a.objectid)
            .push_bind(a.sha.clone())
            .push_bind(a.possibleplace.clone())
            .push_bind(a.sentence.clone())
            .push_bind(a.matchedplace.clone())
            .push_bind(a.doi.clone())
            .push_bind(a.title.clone())
            .push_bind(a.r#abstract.clone())
            .push_bind(a.publisheddate)
            .push_bind(a.authors.clone())
            .push_bind(a.journal.clone())
            .push_bind(a.source.clone())
            .push_bind(a.license.clone());
    });
}

/// Inserts rows `1..=rows` that are not there yet; returns how many were inserted.
async fn load(pool: &Pool, rows: u32, database: &str) -> Result<u64, sqlx::Error> {
    match pool {
        Pool::Postgres(p) => sqlx::query(PG_SCHEMA).execute(p).await.map(drop)?,
        Pool::MySql(p) => sqlx::query(MYSQL_SCHEMA).execute(p).await.map(drop)?,
    }
    let mut inserted = 0;
    let ids: Vec<i32> = (1..=rows as i32).collect();
    for (n, chunk) in ids.chunks(BATCH).enumerate() {
        let articles: Vec<Article> = chunk.iter().map(|&id| article(id)).collect();
        inserted += match pool {
            Pool::Postgres(p) => {
                let mut b = QueryBuilder::new(format!("INSERT INTO articles ({COLUMNS}) "));
                push_rows(&mut b, &articles);
                b.push(" ON CONFLICT (objectid) DO NOTHING");
                b.build().execute(p).await?.rows_affected()
            }
            Pool::MySql(p) => {
                let mut b = QueryBuilder::new(format!("INSERT IGNORE INTO articles ({COLUMNS}) "));
                push_rows(&mut b, &articles);
                b.build().execute(p).await?.rows_affected()
            }
        };
        let done = ((n + 1) * BATCH).min(ids.len());
        if done % 5000 < BATCH || done == ids.len() {
            tracing::info!(database, done, of = ids.len(), "articles loaded");
        }
    }
    // After the load, so the bulk insert adds no outbox rows.
    if let Pool::MySql(p) = pool {
        for statement in mysql_change_outbox() {
            sqlx::raw_sql(statement).execute(p).await?;
        }
    }
    Ok(inserted)
}

/// Loads `job`. The demo dataset's change events follow `source`: triggers sending to
/// `invalidator_arn` (or `pg_notify`), or none at all for the logical source. A MySQL/MariaDB
/// articles load ends by installing the outbox triggers.
pub(crate) async fn run(
    clients: &Clients,
    job: &DatasetJob,
    invalidator_arn: Option<&str>,
    source: InvalidationSource,
) -> Result<Value, IngestError> {
    let targets: Vec<_> = if job.databases.is_empty() {
        clients.databases().iter().collect()
    } else {
        job.databases
            .iter()
            .map(|name| {
                clients.databases().get(name).ok_or_else(|| {
                    IngestError::Payload(format!("database {name:?} is not configured; nothing was loaded"))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let mut report = serde_json::Map::new();
    let mut failures = Vec::new();
    for database in targets {
        let started = Instant::now();
        if job.dataset == Dataset::Demo {
            match database.pool() {
                Pool::Postgres(p) => match run_scripts(&p, invalidator_arn, source).await {
                    Ok(()) => {
                        let events = match (source, invalidator_arn) {
                            (InvalidationSource::Logical, _) => "logical",
                            (_, Some(_)) => "invalidator",
                            (_, None) => "pg_notify",
                        };
                        report.insert(
                            database.name().to_owned(),
                            json!({"engine": database.engine(),
                                   "change_events": events,
                                   "elapsed_ms": started.elapsed().as_millis() as u64}),
                        );
                    }
                    Err(e) => failures.push(format!("{}: {e}", database.name())),
                },
                Pool::MySql(_) => failures.push(format!(
                    "{}: the demo schema is PostgreSQL only (its slow query uses pg_sleep)",
                    database.name()
                )),
            }
            continue;
        }
        match load(&database.pool(), job.rows, database.name()).await {
            Ok(inserted) => {
                let events = match source {
                    InvalidationSource::Logical if database.engine() == use_cases::Engine::Postgres => {
                        "logical"
                    }
                    _ if database.engine() == use_cases::Engine::MySql => "outbox",
                    _ => "none",
                };
                report.insert(
                    database.name().to_owned(),
                    json!({"engine": database.engine(), "rows": job.rows, "inserted": inserted,
                           "already_present": u64::from(job.rows).saturating_sub(inserted),
                           "change_events": events,
                           "elapsed_ms": started.elapsed().as_millis() as u64}),
                );
            }
            Err(e) => failures.push(format!("{}: {e}", database.name())),
        }
    }
    let name = match job.dataset {
        Dataset::Articles => "articles",
        Dataset::Demo => "demo",
    };
    let report = json!({ "dataset": name, "databases": report });
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(IngestError::Partial(format!(
            "loading {name} failed for {} (re-run to retry; loads are idempotent); done: {report}",
            failures.join("; ")
        )))
    }
}

/// Runs the bundled demo scripts (static SQL, no input in it), each in one transaction, then
/// points the change triggers at the invalidator when its ARN is known. The logical source
/// needs no trigger: the seed only, and trigger mode's triggers removed.
async fn run_scripts(
    pool: &sqlx::PgPool,
    invalidator_arn: Option<&str>,
    source: InvalidationSource,
) -> Result<(), sqlx::Error> {
    let scripts = match source {
        InvalidationSource::Logical => [POSTGRES_SEED, POSTGRES_DEMO_TRIGGERS_DROP].as_slice(),
        InvalidationSource::Trigger => {
            [POSTGRES_SEED, POSTGRES_CHANGE_EVENTS, POSTGRES_DEMO_TRIGGERS].as_slice()
        }
    };
    for script in scripts {
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(script).execute(&mut *tx).await?;
        tx.commit().await?;
    }
    if let Some(arn) = invalidator_arn {
        sqlx::query(
            "INSERT INTO cache_invalidation_target (function_arn) VALUES ($1) \
             ON CONFLICT (singleton) DO UPDATE SET function_arn = EXCLUDED.function_arn",
        )
        .bind(arn)
        .execute(pool)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_targets_main_and_refuses_a_size() {
        let job = DatasetJob::new("demo", None, None).unwrap();
        assert_eq!(
            (job.dataset, job.databases),
            (Dataset::Demo, vec!["main".to_owned()])
        );
        assert!(DatasetJob::new("demo", Some(5), None).is_err());
        let unknown = DatasetJob::new("nope", None, None).unwrap_err().to_string();
        assert!(unknown.contains("articles, demo"), "{unknown}");
    }

    #[test]
    fn articles_are_deterministic_and_some_mention_delta() {
        assert_eq!(article(42), article(42));
        let with_delta = (1..=20_000)
            .filter(|&i| article(i).sentence.contains("delta"))
            .count();
        assert!((500..=700).contains(&with_delta), "{with_delta}");
    }
}
