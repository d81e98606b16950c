//! EAST's cyclic sparsity: for C cycles the overall density rises from the target d_min
//! to d_max = ratio·d_min and back, d(t) = d_min + (d_max − d_min)·½(1 − cos 2πt) (or a
//! triangle), t ∈ [0, 1) the position in the cycle. Cycle i lasts L·m^i epochs.

use super::Timeline;
use crate::sparsity::SparsityError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CycleShape {
    Cosine,
    Triangular,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CyclesConfig {
    /// C: number of density cycles before plain RigL takes over.
    pub count: usize,
    /// L: epochs of the first cycle. Unset: the cycles together fill the first half of
    /// training.
    pub epochs: Option<f64>,
    /// m: each cycle is m times as long as the one before.
    pub length_multiplier: f64,
    pub shape: CycleShape,
    /// d_max / d_min.
    pub max_ratio: f64,
}

impl Default for CyclesConfig {
    fn default() -> Self {
        Self {
            count: 2,
            epochs: None,
            length_multiplier: 1.0,
            shape: CycleShape::Cosine,
            max_ratio: 3.0,
        }
    }
}

impl CyclesConfig {
    pub fn validate(&self) -> Result<(), SparsityError> {
        let bad = |m: &str| Err(SparsityError::Invalid(format!("method.east.cycles.{m}")));
        if self.count == 0 || self.count > 1000 {
            return bad("count must be in 1..=1000 (or set method.east.cyclic = false)");
        }
        if self.epochs.is_some_and(|e| !(e.is_finite() && e > 0.0)) {
            return bad("epochs must be > 0");
        }
        if !(self.length_multiplier.is_finite() && self.length_multiplier > 0.0) {
            return bad("length_multiplier must be > 0");
        }
        if !(self.max_ratio.is_finite() && self.max_ratio >= 1.0) {
            return bad("max_ratio must be >= 1");
        }
        Ok(())
    }
}

/// The density at position `t` ∈ [0, 1] of a cycle between `d_min` and `d_max`.
pub fn cyclic_density(t: f64, d_min: f64, d_max: f64, shape: CycleShape) -> f64 {
    let rise = match shape {
        CycleShape::Cosine => 0.5 * (1.0 - (2.0 * std::f64::consts::PI * t).cos()),
        CycleShape::Triangular => 1.0 - (2.0 * t - 1.0).abs(),
    };
    d_min + (d_max - d_min) * rise
}

/// The cycles laid out in steps.
#[derive(Clone, Debug, PartialEq)]
pub struct CyclicSchedule {
    /// (first step, length in steps) of each cycle.
    pub cycles: Vec<(usize, usize)>,
    pub shape: CycleShape,
    pub max_ratio: f64,
}

impl CyclicSchedule {
    pub fn new(config: &CyclesConfig, timeline: &Timeline) -> Result<Self, SparsityError> {
        config.validate()?;
        let weights: Vec<f64> = (0..config.count)
            .map(|i| config.length_multiplier.powi(i as i32))
            .collect();
        let first_steps = match config.epochs {
            Some(e) => e * timeline.steps_per_epoch as f64,
            None => timeline.total_steps as f64 / 2.0 / weights.iter().sum::<f64>(),
        };
        let mut cycles = Vec::new();
        let mut start = 0usize;
        for w in weights {
            let len = ((first_steps * w).round() as usize).max(1);
            cycles.push((start, len));
            start = start.saturating_add(len);
        }
        if start > timeline.total_steps {
            return Err(SparsityError::Invalid(format!(
                "method.east.cycles: {} cycles need {start} steps but training has only {}: \
                 shorten method.east.cycles.epochs or train longer",
                config.count, timeline.total_steps
            )));
        }
        Ok(Self {
            cycles,
            shape: config.shape,
            max_ratio: config.max_ratio,
        })
    }

    /// The first step after the last cycle.
    pub fn end(&self) -> usize {
        self.cycles.last().map(|(s, l)| s + l).unwrap_or(0)
    }

    /// The overall density at `step` for target `d_min`; `None` once the cycles are over.
    pub fn density(&self, step: usize, d_min: f64) -> Option<f64> {
        let &(start, len) = self
            .cycles
            .iter()
            .find(|(s, l)| step >= *s && step < s + l)?;
        let t = (step - start) as f64 / len as f64;
        let d_max = (d_min * self.max_ratio).min(1.0);
        Some(cyclic_density(t, d_min, d_max, self.shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_is_the_target_at_cycle_ends_and_the_maximum_mid_cycle() {
        for shape in [CycleShape::Cosine, CycleShape::Triangular] {
            assert!((cyclic_density(0.0, 0.01, 0.03, shape) - 0.01).abs() < 1e-15);
            assert!((cyclic_density(0.5, 0.01, 0.03, shape) - 0.03).abs() < 1e-15);
            assert!((cyclic_density(1.0, 0.01, 0.03, shape) - 0.01).abs() < 1e-15);
            assert!(cyclic_density(0.25, 0.01, 0.03, shape) > 0.01);
        }
        let timeline = Timeline {
            steps_per_epoch: 10,
            total_steps: 200,
        };
        let s = CyclicSchedule::new(&CyclesConfig::default(), &timeline).unwrap();
        // Two cycles fill the first half: steps 0..50 and 50..100.
        assert_eq!(s.cycles, vec![(0, 50), (50, 50)]);
        assert_eq!(s.density(0, 0.01), Some(0.01));
        assert!((s.density(25, 0.01).unwrap() - 0.03).abs() < 1e-12);
        assert_eq!(s.density(50, 0.01), Some(0.01));
        assert!((s.density(75, 0.01).unwrap() - 0.03).abs() < 1e-12);
        assert_eq!(s.density(100, 0.01), None);
        // d_max never exceeds 1.
        assert!((s.density(25, 0.5).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn cycles_grow_by_the_multiplier_and_must_fit() {
        let timeline = Timeline {
            steps_per_epoch: 10,
            total_steps: 200,
        };
        let config = CyclesConfig {
            epochs: Some(2.0),
            length_multiplier: 2.0,
            count: 3,
            ..Default::default()
        };
        let s = CyclicSchedule::new(&config, &timeline).unwrap();
        assert_eq!(s.cycles, vec![(0, 20), (20, 40), (60, 80)]);
        let too_long = CyclesConfig {
            epochs: Some(15.0),
            ..config
        };
        let err = CyclicSchedule::new(&too_long, &timeline).unwrap_err();
        assert!(err.to_string().contains("train longer"), "{err}");
    }
}
