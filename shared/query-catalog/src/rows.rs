//! PostgreSQL rows as JSON objects with faithful types.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{Map, Number, Value};
use sqlx::postgres::PgRow;
use sqlx::{Column, Decode, Postgres, Row, Type, TypeInfo, ValueRef};

use crate::DbError;

/// One row, columns in select order.
pub(crate) fn row_to_json(row: &PgRow) -> Result<Map<String, Value>, DbError> {
    let mut object = Map::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let value = column_value(row, i, column.type_info().name()).map_err(|e| match e {
            ColumnError::Unsupported => DbError::UnsupportedType {
                column: column.name().to_owned(),
                type_name: column.type_info().name().to_owned(),
            },
            ColumnError::Decode(e) => DbError::Other(format!("column {:?}: {e}", column.name())),
        })?;
        object.insert(column.name().to_owned(), value);
    }
    Ok(object)
}

enum ColumnError {
    Unsupported,
    Decode(sqlx::Error),
}

impl From<sqlx::Error> for ColumnError {
    fn from(e: sqlx::Error) -> Self {
        Self::Decode(e)
    }
}

fn get<'r, T>(row: &'r PgRow, i: usize) -> Result<Option<T>, ColumnError>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    Ok(row.try_get::<Option<T>, _>(i)?)
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

fn column_value(row: &PgRow, i: usize, type_name: &str) -> Result<Value, ColumnError> {
    if row.try_get_raw(i)?.is_null() {
        return Ok(Value::Null);
    }
    let value = match type_name {
        "BOOL" => get::<bool>(row, i)?.map(Value::Bool),
        "INT2" => get::<i16>(row, i)?.map(Value::from),
        "INT4" => get::<i32>(row, i)?.map(Value::from),
        "INT8" => get::<i64>(row, i)?.map(Value::from),
        "FLOAT4" => get::<f32>(row, i)?.map(|f| float(f64::from(f))),
        "FLOAT8" => get::<f64>(row, i)?.map(float),
        "NUMERIC" => get::<Decimal>(row, i)?.map(decimal),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CITEXT" => get::<String>(row, i)?.map(Value::String),
        "TIMESTAMPTZ" => get::<DateTime<Utc>>(row, i)?
            .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))),
        "TIMESTAMP" => {
            get::<NaiveDateTime>(row, i)?.map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()))
        }
        "DATE" => get::<NaiveDate>(row, i)?.map(|d| Value::String(d.to_string())),
        "TIME" => get::<NaiveTime>(row, i)?.map(|t| Value::String(t.to_string())),
        "UUID" => get::<uuid::Uuid>(row, i)?.map(|u| Value::String(u.to_string())),
        "JSON" | "JSONB" => get::<Value>(row, i)?,
        "BYTEA" => get::<Vec<u8>>(row, i)?.map(|b| {
            Value::String(b.iter().fold(String::from("\\x"), |mut s, byte| {
                s.push_str(&format!("{byte:02x}"));
                s
            }))
        }),
        "TEXT[]" | "VARCHAR[]" => get::<Vec<String>>(row, i)?.map(Value::from),
        "INT4[]" => get::<Vec<i32>>(row, i)?.map(Value::from),
        "INT8[]" => get::<Vec<i64>>(row, i)?.map(Value::from),
        "VOID" => None,
        _ => return Err(ColumnError::Unsupported),
    };
    Ok(value.unwrap_or(Value::Null))
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
