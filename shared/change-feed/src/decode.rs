//! The two output plugins RDS offers, turned into one shape: `wal2json` (format 2, one JSON
//! object per change) where the server has it, `test_decoding` (text, always there) otherwise.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Lsn;

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
    /// Its row changes, in order. Past [`MAX_ROW_CHANGES`] the rest are kept as one
    /// table-level change per table (no column values), so memory stays bounded.
    pub changes: Vec<RowChange>,
    /// Whether a line of it could not be read at all (not even its table): whoever applies it
    /// must drop everything.
    pub unreadable: bool,
}

/// What one read of a slot returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Committed transactions, in commit order.
    pub transactions: Vec<Transaction>,
    /// How far the slot may be moved once they are applied: the end of the last line read
    /// outside any transaction (a commit, or a non-transactional message). `None`: nothing.
    pub consumed_to: Option<Lsn>,
}

/// Row changes kept with their values per transaction; a bulk statement past it is applied by
/// table (its tag), which is what it would drop anyway.
pub const MAX_ROW_CHANGES: usize = 10_000;

/// One line of plugin output.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    Begin,
    Commit,
    Change(RowChange),
    /// Logical messages and the like: nothing to invalidate.
    Other,
    /// A line this reader cannot make sense of (never echoed: it may hold row data).
    Unreadable,
}

/// `public."Orders"` → `orders`: PostgreSQL folds unquoted names to lower case and the catalog
/// names tables in lower case, so a quoted mixed-case name is compared folded (at worst a tag
/// too many is dropped).
pub(crate) fn bare_table(qualified: &str) -> String {
    let mut quoted = false;
    let mut last = 0;
    for (i, c) in qualified.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => last = i + 1,
            _ => {}
        }
    }
    qualified[last..].trim().trim_matches('"').to_lowercase()
}

/// A table-level change of `table`: no column values, so its tag goes.
fn table_change(table: String, operation: Operation) -> RowChange {
    RowChange {
        table,
        operation,
        new: BTreeMap::new(),
        old: BTreeMap::new(),
    }
}

fn wal2json(data: &str) -> Line {
    let Ok(value) = serde_json::from_str::<Value>(data) else {
        return Line::Unreadable;
    };
    let action = value.get("action").and_then(Value::as_str).unwrap_or("");
    let operation = match action {
        "B" => return Line::Begin,
        "C" => return Line::Commit,
        "I" => Operation::Insert,
        "U" => Operation::Update,
        "D" => Operation::Delete,
        "T" => Operation::Truncate,
        _ => return Line::Other,
    };
    let Some(table) = value.get("table").and_then(Value::as_str) else {
        return Line::Unreadable;
    };
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
    Line::Change(RowChange {
        table: table.to_lowercase(),
        operation,
        new: columns("columns"),
        old: columns("identity"),
    })
}

/// `table public.reviews: INSERT: id[bigint]:1 body[text]:'it''s fine' note[text]:null`.
/// Several tables truncated at once come as one line (`table public.a, public.b: TRUNCATE:`);
/// a change whose columns cannot be read is kept at table level (its tag goes).
fn test_decoding(data: &str) -> Vec<Line> {
    if data == "BEGIN" || data.starts_with("BEGIN ") {
        return vec![Line::Begin];
    }
    if data == "COMMIT" || data.starts_with("COMMIT ") {
        return vec![Line::Commit];
    }
    let Some(rest) = data.strip_prefix("table ") else {
        return vec![Line::Other];
    };
    let Some((names, rest)) = split_table_name(rest) else {
        return vec![Line::Unreadable];
    };
    let (operation, tuple) = rest.split_once(": ").unwrap_or((rest.trim_end_matches(':'), ""));
    let operation = match operation {
        "INSERT" => Operation::Insert,
        "UPDATE" => Operation::Update,
        "DELETE" => Operation::Delete,
        "TRUNCATE" => Operation::Truncate,
        _ => return vec![Line::Unreadable],
    };
    let tables = split_top_level(&names, ',');
    if tables.len() != 1 || operation == Operation::Truncate || tuple.starts_with('(') {
        // A truncate (of one table or several), "(no-tuple-data)": nothing about the columns.
        return tables
            .iter()
            .map(|t| Line::Change(table_change(bare_table(t), operation)))
            .collect();
    }
    let table = bare_table(&tables[0]);
    let parsed = match operation {
        Operation::Update => match tuple.strip_prefix("old-key: ") {
            Some(rest) => rest
                .split_once(" new-tuple: ")
                .and_then(|(old, new)| Some((columns(old)?, columns(new)?))),
            None => columns(tuple).map(|new| (BTreeMap::new(), new)),
        },
        Operation::Delete => columns(tuple).map(|old| (old, BTreeMap::new())),
        _ => columns(tuple).map(|new| (BTreeMap::new(), new)),
    };
    let mut change = table_change(table, operation);
    if let Some((old, new)) = parsed {
        change.old = old;
        change.new = new;
    }
    vec![Line::Change(change)]
}

/// `a, "b,c", d` split at the commas outside double quotes.
fn split_top_level(text: &str, separator: char) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(text[start..i].trim().to_owned());
            start = i + 1;
        }
    }
    parts.push(text[start..].trim().to_owned());
    parts
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
            if token == "unchanged-toast-datum" {
                // A large value the update did not touch: not logged, so unknown here.
                continue;
            }
            (token != "null").then(|| token.to_owned())
        };
        out.insert(name, value);
    }
}

/// Groups decoded lines, as they stream in, into committed transactions; lines after the
/// last commit (a batch cut short) are left for the next read.
#[derive(Debug)]
pub(crate) struct Batcher {
    plugin: Plugin,
    batch: Batch,
    open: Option<Open>,
}

/// The transaction being read.
#[derive(Debug, Default)]
struct Open {
    changes: Vec<RowChange>,
    /// Tables changed past [`MAX_ROW_CHANGES`], kept once each.
    overflow: std::collections::BTreeSet<String>,
    unreadable: bool,
}

impl Batcher {
    pub(crate) fn new(plugin: Plugin) -> Self {
        Self {
            plugin,
            batch: Batch::default(),
            open: None,
        }
    }

    /// Takes one line of the slot's output.
    pub(crate) fn push(&mut self, lsn: Lsn, data: &str) {
        let lines = match self.plugin {
            Plugin::Wal2Json => vec![wal2json(data)],
            Plugin::TestDecoding => test_decoding(data),
        };
        for line in lines {
            match line {
                Line::Begin => self.open = Some(Open::default()),
                Line::Commit => {
                    let open = self.open.take().unwrap_or_default();
                    let mut changes = open.changes;
                    changes.extend(
                        open.overflow
                            .into_iter()
                            .map(|table| table_change(table, Operation::Truncate)),
                    );
                    self.batch.transactions.push(Transaction {
                        commit_lsn: lsn,
                        changes,
                        unreadable: open.unreadable,
                    });
                    self.batch.consumed_to = Some(lsn);
                }
                Line::Change(change) => {
                    let open = self.open.get_or_insert_with(Open::default);
                    if open.changes.len() < MAX_ROW_CHANGES {
                        open.changes.push(change);
                    } else {
                        open.overflow.insert(change.table);
                    }
                }
                Line::Unreadable => {
                    tracing::warn!(%lsn, "a decoded line could not be read; its transaction drops everything");
                    self.open.get_or_insert_with(Open::default).unreadable = true;
                }
                Line::Other => {
                    // A non-transactional message between transactions may be passed.
                    if self.open.is_none() {
                        self.batch.consumed_to = Some(lsn);
                    }
                }
            }
        }
    }

    /// The committed transactions read.
    pub(crate) fn finish(self) -> Batch {
        self.batch
    }
}

/// Groups `rows` at once (tests).
#[cfg(test)]
fn transactions(plugin: Plugin, rows: impl IntoIterator<Item = (Lsn, String)>) -> Batch {
    let mut batcher = Batcher::new(plugin);
    for (lsn, data) in rows {
        batcher.push(lsn, &data);
    }
    batcher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(mut lines: Vec<Line>) -> RowChange {
        match lines.pop() {
            Some(Line::Change(c)) if lines.is_empty() => c,
            other => panic!("not one change: {other:?}"),
        }
    }

    #[test]
    fn test_decoding_rows_with_quotes_spaces_and_nulls() {
        let c = change(test_decoding(
            "table public.reviews: INSERT: id[bigint]:7 restaurant_id[integer]:3 \
             body[text]:'it''s: fine [really]' created_at[timestamp with time zone]:'2026-01-01 00:00:00+00' \
             tags[integer[]]:'{1,2}' note[text]:null",
        ));
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
        let u = change(test_decoding(
            "table public.restaurants: UPDATE: old-key: id[integer]:1 name[text]:'Blue Fig' \
             new-tuple: id[integer]:1 name[text]:'Red Fig'",
        ));
        assert_eq!(u.values_of("name"), Some(vec![Some("Blue Fig"), Some("Red Fig")]));
        let u = change(test_decoding(
            "table public.restaurants: UPDATE: id[integer]:1 name[text]:'X'",
        ));
        assert_eq!(u.values_of("name"), None, "the name before is unknown");
        let d = change(test_decoding("table public.products: DELETE: id[integer]:4"));
        assert_eq!(d.values_of("id"), Some(vec![Some("4")]));
        assert_eq!(d.values_of("name"), None);
        let t = change(test_decoding("table public.products: TRUNCATE: (no-flags)"));
        assert_eq!(t.operation, Operation::Truncate);
        assert_eq!(test_decoding("BEGIN"), vec![Line::Begin]);
        assert_eq!(test_decoding("COMMIT"), vec![Line::Commit]);
    }

    #[test]
    fn several_truncated_tables_quoted_names_toast_and_unreadable_lines() {
        let tables: Vec<String> = test_decoding("table public.a, public.\"Odd, Name\": TRUNCATE: (cascade)")
            .into_iter()
            .map(|l| change(vec![l]).table)
            .collect();
        assert_eq!(tables, ["a", "odd, name"]);
        assert_eq!(
            change(test_decoding("table public.\"Orders\": DELETE: id[integer]:1")).table,
            "orders"
        );
        let toast = change(test_decoding(
            "table public.docs: UPDATE: old-key: id[integer]:1 body[text]:'x' new-tuple: id[integer]:1 body[text]:unchanged-toast-datum",
        ));
        assert_eq!(
            toast.values_of("body"),
            None,
            "an unchanged TOAST value is unknown"
        );
        let bad = change(test_decoding(
            "table public.products: INSERT: this is not a tuple",
        ));
        assert_eq!(
            (bad.table.as_str(), bad.values_of("id")),
            ("products", None),
            "kept at table level"
        );
        assert_eq!(test_decoding("table nonsense"), vec![Line::Unreadable]);
    }

    #[test]
    fn wal2json_format_two() {
        let c = change(vec![wal2json(
            r#"{"action":"U","schema":"public","table":"Restaurants","columns":[{"name":"id","value":1},{"name":"name","value":"Red Fig"}],"identity":[{"name":"id","value":1},{"name":"name","value":"Blue Fig"}]}"#,
        )]);
        assert_eq!(c.table, "restaurants");
        assert_eq!(c.values_of("name"), Some(vec![Some("Blue Fig"), Some("Red Fig")]));
        assert_eq!(c.values_of("id"), Some(vec![Some("1")]));
        assert_eq!(wal2json(r#"{"action":"B"}"#), Line::Begin);
        assert_eq!(wal2json(r#"{"action":"M","prefix":"x"}"#), Line::Other);
        assert_eq!(wal2json("{not json"), Line::Unreadable);
    }

    #[test]
    fn only_whole_transactions_come_out_and_messages_between_them_are_passed() {
        let rows = vec![
            (Lsn(1), "BEGIN".to_owned()),
            (Lsn(2), "table public.products: DELETE: id[integer]:4".to_owned()),
            (Lsn(3), "COMMIT".to_owned()),
            (
                Lsn(4),
                "message: transactional: 0 prefix: x, sz: 1 content:y".to_owned(),
            ),
            (Lsn(5), "BEGIN".to_owned()),
            (Lsn(6), "table public.products: DELETE: id[integer]:5".to_owned()),
        ];
        let batch = transactions(Plugin::TestDecoding, rows);
        assert_eq!(batch.transactions.len(), 1);
        assert_eq!(batch.transactions[0].commit_lsn, Lsn(3));
        assert_eq!(batch.consumed_to, Some(Lsn(4)));
    }

    #[test]
    fn a_bulk_transaction_is_kept_by_table_past_the_cap() {
        let mut rows = vec![(Lsn(1), "BEGIN".to_owned())];
        for i in 0..MAX_ROW_CHANGES + 500 {
            let table = if i % 2 == 0 { "a" } else { "b" };
            rows.push((Lsn(2), format!("table public.{table}: INSERT: id[integer]:{i}")));
        }
        rows.push((Lsn(3), "table public.c: INSERT: id[integer]:1".to_owned()));
        rows.push((Lsn(4), "COMMIT".to_owned()));
        let batch = transactions(Plugin::TestDecoding, rows);
        let changes = &batch.transactions[0].changes;
        assert_eq!(changes.len(), MAX_ROW_CHANGES + 3);
        let tail: Vec<&str> = changes[MAX_ROW_CHANGES..]
            .iter()
            .map(|c| c.table.as_str())
            .collect();
        assert_eq!(tail, ["a", "b", "c"]);
        assert!(changes[MAX_ROW_CHANGES..]
            .iter()
            .all(|c| c.values_of("id").is_none()));
    }
}
