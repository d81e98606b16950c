//! `sparselab bench train`: training throughput (images/s) of one model and batch size
//! on each backend, reported as mean ± std over timed steps after warm-up.

use crate::data::synthetic;
use crate::device::{DeviceChoice, select};
use crate::train::{TrainConfig, TrainData, Trainer};
use pollster::block_on;

pub struct BenchRow {
    pub backend: String,
    pub device: String,
    pub ms_per_step: Vec<f64>,
    /// Time to assemble one augmented, normalised batch on the host (part of each step).
    pub data_ms_per_batch: f64,
    pub batch: usize,
    /// `run.kernels` and how many layers it ran sparse, e.g. "auto (33/37 sparse)".
    pub kernels: String,
}

impl BenchRow {
    pub fn mean_std(&self) -> (f64, f64) {
        crate::stats::mean_std(&self.ms_per_step)
    }
}

/// Times `steps` training steps (after `warmup`) of `config`'s model on `backend`.
pub fn bench_backend(
    config: &TrainConfig,
    backend: DeviceChoice,
    warmup: usize,
    steps: usize,
) -> anyhow::Result<BenchRow> {
    let (device, name) = select(backend).map_err(anyhow::Error::msg)?;
    let need = (warmup + steps + 1) * config.batch_size;
    let set = synthetic::generate(need.max(200), config.seed);
    let mut c = config.clone();
    c.data.val_fraction = 0.0;
    c.epochs = 1;
    let mut trainer = Trainer::new(c, TrainData::new(set, 0.0, config.seed), device)?;
    let data_ms_per_batch = time_batches(&trainer, config.batch_size);
    for _ in 0..warmup {
        block_on(trainer.train_step())?;
    }
    let mut ms = Vec::new();
    for _ in 0..steps {
        let o = block_on(trainer.train_step())?;
        ms.push(o.seconds * 1000.0);
    }
    let kernels = format!(
        "{} ({}/{} sparse)",
        serde_json::to_value(trainer.config().run.kernels)?
            .as_str()
            .unwrap_or("?"),
        trainer.sparse_kernel_layers().len(),
        trainer.layers().len()
    );
    Ok(BenchRow {
        kernels,
        backend: format!("{backend:?}").to_lowercase(),
        device: name,
        ms_per_step: ms,
        data_ms_per_batch,
        batch: config.batch_size,
    })
}

/// Mean milliseconds to build one augmented batch, over 20 batches.
fn time_batches(trainer: &Trainer, batch: usize) -> f64 {
    let data = trainer.data();
    let indices: Vec<usize> = data.split.train.iter().copied().take(batch).collect();
    let mut rng = crate::rng::Rng::new(0);
    let start = web_time::Instant::now();
    for _ in 0..20 {
        std::hint::black_box(data.batcher.batch(&data.set, &indices, Some(&mut rng)));
    }
    start.elapsed().as_secs_f64() * 1000.0 / 20.0
}

pub fn table(rows: &[BenchRow]) -> String {
    let mut s = String::from(
        "| backend | device | kernels | ms/step (mean ± std) | images/s | data ms/batch | steps timed |\n|---|---|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let (mean, std) = r.mean_std();
        s.push_str(&format!(
            "| {} | {} | {} | {:.0} ± {:.0} | {:.1} | {:.2} | {} |\n",
            r.backend,
            r.device,
            r.kernels,
            mean,
            std,
            r.batch as f64 / (mean / 1000.0),
            r.data_ms_per_batch,
            r.ms_per_step.len()
        ));
    }
    s
}
