//! Least-privilege login roles: one that reads (the catalog's queries) and one that writes
//! (the service's statements), created or updated by the one function allowed to change
//! schemas, with the passwords their secrets hold.
//!
//! Identifiers are quoted by the server (`format('%I')` on PostgreSQL) or checked to be plain
//! (MySQL). A PostgreSQL password is never sent at all: the role gets its SCRAM-SHA-256
//! verifier, computed here, so `pg_stat_statements` or a DDL log records nothing that logs in.
//! A MySQL password goes to the server's own quoting (`QUOTE(?)`) as a bind parameter (MySQL
//! rewrites passwords out of its logs).

use sqlx::Row;

use crate::error::classify;
use crate::{Database, DbError, Pool};

/// A login and its password, as a role's secret holds them.
#[derive(Clone, PartialEq, Eq)]
pub struct RoleLogin {
    /// The role (PostgreSQL) or user (MySQL) name.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for RoleLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What one role may do: privileges (constants of this service, such as `SELECT` or
/// `UPDATE (request_id)`) on tables. Tables the database does not have are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleGrants {
    /// `(table, privileges)` pairs.
    pub tables: Vec<(String, &'static str)>,
    /// Whether the role may call the schema's functions (the catalog's slow query is one).
    pub functions: bool,
    /// Whether the role reads logical replication slots (PostgreSQL: `rds_replication` on RDS,
    /// the `REPLICATION` attribute elsewhere; ignored on MySQL).
    pub replication: bool,
}

/// What [`Database::ensure_role`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RoleReport {
    /// The role.
    pub role: String,
    /// Whether it was created now (else its password was set again).
    pub created: bool,
    /// Tables it was granted privileges on.
    pub tables: Vec<String>,
}

/// A MySQL user name this service creates: letters, digits and `_`, as the template's
/// secrets name them (so it can be quoted without the server's help).
fn plain_identifier(name: &str) -> Result<&str, DbError> {
    plain_name(name, 32)
}

/// A plain name of 1 to `max` letters, digits or `_` (MySQL schema names may have 64).
fn plain_name(name: &str, max: usize) -> Result<&str, DbError> {
    let plain =
        !name.is_empty() && name.len() <= max && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        Ok(name)
    } else {
        Err(DbError::Other(format!(
            "a role or schema name must be 1-{max} letters, digits or _"
        )))
    }
}

/// SCRAM-SHA-256 iterations of a stored verifier (PostgreSQL's default).
const SCRAM_ITERATIONS: u32 = 4096;

/// 16 random bytes of salt.
fn random_salt() -> [u8; 16] {
    std::array::from_fn(|_| fastrand::u8(..))
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677; PostgreSQL
/// accepts it in `PASSWORD` and stores it as given):
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64. The passwords the
/// template generates are ASCII letters and digits, which SASLprep leaves as they are.
fn scram_verifier(password: &str, salt: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    use sha2::Digest as _;
    type HmacSha256 = hmac::Hmac<sha2::Sha256>;
    let mac = |key: &[u8], data: &[u8]| -> [u8; 32] {
        let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
        m.update(data);
        m.finalize().into_bytes().into()
    };
    // PBKDF2-HMAC-SHA256, one 32-byte block.
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = mac(password.as_bytes(), &first);
    let mut salted = u;
    for _ in 1..SCRAM_ITERATIONS {
        u = mac(password.as_bytes(), &u);
        salted.iter_mut().zip(u).for_each(|(s, b)| *s ^= b);
    }
    let client_key = mac(&salted, b"Client Key");
    let stored_key = sha2::Sha256::digest(client_key);
    let server_key = mac(&salted, b"Server Key");
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        b64.encode(salt),
        b64.encode(stored_key),
        b64.encode(server_key)
    )
}

impl Database {
    /// Creates the login `login` (or sets its password again) and grants it `grants`, on
    /// the tables that exist. Run with an administrator's connection.
    pub async fn ensure_role(&self, login: &RoleLogin, grants: &RoleGrants) -> Result<RoleReport, DbError> {
        match self.pool() {
            Pool::Postgres(pool) => postgres_role(&pool, login, grants).await,
            Pool::MySql(pool) => mysql_role(&pool, login, grants).await,
        }
        .map_err(classify)
    }
}

async fn postgres_role(
    pool: &sqlx::PgPool,
    login: &RoleLogin,
    grants: &RoleGrants,
) -> Result<RoleReport, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(&login.username)
        .fetch_one(pool)
        .await?;
    if exists {
        // Never hand a login the service's grants if it can do anything anyway. (RDS's master
        // is no superuser, so the attributes cannot be named in ALTER ROLE: checked instead.)
        let powerful: bool = sqlx::query_scalar(
            "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = $1",
        )
        .bind(&login.username)
        .fetch_one(pool)
        .await?;
        if powerful {
            return Err(sqlx::Error::Protocol(format!(
                "role {:?} already exists with superuser, createrole or createdb: refusing to use it",
                login.username
            )));
        }
    }
    // CREATE ROLE's defaults are NOSUPERUSER NOCREATEDB NOCREATEROLE.
    let verb = if exists { "ALTER" } else { "CREATE" };
    let statement: String = sqlx::query_scalar(&format!(
        "SELECT format('{verb} ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)"
    ))
    .bind(&login.username)
    .bind(scram_verifier(&login.password, &random_salt()))
    .fetch_one(pool)
    .await?;
    sqlx::raw_sql(&statement).execute(pool).await?;
    let mut granted = Vec::new();
    let usage: String = sqlx::query_scalar("SELECT format('GRANT USAGE ON SCHEMA public TO %I', $1::text)")
        .bind(&login.username)
        .fetch_one(pool)
        .await?;
    sqlx::raw_sql(&usage).execute(pool).await?;
    for (table, privileges) in &grants.tables {
        let present: bool =
            sqlx::query_scalar("SELECT to_regclass(format('public.%I', $1::text)) IS NOT NULL")
                .bind(table)
                .fetch_one(pool)
                .await?;
        if !present {
            continue;
        }
        let grant: String = sqlx::query_scalar(&format!(
            "SELECT format('GRANT {privileges} ON public.%I TO %I', $1::text, $2::text)"
        ))
        .bind(table)
        .bind(&login.username)
        .fetch_one(pool)
        .await?;
        sqlx::raw_sql(&grant).execute(pool).await?;
        if privileges.contains("INSERT") {
            // The sequences behind the table's serial columns, which an INSERT advances.
            let sequences: Vec<String> = sqlx::query_scalar(
                "SELECT s.relname::text FROM pg_class s JOIN pg_depend d ON d.objid = s.oid \
                 JOIN pg_class t ON t.oid = d.refobjid \
                 WHERE s.relkind = 'S' AND t.relname = $1 AND t.relnamespace = 'public'::regnamespace",
            )
            .bind(table)
            .fetch_all(pool)
            .await?;
            for sequence in sequences {
                let grant: String = sqlx::query_scalar(
                    "SELECT format('GRANT USAGE ON SEQUENCE public.%I TO %I', $1::text, $2::text)",
                )
                .bind(&sequence)
                .bind(&login.username)
                .fetch_one(pool)
                .await?;
                sqlx::raw_sql(&grant).execute(pool).await?;
            }
        }
        granted.push(table.clone());
    }
    if grants.functions {
        let grant: String = sqlx::query_scalar(
            "SELECT format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO %I', $1::text)",
        )
        .bind(&login.username)
        .fetch_one(pool)
        .await?;
        sqlx::raw_sql(&grant).execute(pool).await?;
    }
    if grants.replication {
        // RDS's master cannot give the attribute, but may grant RDS's role that carries it.
        let rds: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication')")
                .fetch_one(pool)
                .await?;
        let template = match rds {
            true => "SELECT format('GRANT rds_replication TO %I', $1::text)",
            false => "SELECT format('ALTER ROLE %I WITH REPLICATION', $1::text)",
        };
        let grant: String = sqlx::query_scalar(template)
            .bind(&login.username)
            .fetch_one(pool)
            .await?;
        sqlx::raw_sql(&grant).execute(pool).await?;
    }
    Ok(RoleReport {
        role: login.username.clone(),
        created: !exists,
        tables: granted,
    })
}

async fn mysql_role(
    pool: &sqlx::MySqlPool,
    login: &RoleLogin,
    grants: &RoleGrants,
) -> Result<RoleReport, sqlx::Error> {
    let user = plain_identifier(&login.username).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM mysql.user WHERE user = ? AND host = '%')")
            .bind(user)
            .fetch_one(pool)
            .await?;
    let password: String = sqlx::query_scalar("SELECT QUOTE(?)")
        .bind(&login.password)
        .fetch_one(pool)
        .await?;
    sqlx::raw_sql(&format!(
        "CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY {password}"
    ))
    .execute(pool)
    .await?;
    sqlx::raw_sql(&format!("ALTER USER '{user}'@'%' IDENTIFIED BY {password}"))
        .execute(pool)
        .await?;
    let mut granted = Vec::new();
    for (table, privileges) in &grants.tables {
        let present = sqlx::query(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
        )
        .bind(table)
        .fetch_optional(pool)
        .await?
        .is_some();
        if !present {
            continue;
        }
        let table = plain_identifier(table).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        let schema: String = sqlx::query("SELECT DATABASE()")
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        let schema = plain_name(&schema, 64).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        sqlx::raw_sql(&format!(
            "GRANT {privileges} ON `{schema}`.`{table}` TO '{user}'@'%'"
        ))
        .execute(pool)
        .await?;
        granted.push(table.to_owned());
    }
    Ok(RoleReport {
        role: user.to_owned(),
        created: !exists,
        tables: granted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_quoted_here_and_passwords_never_print() {
        assert!(plain_identifier("cache_query").is_ok());
        for bad in ["", "a'b", "a`b", "a b", "a-b", &"x".repeat(33)] {
            assert!(plain_identifier(bad).is_err(), "{bad:?}");
        }
        let login = RoleLogin {
            username: "cache_query".into(),
            password: "hunter2-secret".into(),
        };
        assert!(!format!("{login:?}").contains("hunter2"));
    }

    #[test]
    fn scram_verifiers_have_postgresql_s_shape() {
        let verifier = scram_verifier("pencil", b"0123456789abcdef");
        assert!(
            verifier.starts_with("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$"),
            "{verifier}"
        );
        assert_eq!(verifier.matches(':').count(), 2);
        assert_ne!(verifier, scram_verifier("pencil2", b"0123456789abcdef"));
    }
}
