//! The `sparselab` command line: train, eval, data fetch, info, methods, bench.

use clap::{Args, Parser, Subcommand};
use sparselab::device::DeviceChoice;
use sparselab::train::run::{RunOptions, run};
use sparselab::train::{Checkpoint, TrainConfig};
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
    Eval(EvalArgs),
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
    Sweep(Box<SweepArgs>),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Args)]
struct TrainArgs {
    /// TOML config file (every section optional; see configs/).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Override any config key: --set method.name=set --set optim.lr=0.05
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
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
    /// run.checkpoint_every, run.log_every, run.eval_test, eval_batch_size, data.path),
    /// e.g. --override optim.lr=0.01 after a divergence.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Checkpoint and stop after this many steps (continue later with --resume).
    #[arg(long)]
    stop_after: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct SweepArgs {
    /// The sweep file.
    config: PathBuf,
    /// Cells run at once, each a separate process.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// CPU threads per process (default: the machine's cores / jobs).
    #[arg(long)]
    threads: Option<usize>,
    /// Results folder (default: the sweep file's `out`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only rebuild the table and plot from the finished cells.
    #[arg(long)]
    report_only: bool,
    /// List the cells with their numbers and states, and stop.
    #[arg(long)]
    list: bool,
    /// Run only this cell (see --list); a job array's task sets it through
    /// SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when omitted.
    #[arg(long)]
    cell: Option<usize>,
    /// Write the files that run the grid on a cluster, into <out>/slurm or <out>/k8s.
    #[arg(long, value_name = "slurm|k8s")]
    emit: Option<String>,
    /// --emit: the partition (SLURM).
    #[arg(long)]
    partition: Option<String>,
    /// --emit: GPUs per cell (0: CPU).
    #[arg(long, default_value_t = 0)]
    gpus_per_task: usize,
    /// --emit: CPU cores per cell.
    #[arg(long, default_value_t = 1)]
    cpus_per_task: usize,
    /// --emit: wall-time limit per cell, HH:MM:SS or D-HH:MM:SS.
    #[arg(long, default_value = "24:00:00")]
    time: String,
    /// --emit: cells running at once (default: all).
    #[arg(long)]
    max_parallel: Option<usize>,
    /// --emit: memory per cell, e.g. 16G.
    #[arg(long)]
    mem: Option<String>,
    /// --emit: the binary the cluster runs (default: this one; `sparselab` for k8s).
    #[arg(long)]
    exe: Option<PathBuf>,
    /// --emit k8s: the container image with sparselab on its PATH.
    #[arg(long, default_value = "sparselab:latest")]
    image: String,
    /// --emit k8s: the PersistentVolumeClaim holding the sweep file and folder.
    #[arg(long, default_value = "sparselab-sweeps")]
    pvc: String,
    /// --emit k8s: where the volume is mounted (default: the sweep folder's parent).
    #[arg(long)]
    mount: Option<PathBuf>,
}

#[derive(Args)]
struct EvalArgs {
    /// A checkpoint.bin written by `train`.
    checkpoint: PathBuf,
    /// Which split: test (default), val (the run's held-out split), or train.
    #[arg(long, default_value = "test")]
    split: String,
    /// Evaluate on another dataset kind than the run's (with --data-path).
    #[arg(long)]
    data: Option<String>,
    #[arg(long)]
    data_path: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
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

#[derive(Subcommand)]
enum BenchCommand {
    /// Training images/s per backend (mean ± std over timed steps).
    Train {
        /// Comma-separated: flex,ndarray,wgpu,gpu
        #[arg(long, default_value = "flex,ndarray")]
        backends: String,
        #[arg(long, default_value = "resnet20")]
        model: String,
        /// Width multiplier (the playground's small models use 0.25 or 0.5).
        #[arg(long, default_value_t = 1.0)]
        width: f64,
        #[arg(long, default_value_t = 128)]
        batch: usize,
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        #[arg(long, default_value_t = 5)]
        steps: usize,
        #[arg(long, default_value = "rigl")]
        method: String,
        #[arg(long, default_value_t = 0.9)]
        sparsity: f64,
    },
    /// Sparse kernels vs dense masked layers: per layer shape, whole network, update kernels.
    Kernels {
        /// wgpu (any adapter, lavapipe included), gpu (hardware only) or flex (CPU).
        #[arg(long, default_value = "wgpu")]
        device: String,
        /// Architectures whose layer shapes are timed.
        #[arg(long, default_value = "resnet18,resnet34")]
        models: String,
        /// Architecture timed whole (inference and training step).
        #[arg(long, default_value = "resnet34")]
        network: String,
        #[arg(long, default_value = "0.9,0.99,0.999,0.9999")]
        sparsities: String,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Skip the whole-network table (slow on software adapters).
        #[arg(long)]
        layers_only: bool,
    },
}

fn parse_archs(list: &str) -> anyhow::Result<Vec<sparselab::model::Arch>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            sparselab::model::Arch::ALL
                .into_iter()
                .find(|a| a.name() == name)
                .ok_or_else(|| {
                    anyhow::anyhow!("unknown model '{name}' (see `sparselab train --help`)")
                })
        })
        .collect()
}

fn bench_kernels(
    device: &str,
    models: &str,
    network: &str,
    sparsities: &str,
    batch: usize,
    repeats: usize,
    layers_only: bool,
) -> anyhow::Result<()> {
    use sparselab::kernels::lab;
    let choice: DeviceChoice = device.parse().map_err(anyhow::Error::msg)?;
    let (dev, name) = sparselab::device::select(choice).map_err(anyhow::Error::msg)?;
    // Layer and update timings run without autodiff; the training step adds it back.
    let dev = dev.inner();
    let archs = parse_archs(models)?;
    let net_archs = parse_archs(network)?;
    let sparsities: Vec<f64> = sparsities
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("--sparsities: {e}"))?;
    if let Some(bad) = sparsities.iter().find(|s| !(0.0..1.0).contains(*s)) {
        anyhow::bail!("--sparsities: {bad} is not in [0, 1)");
    }
    anyhow::ensure!(
        batch > 0 && repeats > 0,
        "--batch and --repeats must be > 0"
    );
    println!("sparse kernels on {name}, batch {batch}, {repeats} timed repeats (mean ± std ms)\n");
    eprintln!("timing layer shapes...");
    let rows = lab::layer_timings(&archs, &sparsities, batch, repeats, &dev);
    println!("## Per layer shape (forward)\n");
    print!("{}", lab::layer_table(&archs, &rows));
    if !layers_only {
        let decisions = lab::decision_table(&rows);
        let wins = |s: &sparselab::kernels::plan::ConvShape, density: f64| {
            decisions
                .get(&s.key())
                .and_then(|ds| {
                    ds.iter()
                        .min_by(|a, b| (a.0 - density).abs().total_cmp(&(b.0 - density).abs()))
                })
                .is_some_and(|d| d.1)
        };
        let mut net = Vec::new();
        for arch in &net_archs {
            for &s in &sparsities {
                eprintln!("timing {} at {:.2}% sparsity...", arch.name(), s * 100.0);
                net.push(lab::network_timing(*arch, s, batch, repeats, &dev, &wins));
            }
        }
        println!(
            "\n## Whole network (layers run sparse where the per-layer table says sparse wins)\n"
        );
        print!("{}", lab::network_table(&net));
    }
    eprintln!("timing update kernels...");
    println!("\n## Update kernels (one ResNet-34 stage-4 layer)\n");
    println!("| kernel | kernel ms | reference ms | ratio |\n|---|---:|---:|---:|");
    for r in lab::update_kernel_rows(512 * 512 * 9, repeats, &dev) {
        let (k, rf) = (r.kernel, r.reference);
        println!(
            "| {} | {:.2} ± {:.2} | {:.2} ± {:.2} | {:.2}x |",
            r.what,
            k.0,
            k.1,
            rf.0,
            rf.1,
            rf.0 / k.0
        );
    }
    println!(
        "\ncommand: sparselab bench kernels --device {device} --models {models} --network {network} --sparsities {} --batch {batch} --repeats {repeats}{}",
        sparsities
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(","),
        if layers_only { " --layers-only" } else { "" }
    );
    Ok(())
}

fn main() -> ExitCode {
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

/// A config or sweep file is small: anything larger is the wrong file (or /dev/zero).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a TOML file the user named, bounded, as UTF-8; errors name the file.
fn read_toml_file(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    let bytes = sparselab::data::archive::read_bounded(path, MAX_CONFIG_BYTES, what)?;
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: not a text file (invalid UTF-8)", path.display()))
}

/// The run's config and the settings the user gave explicitly (file and flags).
fn train_config(a: &TrainArgs) -> anyhow::Result<(TrainConfig, toml::Table)> {
    let text = match &a.config {
        Some(p) => Some((read_toml_file(p, "config file")?, p.display().to_string())),
        None => None,
    };
    let mut sets = Vec::new();
    let quoted = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    if let Some(v) = &a.method {
        sets.push(format!("method.name={}", quoted(v)));
    }
    if let Some(v) = a.sparsity {
        sets.push(format!("sparsity.sparsity={v}"));
    }
    if let Some(v) = &a.distribution {
        sets.push(format!("sparsity.distribution={}", quoted(v)));
    }
    if let Some(v) = a.epochs {
        sets.push(format!("epochs={v}"));
    }
    if let Some(v) = &a.model {
        sets.push(format!("model.arch={}", quoted(v)));
    }
    if let Some(v) = a.width {
        sets.push(format!("model.width={v}"));
    }
    if let Some(v) = &a.data {
        sets.push(format!("data.kind={}", quoted(v)));
    }
    if let Some(v) = &a.data_path {
        sets.push(format!("data.path={}", quoted(&v.display().to_string())));
    }
    if let Some(v) = &a.device {
        sets.push(format!("run.device={}", quoted(v)));
    }
    if let Some(v) = &a.out {
        sets.push(format!("run.out={}", quoted(&v.display().to_string())));
    }
    if let Some(v) = a.seed {
        sets.push(format!("seed={v}"));
    }
    if let Some(v) = a.batch_size {
        sets.push(format!("batch_size={v}"));
    }
    sets.extend(a.set.iter().cloned());
    let text = text.as_ref().map(|(t, o)| (t.as_str(), o.as_str()));
    let requested = TrainConfig::explicit_settings(text, &sets)?;
    Ok((TrainConfig::load(text, &sets)?, requested))
}

fn sweep(a: SweepArgs) -> anyhow::Result<()> {
    use sparselab::sweep::cluster;
    use sparselab::sweep::{Launcher, SweepConfig, run_cells, write_report};
    if a.jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    let (config, root) = SweepConfig::load(&a.config)?;
    let out = a.out.clone().unwrap_or_else(|| config.out.clone());
    let cells = config.cells(&root, &out)?;
    if a.list {
        for (i, cell) in cells.iter().enumerate() {
            println!("{i:>4}  {:<48} {}", cell.name(), cell.state());
        }
        return Ok(());
    }
    if let Some(kind) = &a.emit {
        let absolute = |p: &std::path::Path| std::path::absolute(p);
        let target = cluster::Target {
            exe: match (&a.exe, kind.as_str()) {
                (Some(e), _) => e.clone(),
                (None, "k8s") => PathBuf::from("sparselab"),
                (None, _) => std::env::current_exe()?,
            },
            sweep_file: absolute(&a.config)?,
            out: absolute(&out)?,
            cells: cells.len(),
            title: config.title.clone(),
        };
        let resources = cluster::Resources {
            partition: a.partition.clone(),
            gpus_per_task: a.gpus_per_task,
            cpus_per_task: a.cpus_per_task,
            time: a.time.clone(),
            max_parallel: a.max_parallel,
            mem: a.mem.clone(),
            image: a.image.clone(),
            pvc: a.pvc.clone(),
            mount: a.mount.clone(),
        };
        let files = match kind.as_str() {
            "slurm" => cluster::slurm_files(&target, &resources)?,
            "k8s" => cluster::k8s_files(&target, &resources)?,
            other => anyhow::bail!("--emit {other}: use slurm or k8s"),
        };
        let dir = target.out.join(kind);
        std::fs::create_dir_all(dir.join("logs"))?;
        for (name, text) in &files {
            sparselab::train::checkpoint::write_atomic(&dir.join(name), text.as_bytes())?;
        }
        println!(
            "wrote {} ({} cells); submit with: bash {}",
            files
                .iter()
                .map(|(n, _)| dir.join(n).display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            cells.len(),
            dir.join("submit.sh").display()
        );
        return Ok(());
    }
    let cell = match a.cell {
        Some(c) => Some(c),
        None if !a.report_only => cluster::cell_from_env()?,
        None => None,
    };
    let cells = match cell {
        Some(c) if c >= cells.len() => anyhow::bail!(
            "cell {c}: the sweep has {} cells, numbered 0 to {} (see --list)",
            cells.len(),
            cells.len() - 1
        ),
        Some(c) => cells[c..=c].to_vec(),
        None => cells,
    };
    sparselab::sweep::check_existing(&cells)?;
    let command: Vec<String> = std::env::args().collect();
    let command = format!("scripts/sparselab {}", command[1..].join(" "));
    let mut failed = Vec::new();
    if !a.report_only {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let launcher = Launcher {
            exe: std::env::current_exe()?,
            jobs: a.jobs,
            threads_per_job: a.threads.or((a.jobs > 1).then(|| (cores / a.jobs).max(1))),
        };
        failed = run_cells(&cells, &out, &launcher)?;
    }
    // One cell of a job array: the report is the dependent job's.
    if cell.is_none() {
        let rows = write_report(&config, &cells, &out, &command)?;
        println!(
            "{}",
            std::fs::read_to_string(out.join("results.md")).unwrap_or_default()
        );
        eprintln!(
            "sweep: {} table rows; wrote {}/results.md, results.csv, accuracy.svg",
            rows.len(),
            out.display()
        );
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} cells failed (run the sweep again to retry them):\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
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
            println!(
                "{} {} at {:.2}% sparsity ({}): {} steps, best val acc {}, final val acc {}, test acc {} ({:.0} s, {})",
                s.method,
                s.arch,
                (1.0 - s.nnz as f64 / s.unshared_numel.max(1) as f64) * 100.0,
                weights,
                s.steps,
                pct(s.best_val_accuracy),
                pct(s.final_val_accuracy),
                pct(s.test_accuracy),
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
        Command::Eval(a) => eval(a)?,
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
        Command::Sweep(a) => sweep(*a)?,
        Command::Info => info(),
        Command::Methods => {
            for m in sparselab::methods::REGISTRY {
                println!("{:<8} {}", m.name, m.summary);
            }
        }
        Command::Bench {
            command:
                BenchCommand::Kernels {
                    device,
                    models,
                    network,
                    sparsities,
                    batch,
                    repeats,
                    layers_only,
                },
        } => bench_kernels(
            &device,
            &models,
            &network,
            &sparsities,
            batch,
            repeats,
            layers_only,
        )?,
        Command::Bench {
            command:
                BenchCommand::Train {
                    backends,
                    model,
                    width,
                    batch,
                    warmup,
                    steps,
                    method,
                    sparsity,
                },
        } => {
            anyhow::ensure!(
                steps > 0,
                "--steps must be at least 1 (the timed steps are averaged)"
            );
            let config = TrainConfig::load(
                None,
                &[
                    format!("model.arch=\"{model}\""),
                    format!("model.width={width}"),
                    format!("batch_size={batch}"),
                    format!("method.name=\"{method}\""),
                    format!("sparsity.sparsity={sparsity}"),
                ],
            )?;
            let mut rows = Vec::new();
            for b in backends.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let choice: DeviceChoice = b.parse().map_err(anyhow::Error::msg)?;
                eprintln!(
                    "benchmarking {b} ({warmup} warm-up + {steps} timed steps of batch {batch})..."
                );
                match sparselab::bench::bench_backend(&config, choice, warmup, steps) {
                    Ok(r) => rows.push(r),
                    Err(e) => eprintln!("  {b}: skipped: {e:#}"),
                }
            }
            println!(
                "training throughput, {model} (width x{width}), {method} at {:.1}% sparsity, batch {batch}:\n",
                sparsity * 100.0
            );
            print!("{}", sparselab::bench::table(&rows));
            println!(
                "\ncommand: sparselab bench train --backends {backends} --model {model} --width {width} --batch {batch} --warmup {warmup} --steps {steps} --method {method} --sparsity {sparsity}"
            );
        }
    }
    Ok(())
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |a| format!("{:.2}%", a * 100.0))
}

fn eval(a: EvalArgs) -> anyhow::Result<()> {
    use sparselab::data::{DataKind, load_split};
    let ckpt = Checkpoint::load(&a.checkpoint)?;
    let mut data = ckpt.meta.config.data.clone();
    if let Some(kind) = &a.data {
        data.kind = toml::Value::String(kind.clone())
            .try_into::<DataKind>()
            .map_err(|_| {
                anyhow::anyhow!(
                    "--data {kind}: use synthetic, cifar10, cifar100, cifar100-coarse or folder"
                )
            })?;
    }
    if let Some(p) = &a.data_path {
        data.path = Some(p.clone());
    }
    let seed = ckpt.meta.config.seed;
    let (set, indices) = match a.split.as_str() {
        "test" => {
            let set = load_split(&data, true, seed)?;
            let n = set.len();
            (set, (0..n).collect::<Vec<_>>())
        }
        "val" | "train" => {
            let set = load_split(&data, false, seed)?;
            let split = sparselab::data::TrainValSplit::new(&set, data.val_fraction, seed);
            let idx = if a.split == "val" {
                split.val
            } else {
                split.train
            };
            (set, idx)
        }
        other => anyhow::bail!("--split {other}: use test, val or train"),
    };
    if set.num_classes() != ckpt.meta.num_classes {
        anyhow::bail!(
            "the checkpoint predicts {} classes but {} has {}",
            ckpt.meta.num_classes,
            set.name,
            set.num_classes()
        );
    }
    if !ckpt.meta.class_names.is_empty() && set.class_names != ckpt.meta.class_names {
        anyhow::bail!(
            "{} has the classes {}, but the checkpoint was trained on {}: the labels would \
             not line up",
            set.name,
            set.class_names.join(", "),
            ckpt.meta.class_names.join(", ")
        );
    }
    if indices.is_empty() {
        anyhow::bail!("the {} split is empty", a.split);
    }
    let choice: DeviceChoice = a.device.parse().map_err(anyhow::Error::msg)?;
    let (device, device_name) = sparselab::device::select(choice).map_err(anyhow::Error::msg)?;
    let device = device.without_autodiff();
    let (model, masks) = ckpt.restore_model(&device)?;
    let batcher = sparselab::data::Batcher::new(ckpt.meta.normalization);
    let batch = ckpt.meta.config.eval_batch_size;
    let e = pollster::block_on(sparselab::train::trainer::evaluate_model(
        &model, &batcher, &set, &indices, batch, &device,
    ))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    println!(
        "{}: {} split of {}, {} images, on {}\naccuracy {:.2}%  loss {:.4}  density {:.4}% ({} of {} weights)\n",
        a.checkpoint.display(),
        a.split,
        set.name,
        e.images,
        device_name,
        e.accuracy * 100.0,
        e.loss,
        masks.density() * 100.0,
        masks.nnz(),
        masks.numel()
    );
    println!("| class | images | accuracy |\n|---|---|---|");
    for (c, acc) in e.per_class_accuracy().iter().enumerate() {
        let n: usize = e.confusion[c].iter().sum();
        println!("| {} | {} | {} |", set.class_names[c], n, pct(*acc));
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
