//! Lambda entry point of the invalidator: clients built once, then the runtime loop.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use query_catalog::Catalog;
use serde_json::Value;
use service_config::ServiceConfig;
use use_cases::Invalidation;

#[tokio::main]
async fn main() -> Result<(), Error> {
    service_config::init_logging();
    // The invalidator opens no database: database variables are optional here.
    let config = ServiceConfig::cache_only_from_env()?;
    let catalog = Catalog::load(config.catalog_path.as_deref())?;
    let cache = use_cases::cache_only(&config).await?;
    use_cases::open_redis_connection(&cache).await;
    let invalidation = Invalidation::new(&cache, &catalog).with_settle(config.invalidation_settle);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        invalidator::handle(invalidation, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
