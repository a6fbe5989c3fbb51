//! Request and response helpers every route shares: the read mode a request asks for, JSON
//! bodies, the `X-Cache` header, times as clients see them.

use std::time::Duration;

use lambda_http::http::{HeaderMap, HeaderValue};
use lambda_http::{Body, Request, RequestExt, Response};
use use_cases::{unix_now_ms, CacheState, Read, ReadMode};

use crate::ApiError;

/// How the request wants the cache used: `?source=<origin>` reads the origin and leaves the
/// cache alone (`origin` is `database` or `s3`), `?source=cache` is the default, and
/// `Cache-Control: no-cache` reads the origin and refreshes the cache. Any other `source` is
/// refused. Unless `bypass_allowed`, a bypass is refused (403) and `no-cache` (which browsers
/// send on a hard reload) is served from the cache: neither may push load onto the origin.
pub(crate) fn read_mode(
    req: &Request,
    origin: &'static str,
    bypass_allowed: bool,
) -> Result<ReadMode, ApiError> {
    let mode = match req.query_string_parameters_ref().and_then(|q| q.first("source")) {
        Some(s) if s == origin => ReadMode::Bypass,
        None | Some("cache") if wants_refresh(req.headers()) => ReadMode::Refresh,
        None | Some("cache") => ReadMode::Cached,
        Some(_) => {
            return Err(ApiError::bad_parameter(
                "source",
                &format!("must be {origin} or cache"),
            ))
        }
    };
    match mode {
        ReadMode::Bypass if !bypass_allowed => Err(ApiError::bypass_not_allowed(origin)),
        ReadMode::Refresh if !bypass_allowed => Ok(ReadMode::Cached),
        mode => Ok(mode),
    }
}

/// The read a request asks for ([`read_mode`]), due at its invocation's deadline.
pub(crate) fn read(req: &Request, origin: &'static str, bypass_allowed: bool) -> Result<Read, ApiError> {
    Ok(Read::until(
        read_mode(req, origin, bypass_allowed)?,
        deadline(req),
    ))
}

/// When the Lambda invocation ends (`None` outside Lambda, or when the runtime gives none). A
/// deadline already past when the request arrives is not one a real invocation has: it is
/// ignored (and logged) rather than failing every load at once.
pub(crate) fn deadline(req: &Request) -> Option<tokio::time::Instant> {
    let deadline_ms = req.lambda_context_ref()?.deadline;
    let now_ms = unix_now_ms();
    if deadline_ms <= now_ms {
        tracing::warn!(
            deadline_ms,
            now_ms,
            "the invocation's deadline is already past; ignoring it"
        );
        return None;
    }
    tracing::debug!(budget_ms = deadline_ms - now_ms, "invocation deadline");
    Some(tokio::time::Instant::now() + Duration::from_millis(deadline_ms - now_ms))
}

fn wants_refresh(headers: &HeaderMap) -> bool {
    headers.get_all("cache-control").iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|d| d.trim().eq_ignore_ascii_case("no-cache")))
            .unwrap_or(false)
    })
}

/// A text response of `content_type`, never type-sniffed by a browser.
fn text_response(status: u16, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-content-type-options", "nosniff")
        .body(Body::Text(body))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// A permanent redirect of a path with a trailing slash to the path without it, so a page's
/// relative links resolve as they should. The target is relative (`../<last segment>`), so it
/// stays right under an API Gateway stage prefix; the query string is kept.
pub(crate) fn without_trailing_slash(path: &str, query: &str) -> Option<Response<Body>> {
    // One trailing slash only: `../<last>` resolves against its directory; `//` is no route.
    let trimmed = path.strip_suffix('/')?;
    if trimmed.is_empty() || trimmed.ends_with('/') || path.starts_with("/objects/") {
        return None;
    }
    let last = trimmed.rsplit('/').next().unwrap_or_default();
    let mut location = format!("../{last}");
    if !query.is_empty() {
        location.push('?');
        location.push_str(query);
    }
    Response::builder()
        .status(308)
        .header("location", location)
        .header("x-content-type-options", "nosniff")
        .body(Body::Empty)
        .ok()
}

/// A JSON response.
pub(crate) fn json_response(status: u16, body: String) -> Response<Body> {
    text_response(status, "application/json", body)
}

/// Whether the client is a browser asking for a page: the first type it accepts is HTML.
/// API clients (`application/json`, `*/*`, none) keep getting JSON.
pub(crate) fn wants_html(req: &Request) -> bool {
    req.headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| first.trim().starts_with("text/html"))
}

/// An HTML response, with the headers that keep a page from being framed, from running
/// anything but its own script, and from leaking its URL to other sites.
pub(crate) fn html_response(status: u16, body: String) -> Response<Body> {
    let mut response = text_response(status, "text/html; charset=utf-8", body);
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(crate::pages::content_security_policy()),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    response
}

/// A handler's answer: the response, and where a cached read took it from. The state travels
/// typed to the request log and the metrics; the `X-Cache` header is written from it, never
/// read back.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) response: Response<Body>,
    pub(crate) cache: Option<CacheState>,
}

impl Answer {
    /// `response` as answered by a cached read in `state`, with `X-Cache` set to match (`HIT`,
    /// `MISS`, `STALE`, `BYPASS`).
    pub(crate) fn cached(mut response: Response<Body>, state: CacheState) -> Self {
        response.headers_mut().insert(
            "x-cache",
            lambda_http::http::HeaderValue::from_static(state.header_value()),
        );
        Self {
            response,
            cache: Some(state),
        }
    }
}

impl From<Response<Body>> for Answer {
    /// A response no cached read made.
    fn from(response: Response<Body>) -> Self {
        Self {
            response,
            cache: None,
        }
    }
}

/// Milliseconds with µs precision, as JSON bodies report durations.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// A Unix time in ms as RFC 3339 UTC.
pub(crate) fn iso8601(unix_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The request path without an API Gateway stage prefix (`/prod/queries/x` -> `/queries/x`).
pub(crate) fn request_path(req: &Request) -> String {
    let raw = req.raw_http_path();
    let path = if raw.is_empty() { req.uri().path() } else { raw };
    let stage = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.stage.clone(),
        _ => None,
    };
    if let Some(stage) = stage.filter(|s| s != "$default") {
        let prefix = format!("/{stage}");
        if let Some(rest) = path.strip_prefix(&prefix) {
            if rest.starts_with('/') {
                return rest.to_owned();
            }
        }
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::Request as HttpRequest;
    use std::collections::HashMap;

    fn request(query: &[(&str, &str)], cache_control: Option<&str>) -> Request {
        let mut builder = HttpRequest::builder().uri("/queries/x");
        if let Some(value) = cache_control {
            builder = builder.header("cache-control", value);
        }
        let params: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        builder
            .body(Body::Empty)
            .unwrap()
            .with_query_string_parameters(params)
    }

    #[test]
    fn without_the_switch_the_public_cannot_bypass_or_force_a_refresh() {
        let mode = |q: &[(&str, &str)], cc| read_mode(&request(q, cc), "database", false);
        assert_eq!(mode(&[], Some("no-cache")), Ok(ReadMode::Cached));
        let refused = mode(&[("source", "database")], None).unwrap_err();
        assert_eq!(
            (refused.status.as_u16(), refused.code),
            (403, "bypass_not_allowed")
        );
        assert_eq!(
            mode(&[("source", "nope")], None).unwrap_err().code,
            "bad_parameter"
        );
    }

    #[test]
    fn deadlines_come_from_the_invocation() {
        assert!(deadline(&request(&[], None)).is_none());
        let mut past = lambda_http::lambda_runtime::Context::default();
        past.deadline = unix_now_ms() - 1;
        assert!(deadline(&request(&[], None).with_lambda_context(past)).is_none());
        let mut context = lambda_http::lambda_runtime::Context::default();
        context.deadline = unix_now_ms() + 2_000;
        let req = request(&[], None).with_lambda_context(context);
        let left = deadline(&req).unwrap() - tokio::time::Instant::now();
        assert!(
            left > Duration::from_millis(1_500) && left <= Duration::from_millis(2_000),
            "{left:?}"
        );
    }

    #[test]
    fn source_and_cache_control_pick_the_read_mode() {
        let mode = |q: &[(&str, &str)], cc| read_mode(&request(q, cc), "database", true);
        assert_eq!(mode(&[], None), Ok(ReadMode::Cached));
        assert_eq!(mode(&[("source", "cache")], None), Ok(ReadMode::Cached));
        assert_eq!(mode(&[("source", "database")], None), Ok(ReadMode::Bypass));
        assert_eq!(mode(&[], Some("max-age=0, No-Cache")), Ok(ReadMode::Refresh));
        assert_eq!(
            mode(&[("source", "database")], Some("no-cache")),
            Ok(ReadMode::Bypass)
        );
        let refused = mode(&[("source", "s3")], None).unwrap_err();
        assert_eq!((refused.status.as_u16(), refused.code), (400, "bad_parameter"));
        assert!(
            refused.message.contains("database or cache"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn cache_state_header_and_times() {
        let answer = Answer::cached(json_response(200, "{}".into()), CacheState::Stale);
        assert_eq!(answer.response.headers()["x-cache"], "STALE");
        assert_eq!(answer.cache, Some(CacheState::Stale));
        assert_eq!(answer.response.headers()["content-type"], "application/json");
        assert_eq!(millis(Duration::from_micros(1_234_567)), 1234.567);
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn one_trailing_slash_redirects_relative_to_the_page() {
        let location = |path: &str, query: &str| {
            without_trailing_slash(path, query).map(|r| {
                assert_eq!(r.status(), 308);
                r.headers()["location"].to_str().unwrap().to_owned()
            })
        };
        assert_eq!(
            location("/queries/product/", "id=2").as_deref(),
            Some("../product?id=2")
        );
        assert_eq!(location("/queries/", "").as_deref(), Some("../queries"));
        for kept in ["/", "/queries", "/queries//", "/objects/dir/"] {
            assert_eq!(location(kept, ""), None, "{kept}");
        }
    }
}
