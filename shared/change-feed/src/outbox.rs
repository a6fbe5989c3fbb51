//! The outbox of MySQL/MariaDB: change triggers append a row naming the table, in the writing
//! transaction, so the row becomes visible exactly when the change does.

use std::collections::BTreeSet;

use sqlx::mysql::MySqlPool;
use sqlx::Row;

use crate::FeedError;

/// The outbox table the change triggers write (see `mysql-change-outbox.sql`).
pub const OUTBOX_TABLE: &str = "cache_invalidation_outbox";

/// Rows taken from the outbox: which tables changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxBatch {
    ids: Vec<i64>,
    /// The changed tables, once each.
    pub tables: BTreeSet<String>,
}

impl OutboxBatch {
    /// Whether the outbox was empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// How many outbox rows the batch holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

/// The outbox of one MySQL/MariaDB database.
#[derive(Debug, Clone)]
pub struct Outbox {
    pool: MySqlPool,
}

/// Rows deleted per statement (bind parameters stay far below MySQL's 65,535).
const DELETE_CHUNK: usize = 1000;

impl Outbox {
    /// The outbox behind `pool`.
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }

    fn error(e: sqlx::Error) -> FeedError {
        FeedError::from_sqlx(e, OUTBOX_TABLE)
    }

    /// Up to `limit` committed outbox rows, oldest first. Ids are taken at insert, not at
    /// commit, so a row may appear after a higher one was removed: rows are removed by id,
    /// never by range, and a late one is read next time.
    pub async fn read(&self, limit: u32) -> Result<OutboxBatch, FeedError> {
        let rows = sqlx::query("SELECT id, table_name FROM cache_invalidation_outbox ORDER BY id LIMIT ?")
            .bind(limit.max(1))
            .fetch_all(&self.pool)
            .await
            .map_err(Self::error)?;
        let mut batch = OutboxBatch::default();
        for row in rows {
            batch.ids.push(row.try_get("id").map_err(Self::error)?);
            let table: String = row.try_get("table_name").map_err(Self::error)?;
            batch.tables.insert(table.to_ascii_lowercase());
        }
        Ok(batch)
    }

    /// Removes the batch's rows, once their changes were applied.
    pub async fn remove(&self, batch: &OutboxBatch) -> Result<(), FeedError> {
        for chunk in batch.ids.chunks(DELETE_CHUNK) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!("DELETE FROM cache_invalidation_outbox WHERE id IN ({marks})");
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&self.pool).await.map_err(Self::error)?;
        }
        Ok(())
    }
}
