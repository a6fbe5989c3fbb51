//! The restaurant scenario: a cached summary per restaurant (the restaurant, its rating and
//! 5 newest reviews) and a review write path that keeps it current (write-through).

use cache_aside::{Lookup, ReadMode};
use query_catalog::{NamedQuery, ParamValue, ResolvedParams};
use serde_json::{Map, Value};

use crate::{Clients, UseCaseError};

/// The catalog query that builds a summary.
pub const SUMMARY_QUERY: &str = "restaurant_summary";
/// The catalog statement that stores a review.
pub const ADD_REVIEW_STATEMENT: &str = "add_review";
/// The fields a review may have.
pub const REVIEW_FIELDS: [&str; 3] = ["author", "rating", "body"];

/// A stored review and the summary read right after it.
#[derive(Debug)]
pub struct ReviewAdded {
    /// The review as stored (what the statement RETURNs).
    pub review: Value,
    /// The restaurant's summary after the write.
    pub summary: Lookup<Value>,
    /// False when the old summary could not be dropped (Redis trouble): the summary above
    /// may then predate the review until its TTL ends.
    pub summary_invalidated: bool,
}

/// The first row of `rows` (a JSON array), or `None` when it is empty.
fn first_row(rows: &str) -> Result<Option<Value>, UseCaseError> {
    let rows: Vec<Value> = serde_json::from_str(rows).map_err(|e| UseCaseError::Internal(e.to_string()))?;
    Ok(rows.into_iter().next())
}

/// The statement's raw parameters from a review body: `name` plus the known fields, numbers
/// given as text so the catalog's types decide.
fn review_params(
    restaurant: &str,
    review: &Map<String, Value>,
) -> Result<Vec<(String, String)>, UseCaseError> {
    if let Some(unknown) = review.keys().find(|k| !REVIEW_FIELDS.contains(&k.as_str())) {
        return Err(query_catalog::ParamError {
            param: unknown.clone(),
            problem: "unknown field; expected author, rating, body".into(),
        }
        .into());
    }
    let mut given = vec![("name".to_owned(), restaurant.to_owned())];
    for field in REVIEW_FIELDS {
        let text = match review.get(field) {
            None => continue,
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) if field == "rating" => n.to_string(),
            Some(_) => {
                return Err(query_catalog::ParamError {
                    param: field.to_owned(),
                    problem: "has the wrong JSON type".into(),
                }
                .into())
            }
        };
        given.push((field.to_owned(), text));
    }
    Ok(given)
}

impl Clients {
    fn summary_query(&self) -> Result<&NamedQuery, UseCaseError> {
        self.named_query(SUMMARY_QUERY)
    }

    /// The summary of restaurant `name` through the cache (`mode` as for any query).
    pub async fn restaurant_summary(
        &self,
        name: &str,
        mode: ReadMode,
    ) -> Result<Lookup<Value>, UseCaseError> {
        let query = self.summary_query()?;
        let params = ResolvedParams::resolve(&query.params, [("name", name)])?;
        let lookup = self.run_query(query, &params, mode).await?;
        let row = first_row(lookup.value.rows.get())?
            .ok_or_else(|| UseCaseError::RestaurantNotFound(name.to_owned()))?;
        Ok(lookup.map(|_| row))
    }

    /// Stores `review` for restaurant `name`, then drops that restaurant's cached summary (O(1),
    /// fencing any fill that started before the write) and fills it again, so the next read
    /// includes the review. Other restaurants keep their cached summaries.
    pub async fn add_review(
        &self,
        name: &str,
        review: &Map<String, Value>,
    ) -> Result<ReviewAdded, UseCaseError> {
        let statement = self
            .catalog
            .statement(ADD_REVIEW_STATEMENT)
            .ok_or_else(|| UseCaseError::UnknownQuery(ADD_REVIEW_STATEMENT.to_owned()))?;
        let given = review_params(name, review)?;
        let params = ResolvedParams::resolve(
            &statement.params,
            given.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        let inserted = self.fetch_rows(statement, &params).await?;
        let stored = first_row(inserted.rows.get())?
            .ok_or_else(|| UseCaseError::RestaurantNotFound(name.to_owned()))?;
        let invalidated = self
            .invalidation()
            .entity(self.summary_query()?, "name", &ParamValue::Text(name.to_owned()))
            .await;
        if let Err(e) = &invalidated {
            tracing::error!(error = %e, restaurant = name, "review stored but its cached summary could not be invalidated");
        }
        let summary = self.restaurant_summary(name, ReadMode::Cached).await?;
        Ok(ReviewAdded {
            review: stored,
            summary,
            summary_invalidated: invalidated.is_ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn review_fields_become_statement_parameters() {
        let given = review_params("Saffron", &body(r#"{"author": "A", "rating": 4, "body": "ok"}"#)).unwrap();
        assert_eq!(
            given,
            [
                ("name", "Saffron"),
                ("author", "A"),
                ("rating", "4"),
                ("body", "ok")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn unknown_or_mistyped_fields_are_refused_by_name() {
        let refused = |json: &str| match review_params("x", &body(json)) {
            Err(UseCaseError::BadParameter(e)) => e.param,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(r#"{"stars": 5}"#), "stars");
        assert_eq!(refused(r#"{"author": 7}"#), "author");
        assert_eq!(refused(r#"{"rating": [5]}"#), "rating");
    }

    #[test]
    fn first_row_of_an_array() {
        assert_eq!(
            first_row(r#"[{"a": 1}, {"a": 2}]"#).unwrap(),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(first_row("[]").unwrap(), None);
        assert!(matches!(first_row("{}"), Err(UseCaseError::Internal(_))));
    }
}
