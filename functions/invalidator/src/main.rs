//! Lambda entry point of the invalidator: clients built once, then the runtime loop.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use invalidator::Drains;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use service_config::ServiceConfig;
use use_cases::Catalog;
use use_cases::{DrainSettings, Invalidation};

/// The invocation's deadline (milliseconds since the epoch) as an `Instant`.
fn deadline(epoch_ms: u64) -> Option<Instant> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let left = Duration::from_millis(epoch_ms).checked_sub(now)?;
    Some(Instant::now() + left)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    service_config::init_logging();
    // Database variables are optional here: only drains of committed changes need them.
    let config = ServiceConfig::cache_only_from_env()?;
    let catalog = Catalog::load(config.catalog_path.as_deref())?;
    let cache = use_cases::cache_only(&config).await?;
    use_cases::open_redis_connection(&cache).await;
    let invalidation = Invalidation::new(&cache, &catalog).with_settle(config.invalidation_settle);
    let drains = Drains {
        sources: use_cases::change_sources(&config).await?,
        settings: DrainSettings {
            poll: config.changes.poll,
            ..DrainSettings::default()
        },
        drain_for: config.changes.drain_for,
    };
    let drains = &drains;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = deadline(event.context.deadline);
        invalidator::handle_with_drains(invalidation, drains, event.payload, deadline)
            .await
            .map_err(Error::from)
    }))
    .await
}
