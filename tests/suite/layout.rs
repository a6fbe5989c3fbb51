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

/// Use cases are the only door: a function names no workspace crate but `use-cases` and
/// `service-config` (whose types it needs to start), in its manifest or in its code.
#[test]
fn functions_import_only_use_cases_and_the_configuration() {
    let ours = workspace_crates();
    let allowed = ["use-cases", "service-config"];
    for function in FUNCTIONS {
        let deps = dependencies(&format!("functions/{function}"), "dependencies");
        let inner: Vec<&String> = deps
            .intersection(&ours)
            .filter(|d| !allowed.contains(&d.as_str()))
            .collect();
        assert!(
            inner.is_empty(),
            "{function} imports {inner:?}; go through use-cases"
        );
        let mut files = Vec::new();
        sources(&workspace_path(&format!("functions/{function}/src")), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // One composition root builds what a function needs.
            for builder in [
                "Clients::build(",
                "cache_only(",
                "change_sources(",
                "Invalidation::new(",
            ] {
                assert!(
                    !text.contains(builder),
                    "{} calls {builder}; build through use_cases::compose",
                    file.display()
                );
            }
            for name in &ours {
                let path = format!("{}::", name.replace('-', "_"));
                if allowed.contains(&name.as_str()) || name == function {
                    continue;
                }
                assert!(
                    !text.contains(&path),
                    "{} names {path}; go through use-cases",
                    file.display()
                );
            }
        }
    }
}

/// The modules of cache-aside each file imports: `crate::x` paths, with re-exported names
/// resolved through `lib.rs`'s `pub use` lines. Comments and test modules are left out.
fn cache_aside_imports() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let dir = workspace_path("shared/cache-aside/src");
    let lib = std::fs::read_to_string(dir.join("lib.rs")).unwrap();
    let mut modules = BTreeSet::new();
    let mut exported = std::collections::HashMap::new();
    for line in lib.lines() {
        if let Some(m) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';')) {
            modules.insert(m.to_owned());
        }
    }
    // `pub use module::{A, B};` possibly over several lines.
    for statement in lib.split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        for name in names.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if !name.is_empty() {
                exported.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    let mut graph = std::collections::BTreeMap::new();
    for module in &modules {
        let text = std::fs::read_to_string(dir.join(format!("{module}.rs"))).unwrap();
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut imports = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            // `crate::{a, b::c}` names several; `crate::x::...` one.
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end].split(',').map(|n| n.trim()).collect()
            } else {
                vec![rest]
            };
            for name in names {
                let first: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let target = if modules.contains(&first) {
                    Some(first)
                } else {
                    exported.get(&first).cloned()
                };
                if let Some(target) = target.filter(|t| t != module) {
                    imports.insert(target);
                }
            }
        }
        graph.insert(module.clone(), imports);
    }
    graph
}

/// No two modules of cache-aside reach each other through their imports.
#[test]
fn cache_aside_modules_import_each_other_in_no_circle() {
    let graph = cache_aside_imports();
    assert!(graph.len() > 10 && graph["fill"].contains("cache"), "{graph:?}");
    // Depth-first search for a back edge, reporting the circle it closes.
    fn visit(
        node: &str,
        graph: &std::collections::BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("cache-aside modules import in a circle: {:?}", &path[at..]);
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}
