//! The fill lock: across every process, one loader per entry at a time. A holder is a value of
//! its own, and only that value can let the lock go (compare-and-delete on a random token), so
//! a holder whose lock expired never deletes the lock a newer holder took.

use std::time::Duration;

use crate::error::StoreError;
use crate::store::RedisStore;

/// A fill lock held by this request until [`FillLock::release`]. Dropped without a release (the
/// request was cancelled mid-load), it is released in the background when a runtime is there to
/// do it, and otherwise expires by its TTL.
pub(crate) struct FillLock {
    store: RedisStore,
    key: String,
    token: String,
    released: bool,
}

impl FillLock {
    /// One attempt at lock `key` for `ttl`: `None` while another request holds it.
    pub(crate) async fn try_take(
        store: &RedisStore,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<Self>, StoreError> {
        let token = token();
        if !store.try_lock(key, &token, ttl).await? {
            return Ok(None);
        }
        Ok(Some(Self {
            store: store.clone(),
            key: key.to_owned(),
            token,
            released: false,
        }))
    }

    /// Lets the lock go, if it is still this holder's. A failure is logged: the lock then
    /// expires by itself.
    pub(crate) async fn release(mut self) {
        self.released = true;
        if let Err(e) = self.store.unlock(&self.key, &self.token).await {
            e.log("fill lock release failed; it expires by itself");
        }
    }
}

impl Drop for FillLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, key, token) = (
                self.store.clone(),
                std::mem::take(&mut self.key),
                std::mem::take(&mut self.token),
            );
            runtime.spawn(async move {
                let _ = store.unlock(&key, &token).await;
            });
        }
    }
}

/// A random token identifying one lock holder.
fn token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_fixed_width() {
        let (a, b) = (token(), token());
        assert_ne!(a, b);
        assert!(a.len() == 32 && a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    }
}
