//! Drains of committed database changes: read a batch from the database's own change stream,
//! drop what it touched from the cache, then mark it consumed. One drain per source runs at a
//! time across the fleet (a Redis lease with a fencing token).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use cache_aside::{Lease, Mark, MarkRaise};
use change_feed::{FeedError, Outbox, Plugin, RowChange, Slot, SlotState};
use query_catalog::{entity_scope, query_scope, tag_scope, ScopeColumn};
use serde::Serialize;

use crate::{Invalidation, UseCaseError};

/// Where one database's committed changes come from.
#[derive(Debug, Clone)]
pub enum ChangeSource {
    /// A PostgreSQL logical replication slot.
    Slot {
        /// The catalog's name of the database.
        database: String,
        /// The slot.
        slot: Slot,
    },
    /// A MySQL/MariaDB outbox table filled by change triggers.
    Outbox {
        /// The catalog's name of the database.
        database: String,
        /// The outbox.
        outbox: Outbox,
    },
}

impl ChangeSource {
    /// The catalog's name of the database.
    pub fn database(&self) -> &str {
        match self {
            Self::Slot { database, .. } | Self::Outbox { database, .. } => database,
        }
    }

    /// The fleet-wide lease (and LSN mark) of this source's drains.
    pub fn lease_name(&self) -> String {
        match self {
            Self::Slot { database, slot } => format!("changes:{database}:{}", slot.name()),
            Self::Outbox { database, .. } => format!("changes:{database}:outbox"),
        }
    }
}

/// How a drain runs.
#[derive(Debug, Clone)]
pub struct DrainSettings {
    /// Pause between two reads.
    pub poll: Duration,
    /// Decoded lines (or outbox rows) read at most per poll.
    pub batch: u32,
    /// How long the lease lasts without renewal: a drain that dies frees it this soon.
    pub lease_ttl: Duration,
}

impl Default for DrainSettings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(200),
            batch: 5000,
            lease_ttl: Duration::from_secs(10),
        }
    }
}

/// What one drain of one source did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainReport {
    /// The database.
    pub database: String,
    /// `slot` or `outbox`.
    pub source: &'static str,
    /// The lease's fencing token.
    pub token: u64,
    /// Reads made.
    pub polls: u64,
    /// Committed transactions (or outbox rows) applied.
    pub transactions: u64,
    /// Row changes among them.
    pub changes: u64,
    /// Transactions skipped because the recorded LSN was already past them (re-delivered
    /// after a drain applied them but died before moving the slot on).
    pub already_applied: u64,
    /// Scope bumps made.
    pub bumps: u64,
    /// The last LSN applied and recorded (slots only).
    pub last_lsn: Option<String>,
    /// Times the slot had to be created or recreated (each one dropped everything).
    pub slot_created: u64,
    /// Errors met and retried on the next poll.
    pub errors: Vec<String>,
    /// Watched tables whose changes decoding does not carry faithfully, and what to do.
    pub warnings: Vec<String>,
    /// Why the drain stopped: `time`, `lease_lost`, or `busy` (another drain holds the lease).
    pub stopped: &'static str,
}

/// Errors kept in a report at most (a drain retrying a dead database would fill it).
const MAX_REPORTED_ERRORS: usize = 10;

impl<'a> Invalidation<'a> {
    /// Drains `source` until `until`: reads committed changes every `settings.poll`, bumps
    /// what they touched, records progress, and only then consumes them. Another drain of the
    /// same source already running makes this one return at once (`stopped: "busy"`).
    pub async fn drain(
        self,
        source: &ChangeSource,
        settings: &DrainSettings,
        until: Instant,
    ) -> Result<DrainReport, UseCaseError> {
        let mut report = DrainReport {
            database: source.database().to_owned(),
            source: match source {
                ChangeSource::Slot { .. } => "slot",
                ChangeSource::Outbox { .. } => "outbox",
            },
            ..DrainReport::default()
        };
        let cache = self.cache();
        let Some(lease) = cache
            .acquire_lease(&source.lease_name(), settings.lease_ttl)
            .await?
        else {
            report.stopped = "busy";
            return Ok(report);
        };
        report.token = lease.token;
        let mut state = DrainState {
            mark: match lease.mark {
                Mark::At(at) => Some(at),
                Mark::Unset | Mark::Resync => None,
            },
            plugin: None,
            resync: lease.mark == Mark::Resync,
        };
        report.stopped = "time";
        loop {
            report.polls += 1;
            let polled = match source {
                ChangeSource::Slot { database, slot } => {
                    self.poll_slot(database, slot, &lease, &mut state, settings, &mut report)
                        .await
                }
                ChangeSource::Outbox { outbox, .. } => self.poll_outbox(outbox, settings, &mut report).await,
            };
            match polled {
                Ok(()) => {}
                Err(PollError::LeaseLost) => {
                    report.stopped = "lease_lost";
                    break;
                }
                Err(PollError::Retry(problem)) => {
                    tracing::warn!(database = %report.database, error = %problem, "drain poll failed; retrying");
                    if report.errors.len() < MAX_REPORTED_ERRORS {
                        report.errors.push(problem);
                    }
                }
            }
            let now = Instant::now();
            if now + settings.poll >= until {
                break;
            }
            tokio::time::sleep(settings.poll).await;
            match cache.renew_lease(&lease).await {
                Ok(true) => {}
                Ok(false) => {
                    report.stopped = "lease_lost";
                    break;
                }
                // Redis unreachable: the lease may lapse and go to another drain; the token
                // check then refuses this one's progress.
                Err(e) => tracing::warn!(error = %e, "drain lease not renewed"),
            }
        }
        if report.stopped != "lease_lost" {
            if let Err(e) = cache.release_lease(&lease).await {
                tracing::warn!(error = %e, "drain lease not released; it expires on its own");
            }
        }
        tracing::info!(
            database = %report.database,
            transactions = report.transactions,
            bumps = report.bumps,
            last_lsn = report.last_lsn.as_deref().unwrap_or(""),
            stopped = report.stopped,
            "drain finished"
        );
        Ok(report)
    }

    async fn poll_slot(
        &self,
        database: &str,
        slot: &Slot,
        lease: &Lease,
        state: &mut DrainState,
        settings: &DrainSettings,
        report: &mut DrainReport,
    ) -> Result<(), PollError> {
        for attempt in 0..2 {
            let plugin = match state.plugin {
                Some(plugin) => plugin,
                None => self.open_slot(database, slot, lease, state, report).await?,
            };
            if state.resync {
                // The slot is new: changes before it were never seen, so everything goes once.
                // Recorded in Redis before the slot was made, so a drain that dies first leaves
                // the next one to do it.
                report.bumps += self.everything(database).await? as u64;
                if !self.cache().clear_mark(lease).await? {
                    return Err(PollError::LeaseLost);
                }
                state.resync = false;
                state.mark = None;
            }
            match slot.peek(plugin, settings.batch).await {
                Ok(batch) => return self.apply(database, slot, lease, state, report, batch).await,
                Err(e @ (FeedError::SlotMissing(_) | FeedError::SlotLost(_))) if attempt == 0 => {
                    tracing::warn!(error = %e, "replication slot gone; it is recreated and everything dropped");
                    state.plugin = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(PollError::Retry(
            "the replication slot went away twice in one poll".into(),
        ))
    }

    /// Finds the slot, or makes it (after recording in Redis that everything must be dropped);
    /// checks the catalog's tables once per drain.
    async fn open_slot(
        &self,
        database: &str,
        slot: &Slot,
        lease: &Lease,
        state: &mut DrainState,
        report: &mut DrainReport,
    ) -> Result<Plugin, PollError> {
        let watched = self.watched_tables(database);
        let warnings = slot.check_tables(&watched).await?;
        if report.warnings.is_empty() {
            for warning in &warnings {
                tracing::warn!(table = %warning.table, problem = warning.problem, "a watched table's changes are not fully decoded");
            }
            report.warnings = warnings
                .iter()
                .map(|w| format!("{}: {}", w.table, w.problem))
                .collect();
        }
        let lost = match slot.state().await? {
            SlotState::Ready(plugin) => {
                state.plugin = Some(plugin);
                return Ok(plugin);
            }
            SlotState::Missing => false,
            SlotState::Lost => true,
        };
        if !self.cache().mark_resync(lease).await? {
            return Err(PollError::LeaseLost);
        }
        state.resync = true;
        if lost {
            slot.drop_slot().await?;
        }
        // wal2json drops updates and deletes of tables without a replica identity outright;
        // test_decoding still names the table.
        let plugin = match slot.create(!warnings.iter().any(|w| w.unkeyed)).await {
            Ok(plugin) => plugin,
            Err(e) => {
                // No slot, so no change is seen: until one exists, every poll drops everything,
                // and the database's queries read through (slower, never stale).
                report.bumps += self.everything(database).await? as u64;
                return Err(e.into());
            }
        };
        report.slot_created += 1;
        state.plugin = Some(plugin);
        Ok(plugin)
    }

    /// Applies one read: bumps, then the recorded position, then the slot.
    async fn apply(
        &self,
        database: &str,
        slot: &Slot,
        lease: &Lease,
        state: &mut DrainState,
        report: &mut DrainReport,
        batch: change_feed::Batch,
    ) -> Result<(), PollError> {
        let Some(consumed_to) = batch.consumed_to else {
            return Ok(());
        };
        let fresh: Vec<&change_feed::Transaction> = batch
            .transactions
            .iter()
            .filter(|t| state.mark.is_none_or(|mark| t.commit_lsn.0 > mark))
            .collect();
        report.already_applied += (batch.transactions.len() - fresh.len()) as u64;
        if fresh.iter().any(|t| t.unreadable) {
            report.bumps += self.everything(database).await? as u64;
        } else {
            let scopes = self
                .scopes_for_changes(database, slot, fresh.iter().flat_map(|t| &t.changes))
                .await;
            report.bumps += self.bump_all(&scopes).await? as u64;
        }
        match self.cache().raise_mark(lease, consumed_to.0).await? {
            MarkRaise::Raised | MarkRaise::AlreadyPast(_) => {}
            MarkRaise::ResyncPending => {
                state.resync = true;
                return Err(PollError::Retry("a resynchronisation is pending".into()));
            }
            MarkRaise::LeaseLost => return Err(PollError::LeaseLost),
        }
        state.mark = Some(state.mark.map_or(consumed_to.0, |m| m.max(consumed_to.0)));
        slot.advance(consumed_to).await?;
        report.transactions += fresh.len() as u64;
        report.changes += fresh.iter().map(|t| t.changes.len() as u64).sum::<u64>();
        report.last_lsn = Some(consumed_to.to_string());
        Ok(())
    }

    /// The tables the catalog's queries on `database` read (derived from their SQL) or declare.
    fn watched_tables(&self, database: &str) -> Vec<String> {
        let mut tables: Vec<String> = self
            .catalog()
            .queries()
            .iter()
            .filter(|q| q.database == database)
            .flat_map(|q| q.tables.iter().chain(&q.tags).cloned())
            .collect();
        tables.sort();
        tables.dedup();
        tables
    }

    async fn poll_outbox(
        &self,
        outbox: &Outbox,
        settings: &DrainSettings,
        report: &mut DrainReport,
    ) -> Result<(), PollError> {
        let batch = outbox.read(settings.batch).await?;
        if batch.is_empty() {
            return Ok(());
        }
        let scopes: BTreeSet<String> = batch.tables.iter().map(|t| tag_scope(t)).collect();
        report.bumps += self.bump_all(&scopes).await? as u64;
        outbox.remove(&batch).await?;
        report.transactions += batch.len() as u64;
        report.changes += batch.len() as u64;
        Ok(())
    }

    /// The scopes committed `changes` to `slot`'s database touch: per changed table, its tag,
    /// or, when every query reading the table names the row's entity (`scope_columns`) and
    /// the change says which entities (before and after), just those entities' scopes.
    pub async fn scopes_for_changes<'c>(
        &self,
        database: &str,
        slot: &Slot,
        changes: impl IntoIterator<Item = &'c RowChange>,
    ) -> BTreeSet<String> {
        let mut scopes = BTreeSet::new();
        let mut lookups: HashMap<(String, String), Vec<String>> = HashMap::new();
        for change in changes {
            match self.entity_scopes(database, slot, change, &mut lookups).await {
                Some(entities) => scopes.extend(entities),
                None => {
                    scopes.insert(tag_scope(&change.table));
                }
            }
        }
        scopes
    }

    /// The entity scopes `change` touches, or `None` when its table's tag must go: a query
    /// reads the table without naming the row's entity, the log lacks the column's value
    /// before or after, or a lookup failed or found nothing.
    async fn entity_scopes(
        &self,
        database: &str,
        slot: &Slot,
        change: &RowChange,
        lookups: &mut HashMap<(String, String), Vec<String>>,
    ) -> Option<Vec<String>> {
        let readers = self
            .catalog()
            .queries()
            .iter()
            .filter(|q| q.database == database && q.depends_on(&change.table));
        let mut entities = Vec::new();
        let mut any = false;
        for query in readers {
            any = true;
            let scope = query.scope_columns.get(&change.table)?;
            let param = query
                .scope_params
                .first()
                .and_then(|p| query.params.iter().find(|s| &s.name == p))?;
            for value in change.values_of(scope.column())? {
                // A NULL names no entity.
                let Some(value) = value else { continue };
                let named = match scope {
                    ScopeColumn::Column(_) => vec![value.to_owned()],
                    ScopeColumn::Lookup { lookup, .. } => {
                        let key = (lookup.clone(), value.to_owned());
                        if !lookups.contains_key(&key) {
                            let found = match slot.lookup(lookup, value).await {
                                Ok(rows) => rows.into_iter().flatten().collect(),
                                Err(e) => {
                                    tracing::warn!(error = %e, query = %query.name, "scope lookup failed; dropping the tag");
                                    return None;
                                }
                            };
                            lookups.insert(key.clone(), found);
                        }
                        let found = &lookups[&key];
                        if found.is_empty() {
                            return None;
                        }
                        found.clone()
                    }
                };
                // A value the parameter would refuse: the row cannot be tied to an entity a
                // request names, so the table's tag goes.
                for value in &named {
                    let value = param.parse(value).ok()?;
                    entities.push(entity_scope(&query.name, &param.name, &value));
                }
            }
        }
        any.then_some(entities)
    }

    /// Drops every cached result of every query on `database`: its own scope and its tags'.
    /// Returns the bumps made.
    pub async fn everything(&self, database: &str) -> Result<usize, UseCaseError> {
        let scopes: BTreeSet<String> = self
            .catalog()
            .queries()
            .iter()
            .filter(|q| q.database == database)
            .flat_map(|q| std::iter::once(query_scope(&q.name)).chain(q.tags.iter().map(|t| tag_scope(t))))
            .collect();
        tracing::warn!(
            database,
            scopes = scopes.len(),
            "dropping every cached result of the database"
        );
        self.bump_all(&scopes).await
    }

    async fn bump_all(&self, scopes: &BTreeSet<String>) -> Result<usize, UseCaseError> {
        for scope in scopes {
            self.cache().invalidate(scope).await?;
        }
        Ok(scopes.len())
    }
}

/// What a drain keeps between polls.
struct DrainState {
    /// The last LSN applied (this drain's, or the lease's when granted).
    mark: Option<u64>,
    /// The slot's plugin once opened; `None` until then, or after the slot was lost.
    plugin: Option<Plugin>,
    /// Everything must be dropped before anything else is applied (the slot is new).
    resync: bool,
}

/// Why a poll did not complete.
enum PollError {
    /// Another drain holds the lease now: stop without touching the slot.
    LeaseLost,
    /// Redis or the database failed: nothing was consumed; try again next poll.
    Retry(String),
}

impl From<FeedError> for PollError {
    fn from(e: FeedError) -> Self {
        Self::Retry(e.to_string())
    }
}

impl From<UseCaseError> for PollError {
    fn from(e: UseCaseError) -> Self {
        Self::Retry(e.to_string())
    }
}

impl From<cache_aside::CacheError> for PollError {
    fn from(e: cache_aside::CacheError) -> Self {
        Self::Retry(e.to_string())
    }
}
