//! The SQL scripts that go with the bundled catalog: the PostgreSQL schema and seed its queries
//! read, and the change triggers that report writes to the invalidator. Text only: whoever
//! loads a demo database (the ingester, tests, scripts) runs them.

/// Schema and seed data of the bundled catalog's `main` queries (idempotent). Its restaurants
/// and reviews are [`crate::demo_data::RESTAURANTS_JSON`], carried verbatim.
pub const POSTGRES_SEED: &str = include_str!("../sql/postgres-seed.sql");

/// The change-trigger function: `aws_lambda.invoke` on RDS, `pg_notify` elsewhere (idempotent).
pub const POSTGRES_CHANGE_EVENTS: &str = include_str!("../sql/postgres-change-events.sql");

/// Attaches the change trigger to the demo tables the catalog tags (idempotent).
pub const POSTGRES_DEMO_TRIGGERS: &str = include_str!("../sql/postgres-demo-triggers.sql");

/// Removes the demo tables' change triggers: with the logical source none is needed.
pub const POSTGRES_DEMO_TRIGGERS_DROP: &str = include_str!("../sql/postgres-demo-triggers-drop.sql");

/// The MySQL/MariaDB outbox and the `articles` triggers that fill it (idempotent), as single
/// statements.
pub fn mysql_change_outbox() -> impl Iterator<Item = &'static str> {
    include_str!("../sql/mysql-change-outbox.sql")
        .split(";\n")
        .map(str::trim)
        .filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        })
}

/// Every script of the demo database, in the order they must run.
pub const POSTGRES_DEMO: [&str; 3] = [POSTGRES_SEED, POSTGRES_CHANGE_EVENTS, POSTGRES_DEMO_TRIGGERS];

/// Path of [`POSTGRES_SEED`] inside the repository, for tools that feed it to `psql`.
pub const POSTGRES_SEED_PATH: &str = "shared/query-catalog/sql/postgres-seed.sql";

/// Path of [`POSTGRES_CHANGE_EVENTS`] inside the repository.
pub const POSTGRES_CHANGE_EVENTS_PATH: &str = "shared/query-catalog/sql/postgres-change-events.sql";
