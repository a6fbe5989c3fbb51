//! Typed query parameters: declared in the catalog, parsed from request strings, validated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ParamError;

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// 64-bit signed integer.
    Int,
    /// Finite 64-bit float.
    Float,
    /// UTF-8 text.
    String,
    /// `true`/`false` (also `1`/`0`).
    Bool,
}

/// A parsed, validated parameter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Text.
    Text(String),
    /// Boolean.
    Bool(bool),
}

/// One declared parameter, as written in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// Name in the query string.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// What it means, for the catalog listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Value used when the request omits it; without one the parameter is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ParamValue>,
    /// Lower bound (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper bound (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Minimum length in characters (text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    /// Maximum length in characters (text); 256 when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// The only accepted values (text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// The value is bound into a `LIKE` pattern: `%`, `_` and `\` are escaped (with `\`, the
    /// default escape of PostgreSQL and MySQL) so it matches as text, never as a pattern.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escape_like: bool,
}

/// `text` with the `LIKE` metacharacters `%`, `_` and the escape `\` escaped by `\`.
pub fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Text parameters longer than this are refused unless the catalog says otherwise.
pub const DEFAULT_MAX_LENGTH: usize = 256;

fn fail(param: &str, problem: impl Into<String>) -> ParamError {
    ParamError {
        param: param.to_owned(),
        problem: problem.into(),
    }
}

impl ParamSpec {
    /// Whether the request must give it.
    pub fn required(&self) -> bool {
        self.default.is_none()
    }

    /// Parses a request string into a typed value and checks the limits.
    pub fn parse(&self, raw: &str) -> Result<ParamValue, ParamError> {
        let value = match self.kind {
            ParamType::Int => raw
                .parse::<i64>()
                .map(ParamValue::Int)
                .map_err(|_| fail(&self.name, format!("must be an integer, got {raw:?}")))?,
            ParamType::Float => match raw.parse::<f64>() {
                Ok(f) if f.is_finite() => ParamValue::Float(f),
                _ => return Err(fail(&self.name, format!("must be a number, got {raw:?}"))),
            },
            ParamType::Bool => match raw {
                "true" | "1" => ParamValue::Bool(true),
                "false" | "0" => ParamValue::Bool(false),
                _ => return Err(fail(&self.name, format!("must be true or false, got {raw:?}"))),
            },
            ParamType::String => ParamValue::Text(raw.to_owned()),
        };
        self.check(&value)?;
        Ok(value)
    }

    /// Checks a typed value (a request's or the catalog default) against type and limits.
    pub fn check(&self, value: &ParamValue) -> Result<(), ParamError> {
        let number = match (self.kind, value) {
            (ParamType::Int, ParamValue::Int(i)) => Some(*i as f64),
            (ParamType::Float, ParamValue::Float(f)) => Some(*f),
            (ParamType::Float, ParamValue::Int(i)) => Some(*i as f64),
            (ParamType::Bool, ParamValue::Bool(_)) => None,
            (ParamType::String, ParamValue::Text(s)) => {
                let len = s.chars().count();
                let max = self.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
                if len > max {
                    return Err(fail(
                        &self.name,
                        format!("must be at most {max} characters, got {len}"),
                    ));
                }
                if let Some(min) = self.min_length.filter(|m| len < *m) {
                    return Err(fail(
                        &self.name,
                        format!("must be at least {min} characters, got {len}"),
                    ));
                }
                if s.contains('\0') {
                    return Err(fail(&self.name, "must not contain NUL characters"));
                }
                if let Some(allowed) = self.allowed.as_ref().filter(|a| !a.contains(s)) {
                    return Err(fail(&self.name, format!("must be one of {}", allowed.join(", "))));
                }
                None
            }
            (kind, _) => {
                return Err(fail(&self.name, format!("must be of type {}", kind_name(kind))));
            }
        };
        if let Some(n) = number {
            let out_of_range = self.min.is_some_and(|m| n < m) || self.max.is_some_and(|m| n > m);
            if out_of_range {
                let bound = |b: Option<f64>| b.map_or("unbounded".to_owned(), |b| b.to_string());
                return Err(fail(
                    &self.name,
                    format!(
                        "must be between {} and {}, got {}",
                        bound(self.min),
                        bound(self.max),
                        number_text(value)
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn number_text(value: &ParamValue) -> String {
    match value {
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(f) => f.to_string(),
        _ => String::new(),
    }
}

pub(crate) fn kind_name(kind: ParamType) -> &'static str {
    match kind {
        ParamType::Int => "int",
        ParamType::Float => "float",
        ParamType::String => "string",
        ParamType::Bool => "bool",
    }
}

/// A request's parameters after parsing, limits and defaults: in bind order, and as a sorted
/// map for cache keys and responses.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedParams {
    ordered: Vec<(String, ParamValue)>,
}

impl ResolvedParams {
    /// Resolves `given` (name, raw value) against `specs`: unknown or repeated names, missing
    /// required ones, bad types and out-of-range values are refused, each naming the parameter.
    pub fn resolve<'a>(
        specs: &[ParamSpec],
        given: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ParamError> {
        let mut raw: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, value) in given {
            if !specs.iter().any(|s| s.name == name) {
                let accepted: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                let problem = if accepted.is_empty() {
                    "unknown parameter; this query takes none".to_owned()
                } else {
                    format!("unknown parameter; this query accepts: {}", accepted.join(", "))
                };
                return Err(fail(name, problem));
            }
            if raw.insert(name, value).is_some() {
                return Err(fail(name, "given more than once"));
            }
        }
        let mut ordered = Vec::with_capacity(specs.len());
        for spec in specs {
            let value = match (raw.get(spec.name.as_str()), &spec.default) {
                (Some(text), _) => spec.parse(text)?,
                (None, Some(default)) => default.clone(),
                (None, None) => return Err(fail(&spec.name, "is required")),
            };
            let value = match (spec.kind, value) {
                (ParamType::Float, ParamValue::Int(i)) => ParamValue::Float(i as f64),
                (_, v) => v,
            };
            ordered.push((spec.name.clone(), value));
        }
        Ok(Self { ordered })
    }

    /// Values in placeholder order ($1, $2, ...).
    pub fn values(&self) -> impl Iterator<Item = &ParamValue> {
        self.ordered.iter().map(|(_, v)| v)
    }

    /// Name → value, sorted by name: the canonical form hashed into cache keys.
    pub fn as_map(&self) -> BTreeMap<&str, &ParamValue> {
        self.ordered.iter().map(|(k, v)| (k.as_str(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> ParamSpec {
        toml::from_str(toml_text).unwrap()
    }

    fn limit() -> ParamSpec {
        spec("name = 'limit'\ntype = 'int'\ndefault = 10\nmin = 1\nmax = 100")
    }

    fn category() -> ParamSpec {
        spec("name = 'category'\ntype = 'string'\nmax_length = 8")
    }

    #[test]
    fn resolves_defaults_and_orders_for_binding() {
        let specs = [category(), limit()];
        let p = ResolvedParams::resolve(&specs, [("category", "tools")]).unwrap();
        let values: Vec<_> = p.values().cloned().collect();
        assert_eq!(values, [ParamValue::Text("tools".into()), ParamValue::Int(10)]);
        let same = ResolvedParams::resolve(&specs, [("limit", "010"), ("category", "tools")]).unwrap();
        assert_eq!(p.as_map(), same.as_map());
    }

    #[test]
    fn every_error_names_the_parameter() {
        let specs = [category(), limit()];
        /// (given parameters, parameter named in the error, text of the problem)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[], "category", "is required"),
            (
                &[("category", "x"), ("limit", "ten")],
                "limit",
                "must be an integer",
            ),
            (
                &[("category", "x"), ("limit", "500")],
                "limit",
                "between 1 and 100",
            ),
            (&[("category", "x"), ("limit", "0")], "limit", "between 1 and 100"),
            (&[("category", "waytoolongtext")], "category", "at most 8"),
            (
                &[("category", "x"), ("colour", "red")],
                "colour",
                "accepts: category, limit",
            ),
            (
                &[("category", "x"), ("category", "y")],
                "category",
                "more than once",
            ),
        ];
        for (given, param, problem) in cases {
            let e = ResolvedParams::resolve(&specs, given.iter().copied()).unwrap_err();
            assert_eq!(e.param, *param, "{given:?}");
            assert!(e.problem.contains(problem), "{given:?}: {}", e.problem);
        }
    }

    #[test]
    fn parses_each_type_strictly() {
        let f = spec("name = 'p'\ntype = 'float'\nmin = 0");
        assert_eq!(f.parse("2.5").unwrap(), ParamValue::Float(2.5));
        assert!(f.parse("NaN").is_err() && f.parse("inf").is_err() && f.parse("-1").is_err());
        let b = spec("name = 'b'\ntype = 'bool'");
        assert_eq!(b.parse("1").unwrap(), ParamValue::Bool(true));
        assert!(b.parse("yes").is_err());
        let s = spec("name = 's'\ntype = 'string'\nallowed = ['asc', 'desc']");
        assert!(s.parse("asc").is_ok() && s.parse("up").is_err());
        assert!(category().parse("a\0b").is_err());
    }

    #[test]
    fn like_metacharacters_are_escaped_and_text_is_kept() {
        assert_eq!(escape_like("delta"), "delta");
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(escape_like("%"), "\\%");
    }
}
