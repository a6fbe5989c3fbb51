//! The seed-style Python handler (`seed_handler.py`), run beside ours against the same Redis and
//! MariaDB so the report can price both.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The script's rows, in the order the report shows them.
const ROWS: [&str; 2] = ["article_search miss", "article_search hit"];

/// Runs the script with `python` and returns its samples, labelled as Python seed rows.
pub fn run(
    python: &Path,
    redis_url: &str,
    mysql_url: &str,
    hits: usize,
    misses: usize,
) -> Result<Vec<(String, Vec<Duration>)>, String> {
    let mut samples = samples(python, redis_url, mysql_url, hits, misses)?;
    ROWS.iter().map(|name| row(&mut samples, name)).collect()
}

/// Runs the script for its hit row alone, such as under `--cpu-quota` (the script, spawned here,
/// starts in the caller's cgroup). One miss first fills the cache; its sample is dropped, as
/// misses are timed at full speed.
pub fn hits(
    python: &Path,
    redis_url: &str,
    mysql_url: &str,
    hits: usize,
) -> Result<(String, Vec<Duration>), String> {
    let mut samples = samples(python, redis_url, mysql_url, hits, 1)?;
    row(&mut samples, ROWS[1])
}

/// The script's samples in µs by row name.
fn samples(
    python: &Path,
    redis_url: &str,
    mysql_url: &str,
    hits: usize,
    misses: usize,
) -> Result<HashMap<String, Vec<u64>>, String> {
    let script = script();
    let output = Command::new(python)
        .arg(&script)
        .args(["--redis-url", redis_url, "--mysql-url", mysql_url])
        .args(["--hits", &hits.to_string(), "--misses", &misses.to_string()])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} {} failed ({}); it needs the redis and pymysql packages: {}",
            python.display(),
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("{} printed no sample table: {e}", script.display()))
}

/// Row `name` taken out of `samples`, labelled as a Python seed row.
fn row(samples: &mut HashMap<String, Vec<u64>>, name: &str) -> Result<(String, Vec<Duration>), String> {
    let micros = samples
        .remove(name)
        .ok_or(format!("{} printed no {name:?}", script().display()))?;
    let label = format!("Python seed handler: {name}");
    Ok((label, micros.into_iter().map(Duration::from_micros).collect()))
}

/// The handler script, beside this file.
fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/seed_handler.py")
}
