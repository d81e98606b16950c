//! Learning-rate schedules: multistep, cosine, constant; each with an optional linear
//! warm-up. Positions are in epochs (fractional), so they do not depend on batch size.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrKind {
    Multistep,
    Cosine,
    Constant,
    /// Linear decay to `lr x final_fraction` after the warm-up: with a warm-up this is the
    /// triangular / one-cycle shape SCULPT-ing's cycles use.
    Linear,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub kind: LrKind,
    /// Multistep: fractions of training at which the LR is multiplied by `gamma`.
    pub milestones: Vec<f64>,
    pub gamma: f64,
    /// Linear warm-up from `lr x warmup_start` to `lr` over this many epochs.
    pub warmup_epochs: f64,
    pub warmup_start: f64,
    /// Cosine: the LR ends at `lr x final_fraction`.
    pub final_fraction: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: LrKind::Cosine,
            milestones: vec![0.5, 0.75],
            gamma: 0.1,
            warmup_epochs: 0.0,
            warmup_start: 0.1,
            final_fraction: 0.0,
        }
    }
}

impl ScheduleConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.milestones.iter().any(|m| !(0.0..=1.0).contains(m)) {
            return Err("schedule.milestones are fractions of training, each in [0, 1]".into());
        }
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            return Err(format!(
                "schedule.gamma = {} must be in (0, 1]: the LR is multiplied by it at each milestone",
                self.gamma
            ));
        }
        if !(0.0..=1.0).contains(&self.final_fraction) {
            return Err(format!(
                "schedule.final_fraction = {} must be in [0, 1]: the LR ends at lr x final_fraction",
                self.final_fraction
            ));
        }
        let warmup_ok = self.warmup_epochs.is_finite() && self.warmup_epochs >= 0.0;
        if !warmup_ok || !(0.0..=1.0).contains(&self.warmup_start) {
            return Err(
                "schedule.warmup_epochs must be >= 0 and schedule.warmup_start in [0, 1]".into(),
            );
        }
        Ok(())
    }

    /// The LR at training position `epoch` (fractional) of `total_epochs`.
    pub fn lr_at(&self, base_lr: f64, epoch: f64, total_epochs: f64) -> f64 {
        if epoch < self.warmup_epochs {
            let t = epoch / self.warmup_epochs;
            return base_lr * (self.warmup_start + (1.0 - self.warmup_start) * t);
        }
        let progress = (epoch / total_epochs).clamp(0.0, 1.0);
        match self.kind {
            LrKind::Constant => base_lr,
            LrKind::Multistep => {
                let passed = self.milestones.iter().filter(|&&m| progress >= m).count();
                base_lr * self.gamma.powi(passed as i32)
            }
            LrKind::Cosine => {
                // Cosine over the part of training after warm-up.
                let span = (total_epochs - self.warmup_epochs).max(1e-9);
                let t = ((epoch - self.warmup_epochs) / span).clamp(0.0, 1.0);
                let lo = base_lr * self.final_fraction;
                lo + (base_lr - lo) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            LrKind::Linear => {
                let span = (total_epochs - self.warmup_epochs).max(1e-9);
                let t = ((epoch - self.warmup_epochs) / span).clamp(0.0, 1.0);
                let lo = base_lr * self.final_fraction;
                base_lr + (lo - base_lr) * t
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistep_drops_at_milestones() {
        let s = ScheduleConfig {
            kind: LrKind::Multistep,
            ..Default::default()
        };
        assert_eq!(s.lr_at(0.1, 0.0, 100.0), 0.1);
        assert!((s.lr_at(0.1, 50.0, 100.0) - 0.01).abs() < 1e-12);
        assert!((s.lr_at(0.1, 80.0, 100.0) - 0.001).abs() < 1e-12);
    }

    #[test]
    fn linear_after_warmup_is_a_triangle() {
        let s = ScheduleConfig {
            kind: LrKind::Linear,
            warmup_epochs: 2.0,
            warmup_start: 0.0,
            ..Default::default()
        };
        assert_eq!(s.lr_at(1.0, 0.0, 10.0), 0.0);
        assert!((s.lr_at(1.0, 1.0, 10.0) - 0.5).abs() < 1e-12);
        assert!((s.lr_at(1.0, 2.0, 10.0) - 1.0).abs() < 1e-12);
        assert!((s.lr_at(1.0, 6.0, 10.0) - 0.5).abs() < 1e-12);
        assert!(s.lr_at(1.0, 10.0, 10.0).abs() < 1e-12);
    }

    #[test]
    fn cosine_with_warmup() {
        let s = ScheduleConfig {
            warmup_epochs: 5.0,
            ..Default::default()
        };
        assert!((s.lr_at(1.0, 0.0, 105.0) - 0.1).abs() < 1e-12);
        assert!((s.lr_at(1.0, 2.5, 105.0) - 0.55).abs() < 1e-12);
        assert!((s.lr_at(1.0, 5.0, 105.0) - 1.0).abs() < 1e-12);
        assert!((s.lr_at(1.0, 55.0, 105.0) - 0.5).abs() < 1e-9);
        assert!(s.lr_at(1.0, 105.0, 105.0).abs() < 1e-12);
    }
}
