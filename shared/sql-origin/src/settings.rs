//! Pool, timeout and TLS settings of the SQL origins.

use std::time::Duration;

use crate::DbTls;

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
    /// TLS for every database. `None`: a URL's own `sslmode` decides, and databases reached
    /// through Secrets Manager use [`DbTls::rds`] (verified against the RDS CAs).
    pub tls: Option<DbTls>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            max_connections: 2,
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            tls: None,
        }
    }
}
