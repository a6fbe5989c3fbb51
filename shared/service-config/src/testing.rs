//! What the tests of every module start from: a variable map, and the two variables a function
//! cannot start without.

use std::collections::HashMap;

/// `pairs` as the variable map `from_map` takes.
pub(crate) fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Redis and the `main` database, both without TLS.
pub(crate) const BASE: [(&str, &str); 2] = [
    ("REDIS_URL", "redis://:pw@127.0.0.1:1"),
    ("DATABASE_URL", "postgres://u:db-pass-value@h/db"),
];
