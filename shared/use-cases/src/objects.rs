//! Objects (S3) through the cache: the exact bytes and content type from Redis, else from S3
//! (then cached, including "no such object").

use aws_clients::{Fetched, ObjectStoreError};
use cache_aside::{CachedObject, ObjectLookup, ObjectState, Read};

use crate::{Clients, UseCaseError};

impl Clients {
    /// Object `key` through the cache (`mode` as for queries). Objects over the serving limit
    /// are answered by their size, and that answer is cached too.
    pub async fn get_object(&self, key: &str, read: Read) -> Result<ObjectLookup, UseCaseError> {
        let store = self.objects.as_ref().ok_or(UseCaseError::ObjectsNotConfigured)?;
        Ok(self
            .cache
            .get_or_load_object(key, self.object_policy, read.mode, || {
                let fetch = async {
                    Ok(match store.get(key, self.max_object_bytes).await? {
                        Fetched::Object(o) => ObjectState::Found(CachedObject {
                            bytes: o.bytes,
                            content_type: o.content_type,
                        }),
                        Fetched::Missing => ObjectState::Missing,
                        Fetched::TooLarge { size } => ObjectState::TooLarge { size },
                    })
                };
                let over = |over| ObjectStoreError::S3 {
                    op: "GetObject",
                    key: key.to_owned(),
                    detail: format!("not answered within the request's budget ({over:?})"),
                };
                self.within_budget(self.due(read.deadline), over, fetch)
            })
            .await?)
    }
}
