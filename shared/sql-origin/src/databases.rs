//! The configured databases, found by the name the catalog's queries give.

use crate::{Database, DbError};

/// The configured databases, by name.
#[derive(Debug, Default)]
pub struct Databases {
    list: Vec<Database>,
}

impl Databases {
    /// Wraps the list.
    pub fn new(list: Vec<Database>) -> Self {
        Self { list }
    }

    /// The database called `name`.
    pub fn get(&self, name: &str) -> Option<&Database> {
        self.list.iter().find(|d| d.name() == name)
    }

    /// The database called `name`, or [`DbError::NotConfigured`] naming it.
    pub fn require(&self, name: &str) -> Result<&Database, DbError> {
        self.get(name)
            .ok_or_else(|| DbError::NotConfigured(name.to_owned()))
    }

    /// All of them.
    pub fn iter(&self) -> impl Iterator<Item = &Database> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DatabaseSettings, Engine};

    #[tokio::test]
    async fn databases_are_found_by_name() {
        let quick = DatabaseSettings {
            connect_timeout: std::time::Duration::from_millis(300),
            ..DatabaseSettings::default()
        };
        let main = Database::connect_lazy("main", "postgres://u:p@127.0.0.1:1/db", &quick).unwrap();
        let databases = Databases::new(vec![main]);
        assert_eq!(databases.require("main").unwrap().engine(), Engine::Postgres);
        assert!(matches!(
            databases.require("articles"),
            Err(DbError::NotConfigured(name)) if name == "articles"
        ));
    }
}
