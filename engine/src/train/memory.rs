//! A model too large for the machine is refused before it is built, with the estimate in
//! the message, instead of the process being killed mid-allocation.

use super::config::TrainConfig;
use anyhow::bail;

/// Bytes a prunable weight costs in training: the weight, its gradient, momentum, the mask
/// as a float tensor, and autodiff's copies (a conservative round figure).
const BYTES_PER_WEIGHT: u64 = 24;

/// Errors when training `config`'s model is estimated to need more memory than is free.
pub fn check_model_fits(config: &TrainConfig, num_classes: usize) -> anyhow::Result<()> {
    let Some(available) = available_bytes() else {
        return Ok(()); // no /proc/meminfo: nothing to compare with
    };
    let model = config.resolved_model();
    let weights = model.weight_count(num_classes);
    let needed = weights.saturating_mul(BYTES_PER_WEIGHT);
    if needed > available {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        bail!(
            "model {} at width {} has about {:.0} million weights: training it needs about \
             {:.1} GiB, and this machine has {:.1} GiB available. Lower model.width or pick a \
             smaller model.arch",
            model.arch.name(),
            model.width,
            weights as f64 / 1e6,
            gib(needed),
            gib(available)
        );
    }
    Ok(())
}

fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_counts_follow_the_layout_and_a_huge_model_is_refused() {
        let mut c = TrainConfig::default();
        // ResNet-20 has 270,896 prunable weights (the book's default run counts them from
        // the built model); ResNet-50 x16 is about 256x ResNet-50's 23.5 M.
        assert_eq!(c.model.weight_count(10), 270_896);
        c.model.arch = crate::model::Arch::Resnet50;
        c.model.width = 16.0;
        assert!(c.model.weight_count(10) > 5_000_000_000);
        if available_bytes().is_some_and(|a| a < 100 << 30) {
            let err = check_model_fits(&c, 10).unwrap_err().to_string();
            assert!(err.contains("resnet50") && err.contains("GiB"), "{err}");
        }
    }
}
