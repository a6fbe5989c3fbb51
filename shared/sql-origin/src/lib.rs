//! The SQL origins: PostgreSQL and MySQL/MariaDB.
//!
//! A [`Database`] owns one connection pool, built once per process and connected lazily, with
//! credentials from a URL or from a rotating [`CredentialSource`] (re-read once when the
//! database refuses them), TLS verified against the bundled RDS CAs, and a client-side deadline
//! on every statement. It runs SQL text with [`SqlValue`]s bound to its placeholders and returns
//! the rows as JSON objects with faithful types ([`QueryRows`]). It knows nothing of catalogs
//! or caches.

mod bind;
mod credentials;
mod database;
mod databases;
mod engine;
mod error;
mod pool;
mod roles;
mod rows;
mod settings;
mod tls;

pub use bind::SqlValue;
pub use credentials::{CredentialSource, CredentialsFuture, DbCredentials};
pub use database::{Database, CREDENTIAL_RELOAD_BACKOFF};
pub use databases::Databases;
pub use engine::Engine;
pub use error::DbError;
pub use pool::Pool;
pub use roles::{RoleGrants, RoleLogin, RoleReport};
pub use rows::QueryRows;
pub use settings::DatabaseSettings;
pub use tls::{DbTls, DbTlsMode, RDS_CA_BUNDLE};
