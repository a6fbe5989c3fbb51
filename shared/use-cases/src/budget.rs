//! Every origin load runs inside its caller's budget: it ends before the invocation's deadline
//! (less the time kept to answer), and no more than a configured number run at once in one
//! instance, whether Redis is up or down.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::Clients;

/// Less than this left: do not start a load at all.
const MIN_LOAD_TIME: Duration = Duration::from_millis(50);

/// Why a load was not run to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverBudget {
    /// The deadline came first.
    Deadline,
    /// Every load slot stayed taken until the deadline.
    Busy,
}

impl Clients {
    /// When work for a request answering at `deadline` must be done: the deadline less the time
    /// kept to answer.
    pub(crate) fn due(&self, deadline: Option<Instant>) -> Option<Instant> {
        deadline.map(|d| d.checked_sub(self.answer_reserve).unwrap_or(d))
    }

    /// Runs `load` by `due` (see [`Self::due`]) and within the instance's cap on concurrent
    /// loads; `over` turns a missed budget into the origin's own error.
    pub(crate) async fn within_budget<T, E, Fut>(
        &self,
        due: Option<Instant>,
        over: impl Fn(OverBudget) -> E,
        load: Fut,
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if due.is_some_and(|due| due.saturating_duration_since(Instant::now()) < MIN_LOAD_TIME) {
            return Err(over(OverBudget::Deadline));
        }
        let permit = match due {
            Some(due) => tokio::time::timeout_at(due, self.origin_permits.acquire()).await,
            None => Ok(self.origin_permits.acquire().await),
        };
        let _permit = match permit {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => return Err(over(OverBudget::Busy)),
        };
        match due {
            Some(due) => tokio::time::timeout_at(due, load)
                .await
                .unwrap_or_else(|_| Err(over(OverBudget::Deadline))),
            None => load.await,
        }
    }
}
