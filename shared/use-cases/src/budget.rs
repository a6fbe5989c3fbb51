//! Every origin load runs inside its caller's budget: it ends before the invocation's deadline
//! (less the time kept to answer), it draws a token from its origin's fleet-wide budget (one
//! bucket in Redis shared by every instance), and no more than a configured number run at once
//! in one instance, whether Redis is up or down.

use std::future::Future;
use std::time::Duration;

use cache_aside::{Admission, RateLimit};
use tokio::time::Instant;

use crate::{Clients, UseCaseError};

/// Less than this left: do not start a load at all.
const MIN_LOAD_TIME: Duration = Duration::from_millis(50);

/// A load that failed, or never ran to its end.
#[derive(Debug)]
pub(crate) enum LoadError<E> {
    /// The origin's own error.
    Origin(E),
    /// The deadline came first.
    Timeout,
    /// Every load slot of this instance stayed taken until the deadline.
    Busy,
    /// The origin's fleet-wide budget is spent: not even tried.
    Shed {
        /// When the budget has a token again.
        retry_after: Duration,
    },
}

impl<E: Into<UseCaseError>> From<LoadError<E>> for UseCaseError {
    fn from(e: LoadError<E>) -> Self {
        match e {
            LoadError::Origin(e) => e.into(),
            LoadError::Timeout => UseCaseError::OriginTimeout,
            LoadError::Busy => UseCaseError::OriginBusy {
                retry_after: Duration::from_secs(1),
            },
            LoadError::Shed { retry_after } => UseCaseError::OriginBusy { retry_after },
        }
    }
}

/// The fleet-wide budget one origin load draws from: the bucket's name and its limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FleetBudget<'a> {
    /// Names the bucket: a query, `objects`, a restaurant origin.
    pub(crate) name: &'a str,
    /// Loads per second and burst.
    pub(crate) limit: RateLimit,
}

impl Clients {
    /// When work for a request answering at `deadline` must be done: the deadline less the time
    /// kept to answer.
    pub(crate) fn due(&self, deadline: Option<Instant>) -> Option<Instant> {
        deadline.map(|d| d.checked_sub(self.answer_reserve).unwrap_or(d))
    }

    /// Runs `load` by `due` (see [`Self::due`]), after taking a token from `fleet` (when
    /// given; a spent budget answers [`LoadError::Shed`] at once, without touching the origin)
    /// and within the instance's cap on concurrent loads.
    pub(crate) async fn within_budget<T, E, Fut>(
        &self,
        due: Option<Instant>,
        fleet: Option<FleetBudget<'_>>,
        load: Fut,
    ) -> Result<T, LoadError<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if due.is_some_and(|due| due.saturating_duration_since(Instant::now()) < MIN_LOAD_TIME) {
            return Err(LoadError::Timeout);
        }
        if let Some(fleet) = fleet {
            if let Admission::Refused { retry_after } =
                self.cache.take_token(&fleet.name_key(), fleet.limit).await
            {
                tracing::info!(
                    budget = fleet.name,
                    ?retry_after,
                    "origin budget spent; load shed"
                );
                return Err(LoadError::Shed { retry_after });
            }
        }
        let permit = match due {
            Some(due) => tokio::time::timeout_at(due, self.origin_permits.acquire()).await,
            None => Ok(self.origin_permits.acquire().await),
        };
        let _permit = match permit {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => return Err(LoadError::Busy),
        };
        let loaded = match due {
            Some(due) => match tokio::time::timeout_at(due, load).await {
                Ok(loaded) => loaded,
                Err(_) => return Err(LoadError::Timeout),
            },
            None => load.await,
        };
        loaded.map_err(LoadError::Origin)
    }
}

impl FleetBudget<'_> {
    /// The bucket's name in Redis.
    fn name_key(&self) -> String {
        format!("origin:{}", self.name)
    }
}
