//! `sparselab bench`: training throughput per backend, and the kernel lab's tables.

use clap::Subcommand;
use sparselab::device::DeviceChoice;
use sparselab::train::{Setting, TrainConfig};

#[derive(Subcommand)]
pub enum BenchCommand {
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
        /// Comma-separated `run.kernels` modes, one row each per backend:
        /// dense, sparse, auto, timed.
        #[arg(long, default_value = "auto")]
        kernels: String,
    },
    /// Sparse kernels vs dense masked layers: per layer shape, whole network, update kernels.
    Kernels(KernelsArgs),
}

#[derive(clap::Args)]
pub struct KernelsArgs {
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
    /// Only the per-layer and update-kernel tables: no whole-network table (slow on
    /// software adapters) and no CPU loop versions.
    #[arg(long)]
    layers_only: bool,
    /// Instead of the tables: measure each layer shape's crossover density (training,
    /// at --batch) and print the rows `kernels/crossover.rs` ships.
    #[arg(long)]
    crossover: bool,
    /// With `--device flex`: the sparsity of the CPU loop versions' table.
    #[arg(long, default_value_t = 0.999)]
    loop_sparsity: f64,
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

fn bench_kernels(args: &KernelsArgs) -> anyhow::Result<()> {
    use sparselab::kernels::lab;
    let KernelsArgs {
        device,
        models,
        network,
        sparsities,
        batch,
        repeats,
        layers_only,
        crossover,
        loop_sparsity,
    } = args;
    let (batch, repeats, layers_only, crossover, loop_sparsity) =
        (*batch, *repeats, *layers_only, *crossover, *loop_sparsity);
    let choice: DeviceChoice = device.parse().map_err(anyhow::Error::msg)?;
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
        (0.0..1.0).contains(&loop_sparsity),
        "--loop-sparsity: {loop_sparsity} is not in [0, 1)"
    );
    anyhow::ensure!(
        batch > 0 && repeats > 0,
        "--batch and --repeats must be > 0"
    );
    // The arguments are checked first: a wrong one is reported on any machine, with or
    // without the device.
    let (dev, name) = sparselab::device::select(choice).map_err(anyhow::Error::msg)?;
    // Layer and update timings run without autodiff; the training step adds it back.
    let dev = dev.inner();
    if crossover {
        use sparselab::kernels::lab_crossover;
        println!(
            "crossover densities on {name}, training (forward and backward), batch {batch}, {repeats} timed repeats (mean ms)\n"
        );
        eprintln!("measuring crossovers...");
        let rows = lab_crossover::measure(&archs, batch, repeats, &dev);
        print!("{}", lab_crossover::table(&rows));
        println!("\nrows for kernels/crossover.rs:\n\n```rust");
        print!("{}", lab_crossover::rust_rows(&rows));
        println!(
            "```\n\ncommand: sparselab bench kernels --device {device} --models {models} --batch {batch} --repeats {repeats} --crossover"
        );
        return Ok(());
    }
    println!("sparse kernels on {name}, batch {batch}, {repeats} timed repeats (mean ± std ms)\n");
    eprintln!("timing layer shapes...");
    let rows = lab::layer_timings(&archs, &sparsities, batch, repeats, &dev);
    println!("## Per layer shape (forward)\n");
    print!("{}", lab::layer_table(&archs, &rows));
    if !layers_only {
        let decisions = lab::decision_table(&rows);
        let wins = |s: &sparselab::kernels::timing::ConvShape, density: f64| {
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
    let on_flex = matches!(
        dev.as_dispatch(),
        sparselab::burn::backend::DispatchDevice::Flex(_)
    );
    if on_flex && !layers_only {
        eprintln!("timing the CPU loop versions...");
        println!(
            "\n## CPU loop versions at {}% sparsity (mean ms of forward / input gradient / weight gradient)\n",
            loop_sparsity * 100.0
        );
        let rows =
            sparselab::kernels::lab_cpu_loops::loop_timings(&archs, loop_sparsity, batch, repeats);
        print!("{}", sparselab::kernels::lab_cpu_loops::loop_table(&rows));
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
        "\ncommand: sparselab bench kernels --device {device} --models {models} --network {network} --sparsities {} --batch {batch} --repeats {repeats}{}{}",
        sparsities
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(","),
        if layers_only { " --layers-only" } else { "" },
        if on_flex && !layers_only {
            format!(" --loop-sparsity {loop_sparsity}")
        } else {
            String::new()
        }
    );
    Ok(())
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Kernels(args) => bench_kernels(&args)?,
        BenchCommand::Train {
            backends,
            model,
            width,
            batch,
            warmup,
            steps,
            method,
            sparsity,
            kernels,
        } => {
            anyhow::ensure!(
                steps > 0,
                "--steps must be at least 1 (the timed steps are averaged)"
            );
            let settings = [
                Setting::new("model.arch", model.as_str()),
                Setting::new("model.width", width),
                Setting::count("batch_size", batch as u64)?,
                Setting::new("method.name", method.as_str()),
                Setting::new("sparsity.sparsity", sparsity),
            ];
            let list = |s: &str| -> Vec<String> {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            };
            let mut rows = Vec::new();
            for mode in list(&kernels) {
                let mut settings = settings.to_vec();
                settings.push(Setting::new("run.kernels", mode.as_str()));
                let config = TrainConfig::load(None, &settings)?;
                for b in list(&backends) {
                    let choice: DeviceChoice = b.parse().map_err(anyhow::Error::msg)?;
                    eprintln!(
                        "benchmarking {b}, kernels {mode} ({warmup} warm-up + {steps} timed steps of batch {batch})..."
                    );
                    match sparselab::bench::bench_backend(&config, choice, warmup, steps) {
                        Ok(r) => rows.push(r),
                        Err(e) => eprintln!("  {b}: skipped: {e:#}"),
                    }
                }
            }
            println!(
                "training throughput, {model} (width x{width}), {method} at {:.1}% sparsity, batch {batch}:\n",
                sparsity * 100.0
            );
            print!("{}", sparselab::bench::table(&rows));
            println!(
                "\ncommand: sparselab bench train --backends {backends} --model {model} --width {width} --batch {batch} --warmup {warmup} --steps {steps} --method {method} --sparsity {sparsity} --kernels {kernels}"
            );
        }
    }
    Ok(())
}
