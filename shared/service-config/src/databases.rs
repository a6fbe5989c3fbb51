//! Which databases are configured, and how each is reached: a URL or a Secrets Manager secret.

use std::collections::HashMap;

use query_catalog::MAIN_DATABASE;

use crate::ConfigError;

/// Where a database is when its secret does not say (RDS-managed master secrets hold only
/// the user name and password): `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_ENGINE`, with a
/// `_<NAME>` suffix for databases other than `main`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbEndpoint {
    /// Host name.
    pub host: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Database name.
    pub dbname: Option<String>,
    /// Engine (`postgres`, `mysql`, `mariadb`).
    pub engine: Option<String>,
}

/// The variable `base` of database `database`: `base` itself for `main`, `<base>_<NAME>` for
/// the others (`DATABASE_URL_ARTICLES`).
pub fn database_variable(base: &str, database: &str) -> String {
    if database == MAIN_DATABASE {
        base.to_owned()
    } else {
        format!("{base}_{}", database.to_ascii_uppercase())
    }
}

impl DbEndpoint {
    /// The variable that supplies `field` (`host`, `port`, `dbname`, `engine`) of database
    /// `database`: `DB_HOST` for `main`, `DB_HOST_ARTICLES` for `articles`.
    pub fn variable(field: &str, database: &str) -> String {
        let base = match field {
            "dbname" => "DB_NAME".to_owned(),
            other => format!("DB_{}", other.to_ascii_uppercase()),
        };
        database_variable(&base, database)
    }
}

/// How to reach one named database: a URL, or a Secrets Manager secret (RDS JSON shape).
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseSource {
    /// `postgres://` or `mysql://` URL (may hold a password).
    Url(String),
    /// Secret id or ARN, and where the database is if the secret does not say.
    Secret {
        /// Secret id or ARN.
        id: String,
        /// Fallbacks for fields the secret lacks.
        endpoint: DbEndpoint,
    },
}

impl std::fmt::Debug for DatabaseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(_) => f.write_str("Url(<redacted>)"),
            Self::Secret { id, endpoint } => write!(f, "Secret({id:?}, {endpoint:?})"),
        }
    }
}

/// `DB_HOST{suffix}` and friends, `suffix` being `""` or `_<NAME>`.
fn db_endpoint(vars: &HashMap<String, String>, suffix: &str) -> Result<DbEndpoint, ConfigError> {
    let get = |base: &str| {
        vars.get(&format!("{base}{suffix}"))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let port = match get("DB_PORT") {
        None => None,
        Some(text) => Some(text.parse::<u16>().map_err(|_| ConfigError::Invalid {
            name: "DB_PORT",
            value: text,
            problem: "expected a port number".into(),
        })?),
    };
    Ok(DbEndpoint {
        host: get("DB_HOST"),
        port,
        dbname: get("DB_NAME"),
        engine: get("DB_ENGINE"),
    })
}

/// Collects `DATABASE_URL[_<NAME>]` and `DB_SECRET_ID[_<NAME>]`; `main` is required when
/// `require_main` is set.
pub(crate) fn databases(
    vars: &HashMap<String, String>,
    require_main: bool,
) -> Result<Vec<(String, DatabaseSource)>, ConfigError> {
    let found = sources(vars, "DATABASE_URL", "DB_SECRET_ID")?;
    if require_main && !found.iter().any(|(n, _)| n == MAIN_DATABASE) {
        return Err(ConfigError::Missing {
            name: "DATABASE_URL",
            hint: "set it to postgres://user:password@host:port/db (or DB_SECRET_ID to a secret)",
        });
    }
    Ok(found)
}

/// Collects `DATABASE_WRITE_URL[_<NAME>]` and `DB_WRITE_SECRET_ID[_<NAME>]`: the logins the
/// service's statements (writes) use, where they differ from the reading ones.
pub(crate) fn write_databases(
    vars: &HashMap<String, String>,
) -> Result<Vec<(String, DatabaseSource)>, ConfigError> {
    sources(vars, "DATABASE_WRITE_URL", "DB_WRITE_SECRET_ID")
}

/// `<url_base>[_<NAME>]` and `<secret_base>[_<NAME>]`, by database name.
fn sources(
    vars: &HashMap<String, String>,
    url_base: &str,
    secret_base: &'static str,
) -> Result<Vec<(String, DatabaseSource)>, ConfigError> {
    let mut found: Vec<(String, DatabaseSource)> = Vec::new();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for var in names {
        let value = vars[var].trim();
        let (name, source) = if let Some(rest) = var.strip_prefix(url_base) {
            (rest, DatabaseSource::Url(value.to_owned()))
        } else if let Some(rest) = var.strip_prefix(secret_base) {
            (
                rest,
                DatabaseSource::Secret {
                    id: value.to_owned(),
                    endpoint: db_endpoint(vars, rest)?,
                },
            )
        } else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let name = match name.strip_prefix('_') {
            None if name.is_empty() => MAIN_DATABASE.to_owned(),
            Some(n) if !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                n.to_ascii_lowercase()
            }
            _ => continue,
        };
        if found.iter().any(|(n, _)| *n == name) {
            return Err(ConfigError::Invalid {
                name: secret_base,
                value: name,
                problem: "this database has both a URL and a secret; set only one".into(),
            });
        }
        found.push((name, source));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{vars, BASE};
    use crate::ServiceConfig;

    #[test]
    fn databases_come_from_urls_and_secrets() {
        let mut more = vars(&BASE);
        more.insert("DB_SECRET_ID_ARTICLES".into(), "arn:aws:secretsmanager:x".into());
        more.insert("DB_HOST_ARTICLES".into(), "db.internal".into());
        more.insert("DB_PORT_ARTICLES".into(), "5433".into());
        more.insert("DATABASE_URL_REPORTS".into(), "mysql://r@h/db".into());
        let c = ServiceConfig::from_map(&more).unwrap();
        let names: Vec<&str> = c.databases.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["articles", "main", "reports"]);
        let DatabaseSource::Secret { endpoint, .. } = &c.databases[0].1 else {
            panic!("articles comes from a secret")
        };
        assert_eq!(
            (
                endpoint.host.as_deref(),
                endpoint.port,
                endpoint.engine.as_deref()
            ),
            (Some("db.internal"), Some(5433), None)
        );
        more.insert("DB_SECRET_ID".into(), "also-main".into());
        assert!(ServiceConfig::from_map(&more)
            .unwrap_err()
            .to_string()
            .contains("both a URL and a secret"));
        more.remove("DATABASE_URL");
        assert!(
            ServiceConfig::from_map(&more).is_ok(),
            "a secret alone is enough for main"
        );
    }

    #[test]
    fn endpoint_variables_carry_the_database_suffix() {
        assert_eq!(DbEndpoint::variable("host", "main"), "DB_HOST");
        assert_eq!(DbEndpoint::variable("dbname", "articles"), "DB_NAME_ARTICLES");
    }
}
