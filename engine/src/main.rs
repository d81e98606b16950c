//! The `sparselab` command line: train, eval, export, data fetch, info, methods, bench.

mod cli;

use clap::{Args, Parser, Subcommand};
use sparselab::device::DeviceChoice;
use sparselab::train::run::{RunOptions, run};
use sparselab::train::{Setting, TrainConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sparselab",
    version,
    about = "Extreme sparse training of CIFAR ResNets (EAST, RigL, SET, GMP, AC/DC, LRR, SCULPT-ing, static, dense) on Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a sparse ResNet (defaults: ResNet-20, RigL, 90% sparse ERK, synthetic data).
    Train(Box<TrainArgs>),
    /// Accuracy and per-class accuracy of a checkpoint on a dataset split.
    Eval(cli::eval::EvalArgs),
    /// A checkpoint's model as a safetensors file for PyTorch (names, masks, metadata:
    /// see the book's "Weights in and out").
    Export(cli::export::ExportArgs),
    /// Datasets: `data fetch cifar10|cifar100 --to DIR`.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Backends compiled in, wgpu adapters found, and the device `auto` picks.
    Info,
    /// The sparse-training methods in the registry.
    Methods,
    /// Run a grid (variants x sparsities x seeds) from a sweep TOML, resumably, and write
    /// results.md / results.csv / accuracy.svg (see configs/sweep-*.toml).
    Sweep(Box<cli::sweep::SweepArgs>),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: cli::bench::BenchCommand,
    },
}

#[derive(Args)]
struct TrainArgs {
    /// TOML config file (every section optional; see configs/).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Override any config key: --set method.name=set --set optim.lr=0.05
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<Setting>,
    /// Method from the registry (see `sparselab methods`).
    #[arg(long)]
    method: Option<String>,
    /// Fraction of weights that are zero, e.g. 0.99.
    #[arg(long)]
    sparsity: Option<f64>,
    /// Layer-wise densities: erk or uniform.
    #[arg(long)]
    distribution: Option<String>,
    #[arg(long)]
    epochs: Option<usize>,
    /// resnet8|14|20|32|44|56|110|18|34|50
    #[arg(long)]
    model: Option<String>,
    /// Width multiplier.
    #[arg(long)]
    width: Option<f64>,
    /// synthetic | cifar10 | cifar100 | cifar100-coarse | folder
    #[arg(long)]
    data: Option<String>,
    /// The dataset file or folder (.tar.gz or extracted).
    #[arg(long)]
    data_path: Option<PathBuf>,
    /// auto | gpu | cpu | flex | ndarray | wgpu
    #[arg(long)]
    device: Option<String>,
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Continue the run in --out from its checkpoint, with the checkpoint's settings.
    #[arg(long)]
    resume: bool,
    /// With --resume: change one of the few settings a run may change midway (optim.*,
    /// run.checkpoint_every, run.log_every, run.eval_test, run.bn_recalibration_batches, eval_batch_size, data.path),
    /// e.g. --override optim.lr=0.01 after a divergence.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<Setting>,
    /// Start from the weights of a safetensors file (`sparselab export`, or a PyTorch model
    /// under the book's CIFAR-ResNet names) instead of a random initialisation.
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// Checkpoint and stop after this many steps (continue later with --resume).
    #[arg(long)]
    stop_after: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download the official binary tarball, verify its MD5, extract it.
    Fetch {
        /// cifar10 or cifar100
        dataset: String,
        #[arg(long)]
        to: PathBuf,
        /// A mirror URL for the tarball (it is still verified).
        #[arg(long)]
        url: Option<String>,
    },
}

fn main() -> ExitCode {
    sparselab::host_memory::keep_freed_memory();
    quiet_headless_display_probe();
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// On a headless machine, probing for GPUs makes Mesa's Vulkan driver ask libwayland for a
/// display, and libwayland prints "error: XDG_RUNTIME_DIR is invalid" when that variable is
/// unset: noise that reads like a failure. Point it at a private folder when unset.
fn quiet_headless_display_probe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join("sparselab-xdg-runtime");
    if std::fs::create_dir_all(&dir).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        // SAFETY: called first thing in `main`, before any thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

/// The run's config and the settings the user gave explicitly (file and flags).
fn train_config(a: &TrainArgs) -> anyhow::Result<(TrainConfig, toml::Table)> {
    let text = match &a.config {
        Some(p) => Some((
            sparselab::data::bounded::read_settings_file(p, "config file")?,
            p.display().to_string(),
        )),
        None => None,
    };
    // Each flag is a typed setting, as if given with --set; --set comes last and wins.
    let mut sets = Vec::new();
    let text_flags = [
        ("method.name", a.method.clone()),
        ("sparsity.distribution", a.distribution.clone()),
        ("model.arch", a.model.clone()),
        ("data.kind", a.data.clone()),
        (
            "data.path",
            a.data_path.as_ref().map(|p| p.display().to_string()),
        ),
        ("run.device", a.device.clone()),
        ("run.out", a.out.as_ref().map(|p| p.display().to_string())),
        (
            "run.init_from",
            a.init_from.as_ref().map(|p| p.display().to_string()),
        ),
    ];
    for (key, value) in text_flags {
        sets.extend(value.map(|v| Setting::new(key, v)));
    }
    for (key, value) in [("sparsity.sparsity", a.sparsity), ("model.width", a.width)] {
        sets.extend(value.map(|v| Setting::new(key, v)));
    }
    let counts = [
        ("epochs", a.epochs.map(|v| v as u64)),
        ("seed", a.seed),
        ("batch_size", a.batch_size.map(|v| v as u64)),
    ];
    for (key, value) in counts {
        if let Some(v) = value {
            sets.push(Setting::count(key, v)?);
        }
    }
    sets.extend(a.set.iter().cloned());
    let text = text.as_ref().map(|(t, o)| (t.as_str(), o.as_str()));
    let requested = TrainConfig::explicit_settings(text, &sets)?;
    Ok((TrainConfig::load(text, &sets)?, requested))
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Train(a) => {
            if a.stop_after == Some(0) {
                anyhow::bail!("--stop-after 0 would train nothing: give at least 1 step");
            }
            let (config, requested) = train_config(&a)?;
            let options = RunOptions {
                resume: a.resume,
                stop_after_steps: a.stop_after,
                progress: !a.quiet,
                requested,
                overrides: a.overrides.clone(),
            };
            let s = run(config, &options)?;
            // With weight sharing, quote the count against the unshared network (what
            // the sparsity refers to) and say how many unique weights hold it.
            let weights = if s.unshared_numel != s.numel {
                format!(
                    "{} of {} weights counted unshared; {} unique, {} non-zero at every reuse",
                    s.nnz, s.unshared_numel, s.numel, s.effective_nnz
                )
            } else {
                format!("{} of {} weights", s.nnz, s.numel)
            };
            let weights = match s.connected_nnz {
                Some(c) if c < s.nnz => format!("{weights}; {c} on an input→output path"),
                _ => weights,
            };
            println!(
                "{} {} at {:.2}% sparsity ({}): {} steps, best val acc {}, final val acc {}, test acc {} ({:.0} s, {})",
                s.method,
                s.arch,
                (1.0 - s.nnz as f64 / s.unshared_numel.max(1) as f64) * 100.0,
                weights,
                s.steps,
                cli::pct(s.best_val_accuracy),
                cli::pct(s.final_val_accuracy),
                cli::pct(s.test_accuracy),
                s.seconds,
                s.device
            );
            if !s.finished {
                println!(
                    "stopped early; continue with: sparselab train --out {} --resume",
                    s.out.display()
                );
            } else {
                println!(
                    "metrics: {}/metrics.jsonl  checkpoint: {}/checkpoint.bin",
                    s.out.display(),
                    s.out.display()
                );
            }
        }
        Command::Eval(a) => cli::eval::run(a)?,
        Command::Export(a) => cli::export::run(a)?,
        Command::Data {
            command: DataCommand::Fetch { dataset, to, url },
        } => {
            if to.exists() && !to.is_dir() {
                anyhow::bail!(
                    "--to {}: is a file; give the folder to download and extract into",
                    to.display()
                );
            }
            let release = sparselab::data::fetch::release(&dataset)?;
            let dir = sparselab::data::fetch::fetch(release, &to, url.as_deref(), true)?;
            println!(
                "{} verified and extracted to {}",
                release.name,
                dir.display()
            );
            println!(
                "train with: sparselab train --data {} --data-path {}",
                release.name,
                dir.display()
            );
        }
        Command::Sweep(a) => cli::sweep::run(*a)?,
        Command::Bench { command } => cli::bench::run(command)?,
        Command::Info => info(),
        Command::Methods => {
            for m in sparselab::methods::REGISTRY {
                println!("{:<8} {}", m.name, m.summary);
            }
        }
    }
    Ok(())
}

fn info() {
    println!("sparselab {}", env!("CARGO_PKG_VERSION"));
    println!(
        "backends compiled in: flex (CPU, default), ndarray (CPU, deprecated, benchmark only), wgpu (Vulkan/Metal/DX12)"
    );
    let adapters = sparselab::device::adapters();
    if adapters.is_empty() {
        println!("wgpu adapters: none found");
    } else {
        println!("wgpu adapters:");
        for a in &adapters {
            println!(
                "  - {} [{}; {}; {}]{}",
                a.name,
                a.backend,
                a.device_type,
                a.driver,
                if a.hardware {
                    ""
                } else {
                    "  (software: used only to test GPU code, never to train)"
                }
            );
        }
    }
    match sparselab::device::select(DeviceChoice::Auto) {
        Ok((_, name)) => println!("--device auto trains on: {name}"),
        Err(e) => println!("--device auto: {e}"),
    }
}
