//! Binding parameters: the values a statement's placeholders take, in order, copied into
//! either engine's argument buffer.

use sqlx::Arguments;

use crate::DbError;

/// A value bound to a placeholder. Borrowed: binding copies nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SqlValue<'a> {
    /// 64-bit integer.
    Int(i64),
    /// 64-bit float.
    Float(f64),
    /// Text.
    Text(&'a str),
    /// Boolean.
    Bool(bool),
}

/// Binds `values` in order into an engine's argument buffer.
pub(crate) fn bind_all<'q, A: Arguments<'q>>(values: &[SqlValue<'q>]) -> Result<A, DbError>
where
    i64: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    f64: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    bool: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    &'q str: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
{
    let mut args = A::default();
    for value in values {
        match *value {
            SqlValue::Int(i) => args.add(i),
            SqlValue::Float(f) => args.add(f),
            SqlValue::Text(s) => args.add(s),
            SqlValue::Bool(b) => args.add(b),
        }
        .map_err(|e| DbError::Other(format!("cannot bind parameter: {e}")))?;
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use sqlx::mysql::MySqlArguments;
    use sqlx::postgres::PgArguments;

    use super::*;

    #[test]
    fn values_bind_in_order_whatever_their_type() {
        let values = [
            SqlValue::Int(1),
            SqlValue::Float(0.5),
            SqlValue::Text("t"),
            SqlValue::Bool(true),
        ];
        let pg: PgArguments = bind_all(&values).unwrap();
        assert_eq!(pg.len(), 4);
        let my: MySqlArguments = bind_all(&values).unwrap();
        assert_eq!(my.len(), 4);
    }
}
