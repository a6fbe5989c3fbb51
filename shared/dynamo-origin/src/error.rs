//! Why a table operation failed, in terms a caller maps onto its protocol.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// A failed DynamoDB operation. Messages name the operation and the service's error code,
/// never item contents.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The call ran past its time budget (the SDK's timeouts or the caller's deadline).
    #[error("DynamoDB {operation} timed out")]
    Timeout {
        /// The operation.
        operation: &'static str,
    },
    /// DynamoDB throttled the request after the SDK's retries.
    #[error("DynamoDB {operation} was throttled ({code})")]
    Throttled {
        /// The operation.
        operation: &'static str,
        /// The service's error code.
        code: String,
    },
    /// DynamoDB could not be reached or refused the call (missing table, permissions, ...).
    #[error("DynamoDB {operation} failed: {detail}")]
    Unavailable {
        /// The operation.
        operation: &'static str,
        /// The error code or transport problem.
        detail: String,
    },
    /// The request's idempotency key was used before for another restaurant or review.
    #[error("the idempotency key was used for another request")]
    IdempotencyKeyReused,
    /// An item in the table is not in the shape this crate writes.
    #[error("item {key:?} is malformed: {problem}")]
    Malformed {
        /// The item's sort key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// Seeding left items unwritten after every retry.
    #[error("{left} items stayed unprocessed after {attempts} BatchWriteItem attempts")]
    Unprocessed {
        /// How many.
        left: usize,
        /// Attempts made.
        attempts: u32,
    },
}

/// Error codes that mean "slow down", not "broken".
const THROTTLING: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

impl TableError {
    /// Classifies an SDK failure of `operation`.
    pub(crate) fn from_sdk<E, R>(operation: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match &error {
            SdkError::TimeoutError(_) => Self::Timeout { operation },
            SdkError::DispatchFailure(failure) if failure.is_timeout() => Self::Timeout { operation },
            SdkError::DispatchFailure(_) => Self::Unavailable {
                operation,
                detail: "DynamoDB could not be reached".into(),
            },
            _ => {
                let code = error.code().unwrap_or("unknown").to_owned();
                if THROTTLING.contains(&code.as_str()) {
                    Self::Throttled { operation, code }
                } else {
                    Self::Unavailable {
                        operation,
                        detail: code,
                    }
                }
            }
        }
    }

    /// True when the request timed out (a gateway timeout, not an outage).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}
