//! Restaurants kept in memory: the store the use cases' unit tests run on (no database, no
//! cache). It keeps request keys as the SQL database does: a key names the first review stored
//! under it and that request's digest, and only a restaurant that exists is written to.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cache_aside::{BypassReason, CacheState, Lookup};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::store::{RestaurantStore, ReviewRequest, StoredReview, SummaryRead};
use crate::UseCaseError;

/// Reviews in a summary, newest first (as both origins show).
const LATEST_REVIEWS: usize = 5;

/// Restaurants and their reviews in memory.
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Each restaurant's reviews, oldest first.
    reviews: BTreeMap<String, Vec<Value>>,
    /// Each idempotency key's request digest and the review first stored under it.
    requests: BTreeMap<String, (String, Value)>,
    /// Reviews stored so far (numbers them).
    stored: u64,
}

impl MemoryStore {
    /// The restaurants `names`, without reviews.
    pub(crate) fn with_restaurants(names: &[&str]) -> Self {
        let store = Self::default();
        store.state.lock().unwrap().reviews = names.iter().map(|n| ((*n).to_owned(), Vec::new())).collect();
        store
    }

    /// How many reviews restaurant `name` has; `None` when there is no such restaurant.
    pub(crate) fn review_count(&self, name: &str) -> Option<usize> {
        self.state.lock().unwrap().reviews.get(name).map(Vec::len)
    }
}

impl RestaurantStore for MemoryStore {
    /// The summary as loaded from an origin without a cache (a bypass).
    async fn summary(&self, at: SummaryRead<'_>) -> Result<Lookup<Value>, UseCaseError> {
        let value = match self.state.lock().unwrap().reviews.get(at.name) {
            Some(reviews) => json!({
                "name": at.name,
                "review_count": reviews.len(),
                "latest_reviews": reviews.iter().rev().take(LATEST_REVIEWS).collect::<Vec<_>>(),
            }),
            None => Value::Null,
        };
        Ok(Lookup {
            value,
            state: CacheState::Bypass,
            bypass_reason: Some(BypassReason::Requested),
            ttl_remaining: None,
            loaded_at_ms: cache_aside::unix_now_ms(),
            load_duration: Duration::ZERO,
            too_large_to_store: false,
            from_memory: false,
        })
    }

    async fn add_review(
        &self,
        write: &ReviewRequest<'_>,
        _due: Option<Instant>,
    ) -> Result<Option<StoredReview>, UseCaseError> {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let Some(reviews) = state.reviews.get_mut(write.restaurant) else {
            return Ok(None);
        };
        if let Some(idempotency) = &write.idempotency {
            if let Some((digest, review)) = state.requests.get(idempotency.key) {
                return Ok(Some(StoredReview {
                    review: review.clone(),
                    digest: Some(digest.clone()),
                }));
            }
        }
        state.stored += 1;
        let review = json!({
            "id": state.stored,
            "author": write.review.author(),
            "rating": write.review.rating(),
            "body": write.review.body(),
        });
        reviews.push(review.clone());
        if let Some(idempotency) = &write.idempotency {
            let first = (idempotency.digest.clone(), review.clone());
            state.requests.insert(idempotency.key.to_owned(), first);
        }
        Ok(Some(StoredReview {
            review,
            digest: write.idempotency.as_ref().map(|i| i.digest.clone()),
        }))
    }
}
