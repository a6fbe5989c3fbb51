//! The composition root: what each function needs, built from the configuration in one place
//! and once per Lambda instance (during init, which is billed like any other time but spares
//! the first request). A function's `main` calls its builder and hands the result to its
//! handler; nothing else in a function assembles clients.

use std::time::Duration;

use cache_aside::Cache;
use query_catalog::Catalog;
use service_config::ServiceConfig;

use crate::clients::{cache_only, change_sources, open_redis_connection};
use crate::{ChangeSource, Clients, DrainSettings, Invalidation, StartupError};

/// The query API's clients: every origin, the catalog checked against the databases, and the
/// Redis connection opened now rather than in the first request.
pub async fn query_api(config: &ServiceConfig) -> Result<Clients, StartupError> {
    let clients = Clients::build(config).await?;
    open_redis_connection(clients.cache()).await;
    Ok(clients)
}

/// The ingester's clients: the same origins as the query API (it writes what the API reads),
/// plus the roles' logins when it creates them. Redis is connected by the first job.
pub async fn ingester(config: &ServiceConfig) -> Result<Clients, StartupError> {
    Clients::build(config).await
}

/// What the invalidator holds: the cache and the catalog (to turn events into scopes), and
/// each database's source of committed changes for the scheduled drains.
#[derive(Debug)]
pub struct InvalidatorClients {
    cache: Cache,
    catalog: Catalog,
    settle: Duration,
    /// One per database with a change stream (a replication slot, an outbox).
    pub sources: Vec<ChangeSource>,
    /// Poll pause, batch size and lease of a drain.
    pub drain: DrainSettings,
    /// How long a scheduled drain runs (`INVALIDATOR_DRAIN_SECONDS`).
    pub drain_for: Duration,
}

impl InvalidatorClients {
    /// Invalidation over this instance's cache and catalog.
    pub fn invalidation(&self) -> Invalidation<'_> {
        Invalidation::new(&self.cache, &self.catalog).with_settle(self.settle)
    }
}

/// The invalidator's clients. Database variables are optional here: only the drains of
/// committed changes use them (load `config` with [`ServiceConfig::cache_only_from_env`]).
pub async fn invalidator(config: &ServiceConfig) -> Result<InvalidatorClients, StartupError> {
    let catalog = Catalog::load(config.catalog_path.as_deref())?;
    let cache = cache_only(config).await?;
    open_redis_connection(&cache).await;
    Ok(InvalidatorClients {
        cache,
        catalog,
        settle: config.invalidation_settle,
        sources: change_sources(config).await?,
        drain: DrainSettings {
            poll: config.changes.poll,
            ..DrainSettings::default()
        },
        drain_for: config.changes.drain_for,
    })
}
