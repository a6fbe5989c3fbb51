//! Commit to first fresh read: how long a committed change takes to reach readers through the
//! logical source (a drain polling a replication slot), measured from the readers' side.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cache_aside::ReadMode;
use query_catalog::ResolvedParams;
use service_config::ServiceConfig;
use sqlx::Connection;
use use_cases::{Clients, DrainSettings};

/// Commits `samples` renames of a cached product, each at a random point of the poll cycle,
/// and times each from its commit to the first read that returns it (Redis tier only: the
/// memory tier's trust window would add its own delay).
pub async fn commit_to_fresh_read(
    vars: &HashMap<String, String>,
    database_url: &str,
    poll: Duration,
    samples: usize,
) -> Result<Vec<Duration>, String> {
    let mut vars = vars.clone();
    let poll_ms = poll.as_millis().to_string();
    for (k, v) in [
        ("INVALIDATION_SOURCE", "logical".to_owned()),
        ("CACHE_SLOT_NAME", format!("bench_poll_{poll_ms}")),
        ("CACHE_MEMORY_TRUST_MS", "0".to_owned()),
        ("CACHE_NAMESPACE", format!("bench-fresh-{poll_ms}")),
    ] {
        vars.insert(k.to_owned(), v);
    }
    let config = ServiceConfig::from_map(&vars).map_err(|e| e.to_string())?;
    let clients = Clients::build(&config).await.map_err(|e| e.to_string())?;
    let sources = use_cases::change_sources(&config)
        .await
        .map_err(|e| e.to_string())?;
    let source = sources
        .iter()
        .find(|s| s.database() == "main")
        .ok_or("no slot on the main database")?;
    let settings = DrainSettings {
        poll,
        ..DrainSettings::default()
    };
    // The slot first (its creation drops everything once).
    let opened = Instant::now();
    loop {
        let report = clients
            .invalidation()
            .drain(source, &settings, Instant::now())
            .await
            .map_err(|e| e.to_string())?;
        if report.slot_created > 0 || report.polls > 0 && report.errors.is_empty() {
            break;
        }
        if opened.elapsed() > Duration::from_secs(30) {
            return Err(format!("the slot could not be created: {:?}", report.errors));
        }
    }
    let query = clients.catalog().get("product").ok_or("no product query")?;
    let mut writer = sqlx::PgConnection::connect(database_url)
        .await
        .map_err(|e| e.to_string())?;
    let until = Instant::now() + Duration::from_secs(samples as u64) + Duration::from_secs(60);
    let drain = clients.invalidation().drain(source, &settings, until);
    let measure = async {
        let mut lags = Vec::with_capacity(samples);
        for i in 0..samples {
            let id = (1 + i % 60).to_string();
            let params =
                ResolvedParams::resolve(&query.params, [("id", id.as_str())]).map_err(|e| e.to_string())?;
            let read = || clients.run_query(query, &params, ReadMode::Cached.into());
            read().await.map_err(|e| e.to_string())?;
            let name = format!("fresh {poll_ms} {i}");
            sqlx::query("UPDATE products SET name = $1 WHERE id = $2::int")
                .bind(&name)
                .bind(&id)
                .execute(&mut writer)
                .await
                .map_err(|e| e.to_string())?;
            let committed = Instant::now();
            loop {
                let lookup = read().await.map_err(|e| e.to_string())?;
                if lookup.value.rows.get().contains(&name) {
                    lags.push(committed.elapsed());
                    break;
                }
                if committed.elapsed() > Duration::from_secs(10) {
                    return Err(format!("sample {i}: no fresh read within 10 s"));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            // The next commit lands at another point of the poll cycle.
            tokio::time::sleep(Duration::from_millis(fastrand::u64(
                0..poll_ms.parse::<u64>().unwrap_or(200),
            )))
            .await;
        }
        Ok(lags)
    };
    tokio::select! {
        lags = measure => lags,
        report = drain => Err(format!("the drain stopped before the samples were taken: {report:?}")),
    }
}
