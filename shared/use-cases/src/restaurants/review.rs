//! A review as a client posts it (`{"author", "rating", "body"}`), parsed once into typed,
//! checked fields: every store takes a [`Review`] as it is, with nothing left to validate.
//!
//! The limits are those the bundled catalog's `add_review` statement declares (a test keeps
//! them equal), and every refusal is worded as a refused catalog parameter is, so the API's
//! `400 bad_parameter` answers read the same whichever origin holds the restaurants.

use std::borrow::Cow;
use std::ops::RangeInclusive;

use dynamo_origin::NewReview;
use query_catalog::ParamError;
use serde_json::{Map, Value};

use crate::UseCaseError;

/// The fields a review may have.
pub const REVIEW_FIELDS: [&str; 3] = ["author", "rating", "body"];

/// The ratings a review may give.
const RATINGS: RangeInclusive<i64> = 1..=5;

/// How long, in characters, a text may be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Length {
    min: usize,
    max: usize,
}

/// A review's author (a body's, or the caller's identity).
pub(crate) const AUTHOR_LENGTH: Length = Length { min: 1, max: 256 };
/// A review's text.
pub(crate) const BODY_LENGTH: Length = Length { min: 1, max: 2000 };
/// A restaurant's name.
pub(crate) const RESTAURANT_LENGTH: Length = Length { min: 1, max: 100 };
/// An `Idempotency-Key` (empty: none).
pub(crate) const KEY_LENGTH: Length = Length { min: 0, max: 128 };

impl Length {
    /// Why `text` is refused, if it is: too long, too short, or holding a NUL (which neither
    /// PostgreSQL text nor a fair review has).
    pub(crate) fn problem(self, text: &str) -> Option<String> {
        let len = text.chars().count();
        if len > self.max {
            Some(format!("must be at most {} characters, got {len}", self.max))
        } else if len < self.min {
            Some(format!("must be at least {} characters, got {len}", self.min))
        } else if text.contains('\0') {
            Some("must not contain NUL characters".to_owned())
        } else {
            None
        }
    }

    /// Refuses `text` as the value of parameter `param` unless it fits.
    pub(crate) fn check(self, param: &str, text: &str) -> Result<(), ParamError> {
        match self.problem(text) {
            Some(problem) => Err(ParamError {
                param: param.to_owned(),
                problem,
            }),
            None => Ok(()),
        }
    }
}

/// A review body's field that cannot be accepted: names the field as sent, so the client
/// knows which one to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("review field {field:?}: {problem}")]
pub struct ReviewError {
    /// The field's name as sent.
    pub field: String,
    /// What is wrong, for the client.
    pub problem: String,
}

impl ReviewError {
    fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

/// A refused field is a refused request parameter (`400 bad_parameter` naming it).
impl From<ReviewError> for ParamError {
    fn from(e: ReviewError) -> Self {
        ParamError {
            param: e.field,
            problem: e.problem,
        }
    }
}

impl From<ReviewError> for UseCaseError {
    fn from(e: ReviewError) -> Self {
        Self::BadParameter(e.into())
    }
}

/// A review to store, every field checked. Built only by [`Review::parse`], so a `Review`
/// is always one a store may take as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    author: String,
    rating: i64,
    body: String,
}

impl Review {
    /// Parses a review body (a JSON object with `author`, `rating` and `body`; `rating` may be
    /// a number or its text). `identity`, the author the caller's verified identity names when
    /// the API requires one, replaces any author the body names (whose JSON type is still
    /// checked). Refusals name the field, in a fixed order: an unknown field, a field of the
    /// wrong JSON type, then author, rating and body.
    pub fn parse(fields: &Map<String, Value>, identity: Option<&str>) -> Result<Self, ReviewError> {
        if let Some(unknown) = fields.keys().find(|k| !REVIEW_FIELDS.contains(&k.as_str())) {
            return Err(ReviewError::new(
                unknown,
                "unknown field; expected author, rating, body",
            ));
        }
        let named_author = text_of(fields, "author")?;
        let rating = text_of(fields, "rating")?;
        let body = text_of(fields, "body")?;
        let required = |field: &str| ReviewError::new(field, "is required");
        let author = identity
            .or(named_author.as_deref())
            .ok_or_else(|| required("author"))?;
        checked("author", author, AUTHOR_LENGTH)?;
        let rating = parse_rating(&rating.ok_or_else(|| required("rating"))?)?;
        let body = body.ok_or_else(|| required("body"))?;
        checked("body", &body, BODY_LENGTH)?;
        Ok(Self {
            author: author.to_owned(),
            rating,
            body: body.into_owned(),
        })
    }

    /// Who wrote it: the caller's verified identity, else the author the body names.
    pub fn author(&self) -> &str {
        &self.author
    }

    /// 1 to 5.
    pub fn rating(&self) -> i64 {
        self.rating
    }

    /// The text.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The review as the DynamoDB table takes it.
    pub(crate) fn as_new_review(&self) -> NewReview<'_> {
        NewReview {
            author: &self.author,
            rating: self.rating,
            body: &self.body,
        }
    }
}

/// Field `field` of a review body as text, if given: a string, or for `rating` also a number
/// (its text, parsed like a string rating, so `4.0` is refused as `4.5` is).
fn text_of<'a>(fields: &'a Map<String, Value>, field: &str) -> Result<Option<Cow<'a, str>>, ReviewError> {
    match fields.get(field) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(Cow::Borrowed(text.as_str()))),
        Some(Value::Number(number)) if field == "rating" => Ok(Some(Cow::Owned(number.to_string()))),
        Some(_) => Err(ReviewError::new(field, "has the wrong JSON type")),
    }
}

/// `text` unless it does not fit `length`.
fn checked(field: &str, text: &str, length: Length) -> Result<(), ReviewError> {
    match length.problem(text) {
        Some(problem) => Err(ReviewError::new(field, problem)),
        None => Ok(()),
    }
}

/// A rating from its text: an integer within [`RATINGS`].
fn parse_rating(text: &str) -> Result<i64, ReviewError> {
    let rating: i64 = text
        .parse()
        .map_err(|_| ReviewError::new("rating", format!("must be an integer, got {text:?}")))?;
    if !RATINGS.contains(&rating) {
        return Err(ReviewError::new(
            "rating",
            format!(
                "must be between {} and {}, got {rating}",
                RATINGS.start(),
                RATINGS.end()
            ),
        ));
    }
    Ok(rating)
}

#[cfg(test)]
mod tests {
    use super::*;
    use query_catalog::Catalog;

    fn parse(json: &str, identity: Option<&str>) -> Result<Review, ReviewError> {
        Review::parse(&serde_json::from_str(json).unwrap(), identity)
    }

    #[test]
    fn a_review_is_parsed_into_typed_fields() {
        let review = parse(r#"{"author": "A", "rating": 4, "body": "ok"}"#, None).unwrap();
        assert_eq!((review.author(), review.rating(), review.body()), ("A", 4, "ok"));
        let texted = parse(r#"{"author": "A", "rating": "4", "body": "ok"}"#, None).unwrap();
        assert_eq!(texted, review, "a rating may be given as text");
        let stored = review.as_new_review();
        assert_eq!((stored.author, stored.rating, stored.body), ("A", 4, "ok"));
    }

    #[test]
    fn the_identity_replaces_the_bodys_author() {
        let review = parse(
            &format!(r#"{{"author": "{}", "rating": 5, "body": "b"}}"#, "x".repeat(300)),
            Some("alice"),
        );
        assert_eq!(
            review.unwrap().author(),
            "alice",
            "the body's author is not used, so not checked"
        );
        let anonymous = parse(r#"{"rating": 5, "body": "b"}"#, Some("bob")).unwrap();
        assert_eq!(anonymous.author(), "bob");
        let typed = parse(r#"{"author": 7, "rating": 5, "body": "b"}"#, Some("bob")).unwrap_err();
        assert_eq!(typed.field, "author", "its JSON type still is");
        let empty = parse(r#"{"rating": 5, "body": "b"}"#, Some("")).unwrap_err();
        assert_eq!(
            (empty.field.as_str(), empty.problem.as_str()),
            ("author", "must be at least 1 characters, got 0")
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let refused = |json: &str| {
            let e = parse(json, None).unwrap_err();
            (e.field, e.problem)
        };
        let cases = [
            (
                r#"{"stars": 5}"#,
                "stars",
                "unknown field; expected author, rating, body",
            ),
            (r#"{"author": 7}"#, "author", "has the wrong JSON type"),
            (r#"{"rating": [5]}"#, "rating", "has the wrong JSON type"),
            (r#"{"rating": 3, "body": "b"}"#, "author", "is required"),
            (r#"{"author": "a", "body": "b"}"#, "rating", "is required"),
            (r#"{"author": "a", "rating": 3}"#, "body", "is required"),
            (
                r#"{"author": "a", "rating": 6, "body": "b"}"#,
                "rating",
                "must be between 1 and 5, got 6",
            ),
            (
                r#"{"author": "a", "rating": "three", "body": "b"}"#,
                "rating",
                "must be an integer, got \"three\"",
            ),
            (
                r#"{"author": "a", "rating": 4.5, "body": "b"}"#,
                "rating",
                "must be an integer, got \"4.5\"",
            ),
            (
                r#"{"author": "a", "rating": 3, "body": ""}"#,
                "body",
                "must be at least 1 characters, got 0",
            ),
            (
                r#"{"author": "a\u0000", "rating": 3, "body": "b"}"#,
                "author",
                "must not contain NUL characters",
            ),
        ];
        for (json, field, problem) in cases {
            assert_eq!(refused(json), (field.to_owned(), problem.to_owned()), "{json}");
        }
        let long = format!(
            r#"{{"author": "a", "rating": 3, "body": "{}"}}"#,
            "é".repeat(2001)
        );
        assert_eq!(
            refused(&long),
            (
                "body".to_owned(),
                "must be at most 2000 characters, got 2001".to_owned()
            ),
            "characters, not bytes"
        );
    }

    #[test]
    fn a_refused_field_is_a_bad_parameter() {
        let e = parse(r#"{"stars": 5}"#, None).unwrap_err();
        match UseCaseError::from(e) {
            UseCaseError::BadParameter(e) => assert_eq!(e.param, "stars"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_limits_are_the_bundled_statements() {
        let catalog = Catalog::load(None).unwrap();
        let statement = catalog.statement(crate::ADD_REVIEW_STATEMENT).unwrap();
        let spec = |name: &str| statement.params.iter().find(|p| p.name == name).unwrap();
        for (name, length) in [
            ("name", RESTAURANT_LENGTH),
            ("author", AUTHOR_LENGTH),
            ("body", BODY_LENGTH),
            ("request_id", KEY_LENGTH),
        ] {
            let declared = spec(name);
            assert_eq!(
                (declared.min_length.unwrap_or(0), declared.max_length),
                (length.min, Some(length.max)),
                "{name}"
            );
        }
        let rating = spec("rating");
        assert_eq!(
            (rating.min, rating.max),
            (Some(*RATINGS.start() as f64), Some(*RATINGS.end() as f64))
        );
    }
}
