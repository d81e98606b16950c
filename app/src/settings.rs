//! The page's settings and their URL-hash form: `#method=east&sparsity=0.999&hide=method`.
//! A link reproduces a run; `hide` removes controls (for a teacher's cut-down page);
//! `x.section.key=value` passes any other engine setting through.

mod link;

use crate::protocol::BackendChoice;
use sparselab::train::{Setting, TrainConfig};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// synthetic, cifar10, cifar100, cifar100-coarse or folder.
    pub data: String,
    /// Fetch the dataset from here instead of asking for a file.
    pub data_url: Option<String>,
    pub synthetic_size: usize,
    /// Train on this many images of the dataset (0: all).
    pub limit: usize,
    pub model: String,
    pub width: f64,
    pub method: String,
    pub sparsity: f64,
    pub distribution: String,
    pub east_dyrelu: bool,
    pub east_sharing: bool,
    pub east_cyclic: bool,
    pub lr_schedule: String,
    pub lr: f64,
    pub batch: usize,
    pub epochs: usize,
    pub seed: u64,
    /// ΔT: steps between mask updates.
    pub update_every: usize,
    pub backend: BackendChoice,
    /// Start training as soon as the page has loaded.
    pub autoplay: bool,
    pub hide: BTreeSet<String>,
    /// Other engine settings, `section.key=value`.
    pub extra: Vec<String>,
    /// Runs that follow this one, each as its changed link settings (`then=method:rigl`):
    /// when a run finishes it is kept for comparison and the next one starts.
    pub then: Vec<Vec<(String, String)>>,
}

impl Default for Settings {
    /// A run that visibly learns within a minute on a laptop's CPU: EAST on a quarter-width
    /// ResNet-20 at 90% (1,713 of 17,132 weights) on 2,000 synthetic images. At 99% the
    /// same network keeps 171 weights and stays at chance; the lessons show that.
    fn default() -> Self {
        Self {
            data: "synthetic".into(),
            data_url: None,
            synthetic_size: 2000,
            limit: 0,
            model: "resnet20".into(),
            width: 0.25,
            method: "east".into(),
            sparsity: 0.9,
            distribution: "erk".into(),
            east_dyrelu: true,
            east_sharing: true,
            east_cyclic: true,
            lr_schedule: "cosine".into(),
            lr: 0.1,
            batch: 32,
            epochs: 5,
            seed: 0,
            update_every: 20,
            backend: BackendChoice::Auto,
            autoplay: false,
            hide: BTreeSet::new(),
            extra: Vec::new(),
            then: Vec::new(),
        }
    }
}

/// The model menu, smallest first within each family.
pub const MODELS: &[&str] = &[
    "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet18", "resnet34",
];
pub const WIDTHS: &[&str] = &["0.125", "0.25", "0.5", "1"];

/// The controls a link can hide (`hide=a,b`).
pub const CONTROLS: &[&str] = &[
    "lessons",
    "presets",
    "data",
    "model",
    "method",
    "east",
    "sparsity",
    "distribution",
    "schedule",
    "batch",
    "epochs",
    "seed",
    "backend",
    "compare",
    "export",
    "explain",
];

impl Settings {
    /// The engine settings of this run, typed; the link's extra `x.key=value` ones last.
    pub fn overrides(&self) -> Result<Vec<Setting>, String> {
        let count = |key: &str, v: u64| Setting::count(key, v).map_err(|e| e.to_string());
        let mut o = vec![
            Setting::new("data.kind", self.data.as_str()),
            count("data.synthetic_size", self.synthetic_size as u64)?,
            count("data.limit", self.limit as u64)?,
            Setting::new("model.arch", self.model.as_str()),
            Setting::new("model.width", self.width),
            Setting::new("method.name", self.method.as_str()),
            count("method.update_every", self.update_every as u64)?,
            Setting::new("method.east.dyrelu", self.east_dyrelu),
            Setting::new("method.east.weight_sharing", self.east_sharing),
            Setting::new("method.east.cyclic", self.east_cyclic),
            Setting::new("sparsity.sparsity", self.sparsity),
            Setting::new("sparsity.distribution", self.distribution.as_str()),
            Setting::new("schedule.kind", self.lr_schedule.as_str()),
            Setting::new("optim.lr", self.lr),
            count("batch_size", self.batch as u64)?,
            count("epochs", self.epochs as u64)?,
            count("seed", self.seed)?,
            // The page evaluates on the validation split; a test split needs a second file.
            Setting::new("run.eval_test", false),
            Setting::new("eval_batch_size", 200i64),
        ];
        if self.data != "synthetic" {
            // Checked against the file the page hands over, not a path on disk.
            o.push(Setting::new(
                "data.path",
                self.data_url.as_deref().unwrap_or("upload"),
            ));
        }
        for extra in &self.extra {
            o.push(Setting::parse(extra).map_err(|e| e.to_string())?);
        }
        Ok(o)
    }

    /// The settings a link fixed by hiding their controls, as "name: value" lines for the
    /// page to show read-only (a student sees what runs without being able to change it).
    pub fn fixed_settings(&self) -> Vec<String> {
        let percent = |v: f64| {
            let s = format!("{:.4}", v * 100.0);
            format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
        };
        let on = |b: bool| if b { "on" } else { "off" };
        let mut out = Vec::new();
        for control in CONTROLS {
            if !self.hide.contains(*control) {
                continue;
            }
            out.push(match *control {
                "data" => format!("data: {}", self.data),
                "model" => format!("model: {} ×{}", self.model, self.width),
                "method" => format!("method: {}", self.method),
                "east" => format!(
                    "EAST's tricks: DyReLU {}, sharing {}, cycles {}",
                    on(self.east_dyrelu),
                    on(self.east_sharing),
                    on(self.east_cyclic)
                ),
                "sparsity" => format!("sparsity: {}", percent(self.sparsity)),
                "distribution" => format!("layer-wise densities: {}", self.distribution),
                "schedule" => format!("LR: {} from {}", self.lr_schedule, self.lr),
                "batch" => format!("batch: {}", self.batch),
                "epochs" => format!("epochs: {}", self.epochs),
                "seed" => format!("seed: {}", self.seed),
                // Page parts, not run settings.
                _ => continue,
            });
        }
        out
    }

    /// The highest sparsity the chosen model can hold (every layer keeps one weight), from
    /// its layout as the engine counts its masks; None when the other settings are invalid.
    pub fn sparsity_bound(&self) -> Option<f64> {
        // Any valid sparsity and data: the bound depends on the model (and the classes).
        let c = Settings {
            sparsity: 0.5,
            data: "synthetic".into(),
            data_url: None,
            then: Vec::new(),
            ..self.clone()
        }
        .to_config()
        .ok()?;
        let classes = match self.data.as_str() {
            "cifar100" => 100,
            "cifar100-coarse" => 20,
            _ => 10,
        };
        let model = c.resolved_model();
        let numels: Vec<usize> = model
            .layer_weight_counts(classes)
            .into_iter()
            .map(|n| n as usize)
            .collect();
        Some(sparselab::sparsity::distribution::sparsity_bound(
            &numels,
            model.shared_layer_count(),
            c.sparsity.dense_first,
        ))
    }

    /// The smallest model of the menu that holds `sparsity`, at this width first and then
    /// at full width (e.g. `("resnet20", 1.0)`); None when this one already does.
    pub fn next_model_holding(&self, sparsity: f64) -> Option<(&'static str, f64)> {
        if self.sparsity_bound().is_none_or(|b| b >= sparsity) {
            return None;
        }
        [self.width, 1.0].into_iter().find_map(|width| {
            MODELS
                .iter()
                .copied()
                .find(|m| {
                    let s = Settings {
                        model: m.to_string(),
                        width,
                        ..self.clone()
                    };
                    s.sparsity_bound().is_some_and(|b| b >= sparsity)
                })
                .map(|m| (m, width))
        })
    }

    /// The engine's config for these settings, with its own checks (impossible sparsity,
    /// an unknown method, a bad key) as the error.
    pub fn to_config(&self) -> Result<TrainConfig, String> {
        TrainConfig::load(None, &self.overrides()?).map_err(|e| {
            e.to_string()
                .replace("defaults + command-line settings: ", "")
        })
    }
}

fn serde_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

impl Settings {
    /// These settings with the run-defining ones taken from an engine config (an imported
    /// checkpoint's), so the controls show the run that is loaded. Page-only settings
    /// (data URL, device, hidden controls) stay; engine settings the controls do not
    /// show are not carried over (the config itself is shown under Export).
    pub fn with_config(&self, c: &TrainConfig) -> Settings {
        // A config that was read has a valid table; a damaged one shows the defaults.
        let east: sparselab::methods::east::EastConfig =
            c.method.settings("east").unwrap_or_default();
        Settings {
            data: serde_name(&c.data.kind),
            synthetic_size: c.data.synthetic_size,
            limit: c.data.limit,
            model: c.model.arch.name().to_string(),
            width: c.model.width,
            method: c.method.name.clone(),
            sparsity: c.sparsity.sparsity,
            distribution: serde_name(&c.sparsity.distribution),
            east_dyrelu: east.dyrelu,
            east_sharing: east.weight_sharing,
            east_cyclic: east.cyclic,
            lr_schedule: serde_name(&c.schedule.kind),
            lr: c.optim.lr,
            batch: c.batch_size,
            epochs: c.epochs,
            seed: c.seed,
            update_every: c.method.update_every,
            autoplay: false,
            extra: Vec::new(),
            then: Vec::new(),
            ..self.clone()
        }
    }
}

/// The sparsity slider: position 0–1000 maps to density 10^(-4 t/1000), so the top of the
/// range (99%–99.99%) gets as much travel as 0%–90%.
pub fn sparsity_from_slider(position: f64) -> f64 {
    let density = 10f64.powf(-4.0 * position.clamp(0.0, 1000.0) / 1000.0);
    // Round the density to 3 significant digits: 0.999, not 0.99899997.
    let digits = (-density.log10()).floor() as i32 + 3;
    let scale = 10f64.powi(digits);
    let density = (density * scale).round() / scale;
    ((1.0 - density) * 1e6).round() / 1e6
}

pub fn slider_from_sparsity(sparsity: f64) -> f64 {
    let density = (1.0 - sparsity).clamp(1e-4, 1.0);
    (-density.log10() / 4.0 * 1000.0).clamp(0.0, 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_a_valid_config() {
        let c = Settings::default().to_config().unwrap();
        assert_eq!(c.method.name, "east");
        assert_eq!(c.sparsity.sparsity, 0.9);
        assert_eq!((c.batch_size, c.epochs), (32, 5));
    }

    #[test]
    fn hash_round_trips_and_only_lists_changes() {
        assert_eq!(Settings::default().to_hash(), "");
        let s = Settings::from_hash(
            "#method=rigl&sparsity=0.999&hide=method,seed&cyclic=0&x.method.drop_fraction=0.5&data_url=https://x.org/a%20b.tar.gz",
        )
        .unwrap();
        assert_eq!(s.method, "rigl");
        assert_eq!(s.sparsity, 0.999);
        assert!(!s.east_cyclic);
        assert!(s.hide.contains("seed"));
        assert_eq!(s.data_url.as_deref(), Some("https://x.org/a b.tar.gz"));
        assert_eq!(s.extra, vec!["method.drop_fraction=0.5".to_string()]);
        assert_eq!(Settings::from_hash(&s.to_hash()).unwrap(), s);
        assert_eq!(s.to_config().unwrap().method.drop_fraction, 0.5);
    }

    #[test]
    fn bad_links_say_what_is_wrong() {
        let e = Settings::from_hash("methd=rigl").unwrap_err();
        assert!(e.contains("methd") && e.contains("method"), "{e}");
        let e = Settings::from_hash("hide=everything").unwrap_err();
        assert!(e.contains("everything") && e.contains("sparsity"), "{e}");
        let e = Settings::from_hash("batch=many").unwrap_err();
        assert!(e.contains("batch=many"), "{e}");
        // Values the engine rejects: impossible sparsity, unknown method or engine key.
        let e = Settings::from_hash("sparsity=1")
            .unwrap()
            .to_config()
            .unwrap_err();
        assert!(e.contains("sparsity"), "{e}");
        let e = Settings::from_hash("method=magic")
            .unwrap()
            .to_config()
            .unwrap_err();
        assert!(e.contains("magic"), "{e}");
        let e = Settings::from_hash("x.method.nope=1")
            .unwrap()
            .to_config()
            .unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn a_sequence_runs_each_change_in_turn_and_refuses_page_keys() {
        let s = Settings::from_hash(
            "model=resnet34&method=rigl&sparsity=0.9999&hide=method&then=method:east;method:static,sparsity:0.999",
        )
        .unwrap();
        assert_eq!(s.then.len(), 2);
        assert_eq!(
            Settings::from_hash(&s.to_hash()).unwrap(),
            s,
            "{}",
            s.to_hash()
        );
        let second = s.next_in_sequence().unwrap();
        assert_eq!((second.method.as_str(), second.sparsity), ("east", 0.9999));
        assert_eq!(second.model, "resnet34");
        assert!(second.hide.contains("method"), "the page's choices stay");
        let third = second.next_in_sequence().unwrap();
        assert_eq!((third.method.as_str(), third.sparsity), ("static", 0.999));
        assert!(third.then.is_empty() && third.next_in_sequence().is_none());
        third.to_config().unwrap();
        for (link, needle) in [
            ("then=method", "key:value"),
            ("then=backend:cpu", "page's"),
            ("then=batch:many", "batch=many"),
            ("then=colour:red", "colour"),
        ] {
            let e = Settings::from_hash(link).unwrap_err();
            assert!(e.contains(needle) && e.contains("then="), "{link}: {e}");
        }
    }

    #[test]
    fn the_bound_is_the_engines_and_a_bigger_model_is_offered() {
        let s = Settings::default();
        let bound = s.sparsity_bound().unwrap();
        // EAST with weight sharing on ResNet-20 x0.25: 16 layers of their own of 17,134.
        assert!(bound > 0.999 && bound < 0.9991, "{bound}");
        // The engine's budget holds the bound and refuses just above it.
        let holds = |sparsity: f64| {
            let c = Settings {
                sparsity,
                ..s.clone()
            }
            .to_config()
            .unwrap();
            let model = c
                .resolved_model()
                .init(10, &sparselab::burn::tensor::Device::flex());
            let layers = sparselab::sparsity::sparse_layers(&model);
            sparselab::sparsity::Budget::new(layers, c.sparsity.clone(), model.reuse_counts())
                .target_counts()
                .is_ok()
        };
        assert!(holds(bound) && !holds(bound + 1e-4));
        // 99.99% needs a bigger model: the smallest of the menu that holds it.
        let (model, width) = s.next_model_holding(0.9999).unwrap();
        let bigger = Settings {
            model: model.into(),
            width,
            sparsity: 0.9999,
            ..s.clone()
        };
        bigger.to_config().unwrap();
        assert!(
            s.next_model_holding(0.99).is_none(),
            "99% fits the default model"
        );
        // CIFAR-100's classifier is larger, so the same model holds a little more.
        let c100 = Settings {
            data: "cifar100".into(),
            ..s
        };
        assert!(c100.sparsity_bound().unwrap() > bound);
    }

    #[test]
    fn hidden_settings_are_listed_with_their_values() {
        let s = Settings::from_hash(
            "hide=method,sparsity,seed,explain,presets&method=rigl&sparsity=0.999&seed=3",
        )
        .unwrap();
        assert_eq!(
            s.fixed_settings(),
            ["method: rigl", "sparsity: 99.9%", "seed: 3"]
        );
        assert!(Settings::default().fixed_settings().is_empty());
    }

    #[test]
    fn every_registry_method_is_a_valid_setting() {
        for m in sparselab::methods::REGISTRY {
            let s = Settings {
                method: m.name.into(),
                ..Settings::default()
            };
            s.to_config().unwrap_or_else(|e| panic!("{}: {e}", m.name));
        }
    }

    #[test]
    fn a_config_maps_back_to_the_settings_that_made_it() {
        let s = Settings::from_hash(
            "method=sculpt&sparsity=0.995&model=resnet14&width=0.5&distribution=uniform&schedule=multistep&lr=0.03&batch=64&epochs=7&seed=3&update_every=11&dyrelu=0&synthetic_size=500&hide=seed",
        )
        .unwrap();
        let back = Settings::default().with_config(&s.to_config().unwrap());
        assert_eq!(back.hide.len(), 0);
        assert_eq!(
            Settings {
                hide: s.hide.clone(),
                ..back
            },
            s
        );
    }

    #[test]
    fn slider_is_log_scaled_near_the_top() {
        assert_eq!(sparsity_from_slider(0.0), 0.0);
        assert_eq!(sparsity_from_slider(500.0), 0.99);
        assert_eq!(sparsity_from_slider(750.0), 0.999);
        assert_eq!(sparsity_from_slider(1000.0), 0.9999);
        // 99%..99.99% takes half the slider; 0..90% a quarter.
        assert_eq!(sparsity_from_slider(250.0), 0.9);
        for s in [0.0, 0.5, 0.9, 0.99, 0.995, 0.999, 0.9999] {
            let back = sparsity_from_slider(slider_from_sparsity(s));
            assert!(
                (back - s).abs() < 1e-3 * (1.0 - s).max(1e-4),
                "{s} -> {back}"
            );
        }
    }
}
