//! The named-query catalog: which queries exist, their SQL text, typed parameters, TTLs, tags
//! and invalidation scopes.
//!
//! Clients never send SQL: they name a query from the [`Catalog`] (a TOML file loaded and
//! validated at start-up) and pass parameters, which are parsed into typed values
//! ([`ResolvedParams`]) and checked against limits. Each query's SQL is parsed at load time
//! ([`tables_read`]) so that a table it reads but its tags forget is refused. Running the SQL is
//! an origin's job; this crate has no database code.

mod catalog;
pub mod demo_sql;
mod error;
mod params;
mod tables;

pub use catalog::{
    entity_scope, query_scope, tag_scope, Catalog, NamedQuery, PlaceholderStyle, ScopeColumn,
    BUNDLED_CATALOG, DEFAULT_MAX_CACHED_BYTES, DEFAULT_MAX_ROWS, MAIN_DATABASE,
};
pub use error::{CatalogError, ParamError};
pub use params::{escape_like, ParamSpec, ParamType, ParamValue, ResolvedParams};
pub use tables::tables_read;
