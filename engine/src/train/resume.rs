//! What a resumed run may change. A resume continues the checkpoint's run with the
//! checkpoint's settings; a setting the user gives that differs is refused (it would be
//! silently ignored otherwise), unless it is one of the few that may change mid-run and is
//! passed with `--override`, such as the learning rate after a divergence.

use super::config::{ConfigError, TrainConfig, flatten};
use super::setting::Setting;
use std::collections::BTreeMap;

/// Keys (or `section.` prefixes) `--override` may change on a resume: the optimizer, how
/// the run is checkpointed, logged and evaluated, and where its data now lives (the images
/// are still checked against the checkpoint's fingerprint).
pub const OVERRIDABLE: [&str; 7] = [
    "optim.",
    "run.checkpoint_every",
    "run.log_every",
    "run.eval_test",
    "run.bn_recalibration_batches",
    "eval_batch_size",
    "data.path",
];

/// Keys that only say where this process runs: they never count as a change.
const WHERE_IT_RUNS: [&str; 2] = ["run.out", "run.device"];

fn overridable(key: &str) -> bool {
    OVERRIDABLE.iter().any(|k| {
        if k.ends_with('.') {
            key.starts_with(k)
        } else {
            key == *k
        }
    })
}

/// Every leaf of a config as `dotted.key -> value`.
fn leaves(config: &TrainConfig) -> BTreeMap<String, toml::Value> {
    flatten(&toml::Value::try_from(config).expect("configs serialise"))
}

/// The keys whose values differ between two configs.
fn differing(a: &TrainConfig, b: &TrainConfig) -> Vec<(String, String, String)> {
    let (la, lb) = (leaves(a), leaves(b));
    let show = |v: Option<&toml::Value>| v.map_or("(unset)".to_string(), |v| v.to_string());
    let mut keys: Vec<&String> = la.keys().chain(lb.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !same_value(la.get(*k), lb.get(*k)))
        .map(|k| (k.clone(), show(la.get(k)), show(lb.get(k))))
        .collect()
}

/// Equal, floats within a few ULPs: a checkpoint's header stores the config as JSON, whose
/// float parsing may land one ULP away from the TOML value the user typed.
fn same_value(a: Option<&toml::Value>, b: Option<&toml::Value>) -> bool {
    match (a, b) {
        (Some(toml::Value::Float(x)), Some(toml::Value::Float(y))) => {
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        _ => a == b,
    }
}

/// The config a resume runs with: the checkpoint's, with `requested` (the settings the user
/// gave: config file and flags) checked against it, then `overrides` applied.
pub fn resumed_config(
    checkpoint: &TrainConfig,
    requested: &toml::Table,
    overrides: &[Setting],
) -> Result<TrainConfig, ConfigError> {
    let base = toml::Value::try_from(checkpoint)
        .expect("configs serialise")
        .as_table()
        .cloned()
        .expect("a config is a table");
    let with_overrides = |mut table: toml::Table| -> Result<toml::Table, ConfigError> {
        for o in overrides {
            let key = o.key.as_str();
            if !overridable(key) {
                return Err(ConfigError(format!(
                    "--override {o}: {key} cannot change when a run resumes (it would be \
                     another run); only {} may. Start a new run with another --out instead",
                    OVERRIDABLE.join(", ")
                )));
            }
            o.apply(&mut table)?;
        }
        Ok(table)
    };
    let resumed = TrainConfig::from_table_checked(with_overrides(base.clone())?, "--override")?;
    // What the user asked for: the checkpoint's run with their settings on top, then the
    // overrides (which win over a config file's value for the same key).
    let mut asked = toml::Value::Table(base);
    merge(&mut asked, toml::Value::Table(requested.clone()));
    let asked = TrainConfig::from_table_checked(
        with_overrides(asked.as_table().cloned().expect("a table"))?,
        "the settings given",
    )?;
    let changed: Vec<String> = differing(&resumed, &asked)
        .into_iter()
        .filter(|(k, _, _)| !WHERE_IT_RUNS.contains(&k.as_str()))
        .map(|(k, ckpt, asked)| format!("{k} = {asked} (the checkpoint's run has {ckpt})"))
        .collect();
    if !changed.is_empty() {
        return Err(ConfigError(format!(
            "--resume continues the checkpoint's run with its own settings, but these differ:\n  \
             {}\nDrop them to continue as it was, start a new run with another --out, or, for \
             {}, pass --override KEY=VALUE",
            changed.join("\n  "),
            OVERRIDABLE.join(", ")
        )));
    }
    let mut resumed = resumed;
    // Where it runs may always change.
    resumed.run.out = asked.run.out;
    resumed.run.device = asked.run.device;
    Ok(resumed)
}

fn merge(into: &mut toml::Value, from: toml::Value) {
    match (into, from) {
        (toml::Value::Table(a), toml::Value::Table(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(sets: &[&str]) -> toml::Table {
        TrainConfig::explicit_settings(None, &Setting::parse_all(sets).unwrap()).unwrap()
    }

    #[test]
    fn same_settings_resume_and_where_it_runs_may_change() {
        let ckpt = TrainConfig::default();
        let c = resumed_config(
            &ckpt,
            &table(&["epochs=10", "run.out=\"elsewhere\"", "run.device=\"cpu\""]),
            &[],
        )
        .unwrap();
        assert_eq!(c.run.out, std::path::Path::new("elsewhere"));
        assert_eq!(c.epochs, ckpt.epochs);
    }

    #[test]
    fn a_changed_setting_is_refused_and_named() {
        let ckpt = TrainConfig::default();
        let err = resumed_config(&ckpt, &table(&["model.arch=\"resnet32\"", "epochs=3"]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.arch") && err.contains("resnet32") && err.contains("epochs"),
            "{err}"
        );
        // The learning rate: refused as a plain setting, accepted as an override.
        let err = resumed_config(&ckpt, &table(&["optim.lr=0.01"]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--override"), "{err}");
        let c = resumed_config(
            &ckpt,
            &table(&["optim.lr=0.01"]),
            &[Setting::parse("optim.lr=0.01").unwrap()],
        )
        .unwrap();
        assert_eq!(c.optim.lr, 0.01);
        // A config file that sets the key too: the override wins over it.
        let c = resumed_config(
            &ckpt,
            &table(&["optim.lr=0.1"]),
            &[Setting::parse("optim.lr=0.01").unwrap()],
        )
        .unwrap();
        assert_eq!(c.optim.lr, 0.01);
        // One ULP away (JSON's float parsing) is the same setting.
        let mut nearly = ckpt.clone();
        nearly.optim.lr = f64::from_bits(0.1f64.to_bits() + 1);
        resumed_config(&nearly, &table(&["optim.lr=0.1"]), &[]).unwrap();
        let err = resumed_config(
            &ckpt,
            &table(&[]),
            &[Setting::parse("model.width=2").unwrap()],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot change"), "{err}");
    }
}
