//! A whole run on the native CLI: data, device, fresh start or resume, the step loop with
//! metrics lines, per-epoch validation, atomic checkpoints, and a summary at the end.

use super::checkpoint::{Checkpoint, write_atomic};
use super::cli_sink::CliSink;
use super::config::TrainConfig;
use super::data::TrainData;
use super::driver::RunDriver;
use super::memory::check_model_fits;
use super::metrics::{MetricsLog, read_events};
use super::resume::resumed_config;
use super::run_lock;
use super::trainer::Trainer;
use crate::data::{DataError, load_split};
use anyhow::{Context, bail};
use pollster::block_on;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue from `<out>/checkpoint.bin`.
    pub resume: bool,
    /// Stop (after checkpointing) once this many steps are done: an interruption on purpose.
    pub stop_after_steps: Option<usize>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// The settings the user gave (config file and flags, before defaults): a resume
    /// refuses any that differ from the checkpoint's run.
    pub requested: toml::Table,
    /// `--override key=value`: the few settings a resume may change (`resume::OVERRIDABLE`).
    pub overrides: Vec<super::setting::Setting>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub out: PathBuf,
    pub method: String,
    pub arch: String,
    pub sparsity: f64,
    pub steps: usize,
    pub finished: bool,
    pub nnz: usize,
    pub numel: usize,
    pub density: f64,
    /// Non-zeros counting every reuse of a shared weight; equals nnz without sharing.
    pub effective_nnz: usize,
    /// Prunable weights counting every reuse (the unshared network's size).
    pub unshared_numel: usize,
    /// Alive weights on an input→output path (None in summaries written before counting).
    #[serde(default)]
    pub connected_nnz: Option<usize>,
    /// Parameters outside the masks (BatchNorm, DyReLU, sharing gains): dense.
    pub dense_params: usize,
    /// Of which DyReLU's.
    #[serde(default)]
    pub dyrelu_params: usize,
    pub itop: f64,
    pub train_flops: f64,
    pub best_val_accuracy: Option<f64>,
    pub final_val_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub seconds: f64,
    pub device: String,
}

pub fn run(config: TrainConfig, options: &RunOptions) -> anyhow::Result<RunSummary> {
    let out = config.run.out.clone();
    let ckpt_path = out.join("checkpoint.bin");
    let metrics_path = out.join("metrics.jsonl");
    if options.resume && !ckpt_path.exists() && !metrics_path.exists() {
        bail!(
            "--resume: {} holds no run to continue (no checkpoint.bin or metrics.jsonl); \
             drop --resume to start one there",
            out.display()
        );
    }
    let resumes_a_checkpoint = options.resume && ckpt_path.exists();
    if !options.overrides.is_empty() && !resumes_a_checkpoint {
        bail!(
            "--override changes the settings of a checkpoint's run, and {} holds no \
             checkpoint{}",
            out.display(),
            if options.resume {
                " (the run stopped before its first one): drop --resume and --override to \
                 start it again with the settings you give"
            } else {
                ": use it with --resume"
            }
        );
    }
    let started = web_time::Instant::now();
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create the run folder {}", out.display()))?;
    // One process per run folder; only then is it safe to tidy the folder.
    let _lock = run_lock::lock_run_folder(&out)?;
    remove_partial_writes(&out);

    let resumed = if ckpt_path.exists() {
        if !options.resume {
            bail!(
                "{} already holds a run (checkpoint.bin): pass --resume to continue it, or choose another --out",
                out.display()
            );
        }
        Some(Checkpoint::load(&ckpt_path)?)
    } else {
        if metrics_path.exists() && !options.resume {
            bail!(
                "{} already holds metrics.jsonl from an earlier run: choose another --out, or pass --resume to restart it there",
                out.display()
            );
        }
        None
    };

    // A resumed run keeps its own configuration: a differing setting is refused, and
    // only `--override` may change the few that can change mid-run.
    let config = match &resumed {
        Some(ckpt) => {
            let mut c = resumed_config(&ckpt.meta.config, &options.requested, &options.overrides)
                .map_err(|e| anyhow::anyhow!("{}: {e}", ckpt_path.display()))?;
            c.run.device = config.run.device;
            c.run.out = out.clone();
            c.validate()
                .map_err(|e| anyhow::anyhow!("{}: {e}", ckpt_path.display()))?;
            c
        }
        None => config,
    };
    // Read the whole metrics history before anything is written: a damaged log stops the
    // resume rather than being replaced by an empty one.
    let history = match &resumed {
        Some(_) if metrics_path.exists() => read_events(&metrics_path)?,
        _ => Vec::new(),
    };

    let set = load_split(&config.data, false, config.seed)?;
    // The test split is read (and checked against the training classes) before training,
    // so a broken one fails now, not after the last epoch.
    let test_set = if config.run.eval_test {
        match load_split(&config.data, true, config.seed) {
            Ok(test) => {
                if test.class_names != set.class_names {
                    bail!(
                        "the test split's classes ({}) are not the training split's ({}): \
                         every class needs a folder in both train/ and test/, with the same \
                         names (or set run.eval_test = false)",
                        test.class_names.join(", "),
                        set.class_names.join(", ")
                    );
                }
                Some(test)
            }
            Err(DataError::NoSplit(_)) => None, // an image folder with no test/ split
            Err(e) => bail!(
                "the test split: {e} (set run.eval_test = false to train without a test \
                 accuracy)"
            ),
        }
    } else {
        None
    };
    let (device, device_name) =
        crate::device::select(config.run.device).map_err(anyhow::Error::msg)?;
    // On the CPU the model lives in this machine's memory (a GPU has its own).
    if device_name.starts_with("cpu") {
        check_model_fits(&config, set.num_classes())?;
    }
    write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())?;
    let trainer = match &resumed {
        Some(ckpt) => {
            let mut trainer = Trainer::from_checkpoint(ckpt, set, device)?;
            // The overridable settings (optimizer, evaluation, logging) take effect.
            trainer.apply_overrides(config.clone());
            trainer
        }
        None => {
            let data = TrainData::new(set, config.data.val_fraction, config.seed);
            match &config.run.init_from {
                Some(path) => {
                    let bytes = crate::data::bounded::read_bounded(
                        path,
                        crate::weights::MAX_WEIGHTS_BYTES,
                        "safetensors weights file",
                    )?;
                    let trainer = Trainer::starting_from(config.clone(), data, device, &bytes)?;
                    eprintln!(
                        "initial weights: {}; {} of {} weights alive at the start",
                        path.display(),
                        trainer.masks().nnz(),
                        trainer.masks().numel()
                    );
                    trainer
                }
                None => Trainer::new(config.clone(), data, device)?,
            }
        }
    };

    // A resume must continue on the very images it was trained on, or its split differs.
    if let Some(stored) = resumed
        .as_ref()
        .and_then(|c| c.meta.dataset_fingerprint.as_ref())
    {
        let now = &trainer.data().fingerprint;
        if stored != now {
            bail!(
                "{}: the training images changed since the checkpoint was written (then: \
                 {stored}; now: {now}), so the run would continue on another split: resume \
                 with the data it was trained on, or start a new run with another --out",
                ckpt_path.display()
            );
        }
    }
    // The log holds exactly the events up to the checkpoint, then continues.
    if let Some(ckpt) = &resumed {
        let mut text = Vec::new();
        for e in history
            .iter()
            .filter(|e| e.completed_steps() <= ckpt.meta.step)
        {
            text.extend(serde_json::to_vec(e)?);
            text.push(b'\n');
        }
        write_atomic(&metrics_path, &text)?;
    } else if metrics_path.exists() {
        std::fs::remove_file(&metrics_path)
            .with_context(|| format!("cannot remove {}", metrics_path.display()))?;
    }
    let model = config.resolved_model();
    if model.shared_weights && trainer.budget().reuse.is_empty() {
        eprintln!(
            "note: weight sharing is on, but no stage of {} has more than {} blocks: \
             nothing is shared (lower model.own_blocks or use a deeper model)",
            model.arch.name(),
            model.own_blocks
        );
    }
    if config.run.kernels != crate::kernels::choice::KernelMode::Dense {
        let (n, of) = (trainer.sparse_kernel_layers().len(), trainer.layers().len());
        if n > 0 {
            eprintln!(
                "sparse kernels: {n} of {of} layers run sparse ({}); the rest dense",
                trainer.sparse_kernel_layers().join(", ")
            );
        } else if !crate::kernels::has_kernels(trainer.device()) {
            eprintln!("sparse kernels: none for this backend (use flex or wgpu); all dense");
        } else if config.run.kernels == crate::kernels::choice::KernelMode::Timed {
            eprintln!("sparse kernels: no layer was faster sparse at this density; all dense");
        } else {
            eprintln!(
                "sparse kernels: no layer is at or below its measured crossover density on \
                 this backend; all dense (run.kernels = \"sparse\" forces them)"
            );
        }
    }
    let log = MetricsLog::append_to(&metrics_path)
        .with_context(|| format!("cannot write {}", metrics_path.display()))?;
    let mut sink = CliSink::new(log, ckpt_path.clone(), &trainer, options.progress);
    let mut driver = RunDriver::new(trainer).started_at(started);
    driver.start(
        &device_name,
        resumed.as_ref().map(|c| c.meta.step),
        &mut sink,
    )?;
    while !driver.trainer().is_finished() {
        let advance = block_on(driver.advance(&mut sink))?;
        let step = driver.trainer().step();
        if options.stop_after_steps.is_some_and(|s| step >= s) && !driver.trainer().is_finished() {
            if !advance.checkpointed {
                block_on(driver.checkpoint(&mut sink))?;
            }
            sink.stopped();
            let last_val = driver.last_val_accuracy();
            return Ok(summary(
                &driver,
                &config,
                last_val,
                None,
                false,
                &device_name,
            ));
        }
    }
    sink.finished();
    let test_set = test_set.as_ref();
    let end = block_on(driver.finish(test_set, &mut sink))?;
    let s = summary(
        &driver,
        &config,
        end.final_val_accuracy,
        end.test_accuracy,
        true,
        &device_name,
    );
    write_atomic(&out.join("summary.json"), &serde_json::to_vec_pretty(&s)?)?;
    Ok(s)
}

fn summary(
    driver: &RunDriver,
    config: &TrainConfig,
    final_val: Option<f64>,
    test: Option<f64>,
    finished: bool,
    device: &str,
) -> RunSummary {
    let t = driver.trainer();
    RunSummary {
        out: config.run.out.clone(),
        method: config.method.name.clone(),
        arch: config.model.arch.name().to_string(),
        sparsity: config.sparsity.sparsity,
        steps: t.step(),
        finished,
        nnz: t.nnz(),
        numel: t.masks().numel(),
        density: t.mask_density(),
        effective_nnz: t.effective_nnz(),
        unshared_numel: t.budget().unshared_total(),
        connected_nnz: Some(t.connectivity().total),
        dense_params: t.dense_param_count(),
        dyrelu_params: t.dyrelu_param_count(),
        itop: t.itop_rate(),
        train_flops: t.train_flops(),
        best_val_accuracy: t.best_val_accuracy(),
        final_val_accuracy: final_val,
        test_accuracy: test,
        seconds: driver.seconds(),
        device: device.to_string(),
    }
}

/// Deletes temporary files left by a write that a crash interrupted (`write_atomic`'s
/// `.<name>.tmp-<pid>`): never a finished file, only our own unfinished ones.
fn remove_partial_writes(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
