//! `sparselab sweep`: a grid of runs (variants × sparsities × seeds), each an independent
//! `sparselab train` process (one at a time, or `jobs` at once), resumable: finished
//! cells are skipped, interrupted ones continue from their checkpoint. At the end (and
//! with `--report-only`) the cells' summaries become a results table (markdown + CSV,
//! mean ± std over seeds), an accuracy-vs-sparsity plot and training-loss curves (SVG).

pub mod chart;
pub mod cluster;
pub mod curves;
pub mod report;

use crate::train::Setting;
use crate::train::TrainConfig;
use crate::train::checkpoint::write_atomic;
use crate::train::run::RunSummary;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    pub title: String,
    /// A train config (TOML) every cell starts from, relative to the sweep file.
    pub base: Option<PathBuf>,
    /// Overrides for every cell, as `--set` takes them.
    #[serde(default)]
    pub set: Vec<String>,
    pub sparsities: Vec<f64>,
    pub seeds: Vec<u64>,
    /// Where the cells and the results go.
    pub out: PathBuf,
    #[serde(rename = "variant")]
    pub variants: Vec<Variant>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub set: Vec<String>,
}

/// One run of the grid, with its resolved config.
#[derive(Clone, Debug)]
pub struct Cell {
    pub variant: String,
    pub sparsity: f64,
    pub seed: u64,
    pub dir: PathBuf,
    pub config: TrainConfig,
}

impl Cell {
    pub fn name(&self) -> String {
        format!(
            "{}/sparsity-{}/seed-{}",
            self.variant, self.sparsity, self.seed
        )
    }

    pub fn summary(&self) -> Option<RunSummary> {
        let text = std::fs::read(self.dir.join("summary.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn is_finished(&self) -> bool {
        self.summary().is_some_and(|s| s.finished)
    }

    /// For `--list`: finished, resumable (a checkpoint), started (none yet) or to run.
    pub fn state(&self) -> &'static str {
        if self.is_finished() {
            "finished"
        } else if self.dir.join("checkpoint.bin").exists() {
            "resumable"
        } else if self.dir.exists() {
            "started"
        } else {
            "to run"
        }
    }
}

impl SweepConfig {
    pub fn load(path: &Path) -> anyhow::Result<(Self, PathBuf)> {
        let text = crate::data::bounded::read_settings_file(path, "sweep file")?;
        let config: SweepConfig = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
        let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        if config.variants.is_empty() || config.sparsities.is_empty() || config.seeds.is_empty() {
            bail!(
                "{}: a sweep needs at least one [[variant]], one sparsity and one seed",
                path.display()
            );
        }
        let mut sparsities = config.sparsities.clone();
        sparsities.sort_by(f64::total_cmp);
        let mut seeds = config.seeds.clone();
        seeds.sort();
        if sparsities.windows(2).any(|w| w[0] == w[1]) || seeds.windows(2).any(|w| w[0] == w[1]) {
            bail!("{}: sparsities and seeds must not repeat", path.display());
        }
        let mut names: Vec<&str> = config.variants.iter().map(|v| v.name.as_str()).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) {
            bail!("{}: variant names must be unique", path.display());
        }
        // A name becomes a folder inside the sweep's: never `..`, a path or a hidden name.
        if let Some(bad) = names.iter().find(|n| {
            n.is_empty()
                || n.starts_with('.')
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        }) {
            bail!(
                "{}: variant name {bad:?} must be letters, digits, '-', '_' and '.', not \
                 starting with '.' (it names the variant's folder)",
                path.display()
            );
        }
        Ok((config, root))
    }

    /// Every cell, configs resolved and validated (a bad key fails before any run).
    pub fn cells(&self, root: &Path, out: &Path) -> anyhow::Result<Vec<Cell>> {
        let base = match &self.base {
            Some(b) => {
                let p = root.join(b);
                let text = crate::data::bounded::read_settings_file(&p, "sweep's base config")?;
                Some((text, p.display().to_string()))
            }
            None => None,
        };
        let mut cells = Vec::new();
        for v in &self.variants {
            for &sparsity in &self.sparsities {
                for &seed in &self.seeds {
                    let dir = out
                        .join(&v.name)
                        .join(format!("sparsity-{sparsity}"))
                        .join(format!("seed-{seed}"));
                    let mut sets = Setting::parse_all(&self.set)
                        .and_then(|mut s| {
                            s.extend(Setting::parse_all(&v.set)?);
                            Ok(s)
                        })
                        .map_err(|e| anyhow::anyhow!("variant {}: {e}", v.name))?;
                    sets.push(Setting::new("sparsity.sparsity", sparsity));
                    sets.push(Setting::count("seed", seed)?);
                    sets.push(Setting::new("run.out", dir.display().to_string()));
                    let config = TrainConfig::load(
                        base.as_ref().map(|(t, o)| (t.as_str(), o.as_str())),
                        &sets,
                    )
                    .map_err(|e| anyhow::anyhow!("variant {}: {e}", v.name))?;
                    cells.push(Cell {
                        variant: v.name.clone(),
                        sparsity,
                        seed,
                        dir,
                        config,
                    });
                }
            }
        }
        Ok(cells)
    }
}

/// Cells whose folder holds a run made with another config (the sweep file changed
/// since): resuming or reporting them would mix settings, so the sweep refuses.
pub fn check_existing(cells: &[Cell]) -> anyhow::Result<()> {
    let mut stale = Vec::new();
    for cell in cells {
        let Ok(text) = std::fs::read_to_string(cell.dir.join("config.toml")) else {
            continue;
        };
        // The folder may have moved (a cluster mounts it elsewhere): `run.out` is not a
        // setting of the run.
        let same = TrainConfig::from_toml(&text, "config.toml").is_ok_and(|mut c| {
            c.run.out = cell.config.run.out.clone();
            c == cell.config
        });
        if !same {
            stale.push(cell.dir.display().to_string());
        }
    }
    if !stale.is_empty() {
        bail!(
            "{} cells were run with a different config than the sweep file now gives them; \
             move them aside (or set another `out`) and run again:\n  {}",
            stale.len(),
            stale.join("\n  ")
        );
    }
    Ok(())
}

/// How to run one cell: the `sparselab` binary and the threads each process may use.
pub struct Launcher {
    pub exe: PathBuf,
    pub jobs: usize,
    pub threads_per_job: Option<usize>,
}

/// Runs every unfinished cell; returns the cells that failed with their log paths.
pub fn run_cells(cells: &[Cell], out: &Path, launcher: &Launcher) -> anyhow::Result<Vec<String>> {
    let logs = out.join("logs");
    let configs = out.join("configs");
    std::fs::create_dir_all(&logs)?;
    std::fs::create_dir_all(&configs)?;
    let todo: Vec<&Cell> = cells.iter().filter(|c| !c.is_finished()).collect();
    eprintln!(
        "sweep: {} cells, {} finished, {} to run, {} at a time",
        cells.len(),
        cells.len() - todo.len(),
        todo.len(),
        launcher.jobs
    );
    let mut failed = Vec::new();
    let mut running: Vec<(String, PathBuf, std::process::Child)> = Vec::new();
    let mut queue = todo.into_iter();
    loop {
        while running.len() < launcher.jobs {
            let Some(cell) = queue.next() else { break };
            // Another process (a second attempt of the same cell) runs it right now: leave
            // its folder, config and log alone.
            if cell.dir.exists()
                && let Err(e) = crate::train::run_lock::lock_run_folder(&cell.dir)
            {
                eprintln!("sweep: busy  {}: {e:#}", cell.name());
                failed.push(format!("{} ({e:#})", cell.name()));
                continue;
            }
            let flat = cell.name().replace('/', "_");
            let config_path = configs.join(format!("{flat}.toml"));
            write_atomic(&config_path, cell.config.to_toml().as_bytes())?;
            let log_path = logs.join(format!("{flat}.log"));
            let resume = cell.dir.join("checkpoint.bin").exists();
            if !resume && cell.dir.exists() {
                // Killed before its first checkpoint: nothing to continue from. Keep the
                // partial files aside rather than deleting them.
                let aside = cell
                    .dir
                    .with_extension(format!("abandoned-{}", std::process::id()));
                std::fs::rename(&cell.dir, &aside)?;
            }
            let log = std::fs::File::create(&log_path)?;
            let mut cmd = std::process::Command::new(&launcher.exe);
            cmd.arg("train")
                .arg("--config")
                .arg(&config_path)
                .arg("--quiet")
                .stdout(log.try_clone()?)
                .stderr(log);
            if resume {
                cmd.arg("--resume");
            }
            if let Some(t) = launcher.threads_per_job {
                cmd.env("RAYON_NUM_THREADS", t.to_string());
            }
            eprintln!(
                "sweep: start {}{}",
                cell.name(),
                if resume { " (resume)" } else { "" }
            );
            let child = cmd
                .spawn()
                .with_context(|| format!("cannot start {}", launcher.exe.display()))?;
            running.push((cell.name(), log_path, child));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].2.try_wait()? {
                let (name, log, _) = running.remove(i);
                if status.success() {
                    eprintln!("sweep: done  {name}");
                } else {
                    eprintln!("sweep: FAILED {name} ({status}); see {}", log.display());
                    failed.push(format!("{name} ({})", log.display()));
                }
            } else {
                i += 1;
            }
        }
    }
    Ok(failed)
}

/// Reads every cell's summary and writes results.md, results.csv, accuracy.svg and one
/// loss-sparsity-<s>.svg of training curves per sparsity.
pub fn write_report(
    sweep: &SweepConfig,
    cells: &[Cell],
    out: &Path,
    command: &str,
) -> anyhow::Result<Vec<report::Row>> {
    let results: Vec<report::CellResult> = cells
        .iter()
        .filter_map(|c| {
            let s = c.summary()?;
            Some(report::CellResult {
                variant: c.variant.clone(),
                sparsity: c.sparsity,
                seed: c.seed,
                best_val_accuracy: s.best_val_accuracy,
                final_val_accuracy: s.final_val_accuracy,
                nonzeros: s.nnz,
                effective_nonzeros: s.effective_nnz,
                connected_nonzeros: s.connected_nnz,
                prunable: s.numel,
                dense_params: s.dense_params,
                train_flops: s.train_flops,
                wall_seconds: s.seconds,
                finished: s.finished,
            })
        })
        .collect();
    let order: Vec<String> = sweep.variants.iter().map(|v| v.name.clone()).collect();
    let rows = report::aggregate(&results, &order);
    write_atomic(
        &out.join("results.md"),
        report::markdown(&rows, &sweep.title, command).as_bytes(),
    )?;
    write_atomic(&out.join("results.csv"), report::csv(&rows).as_bytes())?;
    write_atomic(
        &out.join("accuracy.svg"),
        chart::accuracy_svg(&rows, &sweep.title).as_bytes(),
    )?;
    let curves: Vec<curves::LossCurve> = cells
        .iter()
        .filter(|c| c.is_finished())
        .filter_map(|c| {
            let mut curve = curves::read_loss_curve(
                &c.variant,
                c.sparsity,
                c.seed,
                &c.dir.join("metrics.jsonl"),
            )?;
            // Logs written before the start record counted classes: the checkpoint knows.
            if curve.classes == 0 {
                curve.classes = crate::train::Checkpoint::load(&c.dir.join("checkpoint.bin"))
                    .map_or(0, |k| k.meta.num_classes);
            }
            Some(curve)
        })
        .collect();
    let mut sparsities: Vec<f64> = cells.iter().map(|c| c.sparsity).collect();
    sparsities.sort_by(f64::total_cmp);
    sparsities.dedup();
    for s in sparsities {
        write_atomic(
            &out.join(format!("loss-sparsity-{s}.svg")),
            curves::loss_curves_svg(&curves, s, &sweep.title).as_bytes(),
        )?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_resolve_every_combination_and_reject_bad_keys() {
        let dir = tempfile::tempdir().unwrap();
        let sweep_path = dir.path().join("s.toml");
        std::fs::write(
            &sweep_path,
            r#"
title = "t"
set = ["epochs=1"]
sparsities = [0.9, 0.99]
seeds = [0, 1]
out = "runs/x"
[[variant]]
name = "rigl"
set = ['method.name="rigl"']
[[variant]]
name = "east-cyclic"
set = ['method.name="east"', "method.east.dyrelu=false", "method.east.weight_sharing=false"]
"#,
        )
        .unwrap();
        let (sweep, root) = SweepConfig::load(&sweep_path).unwrap();
        let cells = sweep.cells(&root, Path::new("out")).unwrap();
        assert_eq!(cells.len(), 8);
        let c = &cells[7];
        assert_eq!(c.name(), "east-cyclic/sparsity-0.99/seed-1");
        assert_eq!(c.config.seed, 1);
        assert_eq!(c.config.sparsity.sparsity, 0.99);
        assert_eq!(c.config.method.name, "east");
        let east: crate::methods::east::EastConfig = c.config.method.settings("east").unwrap();
        assert!(!east.dyrelu && east.cyclic);
        assert_eq!(
            c.config.run.out,
            Path::new("out/east-cyclic/sparsity-0.99/seed-1")
        );

        for name in ["..", ".hidden", "a/b", ""] {
            let text = std::fs::read_to_string(&sweep_path)
                .unwrap()
                .replace("name = \"rigl\"", &format!("name = {name:?}"));
            std::fs::write(dir.path().join("bad.toml"), text).unwrap();
            let err = SweepConfig::load(&dir.path().join("bad.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("variant name"), "{name}: {err}");
        }

        let mut bad = sweep.clone();
        bad.variants[0].set.push("method.nmae=\"x\"".into());
        let err = bad.cells(&root, Path::new("out")).unwrap_err().to_string();
        assert!(err.contains("rigl") && err.contains("nmae"), "{err}");
    }
}
