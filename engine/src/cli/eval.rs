//! `sparselab eval`: a checkpoint's accuracy, overall and per class, on a split.

use super::pct;
use clap::Args;
use sparselab::device::DeviceChoice;
use sparselab::train::Checkpoint;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// A checkpoint.bin written by `train`.
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

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
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
    // The model as the run left it: DyReLU at its last phase (eval runs the dense kernels).
    let ctx = sparselab::model::ForwardCtx::new(ckpt.meta.dyrelu_phase, None);
    let e = pollster::block_on(sparselab::train::eval::evaluate_model(
        &model, &ctx, &batcher, &set, &indices, batch, &device,
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
