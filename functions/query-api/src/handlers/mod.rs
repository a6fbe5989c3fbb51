//! One module per route family: plain glue from a request to a use case and back.

pub(crate) mod health;
pub(crate) mod invalidation;
pub(crate) mod objects;
pub(crate) mod queries;
pub(crate) mod restaurants;
