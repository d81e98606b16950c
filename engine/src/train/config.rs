//! The run configuration: one TOML file (every section optional, unknown keys rejected),
//! plus `section.key=value` overrides from the command line.

use super::setting::Setting;
use crate::data::DataConfig;
use crate::device::DeviceChoice;
use crate::methods::MethodConfig;
use crate::model::ModelConfig;
use crate::optim::OptimConfig;
use crate::schedule::ScheduleConfig;
use crate::sparsity::SparsityConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// Sparse kernels: "auto" (by the shipped crossover table), "timed" (by a timing at
    /// the start), "sparse" (every layer) or "dense" (masked dense convolutions).
    pub kernels: crate::kernels::choice::KernelMode,
    /// Before each evaluation, re-estimate BatchNorm's running statistics on this many
    /// training batches (forward only; 0: keep the running averages of training). A mask
    /// update at extreme sparsity leaves the averages describing the previous network.
    pub bn_recalibration_batches: usize,
    /// Start from the weights in this safetensors file (`sparselab export`, or PyTorch's
    /// CIFAR-ResNet names) instead of a random initialisation; the method's initial masks
    /// keep the file's masks first, then its largest weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
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
            bn_recalibration_batches: 4,
            init_from: None,
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

    /// Builds from a TOML file's text (or none) plus settings on top.
    pub fn load(text: Option<(&str, &str)>, overrides: &[Setting]) -> Result<Self, ConfigError> {
        let table = Self::explicit_settings(text, overrides)?;
        let origin = match text {
            Some((_, origin)) => origin.to_string(),
            None => "defaults".to_string(),
        };
        let origin = if overrides.is_empty() {
            origin
        } else {
            format!("{origin} + command-line settings")
        };
        Self::from_table(table, &origin)
    }

    /// The settings a user gave (a TOML file's text, then `key=value` overrides), before
    /// defaults fill the rest: what a resume compares with its checkpoint.
    pub fn explicit_settings(
        text: Option<(&str, &str)>,
        overrides: &[Setting],
    ) -> Result<toml::Table, ConfigError> {
        let mut table = match text {
            Some((text, origin)) => parse_table(text, origin)?,
            None => toml::Table::new(),
        };
        for setting in overrides {
            setting.apply(&mut table)?;
        }
        Ok(table)
    }

    fn from_table(table: toml::Table, origin: &str) -> Result<Self, ConfigError> {
        let config = Self::from_table_checked(table, origin)?;
        config
            .data
            .validate()
            .map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        Ok(config)
    }

    /// Deserialises and checks the settings (not whether the data file exists).
    pub fn from_table_checked(table: toml::Table, origin: &str) -> Result<Self, ConfigError> {
        // The path tracker names the key of a type error ("optim.lr: invalid type ...").
        let config: TrainConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                let message = e.into_inner().message().to_string();
                // A method's table names its own key (`method.gmp.start_fraction: ...`).
                if key == "." || message.starts_with(&format!("{key}.")) {
                    ConfigError(format!("{origin}: {message}"))
                } else {
                    ConfigError(format!("{origin}: {key}: {message}"))
                }
            })?;
        config
            .validate_settings()
            .map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        Ok(config)
    }

    /// Every check, the data file's existence included.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_settings()?;
        self.data.validate().map_err(|e| e.to_string())
    }

    /// The settings alone, wherever the data is now (a checkpoint's config is checked so).
    pub fn validate_settings(&self) -> Result<(), String> {
        // Every value must also be one TOML can hold (integers up to 2^63 - 1): a config
        // that cannot be written back could not be checkpointed or shown.
        let table = toml::Value::try_from(self)
            .map_err(|e| format!("a setting is out of range ({e}); integers are at most 2^63-1"))?;
        if let Some(key) = first_non_finite(&table) {
            return Err(format!("{key} must be a finite number"));
        }
        if self.epochs == 0 || self.epochs > MAX_EPOCHS {
            return Err(format!(
                "epochs = {} must be in [1, {MAX_EPOCHS}]",
                self.epochs
            ));
        }
        if !(self.length_multiplier > 0.0 && self.length_multiplier <= 1000.0)
            || self.total_epochs() == 0
            || self.total_epochs() > MAX_EPOCHS
        {
            return Err(format!(
                "length_multiplier = {} must be in (0, 1000] and leave between 1 and \
                 {MAX_EPOCHS} epochs",
                self.length_multiplier
            ));
        }
        if self
            .run
            .out
            .as_os_str()
            .to_string_lossy()
            .chars()
            .any(char::is_control)
        {
            return Err(format!(
                "run.out = {:?} contains a control character (a newline or tab?): choose a \
                 plain folder name",
                self.run.out
            ));
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return Err("batch_size and eval_batch_size must be at least 1".into());
        }
        if self.run.log_every == 0 {
            return Err("run.log_every must be at least 1".into());
        }
        self.data.validate_values().map_err(|e| e.to_string())?;
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

    /// The model as the run builds it: `[model]` with the changes the method brings
    /// (EAST's DyReLU and weight sharing, as `[method.east]` says). The method's table was
    /// checked when the config was read, so it parses here.
    pub fn resolved_model(&self) -> ModelConfig {
        crate::methods::adjusted_model(&self.method, &self.model)
            .unwrap_or_else(|_| self.model.clone())
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

/// The most epochs a run may train (`epochs x length_multiplier`): far past any paper's
/// schedule, and small enough that step counts cannot overflow.
const MAX_EPOCHS: usize = 100_000;

/// Every leaf of a TOML value by its dotted key (`optim.lr`, `schedule.milestones[0]`): what
/// the finiteness check walks, and what a resume compares.
pub fn flatten(value: &toml::Value) -> BTreeMap<String, toml::Value> {
    fn walk(value: &toml::Value, key: String, out: &mut BTreeMap<String, toml::Value>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let sub = if key.is_empty() {
                        k.clone()
                    } else {
                        format!("{key}.{k}")
                    };
                    walk(v, sub, out);
                }
            }
            toml::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{key}[{i}]"), out);
                }
            }
            leaf => {
                out.insert(key, leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(value, String::new(), &mut out);
    out
}

/// The dotted key of the first NaN or infinite number, if any: one check for every float
/// key, present and future.
fn first_non_finite(config: &toml::Value) -> Option<String> {
    flatten(config)
        .into_iter()
        .find(|(_, v)| v.as_float().is_some_and(|f| !f.is_finite()))
        .map(|(k, _)| k)
}

fn parse_table(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError(format!("{origin}: not valid TOML: {e}")))
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
    fn every_numeric_key_is_checked_and_named() {
        for (text, key) in [
            (
                "[schedule]\nfinal_fraction = -100\n",
                "schedule.final_fraction",
            ),
            ("[schedule]\ngamma = -1.0\n", "schedule.gamma"),
            ("[schedule]\ngamma = nan\n", "schedule.gamma"),
            (
                "[schedule]\nfinal_fraction = nan\n",
                "schedule.final_fraction",
            ),
            (
                "[schedule]\nwarmup_epochs = nan\n",
                "schedule.warmup_epochs",
            ),
            ("[optim]\nweight_decay = inf\n", "optim.weight_decay"),
            ("[optim]\nclip_norm = inf\n", "optim.clip_norm"),
            ("length_multiplier = 1e300\n", "length_multiplier"),
            ("epochs = 1000000000\n", "epochs"),
            ("[optim]\nlr = \"fast\"\n", "optim.lr"),
            ("[method]\nupdate_every = -3\n", "method.update_every"),
        ] {
            let err = TrainConfig::from_toml(text, "c.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains("c.toml") && err.contains(key), "{text}: {err}");
        }
        let err = TrainConfig::load(None, &["run.out=\"a\\nb\"".parse::<Setting>().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("control character"), "{err}");
    }

    #[test]
    fn overrides_apply_and_round_trip() {
        let c = TrainConfig::load(
            None,
            &[
                "method.name=set".parse::<Setting>().unwrap(),
                "sparsity.sparsity=0.99".parse::<Setting>().unwrap(),
                "epochs=3".parse::<Setting>().unwrap(),
            ],
        )
        .unwrap();
        assert_eq!(c.method.name, "set");
        assert_eq!(c.sparsity.sparsity, 0.99);
        assert_eq!(c.epochs, 3);
        assert_eq!(TrainConfig::from_toml(&c.to_toml(), "x").unwrap(), c);
        let err = TrainConfig::load(None, &["method.nope=1".parse::<Setting>().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
