//! The demo pages: server-rendered HTML views of the same answers the JSON API gives, as the
//! MySQL database-caching demo shows them (rows, run time, hit or miss, TTL left, and the
//! "query the database directly" and "delete cached entry" actions). No build step, no
//! framework: a little CSS and one `fetch` for the delete. Every value from the database or the
//! request is HTML-escaped. Links are relative, so the pages work under an API Gateway stage.

use std::fmt::Write;

use serde_json::Value;
use use_cases::{Catalog, NamedQuery};

use crate::query_body::QueryResponse;
use crate::ApiError;

/// `text` with `& < > " '` escaped: safe in element content and in quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}\
table{border-collapse:collapse;margin-top:1rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;\
text-align:left;vertical-align:top}th{background:#f3f3f3}.badge{padding:.1rem .5rem;border-radius:.3rem;\
font-weight:bold;color:#fff}.hit{background:#2a7}.miss{background:#c63}.stale{background:#a80}\
.bypass{background:#558}.error{color:#b00}form{margin:1rem 0}label{margin-right:1rem}\
.facts span{margin-right:1.5rem}button,.button{margin-right:.5rem}";

/// The one script of the pages: the delete button. Fixed text (the query name comes from a
/// data attribute), so the Content-Security-Policy allows it by its hash and nothing else runs.
const DELETE_SCRIPT: &str = "document.getElementById('delete').addEventListener('click',function(){\
fetch('../cache/queries/'+encodeURIComponent(this.dataset.query),{method:'DELETE'}).then(function(r){\
if(r.ok){location.reload()}else{document.getElementById('outcome').textContent='delete refused: '+r.status}})})";

/// The pages' Content-Security-Policy: nothing loads or runs but the page's own style and its
/// one script (by hash); no framing, forms post only to this API, no `<base>` rewriting.
pub(crate) fn content_security_policy() -> &'static str {
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        format!(
            "default-src 'none'; style-src '{}'; script-src '{}'; connect-src 'self'; img-src 'self'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            csp_hash(STYLE),
            csp_hash(DELETE_SCRIPT)
        )
    })
}

/// A CSP source expression allowing exactly `text` inline: `sha256-<base64 of its digest>`.
fn csp_hash(text: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

/// `GET /`: the catalog, one link per query.
pub(crate) fn index(catalog: &Catalog) -> String {
    let mut body = String::from(
        "<h1>Cache-aside demo</h1><p>Named queries through Redis. Each page runs its query, shows \
         whether the rows came from the cache or the database, and lets you read the database \
         directly or delete the cached entry.</p><ul>",
    );
    for q in catalog.queries() {
        let _ = write!(
            body,
            "<li><a href=\"queries/{0}\">{0}</a> — {1}</li>",
            escape(&q.name),
            escape(&q.description)
        );
    }
    body.push_str("</ul><p><a href=\"openapi.json\">OpenAPI description</a></p>");
    page("Cache-aside demo", &body)
}

/// What a query page shows about one run.
pub(crate) struct Run<'a> {
    /// The answer, as the JSON route would give it.
    pub answer: Result<&'a QueryResponse<'a>, &'a ApiError>,
    /// The parameters as the request gave them (source excluded).
    pub given: Vec<(String, String)>,
    /// Whether `?source=database` is allowed.
    pub bypass_allowed: bool,
}

/// `GET /queries/{name}` for a browser: the form, the facts of the run and the rows.
pub(crate) fn query(query: &NamedQuery, run: &Run) -> String {
    let name = escape(&query.name);
    let mut body = format!(
        "<p><a href=\"../\">All queries</a></p><h1>{name}</h1><p>{}</p><form method=\"get\" action=\"{name}\">",
        escape(&query.description)
    );
    for param in &query.params {
        let value = run
            .given
            .iter()
            .find(|(k, _)| *k == param.name)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                param
                    .default
                    .as_ref()
                    .map(|d| serde_json::to_string(d).unwrap_or_default())
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<label>{0} <input name=\"{0}\" value=\"{1}\"></label>",
            escape(&param.name),
            escape(value.trim_matches('"'))
        );
    }
    body.push_str("<button id=\"run\" type=\"submit\">Run</button></form>");
    let query_string: String = run
        .given
        .iter()
        .map(|(k, v)| format!("{}={}&", urlencode(k), urlencode(v)))
        .collect();
    if run.bypass_allowed {
        let _ = write!(
            body,
            "<a class=\"button\" id=\"direct\" href=\"{name}?{}source=database\">Query the database directly</a>",
            escape(&query_string)
        );
    } else {
        body.push_str("<span>Reading the database directly is off here (CACHE_PUBLIC_BYPASS).</span> ");
    }
    let _ = write!(
        body,
        "<button id=\"delete\" type=\"button\" data-query=\"{name}\">Delete cached entry</button>\
         <p id=\"outcome\"></p><script>{DELETE_SCRIPT}</script>"
    );
    match run.answer {
        Ok(answer) => body.push_str(&facts_and_rows(answer)),
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"error\" id=\"error\">{}: {}</p>",
                escape(e.code),
                escape(&e.message)
            );
        }
    }
    page(&query.name, &body)
}

/// The run's facts (cache state, times, TTL) and its rows as a table.
fn facts_and_rows(answer: &QueryResponse) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    };
    let ttl = answer.ttl_seconds.map_or("—".to_owned(), |s| format!("{s} s"));
    let mut out = format!(
        "<p class=\"facts\"><span>Came from: <b class=\"badge {0}\" id=\"cache\">{0}</b></span>\
         <span>Run time: <b id=\"elapsed\">{1} ms</b></span><span>TTL left: <b id=\"ttl\">{2}</b></span>\
         <span>Load time: <b>{3} ms</b></span><span>Loaded at: {4}</span><span>Rows: {5}</span></p>",
        escape(answer.cache),
        answer.elapsed_ms,
        escape(&ttl),
        answer.load_ms,
        escape(&answer.loaded_at),
        answer.row_count,
    );
    // The rows are one raw JSON value; the table needs them as values.
    let rows: Vec<Value> = serde_json::from_str(answer.rows.get()).unwrap_or_default();
    let columns: Vec<&String> = rows
        .first()
        .and_then(Value::as_object)
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    out.push_str("<table id=\"rows\"><tr>");
    for c in &columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr>");
    for row in &rows {
        out.push_str("<tr>");
        for c in &columns {
            let _ = write!(out, "<td>{}</td>", escape(&text(&row[c.as_str()])));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

/// Percent-encodes a query-string component.
fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;"
        );
        let rows = serde_json::value::to_raw_value(&serde_json::json!([
            {"<b>col</b>": "<script>alert(1)</script>"}
        ]))
        .unwrap();
        let answer = QueryResponse {
            query: "q",
            params: Default::default(),
            rows: &rows,
            row_count: 1,
            cache: "miss",
            tier: None,
            bypass_reason: None,
            cache_skipped: None,
            elapsed_ms: 1.5,
            ttl_seconds: Some(60),
            loaded_at: "<now>".into(),
            load_ms: 1.0,
        };
        let html = facts_and_rows(&answer);
        assert!(html.contains("&lt;now&gt;"), "{html}");
        assert!(!html.contains("<script>") && !html.contains("<b>col"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
