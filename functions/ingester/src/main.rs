//! Lambda entry point of the ingester: clients built once by the composition root, then the
//! runtime loop.

use ingester::Ingester;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use service_config::ServiceConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    service_config::init_logging();
    let config = ServiceConfig::from_env()?;
    let ingester = Ingester::new(use_cases::compose::ingester(&config).await?)
        .with_invalidator_arn(config.invalidator_function_arn.clone())
        .with_change_source(config.changes.source);
    let ingester = &ingester;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        ingester.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
