//! One assignment to the config: a dotted key and a typed TOML value. Every way a value is
//! set builds these (the CLI's flags and `--set`, the page's controls and links, a sweep's
//! variants, a resume's `--override`), and `apply` is the one place they reach the config.

use super::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub key: String,
    pub value: toml::Value,
}

impl Setting {
    pub fn new(key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }

    /// An unsigned count (`epochs`, `seed`): TOML integers stop at 2^63 - 1.
    pub fn count(key: &str, value: u64) -> Result<Self, ConfigError> {
        let value = i64::try_from(value).map_err(|_| {
            ConfigError(format!("{key} = {value} is out of range (at most 2^63-1)"))
        })?;
        Ok(Self::new(key, value))
    }

    /// `key=value` as typed on a command line or in a sweep file: the value is read as
    /// TOML (`0.9`, `true`, `"rigl"`), and a bare word that is not TOML as a string.
    pub fn parse(assignment: &str) -> Result<Self, ConfigError> {
        let (key, raw) = assignment.split_once('=').ok_or_else(|| {
            ConfigError(format!(
                "{assignment}: expected key=value, e.g. method.name=set"
            ))
        })?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ConfigError(format!(
                "{assignment}: the key must be dotted names, e.g. optim.lr"
            )));
        }
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        Ok(Self::new(key, value))
    }

    /// Parses every assignment of a list.
    pub fn parse_all<S: AsRef<str>>(assignments: &[S]) -> Result<Vec<Self>, ConfigError> {
        assignments
            .iter()
            .map(|a| Self::parse(a.as_ref()))
            .collect()
    }

    /// Writes the value into a config table, creating the sections on the way.
    pub fn apply(&self, table: &mut toml::Table) -> Result<(), ConfigError> {
        let parts: Vec<&str> = self.key.split('.').collect();
        let mut node = table;
        for part in &parts[..parts.len() - 1] {
            let entry = node
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry
                .as_table_mut()
                .ok_or_else(|| ConfigError(format!("{self}: {part} is not a section")))?;
        }
        node.insert(parts[parts.len() - 1].to_string(), self.value.clone());
        Ok(())
    }
}

/// `key=value` in TOML syntax: what `parse` reads back.
impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

impl FromStr for Setting {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_and_print_back_as_they_parse() {
        let cases = [
            ("optim.lr=0.05", toml::Value::Float(0.05)),
            ("epochs=3", toml::Value::Integer(3)),
            ("data.augment=false", toml::Value::Boolean(false)),
            ("method.name=\"rigl\"", toml::Value::String("rigl".into())),
            ("method.name=rigl", toml::Value::String("rigl".into())),
            ("run.out=runs/a b", toml::Value::String("runs/a b".into())),
        ];
        for (text, value) in cases {
            let s = Setting::parse(text).unwrap();
            assert_eq!(s.value, value, "{text}");
            assert_eq!(Setting::parse(&s.to_string()).unwrap(), s, "{text}");
        }
        let quoted = Setting::new("data.path", "C:\\data \"x\"");
        assert_eq!(Setting::parse(&quoted.to_string()).unwrap(), quoted);
    }

    #[test]
    fn malformed_assignments_say_what_is_expected() {
        for bad in ["optim.lr", "=3", "optim..lr=1", ".lr=1"] {
            assert!(Setting::parse(bad).is_err(), "{bad}");
        }
        let err = Setting::count("seed", u64::MAX).unwrap_err().to_string();
        assert!(err.contains("seed") && err.contains("2^63"), "{err}");
        let mut table = toml::Table::new();
        Setting::new("epochs", 3).apply(&mut table).unwrap();
        let err = Setting::new("epochs.x", 1).apply(&mut table).unwrap_err();
        assert!(err.to_string().contains("epochs is not a section"), "{err}");
    }
}
