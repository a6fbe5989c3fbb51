//! Path routing. Methods are checked by the caller so a known path with a wrong method is 405.

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/health`
    Health,
    /// `/queries`
    Catalog,
    /// `/queries/{name}`
    Query(String),
    /// `/cache/queries/{name}`
    QueryCache(String),
    /// Anything else.
    NotFound,
}

/// Routes `path`; a trailing slash is tolerated, empty segments are not.
pub(crate) fn route(path: &str) -> Route {
    let trimmed = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let segments: Vec<&str> = trimmed.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["health"] => Route::Health,
        ["queries"] => Route::Catalog,
        ["queries", name] if !name.is_empty() => Route::Query((*name).to_owned()),
        ["cache", "queries", name] if !name.is_empty() => Route::QueryCache((*name).to_owned()),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_paths() {
        assert_eq!(route("/health"), Route::Health);
        assert_eq!(route("/queries/"), Route::Catalog);
        assert_eq!(
            route("/queries/slow_version"),
            Route::Query("slow_version".into())
        );
        assert_eq!(route("/cache/queries/x"), Route::QueryCache("x".into()));
        for p in ["/", "", "/queries//", "/queries/a/b", "/cache/queries", "/nope"] {
            assert_eq!(route(p), Route::NotFound, "{p}");
        }
    }
}
