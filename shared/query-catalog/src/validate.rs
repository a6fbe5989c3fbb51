//! The rules a query definition must follow (names, bounds, parameters, scopes, placeholders),
//! checked once when the catalog is loaded so that a bad catalog stops the function at start-up
//! instead of failing requests later.

use std::collections::HashSet;

use crate::params::kind_name;
use crate::placeholders::{check_placeholders, takes_one_parameter};
use crate::{tables_read, NamedQuery, ScopeColumn};

/// Longest TTL a query may declare (one week).
const MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;
/// Upper bound of `max_rows`.
const MAX_ROWS_LIMIT: u32 = 1_000_000;
/// Upper bound of `max_cached_bytes` (Redis values over a few MB hurt every client).
const MAX_CACHED_BYTES_LIMIT: usize = 16 * 1024 * 1024;

impl NamedQuery {
    /// Checks the query's fields one by one; the error says what is wrong, for
    /// [`CatalogError::Invalid`](crate::CatalogError::Invalid). The tables its SQL reads are
    /// checked against its tags apart (`tag_coverage.rs`).
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !is_identifier(&self.name, 64) {
            return Err("name must be 1-64 lower-case letters, digits or _, starting with a letter".into());
        }
        if self.sql.trim().is_empty() {
            return Err("sql is empty".into());
        }
        if let Some(ttl) = self.ttl_seconds {
            if ttl == 0 || ttl > MAX_TTL_SECONDS {
                return Err(format!(
                    "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}, got {ttl}"
                ));
            }
        }
        if self.max_rows.is_some_and(|n| !(1..=MAX_ROWS_LIMIT).contains(&n)) {
            return Err(format!("max_rows must be between 1 and {MAX_ROWS_LIMIT}"));
        }
        if self
            .max_cached_bytes
            .is_some_and(|n| !(1..=MAX_CACHED_BYTES_LIMIT).contains(&n))
        {
            return Err(format!(
                "max_cached_bytes must be between 1 and {MAX_CACHED_BYTES_LIMIT}"
            ));
        }
        if self
            .negative_ttl_seconds
            .is_some_and(|t| !(1..=MAX_TTL_SECONDS).contains(&t))
        {
            return Err(format!(
                "negative_ttl_seconds must be between 1 and {MAX_TTL_SECONDS}"
            ));
        }
        if self
            .origin_loads_per_second
            .is_some_and(|r| !(r.is_finite() && (0.001..=100_000.0).contains(&r)))
        {
            return Err("origin_loads_per_second must be between 0.001 and 100000".into());
        }
        if self.origin_burst.is_some_and(|b| !(1..=100_000).contains(&b)) {
            return Err("origin_burst must be between 1 and 100000".into());
        }
        if !(0.0..=10.0).contains(&self.early_refresh_beta) {
            return Err(format!(
                "early_refresh_beta must be between 0 and 10, got {}",
                self.early_refresh_beta
            ));
        }
        if self.stale_while_revalidate_seconds > MAX_TTL_SECONDS
            || self.stale_if_error_seconds > MAX_TTL_SECONDS
        {
            return Err(format!("stale windows must be at most {MAX_TTL_SECONDS} seconds"));
        }
        for tag in &self.tags {
            if !is_identifier(tag, 64) {
                return Err(format!("tag {tag:?} must be lower-case letters, digits or _"));
            }
        }
        let mut names = HashSet::new();
        for p in &self.params {
            if !is_identifier(&p.name, 64) {
                return Err(format!(
                    "parameter {:?} must be lower-case letters, digits or _",
                    p.name
                ));
            }
            if p.name == "source" {
                return Err("parameter name \"source\" is reserved for ?source=database".into());
            }
            if !names.insert(p.name.as_str()) {
                return Err(format!("parameter {:?} is declared twice", p.name));
            }
            if let Some(default) = &p.default {
                p.check(default).map_err(|e| format!("default of {e}"))?;
            }
            if p.min.into_iter().chain(p.max).any(|b| !b.is_finite()) {
                return Err(format!(
                    "parameter {:?}: min and max must be finite numbers",
                    p.name
                ));
            }
            if let (Some(min), Some(max)) = (p.min, p.max) {
                if min > max {
                    return Err(format!("parameter {:?}: min {min} is above max {max}", p.name));
                }
            }
            if let (Some(min), Some(max)) = (p.min_length, p.max_length) {
                if min > max {
                    return Err(format!(
                        "parameter {:?}: min_length {min} is above max_length {max}",
                        p.name
                    ));
                }
            }
            if (p.min.is_some() || p.max.is_some())
                && !matches!(p.kind, crate::ParamType::Int | crate::ParamType::Float)
            {
                return Err(format!(
                    "parameter {:?}: min/max apply to numbers, not {}",
                    p.name,
                    kind_name(p.kind)
                ));
            }
        }
        if let Some(unknown) = self
            .scope_params
            .iter()
            .find(|p| !self.params.iter().any(|s| &s.name == *p))
        {
            return Err(format!(
                "scope_params names {unknown:?}, which is not a parameter"
            ));
        }
        if !self.scope_columns.is_empty() && self.scope_params.len() != 1 {
            return Err(
                "scope_columns needs exactly one scope_params entry: the entity its columns name".into(),
            );
        }
        if let Some((table, _)) = self.scope_columns.iter().find(|(t, _)| !self.depends_on(t)) {
            return Err(format!(
                "scope_columns names table {table:?}, which is not one of its tags {:?}",
                self.tags
            ));
        }
        for (table, scope) in &self.scope_columns {
            if let ScopeColumn::Lookup { lookup, .. } = scope {
                if !takes_one_parameter(lookup) {
                    return Err(format!(
                        "scope_columns.{table}.lookup must take exactly one parameter ($1 or ?)"
                    ));
                }
                // Its tables must be this query's: a change to them reaches the query anyway,
                // so a lookup racing a later change never leaves an entity stale.
                let read = tables_read(lookup)
                    .map_err(|e| format!("scope_columns.{table}.lookup cannot be read: {e}"))?;
                if let Some(other) = read.iter().find(|t| !self.depends_on(t)) {
                    return Err(format!(
                        "scope_columns.{table}.lookup reads table {other:?}, which its tags {:?} do not declare",
                        self.tags
                    ));
                }
            }
        }
        if !is_identifier(&self.database, 64) {
            return Err(format!(
                "database {:?} must be lower-case letters, digits or _",
                self.database
            ));
        }
        check_placeholders(&self.sql, self.params.len())
    }
}

/// Whether `s` is a bare lower-case name of at most `max` bytes: a letter, then letters, digits
/// or `_` (query, tag, parameter, database and table names).
pub(crate) fn is_identifier(s: &str, max: usize) -> bool {
    s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use crate::catalog::tests::problem;
    use crate::{Catalog, CatalogError};

    #[test]
    fn scope_columns_name_tagged_tables_and_their_lookups_read_only_tags() {
        let q = |scope: &str| {
            format!(
                "[[query]]\nname = 's'\nsql = 'SELECT name FROM restaurants WHERE name = $1'\n\
                 tags = ['restaurants', 'reviews']\nscope_params = ['name']\nscope_columns = {{ {scope} }}\n\
                 [[query.params]]\nname = 'name'\ntype = 'string'\n"
            )
        };
        assert!(Catalog::from_toml(&q("restaurants = 'name'")).is_ok());
        assert!(Catalog::from_toml(&q(
            "reviews = { column = 'restaurant_id', lookup = 'SELECT name FROM restaurants WHERE id = $1::int' }"
        ))
        .is_ok());
        assert!(problem(&q("products = 'name'")).contains("scope_columns names table \"products\""));
        let other = problem(&q(
            "reviews = { column = 'restaurant_id', lookup = 'SELECT name FROM owners WHERE id = $1::int' }",
        ));
        assert!(other.contains("lookup reads table \"owners\""), "{other}");
        let two = problem(&q(
            "reviews = { column = 'restaurant_id', lookup = 'SELECT name FROM restaurants WHERE id = $1 AND city = $2' }",
        ));
        assert!(two.contains("exactly one parameter"), "{two}");
        let write = problem(&q(
            "reviews = { column = 'restaurant_id', lookup = 'DELETE FROM restaurants WHERE id = $1::int' }",
        ));
        assert!(write.contains("lookup cannot be read"), "{write}");
    }

    #[test]
    fn explains_what_is_wrong() {
        let q = |extra: &str| format!("[[query]]\nname = 'q'\nsql = 'select $1'\n{extra}");
        assert!(problem(&q("")).contains("placeholders [\"$1\"] but 0 parameter"));
        assert!(problem(&q("ttl_seconds = 0")).contains("ttl_seconds"));
        let p = "[[query.params]]\nname = 'n'\ntype = 'int'\nmin = 1\nmax = 5\ndefault = 9";
        assert!(problem(&q(p)).contains("default of parameter \"n\""));
        for (bounds, expected) in [
            ("min = nan", "finite"),
            ("max = inf", "finite"),
            ("min = -inf", "finite"),
            ("min = 5\nmax = 1", "min 5 is above max 1"),
        ] {
            let p = format!("[[query.params]]\nname = 'n'\ntype = 'float'\n{bounds}");
            assert!(
                problem(&q(&p)).contains(expected),
                "{bounds}: {}",
                problem(&q(&p))
            );
        }
        let lengths = "[[query.params]]\nname = 's'\ntype = 'string'\nmin_length = 9\nmax_length = 3";
        assert!(problem(&q(lengths)).contains("min_length 9 is above max_length 3"));
        let dup = "[[query]]\nname = 'a'\nsql = 'select 1'\n[[query]]\nname = 'a'\nsql = 'select 2'";
        assert_eq!(problem(dup), "a: declared twice");
        assert!(problem("[[query]]\nname = 'Bad Name'\nsql = 'select 1'").contains("name must be"));
        assert!(matches!(
            Catalog::from_toml("[[query]]\nname = 'a'\nsql = 1"),
            Err(CatalogError::Parse(_))
        ));
        assert!(matches!(
            Catalog::from_toml("[[query]]\nname='a'\nsql='x'\nsqll='y'"),
            Err(CatalogError::Parse(_))
        ));
    }
}
