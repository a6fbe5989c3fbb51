//! The SQL origin: a pool built once per process, named queries run with bound parameters.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Arguments;

use crate::rows::row_to_json;
use crate::{DbError, NamedQuery, ParamValue, ResolvedParams};

/// Pool and timeout settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSettings {
    /// Connections kept per process. A Lambda instance serves one request at a time, so a
    /// small pool avoids exhausting the database's connection limit as instances scale out.
    pub max_connections: u32,
    /// Longest wait for a connection (includes connecting) before the origin counts as down.
    pub connect_timeout: Duration,
    /// Server-side limit on one statement.
    pub statement_timeout: Duration,
    /// Idle connections are closed after this (a frozen Lambda's sockets die anyway).
    pub idle_timeout: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            max_connections: 2,
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Rows of a query result, already serialized: a cache hit hands the bytes on without
/// building JSON values again.
#[derive(Debug, Serialize, Deserialize)]
pub struct QueryRows {
    /// Number of rows.
    pub row_count: usize,
    /// A JSON array of row objects.
    pub rows: Box<RawValue>,
}

/// The database behind the named queries.
#[derive(Debug, Clone)]
pub struct Database {
    pool: PgPool,
    /// Client-side bound on one query: statement timeout plus connecting plus slack. The
    /// statement timeout is enforced by the server, which cannot help when the network dies.
    query_deadline: Duration,
    connect_timeout: Duration,
}

fn classify(e: sqlx::Error) -> DbError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            tracing::warn!(sqlstate = %code, message = %db.message(), "database rejected a query");
            match code.as_str() {
                // query_canceled: statement_timeout fired.
                "57014" => DbError::Timeout,
                // Server shutting down, too many connections, auth failures.
                c if c.starts_with("57P") || c.starts_with("28") || c == "53300" => {
                    DbError::Unavailable(format!("SQLSTATE {c}"))
                }
                _ => DbError::Rejected { code },
            }
        }
        sqlx::Error::Io(e) => DbError::Unavailable(format!("I/O: {}", e.kind())),
        sqlx::Error::PoolTimedOut => DbError::Unavailable("no connection within the timeout".into()),
        sqlx::Error::PoolClosed => DbError::Unavailable("pool closed".into()),
        sqlx::Error::Tls(e) => DbError::Unavailable(format!("TLS: {e}")),
        sqlx::Error::Protocol(p) => DbError::Unavailable(format!("protocol: {p}")),
        other => DbError::Other(other.to_string()),
    }
}

impl Database {
    /// Builds the pool without connecting, so start-up succeeds while the database is down.
    /// Must run inside a Tokio runtime.
    pub fn connect_lazy(url: &str, settings: &DatabaseSettings) -> Result<Self, DbError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(DbError::InvalidUrl("the scheme must be postgres://".into()));
        }
        let options: PgConnectOptions = url
            .parse()
            .map_err(|_| DbError::InvalidUrl("it does not parse".into()))?;
        let timeout_ms = settings.statement_timeout.as_millis().to_string();
        let options = options
            .application_name("cache-aside")
            .options([("statement_timeout", timeout_ms.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(settings.connect_timeout)
            .idle_timeout(Some(settings.idle_timeout))
            .test_before_acquire(true)
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            query_deadline: settings.statement_timeout + settings.connect_timeout + Duration::from_secs(1),
            connect_timeout: settings.connect_timeout,
        })
    }

    /// The pool, for seeding and tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `query` with `params` bound in order and returns its rows as JSON.
    pub async fn fetch_rows(
        &self,
        query: &NamedQuery,
        params: &ResolvedParams,
    ) -> Result<QueryRows, DbError> {
        let mut args = sqlx::postgres::PgArguments::default();
        for value in params.values() {
            let bound = match value {
                ParamValue::Int(i) => args.add(*i),
                ParamValue::Float(f) => args.add(*f),
                ParamValue::Text(s) => args.add(s.as_str()),
                ParamValue::Bool(b) => args.add(*b),
            };
            bound.map_err(|e| DbError::Other(format!("cannot bind parameter: {e}")))?;
        }
        let rows = tokio::time::timeout(
            self.query_deadline,
            sqlx::query_with(&query.sql, args).fetch_all(&self.pool),
        )
        .await
        .map_err(|_| DbError::Unavailable("no answer within the query deadline".into()))?
        .map_err(classify)?;
        let json_rows = rows.iter().map(row_to_json).collect::<Result<Vec<_>, _>>()?;
        let raw = serde_json::value::to_raw_value(&json_rows)
            .map_err(|e| DbError::Other(format!("rows cannot be encoded: {e}")))?;
        Ok(QueryRows {
            row_count: json_rows.len(),
            rows: raw,
        })
    }

    /// `SELECT 1`, returning the round-trip time.
    pub async fn ping(&self) -> Result<Duration, DbError> {
        let started = Instant::now();
        let ping = sqlx::query("SELECT 1").execute(&self.pool);
        tokio::time::timeout(self.connect_timeout + Duration::from_secs(1), ping)
            .await
            .map_err(|_| DbError::Unavailable("no answer to SELECT 1".into()))?
            .map_err(classify)?;
        Ok(started.elapsed())
    }
}
