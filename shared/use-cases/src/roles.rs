//! Least privilege in the database: the ingester (the one function allowed to change schemas)
//! creates a reading role and a writing role in every configured database; the query API logs
//! in as them, never as the master user.
//!
//! With `DB_INVALIDATOR_ROLE_SECRET_ID`, a third role reads committed changes: replication
//! (PostgreSQL), `SELECT` on the catalog's tables for its lookups, and the outbox (MySQL).
//!
//! The reading role may `SELECT` the tables the catalog's queries are tagged with and call the
//! schema's functions; the writing role may do what the service's statements do and nothing
//! else (a review: read its restaurant, insert it, mark its idempotency key).

use serde_json::{json, Value};
use sql_origin::RoleGrants;

use crate::restaurants::ADD_REVIEW_STATEMENT;
use crate::{Clients, UseCaseError};

/// What each write statement needs, table by table (privileges as SQL, constants).
const STATEMENT_GRANTS: &[(&str, &[(&str, &str)])] = &[(
    ADD_REVIEW_STATEMENT,
    &[
        ("restaurants", "SELECT"),
        // ON CONFLICT ... DO UPDATE SET request_id needs UPDATE of that column; RETURNING needs SELECT.
        ("reviews", "SELECT, INSERT, UPDATE (request_id)"),
    ],
)];

impl Clients {
    /// Whether this function creates the database roles (their secrets are configured).
    pub fn creates_database_roles(&self) -> bool {
        self.role_logins.is_some()
    }

    /// Creates the reading and writing roles (or sets their passwords again) in every
    /// configured database, and grants each what it needs there. Idempotent.
    pub async fn ensure_database_roles(&self) -> Result<Value, UseCaseError> {
        let logins = self
            .role_logins
            .as_ref()
            .ok_or(UseCaseError::RolesNotConfigured)?;
        let mut report = serde_json::Map::new();
        for database in self.databases.iter() {
            let reads = RoleGrants {
                tables: self.read_tables(database.name()),
                functions: true,
                replication: false,
            };
            let writes = RoleGrants {
                tables: self.write_tables(database.name()),
                functions: false,
                replication: false,
            };
            let read = database.ensure_role(&logins.query, &reads).await?;
            let write = database.ensure_role(&logins.write, &writes).await?;
            let mut roles = json!({"read": read, "write": write});
            if let Some(login) = &logins.invalidator {
                // The catalog's lookups, and on MySQL/MariaDB the outbox it drains.
                let mut tables = self.read_tables(database.name());
                tables.push((change_feed::OUTBOX_TABLE.to_owned(), "SELECT, DELETE"));
                let changes = RoleGrants {
                    tables,
                    functions: false,
                    replication: true,
                };
                roles["invalidate"] = json!(database.ensure_role(login, &changes).await?);
            }
            tracing::info!(database = database.name(), roles = %roles, "database roles ready");
            report.insert(database.name().to_owned(), roles);
        }
        Ok(json!({ "roles": report }))
    }

    /// The tables the catalog's queries on `database` read (their tags; tags that are not
    /// tables are skipped by the database).
    fn read_tables(&self, database: &str) -> Vec<(String, &'static str)> {
        let mut tables: Vec<String> = self
            .catalog
            .queries()
            .iter()
            .filter(|q| q.database == database)
            .flat_map(|q| q.tags.iter().cloned())
            .collect();
        tables.sort();
        tables.dedup();
        tables.into_iter().map(|t| (t, "SELECT")).collect()
    }

    /// What the catalog's statements on `database` need.
    fn write_tables(&self, database: &str) -> Vec<(String, &'static str)> {
        STATEMENT_GRANTS
            .iter()
            .filter(|(name, _)| {
                self.catalog
                    .statement(name)
                    .is_some_and(|s| s.database == database)
            })
            .flat_map(|(_, grants)| grants.iter().map(|(t, p)| ((*t).to_owned(), *p)))
            .collect()
    }
}
