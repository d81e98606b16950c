//! Each method's own settings, as its `[method.<name>]` table. The method's file defines a
//! settings type and its registry entry names it; `[method]` keeps the tables untyped, so
//! adding a method with settings touches that file and one registry line, nothing else.

use super::{REGISTRY, SparsityError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// A method's settings type: every field has a default, and `validate` checks ranges.
pub trait MethodSettings: Serialize + DeserializeOwned + Default {
    fn validate(&self) -> Result<(), SparsityError> {
        Ok(())
    }
}

/// How the registry reads a method's table without knowing its type.
#[derive(Clone, Copy)]
pub struct SettingsTable {
    /// The table with every setting at its default.
    pub defaults: fn() -> toml::Value,
    /// Parses and validates a table (unset keys take their defaults) and returns it whole;
    /// errors name `method.<name>.<key>`.
    pub normalize: fn(&str, &toml::Value) -> Result<toml::Value, SparsityError>,
}

impl SettingsTable {
    pub const fn of<T: MethodSettings>() -> Self {
        Self {
            defaults: defaults_of::<T>,
            normalize: normalize_as::<T>,
        }
    }
}

fn defaults_of<T: MethodSettings>() -> toml::Value {
    toml::Value::try_from(T::default()).expect("a method's default settings are a TOML table")
}

/// Reads `value` as `method.<name>`'s settings, naming the key that is wrong.
pub(super) fn parse<T: MethodSettings>(
    name: &str,
    value: &toml::Value,
) -> Result<T, SparsityError> {
    let settings: T = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            format!("method.{name}")
        } else {
            format!("method.{name}.{path}")
        };
        SparsityError::Invalid(format!("{key}: {}", e.into_inner()))
    })?;
    settings.validate()?;
    Ok(settings)
}

fn normalize_as<T: MethodSettings>(
    name: &str,
    value: &toml::Value,
) -> Result<toml::Value, SparsityError> {
    let settings: T = parse(name, value)?;
    toml::Value::try_from(settings)
        .map_err(|e| SparsityError::Invalid(format!("method.{name}: {e}")))
}

/// The `[method.<name>]` tables of every method that has settings: each one given is
/// parsed and checked when the config is read, the others hold their defaults, so a saved
/// config shows every setting.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct MethodTables(BTreeMap<String, toml::Value>);

impl Default for MethodTables {
    fn default() -> Self {
        Self(
            REGISTRY
                .iter()
                .filter_map(|m| Some((m.name.to_string(), (m.settings?.defaults)())))
                .collect(),
        )
    }
}

impl MethodTables {
    /// Fills in and checks `given` over the defaults; a key that names no method with
    /// settings is an error.
    pub fn from_given(given: BTreeMap<String, toml::Value>) -> Result<Self, SparsityError> {
        let mut tables = Self::default();
        for (name, value) in given {
            let Some(table) = REGISTRY
                .iter()
                .find(|m| m.name == name)
                .and_then(|m| m.settings)
            else {
                let known: Vec<String> = tables.0.keys().map(|k| format!("[method.{k}]")).collect();
                return Err(SparsityError::Invalid(format!(
                    "method.{name} is not a setting: [method] holds name, update_every, \
                     drop_fraction, drop_schedule, end_fraction and the tables {}",
                    known.join(", ")
                )));
            };
            tables
                .0
                .insert(name.clone(), (table.normalize)(&name, &value)?);
        }
        Ok(tables)
    }

    /// Checks every table again (a config built or changed in code skips `from_given`).
    pub fn validate(&self) -> Result<(), SparsityError> {
        Self::from_given(self.0.clone()).map(|_| ())
    }

    /// `method.<name>`'s settings.
    pub fn get<T: MethodSettings>(&self, name: &str) -> Result<T, SparsityError> {
        match self.0.get(name) {
            Some(value) => parse(name, value),
            None => Ok(T::default()),
        }
    }

    /// Replaces `method.<name>`'s settings.
    pub fn set<T: MethodSettings>(
        &mut self,
        name: &str,
        settings: &T,
    ) -> Result<(), SparsityError> {
        let value = toml::Value::try_from(settings)
            .map_err(|e| SparsityError::Invalid(format!("method.{name}: {e}")))?;
        self.0.insert(name.to_string(), value);
        Ok(())
    }
}

impl<'de> Deserialize<'de> for MethodTables {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let given = BTreeMap::<String, toml::Value>::deserialize(d)?;
        Self::from_given(given).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::MethodConfig;
    use crate::methods::gmp::GmpConfig;

    fn method(text: &str) -> Result<MethodConfig, String> {
        toml::from_str::<MethodConfig>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_partial_table_is_filled_in_and_every_method_keeps_its_defaults() {
        let m = method("name = \"gmp\"\n[gmp]\nstart_fraction = 0.2\n").unwrap();
        let gmp: GmpConfig = m.settings("gmp").unwrap();
        assert_eq!(gmp.start_fraction, 0.2);
        assert_eq!(gmp.end_fraction, GmpConfig::default().end_fraction);
        // A saved config shows every method's table, and reads back equal.
        let text = toml::to_string(&m).unwrap();
        for table in ["[east]", "[gmp]", "[acdc]", "[lrr]", "[sculpt]"] {
            assert!(text.contains(table), "{table} in {text}");
        }
        assert_eq!(method(&text).unwrap(), m);
        assert_eq!(MethodConfig::default().tables, MethodTables::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = method("update_evry = 5\n").unwrap_err();
        assert!(err.contains("method.update_evry is not a setting"), "{err}");
        let err = method("[gmp]\nstart_fraktion = 0.2\n").unwrap_err();
        assert!(
            err.contains("method.gmp") && err.contains("start_fraktion"),
            "{err}"
        );
        let err = method("[gmp]\nstart_fraction = \"early\"\n").unwrap_err();
        assert!(err.contains("method.gmp.start_fraction"), "{err}");
        let err = method("[gmp]\nstart_fraction = 0.9\nend_fraction = 0.5\n").unwrap_err();
        assert!(err.contains("method.gmp"), "{err}");
    }
}
