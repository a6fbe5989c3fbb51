//! `GET /queries` (the catalog) and `GET /queries/{name}` (a named query through the cache).

use std::time::Instant;

use lambda_http::{Body, Request, RequestExt, Response};
use use_cases::{Clients, QueryAnswer};

use crate::http::{html_response, json_response, wants_html, Answer};
use crate::pages;
use crate::query_body::QueryResponse;
use crate::{ApiError, App};

/// `GET /queries`: every query with its parameters, tags, the tables its SQL reads (`tables`,
/// derived at load time) and effective TTL (never its SQL).
pub(crate) fn list(clients: &Clients) -> Response<Body> {
    let default_ttl = clients.cache().settings().default_ttl.as_secs();
    let queries: Vec<serde_json::Value> = clients
        .catalog()
        .queries()
        .iter()
        .map(|q| {
            let mut v = serde_json::to_value(q).unwrap_or_default();
            v["ttl_seconds"] = q.ttl_seconds.unwrap_or(default_ttl).into();
            v
        })
        .collect();
    json_response(200, serde_json::json!({ "queries": queries }).to_string())
}

/// `GET /queries/{name}?p=v...`: the rows, where they came from and how fresh they are; for a
/// browser, the same answer as a page (see [`crate::pages`]), rendered from the same typed
/// answer.
pub(crate) async fn run(app: &App, name: &str, req: &Request) -> Result<Answer, ApiError> {
    let started = Instant::now();
    let html = wants_html(req);
    let query = match html {
        true => Some(app.clients().named_query(name)?),
        false => None,
    };
    let answered = answer(app, name, req).await;
    let body = answered
        .as_ref()
        .map(|answer| QueryResponse::of(answer, started.elapsed()));
    let Some(query) = query else {
        let body = body.map_err(Clone::clone)?;
        let text = serde_json::to_string(&body).map_err(|e| ApiError::internal(&e))?;
        let answer = answered.as_ref().map_err(Clone::clone)?;
        return Ok(cached(json_response(200, text), answer));
    };
    let given = req
        .query_string_parameters()
        .iter()
        .filter(|(key, _)| *key != "source")
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let run = pages::Run {
        answer: body.as_ref().map_err(|e| *e),
        given,
        bypass_allowed: app.bypass_allowed(),
    };
    let page = pages::query(query, &run);
    Ok(match &answered {
        Ok(answer) => cached(html_response(200, page), answer),
        Err(e) => html_response(e.status.as_u16(), page).into(),
    })
}

/// Runs the named query as `req` asks.
async fn answer<'a>(app: &'a App, name: &str, req: &Request) -> Result<QueryAnswer<'a>, ApiError> {
    let read = app.read(req, "database")?;
    let query_map = req.query_string_parameters();
    let given = query_map.iter().filter(|(key, _)| *key != "source");
    Ok(app.clients().run_named_query(name, given, read).await?)
}

/// `response` with the answer's cache state, and the skipped-store mark when it was too large.
fn cached(mut response: Response<Body>, answer: &QueryAnswer) -> Answer {
    if answer.lookup.too_large_to_store {
        response.headers_mut().insert(
            "x-cache-skipped",
            lambda_http::http::HeaderValue::from_static("too-large"),
        );
    }
    Answer::cached(response, answer.lookup.state)
}
