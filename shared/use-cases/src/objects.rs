//! Objects (S3) through the cache: the exact bytes and content type from Redis, else from S3
//! (then cached, including "no such object").

use aws_clients::{Fetched, ObjectStoreError};
use cache_aside::{CachedObject, ObjectLookup, ObjectState, Read};

use crate::budget::FleetBudget;
use crate::{Clients, UseCaseError};

/// The fleet-wide budget every object load draws from (`CACHE_ORIGIN_LOADS_PER_SECOND`).
const OBJECTS_BUDGET: &str = "s3:objects";

impl Clients {
    /// Object `key` through the cache (`mode` as for queries). Objects over the serving limit
    /// are answered by their size, and that answer is cached too.
    pub async fn get_object(&self, key: &str, read: Read) -> Result<ObjectLookup, UseCaseError> {
        let store = self.objects.as_ref().ok_or(UseCaseError::ObjectsNotConfigured)?;
        Ok(self
            .cache
            .get_or_load_object(key, self.object_policy, read.mode, || {
                let fetch = async {
                    Ok::<_, ObjectStoreError>(match store.get(key, self.max_object_bytes()).await? {
                        Fetched::Object(o) => ObjectState::Found(CachedObject {
                            bytes: o.bytes,
                            content_type: o.content_type,
                        }),
                        Fetched::Missing => ObjectState::Missing,
                        Fetched::TooLarge { size } => ObjectState::TooLarge { size },
                    })
                };
                let fleet = FleetBudget {
                    name: OBJECTS_BUDGET,
                    limit: self.origin_limit,
                };
                self.within_budget(self.due(read.deadline), Some(fleet), fetch)
            })
            .await?)
    }
}

/// Budget of one Redis batch of object seeding.
const SEED_BATCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

impl Clients {
    /// The bucket, or why there is none.
    pub fn object_store(&self) -> Result<&aws_clients::ObjectStore, UseCaseError> {
        self.objects.as_ref().ok_or(UseCaseError::ObjectsNotConfigured)
    }

    /// The objects' drop fences before their S3 writes (see [`Self::cache_objects`]); empty
    /// strings when Redis cannot say, so that the writes are refused if a drop happened.
    pub async fn object_fences(&self, keys: &[&str]) -> Vec<String> {
        self.cache
            .object_fences(keys, SEED_BATCH_BUDGET)
            .await
            .unwrap_or_else(|_| vec![String::new(); keys.len()])
    }

    /// Seeds the object cache with `(key, object, fence)` just written to S3, each written only
    /// if its fence has not moved (no invalidation of it since); returns how many were written.
    pub async fn cache_objects(
        &self,
        batch: &[(String, CachedObject, String)],
    ) -> Result<usize, UseCaseError> {
        Ok(self
            .cache
            .put_objects(batch, self.object_policy.ttl, SEED_BATCH_BUDGET)
            .await
            .map_err(cache_aside::CacheError::from)?)
    }
}
