//! Invalidator: drops cached data when the data changes. It accepts:
//!
//! - S3 notifications (`ObjectCreated:*`, `ObjectRemoved:*`): drop that object's cache entry;
//! - database change events `{"table", "operation", "keys"}` (from the PostgreSQL trigger in
//!   `use_cases::demo_sql::POSTGRES_CHANGE_EVENTS`): invalidate the table's tag, so
//!   every query depending on it reloads; twice, the second time once the change's
//!   transaction has surely committed (see `Invalidation::table_changed`);
//! - DynamoDB stream batches from the restaurants table: drop the summary of each restaurant
//!   whose restaurant item or reviews changed (by the API or anything else), answered with
//!   `batchItemFailures` so the stream resumes from the first record not handled;
//! - SQS batches whose messages hold any of these, answered with `batchItemFailures` so only
//!   the failed messages are retried;
//! - direct invokes `{"queries": [...], "tags": [...]}`;
//! - EventBridge scheduled events (and direct `{"drain": {"seconds": n}}`): a drain of the
//!   databases' committed changes (a logical replication slot on PostgreSQL with
//!   `INVALIDATION_SOURCE=logical`, the outbox on MySQL/MariaDB), polling every
//!   `INVALIDATOR_POLL_MS` for `INVALIDATOR_DRAIN_SECONDS` or until the deadline's reserve.
//!
//! Every change is O(1) in Redis (generation bumps or one DEL), whatever is cached.

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use use_cases::{query_scope, tag_scope};

use use_cases::{ChangeSource, DrainSettings, Invalidation, UseCaseError};

/// What the function accepts, quoted in every refusal.
pub const ACCEPTED: &str =
    "accepted events: S3 notifications, SQS batches, DynamoDB stream batches, database changes \
{\"table\", \"operation\", \"keys\"}, scheduled events and {\"drain\": {\"seconds\": n}}, and direct \
{\"queries\": [...]} and/or {\"tags\": [...]}";

/// Time kept back from the invocation's deadline when a drain decides to stop: the last poll
/// and the reply fit in it.
pub const DRAIN_RESERVE: Duration = Duration::from_secs(5);

/// The scheduled drains of committed changes: the sources, and how long each drain lasts.
#[derive(Debug, Clone, Default)]
pub struct Drains {
    /// One per database with a change stream.
    pub sources: Vec<ChangeSource>,
    /// Poll pause, batch size, lease.
    pub settings: DrainSettings,
    /// `INVALIDATOR_DRAIN_SECONDS`.
    pub drain_for: Duration,
}

/// A direct drain request: `{"drain": {"seconds": 5}}` (seconds at most the configured drain).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainRequest {
    #[serde(default)]
    seconds: Option<f64>,
}

/// Whether `event` asks for a drain: an EventBridge scheduled event or `{"drain": ...}`.
fn drain_request(event: &Value) -> Option<Result<DrainRequest, InvalidateError>> {
    let scheduled = event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
    if scheduled {
        return Some(Ok(DrainRequest::default()));
    }
    let request = event.as_object().filter(|o| o.len() == 1)?.get("drain")?;
    Some(match request {
        Value::Bool(true) => Ok(DrainRequest::default()),
        other => serde_json::from_value(other.clone())
            .map_err(|e| InvalidateError::Payload(format!("drain: {e}; {ACCEPTED}"))),
    })
}

/// Carries out `event`, drains included: `deadline` is the invocation's.
pub async fn handle_with_drains(
    invalidation: Invalidation<'_>,
    drains: &Drains,
    event: Value,
    deadline: Option<Instant>,
) -> Result<Value, InvalidateError> {
    let Some(request) = drain_request(&event) else {
        return handle(invalidation, event).await;
    };
    let request = request?;
    if drains.sources.is_empty() {
        return Ok(json!({
            "drained": [],
            "note": "no change source: INVALIDATION_SOURCE=logical reads PostgreSQL slots, \
                     and MySQL/MariaDB databases drain their outbox",
        }));
    }
    let run_for = match request.seconds {
        Some(s) => match Duration::try_from_secs_f64(s) {
            Ok(asked) => drains.drain_for.min(asked),
            Err(_) => {
                return Err(InvalidateError::Payload(
                    "drain seconds must be a number, 0 or more".into(),
                ))
            }
        },
        None => drains.drain_for,
    };
    let mut until = Instant::now() + run_for;
    if let Some(deadline) = deadline {
        until = until.min(deadline.checked_sub(DRAIN_RESERVE).unwrap_or(deadline));
    }
    let runs = drains
        .sources
        .iter()
        .map(|source| invalidation.drain(source, &drains.settings, until));
    let mut reports = Vec::new();
    for outcome in futures::future::join_all(runs).await {
        let report = outcome.map_err(|source| InvalidateError::Cache {
            done: Vec::new(),
            source,
        })?;
        reports.push(serde_json::to_value(report).unwrap_or_default());
    }
    Ok(json!({ "drained": reports }))
}

/// A direct invalidation request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Invalidate {
    #[serde(default)]
    queries: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// A row change reported by the database trigger.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DbChange {
    table: String,
    operation: String,
    #[serde(default)]
    keys: Value,
}

/// Why an event was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum InvalidateError {
    /// The payload is not one the function understands.
    #[error("unrecognised payload: {0}")]
    Payload(String),
    /// A query name is not in the catalog (nothing was invalidated).
    #[error("unknown query {0:?}; nothing was invalidated")]
    UnknownQuery(String),
    /// Redis failed; the scopes or keys listed before it were done.
    #[error("invalidation failed after {done:?}: {source}")]
    Cache {
        /// What was already done.
        done: Vec<String>,
        /// The failure.
        #[source]
        source: UseCaseError,
    },
}

/// The `eventSource` of the first record, when `event` is a `Records` batch.
fn records_source(event: &Value) -> Option<&str> {
    let records = event.get("Records")?.as_array()?;
    Some(
        records
            .first()
            .and_then(|r| r.get("eventSource"))
            .and_then(Value::as_str)
            .unwrap_or(""),
    )
}

/// Carries out one event and reports what was invalidated.
pub async fn handle(invalidation: Invalidation<'_>, event: Value) -> Result<Value, InvalidateError> {
    // S3 sends one when a notification is configured: nothing changed.
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(json!({"ignored": "s3:TestEvent"}));
    }
    match records_source(&event) {
        Some("aws:sqs") => {
            let batch: SqsEvent = parse(event)?;
            Ok(serde_json::to_value(sqs(invalidation, batch).await).unwrap_or_default())
        }
        Some("aws:dynamodb") => {
            let batch: DynamoDbEvent = parse(event)?;
            Ok(serde_json::to_value(dynamodb(invalidation, batch).await).unwrap_or_default())
        }
        Some(_) => s3(invalidation, parse(event)?).await,
        None if event.get("table").is_some() => change(invalidation, parse(event)?).await,
        None => direct(invalidation, parse(event)?).await,
    }
}

fn parse<T: serde::de::DeserializeOwned>(event: Value) -> Result<T, InvalidateError> {
    serde_json::from_value(event).map_err(|e| InvalidateError::Payload(format!("{e}; {ACCEPTED}")))
}

/// What to invalidate: a query or a tag.
enum Target<'a> {
    Query(&'a str),
    Tag(&'a str),
}

/// Invalidates `targets` in order; the report maps each scope to its new generation. On a
/// failure, the error lists the scopes already done.
async fn invalidate_all(
    invalidation: Invalidation<'_>,
    targets: &[Target<'_>],
) -> Result<Value, InvalidateError> {
    let mut generations = serde_json::Map::new();
    for target in targets {
        let (scope, bumped) = match target {
            Target::Query(name) => (query_scope(name), invalidation.query(name).await),
            Target::Tag(tag) => (
                tag_scope(tag),
                invalidation.tag(tag).await.map_err(UseCaseError::from),
            ),
        };
        match bumped {
            Ok(generation) => generations.insert(scope, generation.into()),
            Err(UseCaseError::UnknownQuery(name)) => return Err(InvalidateError::UnknownQuery(name)),
            Err(source) => {
                return Err(InvalidateError::Cache {
                    done: generations.keys().cloned().collect(),
                    source,
                })
            }
        };
    }
    tracing::info!(scopes = generations.len(), "invalidated");
    Ok(json!({ "invalidated": generations }))
}

async fn direct(invalidation: Invalidation<'_>, request: Invalidate) -> Result<Value, InvalidateError> {
    if request.queries.is_empty() && request.tags.is_empty() {
        return Err(InvalidateError::Payload(format!(
            "nothing to invalidate; {ACCEPTED}"
        )));
    }
    if let Some(unknown) = request.queries.iter().find(|q| !invalidation.knows_query(q)) {
        return Err(InvalidateError::UnknownQuery(unknown.clone()));
    }
    let targets: Vec<Target> = request
        .queries
        .iter()
        .map(|q| Target::Query(q))
        .chain(request.tags.iter().map(|t| Target::Tag(t)))
        .collect();
    invalidate_all(invalidation, &targets).await
}

/// A table's tag: catalog queries tag the tables they read.
async fn change(invalidation: Invalidation<'_>, change: DbChange) -> Result<Value, InvalidateError> {
    let valid_table = !change.table.is_empty()
        && change.table.len() <= 63
        && change
            .table
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_table {
        return Err(InvalidateError::Payload(format!(
            "table {:?} is not a lower-case table name",
            change.table
        )));
    }
    if !["INSERT", "UPDATE", "DELETE", "TRUNCATE"].contains(&change.operation.as_str()) {
        return Err(InvalidateError::Payload(format!(
            "operation {:?} is not INSERT, UPDATE, DELETE or TRUNCATE",
            change.operation
        )));
    }
    let dependents = invalidation.dependents(&change.table);
    if dependents.is_empty() {
        return Ok(
            json!({"invalidated": {}, "note": format!("no query depends on table {:?}", change.table)}),
        );
    }
    tracing::debug!(table = %change.table, operation = %change.operation, keys = %change.keys, "database change");
    let generation = invalidation
        .table_changed(&change.table)
        .await
        .map_err(|e| InvalidateError::Cache {
            done: Vec::new(),
            source: e.into(),
        })?;
    tracing::info!(table = %change.table, generation, "table invalidated, after its commit too");
    Ok(json!({
        "invalidated": { tag_scope(&change.table): generation },
        "queries": dependents,
    }))
}

/// Object keys in S3 notifications are URL-encoded with `+` for spaces.
fn decode_s3_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

async fn s3(invalidation: Invalidation<'_>, event: S3Event) -> Result<Value, InvalidateError> {
    let mut dropped = Vec::new();
    let mut ignored = Vec::new();
    for record in &event.records {
        let name = record.event_name.as_deref().unwrap_or("");
        let key = record
            .s3
            .object
            .url_decoded_key
            .clone()
            .or_else(|| record.s3.object.key.as_deref().map(decode_s3_key))
            .ok_or_else(|| InvalidateError::Payload("an S3 record has no object key".into()))?;
        if !(name.starts_with("ObjectCreated:") || name.starts_with("ObjectRemoved:")) {
            ignored.push(json!({"key": key, "event": name}));
            continue;
        }
        invalidation
            .object(&key)
            .await
            .map_err(|e| InvalidateError::Cache {
                done: dropped.clone(),
                source: e.into(),
            })?;
        dropped.push(key);
    }
    tracing::info!(dropped = dropped.len(), "S3 objects dropped from the cache");
    Ok(json!({"dropped": dropped, "ignored": ignored}))
}

/// Drops the summary of every restaurant the batch changed, once per restaurant (each record
/// arrives after its write committed, so one drop covers all the batch's writes to it). On a
/// failure the record is reported, and the stream resumes from it.
async fn dynamodb(invalidation: Invalidation<'_>, batch: DynamoDbEvent) -> DynamoDbEventResponse {
    let mut dropped: Vec<String> = Vec::new();
    let mut response = DynamoDbEventResponse::default();
    for record in &batch.records {
        let keys = serde_json::to_value(&record.change.keys).unwrap_or_default();
        let Some(name) = use_cases::restaurant_changed_by(&keys) else {
            continue;
        };
        if dropped.contains(&name) {
            continue;
        }
        if let Err(e) = invalidation.restaurant(&name).await {
            tracing::warn!(error = %e, restaurant = %name, "summary invalidation from the stream failed");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = record.change.sequence_number.clone();
            response.batch_item_failures.push(failure);
            break;
        }
        dropped.push(name);
    }
    tracing::info!(
        restaurants = dropped.len(),
        records = batch.records.len(),
        "restaurant summaries dropped"
    );
    response
}

/// Each message is handled on its own; failures are reported per message, so a bad one never
/// causes the good ones to be retried or lost.
async fn sqs(invalidation: Invalidation<'_>, batch: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in batch.records {
        let id = message.message_id.clone().unwrap_or_default();
        let outcome = match message.body.as_deref().map(serde_json::from_str::<Value>) {
            Some(Ok(body)) if records_source(&body) != Some("aws:sqs") => {
                Box::pin(handle(invalidation, body))
                    .await
                    .and_then(|reply| match failed_items(&reply) {
                        // A stream batch inside the message that did not fully apply: the
                        // whole message is retried (invalidations are idempotent).
                        0 => Ok(()),
                        n => Err(InvalidateError::Payload(format!(
                            "{n} record(s) of the batch in this message failed"
                        ))),
                    })
            }
            Some(Ok(_)) => Err(InvalidateError::Payload(
                "an SQS message may not hold another SQS batch".into(),
            )),
            Some(Err(e)) => Err(InvalidateError::Payload(format!("message body is not JSON: {e}"))),
            None => Err(InvalidateError::Payload("message has no body".into())),
        };
        if let Err(e) = outcome {
            tracing::warn!(message_id = %id, error = %e, "invalidation message failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// How many items a batch reply reports as failed (`batchItemFailures`).
fn failed_items(reply: &Value) -> usize {
    reply
        .get("batchItemFailures")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_keys_are_url_decoded() {
        assert_eq!(decode_s3_key("docs/a+b%2Bc.txt"), "docs/a b+c.txt");
        assert_eq!(decode_s3_key("filename1.txt"), "filename1.txt");
    }
}
