//! Objects (S3) through the cache: the exact bytes and content type from Redis, else from S3
//! (then cached, including "no such object").

use aws_clients::Fetched;
use cache_aside::{CachedObject, ObjectLookup, ObjectState, ReadMode};

use crate::{Clients, UseCaseError};

impl Clients {
    /// Object `key` through the cache (`mode` as for queries). Objects over the serving limit
    /// are answered by their size, and that answer is cached too.
    pub async fn get_object(&self, key: &str, mode: ReadMode) -> Result<ObjectLookup, UseCaseError> {
        let store = self.objects.as_ref().ok_or(UseCaseError::ObjectsNotConfigured)?;
        Ok(self
            .cache
            .get_or_load_object(key, self.object_policy, mode, || async {
                Ok::<_, aws_clients::ObjectStoreError>(match store.get(key, self.max_object_bytes).await? {
                    Fetched::Object(o) => ObjectState::Found(CachedObject {
                        bytes: o.bytes,
                        content_type: o.content_type,
                    }),
                    Fetched::Missing => ObjectState::Missing,
                    Fetched::TooLarge { size } => ObjectState::TooLarge { size },
                })
            })
            .await?)
    }
}
