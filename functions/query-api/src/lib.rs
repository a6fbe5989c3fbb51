//! The query API: named queries through the cache, cache administration and health, over any
//! Lambda HTTP event (API Gateway REST or HTTP API, Function URL, `cargo lambda watch`).
//!
//! [`App`] holds the clients, built once per Lambda instance; [`App::handle`] turns a request
//! into a response and never fails: every error becomes the JSON error of the contract.

mod app;
mod error;
mod routes;

pub use app::App;
pub use error::ApiError;
pub use service_config::StartupError;
