//! `sparselab export`: a checkpoint's model as a safetensors file for PyTorch.

use super::pct;
use clap::Args;
use sparselab::train::Checkpoint;
use sparselab::train::checkpoint::write_atomic;
use sparselab::train::run::RunSummary;
use sparselab::weights::{ExportExtras, export_safetensors};
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// A checkpoint.bin written by `train`.
    pub checkpoint: PathBuf,
    /// The file format (safetensors: what PyTorch's safetensors.torch.load_file reads).
    #[arg(long, default_value = "safetensors")]
    pub format: String,
    /// Where to write (default: beside the checkpoint, as <name>.safetensors).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    if a.format != "safetensors" {
        anyhow::bail!(
            "--format {}: the one export format is safetensors",
            a.format
        );
    }
    let ckpt = Checkpoint::load(&a.checkpoint)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.checkpoint.with_extension("safetensors"));
    if same_file(&out, &a.checkpoint) {
        anyhow::bail!(
            "--out {} is the checkpoint itself: give another file name",
            out.display()
        );
    }
    // The run's summary (beside a finished run's checkpoint) knows its test accuracy.
    let summary = a
        .checkpoint
        .parent()
        .map(|dir| dir.join("summary.json"))
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|bytes| serde_json::from_slice::<RunSummary>(&bytes).ok())
        .filter(|s| s.steps == ckpt.meta.step);
    let extras = ExportExtras {
        test_accuracy: summary.and_then(|s| s.test_accuracy),
    };
    let bytes = export_safetensors(&ckpt, &extras)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.checkpoint.display()))?;
    write_atomic(&out, &bytes)?;
    let file = safetensors::SafeTensors::deserialize(&bytes)?;
    let meta = safetensors::SafeTensors::read_metadata(&bytes)?.1;
    let info = meta.metadata().clone().unwrap_or_default();
    let get = |k: &str| info.get(k).cloned().unwrap_or_else(|| "-".into());
    println!(
        "{}: {} {} at step {}, {} of {} weights non-zero ({:.4}% dense), best val acc {}, test acc {}",
        out.display(),
        get("method"),
        get("arch"),
        get("step"),
        get("nnz"),
        get("numel"),
        get("density").parse::<f64>().unwrap_or(f64::NAN) * 100.0,
        pct(ckpt.meta.best_val_accuracy),
        pct(extras.test_accuracy),
    );
    if let Some(unique) = info.get("learnable_nnz") {
        println!(
            "weight sharing: {unique} learnable non-zeros, each counted at every use above \
             (PyTorch sees the unshared network)"
        );
    }
    println!(
        "{} tensors ({} masks under masks.*); load in PyTorch with \
         safetensors.torch.load_file (the book's \"Weights in and out\")",
        file.len(),
        file.names()
            .iter()
            .filter(|n| n.starts_with("masks."))
            .count()
    );
    Ok(())
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
