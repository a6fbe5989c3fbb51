//! AWS clients, built once per Lambda instance and reused: S3 for objects, Secrets Manager for
//! credentials, SigV4-signed ElastiCache IAM tokens. They honour the SDK's own environment (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! credentials), so tests point them at a local emulator.

mod elasticache;
mod objects;
mod sdk;
mod secrets;

pub use aws_config::SdkConfig;
pub use elasticache::{connect_token, presign, ConnectRequest, ElastiCacheIam, TokenError, TOKEN_LIFETIME};
pub use objects::{Fetched, ObjectStore, ObjectStoreError, StoredObject};
pub use sdk::{load_sdk_config, AwsSettings};
pub use secrets::{DbSecret, SecretError, Secrets};
