//! Why a database could not answer, and how driver errors map onto that.

/// Why the database could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be made or kept (down, unreachable, auth, TLS, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused the credentials (after one re-read when they come from a secret).
    #[error("database authentication failed")]
    AuthFailed,
    /// Credentials could not be obtained from their source.
    #[error("database credentials unavailable: {0}")]
    Credentials(String),
    /// A query names a database that is not configured.
    #[error("database {0:?} is not configured")]
    NotConfigured(String),
    /// The query ran past the statement timeout.
    #[error("database query timed out")]
    Timeout,
    /// The database rejected the query (SQLSTATE given).
    #[error("database rejected the query (SQLSTATE {code})")]
    Rejected {
        /// SQLSTATE code.
        code: String,
    },
    /// The result has more rows than its query allows.
    #[error("the result has more than {limit} rows")]
    TooManyRows {
        /// The limit.
        limit: usize,
    },
    /// A column's type has no JSON mapping here.
    #[error("column {column:?} has unsupported type {type_name}")]
    UnsupportedType {
        /// Column name.
        column: String,
        /// Database type name.
        type_name: String,
    },
    /// Other driver failure.
    #[error("database error: {0}")]
    Other(String),
    /// The database URL is unusable (never echoed: it may hold a password).
    #[error("the database URL is not valid: {0}")]
    InvalidUrl(String),
}

/// Maps a driver error onto what the caller can act on; the server's message goes to the log.
pub(crate) fn classify(e: sqlx::Error) -> DbError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            tracing::warn!(sqlstate = %code, message = %db.message(), "database error");
            // MySQL reports max_execution_time as error 3024 (SQLSTATE HY000, shared with many
            // other errors), MariaDB max_statement_time as 1969.
            let mysql_error = db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|e| e.number());
            if matches!(mysql_error, Some(3024 | 1969)) {
                return DbError::Timeout;
            }
            match code.as_str() {
                // PostgreSQL query_canceled (statement_timeout); MariaDB max_statement_time.
                "57014" | "70100" => DbError::Timeout,
                // Invalid authorization (both engines report SQLSTATE class 28).
                c if c.starts_with("28") => DbError::AuthFailed,
                // Server shutting down, too many connections.
                c if c.starts_with("57P") || c == "53300" || c == "08004" => {
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
