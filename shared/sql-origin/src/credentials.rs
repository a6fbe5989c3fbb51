//! Credentials that may rotate (Secrets Manager), handed to the pools when they are built.

use std::future::Future;
use std::pin::Pin;

use crate::{DbError, Engine};

/// Credentials for one database, as a rotating source hands them out.
#[derive(Clone, PartialEq, Eq)]
pub struct DbCredentials {
    /// Engine.
    pub engine: Engine,
    /// Host.
    pub host: String,
    /// Port; the engine's default when `None`.
    pub port: Option<u16>,
    /// User.
    pub username: String,
    /// Password.
    pub password: String,
    /// Database name.
    pub dbname: Option<String>,
}

impl std::fmt::Debug for DbCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbCredentials")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("dbname", &self.dbname)
            .finish()
    }
}

/// Boxed future returned by [`CredentialSource::fetch`].
pub type CredentialsFuture<'a> = Pin<Box<dyn Future<Output = Result<DbCredentials, DbError>> + Send + 'a>>;

/// Where credentials come from when they may change (Secrets Manager rotation).
pub trait CredentialSource: Send + Sync + std::fmt::Debug {
    /// The current credentials.
    fn fetch(&self) -> CredentialsFuture<'_>;
}

#[cfg(test)]
mod tests {
    use super::*;

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
