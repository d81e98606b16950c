//! Kernel 9: the masked SGD step over the active weights only, on Flex. The masked step
//! (`masked_step`) reads every weight, momentum and mask element to leave pruned ones at
//! zero: at ResNet-34's 21 million weights, three 4-byte arrays of them are a quarter of a
//! gigabyte a step, for 21 thousand live weights at 99.9%. This step takes the list of active positions instead and
//! touches nothing else, which relies on pruned weights and their momentum being zero
//! already; the trainer keeps them so wherever it changes weights or masks (at
//! initialisation, after each mask update, when it loads a checkpoint).
//!
//! Each active element goes through the masked step's operations in its order (one shared
//! function), so it gets the same bits; the tests compare the two. A pruned element keeps
//! its zero as it is: the -0.0 that masking gives a negative weight (`w * 0`) stays -0.0
//! where the masked step writes +0.0, an equal value. The reference is the masked step,
//! and through it the tensor ops.

use super::flex_tensor::{f32_elements, i32_elements, owned_f32};
use super::masked_step::{StepHyper, stepped};
use super::parallel;
use burn::backend::{
    Backend, Dispatch, Flex, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

/// Weights per thread's chunk, as the masked step takes them.
const CHUNK: usize = 1 << 16;

#[backend_extension(Flex)]
pub trait ActiveStepBackend: Backend {
    /// Returns the updated (weight, momentum): the masked step at the positions listed in
    /// `active` (i32, strictly rising), the other elements as they were.
    fn active_sgd_step(
        weight: FloatTensor<Self>,
        momentum: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        active: IntTensor<Self>,
        clip: FloatTensor<Self>,
        hyper: StepHyper,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

impl ActiveStepBackend for Flex {
    fn active_sgd_step(
        weight: FloatTensor<Self>,
        momentum: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        active: IntTensor<Self>,
        clip: FloatTensor<Self>,
        hyper: StepHyper,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (mut weight, mut momentum) = (owned_f32(weight), owned_f32(momentum));
        let (g, active) = (f32_elements(&grad), i32_elements(&active));
        let clip = f32_elements(&clip)[0];
        let (w, m) = (weight.storage_mut::<f32>(), momentum.storage_mut::<f32>());
        // Rising by construction (`ActivePositions`), checked again in debug builds only:
        // this is the optimizer's hot path. Out of range would index past the chunk.
        debug_assert!(
            active.windows(2).all(|p| p[0] < p[1]),
            "positions not rising"
        );
        let inside = active.first().is_none_or(|&i| i >= 0)
            && active.last().is_none_or(|&i| (i as usize) < w.len());
        assert!(inside, "active positions outside the {} weights", w.len());
        // Threaded over chunks of the weights, each stepping the positions that fall in it
        // (found by bisection): a chunk without any is not read at all.
        parallel::for_each_chunk_pair(w, m, CHUNK, |c, w, m| {
            let start = c * CHUNK;
            let from = active.partition_point(|&i| (i as usize) < start);
            let to = active.partition_point(|&i| (i as usize) < start + w.len());
            for &i in &active[from..to] {
                let j = i as usize - start;
                (w[j], m[j]) = stepped(w[j], m[j], g[i as usize], clip, &hyper);
            }
        });
        (weight, momentum)
    }
}

/// A mask's active positions, strictly rising, as the step takes them (i32, on the
/// device). Built only from a mask, so the step need not check the order each time.
#[derive(Clone, Debug)]
pub struct ActivePositions(Tensor<1, Int>);

impl ActivePositions {
    /// The positions of `active` on `device`: `None` where the device does not run Flex
    /// (the masked step runs there).
    pub fn of(active: &[bool], device: &Device) -> Option<Self> {
        if !super::runs_flex(device) {
            return None;
        }
        let positions: Vec<i32> = active
            .iter()
            .enumerate()
            .filter(|(_, a)| **a)
            .map(|(i, _)| i32::try_from(i).expect("a layer of fewer than 2^31 weights"))
            .collect();
        let n = positions.len();
        Some(Self(Tensor::from_data(
            TensorData::new(positions, [n]),
            (device, DType::I32),
        )))
    }

    pub fn tensor(&self) -> &Tensor<1, Int> {
        &self.0
    }
}

/// The step at `active`'s positions of flat (1-D) Flex tensors without autodiff.
pub fn active_sgd_step(
    weight: Tensor<1>,
    momentum: Tensor<1>,
    grad: Tensor<1>,
    active: &ActivePositions,
    clip: Tensor<1>,
    hyper: StepHyper,
) -> (Tensor<1>, Tensor<1>) {
    let (w, m) = <Dispatch as ActiveStepBackend>::active_sgd_step(
        weight.inner().into_dispatch(),
        momentum.inner().into_dispatch(),
        grad.inner().into_dispatch(),
        active.0.clone().inner().into_dispatch(),
        clip.inner().into_dispatch(),
        hyper,
    );
    (Tensor::from_dispatch(w), Tensor::from_dispatch(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::masked_step::masked_sgd_step;
    use crate::rng::Rng;

    #[test]
    fn the_active_step_gives_the_masked_steps_bits_where_pruned_values_are_zero() {
        let device = Device::flex();
        // Several threads' chunks and a ragged end.
        let n = 3 * CHUNK + 1001;
        let mut rng = Rng::stream(7, 0);
        let active: Vec<bool> = (0..n).map(|_| rng.next_f32() < 0.05).collect();
        let mut random = |zero_pruned: bool| -> Tensor<1> {
            let v: Vec<f32> = (0..n)
                .map(|i| {
                    let v = rng.next_f32() * 2.0 - 1.0;
                    // Masking leaves -0.0 where a weight was negative.
                    if zero_pruned && !active[i] {
                        0.0f32.copysign(v)
                    } else {
                        v
                    }
                })
                .collect();
            Tensor::from_data(TensorData::new(v, [n]), &device)
        };
        // Pruned weights and momentum are zero, as the trainer keeps them; the gradient is
        // not (a dense layer's, or RigL's dense gradient).
        let (w, m, g) = (random(true), random(true), random(false));
        let bits: Vec<f32> = active.iter().map(|&a| f32::from(u8::from(a))).collect();
        let mask = Tensor::<1>::from_data(TensorData::new(bits, [n]), &device);
        let clip = Tensor::<1>::from_data([0.7], &device);
        let positions = ActivePositions::of(&active, &device).expect("Flex");
        assert_eq!(
            positions.tensor().dims(),
            [active.iter().filter(|a| **a).count()]
        );
        for nesterov in [false, true] {
            let hyper = StepHyper {
                version: 0,
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 5e-4,
                nesterov,
            };
            let run = |step: &dyn Fn() -> (Tensor<1>, Tensor<1>)| {
                let (w, m) = step();
                let host = |t: Tensor<1>| -> Vec<u32> {
                    let v = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
                    v.iter().map(|x| x.to_bits()).collect()
                };
                (host(w), host(m))
            };
            let masked = run(&|| {
                let mask = Some(mask.clone());
                masked_sgd_step(w.clone(), m.clone(), g.clone(), mask, clip.clone(), hyper)
            });
            let touched = run(&|| {
                active_sgd_step(
                    w.clone(),
                    m.clone(),
                    g.clone(),
                    &positions,
                    clip.clone(),
                    hyper,
                )
            });
            // The same bits where active; an equal zero (either sign) where pruned.
            let zero = |bits: u32| f32::from_bits(bits) == 0.0;
            for (name, a, b) in [
                ("weight", &masked.0, &touched.0),
                ("momentum", &masked.1, &touched.1),
            ] {
                for i in 0..n {
                    let same = if active[i] {
                        a[i] == b[i]
                    } else {
                        zero(a[i]) && zero(b[i])
                    };
                    assert!(same, "{name} {i}, nesterov {nesterov}");
                }
            }
            let before = run(&|| (w.clone(), m.clone()));
            assert_ne!(before, touched, "the step changed nothing");
            let none = ActivePositions::of(&vec![false; n], &device).expect("Flex");
            let untouched = run(&|| {
                active_sgd_step(w.clone(), m.clone(), g.clone(), &none, clip.clone(), hyper)
            });
            assert_eq!(before, untouched, "no positions, no change");
        }
    }
}
