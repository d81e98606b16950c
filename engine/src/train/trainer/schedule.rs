//! The run's clock: steps and epochs, and the schedules read at a step (LR, DyReLU's
//! phase, the method's density), ahead of time too for plotting the plan.

use super::Trainer;
use serde::{Deserialize, Serialize};

/// One point of `Trainer::schedule_preview`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SchedulePoint {
    pub step: usize,
    pub density: f64,
    pub phase: Option<f64>,
    pub lr: f64,
}

impl Trainer {
    pub fn step(&self) -> usize {
        self.step
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.data.split.train.len() / self.config.batch_size
    }

    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.config.total_epochs()
    }

    pub fn epoch(&self) -> usize {
        self.step / self.steps_per_epoch()
    }

    pub fn is_finished(&self) -> bool {
        self.step >= self.total_steps()
    }

    /// The LR at the current step: the schedule over the whole run, or over the
    /// method's current cycle for methods that restart it (LRR, SCULPT-ing).
    pub fn lr(&self) -> f64 {
        self.lr_at(self.step)
    }

    fn lr_at(&self, step: usize) -> f64 {
        let spe = self.steps_per_epoch() as f64;
        let (start, len) = match self.method.cycle(step) {
            Some(c) => (c.start, c.len),
            None => (0, self.total_steps()),
        };
        self.config.schedule.lr_at(
            self.config.optim.lr,
            (step - start) as f64 / spe,
            len as f64 / spe,
        )
    }

    /// DyReLU's phase p at the current step; None without DyReLU.
    pub fn phase(&self) -> Option<f64> {
        self.phase_at(self.step)
    }

    fn phase_at(&self, step: usize) -> Option<f64> {
        if !self.model.has_dyrelu() {
            return None;
        }
        let (start, end) = self.config.dyrelu_phase_window();
        let epoch = step as f64 / self.steps_per_epoch() as f64;
        Some(crate::model::dyrelu::phase_at(epoch, start, end))
    }

    pub fn scheduled_density(&self) -> f64 {
        self.method.scheduled_density(self.step, &self.budget)
    }

    /// The whole run's schedules ahead of time, at `points` evenly spaced steps (and the
    /// last): the method's density, DyReLU's phase and the LR, for plotting the plan
    /// beside what happened. Computed from the same functions the steps use.
    pub fn schedule_preview(&self, points: usize) -> Vec<SchedulePoint> {
        let total = self.total_steps();
        let points = points.clamp(2, total.max(2));
        let mut steps: Vec<usize> = (0..points)
            .map(|i| i * total.saturating_sub(1) / (points - 1))
            .collect();
        // Every mask update step too, so cyclic density's jumps are drawn where they happen.
        steps.extend((0..total).filter(|&s| self.method.is_update_step(s)));
        steps.sort_unstable();
        steps.dedup();
        steps
            .into_iter()
            .map(|step| SchedulePoint {
                step,
                density: self.method.scheduled_density(step, &self.budget),
                phase: self.phase_at(step),
                lr: self.lr_at(step),
            })
            .collect()
    }
}
