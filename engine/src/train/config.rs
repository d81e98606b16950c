//! The run configuration: one TOML file (every section optional, unknown keys rejected),
//! plus `section.key=value` overrides from the command line.

use crate::data::DataConfig;
use crate::device::DeviceChoice;
use crate::methods::MethodConfig;
use crate::model::{Activation, ModelConfig};
use crate::optim::OptimConfig;
use crate::schedule::ScheduleConfig;
use crate::sparsity::SparsityConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub seed: u64,
    pub epochs: usize,
    /// Sparse training needs longer schedules: trains `epochs x length_multiplier` epochs
    /// (rounded), with every fraction-based schedule stretched along.
    pub length_multiplier: f64,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub sparsity: SparsityConfig,
    pub method: MethodConfig,
    pub optim: OptimConfig,
    pub schedule: ScheduleConfig,
    pub run: RunConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Where metrics.jsonl, checkpoint.bin and summary.json go.
    pub out: PathBuf,
    pub device: DeviceChoice,
    /// Also write a checkpoint every this many steps (0: only at each epoch's end).
    pub checkpoint_every: usize,
    /// Emit a `step` metrics line every this many steps.
    pub log_every: usize,
    /// Evaluate on the dataset's test split at the end, when it has one.
    pub eval_test: bool,
    /// Sparse kernels: "auto" (by measurement, on wgpu), "sparse" (every layer) or
    /// "dense" (masked dense convolutions).
    pub kernels: crate::kernels::plan::KernelMode,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            out: PathBuf::from("runs/default"),
            device: DeviceChoice::Auto,
            checkpoint_every: 0,
            log_every: 1,
            eval_test: true,
            kernels: Default::default(),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            epochs: 10,
            length_multiplier: 1.0,
            batch_size: 128,
            eval_batch_size: 500,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            sparsity: SparsityConfig::default(),
            method: MethodConfig::default(),
            optim: OptimConfig::default(),
            schedule: ScheduleConfig::default(),
            run: RunConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl TrainConfig {
    /// Parses TOML text; `origin` (a file name) prefixes every error.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Self::from_table(parse_table(text, origin)?, origin)
    }

    /// Builds from a TOML file's text (or none) plus `key=value` overrides.
    pub fn load(text: Option<(&str, &str)>, overrides: &[String]) -> Result<Self, ConfigError> {
        let (mut table, origin) = match text {
            Some((text, origin)) => (parse_table(text, origin)?, origin.to_string()),
            None => (toml::Table::new(), "defaults".to_string()),
        };
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let origin = if overrides.is_empty() {
            origin
        } else {
            format!("{origin} + command-line settings")
        };
        Self::from_table(table, &origin)
    }

    fn from_table(table: toml::Table, origin: &str) -> Result<Self, ConfigError> {
        let config: TrainConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(format!("{origin}: {}", e.message())))?;
        config
            .validate()
            .map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 {
            return Err("epochs must be at least 1".into());
        }
        if !(self.length_multiplier.is_finite() && self.length_multiplier > 0.0)
            || self.total_epochs() == 0
        {
            return Err(format!(
                "length_multiplier = {} must be > 0 and leave at least one epoch",
                self.length_multiplier
            ));
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return Err("batch_size and eval_batch_size must be at least 1".into());
        }
        if self.run.log_every == 0 {
            return Err("run.log_every must be at least 1".into());
        }
        self.data.validate().map_err(|e| e.to_string())?;
        self.resolved_model().validate()?;
        self.sparsity.validate().map_err(|e| e.to_string())?;
        self.method.validate().map_err(|e| e.to_string())?;
        self.optim.validate()?;
        self.schedule.validate()?;
        Ok(())
    }

    /// Epochs actually trained: `epochs x length_multiplier`, rounded.
    pub fn total_epochs(&self) -> usize {
        (self.epochs as f64 * self.length_multiplier).round() as usize
    }

    /// The model as the run builds it: method "east" switches on its model tricks
    /// (DyReLU, weight sharing) as `[method.east]` says, on top of `[model]`.
    pub fn resolved_model(&self) -> ModelConfig {
        let mut model = self.model.clone();
        if self.method.name == "east" {
            if self.method.east.dyrelu {
                model.activation = Activation::Dyrelu;
            }
            if self.method.east.weight_sharing {
                model.shared_weights = true;
            }
        }
        model
    }

    /// DyReLU's phase window (e_s, e_e) in epochs: configured, or EAST's defaults
    /// e_s = M/2, e_e = M − 1 with M the first LR milestone (half of training when the
    /// schedule has none).
    pub fn dyrelu_phase_window(&self) -> (f64, f64) {
        let epochs = self.total_epochs() as f64;
        let first_milestone = match self.schedule.kind {
            crate::schedule::LrKind::Multistep => self
                .schedule
                .milestones
                .iter()
                .copied()
                .reduce(f64::min)
                .unwrap_or(0.5),
            _ => 0.5,
        } * epochs;
        let start = self
            .model
            .dyrelu
            .phase_start
            .unwrap_or(first_milestone / 2.0);
        let end = self
            .model
            .dyrelu
            .phase_end
            .unwrap_or(first_milestone - 1.0)
            .max(start);
        (start, end)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

fn parse_table(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError(format!("{origin}: not valid TOML: {e}")))
}

/// `a.b.c=value`: the value is read as TOML (number, bool, array) or else as a string.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ConfigError> {
    let (key, raw) = assignment.split_once('=').ok_or_else(|| {
        ConfigError(format!(
            "--set {assignment}: expected key=value, e.g. --set method.name=set"
        ))
    })?;
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut node = table;
    for part in &parts[..parts.len() - 1] {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError(format!("--set {assignment}: {part} is not a section")))?;
    }
    node.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_the_key_and_file() {
        let err = TrainConfig::from_toml("[method]\nnmae = \"rigl\"\n", "my.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("my.toml") && err.contains("nmae"), "{err}");
        let err = TrainConfig::from_toml("epoch = 3\n", "my.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("epoch"), "{err}");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let err = TrainConfig::from_toml("[sparsity]\nsparsity = 1.5\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sparsity") && err.contains("[0, 1)"), "{err}");
        let err = TrainConfig::from_toml("[model]\narch = \"resnet19\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("resnet19"), "{err}");
        let err = TrainConfig::from_toml("[data]\nkind = \"cifar10\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("data.path"), "{err}");
    }

    #[test]
    fn overrides_apply_and_round_trip() {
        let c = TrainConfig::load(
            None,
            &[
                "method.name=set".into(),
                "sparsity.sparsity=0.99".into(),
                "epochs=3".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.method.name, "set");
        assert_eq!(c.sparsity.sparsity, 0.99);
        assert_eq!(c.epochs, 3);
        assert_eq!(TrainConfig::from_toml(&c.to_toml(), "x").unwrap(), c);
        let err = TrainConfig::load(None, &["method.nope=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
