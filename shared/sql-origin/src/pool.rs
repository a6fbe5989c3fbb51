//! Building a connection pool of either engine: connect options from a URL or from credentials,
//! TLS applied, the statement timeout set on every connection, connected lazily. Built once per
//! process, and again only when rotated credentials replace it.

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Executor;

use crate::{DatabaseSettings, DbCredentials, DbError, DbTls, Engine};

/// A connection pool of either engine; cheap to clone.
#[derive(Debug, Clone)]
pub enum Pool {
    /// PostgreSQL.
    Postgres(PgPool),
    /// MySQL / MariaDB.
    MySql(MySqlPool),
}

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

/// A pool for `credentials` (from a rotating source), with TLS as configured or else verified
/// against the RDS CAs.
pub(crate) fn pool_for(credentials: &DbCredentials, settings: &DatabaseSettings) -> Pool {
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

/// The engine and a pool for `url` (`postgres://` or `mysql://`), TLS applied only when
/// configured (the URL's own `sslmode` holds otherwise). The error never echoes the URL.
pub(crate) fn pool_for_url(url: &str, settings: &DatabaseSettings) -> Result<(Engine, Pool), DbError> {
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
    Ok((engine, pool))
}
