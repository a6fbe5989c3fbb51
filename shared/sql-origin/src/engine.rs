//! Which SQL engine a database runs.

use serde::Serialize;

/// The SQL dialect of a database, which decides its placeholder syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// PostgreSQL: `$1, $2, ...`.
    Postgres,
    /// MySQL or MariaDB: `?`.
    MySql,
}

impl Engine {
    /// The engine of a `postgres://` / `mysql://` URL.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split("://").next()?;
        match scheme {
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }

    /// The engine named in an RDS secret (`postgres`, `aurora-postgresql`, `mysql`, `mariadb`, ...).
    pub fn of_secret(engine: &str) -> Option<Self> {
        match engine {
            e if e.contains("postgres") => Some(Self::Postgres),
            e if e.contains("mysql") || e.contains("mariadb") || e == "aurora" => Some(Self::MySql),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_from_urls_and_rds_secrets() {
        assert_eq!(Engine::of_url("postgresql://h/db"), Some(Engine::Postgres));
        assert_eq!(Engine::of_url("mariadb://h/db"), Some(Engine::MySql));
        assert_eq!(Engine::of_url("sqlite://x"), None);
        for (name, engine) in [
            ("aurora-postgresql", Engine::Postgres),
            ("postgres", Engine::Postgres),
            ("aurora-mysql", Engine::MySql),
            ("aurora", Engine::MySql),
            ("mariadb", Engine::MySql),
        ] {
            assert_eq!(Engine::of_secret(name), Some(engine), "{name}");
        }
        assert_eq!(Engine::of_secret("oracle-ee"), None);
    }
}
