//! Lambda entry point of the ingester: clients built once, then the runtime loop.

use cache_aside::Cache;
use ingester::Ingester;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use query_catalog::{Catalog, Database};
use serde_json::Value;
use service_config::ServiceConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = ServiceConfig::from_env()?;
    let ingester = Ingester {
        catalog: Catalog::load(config.catalog_path.as_deref())?,
        cache: Cache::connect_lazy(&config.redis_url, config.cache.clone())?,
        db: Database::connect_lazy(&config.database_url, &config.database)?,
    };
    let ingester = &ingester;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        ingester.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
