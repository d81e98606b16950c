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
    pub batch: usize,
}

impl BenchRow {
    pub fn mean_std(&self) -> (f64, f64) {
        let n = self.ms_per_step.len() as f64;
        let mean = self.ms_per_step.iter().sum::<f64>() / n;
        let var = self
            .ms_per_step
            .iter()
            .map(|x| (x - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0).max(1.0);
        (mean, var.sqrt())
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
    for _ in 0..warmup {
        block_on(trainer.train_step())?;
    }
    let mut ms = Vec::new();
    for _ in 0..steps {
        let o = block_on(trainer.train_step())?;
        ms.push(o.seconds * 1000.0);
    }
    Ok(BenchRow {
        backend: format!("{backend:?}").to_lowercase(),
        device: name,
        ms_per_step: ms,
        batch: config.batch_size,
    })
}

pub fn table(rows: &[BenchRow]) -> String {
    let mut s = String::from(
        "| backend | device | ms/step (mean ± std) | images/s | steps timed |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let (mean, std) = r.mean_std();
        s.push_str(&format!(
            "| {} | {} | {:.0} ± {:.0} | {:.1} | {} |\n",
            r.backend,
            r.device,
            mean,
            std,
            r.batch as f64 / (mean / 1000.0),
            r.ms_per_step.len()
        ));
    }
    s
}
