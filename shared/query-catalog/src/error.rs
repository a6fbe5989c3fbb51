//! Errors of the catalog and of request parameters.

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
