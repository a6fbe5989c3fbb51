//! `{"warm": [...]}`: refresh named queries with their default parameters.

use serde_json::{json, Value};
use use_cases::Clients;

use crate::IngestError;

pub(crate) async fn run(clients: &Clients, names: &[String]) -> Result<Value, IngestError> {
    if names.is_empty() {
        return Err(IngestError::Payload(format!(
            "no queries to warm; {}",
            crate::ACCEPTED
        )));
    }
    let mut report = Vec::new();
    let mut warmed: Vec<&str> = Vec::new();
    for name in names {
        let fail = |problem: String| {
            IngestError::Partial(format!(
                "query {name:?} cannot be warmed: {problem}; warmed before it: {warmed:?}"
            ))
        };
        let lookup = clients.warm(name).await.map_err(|e| match e {
            use_cases::UseCaseError::UnknownQuery(_) => fail("not in the catalog".into()),
            other => fail(other.to_string()),
        })?;
        report.push(json!({
            "query": name,
            "rows": lookup.value.row_count,
            "cache": lookup.state.as_str(),
            "load_ms": lookup.load_duration.as_millis() as u64,
        }));
        warmed.push(name);
    }
    Ok(json!({ "warmed": report }))
}
