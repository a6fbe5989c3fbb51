//! Typed reads of environment variables, naming the variable in every error.

use std::collections::HashMap;
use std::time::Duration;

use crate::ConfigError;

/// Reads typed values from a variable map, with the variable named in every error.
pub(crate) struct Vars<'a>(pub(crate) &'a HashMap<String, String>);

impl Vars<'_> {
    pub(crate) fn text(&self, name: &'static str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn required(&self, name: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        self.text(name).ok_or(ConfigError::Missing { name, hint })
    }

    pub(crate) fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(value) = self.text(name) else {
            return Ok(default);
        };
        match value.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError::Invalid {
                name,
                value,
                problem: format!("expected a whole number from {min} to {max}"),
            }),
        }
    }

    pub(crate) fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.text(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(ConfigError::Invalid {
                name,
                value: other.to_owned(),
                problem: "expected true or false".into(),
            }),
        }
    }

    /// The contents of the file named by variable `name`, if set.
    pub(crate) fn file(&self, name: &'static str) -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(path) = self.text(name) else {
            return Ok(None);
        };
        std::fs::read(&path).map(Some).map_err(|e| ConfigError::Invalid {
            name,
            value: path,
            problem: format!("cannot read the file: {e}"),
        })
    }

    pub(crate) fn millis(
        &self,
        name: &'static str,
        default: Duration,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        let ms = self.number(name, default.as_millis() as u64, 1, max)?;
        Ok(Duration::from_millis(ms))
    }
}
