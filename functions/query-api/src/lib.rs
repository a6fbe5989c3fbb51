//! The query API: named queries through the cache, cache administration and health, over any
//! Lambda HTTP event (API Gateway REST or HTTP API, Function URL, `cargo lambda watch`).
//!
//! [`App`] holds the clients, built once per Lambda instance; [`App::handle`] routes a request
//! to its handler (one module per route family, in `handlers/`), which calls a use case and
//! shapes the response. It never fails: every error becomes the JSON error of the contract.

mod app;
mod error;
mod handlers;
mod http;
mod identity;
mod metrics;
pub mod openapi;
mod pages;
mod query_body;
mod routes;
#[cfg(test)]
mod tests;

pub use app::{App, MAX_BODY_BYTES};
pub use error::ApiError;
pub use metrics::MetricsSink;
pub use use_cases::StartupError;
