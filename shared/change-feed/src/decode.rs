//! The two output plugins RDS offers, turned into one shape: `wal2json` (format 2, one JSON
//! object per change) where the server has it, `test_decoding` (text, always there) otherwise.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{FeedError, Lsn};

/// A logical decoding output plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    /// `wal2json` with `format-version` 2.
    Wal2Json,
    /// `test_decoding`, part of PostgreSQL's contrib.
    TestDecoding,
}

impl Plugin {
    /// The plugin's name in `pg_create_logical_replication_slot`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Wal2Json => "wal2json",
            Self::TestDecoding => "test_decoding",
        }
    }

    /// The plugin called `name`, if it is one this crate reads.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "wal2json" => Some(Self::Wal2Json),
            "test_decoding" => Some(Self::TestDecoding),
            _ => None,
        }
    }

    /// Options for `pg_logical_slot_peek_changes`, as (name, value) pairs.
    pub(crate) fn options(self) -> [(&'static str, &'static str); 2] {
        match self {
            Self::Wal2Json => [("format-version", "2"), ("include-transaction", "true")],
            Self::TestDecoding => [("include-xids", "0"), ("skip-empty-xacts", "1")],
        }
    }

    /// One decoded line.
    pub(crate) fn parse(self, data: &str) -> Result<Line, FeedError> {
        match self {
            Self::Wal2Json => wal2json(data),
            Self::TestDecoding => test_decoding(data),
        }
    }
}

/// What a row change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A row was added.
    Insert,
    /// A row changed.
    Update,
    /// A row was removed.
    Delete,
    /// The whole table was emptied.
    Truncate,
}

/// One committed change to one row (or a whole table, for `TRUNCATE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChange {
    /// The table, without its schema, lower-case as PostgreSQL folds unquoted names.
    pub table: String,
    /// What happened.
    pub operation: Operation,
    /// Column values after the change, as text (`None`: SQL NULL); empty for deletes.
    pub new: BTreeMap<String, Option<String>>,
    /// Column values before the change, as far as the table's replica identity logs them (the
    /// key by default, every column with `REPLICA IDENTITY FULL`).
    pub old: BTreeMap<String, Option<String>>,
}

impl RowChange {
    /// Every value column `column` had in this change, before and after. `None` when the log
    /// does not say (an update without the old row, a truncate): the caller cannot know which
    /// rows were touched.
    pub fn values_of(&self, column: &str) -> Option<Vec<Option<&str>>> {
        let before = self.old.get(column).map(|v| v.as_deref());
        let after = self.new.get(column).map(|v| v.as_deref());
        match self.operation {
            Operation::Truncate => None,
            Operation::Insert => Some(vec![after?]),
            Operation::Delete => Some(vec![before?]),
            Operation::Update => {
                let after = after?;
                // Without the old row the value before the change is unknown.
                match before {
                    Some(before) if before != after => Some(vec![before, after]),
                    Some(_) => Some(vec![after]),
                    None => None,
                }
            }
        }
    }
}

/// One committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Where its commit record ends: moving the slot to here marks it consumed.
    pub commit_lsn: Lsn,
    /// Its row changes, in order.
    pub changes: Vec<RowChange>,
}

/// One line of plugin output.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    Begin,
    Commit,
    Change(RowChange),
    /// Logical messages and the like: nothing to invalidate.
    Other,
}

fn decode_error(data: &str, problem: impl Into<String>) -> FeedError {
    FeedError::Decode {
        data: data.chars().take(200).collect(),
        problem: problem.into(),
    }
}

fn bare_table(qualified: &str) -> String {
    qualified
        .rsplit('.')
        .next()
        .unwrap_or(qualified)
        .trim_matches('"')
        .to_owned()
}

fn wal2json(data: &str) -> Result<Line, FeedError> {
    let value: Value = serde_json::from_str(data).map_err(|e| decode_error(data, e.to_string()))?;
    let action = value.get("action").and_then(Value::as_str).unwrap_or("");
    let operation = match action {
        "B" => return Ok(Line::Begin),
        "C" => return Ok(Line::Commit),
        "I" => Operation::Insert,
        "U" => Operation::Update,
        "D" => Operation::Delete,
        "T" => Operation::Truncate,
        _ => return Ok(Line::Other),
    };
    let table = value
        .get("table")
        .and_then(Value::as_str)
        .ok_or_else(|| decode_error(data, "a change without a table"))?;
    let columns = |field: &str| -> BTreeMap<String, Option<String>> {
        value
            .get(field)
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|c| {
                        let name = c.get("name")?.as_str()?.to_owned();
                        let text = match c.get("value")? {
                            Value::Null => None,
                            Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        };
                        Some((name, text))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Line::Change(RowChange {
        table: table.to_owned(),
        operation,
        new: columns("columns"),
        old: columns("identity"),
    }))
}

/// `table public.reviews: INSERT: id[bigint]:1 body[text]:'it''s fine' note[text]:null`
fn test_decoding(data: &str) -> Result<Line, FeedError> {
    if data == "BEGIN" || data.starts_with("BEGIN ") {
        return Ok(Line::Begin);
    }
    if data == "COMMIT" || data.starts_with("COMMIT ") {
        return Ok(Line::Commit);
    }
    let Some(rest) = data.strip_prefix("table ") else {
        return Ok(Line::Other);
    };
    let (name, rest) = split_table_name(rest).ok_or_else(|| decode_error(data, "no table name"))?;
    let (operation, tuple) = rest
        .split_once(": ")
        .unwrap_or((rest.trim_end_matches(':'), ""));
    let operation = match operation {
        "INSERT" => Operation::Insert,
        "UPDATE" => Operation::Update,
        "DELETE" => Operation::Delete,
        "TRUNCATE" => Operation::Truncate,
        other => return Err(decode_error(data, format!("unknown operation {other:?}"))),
    };
    let mut change = RowChange {
        table: bare_table(&name),
        operation,
        new: BTreeMap::new(),
        old: BTreeMap::new(),
    };
    if operation == Operation::Truncate || tuple.starts_with('(') {
        // "(no-flags)", "(no-tuple-data)": nothing about the columns.
        return Ok(Line::Change(change));
    }
    match operation {
        Operation::Update => {
            if let Some(rest) = tuple.strip_prefix("old-key: ") {
                let (old, new) = rest
                    .split_once(" new-tuple: ")
                    .ok_or_else(|| decode_error(data, "an old key without a new tuple"))?;
                change.old = columns(old).ok_or_else(|| decode_error(data, "bad old key"))?;
                change.new = columns(new).ok_or_else(|| decode_error(data, "bad new tuple"))?;
            } else {
                change.new = columns(tuple).ok_or_else(|| decode_error(data, "bad tuple"))?;
            }
        }
        Operation::Delete => {
            change.old = columns(tuple).ok_or_else(|| decode_error(data, "bad old key"))?;
        }
        _ => change.new = columns(tuple).ok_or_else(|| decode_error(data, "bad tuple"))?,
    }
    Ok(Line::Change(change))
}

/// `public."Odd.Name": UPDATE: ...` → (`public."Odd.Name"`, `UPDATE: ...`).
fn split_table_name(text: &str) -> Option<(String, &str)> {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some((text[..i].to_owned(), text[i + 1..].trim_start())),
            _ => {}
        }
    }
    None
}

/// `id[integer]:1 name[text]:'a b' gone[text]:null` → the columns; `None` when malformed.
fn columns(mut text: &str) -> Option<BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    loop {
        text = text.trim_start();
        if text.is_empty() {
            return Some(out);
        }
        let open = text.find('[')?;
        let name = text[..open].trim_matches('"').to_owned();
        // The type may hold spaces and brackets ("timestamp with time zone", "integer[]"): it
        // ends at the first "]:".
        let close = open + text[open..].find("]:")?;
        text = &text[close + 2..];
        let value = if let Some(quoted) = text.strip_prefix('\'') {
            let mut value = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if matches!(chars.peek(), Some((_, '\''))) {
                        value.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    value.push(c);
                }
            }
            text = &quoted[end?..];
            Some(value)
        } else {
            let end = text.find(' ').unwrap_or(text.len());
            let token = &text[..end];
            text = &text[end..];
            (token != "null").then(|| token.to_owned())
        };
        out.insert(name, value);
    }
}

/// Groups decoded lines into committed transactions; lines after the last commit (a batch cut
/// short) are left for the next read.
pub(crate) fn transactions(
    plugin: Plugin,
    rows: impl IntoIterator<Item = (Lsn, String)>,
) -> Result<Vec<Transaction>, FeedError> {
    let mut done = Vec::new();
    let mut open: Vec<RowChange> = Vec::new();
    for (lsn, data) in rows {
        match plugin.parse(&data)? {
            Line::Begin => open.clear(),
            Line::Change(change) => open.push(change),
            Line::Commit => done.push(Transaction {
                commit_lsn: lsn,
                changes: std::mem::take(&mut open),
            }),
            Line::Other => {}
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(line: Line) -> RowChange {
        match line {
            Line::Change(c) => c,
            other => panic!("not a change: {other:?}"),
        }
    }

    #[test]
    fn test_decoding_rows_with_quotes_spaces_and_nulls() {
        let c = change(
            test_decoding(
                "table public.reviews: INSERT: id[bigint]:7 restaurant_id[integer]:3 \
                 body[text]:'it''s: fine [really]' created_at[timestamp with time zone]:'2026-01-01 00:00:00+00' \
                 tags[integer[]]:'{1,2}' note[text]:null",
            )
            .unwrap(),
        );
        assert_eq!(c.table, "reviews");
        assert_eq!(c.operation, Operation::Insert);
        assert_eq!(c.new["restaurant_id"].as_deref(), Some("3"));
        assert_eq!(c.new["body"].as_deref(), Some("it's: fine [really]"));
        assert_eq!(c.new["created_at"].as_deref(), Some("2026-01-01 00:00:00+00"));
        assert_eq!(c.new["tags"].as_deref(), Some("{1,2}"));
        assert_eq!(c.new["note"], None);
        assert_eq!(c.values_of("restaurant_id"), Some(vec![Some("3")]));
    }

    #[test]
    fn test_decoding_updates_deletes_and_truncates() {
        let u = change(
            test_decoding(
                "table public.restaurants: UPDATE: old-key: id[integer]:1 name[text]:'Blue Fig' \
                 new-tuple: id[integer]:1 name[text]:'Red Fig'",
            )
            .unwrap(),
        );
        assert_eq!(u.values_of("name"), Some(vec![Some("Blue Fig"), Some("Red Fig")]));
        let u =
            change(test_decoding("table public.restaurants: UPDATE: id[integer]:1 name[text]:'X'").unwrap());
        assert_eq!(u.values_of("name"), None, "the name before is unknown");
        let d = change(test_decoding("table public.products: DELETE: id[integer]:4").unwrap());
        assert_eq!(d.values_of("id"), Some(vec![Some("4")]));
        assert_eq!(d.values_of("name"), None);
        let t = change(test_decoding("table public.products: TRUNCATE: (no-flags)").unwrap());
        assert_eq!(t.operation, Operation::Truncate);
        assert_eq!(test_decoding("BEGIN").unwrap(), Line::Begin);
        assert_eq!(test_decoding("COMMIT").unwrap(), Line::Commit);
    }

    #[test]
    fn wal2json_format_two() {
        let c = change(
            wal2json(
                r#"{"action":"U","schema":"public","table":"restaurants","columns":[{"name":"id","value":1},{"name":"name","value":"Red Fig"}],"identity":[{"name":"id","value":1},{"name":"name","value":"Blue Fig"}]}"#,
            )
            .unwrap(),
        );
        assert_eq!(c.values_of("name"), Some(vec![Some("Blue Fig"), Some("Red Fig")]));
        assert_eq!(c.values_of("id"), Some(vec![Some("1")]));
        assert_eq!(wal2json(r#"{"action":"B"}"#).unwrap(), Line::Begin);
        assert_eq!(wal2json(r#"{"action":"M","prefix":"x"}"#).unwrap(), Line::Other);
    }

    #[test]
    fn only_whole_transactions_come_out() {
        let rows = vec![
            (Lsn(1), "BEGIN".to_owned()),
            (Lsn(2), "table public.products: DELETE: id[integer]:4".to_owned()),
            (Lsn(3), "COMMIT".to_owned()),
            (Lsn(4), "BEGIN".to_owned()),
            (Lsn(5), "table public.products: DELETE: id[integer]:5".to_owned()),
        ];
        let done = transactions(Plugin::TestDecoding, rows).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].commit_lsn, Lsn(3));
    }
}
