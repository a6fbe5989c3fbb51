//! The table's key layout. Every item of a restaurant shares its partition; the sort key says
//! what the item is.

/// The table's key schema, in `CreateTable`'s shape (`KeySchema`, `AttributeDefinitions`): the
/// one definition of the key attributes. `scripts/dynamodb_local.py` creates its table from it,
/// the integration suite checks template.yaml's table against it, and a test below checks the
/// constants that follow.
pub const KEY_SCHEMA: &str = include_str!("../key-schema.json");

/// Partition key attribute (the `HASH` key of [`KEY_SCHEMA`]).
pub const PARTITION_KEY: &str = "PK";
/// Sort key attribute (the `RANGE` key of [`KEY_SCHEMA`]).
pub const SORT_KEY: &str = "SK";

const RESTAURANT_PREFIX: &str = "RESTAURANT#";
/// Sort key of the restaurant item itself.
pub(crate) const RESTAURANT_ITEM: &str = "RESTAURANT";
/// Sort key prefix of reviews: `REVIEW#<created_at>#<id>`, so newest sorts last.
pub(crate) const REVIEW_PREFIX: &str = "REVIEW#";
/// Partition prefix of idempotency records: `REQUEST#<key>`, one partition per key (not per
/// restaurant), so a key is used once across every restaurant.
pub(crate) const REQUEST_PREFIX: &str = "REQUEST#";
/// Sort key of an idempotency record.
pub(crate) const REQUEST_ITEM: &str = "REQUEST";

/// The partition of restaurant `name`.
pub(crate) fn restaurant_partition(name: &str) -> String {
    format!("{RESTAURANT_PREFIX}{name}")
}

/// The sort key of a review created at `created_at` (RFC 3339, UTC, fixed width) with `id`.
pub(crate) fn review_sort_key(created_at: &str, id: &str) -> String {
    format!("{REVIEW_PREFIX}{created_at}#{id}")
}

/// The partition of the record of request `key`.
pub(crate) fn request_partition(key: &str) -> String {
    format!("{REQUEST_PREFIX}{key}")
}

/// The restaurant whose partition is `partition_key`, or `None` for a key of another shape.
/// The invalidator uses it on stream records.
pub fn restaurant_of_key(partition_key: &str) -> Option<&str> {
    partition_key
        .strip_prefix(RESTAURANT_PREFIX)
        .filter(|name| !name.is_empty())
}

/// The restaurant whose summary a change to the item (`partition_key`, `sort_key`) affects:
/// its restaurant item or one of its reviews. Other items of the partition (request records,
/// which expire by TTL) affect nothing.
pub fn summary_affected_by<'a>(partition_key: &'a str, sort_key: &str) -> Option<&'a str> {
    let summarised = sort_key == RESTAURANT_ITEM || sort_key.starts_with(REVIEW_PREFIX);
    restaurant_of_key(partition_key).filter(|_| summarised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_round_trip_and_other_keys_are_not_restaurants() {
        assert_eq!(
            restaurant_of_key(&restaurant_partition("Blue Fig")),
            Some("Blue Fig")
        );
        assert_eq!(restaurant_of_key("RESTAURANT#"), None);
        assert_eq!(restaurant_of_key("USER#x"), None);
        let pk = restaurant_partition("Saffron");
        assert_eq!(summary_affected_by(&pk, RESTAURANT_ITEM), Some("Saffron"));
        assert_eq!(
            summary_affected_by(&pk, &review_sort_key("t", "i")),
            Some("Saffron")
        );
        assert_eq!(summary_affected_by(&request_partition("k"), REQUEST_ITEM), None);
    }

    #[test]
    fn the_key_constants_are_the_key_schema_file() {
        let schema: serde_json::Value = serde_json::from_str(KEY_SCHEMA).unwrap();
        let named = |list: &str, field: &str, value: &str| -> Vec<String> {
            let entries = schema[list].as_array().unwrap();
            entries
                .iter()
                .filter(|e| e[field] == value)
                .map(|e| e["AttributeName"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(named("KeySchema", "KeyType", "HASH"), [PARTITION_KEY]);
        assert_eq!(named("KeySchema", "KeyType", "RANGE"), [SORT_KEY]);
        assert_eq!(
            named("AttributeDefinitions", "AttributeType", "S"),
            [PARTITION_KEY, SORT_KEY],
            "both keys are strings, and nothing else is defined"
        );
        assert_eq!(schema["AttributeDefinitions"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn newer_reviews_sort_after_older_ones() {
        let older = review_sort_key("2026-01-02T03:04:05.006Z", "ffff");
        let newer = review_sort_key("2026-01-02T03:04:05.007Z", "0000");
        assert!(older < newer);
        assert!(older.starts_with(REVIEW_PREFIX) && !REQUEST_ITEM.starts_with(REVIEW_PREFIX));
    }
}
