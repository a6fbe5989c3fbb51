//! Invalidation scopes: the names under which cached results are dropped together (every result
//! of a query, of a data tag, of one entity), and the scopes each query's results belong to.

use crate::{NamedQuery, ParamValue, ResolvedParams};

/// The invalidation scope every result of query `name` belongs to.
pub fn query_scope(name: &str) -> String {
    format!("query:{name}")
}

/// The scope of the entity named by `value` of parameter `param` of `query`. Values may hold
/// any text, so they are hashed into the scope name.
pub fn entity_scope(query: &str, param: &str, value: &ParamValue) -> String {
    use sha2::Digest;
    let canonical = serde_json::to_vec(value).unwrap_or_default();
    let digest = sha2::Sha256::digest(&canonical);
    format!("entity:{query}:{param}:{}", hex::encode(&digest[..8]))
}

/// The invalidation scope of data tag `tag` (usually a table).
pub fn tag_scope(tag: &str) -> String {
    format!("tag:{tag}")
}

impl NamedQuery {
    /// The scopes whose invalidation drops this query's cached results: its own, then its tags'.
    pub fn scopes(&self) -> Vec<String> {
        std::iter::once(query_scope(&self.name))
            .chain(self.tags.iter().map(|t| tag_scope(t)))
            .collect()
    }

    /// [`Self::scopes`] plus one entity scope per `scope_params` entry, for these parameters.
    pub fn scopes_for(&self, params: &ResolvedParams) -> Vec<String> {
        let mut scopes = self.scopes();
        for param in &self.scope_params {
            if let Some(value) = params.as_map().get(param.as_str()) {
                scopes.push(entity_scope(&self.name, param, value));
            }
        }
        scopes
    }
}
