//! The documentation, checked against the code: `docs/configuration.md` documents exactly the
//! environment variables `shared/service-config` reads, no more and no fewer.
//!
//! The variables read are the string literals of the crate's sources that look like variable
//! names. Test code is left out (it builds variable maps with names such as
//! `DB_SECRET_ID_ARTICLES`): from a line `#[cfg(test)]` to the end of its file, or the whole
//! file of a module declared as `#[cfg(test)] mod tests;`. The documented variables are the
//! names in backticks in the first column of the file's table rows. A database other than
//! `main` reads `<BASE>_<NAME>` (`DATABASE_URL_ARTICLES`); the documentation writes that family
//! as `DATABASE_URL_<NAME>`, and both sides count a family as its base name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use test_support::workspace_path;

/// The crate whose sources say which variables exist.
const CONFIG_SOURCES: &str = "shared/service-config/src";
/// The page that documents them.
const CONFIG_DOCS: &str = "docs/configuration.md";
/// How the documentation writes the per-database variants of a variable.
const PER_DATABASE: &str = "_<NAME>";
/// Variables named by a single word (none today). The scan takes only upper-case literals
/// with an underscore, so that no other upper-case word is mistaken for a variable: a variable
/// without one must be listed here.
const SINGLE_WORD_VARIABLES: [&str; 0] = [];

/// The family `name` belongs to: `DATABASE_URL_<NAME>` is `DATABASE_URL`.
fn family(name: &str) -> &str {
    name.strip_suffix(PER_DATABASE).unwrap_or(name)
}

/// A literal that names a variable: 3 or more of `A-Z`, `0-9`, `_`, starting with a letter,
/// ending with a letter or digit, with an underscore (or one of [`SINGLE_WORD_VARIABLES`]).
/// Prefixes such as `"DB_"` and text such as `"REDIS_URL is redis://..."` are not names.
fn is_variable_name(literal: &str) -> bool {
    let name = family(literal);
    name.len() >= 3
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.ends_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && (name.contains('_') || SINGLE_WORD_VARIABLES.contains(&name))
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found.sort();
}

/// The name of `line` if it declares a module whose body is in another file (`mod tests;`).
fn module_declaration(line: &str) -> Option<&str> {
    let line = line.trim();
    let rest = line
        .strip_prefix("pub(crate) ")
        .or_else(|| line.strip_prefix("pub "))
        .unwrap_or(line);
    let name = rest.strip_prefix("mod ")?.strip_suffix(';')?.trim();
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

/// Where the files of module `name`, declared in `file`, live: `<dir>/<name>.rs` or under
/// `<dir>/<name>/`, `<dir>` being the file's folder for `lib.rs`, `main.rs` and `mod.rs`, else
/// the folder named after the file.
fn module_path(file: &Path, name: &str) -> PathBuf {
    let folder = file.parent().unwrap();
    let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
    let dir = if ["lib", "main", "mod"].contains(&stem.as_str()) {
        folder.to_path_buf()
    } else {
        folder.join(stem)
    };
    dir.join(name)
}

/// The part of `text` that is not test code, and the paths (without `.rs`) of the modules it
/// declares as test modules in other files.
fn without_tests(file: &Path, text: &str) -> (String, Vec<PathBuf>) {
    let mut kept = String::new();
    let mut test_modules = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            kept.push_str(line);
            kept.push('\n');
            continue;
        }
        while lines.peek().is_some_and(|next| next.trim().is_empty()) {
            lines.next();
        }
        match lines
            .peek()
            .and_then(|next| module_declaration(next).map(str::to_owned))
        {
            Some(name) => {
                test_modules.push(module_path(file, &name));
                lines.next();
            }
            None => break,
        }
    }
    (kept, test_modules)
}

/// The contents of the string literals of Rust source `text` (escapes left as written),
/// skipping comments, character literals and lifetimes.
fn string_literals(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut found: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && at(i + 1) == Some('/')) {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && !ident(i.checked_sub(1).and_then(at)) && matches!(at(i + 1), Some('"' | '#')) {
            // A raw string: r"...", r#"..."#; anything else starting with r# is an identifier.
            let mut j = i + 1;
            while at(j) == Some('#') {
                j += 1;
            }
            if at(j) != Some('"') {
                i = j;
                continue;
            }
            let hashes = j - i - 1;
            let start = j + 1;
            let mut end = start;
            while end < chars.len() && !(chars[end] == '"' && (1..=hashes).all(|k| at(end + k) == Some('#')))
            {
                end += 1;
            }
            found.push(chars[start..end.min(chars.len())].iter().collect());
            i = end + 1 + hashes;
        } else if c == '"' {
            let start = i + 1;
            let mut end = start;
            while end < chars.len() && chars[end] != '"' {
                end += if chars[end] == '\\' { 2 } else { 1 };
            }
            let end = end.min(chars.len());
            found.push(chars[start..end].iter().collect());
            i = end + 1;
        } else if c == '\'' {
            // '\n', '\'', '\u{..}', 'x' are characters; 'a without a closing quote is a lifetime.
            if at(i + 1) == Some('\\') {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == Some('\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    found
}

/// The variables `shared/service-config` reads, by family, with the files that name each.
fn variables_read() -> BTreeMap<String, BTreeSet<String>> {
    let root = workspace_path(CONFIG_SOURCES);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut sources = Vec::new();
    let mut test_modules = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (code, tests) = without_tests(file, &text);
        sources.push((file, code));
        test_modules.extend(tests);
    }
    let is_test_file = |file: &Path| {
        test_modules
            .iter()
            .any(|module| file.with_extension("") == *module || file.starts_with(module))
    };
    let mut read: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, code) in sources {
        if is_test_file(file.as_path()) {
            continue;
        }
        let shown = file
            .strip_prefix(root.as_path())
            .unwrap_or(file.as_path())
            .display()
            .to_string();
        for literal in string_literals(&code) {
            if is_variable_name(&literal) {
                read.entry(family(&literal).to_owned())
                    .or_default()
                    .insert(shown.clone());
            }
        }
    }
    read
}

/// The names in backticks in the first column of the table rows of `markdown`, outside code
/// blocks, in order (a name documented twice appears twice).
fn documented_names(markdown: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        let line = line.trim();
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let Some(row) = line.strip_prefix('|').filter(|_| !in_code) else {
            continue;
        };
        let first = row.split('|').next().unwrap_or("");
        names.extend(first.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    names
}

#[test]
fn the_scan_finds_literals_outside_comments_and_tests() {
    let source = r##"
        // "IN_A_COMMENT"
        /* "IN_A_BLOCK" */
        fn f<'a>(v: &'a Vars) { v.text("REDIS_URL"); let q = '"'; let e = '\''; v.text("CACHE_NAMESPACE"); }
        const RAW: &str = r#"one " quote"#;
        fn g() { v.text(
            "DB_HOST"); v.flag("REDIS_CLUSTER"); strip_prefix("DB_"); msg("REDIS_URL is redis://"); }
        #[cfg(test)]
        mod tests;
        fn h() { v.text("AFTER_A_DECLARED_TEST_MODULE"); }
        #[cfg(test)]
        mod inline { fn t() { v.text("DB_SECRET_ID_ARTICLES"); } }
    "##;
    let (code, tests) = without_tests(Path::new("src/lib.rs"), source);
    assert_eq!(tests, [PathBuf::from("src/tests")]);
    let names: Vec<String> = string_literals(&code)
        .into_iter()
        .filter(|l| is_variable_name(l))
        .collect();
    assert_eq!(
        names,
        [
            "REDIS_URL",
            "CACHE_NAMESPACE",
            "DB_HOST",
            "REDIS_CLUSTER",
            "AFTER_A_DECLARED_TEST_MODULE"
        ]
    );
    assert_eq!(
        documented_names(
            "| `A_B`, `C_D_<NAME>` | `x` | y |\n|---|---|---|\n| variable | default | meaning |"
        ),
        ["A_B", "C_D_<NAME>"]
    );
    assert_eq!(family("DATABASE_URL_<NAME>"), "DATABASE_URL");
}

#[test]
fn configuration_documents_every_variable_service_config_reads_and_no_other() {
    let read = variables_read();
    for expected in ["REDIS_URL", "DATABASE_URL", "AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"] {
        assert!(
            read.contains_key(expected),
            "the scan of {CONFIG_SOURCES} misses {expected}: {read:?}"
        );
    }
    let path = workspace_path(CONFIG_DOCS);
    let markdown = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let names = documented_names(&markdown);
    let mut seen = BTreeSet::new();
    let twice: BTreeSet<&String> = names.iter().filter(|n| !seen.insert(n.as_str())).collect();
    assert!(
        twice.is_empty(),
        "{CONFIG_DOCS} documents these more than once: {twice:?}"
    );
    let documented: BTreeSet<&str> = names.iter().map(|n| family(n)).collect();
    let undocumented: Vec<String> = read
        .iter()
        .filter(|(name, _)| !documented.contains(name.as_str()))
        .map(|(name, files)| {
            format!(
                "{name} (read in {})",
                files.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    let stale: Vec<&str> = documented
        .iter()
        .filter(|name| !read.contains_key(**name))
        .copied()
        .collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "{CONFIG_DOCS} is out of step with {CONFIG_SOURCES}.\n\
         Read but undocumented (add a table row): {undocumented:?}\n\
         Documented but no longer read (remove the row): {stale:?}"
    );
}
