//! S3 objects: the origin behind `GET /objects/{key}` and the target of the ingester.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

/// An object's bytes and what S3 knows about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Content.
    pub bytes: Vec<u8>,
    /// `Content-Type`, `application/octet-stream` when S3 has none.
    pub content_type: String,
}

/// What a bounded read found at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The object.
    Object(StoredObject),
    /// No object at that key.
    Missing,
    /// An object larger than the limit; its body was not read.
    TooLarge {
        /// Its size in bytes.
        size: u64,
    },
}

/// Why an S3 call failed. Messages carry the operation and key, never credentials.
#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    /// S3 could not be reached or answered with an error.
    #[error("S3 {op} of {key:?} failed: {detail}")]
    S3 {
        /// The operation.
        op: &'static str,
        /// The key (or prefix).
        key: String,
        /// What the SDK reported.
        detail: String,
    },
}

/// One bucket.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    client: Client,
    bucket: String,
}

fn describe<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl ObjectStore {
    /// A store for `bucket`. Path-style addressing when an endpoint override (an emulator) is
    /// configured: virtual-host names like `bucket.127.0.0.1` do not resolve.
    pub fn new(sdk: &SdkConfig, bucket: &str) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self {
            client: Client::from_conf(config),
            bucket: bucket.to_owned(),
        }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object at `key` if it has at most `max_bytes`. A larger one is reported by its size
    /// without reading its body (checked against `Content-Length` first, and again while
    /// reading), so no object can make the function buffer more than the limit.
    pub async fn get(&self, key: &str, max_bytes: u64) -> Result<Fetched, ObjectStoreError> {
        let fail = |detail: String| ObjectStoreError::S3 {
            op: "GetObject",
            key: key.to_owned(),
            detail,
        };
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    return Ok(Fetched::Missing);
                }
                return Err(fail(describe(&e)));
            }
        };
        if let Some(size) = output.content_length().and_then(|n| u64::try_from(n).ok()) {
            if size > max_bytes {
                return Ok(Fetched::TooLarge { size });
            }
        }
        let content_type = output
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_owned();
        let mut body = output.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| fail(describe(&e)))? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max_bytes {
                return Ok(Fetched::TooLarge {
                    size: bytes.len() as u64,
                });
            }
        }
        Ok(Fetched::Object(StoredObject { bytes, content_type }))
    }

    /// Writes `bytes` at `key`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), ObjectStoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| ObjectStoreError::S3 {
                op: "PutObject",
                key: key.to_owned(),
                detail: describe(&e),
            })?;
        Ok(())
    }

    /// ETags (quotes stripped) of every object under `prefix`, paging through the listing.
    pub async fn etags(&self, prefix: &str) -> Result<HashMap<String, String>, ObjectStoreError> {
        let mut etags = HashMap::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ObjectStoreError::S3 {
                op: "ListObjectsV2",
                key: prefix.to_owned(),
                detail: describe(&e),
            })?;
            for object in page.contents() {
                if let (Some(key), Some(etag)) = (object.key(), object.e_tag()) {
                    etags.insert(key.to_owned(), etag.trim_matches('"').to_owned());
                }
            }
        }
        Ok(etags)
    }

    /// Creates the bucket if it does not exist (local runs; in AWS the stack creates it).
    pub async fn ensure_bucket(&self) -> Result<(), ObjectStoreError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| ObjectStoreError::S3 {
                op: "CreateBucket",
                key: self.bucket.clone(),
                detail: describe(&e),
            })?;
        Ok(())
    }
}
