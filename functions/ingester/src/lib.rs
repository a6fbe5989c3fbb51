//! Ingester: seeds S3 and Redis with objects, loads demo datasets into the databases, and
//! pre-fills query caches (write-ahead caching). Invoked directly or on a schedule with one of:
//!
//! ```json
//! {"objects": {"count": 200, "min_bytes": 200, "max_bytes": 400, "prefix": "filename"}}
//! {"dataset": "articles", "rows": 20000, "databases": ["main", "articles"]}
//! {"dataset": "demo"}
//! {"dataset": "restaurants"}
//! {"warm": ["query-name", ...]}
//! {"roles": true}
//! ```
//!
//! With the roles' secrets configured (`DB_QUERY_ROLE_SECRET_ID`, `DB_WRITE_ROLE_SECRET_ID`),
//! `{"roles": true}` and every dataset load create the least-privilege reading and writing
//! roles the other functions log in as.

mod datasets;
mod objects;
mod restaurants;
mod warm;

use serde::Deserialize;
use serde_json::Value;
use service_config::InvalidationSource;
use use_cases::Clients;

pub use datasets::{article, Article, Dataset, DatasetJob};
pub use objects::{object_content, ObjectsJob};
pub use restaurants::{sample_restaurants, sample_reviews, RESTAURANTS_DATASET};

/// What the function accepts, quoted in every refusal.
pub const ACCEPTED: &str = r#"accepted payloads: {"objects": {"count": N, "min_bytes": N, "max_bytes": N, "prefix": "name"}}, {"dataset": "articles", "rows": N, "databases": ["main", ...]}, {"dataset": "demo", "databases": ["main"]}, {"dataset": "restaurants"} (the DynamoDB table), {"warm": ["query-name", ...]}, {"roles": true}"#;

/// Why a payload was not carried out (entirely or in part).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The payload is not one the function understands.
    #[error("unrecognised payload: {0}")]
    Payload(String),
    /// Part of the work failed; the message names what, and what succeeded.
    #[error("{0}")]
    Partial(String),
    /// A required client is not configured.
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    objects: Option<ObjectsJob>,
    dataset: Option<String>,
    rows: Option<u32>,
    databases: Option<Vec<String>>,
    warm: Option<Vec<String>>,
    #[serde(default)]
    roles: bool,
}

impl Ingester {
    /// Creates the least-privilege database roles (see `use_cases::Clients::ensure_database_roles`).
    async fn roles(&self) -> Result<Value, IngestError> {
        self.clients.ensure_database_roles().await.map_err(|e| match e {
            use_cases::UseCaseError::RolesNotConfigured => IngestError::NotConfigured(
                "database roles (DB_QUERY_ROLE_SECRET_ID, DB_WRITE_ROLE_SECRET_ID)",
            ),
            other => IngestError::Partial(format!("creating the database roles failed: {other}")),
        })
    }
}

/// The clients of one instance.
#[derive(Debug)]
pub struct Ingester {
    clients: Clients,
    invalidator_arn: Option<String>,
    change_source: InvalidationSource,
}

impl Ingester {
    /// Wraps already built clients.
    pub fn new(clients: Clients) -> Self {
        Self {
            clients,
            invalidator_arn: None,
            change_source: InvalidationSource::default(),
        }
    }

    /// Where the demo dataset's change triggers send events (the invalidator's ARN); without
    /// it they fall back to `pg_notify`.
    pub fn with_invalidator_arn(mut self, arn: Option<String>) -> Self {
        self.invalidator_arn = arn.filter(|a| !a.is_empty());
        self
    }

    /// How the invalidator learns of changes (`INVALIDATION_SOURCE`): with `logical`, the demo
    /// dataset attaches no change trigger (and removes those trigger mode attached).
    pub fn with_change_source(mut self, source: InvalidationSource) -> Self {
        self.change_source = source;
        self
    }

    /// Carries out one payload.
    pub async fn handle(&self, event: Value) -> Result<Value, IngestError> {
        let payload: Payload =
            serde_json::from_value(event).map_err(|e| IngestError::Payload(format!("{e}; {ACCEPTED}")))?;
        let dataset_options = payload.rows.is_some() || payload.databases.is_some();
        if payload.roles {
            if payload.objects.is_some()
                || payload.dataset.is_some()
                || payload.warm.is_some()
                || dataset_options
            {
                return Err(IngestError::Payload(format!("roles goes alone; {ACCEPTED}")));
            }
            return self.roles().await;
        }
        match payload {
            Payload {
                objects: Some(job),
                dataset: None,
                warm: None,
                ..
            } if !dataset_options => objects::run(&self.clients, &job).await,
            Payload {
                objects: None,
                dataset: Some(name),
                warm: None,
                ..
            } if name == RESTAURANTS_DATASET && !dataset_options => restaurants::run(&self.clients).await,
            Payload {
                objects: None,
                dataset: Some(name),
                warm: None,
                rows,
                databases,
                ..
            } => {
                let job = DatasetJob::new(&name, rows, databases)?;
                let mut report = datasets::run(
                    &self.clients,
                    &job,
                    self.invalidator_arn.as_deref(),
                    self.change_source,
                )
                .await?;
                // The tables exist now: the roles can be granted on them.
                if self.clients.creates_database_roles() {
                    report["roles"] = self.roles().await?["roles"].take();
                }
                Ok(report)
            }
            Payload {
                objects: None,
                dataset: None,
                warm: Some(names),
                ..
            } if !dataset_options => warm::run(&self.clients, &names).await,
            Payload {
                objects: None,
                dataset: None,
                warm: None,
                ..
            } if !dataset_options => Err(IngestError::Payload(format!("nothing to do; {ACCEPTED}"))),
            _ => Err(IngestError::Payload(format!(
                "give exactly one of objects, dataset (with rows/databases), warm; {ACCEPTED}"
            ))),
        }
    }
}
