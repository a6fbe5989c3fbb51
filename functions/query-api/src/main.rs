//! Lambda entry point of the query API: clients built once by the composition root, then the
//! runtime loop.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error, Request};
use query_api::App;
use service_config::ServiceConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    service_config::init_logging();
    let config = ServiceConfig::from_env()?;
    let app = Arc::new(App::from_config(&config).await?);
    tracing::info!(queries = app.catalog().queries().len(), "query API ready");
    run(service_fn(move |req: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(app.handle(req).await) }
    }))
    .await
}
