//! The workspace's shape, checked: which crate may import which, and who reads the environment.
//! Imports flow functions → use cases → {catalog, SQL origin, cache-aside, AWS clients}, never
//! back up; only the configuration crate reads environment variables.

use std::collections::BTreeSet;
use std::path::Path;

use test_support::workspace_path;

/// The crates at the bottom: they import none of the workspace's crates.
const LEAVES: [&str; 6] = [
    "query-catalog",
    "sql-origin",
    "change-feed",
    "dynamo-origin",
    "cache-aside",
    "aws-clients",
];
const FUNCTIONS: [&str; 3] = ["query-api", "ingester", "invalidator"];

/// The names of `section` (`dependencies`, `dev-dependencies`) of the crate at `dir`.
fn dependencies(dir: &str, section: &str) -> BTreeSet<String> {
    let path = workspace_path(&format!("{dir}/Cargo.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let manifest: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    manifest
        .get(section)
        .and_then(|s| s.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

fn shared_crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace_path("shared"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| workspace_path(&format!("shared/{n}/Cargo.toml")).exists())
        .collect();
    names.sort();
    names
}

fn workspace_crates() -> BTreeSet<String> {
    shared_crates()
        .into_iter()
        .chain(FUNCTIONS.iter().map(|f| f.to_string()))
        .collect()
}

#[test]
fn shared_crates_never_import_a_function_and_leaves_import_none_of_ours() {
    let ours = workspace_crates();
    for name in shared_crates() {
        let deps = dependencies(&format!("shared/{name}"), "dependencies");
        for function in FUNCTIONS {
            assert!(
                !deps.contains(function),
                "shared/{name} imports function {function}"
            );
        }
        if LEAVES.contains(&name.as_str()) {
            let internal: Vec<&String> = deps.intersection(&ours).collect();
            assert!(internal.is_empty(), "leaf crate {name} imports {internal:?}");
            let dev: Vec<String> = dependencies(&format!("shared/{name}"), "dev-dependencies")
                .intersection(&ours)
                .filter(|d| *d != "test-support")
                .cloned()
                .collect();
            assert!(dev.is_empty(), "{name}'s tests and benches import {dev:?}");
        }
    }
    for name in LEAVES {
        assert!(shared_crates().iter().any(|c| c == name), "shared/{name} exists");
    }
}

#[test]
fn the_catalog_has_no_database_code() {
    let deps = dependencies("shared/query-catalog", "dependencies");
    assert!(!deps.contains("sqlx") && !deps.contains("sql-origin"), "{deps:?}");
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn only_the_configuration_crate_reads_the_environment() {
    let mut files = Vec::new();
    for dir in ["functions", "shared"] {
        sources(&workspace_path(dir), &mut files);
    }
    let allowed = [
        "shared/service-config/",
        "shared/test-support/",
        "/benches/",
        "/tests/",
    ];
    let readers: Vec<String> = files
        .iter()
        .map(|f| f.to_string_lossy().replace('\\', "/"))
        .filter(|f| !allowed.iter().any(|a| f.contains(a)))
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.contains("env::var") || text.contains("env::vars")
        })
        .collect();
    assert!(
        readers.is_empty(),
        "environment read outside service-config: {readers:?}"
    );
}
