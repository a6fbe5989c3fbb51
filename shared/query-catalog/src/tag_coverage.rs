//! Tag coverage: the tables a query's SQL reads (views expanded into the tables they read) must
//! all be among its tags, or a write to one of them would leave its cached results stale. The
//! tables are derived from the SQL when the catalog is loaded, never declared.

use std::collections::{BTreeMap, BTreeSet};

use crate::validate::is_identifier;
use crate::{tables_read, CatalogError, NamedQuery};

impl NamedQuery {
    /// The tables the SQL reads, views expanded, sorted; an error when the SQL cannot be read
    /// or reads a table its tags do not declare (a write to it would leave this query stale).
    pub(crate) fn derive_tables(&self, views: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, String> {
        let direct = tables_read(&self.sql).map_err(|e| format!("its sql cannot be read: {e}"))?;
        let tables = expand_views(&direct, views);
        if let Some(missing) = tables.iter().find(|t| !self.depends_on(t)) {
            let kind = if views.contains_key(missing) {
                "view"
            } else {
                "table"
            };
            let through = views
                .iter()
                .find(|(view, read)| tables.contains(*view) && read.contains(missing))
                .filter(|_| !direct.contains(missing))
                .map(|(view, _)| format!(" (through view {view:?})"))
                .unwrap_or_default();
            return Err(format!(
                "reads {kind} {missing:?}{through}, which its tags {:?} do not declare: add it to \
                 tags (every write to it must drop this query)",
                self.tags
            ));
        }
        Ok(tables.into_iter().collect())
    }
}

/// `read` with each view in it joined by the tables the view reads, and theirs in turn (a view
/// may read views).
fn expand_views(read: &BTreeSet<String>, views: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut tables = BTreeSet::new();
    let mut pending: Vec<&String> = read.iter().collect();
    while let Some(table) = pending.pop() {
        if tables.insert(table.clone()) {
            if let Some(view_reads) = views.get(table) {
                pending.extend(view_reads);
            }
        }
    }
    tables
}

/// Checks the `[views]` table: view and table names are bare lower-case names, like tags.
pub(crate) fn check_views(views: &BTreeMap<String, Vec<String>>) -> Result<(), CatalogError> {
    for (view, tables) in views {
        if let Some(bad) = std::iter::once(view)
            .chain(tables)
            .find(|name| !is_identifier(name, 64))
        {
            return Err(CatalogError::Invalid {
                query: "-".into(),
                problem: format!(
                    "[views] {view:?}: {bad:?} must be a bare table name of lower-case letters, \
                     digits or _ (as tags are)"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::catalog::tests::problem;
    use crate::{Catalog, CatalogError};

    #[test]
    fn a_query_must_tag_every_table_its_sql_reads() {
        let q = |tags: &str| {
            format!(
                "[[query]]\nname = 'x'\nsql = 'SELECT r.name FROM restaurants r \
                 JOIN reviews v ON v.restaurant_id = r.id'\ntags = [{tags}]"
            )
        };
        assert_eq!(
            problem(&q("'restaurants'")),
            "x: reads table \"reviews\", which its tags [\"restaurants\"] do not declare: \
             add it to tags (every write to it must drop this query)"
        );
        // Tags may name more than tables.
        let c = Catalog::from_toml(&q("'restaurants', 'reviews', 'server'")).unwrap();
        assert_eq!(c.get("x").unwrap().tables, ["restaurants", "reviews"]);
        let unparsable = problem("[[query]]\nname = 'bad'\nsql = 'SELEC 1'");
        assert!(
            unparsable.starts_with("bad: its sql cannot be read: sql parser error"),
            "{unparsable}"
        );
        // Derived, never declared.
        assert!(matches!(
            Catalog::from_toml("[[query]]\nname = 'a'\nsql = 'select 1'\ntables = ['t']"),
            Err(CatalogError::Parse(_))
        ));
        // Statements are writes: not checked.
        let with_statement = "[[query]]\nname = 'a'\nsql = 'select 1'\n\
                              [[statement]]\nname = 'w'\nsql = 'DELETE FROM logs'";
        assert!(Catalog::from_toml(with_statement).is_ok());
    }

    #[test]
    fn a_view_counts_as_the_tables_it_reads() {
        let text = |tags: &str| {
            format!(
                "[views]\nrestaurant_ratings = ['restaurants', 'reviews']\n\
                 [[query]]\nname = 'top'\n\
                 sql = 'SELECT name FROM public.restaurant_ratings ORDER BY rating DESC LIMIT 10'\n\
                 tags = [{tags}]"
            )
        };
        let c = Catalog::from_toml(&text("'restaurant_ratings', 'restaurants', 'reviews'")).unwrap();
        assert_eq!(
            c.get("top").unwrap().tables,
            ["restaurant_ratings", "restaurants", "reviews"]
        );
        let missing = problem(&text("'restaurant_ratings', 'restaurants'"));
        assert!(
            missing.contains("reads table \"reviews\" (through view \"restaurant_ratings\")"),
            "{missing}"
        );
        let view_untagged = problem(&text("'restaurants', 'reviews'"));
        assert!(
            view_untagged.contains("reads view \"restaurant_ratings\", which"),
            "{view_untagged}"
        );
        let bad = problem("[views]\nBad = ['x']\n[[query]]\nname = 'q'\nsql = 'select 1'");
        assert!(bad.contains("[views] \"Bad\""), "{bad}");
    }
}
