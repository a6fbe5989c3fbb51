//! Errors of the catalog, of parameters and of the database.

/// A catalog file that cannot be used. Names the query and the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read query catalog {path}: {source}")]
    Read {
        /// The path tried.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the catalog's shape.
    #[error("query catalog is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    /// A query definition breaks a rule.
    #[error("query catalog: query {query:?}: {problem}")]
    Invalid {
        /// The query's name (or its position when the name itself is bad).
        query: String,
        /// What is wrong.
        problem: String,
    },
}

/// A request parameter that cannot be accepted. Always names the parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("parameter {param:?}: {problem}")]
pub struct ParamError {
    /// The parameter's name as sent.
    pub param: String,
    /// What is wrong, for the client.
    pub problem: String,
}

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
    /// The catalog names a database that is not configured.
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
