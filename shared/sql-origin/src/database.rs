//! The SQL origins: PostgreSQL or MySQL/MariaDB pools, built once per process, with credentials
//! from a URL or from a rotating source (Secrets Manager), re-read once when authentication fails.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::mysql::{MySqlArguments, MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Arguments, Executor};

use crate::error::classify;
use crate::rows::{mysql_row_to_json, pg_row_to_json};
use crate::{CredentialSource, DatabaseSettings, DbCredentials, DbError, DbTls, Engine};

/// A connection pool of either engine; cheap to clone.
#[derive(Debug, Clone)]
pub enum Pool {
    /// PostgreSQL.
    Postgres(PgPool),
    /// MySQL / MariaDB.
    MySql(MySqlPool),
}

/// Rows of a query result, already serialized: a cache hit hands the bytes on without
/// building JSON values again, and a clone (a memory hit) shares them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryRows {
    /// Number of rows.
    pub row_count: usize,
    /// A JSON array of row objects.
    pub rows: std::sync::Arc<RawValue>,
}

/// One named database behind the catalog's queries.
#[derive(Debug)]
pub struct Database {
    name: String,
    engine: Engine,
    /// The pool and how many times it was rebuilt with fresh credentials.
    pool: RwLock<(u64, Pool)>,
    source: Option<Arc<dyn CredentialSource>>,
    settings: DatabaseSettings,
    /// Serialises credential reloads so one rotation causes one secret read, and remembers
    /// when the last one happened: credentials that stay wrong are re-read at most once per
    /// [`CREDENTIAL_RELOAD_BACKOFF`], not once per request.
    reload: tokio::sync::Mutex<Option<Instant>>,
}

/// Least time between two credential re-reads of one database.
pub const CREDENTIAL_RELOAD_BACKOFF: Duration = Duration::from_secs(30);

fn pg_pool(options: PgConnectOptions, settings: &DatabaseSettings) -> Pool {
    let timeout_ms = settings.statement_timeout.as_millis().to_string();
    let options = options
        .application_name("cache-aside")
        .options([("statement_timeout", timeout_ms.as_str())]);
    Pool::Postgres(
        PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.connect_timeout)
            .idle_timeout(Some(settings.idle_timeout))
            .connect_lazy_with(options),
    )
}

fn mysql_pool(options: MySqlConnectOptions, settings: &DatabaseSettings) -> Pool {
    let seconds = settings.statement_timeout.as_secs_f64();
    let millis = settings.statement_timeout.as_millis();
    Pool::MySql(
        MySqlPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.connect_timeout)
            .idle_timeout(Some(settings.idle_timeout))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // MariaDB calls it max_statement_time (s), MySQL max_execution_time (ms).
                    let mariadb = format!("SET SESSION max_statement_time = {seconds}");
                    if conn.execute(mariadb.as_str()).await.is_err() {
                        conn.execute(format!("SET SESSION max_execution_time = {millis}").as_str())
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options),
    )
}

fn pool_for(credentials: &DbCredentials, settings: &DatabaseSettings) -> Pool {
    let tls = settings.tls.clone().unwrap_or_else(DbTls::rds);
    match credentials.engine {
        Engine::Postgres => {
            let mut options = PgConnectOptions::new()
                .host(&credentials.host)
                .username(&credentials.username)
                .password(&credentials.password);
            if let Some(port) = credentials.port {
                options = options.port(port);
            }
            if let Some(db) = &credentials.dbname {
                options = options.database(db);
            }
            pg_pool(tls.apply_pg(options), settings)
        }
        Engine::MySql => {
            let mut options = MySqlConnectOptions::new()
                .host(&credentials.host)
                .username(&credentials.username)
                .password(&credentials.password);
            if let Some(port) = credentials.port {
                options = options.port(port);
            }
            if let Some(db) = &credentials.dbname {
                options = options.database(db);
            }
            mysql_pool(tls.apply_mysql(options), settings)
        }
    }
}

/// A value bound to a placeholder. Borrowed: binding copies nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SqlValue<'a> {
    /// 64-bit integer.
    Int(i64),
    /// 64-bit float.
    Float(f64),
    /// Text.
    Text(&'a str),
    /// Boolean.
    Bool(bool),
}

/// Binds `values` in order into an engine's argument buffer.
fn bind_all<'q, A: Arguments<'q>>(values: &[SqlValue<'q>]) -> Result<A, DbError>
where
    i64: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    f64: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    bool: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    &'q str: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
{
    let mut args = A::default();
    for value in values {
        match *value {
            SqlValue::Int(i) => args.add(i),
            SqlValue::Float(f) => args.add(f),
            SqlValue::Text(s) => args.add(s),
            SqlValue::Bool(b) => args.add(b),
        }
        .map_err(|e| DbError::Other(format!("cannot bind parameter: {e}")))?;
    }
    Ok(args)
}

impl Database {
    /// A database reached by `url` (`postgres://` or `mysql://`), without connecting yet.
    pub fn connect_lazy(name: &str, url: &str, settings: &DatabaseSettings) -> Result<Self, DbError> {
        let engine = Engine::of_url(url)
            .ok_or_else(|| DbError::InvalidUrl("the scheme must be postgres:// or mysql://".into()))?;
        let invalid = || DbError::InvalidUrl("it does not parse".into());
        let tls = settings.tls.as_ref();
        let pool = match engine {
            Engine::Postgres => {
                let options: PgConnectOptions = url.parse().map_err(|_| invalid())?;
                let options = match tls {
                    Some(tls) => tls.apply_pg(options),
                    None => options,
                };
                pg_pool(options, settings)
            }
            Engine::MySql => {
                let options: MySqlConnectOptions = url.parse().map_err(|_| invalid())?;
                let options = match tls {
                    Some(tls) => tls.apply_mysql(options),
                    None => options,
                };
                mysql_pool(options, settings)
            }
        };
        Ok(Self::with_pool(name, engine, pool, None, settings))
    }

    /// A database whose credentials come from `source`, read now and again on auth failure.
    pub async fn from_source(
        name: &str,
        source: Arc<dyn CredentialSource>,
        settings: &DatabaseSettings,
    ) -> Result<Self, DbError> {
        let credentials = source.fetch().await?;
        let pool = pool_for(&credentials, settings);
        Ok(Self::with_pool(
            name,
            credentials.engine,
            pool,
            Some(source),
            settings,
        ))
    }

    fn with_pool(
        name: &str,
        engine: Engine,
        pool: Pool,
        source: Option<Arc<dyn CredentialSource>>,
        settings: &DatabaseSettings,
    ) -> Self {
        Self {
            name: name.to_owned(),
            engine,
            pool: RwLock::new((0, pool)),
            source,
            settings: settings.clone(),
            reload: tokio::sync::Mutex::new(None),
        }
    }

    /// The name this database is configured under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The current pool (for seeding datasets and tests).
    pub fn pool(&self) -> Pool {
        self.current().1
    }

    fn current(&self) -> (u64, Pool) {
        self.pool.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Statement timeout plus connecting plus slack: the client-side bound on one query, for
    /// when the network dies and the server-side timeout cannot help.
    fn deadline(&self) -> Duration {
        self.settings.statement_timeout + self.settings.connect_timeout + Duration::from_secs(1)
    }

    /// Runs `op` against the current pool; on an authentication failure with a rotating
    /// credential source, re-reads the credentials once, rebuilds the pool and runs it again.
    async fn with_pool_retrying_auth<T, F, Fut>(&self, op: F) -> Result<T, DbError>
    where
        F: Fn(Pool) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let (generation, pool) = self.current();
        let run = |pool: Pool| async {
            tokio::time::timeout(self.deadline(), op(pool))
                .await
                .map_err(|_| DbError::Unavailable("no answer within the query deadline".into()))?
        };
        match run(pool).await {
            Err(DbError::AuthFailed) if self.source.is_some() => {
                self.reload_credentials(generation).await?;
                run(self.pool()).await
            }
            other => other,
        }
    }

    /// Rebuilds the pool from freshly read credentials, unless another request already did so
    /// since `failed_generation`.
    async fn reload_credentials(&self, failed_generation: u64) -> Result<(), DbError> {
        let Some(source) = &self.source else { return Ok(()) };
        let mut last_reload = self.reload.lock().await;
        if self.current().0 != failed_generation {
            return Ok(());
        }
        if last_reload.is_some_and(|at| at.elapsed() < CREDENTIAL_RELOAD_BACKOFF) {
            tracing::warn!(database = %self.name, "authentication failed again; credentials were re-read moments ago");
            return Err(DbError::AuthFailed);
        }
        *last_reload = Some(Instant::now());
        tracing::info!(database = %self.name, "authentication failed; re-reading credentials");
        let credentials = source.fetch().await?;
        let pool = pool_for(&credentials, &self.settings);
        let mut slot = self.pool.write().unwrap_or_else(|p| p.into_inner());
        let (_, old) = std::mem::replace(&mut *slot, (failed_generation + 1, pool));
        drop(slot);
        // Close the old pool's idle connections in the background; busy ones finish first.
        tokio::spawn(async move {
            match old {
                Pool::Postgres(p) => p.close().await,
                Pool::MySql(p) => p.close().await,
            }
        });
        Ok(())
    }

    /// Runs `sql` with `values` bound to its placeholders in order and returns its rows as JSON.
    /// Rows are read one at a time; a result with more than `max_rows` is refused as soon as
    /// the row past the limit arrives, so no query can make the function buffer without bound.
    pub async fn fetch_rows(
        &self,
        sql: &str,
        values: &[SqlValue<'_>],
        max_rows: u32,
    ) -> Result<QueryRows, DbError> {
        let limit = max_rows as usize;
        let json_rows = self
            .with_pool_retrying_auth(|pool| async move {
                match pool {
                    Pool::Postgres(pool) => {
                        let args: PgArguments = bind_all(values)?;
                        let rows = sqlx::query_with(sql, args).fetch(&pool);
                        collect_rows(rows, limit, pg_row_to_json).await
                    }
                    Pool::MySql(pool) => {
                        let args: MySqlArguments = bind_all(values)?;
                        let rows = sqlx::query_with(sql, args).fetch(&pool);
                        collect_rows(rows, limit, mysql_row_to_json).await
                    }
                }
            })
            .await?;
        let raw = serde_json::value::to_raw_value(&json_rows)
            .map_err(|e| DbError::Other(format!("rows cannot be encoded: {e}")))?;
        Ok(QueryRows {
            row_count: json_rows.len(),
            rows: raw.into(),
        })
    }

    /// `SELECT 1`, returning the round-trip time.
    pub async fn ping(&self) -> Result<Duration, DbError> {
        let started = Instant::now();
        self.with_pool_retrying_auth(|pool| async move {
            match pool {
                Pool::Postgres(p) => p.execute("SELECT 1").await.map(drop),
                Pool::MySql(p) => p.execute("SELECT 1").await.map(drop),
            }
            .map_err(classify)
        })
        .await?;
        Ok(started.elapsed())
    }
}

/// Up to `limit` rows of `rows` as JSON; one more is [`DbError::TooManyRows`].
async fn collect_rows<R>(
    mut rows: impl futures::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    limit: usize,
    to_json: impl Fn(&R) -> Result<serde_json::Map<String, serde_json::Value>, DbError>,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, DbError> {
    use futures::TryStreamExt;
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(classify)? {
        if out.len() == limit {
            return Err(DbError::TooManyRows { limit });
        }
        out.push(to_json(&row)?);
    }
    Ok(out)
}

/// The configured databases, by name.
#[derive(Debug, Default)]
pub struct Databases {
    list: Vec<Database>,
}

impl Databases {
    /// Wraps the list.
    pub fn new(list: Vec<Database>) -> Self {
        Self { list }
    }

    /// The database called `name`.
    pub fn get(&self, name: &str) -> Option<&Database> {
        self.list.iter().find(|d| d.name == name)
    }

    /// The database called `name`, or [`DbError::NotConfigured`] naming it.
    pub fn require(&self, name: &str) -> Result<&Database, DbError> {
        self.get(name)
            .ok_or_else(|| DbError::NotConfigured(name.to_owned()))
    }

    /// All of them.
    pub fn iter(&self) -> impl Iterator<Item = &Database> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings that give up fast on a closed port.
    fn quick() -> DatabaseSettings {
        DatabaseSettings {
            connect_timeout: Duration::from_millis(300),
            ..DatabaseSettings::default()
        }
    }

    #[test]
    fn values_bind_in_order_whatever_their_type() {
        let values = [
            SqlValue::Int(1),
            SqlValue::Float(0.5),
            SqlValue::Text("t"),
            SqlValue::Bool(true),
        ];
        let pg: PgArguments = bind_all(&values).unwrap();
        assert_eq!(pg.len(), 4);
        let my: MySqlArguments = bind_all(&values).unwrap();
        assert_eq!(my.len(), 4);
    }

    #[tokio::test]
    async fn bad_urls_are_refused_without_echoing_them() {
        for url in ["sqlite://user:hunter2@x", "postgres://user:hunter2@[bad"] {
            let e = Database::connect_lazy("main", url, &quick())
                .unwrap_err()
                .to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.starts_with("the database URL is not valid"), "{e}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_database_is_unavailable_within_its_deadline() {
        for url in ["postgres://u:p@127.0.0.1:1/db", "mysql://u:p@127.0.0.1:1/db"] {
            let db = Database::connect_lazy("main", url, &quick()).unwrap();
            let started = Instant::now();
            let e = db.fetch_rows("SELECT 1", &[], 10).await.unwrap_err();
            assert!(matches!(e, DbError::Unavailable(_)), "{url}: {e:?}");
            assert!(started.elapsed() < db.deadline(), "{url}");
            assert!(db.ping().await.is_err());
        }
    }

    #[tokio::test]
    async fn databases_are_found_by_name() {
        let main = Database::connect_lazy("main", "postgres://u:p@127.0.0.1:1/db", &quick()).unwrap();
        let databases = Databases::new(vec![main]);
        assert_eq!(databases.require("main").unwrap().engine(), Engine::Postgres);
        assert!(matches!(
            databases.require("articles"),
            Err(DbError::NotConfigured(name)) if name == "articles"
        ));
    }

    /// Hands out the shared test server's user with a wrong password, counting the reads.
    #[derive(Debug)]
    struct WrongPassword {
        port: u16,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl CredentialSource for WrongPassword {
        fn fetch(&self) -> crate::CredentialsFuture<'_> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                Ok(DbCredentials {
                    engine: Engine::Postgres,
                    host: "127.0.0.1".into(),
                    port: Some(self.port),
                    username: "postgres".into(),
                    password: "not-the-password".into(),
                    dbname: Some("postgres".into()),
                })
            })
        }
    }

    #[tokio::test]
    async fn credentials_that_stay_wrong_are_not_re_read_on_every_request() {
        let source = Arc::new(WrongPassword {
            port: test_support::Postgres::shared().port(),
            reads: Default::default(),
        });
        let settings = DatabaseSettings {
            tls: Some(DbTls {
                mode: crate::DbTlsMode::Disable,
                ca_pem: None,
            }),
            ..quick()
        };
        let db = Database::from_source("main", source.clone(), &settings)
            .await
            .unwrap();
        for _ in 0..5 {
            assert!(matches!(
                db.fetch_rows("SELECT 1", &[], 10).await,
                Err(DbError::AuthFailed)
            ));
        }
        let reads = source.reads.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            reads, 2,
            "one read at start-up, one re-read, then the backoff holds"
        );
    }

    #[test]
    fn credentials_never_print_the_password() {
        let credentials = DbCredentials {
            engine: Engine::MySql,
            host: "h".into(),
            port: None,
            username: "u".into(),
            password: "hunter2".into(),
            dbname: None,
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
