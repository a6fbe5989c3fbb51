//! A PostgreSQL logical replication slot, read through the SQL interface.

use sqlx::postgres::PgPool;
use sqlx::Row;

use crate::decode::{transactions, Plugin, Transaction};
use crate::{is_identifier, FeedError, Lsn};

/// A logical replication slot this process reads. Each read decodes from the slot's confirmed
/// position without consuming ("peek"); [`Slot::advance`] consumes, once the reader applied
/// what it read.
#[derive(Debug, Clone)]
pub struct Slot {
    pool: PgPool,
    name: String,
}

/// What [`Slot::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotOpened {
    /// Its output plugin.
    pub plugin: Plugin,
    /// Whether it had to be created (first run, dropped, lost in a failover) or recreated
    /// (the server invalidated it): either way, changes before now were never seen.
    pub created: bool,
}

impl Slot {
    /// Slot `name` on the database behind `pool`.
    pub fn new(pool: PgPool, name: &str) -> Result<Self, FeedError> {
        if !is_identifier(name) {
            return Err(FeedError::InvalidName(name.to_owned()));
        }
        Ok(Self {
            pool,
            name: name.to_owned(),
        })
    }

    /// The slot's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn error(&self, e: sqlx::Error) -> FeedError {
        FeedError::from_sqlx(e, &self.name)
    }

    /// Makes sure the slot exists and can be read: creates it when missing (with `wal2json`
    /// when the server has it, `test_decoding` otherwise), and drops and recreates it when the
    /// server invalidated it. Creating a slot waits for transactions already running to end.
    pub async fn open(&self) -> Result<SlotOpened, FeedError> {
        let found = sqlx::query(
            "SELECT plugin::text AS plugin, coalesce(wal_status, '') AS wal_status \
             FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()",
        )
        .bind(&self.name)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        if let Some(row) = found {
            let plugin: String = row.try_get("plugin").map_err(|e| self.error(e))?;
            let status: String = row.try_get("wal_status").map_err(|e| self.error(e))?;
            let plugin = Plugin::from_name(&plugin).ok_or_else(|| {
                FeedError::Unsupported(format!(
                    "slot {:?} uses plugin {plugin:?}; this reader takes wal2json or test_decoding",
                    self.name
                ))
            })?;
            if status != "lost" {
                return Ok(SlotOpened {
                    plugin,
                    created: false,
                });
            }
            tracing::warn!(slot = %self.name, "the server invalidated the slot; recreating it");
            self.drop_slot().await?;
        }
        let plugin = self.create().await?;
        tracing::warn!(slot = %self.name, plugin = plugin.name(), "replication slot created");
        Ok(SlotOpened {
            plugin,
            created: true,
        })
    }

    async fn create(&self) -> Result<Plugin, FeedError> {
        for plugin in [Plugin::Wal2Json, Plugin::TestDecoding] {
            let created = sqlx::query("SELECT pg_create_logical_replication_slot($1, $2)")
                .bind(&self.name)
                .bind(plugin.name())
                .execute(&self.pool)
                .await;
            match created {
                Ok(_) => return Ok(plugin),
                // undefined_file: the plugin is not installed; try the next one.
                Err(sqlx::Error::Database(db))
                    if db.code().as_deref() == Some("58P01") && plugin == Plugin::Wal2Json =>
                {
                    tracing::info!("wal2json is not installed; decoding with test_decoding")
                }
                // duplicate_object: another reader created it meanwhile.
                Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42710") => {
                    return Box::pin(self.open()).await.map(|o| o.plugin)
                }
                Err(e) => return Err(self.error(e)),
            }
        }
        Err(FeedError::Unsupported("no output plugin could be loaded".into()))
    }

    /// Drops the slot (an invalidated one, or in tests).
    pub async fn drop_slot(&self) -> Result<(), FeedError> {
        sqlx::query("SELECT pg_drop_replication_slot($1)")
            .bind(&self.name)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// Up to about `max_changes` decoded lines' worth of committed transactions after the
    /// slot's confirmed position, in commit order, without consuming them. A transaction is
    /// never split; rolled-back ones never appear.
    pub async fn peek(&self, plugin: Plugin, max_changes: u32) -> Result<Vec<Transaction>, FeedError> {
        let [(k1, v1), (k2, v2)] = plugin.options();
        let rows = sqlx::query(
            "SELECT lsn::text AS lsn, data FROM pg_logical_slot_peek_changes($1, NULL, $2, $3, $4, $5, $6)",
        )
        .bind(&self.name)
        .bind(i32::try_from(max_changes.max(1)).unwrap_or(i32::MAX))
        .bind(k1)
        .bind(v1)
        .bind(k2)
        .bind(v2)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        let mut lines = Vec::with_capacity(rows.len());
        for row in rows {
            let lsn: String = row.try_get("lsn").map_err(|e| self.error(e))?;
            let data: String = row.try_get("data").map_err(|e| self.error(e))?;
            let lsn = lsn.parse::<Lsn>().map_err(|problem| FeedError::Decode {
                data: lsn.clone(),
                problem,
            })?;
            lines.push((lsn, data));
        }
        transactions(plugin, lines)
    }

    /// Marks everything up to `lsn` (a commit's end, from [`Transaction::commit_lsn`]) as
    /// consumed: the server may then recycle that WAL. Moving to a position already passed is
    /// a no-op.
    pub async fn advance(&self, lsn: Lsn) -> Result<(), FeedError> {
        sqlx::query(
            "SELECT pg_replication_slot_advance($1, $2::pg_lsn) \
             FROM pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn < $2::pg_lsn",
        )
        .bind(&self.name)
        .bind(lsn.to_string())
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(|e| self.error(e))
    }

    /// Runs `sql` (a catalog lookup: one parameter, bound as text; one text column out) with
    /// `key`, on the slot's database: which entity a changed row belongs to.
    pub async fn lookup(&self, sql: &str, key: &str) -> Result<Vec<Option<String>>, FeedError> {
        sqlx::query_scalar::<_, Option<String>>(sql)
            .bind(key)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))
    }

    /// How many bytes of WAL the slot holds back (what `OldestReplicationSlotLag` watches).
    pub async fn lag_bytes(&self) -> Result<Option<i64>, FeedError> {
        sqlx::query_scalar(
            "SELECT (pg_current_wal_lsn() - restart_lsn)::bigint FROM pg_replication_slots \
             WHERE slot_name = $1",
        )
        .bind(&self.name)
        .fetch_optional(&self.pool)
        .await
        .map(Option::flatten)
        .map_err(|e| self.error(e))
    }
}
