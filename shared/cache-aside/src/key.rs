//! Redis key layout.
//!
//! ```text
//! {ns}:v<V>:{<kind>:<name>:g<gen>[.<gen>...]:<digest>}  a cached value, envelope format V
//! {ns}:lock<V>:{<kind>:<name>:g<gen>...:<digest>}      its fill lock (same slot as the value)
//! {ns}:gen:{<scope>}                                 a scope's generation counter
//! {ns}:obj:{<object key>}                            a cached object (hash: bytes, type)
//! {ns}:objfence:{<object key>}                       its fence, moved by every drop
//! ```
//! The braces are Redis Cluster hash tags: everything about one value (its fill lock included)
//! lives in one slot, and each generation counter in its own. The digest is a SHA-256 of the
//! canonical JSON of the typed parameters, never of SQL text.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{CacheError, ENVELOPE_VERSION};

const MAX_PART_LEN: usize = 128;

/// Rejects parts that would make keys ambiguous or break hash tags.
pub(crate) fn check_part(part: &str) -> Result<(), CacheError> {
    let reason = if part.is_empty() {
        Some("must not be empty")
    } else if part.len() > MAX_PART_LEN {
        Some("must be at most 128 bytes")
    } else if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'))
    {
        Some("may only hold ASCII letters, digits and _ - . : /")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CacheError::InvalidKey {
            part: part.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Hex SHA-256 (first 128 bits) of the canonical JSON of `params`.
///
/// Canonical: object keys sorted at every depth, no whitespace, values typed by the caller, so
/// `limit=20` and `limit=020` hash the same once parsed as integers.
pub fn params_digest<P: Serialize + ?Sized>(params: &P) -> Result<String, serde_json::Error> {
    let canonical = serde_json::to_vec(&sorted(serde_json::to_value(params)?))?;
    let digest = Sha256::digest(&canonical);
    Ok(hex::encode(&digest[..16]))
}

/// `value` with every object's keys in sorted order (maps keep insertion order otherwise).
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// What one cached value is, independent of generations: its family (`kind`, e.g. `q` for
/// named queries), its `name`, the digest of its parameters, and the scopes it depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryKey {
    kind: String,
    name: String,
    digest: String,
    scopes: Vec<String>,
}

impl EntryKey {
    /// Builds a key for `name` of family `kind` with typed `params`.
    pub fn new<P: Serialize + ?Sized>(kind: &str, name: &str, params: &P) -> Result<Self, CacheError> {
        check_part(kind)?;
        check_part(name)?;
        Ok(Self {
            kind: kind.to_owned(),
            name: name.to_owned(),
            digest: params_digest(params)?,
            scopes: Vec::new(),
        })
    }

    /// Adds a scope whose invalidation must drop this entry (e.g. `query:top_products`,
    /// `tag:products`). Order is kept; duplicates are ignored.
    pub fn with_scope(mut self, scope: &str) -> Result<Self, CacheError> {
        check_part(scope)?;
        if !self.scopes.iter().any(|s| s == scope) {
            self.scopes.push(scope.to_owned());
        }
        Ok(self)
    }

    /// [`Self::with_scope`] for each of `scopes`.
    pub fn with_scopes<S: AsRef<str>>(self, scopes: impl IntoIterator<Item = S>) -> Result<Self, CacheError> {
        scopes
            .into_iter()
            .try_fold(self, |entry, scope| entry.with_scope(scope.as_ref()))
    }

    /// The scopes, in the order given.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The parameter digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Kind, name and digest: the entry whatever its scopes' generations.
    pub fn identity(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.digest)
    }
}

/// Turns entries and scopes into Redis keys under one namespace.
#[derive(Debug, Clone)]
pub struct KeySpace {
    namespace: String,
}

impl KeySpace {
    /// A key space under `namespace`.
    pub fn new(namespace: &str) -> Result<Self, CacheError> {
        check_part(namespace)?;
        Ok(Self {
            namespace: namespace.to_owned(),
        })
    }

    /// The hash tag shared by an entry's value and lock at these generations.
    fn entry_tag(entry: &EntryKey, generations: &[u64]) -> String {
        let gens: Vec<String> = generations.iter().map(u64::to_string).collect();
        format!(
            "{{{}:{}:g{}:{}}}",
            entry.kind,
            entry.name,
            gens.join("."),
            entry.digest
        )
    }

    /// The Redis key of `entry` at the given generations (one per scope, same order). The
    /// envelope format version is part of it, so two deployed versions never share an entry.
    pub fn value_key(&self, entry: &EntryKey, generations: &[u64]) -> String {
        format!(
            "{}:v{ENVELOPE_VERSION}:{}",
            self.namespace,
            Self::entry_tag(entry, generations)
        )
    }

    /// The fill lock of `entry` at these generations: same hash tag, so same slot, as the value.
    pub fn lock_key(&self, entry: &EntryKey, generations: &[u64]) -> String {
        format!(
            "{}:lock{ENVELOPE_VERSION}:{}",
            self.namespace,
            Self::entry_tag(entry, generations)
        )
    }

    /// The Redis key of cached object `key` (an S3 key). Hash-tagged, so anything kept per
    /// object later shares its slot.
    pub fn object_key(&self, key: &str) -> String {
        format!("{}:obj:{{{}}}", self.namespace, key)
    }

    /// The fence counter of cached object `key`: same hash tag, so same slot, as the object.
    pub fn object_fence_key(&self, key: &str) -> String {
        format!("{}:objfence:{{{}}}", self.namespace, key)
    }

    /// The fleet-wide token bucket `name` (see [`crate::RateLimit`]), in a hash slot of its own.
    pub fn rate_key(&self, name: &str) -> String {
        format!("{}:rate:{{{}}}", self.namespace, name)
    }

    /// The holder of fleet-wide lease `name` (see [`crate::Lease`]); its fence counter and its
    /// mark share the hash tag, so one script can check all three on a cluster.
    pub fn lease_keys(&self, name: &str) -> [String; 3] {
        let base = format!("{}:lease:{{{}}}", self.namespace, name);
        [base.clone(), format!("{base}:fence"), format!("{base}:mark")]
    }

    /// The Redis key of a scope's generation counter.
    pub fn generation_key(&self, scope: &str) -> String {
        format!("{}:gen:{{{}}}", self.namespace, scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn digest_is_canonical_and_sensitive() {
        let mut a = BTreeMap::new();
        a.insert("limit", serde_json::json!(20));
        a.insert("category", serde_json::json!("tools"));
        let b = serde_json::json!({"category": "tools", "limit": 20});
        assert_eq!(params_digest(&a).unwrap(), params_digest(&b).unwrap());
        let c = serde_json::json!({"category": "tools", "limit": 21});
        assert_ne!(params_digest(&b).unwrap(), params_digest(&c).unwrap());
        let as_text = serde_json::json!({"category": "tools", "limit": "20"});
        assert_ne!(params_digest(&b).unwrap(), params_digest(&as_text).unwrap());
        assert_eq!(params_digest(&b).unwrap().len(), 32);
    }

    #[test]
    fn keys_have_hash_tags_and_generations() {
        let ks = KeySpace::new("app").unwrap();
        let e = EntryKey::new("q", "top", &serde_json::json!({}))
            .unwrap()
            .with_scope("query:top")
            .unwrap()
            .with_scope("tag:products")
            .unwrap()
            .with_scope("tag:products")
            .unwrap();
        assert_eq!(e.scopes(), ["query:top", "tag:products"]);
        let k = ks.value_key(&e, &[7, 9]);
        assert_eq!(k, format!("app:v1:{{q:top:g7.9:{}}}", e.digest()));
        assert_ne!(k, ks.value_key(&e, &[8, 9]));
        assert_eq!(ks.generation_key("tag:products"), "app:gen:{tag:products}");
        assert_eq!(ks.object_key("docs/a b.txt"), "app:obj:{docs/a b.txt}");
        assert_eq!(
            ks.lock_key(&e, &[7, 9]),
            format!("app:lock1:{{q:top:g7.9:{}}}", e.digest())
        );
    }

    #[test]
    fn rejects_bad_parts() {
        assert!(KeySpace::new("").is_err());
        assert!(KeySpace::new("has space").is_err());
        assert!(EntryKey::new("q", "a{b}", &()).is_err());
        assert!(EntryKey::new("q", &"x".repeat(129), &()).is_err());
        assert!(EntryKey::new("q", "ok", &()).unwrap().with_scope("").is_err());
    }
}
