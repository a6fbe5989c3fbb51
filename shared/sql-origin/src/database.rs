//! One named database: its pool, rebuilt once when rotated credentials are refused (at most once
//! per backoff), a client-side deadline on every statement, and running SQL to rows.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlArguments;
use sqlx::postgres::PgArguments;
use sqlx::Executor;

use crate::bind::bind_all;
use crate::error::classify;
use crate::pool::{pool_for, pool_for_url};
use crate::rows::{collect_rows, mysql_row_to_json, pg_row_to_json};
use crate::{CredentialSource, DatabaseSettings, DbError, Engine, Pool, QueryRows, SqlValue};

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

impl Database {
    /// A database reached by `url` (`postgres://` or `mysql://`), without connecting yet.
    pub fn connect_lazy(name: &str, url: &str, settings: &DatabaseSettings) -> Result<Self, DbError> {
        let (engine, pool) = pool_for_url(url, settings)?;
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
        QueryRows::from_objects(&json_rows)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DbCredentials, DbTls};

    /// Settings that give up fast on a closed port.
    fn quick() -> DatabaseSettings {
        DatabaseSettings {
            connect_timeout: Duration::from_millis(300),
            ..DatabaseSettings::default()
        }
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
}
