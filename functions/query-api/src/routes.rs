//! Path routing: what a path addresses and which method it takes, so a known path with a
//! wrong method is a 405, not a 404.

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/`: the demo pages' index.
    Index,
    /// `/health`
    Health,
    /// `/cache/health`: the detailed health (admin).
    HealthDetail,
    /// `/openapi.json`
    OpenApi,
    /// `/queries`
    Catalog,
    /// `/queries/{name}`
    Query(String),
    /// `/cache/queries/{name}`
    QueryCache(String),
    /// `/cache/tags/{tag}`
    TagCache(String),
    /// `/restaurants/{name}/summary`
    RestaurantSummary(String),
    /// `/restaurants/{name}/reviews`
    RestaurantReviews(String),
    /// `/objects/{key}` (the key may hold `/`; percent-decoded).
    Object(String),
    /// `/objects/...` with a key that cannot be an object key.
    BadObjectKey(String),
    /// Anything else.
    NotFound,
}

/// Routes `path`; a trailing slash is tolerated, empty segments are not.
pub(crate) fn route(path: &str) -> Route {
    if let Some(raw) = path.strip_prefix("/objects/") {
        return match object_key(raw) {
            Ok(key) => Route::Object(key),
            Err(problem) => Route::BadObjectKey(problem),
        };
    }
    let trimmed = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    if trimmed == "/" {
        return Route::Index;
    }
    // One leading slash: `//cache/health` is no admin route (API Gateway may have routed it
    // as a public path).
    let segments: Vec<&str> = trimmed.strip_prefix('/').unwrap_or(trimmed).split('/').collect();
    match segments.as_slice() {
        ["health"] => Route::Health,
        ["cache", "health"] => Route::HealthDetail,
        ["openapi.json"] => Route::OpenApi,
        ["queries"] => Route::Catalog,
        ["queries", name] if !name.is_empty() => Route::Query((*name).to_owned()),
        ["cache", "queries", name] if !name.is_empty() => Route::QueryCache((*name).to_owned()),
        ["cache", "tags", tag] if !tag.is_empty() => Route::TagCache((*tag).to_owned()),
        ["restaurants", name, what @ ("summary" | "reviews")] if !name.is_empty() => {
            match percent_encoding::percent_decode_str(name).decode_utf8() {
                Ok(name) if *what == "summary" => Route::RestaurantSummary(name.into_owned()),
                Ok(name) => Route::RestaurantReviews(name.into_owned()),
                Err(_) => Route::NotFound,
            }
        }
        _ => Route::NotFound,
    }
}

/// Longest S3 key.
const MAX_KEY_BYTES: usize = 1024;

/// Percent-decodes and validates an object key: 1-1024 bytes of UTF-8, no control characters,
/// no empty, `.` or `..` segments.
fn object_key(raw: &str) -> Result<String, String> {
    let key = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "the key is not valid UTF-8".to_owned())?;
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("the key is {} bytes; at most {MAX_KEY_BYTES}", key.len()));
    }
    if key.chars().any(char::is_control) {
        return Err("the key contains control characters".into());
    }
    if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err("the key has an empty, . or .. segment".into());
    }
    Ok(key.into_owned())
}

impl Route {
    /// The one method the route answers (`None`: any method gets the route's error).
    pub(crate) fn method(&self) -> Option<&'static str> {
        match self {
            Self::Index
            | Self::Health
            | Self::HealthDetail
            | Self::OpenApi
            | Self::Catalog
            | Self::Query(_)
            | Self::RestaurantSummary(_)
            | Self::Object(_) => Some("GET"),
            Self::RestaurantReviews(_) => Some("POST"),
            Self::QueryCache(_) | Self::TagCache(_) => Some("DELETE"),
            Self::BadObjectKey(_) | Self::NotFound => None,
        }
    }

    /// A low-cardinality name for logs and metric dimensions (never the key or query name).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Index => "index",
            Self::Health | Self::HealthDetail => "health",
            Self::OpenApi => "openapi",
            Self::Catalog => "catalog",
            Self::Query(_) => "query",
            Self::QueryCache(_) | Self::TagCache(_) => "invalidate",
            Self::RestaurantSummary(_) => "restaurant_summary",
            Self::RestaurantReviews(_) => "restaurant_review",
            Self::Object(_) | Self::BadObjectKey(_) => "object",
            Self::NotFound => "not_found",
        }
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
        assert_eq!(route("/cache/tags/products"), Route::TagCache("products".into()));
        assert_eq!(
            route("/restaurants/Blue%20Fig/summary"),
            Route::RestaurantSummary("Blue Fig".into())
        );
        assert_eq!(
            route("/restaurants/Saffron/reviews"),
            Route::RestaurantReviews("Saffron".into())
        );
        assert_eq!(
            route("/objects/filename1.txt"),
            Route::Object("filename1.txt".into())
        );
        assert_eq!(route("/objects/a/b%20c.txt"), Route::Object("a/b c.txt".into()));
        for bad in [
            "/objects/",
            "/objects/a//b",
            "/objects/../x",
            "/objects/%00",
            "/objects/%ff",
        ] {
            assert!(matches!(route(bad), Route::BadObjectKey(_)), "{bad}");
        }
        assert!(matches!(
            route(&format!("/objects/{}", "k".repeat(1025))),
            Route::BadObjectKey(_)
        ));
        assert_eq!(route("/"), Route::Index);
        for p in [
            "",
            "/queries//",
            "/queries/a/b",
            "/cache/queries",
            "/nope",
            "//cache/health",
            "//cache/queries/x",
        ] {
            assert_eq!(route(p), Route::NotFound, "{p}");
        }
    }
}
