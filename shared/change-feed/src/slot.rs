//! A PostgreSQL logical replication slot, read through the SQL interface.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use sqlx::postgres::PgPool;
use sqlx::Row;

use crate::decode::{bare_table, Batch, Batcher, Operation, Plugin, RowChange};
use crate::{is_identifier, FeedError, Lsn};

/// How long creating a slot may wait for the transactions running when it starts: it cannot
/// finish before they do. Short, so a drain blocked by a transaction left open comes back each
/// poll (and keeps the cache safe meanwhile) instead of waiting out the statement timeout.
pub const SLOT_CREATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A logical replication slot this process reads. Each read decodes from the slot's confirmed
/// position without consuming ("peek"); [`Slot::advance`] consumes, once the reader applied
/// what it read.
#[derive(Debug, Clone)]
pub struct Slot {
    pool: PgPool,
    name: String,
    /// Partition → the partitioned table queries name (a table maps to itself).
    roots: Arc<Mutex<HashMap<String, String>>>,
}

/// What [`Slot::state`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    /// It exists and can be read with this plugin.
    Ready(Plugin),
    /// It does not exist (first run, dropped, lost in a failover): changes before its creation
    /// will never be seen.
    Missing,
    /// The server invalidated it (it held more WAL than `max_slot_wal_keep_size`): the same
    /// loss; it must be dropped and created again.
    Lost,
}

/// A table the catalog reads whose changes the slot would not carry faithfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableWarning {
    /// The table.
    pub table: String,
    /// Why, and what to do.
    pub problem: &'static str,
    /// Whether `wal2json` would drop its updates and deletes outright (no replica identity):
    /// a slot for such tables is created with `test_decoding`, which still names the table.
    pub unkeyed: bool,
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
            roots: Arc::default(),
        })
    }

    /// The slot's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn error(&self, e: sqlx::Error) -> FeedError {
        FeedError::from_sqlx(e, &self.name)
    }

    /// Whether the slot exists and can be read. A slot of this name that belongs to another
    /// database, is physical, or uses another plugin is an error naming it (slot names are
    /// server-wide; `CACHE_SLOT_NAME` picks another).
    pub async fn state(&self) -> Result<SlotState, FeedError> {
        let found = sqlx::query(
            "SELECT slot_type::text AS kind, coalesce(plugin::text, '') AS plugin, \
             coalesce(database::text, '') AS database, database = current_database() AS here, \
             coalesce(wal_status, '') AS wal_status \
             FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&self.name)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        let Some(row) = found else {
            return Ok(SlotState::Missing);
        };
        let get =
            |column: &str| -> Result<String, FeedError> { row.try_get(column).map_err(|e| self.error(e)) };
        let here: Option<bool> = row.try_get("here").map_err(|e| self.error(e))?;
        if get("kind")? != "logical" || here != Some(true) {
            return Err(FeedError::Unsupported(format!(
                "a {} slot named {:?} already exists for database {:?}: set CACHE_SLOT_NAME to another name",
                get("kind")?,
                self.name,
                get("database")?
            )));
        }
        let plugin = get("plugin")?;
        let plugin = Plugin::from_name(&plugin).ok_or_else(|| {
            FeedError::Unsupported(format!(
                "slot {:?} uses plugin {plugin:?}; this reader takes wal2json or test_decoding \
                 (another tool's slot? set CACHE_SLOT_NAME to another name)",
                self.name
            ))
        })?;
        Ok(match get("wal_status")?.as_str() {
            "lost" => SlotState::Lost,
            _ => SlotState::Ready(plugin),
        })
    }

    /// Creates the slot: with `wal2json` when the server has it and `prefer_wal2json`, else
    /// `test_decoding`. Waits for transactions already running to end (bounded by the
    /// statement timeout).
    pub async fn create(&self, prefer_wal2json: bool) -> Result<Plugin, FeedError> {
        let plugins: &[Plugin] = if prefer_wal2json {
            &[Plugin::Wal2Json, Plugin::TestDecoding]
        } else {
            &[Plugin::TestDecoding]
        };
        for &plugin in plugins {
            let created = self.create_with(plugin).await;
            match created {
                Ok(_) => {
                    tracing::warn!(slot = %self.name, plugin = plugin.name(), "replication slot created");
                    return Ok(plugin);
                }
                // undefined_file: the plugin is not installed; try the next one.
                Err(sqlx::Error::Database(db))
                    if db.code().as_deref() == Some("58P01") && plugin == Plugin::Wal2Json =>
                {
                    tracing::info!("wal2json is not installed; decoding with test_decoding")
                }
                // duplicate_object: another reader created it meanwhile.
                Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42710") => {
                    return match self.state().await? {
                        SlotState::Ready(plugin) => Ok(plugin),
                        _ => Err(FeedError::SlotBusy(self.name.clone())),
                    };
                }
                Err(e) => return Err(self.error(e)),
            }
        }
        Err(FeedError::Unsupported("no output plugin could be loaded".into()))
    }

    /// One attempt, bounded by [`SLOT_CREATE_TIMEOUT`] (a read-only transaction, so the
    /// timeout can be set for it alone).
    async fn create_with(&self, plugin: Plugin) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('statement_timeout', $1, true)")
            .bind(SLOT_CREATE_TIMEOUT.as_millis().to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_create_logical_replication_slot($1, $2)")
            .bind(&self.name)
            .bind(plugin.name())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
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

    /// The `watched` tables (the catalog's) whose changes decoding would not carry faithfully:
    /// unlogged tables and materialized views (never decoded), and tables without a replica
    /// identity (updates and deletes carry no old row; `wal2json` drops them outright).
    pub async fn check_tables(&self, watched: &[String]) -> Result<Vec<TableWarning>, FeedError> {
        let rows = sqlx::query(
            "SELECT c.relname::text AS name, c.relkind::text AS kind, c.relpersistence::text AS persistence, \
             c.relreplident::text AS identity, \
             EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)) AS keyed \
             FROM pg_class c WHERE lower(c.relname) = ANY($1) AND c.relkind IN ('r', 'p', 'm') \
             AND pg_table_is_visible(c.oid)",
        )
        .bind(watched)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        let mut warnings = Vec::new();
        for row in rows {
            let text = |c: &str| row.try_get::<String, _>(c).unwrap_or_default().to_lowercase();
            let keyed: bool = row.try_get("keyed").unwrap_or(true);
            let (problem, unkeyed) = if text("kind") == "m" {
                (
                    "a materialized view: REFRESH is never decoded; invalidate its tag after one",
                    false,
                )
            } else if text("persistence") == "u" {
                (
                    "unlogged: its changes are never decoded; make it logged or invalidate by hand",
                    false,
                )
            } else if text("identity") == "n" || (text("identity") == "d" && !keyed) {
                ("no replica identity: updates and deletes carry no old row; ALTER TABLE ... REPLICA IDENTITY FULL", true)
            } else {
                continue;
            };
            warnings.push(TableWarning {
                table: text("name"),
                problem,
                unkeyed,
            });
        }
        Ok(warnings)
    }

    /// Up to about `max_lines` decoded lines' worth of committed transactions after the
    /// slot's confirmed position, in commit order, without consuming them. A transaction is
    /// never split; rolled-back ones never appear. Rows stream in (a bulk transaction is kept
    /// by table past [`crate::MAX_ROW_CHANGES`]), and partitions are reported as the
    /// partitioned table queries name, besides themselves.
    pub async fn peek(&self, plugin: Plugin, max_lines: u32) -> Result<Batch, FeedError> {
        let [(k1, v1), (k2, v2)] = plugin.options();
        let mut batcher = Batcher::new(plugin);
        {
            let mut rows = sqlx::query(
                "SELECT lsn::text AS lsn, data FROM pg_logical_slot_peek_changes($1, NULL, $2, $3, $4, $5, $6)",
            )
            .bind(&self.name)
            .bind(i32::try_from(max_lines.max(1)).unwrap_or(i32::MAX))
            .bind(k1)
            .bind(v1)
            .bind(k2)
            .bind(v2)
            .fetch(&self.pool);
            while let Some(row) = rows.try_next().await.map_err(|e| self.error(e))? {
                let lsn: String = row.try_get("lsn").map_err(|e| self.error(e))?;
                let data: String = row.try_get("data").map_err(|e| self.error(e))?;
                let lsn = lsn.parse::<Lsn>().map_err(FeedError::Decode)?;
                batcher.push(lsn, &data);
            }
        }
        let mut batch = batcher.finish();
        self.map_partitions(&mut batch).await?;
        Ok(batch)
    }

    /// Adds, for each change to a partition, a table-level change of its partitioned table.
    async fn map_partitions(&self, batch: &mut Batch) -> Result<(), FeedError> {
        let mut unknown: Vec<String> = Vec::new();
        {
            let roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
            for change in batch.transactions.iter().flat_map(|t| &t.changes) {
                if !roots.contains_key(&change.table) && !unknown.contains(&change.table) {
                    unknown.push(change.table.clone());
                }
            }
        }
        for table in unknown {
            let root: Option<String> = sqlx::query_scalar(
                "SELECT pg_partition_root(c.oid)::regclass::text FROM pg_class c \
                 WHERE lower(c.relname) = $1 AND c.relispartition LIMIT 1",
            )
            .bind(&table)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
            let root = root.map_or_else(|| table.clone(), |r| bare_table(&r));
            self.roots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(table, root);
        }
        let roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        for transaction in &mut batch.transactions {
            let mut parents: Vec<String> = transaction
                .changes
                .iter()
                .filter_map(|c| roots.get(&c.table).filter(|root| **root != c.table).cloned())
                .collect();
            parents.sort();
            parents.dedup();
            transaction
                .changes
                .extend(parents.into_iter().map(|table| RowChange {
                    table,
                    operation: Operation::Truncate,
                    new: Default::default(),
                    old: Default::default(),
                }));
        }
        Ok(())
    }

    /// Marks everything up to `lsn` (from [`Batch::consumed_to`]) as consumed: the server may
    /// then recycle that WAL. Moving to a position already passed is a no-op.
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
}
