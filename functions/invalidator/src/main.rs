//! Lambda entry point of the invalidator: clients built once, then the runtime loop.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use query_catalog::Catalog;
use serde_json::Value;
use service_config::{Clients, ServiceConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = ServiceConfig::from_env()?;
    let catalog = Catalog::load(config.catalog_path.as_deref())?;
    let cache = Clients::cache_only(&config).await?;
    let (cache, catalog) = (&cache, &catalog);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        invalidator::handle(cache, catalog, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
