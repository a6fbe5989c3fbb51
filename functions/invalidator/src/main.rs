//! Lambda entry point of the invalidator: clients built once by the composition root, then
//! the runtime loop.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use invalidator::Drains;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use service_config::ServiceConfig;

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
    let mut clients = use_cases::compose::invalidator(&config).await?;
    let drains = Drains {
        sources: std::mem::take(&mut clients.sources),
        settings: clients.drain.clone(),
        drain_for: clients.drain_for,
    };
    let (clients, drains) = (&clients, &drains);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = deadline(event.context.deadline);
        invalidator::handle_with_drains(clients.invalidation(), drains, event.payload, deadline)
            .await
            .map_err(Error::from)
    }))
    .await
}
