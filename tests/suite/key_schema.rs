//! The restaurants table's key schema has one definition, `shared/dynamo-origin/key-schema.json`
//! (`dynamo_origin::KEY_SCHEMA`): template.yaml must declare the same keys, and the suite's
//! tables are created from it. template.yaml uses CloudFormation's short tags (`!Ref`), which a
//! plain YAML reader refuses, so it is read as text: the resource's lines, then its two lists.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeDefinition, KeySchemaElement, KeyType, ScalarAttributeType};
use serde_json::Value;
use test_support::workspace_path;

/// One entry of a list: attribute → value, as text.
type Entry = BTreeMap<String, String>;

/// List `list` (`KeySchema` or `AttributeDefinitions`) of the key schema file.
fn schema_list(list: &str) -> Vec<Entry> {
    let schema: Value = serde_json::from_str(dynamo_origin::KEY_SCHEMA).expect("key-schema.json is JSON");
    schema[list]
        .as_array()
        .unwrap_or_else(|| panic!("key-schema.json has no {list} list"))
        .iter()
        .map(|entry| {
            entry
                .as_object()
                .expect("each entry is an object")
                .iter()
                .map(|(name, value)| (name.clone(), value.as_str().expect("values are text").to_owned()))
                .collect::<Entry>()
        })
        .collect()
}

/// The table's key schema as `CreateTable` takes it, from the file.
pub(crate) fn key_schema() -> (Vec<KeySchemaElement>, Vec<AttributeDefinition>) {
    let keys: Vec<KeySchemaElement> = schema_list("KeySchema")
        .iter()
        .map(|entry| {
            KeySchemaElement::builder()
                .attribute_name(&entry["AttributeName"])
                .key_type(KeyType::from(entry["KeyType"].as_str()))
                .build()
                .unwrap()
        })
        .collect();
    let attributes: Vec<AttributeDefinition> = schema_list("AttributeDefinitions")
        .iter()
        .map(|entry| {
            AttributeDefinition::builder()
                .attribute_name(&entry["AttributeName"])
                .attribute_type(ScalarAttributeType::from(entry["AttributeType"].as_str()))
                .build()
                .unwrap()
        })
        .collect();
    (keys, attributes)
}

/// Leading spaces of `line`.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines of resource `name` of template.yaml: its `  Name:` line and the more indented
/// (or blank) lines after it.
fn resource<'a>(template: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("  {name}:");
    let mut lines = template.lines().skip_while(|line| line.trim_end() != header);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("template.yaml declares no {name}"));
    std::iter::once(first)
        .chain(lines.take_while(|line| line.trim().is_empty() || indent(line) > 2))
        .collect()
}

/// Adds the `Name: value` pairs of `text` (`{ A: x, B: y }` or `A: x`) to `entry`.
fn add_pairs(entry: &mut Entry, text: &str) {
    let text = text.trim().trim_start_matches('{').trim_end_matches('}');
    for pair in text.split(',') {
        if let Some((name, value)) = pair.split_once(':') {
            let value = value.trim().trim_matches(|c: char| c == '"' || c == '\'');
            entry.insert(name.trim().to_owned(), value.to_owned());
        }
    }
}

/// The entries of list `key` in `block`, flow (`- { A: x, B: y }`) or block style.
fn yaml_list(block: &[&str], key: &str) -> Vec<Entry> {
    let start = block
        .iter()
        .position(|line| line.trim() == format!("{key}:"))
        .unwrap_or_else(|| panic!("{} has no {key}", block[0].trim()));
    let key_indent = indent(block[start]);
    let mut entries: Vec<Entry> = Vec::new();
    for &line in &block[start + 1..] {
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let at = indent(line);
        match text.strip_prefix("- ") {
            Some(item) if at >= key_indent => {
                let mut entry = Entry::new();
                add_pairs(&mut entry, item);
                entries.push(entry);
            }
            None if at > key_indent => match entries.last_mut() {
                Some(entry) => add_pairs(entry, text),
                None => break,
            },
            _ => break,
        }
    }
    entries
}

#[test]
fn the_template_declares_the_key_schema() {
    let template = std::fs::read_to_string(workspace_path("template.yaml")).expect("template.yaml");
    let table = resource(&template, "RestaurantsTable");
    for list in ["KeySchema", "AttributeDefinitions"] {
        assert_eq!(
            yaml_list(&table, list),
            schema_list(list),
            "RestaurantsTable's {list} in template.yaml is not shared/dynamo-origin/key-schema.json's"
        );
    }
    // The invalidator's stream filter matches on the sort key by name.
    let filter = format!(r#"{{"Keys": {{"{}": "#, dynamo_origin::SORT_KEY);
    assert!(
        template.contains(&filter),
        "the stream filter of template.yaml must name the sort key {}",
        dynamo_origin::SORT_KEY
    );
}

#[test]
fn the_template_reader_sees_both_list_styles() {
    let block = [
        "  Table:",
        "    Properties:",
        "      KeySchema:",
        "        - { AttributeName: PK, KeyType: HASH }",
        "        - AttributeName: SK",
        "          KeyType: RANGE",
        "      Other: x",
    ];
    let entry = |name: &str, kind: &str| {
        Entry::from([
            ("AttributeName".to_owned(), name.to_owned()),
            ("KeyType".to_owned(), kind.to_owned()),
        ])
    };
    assert_eq!(
        yaml_list(&block, "KeySchema"),
        [entry("PK", "HASH"), entry("SK", "RANGE")]
    );
}
