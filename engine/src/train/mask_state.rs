//! A run's masks and everything derived from them: the weights ever active, per-layer
//! counts, the 0/1 device tensors of the masked optimizer step, the active positions of
//! the step that touches only those, and the sparse kernels' index. This is the only code
//! that changes masks, so the derived state cannot drift.

use super::metrics::LayerDensity;
use crate::kernels::active_step::ActivePositions;
use crate::kernels::plan::SparsePlan;
use crate::methods::MaskUpdate;
use crate::optim::mask_tensors;
use crate::sparsity::Masks;
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::BTreeMap;

pub struct MaskState {
    masks: Masks,
    /// Weights active at any point so far (in-time over-parameterisation).
    ever_active: Masks,
    layer_nnz: Vec<usize>,
    tensors: BTreeMap<String, Tensor<1>>,
    /// On Flex, the active positions of the layers at most half active, for the optimizer
    /// step that touches those only (`kernels::active_step`).
    active_positions: BTreeMap<String, ActivePositions>,
    /// The layers that run the sparse kernels (`run.kernels`), and their index.
    sparse_kernel_layers: Vec<String>,
    plan: Option<SparsePlan>,
    device: Device,
}

/// What a mask update changed, as the trainer needs it to keep the weights in line.
pub struct AppliedUpdate {
    /// Per layer path, 1 where a weight keeps its value, 0 where it was dropped or grown
    /// (grown weights and their momentum start at exactly zero).
    pub keep: BTreeMap<String, Tensor<1>>,
    /// Fraction of the active weights that are new since before the update.
    pub churn: f64,
}

impl MaskState {
    pub fn new(masks: Masks, sparse_kernel_layers: Vec<String>, device: &Device) -> Self {
        let ever_active = masks.clone();
        Self::restore(masks, ever_active, sparse_kernel_layers, device)
    }

    /// State read back from a checkpoint: masks and the weights ever active with them.
    pub fn restore(
        masks: Masks,
        ever_active: Masks,
        sparse_kernel_layers: Vec<String>,
        device: &Device,
    ) -> Self {
        let mut state = Self {
            layer_nnz: Vec::new(),
            tensors: BTreeMap::new(),
            active_positions: BTreeMap::new(),
            plan: None,
            masks,
            ever_active,
            sparse_kernel_layers,
            device: device.clone(),
        };
        state.derive();
        state
    }

    /// Lets `change` edit the masks (a method's update), then brings everything derived
    /// from them up to date. At step 0 (pruning at initialisation, before any weight
    /// trained) only what survives counts as ever active.
    pub fn update<E>(
        &mut self,
        step: usize,
        change: impl FnOnce(&mut Masks) -> Result<MaskUpdate, E>,
    ) -> Result<(MaskUpdate, AppliedUpdate), E> {
        let before = self.masks.clone();
        let update = match change(&mut self.masks) {
            Ok(update) => update,
            Err(e) => {
                // Whatever the method changed before failing is counted, not left stale.
                self.derive();
                return Err(e);
            }
        };
        if step == 0 {
            self.ever_active = self.masks.clone();
        }
        for (ever, now) in self.ever_active.layers.iter_mut().zip(&self.masks.layers) {
            for (e, &a) in ever.active.iter_mut().zip(&now.active) {
                *e |= a;
            }
        }
        let mut keep = BTreeMap::new();
        for (l, layer) in self.masks.layers.iter().enumerate() {
            let mut bits: Vec<f32> = layer
                .active
                .iter()
                .map(|&a| f32::from(u8::from(a)))
                .collect();
            for &i in update.grown.get(l).into_iter().flatten() {
                bits[i] = 0.0;
            }
            keep.insert(
                layer.path.clone(),
                Tensor::from_data(TensorData::new(bits, [layer.numel()]), &self.device),
            );
        }
        self.derive();
        let churn = self.masks.churn_since(&before);
        Ok((update, AppliedUpdate { keep, churn }))
    }

    /// Recounts the masks and rebuilds the device tensors and the sparse kernels' index.
    fn derive(&mut self) {
        self.layer_nnz = self.masks.layers.iter().map(|l| l.nnz()).collect();
        self.tensors = mask_tensors(&self.masks, &self.device);
        // Above half active the step would touch most weights anyway, scattered, where the
        // masked step streams them (a cut-off chosen, not measured).
        self.active_positions = (self.masks.layers.iter())
            .filter(|l| 2 * l.nnz() <= l.numel())
            .filter_map(|l| {
                Some((
                    l.path.clone(),
                    ActivePositions::of(&l.active, &self.device)?,
                ))
            })
            .collect();
        self.plan = (!self.sparse_kernel_layers.is_empty()).then(|| {
            SparsePlan::new(
                &self.masks,
                self.sparse_kernel_layers.iter().map(String::as_str),
                &self.device,
            )
        });
    }

    pub fn masks(&self) -> &Masks {
        &self.masks
    }

    pub fn ever_active(&self) -> &Masks {
        &self.ever_active
    }

    /// Non-zeros per layer, in mask order.
    pub fn layer_nnz(&self) -> &[usize] {
        &self.layer_nnz
    }

    /// Non-zeros of the masks (the learnable count).
    pub fn nnz(&self) -> usize {
        self.layer_nnz.iter().sum()
    }

    /// The active positions the optimizer step touches, by layer path, where it runs the
    /// active step (Flex, layers at most half active); the masked step elsewhere.
    pub fn active_positions(&self) -> &BTreeMap<String, ActivePositions> {
        &self.active_positions
    }

    /// The masks as 0/1 device tensors, by layer path.
    pub fn tensors(&self) -> &BTreeMap<String, Tensor<1>> {
        &self.tensors
    }

    pub fn plan(&self) -> Option<&SparsePlan> {
        self.plan.as_ref()
    }

    pub fn sparse_kernel_layers(&self) -> &[String] {
        &self.sparse_kernel_layers
    }

    /// Fraction of prunable weights that have ever been active.
    pub fn itop_rate(&self) -> f64 {
        self.ever_active.density()
    }

    pub fn layer_densities(&self) -> Vec<LayerDensity> {
        self.masks
            .per_layer()
            .into_iter()
            .map(|(path, nnz, numel)| LayerDensity {
                path,
                nnz,
                numel,
                connected_nnz: None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::sparsity::SparseLayer;

    fn layers() -> Vec<SparseLayer> {
        vec![
            SparseLayer {
                path: "a.weight".into(),
                dims: vec![4, 2, 3, 3],
            },
            SparseLayer {
                path: "b.weight".into(),
                dims: vec![8, 5],
            },
        ]
    }

    async fn host(t: &Tensor<1>) -> Vec<f32> {
        t.clone()
            .into_data_async()
            .await
            .unwrap()
            .try_to_vec()
            .unwrap()
    }

    /// Counts, ever-active, device tensors and the plan all agree with the masks.
    fn assert_consistent(s: &MaskState) {
        let masks = s.masks();
        assert_eq!(
            s.layer_nnz(),
            masks.layers.iter().map(|l| l.nnz()).collect::<Vec<_>>()
        );
        assert_eq!(s.nnz(), masks.nnz());
        for (ever, now) in s.ever_active().layers.iter().zip(&masks.layers) {
            assert!(now.active.iter().zip(&ever.active).all(|(&a, &e)| !a || e));
        }
        for layer in &masks.layers {
            let bits = pollster::block_on(host(&s.tensors()[&layer.path]));
            let want: Vec<f32> = layer
                .active
                .iter()
                .map(|&a| f32::from(u8::from(a)))
                .collect();
            assert_eq!(bits, want, "{}", layer.path);
        }
        if let Some(plan) = s.plan() {
            let planned: Vec<&str> = plan.sparse_layers().collect();
            assert_eq!(planned, s.sparse_kernel_layers());
        }
    }

    fn drop_and_grow(masks: &mut Masks, rng: &mut Rng) -> Result<MaskUpdate, String> {
        let mut update = MaskUpdate::default();
        for layer in &mut masks.layers {
            let scores: Vec<f32> = (0..layer.numel()).map(|_| rng.next_f32()).collect();
            let dropped = layer.drop_smallest(&scores, 2);
            let grown = layer.grow_largest(&scores, 3);
            update.dropped.push(dropped);
            update.grown.push(grown);
        }
        Ok(update)
    }

    #[test]
    fn every_update_keeps_counts_ever_active_tensors_and_plan_in_line() {
        let device = Device::flex();
        let mut rng = Rng::stream(7, 1);
        let masks = Masks::random(&layers(), &[20, 10], &mut rng);
        let paths: Vec<String> = layers().into_iter().map(|l| l.path).collect();
        let mut state = MaskState::new(masks, paths, &device);
        assert_consistent(&state);
        let mut ever_nnz = state.ever_active().nnz();
        for step in 1..6 {
            let nnz = state.nnz();
            let (update, applied) = state.update(step, |m| drop_and_grow(m, &mut rng)).unwrap();
            assert_consistent(&state);
            assert_eq!(
                state.nnz(),
                nnz + update.grown.iter().map(Vec::len).sum::<usize>() - 4
            );
            assert!(applied.churn > 0.0);
            // Grown weights restart at zero: `keep` is 0 there, 1 on the weights kept.
            for (l, layer) in state.masks().layers.iter().enumerate() {
                let keep = pollster::block_on(host(&applied.keep[&layer.path]));
                for &i in &update.grown[l] {
                    assert_eq!(keep[i], 0.0);
                }
                assert_eq!(
                    keep.iter().filter(|&&k| k == 1.0).count(),
                    layer.nnz() - update.grown[l].len()
                );
            }
            assert!(state.ever_active().nnz() >= ever_nnz);
            ever_nnz = state.ever_active().nnz();
        }
    }

    #[test]
    fn a_prune_at_step_zero_resets_what_counts_as_ever_active() {
        let device = Device::flex();
        let mut state = MaskState::new(Masks::dense(&layers()), Vec::new(), &device);
        state
            .update(0, |m| {
                let w: Vec<f32> = (0..72).map(|i| i as f32).collect();
                let dropped = vec![m.layers[0].drop_smallest(&w, 60), Vec::new()];
                Ok::<_, String>(MaskUpdate {
                    dropped,
                    grown: vec![Vec::new(); 2],
                    drop_fraction: 0.0,
                })
            })
            .unwrap();
        assert_consistent(&state);
        assert_eq!(state.ever_active(), state.masks());
        assert!(state.plan().is_none());
    }

    #[test]
    fn the_active_step_takes_the_layers_at_most_half_active() {
        let device = Device::flex();
        let mut masks = Masks::dense(&layers());
        // "a": 72 weights, 36 active; "b": 40 weights, 21 active.
        for (layer, active) in masks.layers.iter_mut().zip([36, 21]) {
            for (i, a) in layer.active.iter_mut().enumerate() {
                *a = i % 2 == 0 && i / 2 < active || i == 1 && active == 21;
            }
        }
        assert_eq!(masks.layers[0].nnz(), 36);
        assert_eq!(masks.layers[1].nnz(), 21);
        let state = MaskState::new(masks, Vec::new(), &device);
        let positions = state.active_positions();
        assert_eq!(positions.keys().collect::<Vec<_>>(), ["a.weight"]);
        let listed = positions["a.weight"]
            .tensor()
            .clone()
            .into_data()
            .convert::<i32>();
        let want: Vec<i32> = (0..36).map(|k| 2 * k).collect();
        assert_eq!(listed.try_to_vec::<i32>().unwrap(), want);
    }

    #[test]
    fn a_failed_update_is_reported() {
        let device = Device::flex();
        let mut state = MaskState::new(Masks::dense(&layers()), Vec::new(), &device);
        let err = state.update(3, |_| Err::<MaskUpdate, _>("no")).err();
        assert_eq!(err, Some("no"));
        assert_consistent(&state);
    }
}
