//! Objects (S3) through the cache: the exact bytes and content type from Redis, else from S3
//! (then cached, including "no such object").

use cache_aside::{CachedObject, ObjectLookup, ReadMode};

use crate::{Clients, UseCaseError};

impl Clients {
    /// Object `key` through the cache (`mode` as for queries).
    pub async fn get_object(&self, key: &str, mode: ReadMode) -> Result<ObjectLookup, UseCaseError> {
        let store = self.objects.as_ref().ok_or(UseCaseError::ObjectsNotConfigured)?;
        Ok(self
            .cache
            .get_or_load_object(key, self.object_policy, mode, || async {
                let stored = store.get(key).await?;
                Ok::<_, aws_clients::ObjectStoreError>(stored.map(|o| CachedObject {
                    bytes: o.bytes,
                    content_type: o.content_type,
                }))
            })
            .await?)
    }
}
