//! Reading a result's rows: one at a time, up to a limit, each as a JSON object with faithful
//! types (PostgreSQL and MySQL/MariaDB), handed on already serialized.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::{Column, Decode, Row, Type, TypeInfo, ValueRef};

use crate::error::classify;
use crate::DbError;

/// Rows of a query result, already serialized: a cache hit hands the bytes on without
/// building JSON values again, and a clone (a memory hit) shares them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryRows {
    /// Number of rows.
    pub row_count: usize,
    /// A JSON array of row objects.
    pub rows: std::sync::Arc<RawValue>,
}

/// Up to `limit` rows of `rows` as JSON; one more is [`DbError::TooManyRows`].
pub(crate) async fn collect_rows<R>(
    mut rows: impl futures::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    limit: usize,
    to_json: impl Fn(&R) -> Result<Map<String, Value>, DbError>,
) -> Result<Vec<Map<String, Value>>, DbError> {
    use futures::TryStreamExt;
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(classify)? {
        if out.len() == limit {
            return Err(DbError::TooManyRows { limit });
        }
        out.push(to_json(&row)?);
    }
    Ok(out)
}

impl QueryRows {
    /// `rows`, serialized once: what a cache stores and answers with.
    pub(crate) fn from_objects(rows: &[Map<String, Value>]) -> Result<Self, DbError> {
        let raw = serde_json::value::to_raw_value(rows)
            .map_err(|e| DbError::Other(format!("rows cannot be encoded: {e}")))?;
        Ok(Self {
            row_count: rows.len(),
            rows: raw.into(),
        })
    }
}

/// Why one column could not be mapped.
enum ColumnError {
    Unsupported,
    Decode(sqlx::Error),
}

impl From<sqlx::Error> for ColumnError {
    fn from(e: sqlx::Error) -> Self {
        Self::Decode(e)
    }
}

/// One row, columns in select order, using the engine's `column_value`.
fn row_to_json<R: Row>(
    row: &R,
    column_value: impl Fn(&R, usize, &str) -> Result<Value, ColumnError>,
) -> Result<Map<String, Value>, DbError>
where
    usize: sqlx::ColumnIndex<R>,
{
    let mut object = Map::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let type_name = column.type_info().name();
        let value = if row
            .try_get_raw(i)
            .map_err(|e| DbError::Other(e.to_string()))?
            .is_null()
        {
            Value::Null
        } else {
            column_value(row, i, type_name).map_err(|e| match e {
                ColumnError::Unsupported => DbError::UnsupportedType {
                    column: column.name().to_owned(),
                    type_name: type_name.to_owned(),
                },
                ColumnError::Decode(e) => DbError::Other(format!("column {:?}: {e}", column.name())),
            })?
        };
        object.insert(column.name().to_owned(), value);
    }
    Ok(object)
}

/// Decodes column `i` as `T` and converts it (NULLs were handled before).
fn get<'r, R, T>(row: &'r R, i: usize, convert: impl FnOnce(T) -> Value) -> Result<Value, ColumnError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(convert(row.try_get::<T, _>(i)?))
}

fn float(f: f64) -> Value {
    // JSON has no NaN or infinities: keep them as text rather than lose them.
    Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
}

/// A NUMERIC as a JSON number when a double holds it exactly, else as text (no silent rounding).
fn decimal(d: Decimal) -> Value {
    let text = d.normalize().to_string();
    if d.is_integer() {
        if let Some(i) = d.to_i64() {
            return Value::from(i);
        }
    }
    match d.to_f64() {
        Some(f) if f.is_finite() && f.to_string() == text => float(f),
        _ => Value::String(text),
    }
}

fn timestamp_utc(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn timestamp_local(t: NaiveDateTime) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

fn text<T: ToString>(v: T) -> Value {
    Value::String(v.to_string())
}

fn bytes(b: Vec<u8>) -> Value {
    let mut s = String::with_capacity(2 + 2 * b.len());
    s.push_str("\\x");
    for byte in b {
        s.push_str(&format!("{byte:02x}"));
    }
    Value::String(s)
}

/// A PostgreSQL row.
pub(crate) fn pg_row_to_json(row: &PgRow) -> Result<Map<String, Value>, DbError> {
    row_to_json(row, |row, i, type_name| match type_name {
        "BOOL" => get(row, i, Value::Bool),
        "INT2" => get(row, i, |v: i16| Value::from(v)),
        "INT4" => get(row, i, |v: i32| Value::from(v)),
        "INT8" => get(row, i, |v: i64| Value::from(v)),
        "FLOAT4" => get(row, i, |v: f32| float(f64::from(v))),
        "FLOAT8" => get(row, i, float),
        "NUMERIC" => get(row, i, decimal),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CITEXT" => get(row, i, Value::String),
        "TIMESTAMPTZ" => get(row, i, timestamp_utc),
        "TIMESTAMP" => get(row, i, timestamp_local),
        "DATE" => get(row, i, text::<NaiveDate>),
        "TIME" => get(row, i, text::<NaiveTime>),
        "UUID" => get(row, i, text::<uuid::Uuid>),
        "JSON" | "JSONB" => get(row, i, |v: Value| v),
        "BYTEA" => get(row, i, bytes),
        "TEXT[]" | "VARCHAR[]" => get(row, i, |v: Vec<String>| Value::from(v)),
        "INT4[]" => get(row, i, |v: Vec<i32>| Value::from(v)),
        "INT8[]" => get(row, i, |v: Vec<i64>| Value::from(v)),
        "VOID" => Ok(Value::Null),
        _ => Err(ColumnError::Unsupported),
    })
}

/// A MySQL / MariaDB row.
pub(crate) fn mysql_row_to_json(row: &MySqlRow) -> Result<Map<String, Value>, DbError> {
    row_to_json(row, |row, i, type_name| match type_name {
        "BOOLEAN" => get(row, i, Value::Bool),
        "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" => get(row, i, |v: i64| Value::from(v)),
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "INT UNSIGNED" | "MEDIUMINT UNSIGNED"
        | "BIGINT UNSIGNED" | "BIT" => get(row, i, |v: u64| Value::from(v)),
        "YEAR" => get(row, i, |v: u16| Value::from(v)),
        "FLOAT" => get(row, i, |v: f32| float(f64::from(v))),
        "DOUBLE" => get(row, i, float),
        "DECIMAL" => get(row, i, decimal),
        "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" => {
            get(row, i, Value::String)
        }
        "TIMESTAMP" => get(row, i, timestamp_utc),
        "DATETIME" => get(row, i, timestamp_local),
        "DATE" => get(row, i, text::<NaiveDate>),
        "TIME" => get(row, i, text::<NaiveTime>),
        "JSON" => get(row, i, |v: Value| v),
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => get(row, i, bytes),
        _ => Err(ColumnError::Unsupported),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn decimals_are_numbers_only_when_exact() {
        assert_eq!(
            decimal(Decimal::from_str("12.50").unwrap()),
            serde_json::json!(12.5)
        );
        assert_eq!(decimal(Decimal::from_str("7.00").unwrap()), serde_json::json!(7));
        let big = Decimal::from_str("12345678901234567890.123").unwrap();
        assert_eq!(decimal(big), serde_json::json!("12345678901234567890.123"));
    }
}
