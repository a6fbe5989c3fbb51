//! Named, parameterized SQL queries.
//!
//! Clients never send SQL: they name a query from the [`Catalog`] (a TOML file loaded and
//! validated at start-up) and pass parameters, which are parsed into typed values
//! ([`ResolvedParams`]), checked against limits, and bound to placeholders. [`Database`] runs the
//! query and returns rows as JSON objects with faithful types.

mod catalog;
mod database;
mod error;
mod params;
mod rows;
mod tls;

pub use catalog::{
    entity_scope, query_scope, tag_scope, Catalog, NamedQuery, BUNDLED_CATALOG, MAIN_DATABASE,
};
pub use database::{
    CredentialSource, CredentialsFuture, Database, DatabaseSettings, Databases, DbCredentials, Engine, Pool,
    QueryRows,
};
pub use error::{CatalogError, DbError, ParamError};
pub use params::{ParamSpec, ParamType, ParamValue, ResolvedParams};
pub use tls::{DbTls, DbTlsMode, RDS_CA_BUNDLE};
