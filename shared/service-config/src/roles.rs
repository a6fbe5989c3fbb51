//! The secrets of the least-privilege database roles the ingester creates and the other
//! functions log in as: both or neither.

use crate::vars::Vars;
use crate::ConfigError;

/// The secrets of the two least-privilege database roles (JSON with `username` and
/// `password`, as the template generates them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRoleSecrets {
    /// The role the catalog's queries read with.
    pub query: String,
    /// The role the service's statements write with.
    pub write: String,
    /// `DB_INVALIDATOR_ROLE_SECRET_ID`: the role the invalidator reads committed changes with
    /// (`REPLICATION`, or `rds_replication` on RDS, and `SELECT` on the catalog's tables).
    pub invalidator: Option<String>,
}

/// `DB_QUERY_ROLE_SECRET_ID` and `DB_WRITE_ROLE_SECRET_ID` (both or neither), and
/// `DB_INVALIDATOR_ROLE_SECRET_ID`.
pub(crate) fn database_roles(v: &Vars) -> Result<Option<DatabaseRoleSecrets>, ConfigError> {
    match (
        v.text("DB_QUERY_ROLE_SECRET_ID"),
        v.text("DB_WRITE_ROLE_SECRET_ID"),
    ) {
        (Some(query), Some(write)) => Ok(Some(DatabaseRoleSecrets {
            query,
            write,
            invalidator: v.text("DB_INVALIDATOR_ROLE_SECRET_ID"),
        })),
        (None, None) => Ok(None),
        _ => Err(ConfigError::Missing {
            name: "DB_QUERY_ROLE_SECRET_ID",
            hint: "set both DB_QUERY_ROLE_SECRET_ID and DB_WRITE_ROLE_SECRET_ID, or neither",
        }),
    }
}
