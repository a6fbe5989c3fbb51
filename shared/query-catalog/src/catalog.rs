//! The catalog as loaded: the file's shape (`[[query]]`, `[[statement]]`, `[views]`), loading it
//! (the bundled file or another) with every query checked, and finding queries in it.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::tag_coverage::check_views;
use crate::{CatalogError, NamedQuery};

/// The catalog shipped in the repository, compiled into every function so a Lambda package
/// needs no extra file. `QUERY_CATALOG_PATH` may point at another file.
pub const BUNDLED_CATALOG: &str = include_str!("../queries.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default, rename = "query")]
    queries: Vec<NamedQuery>,
    /// Writes used by the service's own routes; never served by `GET /queries/{name}`.
    #[serde(default, rename = "statement")]
    statements: Vec<NamedQuery>,
    /// The database views queries may read, each with the tables (or views) it reads.
    #[serde(default)]
    views: BTreeMap<String, Vec<String>>,
}

/// All named queries, validated.
#[derive(Debug, Clone)]
pub struct Catalog {
    queries: Vec<NamedQuery>,
    by_name: HashMap<String, usize>,
    statements: Vec<NamedQuery>,
}

impl Catalog {
    /// Parses and validates catalog TOML; the error names the query and what is wrong.
    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let mut file: CatalogFile = toml::from_str(text)?;
        check_views(&file.views)?;
        let mut by_name = HashMap::new();
        for (i, q) in file.queries.iter_mut().enumerate() {
            let label = if q.name.is_empty() {
                format!("#{}", i + 1)
            } else {
                q.name.clone()
            };
            q.tables = q
                .validate()
                .and_then(|()| q.derive_tables(&file.views))
                .map_err(|problem| CatalogError::Invalid {
                    query: label.clone(),
                    problem,
                })?;
            if by_name.insert(q.name.clone(), i).is_some() {
                return Err(CatalogError::Invalid {
                    query: label,
                    problem: "declared twice".into(),
                });
            }
        }
        for st in &file.statements {
            st.validate().map_err(|problem| CatalogError::Invalid {
                query: st.name.clone(),
                problem,
            })?;
            if by_name.contains_key(&st.name)
                || file.statements.iter().filter(|o| o.name == st.name).count() > 1
            {
                return Err(CatalogError::Invalid {
                    query: st.name.clone(),
                    problem: "declared twice".into(),
                });
            }
        }
        if file.queries.is_empty() {
            return Err(CatalogError::Invalid {
                query: "-".into(),
                problem: "the catalog declares no [[query]]".into(),
            });
        }
        Ok(Self {
            queries: file.queries,
            by_name,
            statements: file.statements,
        })
    }

    /// Loads `path`, or the bundled catalog when `None`.
    pub fn load(path: Option<&str>) -> Result<Self, CatalogError> {
        match path {
            None => Self::from_toml(BUNDLED_CATALOG),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::from_toml(&text)
            }
        }
    }

    /// The query called `name`.
    pub fn get(&self, name: &str) -> Option<&NamedQuery> {
        self.by_name.get(name).map(|&i| &self.queries[i])
    }

    /// The write statement called `name`.
    pub fn statement(&self, name: &str) -> Option<&NamedQuery> {
        self.statements.iter().find(|s| s.name == name)
    }

    /// Every query, in file order.
    pub fn queries(&self) -> &[NamedQuery] {
        &self.queries
    }

    /// The names of the queries that depend on data tag `tag`, in file order: what an
    /// invalidation of the tag drops. Empty for a tag no query declares.
    pub fn dependents(&self, tag: &str) -> Vec<&str> {
        self.queries
            .iter()
            .filter(|q| q.depends_on(tag))
            .map(|q| q.name.as_str())
            .collect()
    }

    /// Every query, then every statement: what must match the configured databases.
    pub(crate) fn queries_and_statements(&self) -> impl Iterator<Item = &NamedQuery> {
        self.queries.iter().chain(&self.statements)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn bundled_catalog_is_valid() {
        let c = Catalog::load(None).unwrap();
        assert!(c.get("slow_version").is_some());
        assert!(c.queries().iter().filter(|q| !q.params.is_empty()).count() >= 2);
        assert!(c.get("slow_version").unwrap().tables.is_empty());
        assert_eq!(
            c.get("restaurant_summary").unwrap().tables,
            ["restaurants", "reviews"]
        );
        assert_eq!(c.get("article_search").unwrap().tables, ["articles"]);
        assert!(c
            .queries()
            .iter()
            .all(|q| q.tables.iter().all(|t| q.depends_on(t))));
        // The listing (`GET /queries`) shows them.
        let listed = serde_json::to_value(c.get("product").unwrap()).unwrap();
        assert_eq!(listed["tables"], serde_json::json!(["products"]));
    }

    #[test]
    fn lists_the_dependents_of_a_tag() {
        let c = Catalog::load(None).unwrap();
        let products = c.dependents("products");
        assert!(!products.is_empty());
        assert!(products.iter().all(|q| c.get(q).unwrap().depends_on("products")));
        assert!(c.dependents("no_such_tag").is_empty());
    }

    /// What [`Catalog::from_toml`] finds wrong with `toml_text`, as `query: problem`.
    pub(crate) fn problem(toml_text: &str) -> String {
        match Catalog::from_toml(toml_text) {
            Err(CatalogError::Invalid { query, problem }) => format!("{query}: {problem}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
