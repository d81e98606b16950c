//! `sparselab eval`: a checkpoint's (or a `sparselab export` file's) accuracy, overall and
//! per class, on a split.

use super::pct;
use clap::Args;
use sparselab::data::Normalization;
use sparselab::device::DeviceChoice;
use sparselab::model::ResNet;
use sparselab::train::{Checkpoint, TrainConfig};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct EvalArgs {
    /// A checkpoint.bin written by `train`, or a .safetensors file from `export`.
    pub checkpoint: PathBuf,
    /// Which split: test (default), val (the run's held-out split), or train.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Evaluate on another dataset kind than the run's (with --data-path).
    #[arg(long)]
    pub data: Option<String>,
    #[arg(long)]
    pub data_path: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What evaluating needs of a checkpoint or an export.
struct Trained {
    config: TrainConfig,
    num_classes: usize,
    class_names: Vec<String>,
    normalization: Normalization,
    dyrelu_phase: Option<f64>,
    model: ResNet,
    nnz: usize,
    numel: usize,
}

fn load(path: &Path, device: &sparselab::burn::tensor::Device) -> anyhow::Result<Trained> {
    let origin = path.display().to_string();
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| anyhow::anyhow!("{origin}: cannot read: {e}"))?;
    let head = &head[..n];
    if !head.starts_with(b"sparselab-ckpt") {
        // A safetensors file opens with its header's length, then the JSON header.
        if head.get(8) != Some(&b'{') {
            anyhow::bail!(
                "{origin}: not a sparselab checkpoint (`train` writes checkpoint.bin) nor a \
                 safetensors export (`sparselab export` writes one)"
            );
        }
        let bytes = sparselab::data::bounded::read_bounded(
            path,
            sparselab::weights::MAX_WEIGHTS_BYTES,
            "safetensors export",
        )?;
        let m = sparselab::weights::read_exported_model(&bytes, &origin, device)?;
        return Ok(Trained {
            config: m.config,
            num_classes: m.num_classes,
            class_names: m.class_names,
            normalization: m.normalization,
            dyrelu_phase: m.dyrelu_phase,
            model: m.model,
            nnz: m.nnz,
            numel: m.numel,
        });
    }
    let ckpt = Checkpoint::load(path)?;
    let (model, masks) = ckpt.restore_model(device)?;
    let meta = ckpt.meta;
    Ok(Trained {
        config: meta.config,
        num_classes: meta.num_classes,
        class_names: meta.class_names,
        normalization: meta.normalization,
        dyrelu_phase: meta.dyrelu_phase,
        model,
        nnz: masks.nnz(),
        numel: masks.numel(),
    })
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    use sparselab::data::{DataKind, load_split};
    let choice: DeviceChoice = a.device.parse().map_err(anyhow::Error::msg)?;
    let (device, device_name) = sparselab::device::select(choice).map_err(anyhow::Error::msg)?;
    let device = device.without_autodiff();
    let ckpt = load(&a.checkpoint, &device)?;
    let mut data = ckpt.config.data.clone();
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
    let seed = ckpt.config.seed;
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
    if set.num_classes() != ckpt.num_classes {
        anyhow::bail!(
            "the checkpoint predicts {} classes but {} has {}",
            ckpt.num_classes,
            set.name,
            set.num_classes()
        );
    }
    if !ckpt.class_names.is_empty() && set.class_names != ckpt.class_names {
        anyhow::bail!(
            "{} has the classes {}, but the checkpoint was trained on {}: the labels would \
             not line up",
            set.name,
            set.class_names.join(", "),
            ckpt.class_names.join(", ")
        );
    }
    if indices.is_empty() {
        anyhow::bail!("the {} split is empty", a.split);
    }
    let batcher = sparselab::data::Batcher::new(ckpt.normalization);
    let batch = ckpt.config.eval_batch_size;
    // The model as the run left it: DyReLU at its last phase (eval runs the dense kernels,
    // and the device's BatchNorm).
    let ctx = sparselab::model::ForwardCtx::new(ckpt.dyrelu_phase, None)
        .with_batch_norm(sparselab::kernels::batch_norm::for_device(&device));
    let e = pollster::block_on(sparselab::train::eval::evaluate_model(
        &ckpt.model,
        &ctx,
        &batcher,
        &set,
        &indices,
        batch,
        &device,
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
        ckpt.nnz as f64 / ckpt.numel.max(1) as f64 * 100.0,
        ckpt.nnz,
        ckpt.numel
    );
    println!("| class | images | accuracy |\n|---|---|---|");
    for (c, acc) in e.per_class_accuracy().iter().enumerate() {
        let n: usize = e.confusion[c].iter().sum();
        println!("| {} | {} | {} |", set.class_names[c], n, pct(*acc));
    }
    Ok(())
}
