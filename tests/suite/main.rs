//! Workspace integration tests: the functions' handlers against real local services.
//! One binary (one link); each area is a module.

mod changes;
mod concurrency;
mod docs;
mod fleet;
mod functions;
mod hardening;
mod iam_auth;
mod invalidation_events;
mod key_schema;
mod layout;
mod mysql;
mod objects;
mod openapi;
mod pages;
mod query_api;
mod restaurants;
mod restaurants_dynamodb;
mod roles;
mod secrets;
mod secure_redis;
mod support;
mod surface;
mod writes;
