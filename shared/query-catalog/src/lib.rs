//! The named-query catalog: which queries exist, their SQL text, typed parameters, TTLs, tags
//! and invalidation scopes.
//!
//! Clients never send SQL: they name a query from the [`Catalog`] (a TOML file loaded and
//! validated at start-up) and pass parameters, which are parsed into typed values
//! ([`ResolvedParams`]) and checked against limits. Each query's SQL is parsed at load time
//! ([`tables_read`]) so that a table it reads but its tags forget is refused. Running the SQL is
//! an origin's job; this crate has no database code.
//!
//! The demo that goes with the bundled catalog lives here too: its SQL scripts ([`demo_sql`])
//! and its restaurants and reviews ([`demo_data`]), the one source of both origins' seeds.

mod catalog;
pub mod demo_data;
pub mod demo_sql;
mod error;
mod params;
mod placeholders;
mod query;
mod scopes;
mod tables;
mod tag_coverage;
mod validate;

pub use catalog::{Catalog, BUNDLED_CATALOG};
pub use error::{CatalogError, ParamError};
pub use params::{escape_like, ParamSpec, ParamType, ParamValue, ResolvedParams};
pub use placeholders::PlaceholderStyle;
pub use query::{NamedQuery, ScopeColumn, DEFAULT_MAX_CACHED_BYTES, DEFAULT_MAX_ROWS, MAIN_DATABASE};
pub use scopes::{entity_scope, query_scope, tag_scope};
pub use tables::tables_read;
