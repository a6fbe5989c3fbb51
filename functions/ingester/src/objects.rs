//! `{"objects": ...}`: generated objects written to S3 and, byte for byte, to the object cache.

use std::time::Instant;

use futures::stream::{self, StreamExt};
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::{json, Value};
use use_cases::{CachedObject, Clients};

use crate::IngestError;

/// Content type of generated objects.
const CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// S3 puts in flight at once.
const PUT_CONCURRENCY: usize = 16;
/// Objects per Redis pipeline.
const REDIS_BATCH: usize = 200;
/// Failed keys listed by name in an error (the count is always given).
const LISTED_FAILURES: usize = 20;

/// Generated objects to write: `<prefix><i>.txt` for `i` in `0..count`, each of
/// `min_bytes..=max_bytes` random letters and digits, the same on every run (idempotent).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectsJob {
    /// How many objects (1..=100000).
    pub count: usize,
    /// Smallest object (bytes).
    #[serde(default = "default_min")]
    pub min_bytes: usize,
    /// Largest object (bytes, at most 1 MiB).
    #[serde(default = "default_max")]
    pub max_bytes: usize,
    /// Key prefix.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_min() -> usize {
    200
}
fn default_max() -> usize {
    400
}
fn default_prefix() -> String {
    "filename".into()
}

impl ObjectsJob {
    fn validate(&self) -> Result<(), IngestError> {
        let bad = |m: String| Err(IngestError::Payload(m));
        if !(1..=100_000).contains(&self.count) {
            return bad(format!("objects.count must be 1..=100000, got {}", self.count));
        }
        if self.min_bytes == 0 || self.min_bytes > self.max_bytes || self.max_bytes > 1024 * 1024 {
            return bad(format!(
                "objects.min_bytes/max_bytes must satisfy 1 <= min <= max <= 1048576, got {}..{}",
                self.min_bytes, self.max_bytes
            ));
        }
        let prefix_ok = !self.prefix.is_empty()
            && self.prefix.len() <= 200
            && self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            && !self.prefix.starts_with('/')
            && !self.prefix.split('/').any(|s| s == "." || s == "..");
        if !prefix_ok {
            return bad(format!(
                "objects.prefix {:?} must be 1-200 of A-Z a-z 0-9 - _ . / (not leading /)",
                self.prefix
            ));
        }
        Ok(())
    }

    /// The key of object `i`.
    pub fn key(&self, i: usize) -> String {
        format!("{}{i}.txt", self.prefix)
    }
}

/// The content of object `key`: deterministic, so re-runs converge instead of rewriting.
pub fn object_content(key: &str, min_bytes: usize, max_bytes: usize) -> Vec<u8> {
    // FNV-1a of the key seeds the generator.
    let seed = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = fastrand::Rng::with_seed(seed);
    let len = rng.usize(min_bytes..=max_bytes);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| ALPHABET[rng.usize(..ALPHABET.len())]).collect()
}

fn describe_failures(failed: &[(String, String)]) -> String {
    let listed: Vec<String> = failed
        .iter()
        .take(LISTED_FAILURES)
        .map(|(k, e)| format!("{k} ({e})"))
        .collect();
    let more = failed.len().saturating_sub(LISTED_FAILURES);
    format!(
        "{}{}",
        listed.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    )
}

pub(crate) async fn run(clients: &Clients, job: &ObjectsJob) -> Result<Value, IngestError> {
    job.validate()?;
    let store = clients
        .object_store()
        .map_err(|_| IngestError::NotConfigured("OBJECTS_BUCKET"))?;
    let started = Instant::now();
    store
        .ensure_bucket()
        .await
        .map_err(|e| IngestError::Partial(e.to_string()))?;
    let existing = store
        .etags(&job.prefix)
        .await
        .map_err(|e| IngestError::Partial(e.to_string()))?;

    let objects: Vec<(String, Vec<u8>)> = (0..job.count)
        .map(|i| {
            let key = job.key(i);
            let bytes = object_content(&key, job.min_bytes, job.max_bytes);
            (key, bytes)
        })
        .collect();
    let total_bytes: usize = objects.iter().map(|(_, b)| b.len()).sum();

    // The objects' fences before S3 changes, per Redis batch (empty when Redis cannot say: the
    // writes are then fenced against "no drop yet", and refused if one happened).
    let mut fences: Vec<Vec<String>> = Vec::new();
    for batch in objects.chunks(REDIS_BATCH) {
        let keys: Vec<&str> = batch.iter().map(|(key, _)| key.as_str()).collect();
        fences.push(clients.object_fences(&keys).await);
    }

    // S3: only what is missing or different, PUT_CONCURRENCY at a time (the SDK retries each).
    let to_put: Vec<&(String, Vec<u8>)> = objects
        .iter()
        .filter(|(key, bytes)| existing.get(key) != Some(&hex::encode(Md5::digest(bytes))))
        .collect();
    let unchanged = objects.len() - to_put.len();
    tracing::info!(
        total = objects.len(),
        to_put = to_put.len(),
        unchanged,
        "writing objects to S3"
    );
    let mut failed: Vec<(String, String)> = stream::iter(to_put.iter().map(|(key, bytes)| async move {
        store
            .put(key, bytes.clone(), CONTENT_TYPE)
            .await
            .err()
            .map(|e| (key.clone(), format!("S3: {e}")))
    }))
    .buffer_unordered(PUT_CONCURRENCY)
    .filter_map(|r| async move { r })
    .collect()
    .await;
    let s3_failed = failed.len();

    // Redis: every object that is in S3, pipelined in batches, so both hold identical bytes;
    // each only if no drop moved its fence since before the S3 write (a newer change won).
    let mut cached = 0;
    let mut fenced_out = 0;
    for (batch, fences) in objects.chunks(REDIS_BATCH).zip(&fences) {
        let batch: Vec<(String, CachedObject, String)> = batch
            .iter()
            .zip(fences)
            .filter(|((key, _), _)| !failed.iter().any(|(k, _)| k == key))
            .map(|((key, bytes), fence)| {
                let object = CachedObject {
                    bytes: bytes.clone(),
                    content_type: CONTENT_TYPE.into(),
                };
                (key.clone(), object, fence.clone())
            })
            .collect();
        match clients.cache_objects(&batch).await {
            Ok(written) => {
                cached += written;
                fenced_out += batch.len() - written;
            }
            Err(e) => failed.extend(batch.into_iter().map(|(k, _, _)| (k, format!("Redis: {e}")))),
        }
        if cached % 2000 < REDIS_BATCH {
            tracing::info!(cached, of = objects.len(), "objects cached in Redis");
        }
    }
    let report = json!({
        "objects": {
            "count": objects.len(),
            "bytes": total_bytes,
            "s3_written": to_put.len() - s3_failed,
            "s3_unchanged": unchanged,
            "redis_written": cached,
            "redis_fenced_out": fenced_out,
            "failed": failed.len(),
            "elapsed_ms": started.elapsed().as_millis() as u64,
        }
    });
    if failed.is_empty() {
        Ok(report)
    } else {
        Err(IngestError::Partial(format!(
            "{} of {} objects failed (re-run to retry; writes are idempotent): {}; report: {report}",
            failed.len(),
            objects.len(),
            describe_failures(&failed)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_deterministic_and_within_bounds() {
        let a = object_content("filename7.txt", 200, 400);
        assert_eq!(a, object_content("filename7.txt", 200, 400));
        assert_ne!(a, object_content("filename8.txt", 200, 400));
        assert!((200..=400).contains(&a.len()));
        assert!(a.iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn validates_the_job() {
        let job = |v: Value| serde_json::from_value::<ObjectsJob>(v).unwrap().validate();
        assert!(job(json!({"count": 200})).is_ok());
        assert!(job(json!({"count": 0})).is_err());
        assert!(job(json!({"count": 5, "min_bytes": 500, "max_bytes": 400})).is_err());
        assert!(job(json!({"count": 5, "prefix": "../x"})).is_err());
        assert!(serde_json::from_value::<ObjectsJob>(json!({"count": 5, "colour": 1})).is_err());
    }
}
