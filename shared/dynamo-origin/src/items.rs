//! Items to JSON and back. Only the attributes this crate writes are read; anything else on an
//! item is ignored.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Map, Value};

use crate::keys::SORT_KEY;
use crate::TableError;

/// An item as the SDK hands it over.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// An item from (attribute, value) pairs.
pub(crate) fn item<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A number attribute.
pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn malformed(item: &Item, problem: String) -> TableError {
    TableError::Malformed {
        key: item
            .get(SORT_KEY)
            .and_then(|k| k.as_s().ok())
            .cloned()
            .unwrap_or_default(),
        problem,
    }
}

/// String attribute `name` of `item`.
pub(crate) fn text(item: &Item, name: &str) -> Result<String, TableError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(malformed(item, format!("{name} is not a string"))),
    }
}

/// Integer attribute `name` of `item`; absent counts as 0 (a restaurant without reviews).
pub(crate) fn integer(item: &Item, name: &str) -> Result<i64, TableError> {
    match item.get(name) {
        None => Ok(0),
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|_| malformed(item, format!("{name} is not an integer"))),
        Some(_) => Err(malformed(item, format!("{name} is not a number"))),
    }
}

/// A review item as the summary shows it.
pub(crate) fn review_json(item: &Item) -> Result<Value, TableError> {
    Ok(json!({
        "id": text(item, "id")?,
        "author": text(item, "author")?,
        "rating": integer(item, "rating")?,
        "body": text(item, "body")?,
        "created_at": text(item, "created_at")?,
    }))
}

/// The summary: the restaurant item's fields, its review count and average rating (kept as
/// counters by every write, so reading them is O(1)), and `latest` (newest first).
pub(crate) fn summary_json(restaurant: &Item, latest: &[Item]) -> Result<Value, TableError> {
    let count = integer(restaurant, "review_count")?;
    let sum = integer(restaurant, "rating_sum")?;
    let average = match count {
        0 => Value::Null,
        _ => json!(((sum as f64 / count as f64) * 100.0).round() / 100.0),
    };
    let mut summary = Map::new();
    summary.insert("name".into(), text(restaurant, "name")?.into());
    summary.insert("cuisine".into(), text(restaurant, "cuisine")?.into());
    summary.insert("city".into(), text(restaurant, "city")?.into());
    summary.insert("review_count".into(), count.into());
    summary.insert("average_rating".into(), average);
    let reviews = latest.iter().map(review_json).collect::<Result<Vec<_>, _>>()?;
    summary.insert("latest_reviews".into(), reviews.into());
    Ok(Value::Object(summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn summary_has_the_sql_origins_shape() {
        let restaurant = item(&[
            ("name", s("Saffron")),
            ("cuisine", s("Indian")),
            ("city", s("Seattle")),
            ("review_count", n(3)),
            ("rating_sum", n(13)),
        ]);
        let review = item(&[
            ("id", s("a1")),
            ("author", s("Ann")),
            ("rating", n(5)),
            ("body", s("great")),
            ("created_at", s("2026-01-01T00:00:00.000Z")),
        ]);
        let summary = summary_json(&restaurant, &[review]).unwrap();
        assert_eq!(summary["average_rating"], json!(4.33));
        assert_eq!(summary["review_count"], json!(3));
        assert_eq!(summary["latest_reviews"][0]["rating"], json!(5));
        let keys: Vec<&str> = summary.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "name",
                "cuisine",
                "city",
                "review_count",
                "average_rating",
                "latest_reviews"
            ]
        );
    }

    #[test]
    fn a_restaurant_without_reviews_has_no_average() {
        let restaurant = item(&[("name", s("x")), ("cuisine", s("y")), ("city", s("z"))]);
        let summary = summary_json(&restaurant, &[]).unwrap();
        assert_eq!(summary["average_rating"], Value::Null);
        assert_eq!(summary["review_count"], json!(0));
    }

    #[test]
    fn malformed_items_name_the_attribute_not_the_value() {
        let bad = item(&[("SK", s("REVIEW#1")), ("rating", s("five"))]);
        let message = integer(&bad, "rating").unwrap_err().to_string();
        assert!(message.contains("REVIEW#1") && message.contains("rating") && !message.contains("five"));
    }
}
