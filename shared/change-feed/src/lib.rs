//! Committed row changes, read from the database itself.
//!
//! A cache that learns of writes from triggers hears of them while they commit, before they are
//! visible, and hears nothing of tables without a trigger. PostgreSQL's logical decoding hands
//! out only committed transactions, in commit order, for every table: [`Slot`] reads them
//! through the SQL interface (`pg_logical_slot_peek_changes`), and moves the slot on only when
//! told the changes were applied ([`Slot::advance`]), so a crash re-delivers instead of losing.
//! MySQL/MariaDB have no such interface reachable from Lambda: there, change triggers append to
//! an outbox table whose rows become visible at commit, and [`Outbox`] drains it.

mod decode;
mod error;
mod lsn;
mod outbox;
mod slot;

pub use decode::{Batch, Operation, Plugin, RowChange, Transaction, MAX_ROW_CHANGES};
pub use error::FeedError;
pub use lsn::Lsn;
pub use outbox::{Outbox, OutboxBatch, OUTBOX_TABLE};
pub use slot::{Slot, SlotState, TableWarning, SLOT_CREATE_TIMEOUT};

/// Whether `name` is a valid slot or table identifier here: 1 to 63 lower-case ASCII letters,
/// digits or `_`, starting with a letter or `_` (never quoted, never interpolated unchecked).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
