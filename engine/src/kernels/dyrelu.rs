//! Kernel 6: DyReLU-B's piecewise-linear activation, fused, on Flex. Burn builds
//! `max(a1 x + b1, a2 x + b2)` from five broadcast tensor ops, and its backward pass from a
//! dozen more, each a full pass over the activation and a new buffer. While EAST's DyReLU
//! phase is on, those passes made a ResNet-34 step at 99.9% more than twice as slow as
//! RigL's. Here the activation is one pass, its input gradient one, and the gradient of the
//! four coefficients one more (sums per image and channel).
//!
//! Only the application is fused: the coefficients still come from Burn's pooling and
//! linear layers (`model::dyrelu`), whose backward pass receives the coefficient gradient.
//! Flex only; elsewhere, and as the reference the tests compare outputs and gradients
//! with, `model::dyrelu::apply_reference`.

mod autodiff;
mod flex;

use burn::backend::{Backend, Dispatch, backend_extension, tensor::FloatTensor};
use burn::tensor::{Device, Tensor};

#[backend_extension(Autodiff, Flex)]
pub trait FusedDyReluBackend: Backend {
    /// `max(a1 x + b1, a2 x + b2)` for `x` `[N, C, H, W]` and `coef` `[N, C, 4]` holding
    /// `a1, a2, b1, b2` per image and channel. A tie takes the first piece, as Burn's
    /// `max_pair` does.
    fn dyrelu_apply(x: FloatTensor<Self>, coef: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient of `x`: `grad_out` times the slope of the piece that won.
    fn dyrelu_input_grad(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The gradient of `coef` (`[N, C, 4]`): per image and channel, the sums of
    /// `grad_out * x` and of `grad_out` over the positions where each piece won.
    fn dyrelu_coef_grad(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Whether `device` has the fused activation (Flex, with or without autodiff).
pub fn is_available(device: &Device) -> bool {
    super::runs_flex(device)
}

/// The fused activation; `coef` is `[N, C, 4]` (`a1, a2, b1, b2`). Flex only
/// (`is_available`).
pub fn dyrelu_apply(x: Tensor<4>, coef: Tensor<3>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedDyReluBackend>::dyrelu_apply(
        x.into_dispatch(),
        coef.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dyrelu::DyRelu;
    use crate::model::params::grads_by_path;
    use burn::optim::GradientsParams;
    use burn::tensor::TensorData;
    use std::collections::BTreeMap;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// Random values in [-2, 2), with one plane all zeros (a channel a sparse network cut
    /// off: every value there ties the pieces' offsets) and one value exactly 0.
    fn activation(dims: [usize; 4], seed: u64) -> Vec<f32> {
        let mut rng = crate::rng::Rng::new(seed);
        let plane = dims[2] * dims[3];
        let mut v: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|_| rng.next_f32() * 4.0 - 2.0)
            .collect();
        v[plane..2 * plane].fill(0.0);
        v[3 * plane + 1] = 0.0;
        v
    }

    #[test]
    fn fused_dyrelu_matches_burns_ops_in_outputs_and_gradients() {
        let device = Device::flex().autodiff();
        assert!(is_available(&device));
        let act = DyRelu::new(6, &device);
        let dims = [3, 6, 5, 4];
        let direction = Tensor::<4>::from_data(TensorData::new(activation(dims, 9), dims), &device);
        for phase in [1.0, 0.35] {
            let run = |fused: bool| {
                let x = Tensor::<4>::from_data(TensorData::new(activation(dims, 4), dims), &device)
                    .require_grad();
                let y = if fused {
                    act.forward(x.clone(), phase)
                } else {
                    act.forward_reference(x.clone(), phase)
                };
                let grads = (y.clone() * direction.clone()).sum().backward();
                let gx = values(x.grad(&grads).unwrap());
                let params = GradientsParams::from_grads(grads, &act);
                let by_path: BTreeMap<String, Vec<f32>> = grads_by_path(&act, &params)
                    .into_iter()
                    .map(|(p, g)| (p, g.into_data().convert::<f32>().try_to_vec().unwrap()))
                    .collect();
                (values(y.inner()), gx, by_path)
            };
            let (y, gx, gp) = run(true);
            let (ry, rgx, rgp) = run(false);
            assert!(max_diff(&y, &ry) < 1e-6, "phase {phase}: outputs differ");
            assert!(
                max_diff(&gx, &rgx) < 1e-5,
                "phase {phase}: input gradients differ"
            );
            assert_eq!(
                gp.keys().collect::<Vec<_>>(),
                rgp.keys().collect::<Vec<_>>()
            );
            for (path, g) in &gp {
                let scale = rgp[path].iter().fold(1.0f32, |m, v| m.max(v.abs()));
                let d = max_diff(g, &rgp[path]);
                assert!(
                    d < 1e-4 * scale,
                    "phase {phase}: {path} gradient differs by {d}"
                );
            }
            assert!(
                gp.values().flatten().any(|&v| v != 0.0),
                "no parameter gradient"
            );
        }
    }
}
