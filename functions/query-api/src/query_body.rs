//! The typed answer of `GET /queries/{name}`: serialized for the JSON route, rendered as is by
//! the page of the same route.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use use_cases::{ParamValue, QueryAnswer};

use crate::http::{iso8601, millis};

/// Body of `GET /queries/{name}`, and what its page shows.
#[derive(Serialize)]
pub(crate) struct QueryResponse<'a> {
    pub(crate) query: &'a str,
    pub(crate) params: BTreeMap<&'a str, &'a ParamValue>,
    pub(crate) rows: &'a RawValue,
    pub(crate) row_count: usize,
    pub(crate) cache: &'static str,
    /// Where a hit came from: `memory` (this instance) or `redis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tier: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bypass_reason: Option<&'static str>,
    /// `too_large` when the result was served but not cached (over the query's byte limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cache_skipped: Option<&'static str>,
    pub(crate) elapsed_ms: f64,
    pub(crate) ttl_seconds: Option<u64>,
    pub(crate) loaded_at: String,
    pub(crate) load_ms: f64,
}

impl<'a> QueryResponse<'a> {
    /// The body of `answer`, which took `elapsed` to get.
    pub(crate) fn of(answer: &'a QueryAnswer, elapsed: std::time::Duration) -> Self {
        let lookup = &answer.lookup;
        Self {
            query: &answer.query.name,
            params: answer.params.as_map(),
            rows: &lookup.value.rows,
            row_count: lookup.value.row_count,
            cache: lookup.state.as_str(),
            tier: lookup.tier(),
            bypass_reason: lookup.bypass_reason.map(|r| r.as_str()),
            cache_skipped: lookup.too_large_to_store.then_some("too_large"),
            elapsed_ms: millis(elapsed),
            ttl_seconds: lookup.ttl_seconds(),
            loaded_at: iso8601(lookup.loaded_at_ms),
            load_ms: millis(lookup.load_duration),
        }
    }
}
