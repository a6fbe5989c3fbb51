//! Placeholders: how a query's SQL marks its parameters (`$1..$n` for PostgreSQL, `?` for
//! MySQL), that they match the declared parameters, and that each query's style is the one its
//! configured database's engine accepts.

use crate::{Catalog, CatalogError, NamedQuery};

/// How a query's SQL marks its parameters; each database engine accepts one style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceholderStyle {
    /// `$1, $2, ...` (PostgreSQL).
    Numbered,
    /// `?` (MySQL, MariaDB).
    Positional,
}

impl PlaceholderStyle {
    fn describe(self) -> &'static str {
        match self {
            Self::Numbered => "$n (PostgreSQL)",
            Self::Positional => "? (MySQL)",
        }
    }
}

impl NamedQuery {
    /// The placeholder style the SQL is written in, if it has any placeholders.
    pub fn placeholder_style(&self) -> Option<PlaceholderStyle> {
        match placeholders(&self.sql) {
            (_, n) if n > 0 => Some(PlaceholderStyle::Positional),
            (numbered, _) if !numbered.is_empty() => Some(PlaceholderStyle::Numbered),
            _ => None,
        }
    }
}

/// Distinct `$n` placeholders in `sql` (sorted) and the number of `?` placeholders. Text inside
/// single quotes is skipped.
fn placeholders(sql: &str) -> (Vec<usize>, usize) {
    let mut found = std::collections::BTreeSet::new();
    let mut positional = 0;
    let bytes = sql.as_bytes();
    let (mut i, mut quoted) = (0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'?' if !quoted => positional += 1,
            b'$' if !quoted => {
                let digits = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                if digits > 0 {
                    if let Ok(n) = sql[i + 1..i + 1 + digits].parse() {
                        found.insert(n);
                    }
                    i += digits;
                }
            }
            _ => {}
        }
        i += 1;
    }
    (found.into_iter().collect(), positional)
}

/// Whether `sql` takes exactly one parameter (`$1` or a single `?`), as a scope column's lookup
/// must.
pub(crate) fn takes_one_parameter(sql: &str) -> bool {
    let (numbered, positional) = placeholders(sql);
    numbered == [1] && positional == 0 || numbered.is_empty() && positional == 1
}

/// Checks that `sql` uses one placeholder style and binds exactly `params` parameters: `?`
/// once each, or `$1..$n` each at least once.
pub(crate) fn check_placeholders(sql: &str, params: usize) -> Result<(), String> {
    let (numbered, positional) = placeholders(sql);
    if !numbered.is_empty() && positional > 0 {
        return Err("sql mixes $n and ? placeholders; use $n for PostgreSQL, ? for MySQL".into());
    }
    let expected: Vec<usize> = (1..=params).collect();
    if positional > 0 && positional != params {
        return Err(format!(
            "sql has {positional} ? placeholder(s) but {params} parameter(s) are declared"
        ));
    }
    if positional == 0 && numbered != expected {
        return Err(format!(
            "sql uses placeholders {:?} but {params} parameter(s) are declared; they must be $1..${params} each used",
            numbered.iter().map(|n| format!("${n}")).collect::<Vec<_>>(),
        ));
    }
    Ok(())
}

impl Catalog {
    /// Checks each query against the configured databases (name, placeholder style its engine
    /// accepts): a mismatch is an error. Returns the names of databases the catalog uses but
    /// that are not configured (their queries answer 503 until they are).
    pub fn check_databases(
        &self,
        configured: &[(&str, PlaceholderStyle)],
    ) -> Result<Vec<String>, CatalogError> {
        let mut missing = Vec::new();
        for q in self.queries_and_statements() {
            match configured.iter().find(|(name, _)| *name == q.database) {
                None => {
                    if !missing.contains(&q.database) {
                        missing.push(q.database.clone());
                    }
                }
                Some((_, accepted)) => {
                    if let Some(written) = q.placeholder_style().filter(|s| s != accepted) {
                        return Err(CatalogError::Invalid {
                            query: q.name.clone(),
                            problem: format!(
                                "its placeholders are {} but database {:?} takes {}",
                                written.describe(),
                                q.database,
                                accepted.describe()
                            ),
                        });
                    }
                }
            }
        }
        Ok(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::problem;

    #[test]
    fn checks_engines_and_reports_unconfigured_databases() {
        let c = Catalog::load(None).unwrap();
        let (pg, my) = (PlaceholderStyle::Numbered, PlaceholderStyle::Positional);
        let missing = c.check_databases(&[("main", pg)]).unwrap();
        assert_eq!(missing, ["articles"]);
        assert!(c
            .check_databases(&[("main", pg), ("articles", my)])
            .unwrap()
            .is_empty());
        let e = c.check_databases(&[("main", my)]).unwrap_err().to_string();
        assert!(e.contains("placeholders are $n (PostgreSQL)"), "{e}");
    }

    #[test]
    fn refuses_mixed_or_miscounted_question_marks() {
        let q = |sql: &str| {
            format!("[[query]]\nname = 'm'\nsql = '{sql}'\n[[query.params]]\nname = 'n'\ntype = 'int'")
        };
        assert!(problem(&q("select $1, ?")).contains("mixes"));
        assert!(problem(&q("select ?, ?")).contains("2 ? placeholder(s) but 1"));
        assert!(Catalog::from_toml(&q("select ?")).is_ok());
    }

    #[test]
    fn finds_placeholders_outside_quotes() {
        assert_eq!(
            placeholders("select $1, '$2', $3::int, $$x$$ where a=$10"),
            (vec![1, 3, 10], 0)
        );
        assert_eq!(placeholders("select ? where a = '?' and b like ?"), (vec![], 2));
    }
}
