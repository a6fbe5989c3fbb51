//! Why changes could not be read.

/// Why a change feed could not be read or moved on.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The slot does not exist (never created, dropped, or not copied by a failover): changes
    /// since it went missing are lost, so whatever they touched must be dropped wholesale.
    #[error("replication slot {0:?} does not exist")]
    SlotMissing(String),
    /// The server invalidated the slot (it held more WAL than `max_slot_wal_keep_size`): the
    /// same loss as a missing slot.
    #[error("replication slot {0:?} was invalidated by the server (it fell too far behind)")]
    SlotLost(String),
    /// Another session is reading the slot right now.
    #[error("replication slot {0:?} is in use by another session")]
    SlotBusy(String),
    /// The server cannot decode logically (`wal_level` is not `logical`, or the role lacks
    /// `REPLICATION` / `rds_replication`).
    #[error("logical decoding is unavailable: {0}")]
    Unsupported(String),
    /// A position the server reported could not be understood.
    #[error("cannot decode the change feed: {0}")]
    Decode(String),
    /// The statement ran past its timeout (a lock held for long, say).
    #[error("the change feed's statement timed out")]
    Timeout,
    /// Any other database failure.
    #[error("change feed database error: {0}")]
    Database(String),
    /// A name that is not a plain identifier.
    #[error("{0:?} is not a valid name (1-63 lower-case letters, digits or _)")]
    InvalidName(String),
}

impl FeedError {
    /// Maps a driver error for slot `slot`.
    pub(crate) fn from_sqlx(e: sqlx::Error, slot: &str) -> Self {
        let sqlx::Error::Database(db) = &e else {
            return match e {
                sqlx::Error::PoolTimedOut => Self::Timeout,
                other => Self::Database(other.to_string()),
            };
        };
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        let message = db.message().to_owned();
        match code.as_str() {
            // undefined_object: "replication slot ... does not exist"
            "42704" => Self::SlotMissing(slot.to_owned()),
            // object_in_use: "replication slot ... is active for PID ..."
            "55006" => Self::SlotBusy(slot.to_owned()),
            // object_not_in_prerequisite_state: an invalidated slot, or wal_level too low.
            // "can no longer get changes from replication slot" (PostgreSQL 15: the detail
            // says it was invalidated), or "... has been invalidated" (newer servers).
            "55000" if message.contains("no longer") || message.contains("invalidated") => {
                Self::SlotLost(slot.to_owned())
            }
            "55000" => Self::Unsupported(message),
            // insufficient_privilege
            "42501" => Self::Unsupported(message),
            // query_canceled: statement_timeout or lock_timeout
            "57014" | "55P03" => Self::Timeout,
            _ => Self::Database(format!("{message} (SQLSTATE {code})")),
        }
    }
}
