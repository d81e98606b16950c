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

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Kernels {
            device,
            models,
            network,
            sparsities,
            batch,
            repeats,
            layers_only,
        } => bench_kernels(
            &device,
            &models,
            &network,
            &sparsities,
            batch,
            repeats,
            layers_only,
        )?,
        BenchCommand::Train {
            backends,
            model,
            width,
            batch,
            warmup,
            steps,
            method,
            sparsity,
        } => {
            anyhow::ensure!(
                steps > 0,
                "--steps must be at least 1 (the timed steps are averaged)"
            );
            let config = TrainConfig::load(
                None,
                &[
                    Setting::new("model.arch", model.as_str()),
                    Setting::new("model.width", width),
                    Setting::count("batch_size", batch as u64)?,
                    Setting::new("method.name", method.as_str()),
                    Setting::new("sparsity.sparsity", sparsity),
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
