//! How the invalidator learns of database changes (`INVALIDATION_SOURCE` and the drain knobs).

use std::time::Duration;

use crate::vars::Vars;
use crate::ConfigError;

/// Where committed database changes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvalidationSource {
    /// PostgreSQL's change triggers push events (with a settle pause); MySQL/MariaDB triggers
    /// fill an outbox table that scheduled drains read.
    #[default]
    Trigger,
    /// A logical replication slot on each PostgreSQL database, read by scheduled drains:
    /// committed changes only, in commit order, for every table, no trigger needed.
    Logical,
}

/// The invalidator's drains of committed changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSettings {
    /// `INVALIDATION_SOURCE`: `trigger` (the default) or `logical`.
    pub source: InvalidationSource,
    /// `CACHE_SLOT_NAME`: the logical replication slot (`cache_invalidation`).
    pub slot_name: String,
    /// `INVALIDATOR_POLL_MS`: the pause between two reads of a drain (200 ms).
    pub poll: Duration,
    /// `INVALIDATOR_DRAIN_SECONDS`: how long one scheduled drain keeps reading (55 s; the
    /// schedule starts one a minute).
    pub drain_for: Duration,
}

/// The slot's default name.
pub const DEFAULT_SLOT_NAME: &str = "cache_invalidation";

impl Default for ChangeSettings {
    fn default() -> Self {
        Self {
            source: InvalidationSource::Trigger,
            slot_name: DEFAULT_SLOT_NAME.to_owned(),
            poll: Duration::from_millis(200),
            drain_for: Duration::from_secs(55),
        }
    }
}

pub(crate) fn change_settings(v: &Vars) -> Result<ChangeSettings, ConfigError> {
    let defaults = ChangeSettings::default();
    let source = match v
        .text("INVALIDATION_SOURCE")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("trigger") => InvalidationSource::Trigger,
        Some("logical") => InvalidationSource::Logical,
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "INVALIDATION_SOURCE",
                value: other.to_owned(),
                problem: "expected trigger or logical".into(),
            })
        }
    };
    let slot_name = v.text("CACHE_SLOT_NAME").unwrap_or(defaults.slot_name);
    if !change_feed::is_identifier(&slot_name) {
        return Err(ConfigError::Invalid {
            name: "CACHE_SLOT_NAME",
            value: slot_name,
            problem: "a slot name is 1-63 lower-case letters, digits or _".into(),
        });
    }
    Ok(ChangeSettings {
        source,
        slot_name,
        poll: v.millis("INVALIDATOR_POLL_MS", defaults.poll, 60_000)?,
        drain_for: Duration::from_secs(v.number(
            "INVALIDATOR_DRAIN_SECONDS",
            defaults.drain_for.as_secs(),
            0,
            840,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{vars, BASE};
    use crate::ServiceConfig;

    #[test]
    fn the_change_source_and_its_slot_are_checked() {
        let c = ServiceConfig::from_map(&vars(&BASE)).unwrap();
        assert_eq!(c.changes, ChangeSettings::default());
        let mut more = vars(&BASE);
        more.insert("INVALIDATION_SOURCE".into(), "Logical".into());
        more.insert("CACHE_SLOT_NAME".into(), "cache_slot_2".into());
        more.insert("INVALIDATOR_POLL_MS".into(), "50".into());
        let c = ServiceConfig::from_map(&more).unwrap();
        assert_eq!(
            (c.changes.source, c.changes.slot_name.as_str(), c.changes.poll),
            (
                InvalidationSource::Logical,
                "cache_slot_2",
                Duration::from_millis(50)
            )
        );
        for (name, value) in [
            ("INVALIDATION_SOURCE", "binlog"),
            ("CACHE_SLOT_NAME", "Cache-Slot"),
            ("CACHE_SLOT_NAME", "2slot"),
            ("INVALIDATOR_DRAIN_SECONDS", "900"),
        ] {
            let mut bad = vars(&BASE);
            bad.insert(name.into(), value.into());
            let e = ServiceConfig::from_map(&bad).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }
}
